"""The mini world's five task families, each written in its benchmark's native file format.

    from softcot.miniworld.families import write_families
    paths = write_families("out/data", seed=0)      # {"gsm8k": {"train": Path, ...}, "aqua": {...}, ...}
    python -m softcot.miniworld.families --out out/data [--n-train 1000 --n-dev 150 --n-test 300]

Every family needs one fact that its questions leave out and that only the assistant knows:

| family (folder)  | native format (softcot's loader)                         | the fact it leaves out          |
|------------------|----------------------------------------------------------|---------------------------------|
| gsm8k/           | jsonl {question, answer: steps + "#### N"}               | how many items a pack holds     |
| asdiv-aug/       | jsonl, ASDiv-Aug's surface: lower case, " .", "<<a+b=c>>"| how many items a pack holds     |
| aqua/            | jsonl {question, options ["A)..", x5], rationale, correct}| how many items a pack holds     |
| strategyqa/      | JSON array {qid, term, question, answer: bool, facts, ..}| how many items a pack holds     |
| date/            | BBH {"examples": [{input: "...\\nOptions:\\n(A) ..", target}]}| the date of a festival          |

The assistant knows the facts **imperfectly**, as a real small assistant does: it is sure of
some (SURE_PACKS, SURE_FESTIVALS) and unsure of others (UNSURE_*: the true value and a second
candidate). `assistant_hint` draws its training hint for an unsure fact from both candidates
(UNSURE_TRUE_SHARE of them the true one), so its hidden state at the slots holds two candidates,
and its written (greedy) hint is wrong on a share of the questions that need an unsure fact.
For AQuA and Date the wrong candidate's answer is always among the options, so a written wrong
hint is a confident wrong pick, while a thought that holds both candidates can still be checked
against the options.

The LLM's world (`llm_world=True`) draws every fact at random (pack sizes 2..12, festival dates
anywhere in the year), so the LLM learns to read hints and never the facts themselves.
`Item.hint` is the gold hint (the fact as digits, "12" or "04/12"), `Item.steps` the worked
solution the LLM is trained to write. Pure Python: the same seed gives byte-identical files.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from softcot.miniworld import generator as gen

FAMILIES = ("gsm8k", "asdiv-aug", "aqua", "strategyqa", "date")
# file names as each benchmark ships them (AQuA's .json files hold JSON Lines)
FILE_EXT = {"gsm8k": "jsonl", "asdiv-aug": "jsonl", "aqua": "json", "strategyqa": "json", "date": "json"}

SURE_PACKS = dict(gen.PACK_SIZES)  # crates 12, packs 6, trays 8, jars 5
UNSURE_PACKS = {"cartons": (10, 15), "tins": (4, 9)}  # (true size, the other candidate)
# festival days sit in FESTIVAL_DAYS and a question moves at most 10 days, so date arithmetic
# never leaves the month: a mini LLM learns day sums in its build budget, not the calendar
FESTIVAL_DAYS = (11, 18)
SURE_FESTIVALS = {"Lantern Day": (4, 12), "Kite Day": (6, 15), "Harvest Fair": (9, 13), "Snow Feast": (1, 17)}
UNSURE_FESTIVALS = {"Moon Market": ((10, 11), (10, 17)), "River Day": ((7, 14), (8, 14))}
UNSURE_TRUE_SHARE = 0.5  # of the assistant's training hints for an unsure fact, the share that is true
YEARS = tuple(range(1990, 2030))
# what a date question asks for, as BBH asks it: the date that many days from today
ASKS = {"today": 0, "tomorrow": 1, "yesterday": -1}


@dataclass
class Fact:
    """The one thing a question leaves out: a pack size or a festival's date."""

    kind: str  # "pack" | "festival"
    name: str  # "crates" | "Lantern Day"
    value: int | tuple  # pack size, or (month, day)
    other: int | tuple | None = None  # the second candidate the assistant also holds (unsure facts)

    def text(self, value=None) -> str:
        v = self.value if value is None else value
        return f"{v[0]:02d}/{v[1]:02d}" if self.kind == "festival" else str(v)


@dataclass
class Item:
    family: str
    record: dict  # the native record, as written to the file
    answer: str  # the gold answer ("36", "C", "yes")
    steps: list[str]  # the worked solution (the LLM's training target, before "The answer is")
    fact: Fact | None  # None: the question needs no hidden fact
    meta: dict = field(default_factory=dict)

    @property
    def hint(self) -> str:
        return self.fact.text() if self.fact else ""


def draw_fact(rng: random.Random, kind: str, llm_world: bool) -> Fact:
    """A pack or festival, sure or unsure (2 of 6 are unsure). In the LLM's world the value is random."""
    if kind == "pack":
        name = rng.choice(sorted(SURE_PACKS) + sorted(UNSURE_PACKS))
        if llm_world:
            return Fact("pack", name, rng.randint(*gen.RANDOM_PACK_SIZES))
        if name in UNSURE_PACKS:
            return Fact("pack", name, *UNSURE_PACKS[name])
        return Fact("pack", name, SURE_PACKS[name])
    name = rng.choice(sorted(SURE_FESTIVALS) + sorted(UNSURE_FESTIVALS))
    if llm_world:
        return Fact("festival", name, (rng.randint(1, 12), rng.randint(*FESTIVAL_DAYS)))
    if name in UNSURE_FESTIVALS:
        return Fact("festival", name, *UNSURE_FESTIVALS[name])
    return Fact("festival", name, SURE_FESTIVALS[name])


def assistant_hint(fact: Fact | None, rng: random.Random) -> str:
    """What the assistant is trained to write for a question: the fact, or for an unsure fact the
    true value or the other candidate (UNSURE_TRUE_SHARE true); '' when no fact is needed."""
    if fact is None:
        return ""
    if fact.other is not None and rng.random() >= UNSURE_TRUE_SHARE:
        return fact.text(fact.other)
    return fact.text()


# ------------------------------------------------------------------ arithmetic families


def _pack_problem(rng: random.Random, n_steps: int, size: str, fact: Fact, value=None) -> gen.Problem | None:
    """A generator problem that starts with `a` packs of `fact`'s kind holding `value` (default: the
    fact's value) items each; None when its operations do not fit the new pack size."""
    p = gen.sample_problem(rng, n_steps, size, random_packs=True)
    lv = gen.LEVELS[size]
    a = p.start[1] if p.start[0] in ("boxes", "packs") else rng.randint(*lv["box_a"])
    ops = p.ops if p.start[0] in ("boxes", "packs") else p.ops[1:]
    q = gen.Problem(p.name, p.item, ("packs", a, fact.value if value is None else value, fact.name), list(ops), size)
    try:
        vals = q.values()
    except ValueError:
        return None
    return q if all(0 <= v <= lv["max"] for v in vals) else None


def _story(rng: random.Random, llm_world: bool, pack_share: float = 0.5):
    """(problem, fact, other-candidate problem or None): a problem whose start needs a pack size
    (pack_share of them) or a plain one."""
    n_steps, size = rng.choice(gen.STEPS), rng.choice(gen.SIZES)
    if rng.random() >= pack_share:
        while True:
            p = gen.sample_problem(rng, n_steps, size, random_packs=True)
            if p.start[0] != "packs":
                return p, None, None
    while True:
        fact = draw_fact(rng, "pack", llm_world)
        p = _pack_problem(rng, max(n_steps, 1), size, fact)
        if p is None:
            continue
        alt = None
        if fact.other is not None:
            alt = gen.Problem(p.name, p.item, ("packs", p.start[1], fact.other, fact.name), p.ops, size)
            try:
                alt.values()
            except ValueError:
                continue
        return p, fact, alt


def _options(rng: random.Random, gold: int, must: list[int], n: int = 5) -> tuple[list[int], int]:
    """n distinct positive option values with gold and every `must` value among them, shuffled;
    returns (values, index of gold)."""
    vals = [gold] + [m for m in dict.fromkeys(must) if m != gold]
    while len(vals) < n:
        v = gold + rng.choice([-1, 1]) * rng.randint(1, max(6, gold // 4 + 1))
        if v > 0 and v not in vals:
            vals.append(v)
    vals = vals[:n]
    rng.shuffle(vals)
    return vals, vals.index(gold)


def scan_step(answer: str, labelled: list[str], gold: int) -> str:
    """The step that picks an option by checking them in order, up to the match, one per line as
    the prompt lists them ("Check the options for 80:\nA)60 no\nB)73 no\nC)80 yes."). A mini LLM
    copies each option line and compares it with one value; a line start tokenizes as it does in
    the prompt ("A" there, not " A"), so the copy is a plain match. Naming the letter of a value
    in one step instead needs a lookup it does not learn in its build budget."""
    return f"Check the options for {answer}:\n" + "\n".join(
        f"{lab} {'yes' if i == gold else 'no'}" for i, lab in enumerate(labelled[:gold + 1])) + "."


def gsm8k_item(rng: random.Random, llm_world: bool = False) -> Item:
    p, fact, _ = _story(rng, llm_world, pack_share=0.5)
    rec = gen.to_record(p)
    return Item("gsm8k", rec, str(p.answer), gen.record_steps(rec), fact)


def asdiv_item(rng: random.Random, llm_world: bool = False) -> Item:
    """One- or two-step problems in ASDiv-Aug's surface: lower case, spaced punctuation, another
    phrasing, numbers to 160, the answer as bare calculator annotations."""
    name, _ = rng.choice(gen.NAMES)
    other = rng.choice([n for n, _ in gen.NAMES if n != name])
    item = rng.choice(gen.ITEMS)
    if rng.random() < 0.5:
        fact = draw_fact(rng, "pack", llm_world)
        a, size = rng.randint(2, 9), fact.value
        first, total = f"{name.lower()} has {a} {fact.name} of {item}", a * size
        eqs = [f"{a}*{size}={total}"]
    else:
        fact, a = None, rng.randint(12, 99)
        first, total = f"{name.lower()} has {a} {item}", a
        eqs = []
    b = rng.randint(5, 60)
    form = rng.choice(("more", "left", "together"))
    if form == "more":
        q = f"{first} . {other.lower()} has {b} more {item} than {name.lower()} . how many {item} does {other.lower()} have ?"
        eqs.append(f"{total}+{b}={total + b}")
    elif form == "left" and b < total:
        q = f"{first} . {name.lower()} gave {b} {item} to {other.lower()} . how many {item} are left ?"
        eqs.append(f"{total}-{b}={total - b}")
    else:
        q = f"{first} and {other.lower()} has {b} {item} . how many {item} do they have in all ?"
        eqs.append(f"{total}+{b}={total + b}")
    ans = eqs[-1].split("=")[-1]
    record = {"question": q, "answer": "".join(f"<<{e}>>\n" for e in eqs) + f"####{ans}"}
    steps = ([f"A {fact.name[:-1]} holds {fact.value} {item}: {eqs[0]}."] if fact else []) + [f"{eqs[-1]}."]
    return Item("asdiv-aug", record, ans, steps, fact)


def aqua_item(rng: random.Random, llm_world: bool = False) -> Item:
    """A GSM8K-style story with five lettered options; an unsure fact's other answer is an option."""
    p, fact, alt = _story(rng, llm_world, pack_share=0.6)
    must = [alt.answer] if alt is not None else []
    vals, gi = _options(rng, p.answer, must)
    letter = "ABCDE"[gi]
    steps = gen.record_steps(gen.to_record(p))
    options = [f"{'ABCDE'[i]}){v}" for i, v in enumerate(vals)]
    record = {"question": gen.question_text(p), "options": options,
              "rationale": "\n".join(steps + [f"Answer: {letter}"]), "correct": letter}
    meta = {"other_answer": str(alt.answer)} if alt is not None else {}
    return Item("aqua", record, letter, steps + [scan_step(str(p.answer), options, gi)], fact, meta)


def strategyqa_item(rng: random.Random, llm_world: bool = False, index: int = 0) -> Item:
    """Yes/no over a fact the question leaves implicit: are there more (or fewer) items than a
    threshold in a few packs?"""
    fact = draw_fact(rng, "pack", llm_world)
    name, _ = rng.choice(gen.NAMES)
    item = rng.choice(gen.ITEMS)
    a = rng.randint(2, 6)
    total = a * fact.value
    want = rng.random() < 0.5  # balanced yes/no
    # the threshold is a round number in another ten than the total, so the comparison is decided by
    # the tens digit alone: a mini LLM learns that in its build budget (a close call, e.g. 30 vs 25,
    # it never learned: every such answer came out "no")
    tens = [x for x in range(10, 100, 10) if x // 10 != total // 10 and (total > x) == want]
    t = rng.choice(tens) if tens else 10 * (total // 10 + 1)
    if rng.random() < 0.5:
        question = f"Does {name} have more than {t} {item} in {a} {fact.name}?"
        answer = total > t
        last = f"{total} is {'more' if answer else 'not more'} than {t}."
        decomp = f"Is #2 more than {t}?"
    else:
        question = f"Does {name} have fewer than {t} {item} in {a} {fact.name}?"
        answer = total < t
        last = f"{total} is {'fewer' if answer else 'not fewer'} than {t}."
        decomp = f"Is #2 fewer than {t}?"
    facts = [f"One of the {fact.name} holds {fact.value} {item}.", f"{a} {fact.name} hold {a}*{fact.value}={total} {item}.", last]
    record = {"qid": f"mw{index:05d}", "term": fact.name, "description": f"a kind of container for {item}",
              "question": question, "answer": answer, "facts": facts,
              "decomposition": [f"How many {item} does one of the {fact.name} hold?",
                                f"How many {item} are in {a} {fact.name}?", decomp]}
    return Item("strategyqa", record, "yes" if answer else "no", facts, fact)


# ------------------------------------------------------------------ dates, as BBH writes them


def _mdy(d: dt.date) -> str:
    return d.strftime("%m/%d/%Y")


def date_item(rng: random.Random, llm_world: bool = False) -> Item:
    """Date arithmetic from a festival's date, six lettered options; an unsure festival's other
    date gives an option too."""
    fact = draw_fact(rng, "festival", llm_world)
    year = rng.choice(YEARS)
    base = dt.date(year, *fact.value)
    off = rng.choice([-1, 1]) * rng.randint(1, 9)  # with ASKS' +-1, never past FESTIVAL_DAYS +- 10
    when = f"{abs(off)} day{'s' if abs(off) > 1 else ''} {'after' if off > 0 else 'before'}"
    ask = rng.choice(sorted(ASKS))
    today = base + dt.timedelta(days=off)
    gold = today + dt.timedelta(days=ASKS[ask])
    question = f"Today is {when} {fact.name} of {year}. What is the date {ask} in MM/DD/YYYY?"
    wrong = [base + dt.timedelta(days=-off + ASKS[ask]), today if ask != "today" else None,
             gold.replace(year=year + 1) if (gold.month, gold.day) != (2, 29) else None,
             gold + dt.timedelta(days=rng.choice([-1, 1])), base]
    meta = {}
    if fact.other is not None:
        wrong.insert(0, dt.date(year, *fact.other) + dt.timedelta(days=off + ASKS[ask]))
        meta["other_answer"] = _mdy(wrong[0])
    opts = [gold] + [w for w in dict.fromkeys(wrong) if w is not None and w != gold]
    while len(opts) < 6:
        w = gold + dt.timedelta(days=rng.randint(-40, 40))
        if w not in opts:
            opts.append(w)
    opts = opts[:6]
    rng.shuffle(opts)
    letter = "ABCDEF"[opts.index(gold)]
    labelled = [f"({'ABCDEF'[i]}) {_mdy(d)}" for i, d in enumerate(opts)]
    text = question + "\nOptions:\n" + "\n".join(labelled)
    steps = [f"{fact.name} of {year} is {_mdy(base)}.", f"Today is {when} it: {_mdy(today)}."]
    if ask != "today":
        steps.append(f"The date {ask} is {_mdy(gold)}.")
    steps.append(scan_step(_mdy(gold), labelled, opts.index(gold)))
    return Item("date", {"input": text, "target": f"({letter})"}, letter, steps, fact, meta)


MAKERS = {"gsm8k": gsm8k_item, "asdiv-aug": asdiv_item, "aqua": aqua_item, "strategyqa": strategyqa_item,
          "date": date_item}


def items(family: str, seed: int, n: int, *, llm_world: bool = False, exclude: set[str] | None = None) -> list[Item]:
    """`n` items with distinct question texts (none in `exclude`), deterministic from the seed."""
    rng = random.Random(f"{family}:{seed}:{int(llm_world)}")
    seen, out = set(exclude or ()), []
    for attempt in range(50 * n + 1000):
        if len(out) == n:
            return out
        it = (strategyqa_item(rng, llm_world, len(out)) if family == "strategyqa" else MAKERS[family](rng, llm_world))
        key = question_of(it)
        if key not in seen:
            seen.add(key)
            out.append(it)
    raise RuntimeError(f"could not draw {n} distinct {family} questions")


def question_of(it: Item) -> str:
    """The question without its options (two items that differ only in options are one question)."""
    return it.record.get("question") or it.record["input"].split("\nOptions:")[0]


def make_splits(family: str, seed: int, n_train: int, n_dev: int, n_test: int) -> dict[str, list[Item]]:
    """Disjoint train/dev/test splits of one family."""
    pool = items(family, seed, n_train + n_dev + n_test)
    return {"train": pool[:n_train], "dev": pool[n_train:n_train + n_dev], "test": pool[n_train + n_dev:]}


def write_split(path: Path, family: str, split: list[Item]) -> None:
    """One split in the family's native format."""
    path.parent.mkdir(parents=True, exist_ok=True)
    recs = [it.record for it in split]
    if family in ("gsm8k", "asdiv-aug", "aqua"):
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs)
    elif family == "strategyqa":
        text = json.dumps(recs, ensure_ascii=False, indent=1) + "\n"
    else:  # BBH's date_understanding.json
        text = json.dumps({"examples": recs}, ensure_ascii=False, indent=1) + "\n"
    path.write_text(text, encoding="utf-8")


def write_families(out_dir: str | Path, seed: int = 0, n_train: int = 1000, n_dev: int = 150, n_test: int = 300,
                   families: tuple[str, ...] = FAMILIES) -> dict[str, dict[str, Path]]:
    """OUT/<family>/{train,dev,test}.<ext> for every family; returns {family: {split: path}}."""
    out = {}
    for fam in families:
        out[fam] = {}
        for split, its in make_splits(fam, seed, n_train, n_dev, n_test).items():
            path = Path(out_dir) / fam / f"{split}.{FILE_EXT[fam]}"
            write_split(path, fam, its)
            out[fam][split] = path
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="write the mini world's five task families in their native formats")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-train", type=int, default=1000)
    ap.add_argument("--n-dev", type=int, default=150)
    ap.add_argument("--n-test", type=int, default=300)
    a = ap.parse_args(argv)
    for fam, paths in write_families(a.out, a.seed, a.n_train, a.n_dev, a.n_test).items():
        print(fam, " ".join(str(p) for p in paths.values()))


if __name__ == "__main__":
    main()

"""A tiny, deterministic world of multi-step arithmetic word problems in GSM8K format.

Every problem is a short story about one person and one kind of item: a start quantity
("has 12 apples"; "has 3 boxes with 4 apples in each" or "has 3 crates of apples", each itself
one step, where the size of a crate is world knowledge the question does not state, see
PACK_SIZES) followed by
operations (buy/find/get, give/lose/sell, "has 3 times as many", "keeps 1/4 of them"), then a
question. Each operation is one reasoning step. The answer field is GSM8K-shaped: one line per
step that restates its sentence and computes with a `<<a+b=c>>` calculator annotation
("He buys 5 more: 12+5=<<12+5=17>>17."), then `#### N`.

    from softcot.miniworld.generator import write_splits
    paths = write_splits("data/miniworld", seed=0, n_train=6000, n_dev=300, n_test=400)

Pure Python (`random.Random(seed)`): the same seed gives byte-identical files everywhere.
Difficulty is controlled by the number of steps (1..4) and a number-size level
("small": one-digit operands, values up to 99; "large": operands 10-40, values up to 500; see
LEVELS); every intermediate value stays in 0..999 and every division is exact.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

NAMES = [("Tom", "he"), ("Ann", "she"), ("Sam", "he"), ("Mia", "she"),
         ("Ben", "he"), ("Lily", "she"), ("Max", "he"), ("Zoe", "she")]
ITEMS = ["apples", "pens", "books", "cards", "eggs", "coins", "stickers", "marbles"]
CONTAINERS = ["boxes", "bags"]
# World knowledge that no question states: how many items one of these packs holds
# ("Tom has 3 crates of eggs." means 3*12 eggs). The mini assistant is trained on this world;
# the mini LLM only ever sees packs of random sizes, told in a hint (see `random_packs`), so
# without a hint it has to guess, and an assistant that knows the sizes has something to give.
PACK_SIZES = {"crates": 12, "packs": 6, "trays": 8, "jars": 5}
RANDOM_PACK_SIZES = (2, 12)  # the range of pack sizes in the LLM's own training problems
PACK_SHARE = 0.35  # share of problems that start with packs (explicit boxes: 0.2, plain: 0.45)

MAX_VALUE = 999
SIZES = ("small", "large")
# Number ranges per size level (inclusive); every intermediate value stays in 0..max.
LEVELS = {
    "small": {"start": (2, 20), "operand": (1, 9), "mul": (2, 3), "div": (2, 5),
              "box_a": (2, 5), "box_b": (2, 6), "max": 99},
    "large": {"start": (10, 60), "operand": (10, 40), "mul": (2, 4), "div": (2, 9),
              "box_a": (2, 9), "box_b": (5, 12), "max": 500},
}
assert all(lv["max"] <= MAX_VALUE for lv in LEVELS.values())
STEPS = (1, 2, 3, 4)

# Operation kinds and their sentence templates ({P}: capitalised pronoun, {O}: other person).
ADD_VERBS = ["buys {b} more", "finds {b} more", "gets {b} more from {O}"]
SUB_VERBS = ["gives {b} to {O}", "loses {b}", "sells {b}"]
MUL_TEXT = "Then {P} has {b} times as many."
DIV_TEXT = "{P} keeps 1/{b} of them."
OP_SYMBOL = {"add": "+", "sub": "-", "mul": "*", "div": "/"}


@dataclass
class Problem:
    """The structured program behind one question (kept for debugging and tests)."""

    name: str
    item: str
    start: tuple            # ("has", a), ("boxes", a, b, container) or ("packs", a, size, pack)
    ops: list = field(default_factory=list)   # [(kind, b, verb template), ...]
    size: str = "small"

    def values(self) -> list[int]:
        """All quantities, start first: values()[-1] is the answer."""
        x = self.start[1] * self.start[2] if self.start[0] in ("boxes", "packs") else self.start[1]
        out = [x]
        for kind, b, _ in self.ops:
            x = apply_op(kind, x, b)
            out.append(x)
        return out

    @property
    def answer(self) -> int:
        return self.values()[-1]

    @property
    def n_steps(self) -> int:
        return len(self.ops) + (1 if self.start[0] in ("boxes", "packs") else 0)


def apply_op(kind: str, x: int, b: int) -> int:
    if kind == "add":
        return x + b
    if kind == "sub":
        return x - b
    if kind == "mul":
        return x * b
    if kind == "div":
        if x % b:
            raise ValueError(f"{x} is not divisible by {b}")
        return x // b
    raise ValueError(kind)


def _sample_op(rng: random.Random, x: int, size: str) -> tuple[str, int] | None:
    """One operation valid for the current quantity x, or None if none fits."""
    lv = LEVELS[size]
    lo, hi = lv["operand"]
    kinds = ["add", "sub", "mul", "div"]
    rng.shuffle(kinds)
    for kind in kinds:
        if kind == "add":
            b = rng.randint(lo, hi)
            if x + b <= lv["max"]:
                return kind, b
        elif kind == "sub":
            if x - lo >= 1:
                return kind, rng.randint(lo, min(hi, x - 1))
        elif kind == "mul":
            b = rng.randint(*lv["mul"])
            if 1 <= x and x * b <= lv["max"]:
                return kind, b
        elif kind == "div":
            divisors = [d for d in range(lv["div"][0], lv["div"][1] + 1) if x % d == 0 and x // d >= 1]
            if divisors:
                return kind, rng.choice(divisors)
    return None


def sample_problem(rng: random.Random, n_steps: int, size: str, random_packs: bool = False) -> Problem:
    """A random problem with exactly `n_steps` reasoning steps at a number-size level.
    `random_packs`: packs hold a random number of items instead of PACK_SIZES (the LLM's world)."""
    if n_steps not in STEPS or size not in SIZES:
        raise ValueError(f"n_steps in {STEPS}, size in {SIZES}")
    lv = LEVELS[size]
    while True:
        name, _ = rng.choice(NAMES)
        item = rng.choice(ITEMS)
        # A "boxes" or "packs" start is itself one multiplication step.
        u = rng.random()
        if u < 0.2:
            start = ("boxes", rng.randint(*lv["box_a"]), rng.randint(*lv["box_b"]), rng.choice(CONTAINERS))
            n_ops = n_steps - 1
        elif u < 0.2 + PACK_SHARE:
            pack = rng.choice(sorted(PACK_SIZES))
            per = rng.randint(*RANDOM_PACK_SIZES) if random_packs else PACK_SIZES[pack]
            start = ("packs", rng.randint(*lv["box_a"]), per, pack)
            n_ops = n_steps - 1
        else:
            start = ("has", rng.randint(*lv["start"]))
            n_ops = n_steps
        if n_ops == 0 and start[0] == "has":
            continue
        prob = Problem(name=name, item=item, start=start, size=size)
        x = prob.values()[0]
        ok = True
        for _ in range(n_ops):
            op = _sample_op(rng, x, size)
            if op is None:
                ok = False
                break
            kind, b = op
            others = [n for n, _ in NAMES if n != name]
            template = rng.choice(ADD_VERBS if kind == "add" else SUB_VERBS) if kind in ("add", "sub") else ""
            prob.ops.append((kind, b, template.replace("{O}", rng.choice(others))))
            x = apply_op(kind, x, b)
        if ok and 0 <= x <= lv["max"]:
            return prob


def _pronoun(name: str) -> str:
    return dict(NAMES)[name]


def sentences(p: Problem) -> list[str]:
    """The story sentences: the start, then one per operation (the question line excluded)."""
    he = _pronoun(p.name)
    if p.start[0] == "boxes":
        _, a, b, cont = p.start
        parts = [f"{p.name} has {a} {cont} with {b} {p.item} in each."]
    elif p.start[0] == "packs":  # the pack size is world knowledge: not in the question
        _, a, _, pack = p.start
        parts = [f"{p.name} has {a} {pack} of {p.item}."]
    else:
        parts = [f"{p.name} has {p.start[1]} {p.item}."]
    for i, (kind, b, template) in enumerate(p.ops):
        subj = p.name if i % 2 else he.capitalize()
        if kind in ("add", "sub"):
            parts.append(f"{subj} {template.format(b=b)}.")
        elif kind == "mul":
            parts.append(MUL_TEXT.format(P=he, b=b))
        else:
            parts.append(DIV_TEXT.format(P=subj, b=b))
    return parts


def question_text(p: Problem) -> str:
    return " ".join(sentences(p) + [f"How many {p.item} does {p.name} have now?"])


def step_lines(p: Problem) -> list[str]:
    """GSM8K-style rationale lines: each restates its sentence, then computes with a
    `<<expr=value>>` calculator annotation ("He buys 5 more: 12+5=<<12+5=17>>17.")."""
    lines = []
    vals = p.values()
    sents = [s.rstrip(".") for s in sentences(p)]
    if p.start[0] in ("boxes", "packs"):
        _, a, b, _ = p.start
        lines.append(f"{sents[0]}: {a}*{b}=<<{a}*{b}={vals[0]}>>{vals[0]}.")
    for (kind, b, _), sent, x, y in zip(p.ops, sents[1:], vals[:-1], vals[1:]):
        expr = f"{x}{OP_SYMBOL[kind]}{b}"
        lines.append(f"{sent}: {expr}=<<{expr}={y}>>{y}.")
    return lines


def to_record(p: Problem) -> dict:
    return {"question": question_text(p), "answer": "\n".join(step_lines(p) + [f"#### {p.answer}"])}


def generate(seed: int, n: int, *, steps=STEPS, sizes=SIZES, exclude: set[str] | None = None,
             random_packs: bool = False) -> list[dict]:
    """`n` distinct records (unique question texts, none in `exclude`), levels cycling evenly
    over steps x sizes. `random_packs`: the LLM's world, where packs have random sizes."""
    rng = random.Random(seed)
    levels = [(s, z) for s in steps for z in sizes]
    seen: set[str] = set(exclude or ())
    out: list[dict] = []
    i = 0
    attempts = 0
    while len(out) < n:
        n_steps, size = levels[i % len(levels)]
        rec = to_record(sample_problem(rng, n_steps, size, random_packs))
        attempts += 1
        if attempts > 50 * n + 1000:
            raise RuntimeError(f"could not find {n} distinct problems")
        if rec["question"] in seen:
            continue
        seen.add(rec["question"])
        out.append(rec)
        i += 1
    return out


def make_splits(seed: int, n_train: int, n_dev: int, n_test: int) -> dict[str, list[dict]]:
    """Disjoint train/dev/test lists (no question appears in two splits)."""
    pool = generate(seed, n_train + n_dev + n_test)
    random.Random(seed + 1).shuffle(pool)
    return {"train": pool[:n_train], "dev": pool[n_train:n_train + n_dev],
            "test": pool[n_train + n_dev:]}


def pretraining_records(seed: int, n: int, splits: dict[str, list[dict]], random_packs: bool = False) -> list[dict]:
    """Extra problems for training the mini LMs themselves: the train split plus `n` fresh
    problems, none of which is a dev or test question (held-out stays held-out).
    `random_packs` (the LLM's world): len(train) + n fresh problems whose packs have random
    sizes, and not the train split itself, so the LLM never learns the real pack sizes."""
    held_out = {r["question"] for k in ("dev", "test") for r in splits.get(k, [])}
    train = splits.get("train", [])
    if random_packs:
        return generate(seed + 2_000_003, len(train) + n, exclude=held_out, random_packs=True)
    extra = generate(seed + 1_000_003, n, exclude=held_out | {r["question"] for r in train}) if n else []
    return train + extra


def write_jsonl(path: str | Path, records: list[dict]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def write_splits(out_dir: str | Path, seed: int = 0, n_train: int = 6000, n_dev: int = 300,
                 n_test: int = 400) -> dict[str, Path]:
    """Write train.jsonl, dev.jsonl, test.jsonl under out_dir; returns {split: path}."""
    out_dir = Path(out_dir)
    paths = {}
    for split, recs in make_splits(seed, n_train, n_dev, n_test).items():
        paths[split] = out_dir / f"{split}.jsonl"
        write_jsonl(paths[split], recs)
    return paths


# ---------------------------------------------------------------- Examples for training

def record_steps(record: dict) -> list[str]:
    """The step lines of a record, calculator annotations removed ("12+5=<<12+5=17>>17" -> "12+5=17")."""
    import re

    lines = record["answer"].split("\n")[:-1]
    return [re.sub(r"<<[^>]*>>", "", ln).strip() for ln in lines]


def record_answer(record: dict) -> str:
    return record["answer"].rsplit("####", 1)[1].strip()


def record_equations(record: dict) -> list[str]:
    """The calculator equations of a record, in order: ["3*4=12", "12+5=17", ...]."""
    import re

    return re.findall(r"<<([^>]*)>>", record["answer"])


def to_examples(records: list[dict], split: str = "mini"):
    """`softcot.data.Example`s (task "miniworld") built directly from records."""
    from softcot.data import Example

    return [Example(id=f"{split}-{i}", task="miniworld", question=r["question"],
                    answer=record_answer(r), steps=record_steps(r),
                    meta={"equations": record_equations(r)})
            for i, r in enumerate(records)]

"""The mini world: generator determinism and correctness, tokenizers, quick build, shipped assets."""
from __future__ import annotations

import json
import re
import time

import pytest
import torch

from softcot.miniworld import generator as gen

# ----------------------------------------------------------------- independent re-solver

_SENT = re.compile(r"(?<=[.?])\s+")


# The world's pack sizes, written out here independently of the generator's table.
PACKS = {"crates": 12, "packs": 6, "trays": 8, "jars": 5}


def solve_question(question: str, packs: dict | None = PACKS) -> tuple[int, int]:
    """Recompute (answer, number of steps) from the question text alone, without the generator
    (pack sizes from `packs`, the world knowledge the question does not state)."""
    sents = _SENT.split(question.strip())
    assert sents[-1].startswith("How many") and sents[-1].endswith("have now?"), sents[-1]
    first, body = sents[0], sents[1:-1]
    m = re.fullmatch(r"[A-Z][a-z]+ has (\d+) (?:boxes|bags) with (\d+) [a-z]+ in each\.", first)
    p = re.fullmatch(r"[A-Z][a-z]+ has (\d+) (crates|packs|trays|jars) of [a-z]+\.", first)
    if m:
        x, steps = int(m.group(1)) * int(m.group(2)), 1
    elif p:
        x, steps = int(p.group(1)) * packs[p.group(2)], 1
    else:
        m = re.fullmatch(r"[A-Z][a-z]+ has (\d+) [a-z]+\.", first)
        assert m, first
        x, steps = int(m.group(1)), 0
    for s in body:
        if m := re.fullmatch(r"\w+ (?:buys|finds) (\d+) more\.|\w+ gets (\d+) more from [A-Z][a-z]+\.", s):
            x += int(m.group(1) or m.group(2))
        elif m := re.fullmatch(r"\w+ (?:gives (\d+) to [A-Z][a-z]+|loses (\d+)|sells (\d+))\.", s):
            x -= int(m.group(1) or m.group(2) or m.group(3))
        elif m := re.fullmatch(r"Then (?:he|she) has (\d+) times as many\.", s):
            x *= int(m.group(1))
        elif m := re.fullmatch(r"\w+ keeps 1/(\d+) of them\.", s):
            k = int(m.group(1))
            assert x % k == 0, (question, x, k)
            x //= k
        else:
            raise AssertionError(f"unparsed sentence {s!r}")
        steps += 1
    return x, steps


def _calc(expr: str) -> int:
    m = re.fullmatch(r"(\d+)([-+*/])(\d+)", expr)
    assert m, expr
    a, op, b = int(m.group(1)), m.group(2), int(m.group(3))
    return {"+": a + b, "-": a - b, "*": a * b, "/": a // b if a % b == 0 else None}[op]


# ----------------------------------------------------------------- generator

def test_generation_is_deterministic_and_seed_dependent(tmp_path):
    a = gen.make_splits(5, 60, 10, 10)
    assert a == gen.make_splits(5, 60, 10, 10)
    assert a != gen.make_splits(6, 60, 10, 10)
    p1 = gen.write_splits(tmp_path / "a", seed=5, n_train=60, n_dev=10, n_test=10)
    p2 = gen.write_splits(tmp_path / "b", seed=5, n_train=60, n_dev=10, n_test=10)
    for split in ("train", "dev", "test"):
        assert p1[split].read_bytes() == p2[split].read_bytes()
        assert p1[split].name == f"{split}.jsonl"


def test_answers_are_correct_by_independent_recomputation():
    recs = gen.generate(11, 2000)
    seen_steps = set()
    for r in recs:
        assert set(r) == {"question", "answer"}
        lines = r["answer"].split("\n")
        m = re.fullmatch(r"#### (\d+)", lines[-1])
        assert m, lines[-1]
        gold = int(m.group(1))
        answer, steps = solve_question(r["question"])
        assert answer == gold, r
        assert 0 <= gold <= 999
        assert len(lines) - 1 == steps and 1 <= steps <= 4
        seen_steps.add(steps)
        # every step line carries a correct calculator annotation, chained to the final answer
        prev = None
        for ln in lines[:-1]:
            ann = re.findall(r"<<([^=>]+)=(\d+)>>(\d+)", ln)
            assert len(ann) == 1, ln
            expr, val, shown = ann[0]
            assert _calc(expr) == int(val) == int(shown), ln
            if prev is not None:
                assert int(re.match(r"\d+", expr).group(0)) == prev, (ln, prev)
            prev = int(val)
        assert prev == gold
    assert seen_steps == {1, 2, 3, 4}
    firsts = [r["question"].split(".")[0] for r in recs]
    share = sum(bool(re.search(r"has \d+ (crates|packs|trays|jars) of", f)) for f in firsts) / len(recs)
    assert 0.25 < share < 0.45  # packs whose size the question does not state


def test_the_llm_world_has_random_pack_sizes():
    """The LLM's training problems use random pack sizes (so it cannot learn the real ones),
    stated only by their step lines; the real world's are always PACK_SIZES."""
    s = gen.make_splits(0, 100, 40, 40)
    llm = gen.pretraining_records(0, 400, s, random_packs=True)
    assert len(llm) == 500 and not {r["question"] for r in s["dev"] + s["test"]} & {r["question"] for r in llm}
    sizes = {}
    for r in llm:
        m = re.match(r"[A-Z][a-z]+ has (\d+) (crates|packs|trays|jars) of [a-z]+: \d+\*(\d+)=", r["answer"])
        if m:
            sizes.setdefault(m.group(2), set()).add(int(m.group(3)))
            assert solve_question(r["question"], {m.group(2): int(m.group(3))})[0] == int(r["answer"].rsplit(" ", 1)[1])
    assert set(sizes) == set(PACKS) and all(len(v) >= 5 for v in sizes.values())
    for r in s["train"]:
        m = re.match(r"[A-Z][a-z]+ has (\d+) (crates|packs|trays|jars) of [a-z]+: \d+\*(\d+)=", r["answer"])
        assert not m or int(m.group(3)) == PACKS[m.group(2)]


def test_splits_are_disjoint_and_sized():
    s = gen.make_splits(0, 300, 50, 50)
    assert [len(s[k]) for k in ("train", "dev", "test")] == [300, 50, 50]
    qs = {k: {r["question"] for r in v} for k, v in s.items()}
    assert sum(len(v) for v in qs.values()) == 400  # unique within splits too
    assert not (qs["train"] & qs["dev"]) and not (qs["train"] & qs["test"]) and not (qs["dev"] & qs["test"])


def test_lm_pretraining_data_never_contains_held_out_questions():
    s = gen.make_splits(0, 100, 40, 40)
    pre = gen.pretraining_records(0, 300, s)
    assert pre[:100] == s["train"] and len(pre) == 400 and len({r["question"] for r in pre}) == 400
    held = {r["question"] for r in s["dev"] + s["test"]}
    assert not held & {r["question"] for r in pre}


def test_examples_and_hint():
    from softcot.data import Example
    from softcot.data import target_text
    from softcot.miniworld.build import hint_text, strict_correct
    from softcot.scoring import extract_answer

    rec = {"question": "Tom has 3 boxes with 4 pens in each. He buys 5 more. Then he has 2 times as many. "
                       "How many pens does Tom have now?",
           "answer": "Tom has 3 boxes with 4 pens in each: 3*4=<<3*4=12>>12.\nHe buys 5 more: 12+5=<<12+5=17>>17.\n"
                     "Then he has 2 times as many: 17*2=<<17*2=34>>34.\n#### 34"}
    assert solve_question(rec["question"]) == (34, 3)
    (ex,) = gen.to_examples([rec])
    assert isinstance(ex, Example) and ex.task == "miniworld" and ex.answer == "34"
    assert ex.steps == ["Tom has 3 boxes with 4 pens in each: 3*4=12.", "He buys 5 more: 12+5=17.",
                        "Then he has 2 times as many: 17*2=34."]
    # the generator reproduces this record from its program
    prog = gen.Problem("Tom", "pens", ("boxes", 3, 4, "boxes"), [("add", 5, "buys {b} more"), ("mul", 2, "")])
    assert gen.to_record(prog) == rec
    assert hint_text(ex) == ""  # explicit boxes: nothing left out
    # a pack start leaves its size out of the question: the hint is that fact
    prec = {"question": "Ann has 3 crates of eggs. She sells 5. How many eggs does Ann have now?",
            "answer": "Ann has 3 crates of eggs: 3*12=<<3*12=36>>36.\nShe sells 5: 36-5=<<36-5=31>>31.\n#### 31"}
    assert gen.to_record(gen.Problem("Ann", "eggs", ("packs", 3, 12, "crates"), [("sub", 5, "sells {b}")])) == prec
    assert solve_question(prec["question"]) == (31, 2)
    (pex,) = gen.to_examples([prec])
    assert hint_text(pex) == "12"
    # the same hint from an Example without meta (a GSM8K-format loader), annotations kept or not
    assert hint_text(Example("x", "miniworld", prec["question"], "31", steps=prec["answer"].split("\n")[:-1])) == "12"
    assert hint_text(Example("x", "miniworld", prec["question"], "31", steps=pex.steps)) == "12"
    t = target_text(ex)
    assert t.startswith("## Step 1: Tom has 3 boxes with 4 pens in each: 3*4=12.\n## Step 2: ") and t.endswith("The answer is \\boxed{34}.")
    assert extract_answer("a \\boxed{1} b \\boxed{ 34 }.", "miniworld", "strict") == "34"
    assert extract_answer("no box", "miniworld", "strict") is None
    assert strict_correct(t, "34") and not strict_correct(t, "35") and not strict_correct("34", "34")


# ----------------------------------------------------------------- quick build

@pytest.fixture(scope="module")
def quick_builds(tmp_path_factory):
    from softcot.miniworld.build import build_miniworld

    out = []
    for name in ("a", "b"):
        t0 = time.time()
        paths = build_miniworld(tmp_path_factory.mktemp(name), seed=3, quick=True, log=lambda s: None)
        out.append((paths, time.time() - t0))
    return out


def test_quick_build_is_fast_and_writes_everything(quick_builds):
    paths, seconds = quick_builds[0]
    assert seconds < 20
    for k in ("llm", "assistant"):
        assert (paths[k] / "model.safetensors").is_file() and (paths[k] / "config.json").is_file()
    for k in ("train", "dev", "test"):
        assert paths[k].is_file()
    man = json.loads(paths["manifest"].read_text())
    assert man["seed"] == 3 and man["quick"] is True
    assert {"no_hint", "gold_hint", "assistant_hint", "assistant_slot_hint", "assistant_slot_exact"} <= set(man["test_accuracy"])


def test_same_seed_same_weights(quick_builds):
    from safetensors.torch import load_file

    (a, _), (b, _) = quick_builds
    for k in ("llm", "assistant"):
        sa, sb = load_file(a[k] / "model.safetensors"), load_file(b[k] / "model.safetensors")
        assert sa.keys() == sb.keys()
        for name in sa:
            assert torch.equal(sa[name], sb[name]), (k, name)
        assert (a[k] / "tokenizer.json").read_bytes() == (b[k] / "tokenizer.json").read_bytes()
    assert a["train"].read_bytes() == b["train"].read_bytes()


def _check_pair(llm_dir, asst_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from softcot.frozen import resolve_markers, resolve_placeholder
    from softcot.miniworld.tokenizer import ASSISTANT_SPECIALS, LLM_SPECIALS
    from softcot.prompts import assistant_message, end_of_turn_text, llm_message, render_prompt

    llm, ltok = AutoModelForCausalLM.from_pretrained(llm_dir), AutoTokenizer.from_pretrained(llm_dir)
    asst, atok = AutoModelForCausalLM.from_pretrained(asst_dir), AutoTokenizer.from_pretrained(asst_dir)
    assert type(llm).__name__ == "LlamaForCausalLM" and type(asst).__name__ == "Qwen2ForCausalLM"
    assert llm.config.hidden_size != asst.config.hidden_size
    assert ltok.get_vocab() != atok.get_vocab() and len(ltok) != len(atok)
    assert llm.config.vocab_size == len(ltok) and asst.config.vocab_size == len(atok)

    (ex,) = gen.to_examples(gen.generate(1, 1))
    for model, tok, sp, eot in ((llm, ltok, LLM_SPECIALS, "<|eot_id|>"), (asst, atok, ASSISTANT_SPECIALS, "<|im_end|>")):
        for s in sp.values():
            ids = tok.encode(s, add_special_tokens=False)
            assert len(ids) == 1 and tok.convert_ids_to_tokens(ids[0]) == s
        assert tok.eos_token == eot and end_of_turn_text(tok) == eot
        assert model.generation_config.eos_token_id == tok.eos_token_id == tok.convert_tokens_to_ids(eot)
        assert tok.pad_token_id is not None and tok.pad_token_id != tok.eos_token_id
        assert len(set(tok.encode("1234567890", add_special_tokens=False))) == 10  # one token per digit
    # chat templates render with the generation header
    p = render_prompt(ltok, llm_message(ex, thoughts=LLM_SPECIALS["placeholder"] * 4,
                                        begin=LLM_SPECIALS["begin"], end=LLM_SPECIALS["end"]))
    assert p.startswith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n")
    assert p.endswith("<|eot_id|>\n<|start_header_id|>assistant<|end_header_id|>\n")
    ids = ltok.encode(p, add_special_tokens=False)
    assert ids.count(ltok.convert_tokens_to_ids(LLM_SPECIALS["placeholder"])) == 4
    q = render_prompt(atok, assistant_message(ex, placeholders=ASSISTANT_SPECIALS["placeholder"] * 3))
    assert q.startswith("<|im_start|>user\n") and q.endswith("<|im_end|>\n<|im_start|>assistant\n")
    assert atok.encode(q, add_special_tokens=False).count(atok.convert_tokens_to_ids("<|placeholder|>")) == 3
    # the project's auto-detection finds our placeholder and marker tokens
    assert resolve_placeholder(ltok, None, "llm")[0] == LLM_SPECIALS["placeholder"]
    assert resolve_placeholder(atok, None, "assistant")[0] == ASSISTANT_SPECIALS["placeholder"]
    assert resolve_markers(ltok, None, None) == (LLM_SPECIALS["begin"], LLM_SPECIALS["end"])
    # both generate
    for model, tok, text in ((llm, ltok, p), (asst, atok, q)):
        enc = tok([text], return_tensors="pt", add_special_tokens=False)
        out = model.generate(**enc, max_new_tokens=3, do_sample=False)
        assert out.shape[1] > enc["input_ids"].shape[1]
        hs = model(**enc, output_hidden_states=True).hidden_states[-1]
        assert hs.shape == (1, enc["input_ids"].shape[1], model.config.hidden_size)


def test_assistant_slots_are_labelled_with_the_hint(quick_builds):
    """Slot j's hidden state is trained to predict hint token j, then placeholder filler; the
    written reply is the hint text. (The model shifts labels: the label at pos+1 is read at pos.)"""
    from transformers import AutoTokenizer

    from softcot.miniworld.build import assistant_sequence, hint_text
    from softcot.miniworld.tokenizer import ASSISTANT_SPECIALS

    tok = AutoTokenizer.from_pretrained(quick_builds[0][0]["assistant"])
    ph_id = tok.convert_tokens_to_ids(ASSISTANT_SPECIALS["placeholder"])
    ex = next(e for e in gen.to_examples(gen.generate(5, 40)) if hint_text(e) == "12")  # crates
    hint = tok(hint_text(ex), add_special_tokens=False)["input_ids"]
    assert len(hint) == 2 and tok.decode(hint) == "12"
    ids, labels = assistant_sequence(tok, ex, 10, ph_id)
    slots = [i for i, t in enumerate(ids) if t == ph_id]
    assert len(slots) == 10 and slots == list(range(slots[0], slots[0] + 10))
    assert [labels[i + 1] for i in slots] == hint + [ph_id] * (10 - len(hint))
    reply = [t for t in labels[slots[-1] + 2:] if t != -100]
    assert tok.decode(reply[:-1]) == hint_text(ex) and reply[-1] == tok.eos_token_id
    assert all(x == -100 for x in labels[:slots[0] + 1])
    ids0, labels0 = assistant_sequence(tok, ex, 0, ph_id)
    assert ph_id not in ids0 and [t for t in labels0 if t != -100] == reply


def test_quick_build_reloads_with_auto_classes(quick_builds):
    paths, _ = quick_builds[0]
    _check_pair(paths["llm"], paths["assistant"])


# ----------------------------------------------------------------- shipped assets

def _assets():
    from softcot.miniworld import ASSETS_DIR, MANIFEST

    if not MANIFEST.is_file():
        pytest.skip("mini world assets not built")
    return ASSETS_DIR, json.loads(MANIFEST.read_text())


def test_shipped_assets_load_and_match_the_generator(tmp_path):
    root, man = _assets()
    _check_pair(root / "llm", root / "assistant")
    d = man["data"]
    regen = gen.write_splits(tmp_path, seed=man["seed"], n_train=d["train"], n_dev=d["dev"], n_test=d["test"])
    for split, p in regen.items():
        assert (root / "data" / f"{split}.jsonl").read_bytes() == p.read_bytes(), split


def test_shipped_manifest_accuracies():
    _, man = _assets()
    acc = man["test_accuracy"]
    assert man["quick"] is False and acc["n"] >= 300
    # an imperfect reasoner that uses hints
    assert 0.15 <= acc["no_hint"] <= 0.8
    assert acc["gold_hint"] >= acc["no_hint"] + 0.1
    assert man["llm"]["params"] > man["assistant"]["params"]
    # the design: on pack problems the LLM has to guess the size, a hint tells it, and the
    # assistant knows the sizes and writes them both as text and at its placeholder slots
    pack = acc["by_group"]["pack"]
    assert pack["no_hint"] <= 0.25 and pack["gold_hint"] >= pack["no_hint"] + 0.3
    assert acc["assistant_hint_exact"] >= 0.9 and acc["assistant_slot_exact"] >= 0.9


def test_project_loader_and_target_agree_with_the_generator(tmp_path):
    data = pytest.importorskip("softcot.data")
    if not hasattr(data, "load_examples"):
        pytest.skip("softcot.data.load_examples not available")
    from softcot.miniworld.build import hint_text, target_text

    paths = gen.write_splits(tmp_path, seed=2, n_train=30, n_dev=5, n_test=5)
    loaded = data.load_examples("miniworld", paths["train"])
    mine = gen.to_examples([json.loads(x) for x in paths["train"].read_text().splitlines()])
    assert len(loaded) == len(mine) == 30
    for a, b in zip(loaded, mine):
        assert (a.question, a.answer, a.steps) == (b.question, b.answer, b.steps)
        assert hint_text(a) == hint_text(b)
        if hasattr(data, "target_text"):
            assert data.target_text(a) == target_text(b)

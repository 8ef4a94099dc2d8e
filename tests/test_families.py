"""The mini world's five task families: native files read by softcot's real loaders and scored
by its real scorer; deterministic from the seed; an assistant that knows the facts imperfectly."""
import hashlib
import random

import pytest

from softcot import scoring
from softcot.data import load_examples
from softcot.miniworld import families as F


def digest(paths):
    return {f: {s: hashlib.sha256(p.read_bytes()).hexdigest() for s, p in sp.items()} for f, sp in paths.items()}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("fam")
    return out, F.write_families(out, seed=0, n_train=40, n_dev=10, n_test=30)


def test_deterministic_from_the_seed(world, tmp_path):
    _, paths = world
    again = F.write_families(tmp_path / "a", seed=0, n_train=40, n_dev=10, n_test=30)
    other = F.write_families(tmp_path / "b", seed=1, n_train=40, n_dev=10, n_test=30)
    assert digest(again) == digest(paths)
    assert all(digest(other)[f] != digest(paths)[f] for f in F.FAMILIES)


@pytest.mark.parametrize("family", F.FAMILIES)
def test_native_files_load_and_score(world, family):
    out, paths = world
    assert paths[family]["test"].parent == out / family  # the folder is named after the task
    its = F.make_splits(family, 0, 40, 10, 30)
    for split, n in (("train", 40), ("dev", 10), ("test", 30)):
        ex = load_examples(family, paths[family][split])
        assert len(ex) == n
        assert [e.answer for e in ex] == [it.answer for it in its[split]]
    test = load_examples(family, paths[family]["test"])
    if family in ("aqua", "date"):
        assert all(len(e.options) == (5 if family == "aqua" else 6) for e in test)
    questions = {e.question for s in ("train", "dev") for e in load_examples(family, paths[family][s])}
    assert not questions & {e.question for e in test}  # held-out stays held out
    # the real scorer reads the worked solution the LLM is trained to write
    for e, it in zip(test, its["test"]):
        right = " ".join(it.steps) + f" The answer is \\boxed{{{it.answer}}}."
        pred = scoring.extract_answer(right, family, options=e.options)
        assert scoring.is_correct(pred, e.answer, family), (right, pred)
    wrong = {"yes": "no", "no": "yes"}.get(test[0].answer, "A" if test[0].answer != "A" else "B")
    if family in ("gsm8k", "asdiv-aug"):
        wrong = str(int(test[0].answer) + 1)
    pred = scoring.extract_answer(f"The answer is \\boxed{{{wrong}}}.", family, options=test[0].options)
    assert not scoring.is_correct(pred, test[0].answer, family)


def test_the_assistant_knows_imperfectly():
    rng = random.Random(0)
    needs = [it for f in F.FAMILIES for it in F.items(f, 0, 300) if it.fact is not None]
    right = [F.assistant_hint(it.fact, rng) == it.hint for it in needs]
    share = sum(right) / len(right)
    assert 0.7 < share < 0.92, share  # clearly below 100 %: the written hint is no oracle
    unsure = [it for it in needs if it.fact.other is not None]
    assert 0.2 < len(unsure) / len(needs) < 0.5
    # on an unsure fact the assistant was told both candidates, each often
    hints = {F.assistant_hint(unsure[0].fact, rng) for _ in range(50)}
    assert hints == {unsure[0].fact.text(), unsure[0].fact.text(unsure[0].fact.other)}


@pytest.mark.parametrize("family", ["aqua", "date"])
def test_the_other_candidate_is_an_option(family):
    """Where the assistant is unsure, the answer its other candidate leads to is an option: a
    wrong written hint is a confident wrong pick, not an answer the options rule out."""
    seen = 0
    for it in F.items(family, 0, 200):
        if it.fact is None or it.fact.other is None:
            continue
        seen += 1
        opts = it.record["options"] if family == "aqua" else it.record["input"].split("Options:\n")[1].splitlines()
        texts = [o.split(")", 1)[1].strip() for o in opts]
        assert it.meta["other_answer"] in texts and it.meta["other_answer"] != texts["ABCDEF".index(it.answer)]
    assert seen >= 20


def test_the_llm_world_draws_facts_at_random():
    sizes = {it.fact.value for it in F.items("gsm8k", 0, 300, llm_world=True) if it.fact is not None}
    assert len(sizes) > 6  # not the real sizes: the LLM learns to read hints, not the facts
    dates = {it.fact.value for it in F.items("date", 0, 100, llm_world=True)}
    assert len(dates) > 50

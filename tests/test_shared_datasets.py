"""Loader checks on the real benchmark files in ../shared/datasets (not part of the repo).

Skipped when the folder is absent. Checks the published counts and that every real item's
gold answer comes back out of its own training target (target_text -> extract_answer).
"""
from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import pytest

from softcot.data import DataWarning, Example, load_examples, target_text
from softcot.scoring import extract_answer, is_correct

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"

pytestmark = [
    pytest.mark.shared,
    pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} not present"),
]

# (task, file, split) -> published count
COUNTS = {
    ("gsm8k", "gsm8k/train.jsonl", None): 7473,
    ("gsm8k", "gsm8k/test.jsonl", None): 1319,
    ("gsm8k", "gsm8k/test_socratic.jsonl", None): 1319,
    ("aqua", "aqua/dev.json", None): 254,
    ("aqua", "aqua/test.json", None): 254,
    ("strategyqa", "strategyqa/strategyqa_train.json", None): 2290,
    ("strategyqa", "strategyqa/strategyqa_train.json", "train"): 1832,
    ("strategyqa", "strategyqa/strategyqa_train.json", "test"): 458,
    ("strategyqa", "strategyqa/eladsegal/train.json", None): 2061,
    ("strategyqa", "strategyqa/eladsegal/dev.json", None): 229,
    ("date", "date_understanding/bbh/date_understanding.json", None): 250,
    ("date", "date_understanding/bigbench/task.json", None): 369,
    ("asdiv-aug", "asdiv/asdiv-aug/aug-dev.jsonl", None): 1038,
    # 2,305 problems; 219 skipped (ratios, times, "a; b", words, non-terminating fractions)
    ("asdiv", "asdiv/ASDiv.xml", None): 2086,
}

_cache: dict[tuple, list[Example]] = {}


def real(task: str, name: str, split: str | None = None) -> list[Example]:
    key = (task, name, split)
    if key not in _cache:
        path = SHARED / name
        if not path.is_file():
            pytest.skip(f"{path} not present")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            _cache[key] = load_examples(task, path, split=split)
    return _cache[key]


@pytest.mark.parametrize("key", list(COUNTS), ids=lambda k: f"{k[1]}:{k[2] or 'all'}")
def test_counts(key):
    assert len(real(*key)) == COUNTS[key]


@pytest.mark.parametrize("key", [k for k in COUNTS if k[2] is None], ids=lambda k: k[1])
def test_round_trip(key):
    task = key[0]
    bad = []
    for ex in real(*key):
        target = target_text(ex)
        for mode in ("default", "strict"):
            pred = extract_answer(target, task, mode, options=ex.options)
            if pred != ex.answer or not is_correct(pred, ex.answer, task):
                bad.append((ex.id, mode, ex.answer, pred))
    assert not bad, bad[:5]


def test_strategyqa_paper_split_labels():
    test = real("strategyqa", "strategyqa/strategyqa_train.json", "test")
    assert Counter(e.answer for e in test) == {"yes": 221, "no": 237}
    every = real("strategyqa", "strategyqa/strategyqa_train.json")
    assert [e.id for e in test] == [e.id for e in every[1832:]]


def test_label_distributions():
    assert Counter(e.answer for e in real("aqua", "aqua/test.json")) == {
        "A": 63, "B": 58, "C": 46, "D": 53, "E": 34
    }
    bbh = real("date", "date_understanding/bbh/date_understanding.json")
    assert Counter(e.answer for e in bbh) == {"A": 48, "B": 50, "C": 35, "D": 43, "E": 40, "F": 34}
    assert Counter(len(e.options) for e in bbh) == {6: 212, 5: 38}


def test_bigbench_date_shuffled():
    ex = real("date", "date_understanding/bigbench/task.json")
    letters = Counter(e.answer for e in ex)
    assert letters["A"] < len(ex) / 3 and len(letters) == 6  # the file lists the gold first 364/369
    assert sum(e.meta["gold_position_in_file"] != 0 for e in ex) == 5
    assert Counter(len(e.options) for e in ex) == {6: 311, 5: 58}


def test_gsm8k_details():
    test = real("gsm8k", "gsm8k/test.jsonl")
    socratic = real("gsm8k", "gsm8k/test_socratic.jsonl")
    assert [e.answer for e in test] == [e.answer for e in socratic]
    assert all(" ** " not in s and "<<" not in s for e in socratic for s in e.steps)
    assert sum(e.answer.startswith("-") for e in real("gsm8k", "gsm8k/train.jsonl")) == 3


def test_asdiv_aug_details():
    ex = real("asdiv-aug", "asdiv/asdiv-aug/aug-dev.jsonl")
    assert sum(e.answer.startswith("-") for e in ex) == 59
    assert Counter(len(e.steps) for e in ex) == {1: 797, 2: 241}

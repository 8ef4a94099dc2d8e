"""Loaders on the invented fixtures in tests/fixtures, error messages, splits and targets."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from softcot.data import (
    DataError,
    DataWarning,
    Example,
    asdiv_answer,
    load_examples,
    parse_split,
    strip_calculator,
    target_text,
)
from softcot.scoring import extract_answer, is_correct

FIX = Path(__file__).parent / "fixtures"


def load(task: str, name: str, **kw) -> list[Example]:
    return load_examples(task, FIX / name, **kw)


# --------------------------------------------------------------------------- GSM8K family


def test_gsm8k_main():
    ex = load("gsm8k", "gsm8k.jsonl")
    assert [e.answer for e in ex] == ["31", "2730", "-5", "6", "12000"]
    assert ex[0].id == "gsm8k/gsm8k-0" and ex[0].task == "gsm8k" and ex[0].options is None
    assert ex[0].question.startswith("Mira bakes")
    assert ex[0].steps == ["Mira bakes 3 * 12 = 36 muffins.", "She has 36 - 5 = 31 muffins left."]
    # blank rationale lines are dropped, annotations removed, text otherwise untouched
    assert ex[1].steps == [
        "The books cost 250 * 9 = $2250.",
        "The posters cost 40 * 12 = $480.",
        "In total it spends 2250 + 480 = $2,730.",
    ]
    assert ex[0].meta["index"] == 0 and ex[0].meta["source"].endswith("gsm8k.jsonl")


def test_gsm8k_keep_calculator():
    ex = load("gsm8k", "gsm8k.jsonl", strip_calc=False)
    assert ex[0].steps[0] == "Mira bakes 3 * 12 = <<3*12=36>>36 muffins."


def test_strip_calculator():
    assert strip_calculator("48/2 = <<48/2=24>>24 clips") == "48/2 = 24 clips"
    assert strip_calculator("no annotation") == "no annotation"
    assert strip_calculator("a <<1+1=2>>2 and <<2*3=6>>6") == "a 2 and 6"


def test_gsm8k_socratic():
    ex = load("gsm8k", "gsm8k_socratic.jsonl")
    assert len(ex) == 4
    assert ex[0].steps == ["Mira bakes 3 * 12 = 36 muffins.", "She has 36 - 5 = 31 muffins left."]
    assert ex[0].meta["subquestions"] == ["How many muffins does Mira bake?", "How many are left?"]
    assert [e.answer for e in ex] == ["31", "-5", "6", "6"]


def test_miniworld_reads_gsm8k_format():
    ex = load("miniworld", "gsm8k.jsonl", limit=2)
    assert [e.task for e in ex] == ["miniworld", "miniworld"]
    assert ex[1].answer == "2730"


def test_asdiv_aug_tolerant_reader():
    with pytest.warns(DataWarning, match="not valid JSON Lines"):
        ex = load("asdiv-aug", "asdiv_aug.jsonl")
    assert [e.answer for e in ex] == ["5", "-6", "2.5", "7", "2.25"]
    assert ex[1].question.startswith("a tank holds 15 liters")
    assert ex[1].steps == ["15-21=-6"]  # an annotation-only line becomes its content
    assert ex[3].steps == ["3*4=12", "12-5=7"]
    assert ex[2].meta["index"] == 2


def test_asdiv_xml():
    with pytest.warns(DataWarning, match="skipped 4 of 8"):
        ex = load("asdiv", "ASDiv.xml")
    assert [(e.id, e.answer) for e in ex] == [
        ("test-0001", "7"),
        ("test-0002", "2.75"),
        ("test-0005", "0.75"),
        ("test-0008", "-2"),
    ]
    assert ex[0].question == "Lena has four red kites and three blue kites. How many kites does Lena have?"
    assert ex[0].steps == ["4+3=7"]
    assert ex[0].meta["raw_answer"] == "7 (kites)" and ex[0].meta["grade"] == "1"


@pytest.mark.parametrize(
    "raw, gold",
    [
        ("9 (apples)", "9"),
        ("14  (seats)", "14"),
        ("65.0 (dollars)", "65"),
        ("383", "383"),
        ("-2 (degrees)", "-2"),
        ("5/2", "2.5"),
        ("25/3", None),  # non-terminating: no single written form
        ("-(1/3)", None),
        ("3:4", None),
        ("11; 12; 13", None),
        ("3:30 p.m.", None),
        ("Ben", None),
        ("6th", None),
    ],
)
def test_asdiv_answer(raw, gold):
    assert asdiv_answer(raw) == gold


# --------------------------------------------------------------------------- choice tasks


def test_aqua():
    ex = load("aqua", "aqua.json")
    assert [e.answer for e in ex] == ["B", "C", "A", "D"]
    assert ex[0].options == ["A) 12 km/h", "B) 15 km/h", "C) 18 km/h", "D) 20 km/h", "E) 25 km/h"]
    assert ex[1].options[0] == "A) 5"  # "A) 5" and "A)5" give the same form
    assert ex[0].steps == ["Speed = distance / time", "45 / 3 = 15", "Answer: B"]
    assert ex[0].question == "A cyclist rides 45 km in 3 hours. What is her average speed?"


def test_date_bbh():
    ex = load("date", "date_bbh.json")
    assert [e.answer for e in ex] == ["B", "A", "C", "F"]
    assert ex[0].question == "Today is 03/14/2020. What is the date tomorrow in MM/DD/YYYY?"
    assert ex[0].options[:2] == ["A) 03/13/2020", "B) 03/15/2020"]
    assert len(ex[1].options) == 5 and ex[0].steps is None
    assert ex[0].meta["format"] == "bbh"


def _bigbench_gold_texts(ex: list[Example]) -> list[str]:
    return [next(o[3:] for o in e.options if o[0] == e.answer) for e in ex]


def test_date_bigbench_shuffle():
    ex = load("date", "date_bigbench.json")
    assert len(ex) == 6
    # the gold option is the score-1 text wherever the shuffle put it
    assert _bigbench_gold_texts(ex) == [
        "05/06/2005", "11/30/1999", "06/27/1976", "08/09/2009", "01/31/2012", "06/25/1990"
    ]
    assert len({e.answer for e in ex}) > 1  # not always "A"
    assert all(o[:3] == f"{'ABCDEF'[i]}) " for e in ex for i, o in enumerate(e.options))
    assert ex[3].meta["gold_position_in_file"] == 1
    # deterministic per seed and per example (independent of limit)
    again = load("date", "date_bigbench.json")
    assert [e.options for e in again] == [e.options for e in ex]
    assert [e.options for e in load("date", "date_bigbench.json", limit=3)] == [e.options for e in ex[:3]]
    other = load("date", "date_bigbench.json", seed=1)
    assert [e.options for e in other] != [e.options for e in ex]
    assert _bigbench_gold_texts(other) == _bigbench_gold_texts(ex)


# --------------------------------------------------------------------------- StrategyQA and splits


def test_strategyqa_paper_split():
    every = load("strategyqa", "strategyqa.json")
    train = load("strategyqa", "strategyqa.json", split="train")
    test = load("strategyqa", "strategyqa.json", split="test")
    assert len(every) == 5 and len(train) == 4 and len(test) == 1  # int(0.8 * 5) = 4
    assert [e.id for e in train + test] == [e.id for e in every]  # by file order
    assert [e.answer for e in every] == ["no", "yes", "no", "yes", "yes"]
    assert every[0].steps == ["Penguins cannot fly.", "The Moon is about 384,000 km away."]
    assert every[0].id == "inv0001" and every[0].meta["decomposition"][0] == "Can penguins fly?"
    assert load("strategyqa", "strategyqa.json", split="all") == every


def test_split_fractions():
    assert len(load("strategyqa", "strategyqa.json", split="train:0.6")) == 3
    assert len(load("strategyqa", "strategyqa.json", split="test:0.6")) == 2
    gsm_train = load("gsm8k", "gsm8k.jsonl", split="train:0.8")
    gsm_test = load("gsm8k", "gsm8k.jsonl", split="test:0.8")
    assert [e.answer for e in gsm_train] == ["31", "2730", "-5", "6"] and len(gsm_test) == 1
    assert parse_split(None, "gsm8k") == ("all", None)
    assert parse_split("test", "strategyqa") == ("test", 0.8)
    assert parse_split("train:0.9", "aqua") == ("train", 0.9)


@pytest.mark.parametrize("split", ["dev", "train:1.5", "train:0", "test:abc"])
def test_bad_split(split):
    with pytest.raises(DataError, match="split"):
        load("strategyqa", "strategyqa.json", split=split)


def test_bare_split_on_single_split_file():
    with pytest.raises(DataError, match="already one split"):
        load("gsm8k", "gsm8k.jsonl", split="test")


def test_limit():
    assert len(load("gsm8k", "gsm8k.jsonl", limit=2)) == 2
    assert load("gsm8k", "gsm8k.jsonl", limit=0) == []
    assert [e.id for e in load("strategyqa", "strategyqa.json", split="train", limit=2)] == ["inv0001", "inv0002"]


def test_strategyqa_eladsegal():
    ex = load("strategyqa", "strategyqa_eladsegal.json")
    assert [(e.id, e.answer) for e in ex] == [("el01", "yes"), ("el02", "no")]
    assert ex[1].steps is None  # empty facts


# --------------------------------------------------------------------------- other sources


def test_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pytest.importorskip("datasets")
    rows = [json.loads(line) for line in (FIX / "aqua.json").read_text().splitlines()]
    path = tmp_path / "aqua.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    ex = load_examples("aqua", path, split="train:0.5")
    assert [e.answer for e in ex] == ["B", "C"]
    native = load("aqua", "aqua.json", split="train:0.5")
    assert [(e.question, e.answer, e.options, e.steps) for e in ex] == [
        (e.question, e.answer, e.options, e.steps) for e in native
    ]
    assert ex[0].id == "aqua/aqua-0"


def test_hf_source_without_network(monkeypatch):
    datasets = pytest.importorskip("datasets")
    calls = []

    def fake_load_dataset(name, config=None, split=None):
        calls.append((name, config, split))
        return [{"question": "What is 2 + 3?", "answer": "2 + 3 = <<2+3=5>>5\n#### 5"}]

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    ex = load_examples("gsm8k", "hf:openai/gsm8k:main", split="test")
    assert calls == [("openai/gsm8k", "main", "test")]
    assert ex[0].answer == "5" and ex[0].steps == ["2 + 3 = 5"]
    with pytest.raises(DataError, match="needs split"):
        load_examples("gsm8k", "hf:openai/gsm8k:main")


# --------------------------------------------------------------------------- errors


def one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_malformed_line():
    with pytest.raises(DataError) as exc:
        load("gsm8k", "bad_malformed.jsonl")
    msg = one_line(exc)
    assert "bad_malformed.jsonl" in msg and "line 3" in msg and "JSON object per line" in msg


def test_missing_field():
    with pytest.raises(DataError) as exc:
        load("gsm8k", "bad_missing_field.jsonl")
    msg = one_line(exc)
    assert "bad_missing_field.jsonl" in msg and "line 2" in msg and "'answer'" in msg


def test_missing_field_in_array():
    with pytest.raises(DataError) as exc:
        load("strategyqa", "bad_strategyqa_missing_answer.json")
    msg = one_line(exc)
    assert "item 0" in msg and "'answer'" in msg


def test_empty_file():
    with pytest.raises(DataError, match="empty"):
        load("gsm8k", "empty.jsonl")


def test_unparsable_gold():
    with pytest.raises(DataError) as exc:
        load("gsm8k", "bad_gold.jsonl")
    msg = one_line(exc)
    assert "bad_gold.jsonl" in msg and "line 2" in msg and "'four'" in msg
    with pytest.raises(DataError, match=r"line 1: .*'#### <number>'"):
        load("gsm8k", "bad_no_final_line.jsonl")
    with pytest.raises(DataError, match=r"line 1: cannot parse the gold answer 'Z'"):
        load("aqua", "bad_aqua_gold.json")


def test_unknown_task_lists_known():
    with pytest.raises(DataError) as exc:
        load("mmlu", "gsm8k.jsonl")
    msg = one_line(exc)
    for task in ("aqua", "asdiv", "asdiv-aug", "date", "gsm8k", "miniworld", "strategyqa"):
        assert task in msg


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        load("gsm8k", "nope.jsonl")


def test_wrong_format_for_task():
    with pytest.raises(DataError, match="missing required field 'input'"):
        load("date", "gsm8k.jsonl")
    with pytest.raises(DataError, match="XML"):
        load("gsm8k", "ASDiv.xml")


def test_not_an_object(tmp_path):
    path = tmp_path / "list.jsonl"
    path.write_text('{"question": "q", "answer": "#### 1"}\n[1, 2]\n')
    with pytest.raises(DataError, match=r"line 2: expected a JSON object, got list"):
        load_examples("gsm8k", path)


# --------------------------------------------------------------------------- targets


def test_target_text():
    ex = load("gsm8k", "gsm8k.jsonl")[0]
    assert target_text(ex) == (
        "## Step 1: Mira bakes 3 * 12 = 36 muffins.\n"
        "## Step 2: She has 36 - 5 = 31 muffins left.\n"
        "The answer is \\boxed{31}."
    )
    date = load("date", "date_bbh.json")[0]
    assert target_text(date) == "The answer is \\boxed{B}."
    sqa = load("strategyqa", "strategyqa.json")[1]
    assert target_text(sqa).endswith("## Step 2: Many people drink it while it is hot.\nThe answer is \\boxed{yes}.")
    assert target_text(Example("x", "gsm8k", "q", "-2.5", steps=["", "  "])) == "The answer is \\boxed{-2.5}."


@pytest.mark.parametrize(
    "task, name",
    [
        ("gsm8k", "gsm8k.jsonl"),
        ("gsm8k", "gsm8k_socratic.jsonl"),
        ("asdiv-aug", "asdiv_aug.jsonl"),
        ("asdiv", "ASDiv.xml"),
        ("aqua", "aqua.json"),
        ("strategyqa", "strategyqa.json"),
        ("date", "date_bbh.json"),
        ("date", "date_bigbench.json"),
    ],
)
def test_target_round_trip(task, name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        examples = load(task, name)
    for ex in examples:
        for mode in ("default", "strict"):
            pred = extract_answer(target_text(ex), task, mode, options=ex.options)
            assert pred == ex.answer and is_correct(pred, ex.answer, task)


def test_broken_json_array(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('[\n  {"question": "q", "answer": true},\n  {"question": "r"\n')
    with pytest.raises(DataError, match=r"broken.json: line \d+: invalid JSON .*JSON array"):
        load_examples("strategyqa", path)


def test_binary_file(tmp_path):
    path = tmp_path / "bin.jsonl"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DataError, match="not UTF-8"):
        load_examples("gsm8k", path)

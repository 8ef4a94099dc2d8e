"""softcot's default scorer against lm-eval's GSM8K `flexible-extract`, on the same completions, offline.

lm-eval's own pieces do its side: the filter pipelines of its gsm8k.yaml (`flexible-extract`: the last
number; `strict-match`: the first "#### N"), built from lm-eval's filter registry, and its exact_match
metric with the yaml's options. softcot's side is `extract_answer(completion, task)` (default mode) and
`is_correct`. No model runs: only completions are read.

    python benchmarks/scorer_vs_lm_eval.py                                 # the numeric cases of tests/test_scoring.py
    python benchmarks/scorer_vs_lm_eval.py runs/eval/*/predictions.jsonl   # + the completions of evaluation runs

The reference answer of a test case is what the model means: the test's expected default reading
(None when the completion states no answer, and then a reader is right only when it reads nothing).
A predictions.jsonl row's reference is its "gold". Only numeric tasks are read (flexible-extract is a
number filter); choice and yes/no tests and files are skipped. Prints counts, then every
disagreement (softcot right and flexible-extract wrong, or the reverse), grouped by kind.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from softcot.scoring import cut_run_on, extract_answer, family_of, is_correct, normalize_number  # noqa: E402

FLEX, STRICT = "flexible-extract", "strict-match"


def lm_eval_gsm8k():
    """(filter name -> a function completion -> filtered answer, exact_match kwargs) from lm-eval's gsm8k.yaml."""
    import lm_eval
    from lm_eval.filters import get_filter

    cfg = yaml.safe_load((Path(lm_eval.__file__).parent / "tasks" / "gsm8k" / "gsm8k.yaml").read_text())

    def pipeline(steps):
        def run(completion: str) -> str:
            resps = [[completion]]  # one document, one response, as lm-eval hands them to its filters
            for step in steps:
                kwargs = {k: v for k, v in step.items() if k != "function"}
                resps = list(get_filter(step["function"])(**kwargs).apply(resps, [{}]))
            return resps[0]
        return run

    filters = {f["name"]: pipeline(f["filter"]) for f in cfg["filter_list"]}
    metric = next(m for m in cfg["metric_list"] if m["metric"] == "exact_match")
    em_kwargs = {k: v for k, v in metric.items() if k not in ("metric", "aggregation", "higher_is_better")}
    return filters, em_kwargs, lm_eval.__version__


def test_cases() -> list[dict]:
    """The numeric completions of tests/test_scoring.py with the reading each test expects."""
    spec = importlib.util.spec_from_file_location("test_scoring", ROOT / "tests" / "test_scoring.py")
    t = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(t)
    rows = [(c, d) for c, d, *_ in t.NUMERIC] + [(c, d) for c, d, _ in t.THOUSANDS + t.CALCULATIONS]
    rows += [(c, d) for c, task, d, *_ in t.RUN_ON if family_of(task) == "numeric"]
    return [{"source": "tests/test_scoring.py", "completion": c, "gold": MEANT.get(c, d), "task": "gsm8k"}
            for c, d in rows]


# Test rows whose expected reading records the scorer's behaviour rather than what the model means.
MEANT = {
    r"\boxed{3{,}5}": "3.5",  # a decimal comma
    "The answer is 1 234.": "1234",  # a space between digit groups
    "The answer is 10 / 0.": None,  # no number
}


def prediction_rows(path: Path) -> list[dict]:
    """The rows of one predictions.jsonl, with the task from the row or the run's metrics.json."""
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    metrics = path.with_name("metrics.json")
    task = json.loads(metrics.read_text()).get("task") if metrics.is_file() else None
    out = []
    for r in rows:
        t = r.get("task", task) or "gsm8k"
        if family_of(t) == "numeric":
            out.append({"source": str(path), "completion": r["completion"], "gold": r["gold"], "task": t})
    if not out:
        print(f"skipped {path}: no numeric rows", file=sys.stderr)
    return out


_GROUP_SEP = re.compile(r"\d(?:\{,\}|\\[,!;: ]|[\u2009\u202f\u00a0])\d")  # LaTeX {,} \, \! ..., thin spaces


def kind_of(row: dict, flex_on_cut: bool) -> str:
    """Why softcot and flexible-extract disagree on one row (checked in this order)."""
    c, f, gold = row["completion"], row[FLEX], row["gold"]
    if flex_on_cut:
        return "run-on question: flexible-extract reads the answer to the model's own next question"
    if f == "[invalid]":
        return "flexible-extract finds no number"
    if gold is None:
        if re.search(r"\d+/\d+/\d+", c):
            return "no number stated (a date): flexible-extract reads the date's last part"
        return "no number stated: flexible-extract reads one anyway"
    if _GROUP_SEP.search(c):
        return "LaTeX / thin-space digit groups (1{,}234): flexible-extract reads the last group"
    f_num = normalize_number(f.rstrip("."))
    if f_num is not None and normalize_number(gold) == f_num:
        return "same number, different text: exact_match compares strings (10.0 vs 10, 0.50 vs 0.5)"
    if re.search(r"\d/\d|\\d?frac", c) and not re.search(r"\d\s*/\s*\d", f):
        return "a fraction (3/4, \\frac{3}{4}): flexible-extract reads its denominator"
    if re.search(r"\d-\d", c) and f.startswith("-"):
        return "a hyphen between numbers (5-3 dollars, a range 5-7): flexible-extract reads a negative number"
    if re.search(r"\d\s+x\s+\d", c):
        return "a size (4 x 3 feet): softcot reads the first number, flexible-extract the last"
    literal = {normalize_number(x) for x in re.findall(r"\d[\d,]*(?:\.\d+)?|\.\d+", c)}
    if row["softcot"] is not None and row["softcot"] not in literal:
        return "a bare expression (12 + 6): softcot works it out, flexible-extract reads its last operand"
    if row["softcot"] is not None:
        return "flexible-extract takes the last number; the stated answer comes before it (a remark, a check)"
    return "other"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("predictions", nargs="*", type=Path, help="predictions.jsonl files of `softcot eval` runs")
    ap.add_argument("--no-tests", action="store_true", help="leave out the cases of tests/test_scoring.py")
    args = ap.parse_args()
    filters, em_kwargs, version = lm_eval_gsm8k()
    from lm_eval.api.metrics import exact_match_hf_evaluate

    def lm_right(pred: str, gold) -> bool:
        if gold is None:
            return pred == "[invalid]"
        return bool(exact_match_hf_evaluate(predictions=[pred], references=[str(gold)], **em_kwargs)["exact_match"])

    rows = ([] if args.no_tests else test_cases()) + [r for p in args.predictions for r in prediction_rows(p)]
    for r in rows:
        r["softcot"] = extract_answer(r["completion"], r["task"])
        gold = r["gold"]
        r["softcot_right"] = r["softcot"] is None if gold is None else is_correct(r["softcot"], gold, r["task"])
        for name, run in filters.items():
            r[name] = run(r["completion"])
            r[f"{name}_right"] = lm_right(r[name], r["gold"])

    print(f"lm-eval {version}, gsm8k.yaml filters; exact_match {em_kwargs}\n")
    print("| source | n | softcot default right | flexible-extract right | strict-match right | agree | disagree |")
    print("|---|---|---|---|---|---|---|")
    by_source = defaultdict(list)
    for r in rows:
        by_source[r["source"]].append(r)
    for src, rs in by_source.items():
        dis = sum(r["softcot_right"] != r[f"{FLEX}_right"] for r in rs)
        print(f"| {src} | {len(rs)} | {sum(r['softcot_right'] for r in rs)} | {sum(r[f'{FLEX}_right'] for r in rs)} | "
              f"{sum(r[f'{STRICT}_right'] for r in rs)} | {len(rs) - dis} | {dis} |")

    kinds = defaultdict(list)
    for r in rows:
        if r["softcot_right"] != r[f"{FLEX}_right"]:
            on_cut = lm_right(filters[FLEX](cut_run_on(r["completion"])), r["gold"]) == r["softcot_right"]
            kinds[kind_of(r, on_cut and cut_run_on(r["completion"]) != r["completion"])].append(r)
    total = sum(map(len, kinds.values()))
    print(f"\n{total} disagreements between softcot's default scorer and flexible-extract, by kind:")
    for kind, rs in sorted(kinds.items(), key=lambda kv: -len(kv[1])):
        print(f"\n### {kind} ({len(rs)})\n")
        print("| gold (meant) | softcot | flexible-extract | who is right | completion |")
        print("|---|---|---|---|---|")
        for r in rs:
            who = "softcot" if r["softcot_right"] else "flexible-extract"
            print(f"| {r['gold']} | {r['softcot']} | {r[FLEX]} | {who} | {_cell(r['completion'])} |")
    both = [r for r in rows if not r["softcot_right"] and not r[f"{FLEX}_right"]]
    same = [r for r in both if r["softcot"] is not None and normalize_number(r[FLEX].rstrip(".")) == r["softcot"]]
    both = [r for r in both if r not in same]
    print(f"\n{len(same)} rows where both read the same wrong answer (the model's own mistake); "
          f"{len(both)} where both are wrong and read different answers:\n")
    print("| gold (meant) | softcot | flexible-extract | completion |\n|---|---|---|---|")
    for r in both:
        print(f"| {r['gold']} | {r['softcot']} | {r[FLEX]} | {_cell(r['completion'])} |")


def _cell(text: str) -> str:
    """A completion as one markdown table cell: its end when long, newlines escaped, | hidden."""
    text = text if len(text) <= 90 else "..." + text[-87:]
    return json.dumps(text)[1:-1].replace("|", "&#124;")


if __name__ == "__main__":
    main()

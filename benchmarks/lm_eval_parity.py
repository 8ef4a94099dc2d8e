"""softcot's scorer against lm-eval's GSM8K filters, on the same completions.

lm-eval's own GSM8K task (gsm8k.yaml: its filters `strict-match` = "#### N", `flexible-extract` = the
last number, and its exact_match metric) is run with the `softcot` model on local GSM8K-format files,
with the question alone as the prompt (softcot's own prompt, as `softcot eval` builds it), greedy.
Every completion is then also scored by softcot's default scorer; the script prints accuracy under
the three and every disagreement, grouped by kind.

    python benchmarks/lm_eval_parity.py                       # the mini world's test split + the fixtures
    python benchmarks/lm_eval_parity.py --model-args checkpoint=runs/demo/softcot/train-seed-42/ckpt
                                                              # another model: any model_args, here the
                                                              # demo's SoftCoT (`softcot demo`, training seed 42)

    python benchmarks/lm_eval_parity.py --vs-hf               # lm-eval's own `hf` model against `softcot`
                                                              # with prompt=task, on GSM8K's own prompt,
                                                              # without and with --apply_chat_template

--vs-hf runs lm-eval's gsm8k.yaml unchanged ("Question: ...\nAnswer:", `--num-fewshot` examples from
the same file) with `--model hf --model_args pretrained=LLM` and with `--model softcot --model_args
method=zero-shot-cot,llm=LLM,prompt=task`, greedy, and counts identical completions and compares
the metrics, once with the raw context and once with --apply_chat_template --fewshot_as_multiturn.

Needs the lm-eval extra. Writes OUT/parity.json and OUT/parity.md (default runs/lm_eval_parity),
or OUT/vs_hf.json and OUT/vs_hf.md.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from softcot.miniworld import DATA_DIR, LLM_DIR  # noqa: E402
from softcot.scoring import extract_answer, is_correct, normalize_number  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "lm_eval" / "gsm8k.jsonl"
FILTERS = ("strict-match", "flexible-extract")


def kind_of(completion: str, softcot_pred, ok_softcot: bool, lm_pred: str, ok_lm: bool, flt: str) -> str:
    """A short name for why the two scorers disagree on one completion."""
    if lm_pred == "[invalid]":
        if "####" not in completion and flt == "strict-match":
            return "no '#### N' in the completion (the answer is in \\boxed{}); strict-match finds nothing"
        return "lm-eval's regex finds no number"
    lm_num = normalize_number(lm_pred.strip().rstrip("."))
    if softcot_pred is not None and lm_num is not None and normalize_number(softcot_pred) == lm_num:
        return "same number, different text: lm-eval compares strings after its regexes_to_ignore"
    if flt == "flexible-extract" and softcot_pred is not None:
        return "different number: flexible-extract takes the last number, softcot the \\boxed{} answer"
    return f"different number ({flt})"


def score_file(name: str, data: Path, model_args: str, out: Path, max_gen_toks: int, batch_size: int) -> dict:
    import lm_eval
    from lm_eval.tasks import TaskManager

    from softcot.harness import register
    from softcot.harness.tasks import write_local_task

    register()
    tasks = out / "tasks"
    write_local_task(tasks, f"parity_{name}", "gsm8k/gsm8k.yaml", {"test": data}, doc_to_text="{{question}}")
    res = lm_eval.simple_evaluate(model="softcot", model_args=f"{model_args},batch_size={batch_size},device=auto",
                                  tasks=[f"parity_{name}"], task_manager=TaskManager(include_path=str(tasks),
                                                                                     include_defaults=False),
                                  num_fewshot=0, log_samples=True, gen_kwargs={"max_gen_toks": max_gen_toks},
                                  bootstrap_iters=0)
    golds = [re.search(r"####\s*(.*)$", json.loads(x)["answer"].strip()).group(1)
             for x in data.read_text().splitlines() if x.strip()]
    rows: dict[int, dict] = {}
    for s in res["samples"][f"parity_{name}"]:
        r = rows.setdefault(s["doc_id"], {"doc_id": s["doc_id"], "gold": golds[s["doc_id"]],
                                          "completion": s["resps"][0][0]})
        r[s["filter"]] = {"pred": s["filtered_resps"][0], "correct": bool(s["exact_match"])}
    for r in rows.values():
        r["softcot"] = {"pred": extract_answer(r["completion"], "gsm8k")}
        r["softcot"]["correct"] = is_correct(r["softcot"]["pred"], r["gold"], "gsm8k")
    n = len(rows)
    summary = {"n": n, "accuracy": {k: 100.0 * sum(r[k]["correct"] for r in rows.values()) / n
                                     for k in ("softcot", *FILTERS)}}
    disagreements = []
    for r in sorted(rows.values(), key=lambda r: r["doc_id"]):
        for flt in FILTERS:
            if r[flt]["correct"] != r["softcot"]["correct"]:
                disagreements.append({"doc_id": r["doc_id"], "filter": flt, "gold": r["gold"],
                                      "softcot": r["softcot"]["pred"], "lm_eval": r[flt]["pred"],
                                      "softcot_correct": r["softcot"]["correct"],
                                      "kind": kind_of(r["completion"], r["softcot"]["pred"], r["softcot"]["correct"],
                                                      r[flt]["pred"], r[flt]["correct"], flt),
                                      "completion_tail": r["completion"][-120:]})
    summary["disagreements"] = disagreements
    summary["kinds"] = Counter(f"{d['filter']}: {d['kind']} (softcot {'right' if d['softcot_correct'] else 'wrong'})"
                               for d in disagreements)
    summary["rows"] = [rows[i] for i in sorted(rows)]
    return summary


def vs_hf(name: str, data: Path, llm: str, out: Path, num_fewshot: int, batch_size: int, limit: int | None) -> dict:
    """lm-eval's hf model vs softcot's prompt=task on gsm8k.yaml's own prompt, both chat settings."""
    import lm_eval
    import torch
    from lm_eval.tasks import TaskManager

    from softcot.harness import register
    from softcot.harness.tasks import write_local_task

    register()
    tasks, task = out / "tasks", f"vs_hf_{name}"
    write_local_task(tasks, task, "gsm8k/gsm8k.yaml", {"test": data, "train": data})
    tm = TaskManager(include_path=str(tasks), include_defaults=False)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    report = {}
    for chat in (False, True):
        res = {}
        for model, margs in (("hf", f"pretrained={llm}"), ("softcot", f"method=zero-shot-cot,llm={llm},prompt=task")):
            res[model] = lm_eval.simple_evaluate(
                model=model, model_args=margs, tasks=[task], task_manager=tm, num_fewshot=num_fewshot,
                apply_chat_template=chat, fewshot_as_multiturn=chat and num_fewshot > 0, log_samples=True,
                bootstrap_iters=0, batch_size=batch_size, device=device, limit=limit)
        comps = {m: {s["doc_id"]: s["resps"][0][0] for s in r["samples"][task]} for m, r in res.items()}
        metrics = {m: {k: float(v) for k, v in r["results"][task].items() if k.startswith("exact_match,")}
                   for m, r in res.items()}
        report["apply_chat_template" if chat else "raw context"] = {
            "n": len(comps["hf"]), "identical": sum(comps["hf"][d] == comps["softcot"].get(d) for d in comps["hf"]),
            "metrics": metrics, "first_difference": next(({"doc_id": d, "hf": c, "softcot": comps["softcot"].get(d)}
                                                          for d, c in comps["hf"].items() if c != comps["softcot"].get(d)), None)}
    return report


def main_vs_hf(args, out: Path) -> None:
    llm = args.llm or str(LLM_DIR)
    report = {name: vs_hf(name, path, llm, out, args.num_fewshot, args.batch_size, args.limit)
              for name, path in (("miniworld_test", DATA_DIR / "test.jsonl"), ("gsm8k_fixture", FIXTURE))}
    lines = [f"lm-eval's hf vs softcot prompt=task (method=zero-shot-cot), llm={llm}, num_fewshot={args.num_fewshot}",
             "| data | setting | n | identical completions | hf strict / flexible | softcot strict / flexible |",
             "|---|---|---|---|---|---|"]
    for name, r in report.items():
        for setting, x in r.items():
            h, s = x["metrics"]["hf"], x["metrics"]["softcot"]
            lines.append(f"| {name} | {setting} | {x['n']} | {x['identical']} | "
                         f"{100 * h['exact_match,strict-match']:.2f} / {100 * h['exact_match,flexible-extract']:.2f} | "
                         f"{100 * s['exact_match,strict-match']:.2f} / {100 * s['exact_match,flexible-extract']:.2f} |")
    text = "\n".join(lines)
    print(text)
    (out / "vs_hf.md").write_text(text + "\n")
    (out / "vs_hf.json").write_text(json.dumps(report, indent=1, default=str))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-args", default=f"method=zero-shot-cot,llm={LLM_DIR},task=miniworld",
                    help="the softcot lm-eval model's model_args (default: zero-shot CoT with the mini LLM)")
    ap.add_argument("--max-gen-toks", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--out", default="runs/lm_eval_parity")
    ap.add_argument("--vs-hf", action="store_true", help="compare with lm-eval's own hf model (prompt=task)")
    ap.add_argument("--llm", default="", help="--vs-hf: the LLM (default: the mini LLM)")
    ap.add_argument("--num-fewshot", type=int, default=0, help="--vs-hf: few-shot examples (default 0)")
    ap.add_argument("--limit", type=int, default=None, help="--vs-hf: questions per file (default: all)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.vs_hf:
        return main_vs_hf(args, out)
    report = {name: score_file(name, path, args.model_args, out, args.max_gen_toks, args.batch_size)
              for name, path in (("miniworld_test", DATA_DIR / "test.jsonl"), ("gsm8k_fixture", FIXTURE))}
    lines = ["| data | n | softcot scorer | lm-eval strict-match | lm-eval flexible-extract |", "|---|---|---|---|---|"]
    for name, s in report.items():
        a = s["accuracy"]
        lines.append(f"| {name} | {s['n']} | {a['softcot']:.2f} | {a['strict-match']:.2f} | {a['flexible-extract']:.2f} |")
    for name, s in report.items():
        lines.append(f"\n{name}: {len(s['disagreements'])} disagreements")
        lines += [f"  {c:4d}  {k}" for k, c in s["kinds"].most_common()]
        for d in s["disagreements"]:
            lines.append(f"    doc {d['doc_id']:3d} {d['filter']:16s} gold {d['gold']:>8s} softcot {d['softcot']!s:>8s} "
                         f"lm-eval {d['lm_eval']!s:>10s}  ...{d['completion_tail'][-60:]!r}")
    text = "\n".join(lines)
    print(text)
    (out / "parity.md").write_text(text + "\n")
    (out / "parity.json").write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()

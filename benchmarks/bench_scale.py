"""Scale-out benchmark: training and evaluation examples/s at 1 and 2 processes (accelerate), on
the mini world, printed as ratios measured in this one run.

    python benchmarks/bench_scale.py [--train-examples 512] [--eval-examples 64] [--out runs/bench]

Each configuration is a real `softcot train` / `softcot eval` command (1 process: plain python;
2 processes: `accelerate launch --multi_gpu --num_processes 2`, gloo on CPU). Throughput is taken
from the run's own loop timing (metrics.jsonl `elapsed_s`, metrics.json `wall_time_s`), so
process start-up and model loading are left out. Rows: 1 process x 1 thread, 1 process x 2
threads (the whole machine, the fair baseline on 2 cores) and 2 processes x 1 thread. Training
uses the same global batch in every row (batch 16 x grad_accum 2), so all rows do the same math.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from harness import machine, write_results  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args: list, procs: int, threads: int) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": str(ROOT)}
    head = [sys.executable] if procs == 1 else [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
                                                  "--num_processes", str(procs), "--num_machines", "1",
                                                  "--mixed_precision", "no", "--dynamo_backend", "no",
                                                  "--main_process_port", str(free_port())]
    cmd = [*head, "-m", "softcot.cli", "-q", *map(str, args), "--threads", str(threads)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{p.stderr[-3000:]}")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train-examples", type=int, default=512)
    ap.add_argument("--eval-examples", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--out", default="runs/bench")
    args = ap.parse_args(argv)
    from softcot.miniworld import ASSISTANT_DIR, DATA_DIR, LLM_DIR

    rows = [(1, 1), (1, 2), (2, 1)]  # (processes, threads per process)
    results: dict = {"train": {}, "eval": {}}
    t_start = time.time()
    with tempfile.TemporaryDirectory(prefix="bench_scale.") as tmp:
        for procs, threads in rows:
            key = f"{procs}proc_x{threads}thr"
            out = Path(tmp) / f"train-{key}"
            run(["train", "--assistant", ASSISTANT_DIR, "--llm", LLM_DIR, "--task", "miniworld",
                 "--train-file", DATA_DIR / "train.jsonl", "--limit", args.train_examples, "--dev-fraction", 0,
                 "--output-dir", out, "--epochs", 1, "--batch-size", 16, "--grad-accum", 2, "--lr", 3e-3,
                 "--train-n-thoughts", 4, "--no-bf16", "--device", "cpu"], procs, threads)
            last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
            n = args.train_examples
            results["train"][key] = {"processes": procs, "threads": threads, "examples": n,
                                     "loop_s": last["elapsed_s"], "examples_per_s": n / last["elapsed_s"],
                                     "final_loss": last["loss"]}
            ev = Path(tmp) / f"eval-{key}"
            run(["eval", "--method", "zero-shot-cot", "--llm", LLM_DIR, "--task", "miniworld",
                 "--data-file", DATA_DIR / "test.jsonl", "--limit", args.eval_examples, "--output-dir", ev,
                 "--max-new-tokens", args.new_tokens, "--min-new-tokens", args.new_tokens, "--seeds", "41",
                 "--batch-size", 16, "--device", "cpu"], procs, threads)
            m = json.loads((ev / "metrics.json").read_text())
            results["eval"][key] = {"processes": procs, "threads": threads, "examples": m["n_examples"],
                                    "loop_s": m["wall_time_s"], "examples_per_s": m["n_examples"] / m["wall_time_s"],
                                    "accuracy": m["accuracy_mean"]}
        shutil.rmtree(tmp, ignore_errors=True)
    for kind in ("train", "eval"):
        base = results[kind]["1proc_x1thr"]["examples_per_s"]
        for r in results[kind].values():
            r["speedup_vs_1proc_1thr"] = r["examples_per_s"] / base
    results["train_loss_equal"] = len({round(r["final_loss"], 5) for r in results["train"].values()}) == 1
    note = (f"training: {args.train_examples} mini-world examples, 1 epoch, global batch 32 (16 x grad_accum 2), fp32; "
            f"evaluation: zero-shot CoT, {args.eval_examples} test questions, {args.new_tokens} forced tokens, batch 16; "
            "loop time only (no start-up, no model loading)")
    table = {"caption": "examples/s by processes x threads per process",
             "columns": ["workload", "processes x threads", "loop s", "examples/s", "speed-up vs 1 x 1"],
             "rows": [[kind, f"{r['processes']} x {r['threads']}", r["loop_s"], r["examples_per_s"],
                       r["speedup_vs_1proc_1thr"]] for kind in ("train", "eval") for r in results[kind].values()]}
    notes = [note, f"final training loss identical in every row: {results['train_loss_equal']}"]
    report = {"title": "softcot scale-out benchmark", "machine": machine(),
              "command": "python " + " ".join(sys.argv), "wall_time_s": round(time.time() - t_start, 1),
              "benchmarks": {"bench_scale": {"notes": notes, "tables": [table], "results": results}}}
    _, md = write_results(args.out, "bench_scale", report)
    print(md.read_text())
    return results


if __name__ == "__main__":
    main()

"""Evaluation wall time over 100 examples at batch 1 vs batch 16 (one run, on demand).

    python benchmarks/bench_eval.py [--examples 100] [--new-tokens 64] [--threads 1]

Random SoftCoT model of the core benchmark's sizes (benchmarks/bench_core.py), the full
`softcot.evaluate.evaluate` loop (generation, extraction, scoring, predictions.jsonl), greedy
decoding with a forced number of new tokens so both batch sizes do the same work.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_core  # noqa: E402

from softcot.config import DecodingConfig  # noqa: E402
from softcot.evaluate import EvalConfig, evaluate  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--examples", type=int, default=100)
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    soft, _ = bench_core.build(argparse.Namespace(llm_hidden=256, llm_layers=4, tokenizers="bpe"), args.device)
    examples = bench_core.questions(args.examples)
    dec = DecodingConfig(max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens)
    times = {}
    for bs in (1, 16):
        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter()
            evaluate(soft, examples, EvalConfig(task="gsm8k", output_dir=d, seeds=[41], batch_size=bs), dec)
            times[bs] = time.perf_counter() - t
    print(f"eval of {args.examples} examples, {args.new_tokens} new tokens each, device {args.device}:")
    print(f"  batch 1:  {times[1]:.1f} s\n  batch 16: {times[16]:.1f} s\n  speed-up x{times[1] / times[16]:.1f}")


if __name__ == "__main__":
    main()

"""Evaluation throughput, batch 1 vs batch 16, of the full `softcot.evaluate.evaluate` loop.

    python benchmarks/bench_eval.py [--examples 32] [--new-tokens 32] [--threads 1] [--out runs/bench]

SoftCoT (random projection) on the mini world's shipped LLM + assistant, mini-world test
questions, greedy decoding forced to --new-tokens (min = max) so both batch sizes do the same
work: generation, extraction, scoring, predictions.jsonl. Every call writes into a fresh folder
(evaluate resumes from an existing one). The generated ids are counted at `model.generate`
itself and must total examples x new tokens, with no stop id. Ratio: examples/s at batch 16
over examples/s at batch 1, paired per repeat.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_core  # noqa: E402
from harness import paired_ratio, set_threads, spread, write_results  # noqa: E402

from softcot.config import DecodingConfig  # noqa: E402
import softcot.evaluate as evaluate_module  # noqa: E402
from softcot.evaluate import EvalConfig, evaluate  # noqa: E402


class CountingGenerate:
    """Wraps model.generate on the instance: checks each call's ids (T per row, no stop id)."""

    def __init__(self, model, new_tokens: int, stop_ids: list[int]) -> None:
        self.model, self.orig, self.T, self.stop_ids, self.ids = model, model.generate, new_tokens, stop_ids, 0

    def __call__(self, *args, **kwargs) -> torch.Tensor:
        out = self.orig(*args, **kwargs)
        bench_core.verify_ids(out, out.shape[0], self.T, self.stop_ids)
        self.ids += out.numel()
        return out

    def __enter__(self) -> "CountingGenerate":
        self.model.generate = self
        return self

    def __exit__(self, *exc) -> None:
        del self.model.generate  # back to the class method


def eval_once(method, examples, batch: int, dec: DecodingConfig, counter: CountingGenerate,
              seeds: tuple[int, ...] = (41,), reuse_thoughts: bool = True, prefix_cache: bool = True) -> None:
    """One full evaluate() into a fresh folder; reuse_thoughts=False recomputes the assistant's
    thoughts under every seed (evaluate's thought cache replaced by None for this call)."""
    d = tempfile.mkdtemp(prefix="softcot-bench-eval-")
    cache_cls = evaluate_module.ThoughtCache
    try:
        before = counter.ids
        if not reuse_thoughts:
            evaluate_module.ThoughtCache = lambda assistant: None
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # table, tqdm
            evaluate(method, examples, EvalConfig(task="miniworld", output_dir=d, seeds=list(seeds), batch_size=batch,
                                                 prefix_cache=prefix_cache), dec)
        want = len(examples) * dec.max_new_tokens * (len(seeds) if dec.do_sample else 1)
        if counter.ids - before != want:
            raise AssertionError(f"{counter.ids - before} ids generated, expected {want}")
    finally:
        evaluate_module.ThoughtCache = cache_cls
        shutil.rmtree(d, ignore_errors=True)


def multi_seed(soft, plain, examples, T: int, counter: CountingGenerate, args) -> dict:
    """SoftCoT's overhead in the paper's protocol: evaluate() with sampling under several seeds
    (batch 16) against zero-shot CoT, with the assistant's thoughts reused across seeds or not."""
    seeds = tuple(range(41, 41 + args.seeds))
    dec = DecodingConfig(max_new_tokens=T, min_new_tokens=T, do_sample=True, temperature=1.0)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else None
    run_plain = lambda: eval_once(plain, examples, 16, dec, counter, seeds)  # noqa: E731
    rows = []
    for label, reuse in (("thoughts reused across seeds (default)", True), ("thoughts recomputed per seed", False)):
        r = paired_ratio(lambda: eval_once(soft, examples, 16, dec, counter, seeds, reuse), run_plain,
                         repeats=args.repeats, sync=sync, sides=("softcot", "plain"))
        rows.append([label, r["a_median_s"], r["b_median_s"], r["ratio_median"], spread(r)])
    return {"caption": f"evaluate(), {len(seeds)} sampled seeds, batch 16: SoftCoT vs zero-shot CoT wall time",
            "columns": ["SoftCoT", "SoftCoT s", "plain s", "ratio (median)", "ratio min-max"], "rows": rows}


def configurations(device: str) -> list[tuple[str, str]]:
    """(dtype, attention) pairs to measure: the default, and bf16 + eager where bf16 is native."""
    from softcot.utils import autocast_bf16_ok

    return [("float32", "auto")] + ([("bfloat16", "eager")] if autocast_bf16_ok(device) else [])


PREFIX = {True: "prefix reused (default)", False: "no prefix reuse"}


def run(args: argparse.Namespace) -> dict:
    n, T = (16, 16) if args.quick else (args.examples, args.new_tokens)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else None
    examples = bench_core.questions(n)
    dec = DecodingConfig(max_new_tokens=T, min_new_tokens=T)
    rows, res, ids = [], {}, 0
    for dtype, attn in configurations(args.device):
        soft, plain = bench_core.build("miniworld", args.device, dtype=dtype, attn=attn)
        with CountingGenerate(soft.llm.model, T, soft.llm.stop_ids) as counter:
            for prefix in (True, False):
                r = paired_ratio(lambda: eval_once(soft, examples, 1, dec, counter, prefix_cache=prefix),
                                 lambda: eval_once(soft, examples, 16, dec, counter, prefix_cache=prefix),
                                 repeats=args.repeats, sync=sync, sides=("batch1", "batch16"))
                eps1, eps16 = n / r["a_median_s"], n / r["b_median_s"]
                res[f"{dtype}_{attn}" + ("" if prefix else "_no_prefix")] = {
                    "examples_per_s_batch1": eps1, "examples_per_s_batch16": eps16, **r}
                rows.append([f"{dtype}, attention {attn}, {PREFIX[prefix]}", r["a_median_s"], r["b_median_s"], eps1, eps16,
                             r["ratio_median"], spread(r)])
            if len(rows) == 2:  # SoftCoT's multi-seed overhead, on the default configuration
                seeds_table = multi_seed(soft, plain, examples, T, counter, args)
        ids += counter.ids
    default = res["float32_auto"]
    return {
        "examples": n, "new_tokens": T, "device": args.device, "verified_ids": ids, "configurations": res,
        "examples_per_s_batch1": default["examples_per_s_batch1"], "examples_per_s_batch16": default["examples_per_s_batch16"],
        "ratio_median": default["ratio_median"],
        "notes": [f"SoftCoT (4 thoughts, random projection) on the mini world models, {n} test questions, {T} forced new tokens",
                  f"all {ids} generated ids counted at model.generate: {T} per row, no stop id",
                  f"ratio = batch-1 time / batch-16 time = examples/s at 16 over examples/s at 1; "
                  f"median of {args.repeats} paired repeats after 1 warm-up round",
                  "frozen LMs loaded with `--dtype` / `--attn-implementation` as in each row (auto = sdpa); "
                  "bf16 rows only where bf16 is native (CUDA, AVX512-BF16/AMX CPUs)"],
        "tables": [{"caption": "Full evaluate() loop throughput",
                    "columns": ["frozen LMs", "batch 1 s", "batch 16 s", "batch 1 ex/s", "batch 16 ex/s",
                                "speed-up (median)", "speed-up min-max"],
                    "rows": rows},
                   seeds_table],
    }


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--examples", type=int, default=32)
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--seeds", type=int, default=3, help="sampled seeds of the multi-seed overhead table")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_args(p)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default="", help="folder for eval.json + eval.md")
    args = p.parse_args()
    set_threads(args.threads)
    from harness import machine, markdown

    res = {"title": "Evaluation benchmark", "machine": machine(args.device), "benchmarks": {"eval": run(args)}}
    print(markdown(res))
    if args.out:
        write_results(args.out, "eval", res)


if __name__ == "__main__":
    main()

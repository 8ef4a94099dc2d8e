"""SoftCoT's generation against the sum of its parts, per thought block, on the mini world's models.

    python benchmarks/bench_parts.py                        # T=128 (and 32), batch 16 and 64, 1 thread
    python benchmarks/bench_parts.py --tokens 128 --batches 16,64 --repeats 7 --out runs/bench

SoftCoT's unavoidable work is plain generation of the question's prompt plus one pass of the
frozen assistant over its own prompt (which yields the soft thoughts). Everything beyond that is
overhead: the projection, the splice, and the LLM prompt tokens the thought block adds (its
preamble sentence, markers and the N slots). Each row times, alternating within every repeat
(harness.paired_ratio), SoftCoT's generation against [one assistant pass + plain zero-shot CoT
generation of the same questions], T forced new tokens (verified on the ids), prompt-prefix reuse
on for both sides (as in `softcot eval`). Ratio = SoftCoT / parts (median over repeats, min-max).
Prompt tokens per block are printed beside it: the LLM reads the question prompt plus the block.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import build, generate_ids, prime, prompt_tokens, questions, soft_variant  # noqa: E402
from harness import machine, markdown, paired_ratio, set_threads, spread, write_results  # noqa: E402

BLOCKS = ("preamble", "markers", "slots")


def assistant_pass(soft, examples, n: int = 4) -> torch.Tensor:
    """The one assistant pass SoftCoT needs: its prompt + N slots -> [B, N, d_assistant] thoughts."""
    with torch.inference_mode():
        return soft.assistant.soft_thoughts(examples, n)


def run(args) -> dict:
    batches = [int(x) for x in args.batches.split(",")]
    token_counts = [int(x) for x in args.tokens.split(",")]
    _, plain = build("miniworld", "cpu")
    shared = _.shared_models
    softs = {b: soft_variant(shared, "cpu", b) for b in BLOCKS}
    exs = questions(max(batches))
    rows, raw = [], {}
    with contextlib.ExitStack() as reuse:
        for m in (plain, *softs.values()):
            reuse.enter_context(m.reusing_prefix())
            prime(m)
        for T in token_counts:
            for bs in batches:
                ex = exs[:bs]
                parts = lambda ex=ex, T=T: (assistant_pass(softs["slots"], ex), generate_ids(plain, ex, T))  # noqa: E731
                for block, soft in softs.items():
                    r = paired_ratio(lambda s=soft, ex=ex, T=T: generate_ids(s, ex, T), parts, repeats=args.repeats,
                                     sides=(f"softcot[{block}]", "parts"))
                    raw[f"T{T}_b{bs}_{block}"] = r
                    rows.append([T, bs, block, f"{prompt_tokens(soft, ex)['mean']:.1f}", f"{prompt_tokens(plain, ex)['mean']:.1f}",
                                 f"{r['a_median_s']:.3f}", f"{r['b_median_s']:.3f}", f"{r['ratio_median']:.3f}", spread(r)])
    table = {"caption": "SoftCoT generation / (one assistant pass + plain generation), mini world models, forced new tokens",
             "columns": ["new tokens", "batch", "thought block", "SoftCoT prompt tokens", "plain prompt tokens",
                         "SoftCoT s", "parts s", "ratio (median)", "ratio min-max"], "rows": rows}
    return {"results": raw, "tables": [table],
            "notes": [f"median of {args.repeats} paired repeats after 1 warm-up round; {torch.get_num_threads()} thread(s)"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokens", default="128,32")
    ap.add_argument("--batches", default="16,64")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    set_threads(args.threads)
    res = {"title": "SoftCoT vs its parts", "machine": machine(), "benchmarks": {"parts": run(args)}}
    print(markdown(res))
    if args.out:
        write_results(args.out, "parts", res)


if __name__ == "__main__":
    main()

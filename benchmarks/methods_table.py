"""Every registered method on the tiny random model pair (built in-process, as in tests/tiny.py):
trainable / total parameters, mean training-step time, generation time per 100 questions.

    python benchmarks/methods_table.py --out runs/methods_table.json

Training step: loss + backward + AdamW step at batch 4 with 32 thoughts (the paper's training
N), mean over --steps steps after one warm-up step (SoftCoT's cached assistant thoughts are
then warm: the steady state of epochs 2+). Generation: greedy, exactly --max-new-tokens new
tokens (min = max), batch 16, 4 thoughts; seconds for 100 questions, scaled from
--gen-examples. SoftCoT++ runs its K chains (K completions per question); Coconut runs at its
last curriculum stage (coconut_max_stages * c continuous thoughts). Timings on tiny random
models measure the methods' overheads (extra passes, chains, thought loops), not real speed.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from softcot.config import DecodingConfig, SoftCoTConfig, from_dict  # noqa: E402
from softcot.data import Example  # noqa: E402
from softcot.methods import METHODS, build_method  # noqa: E402
from tests.tiny import save_pair  # noqa: E402


def questions(n: int) -> list[Example]:
    return [
        Example(id=f"b{i}", task="gsm8k", question=f"Kim has {i} cats and {i + 3} dogs. How many pets does Kim have?",
                answer=str(2 * i + 3), steps=[f"Cats: {i}.", f"Dogs: {i + 3}.", f"{i} + {i + 3} = {2 * i + 3}"])
        for i in range(n)
    ]


def train_step_ms(method, examples: list[Example], steps: int, n_thoughts: int, batch: int) -> float | None:
    if not method.trains:
        return None
    from softcot.assistant import ThoughtCache

    params = method.trainable_parameters()
    opt = torch.optim.AdamW(params, lr=1e-4)
    cache = ThoughtCache(method.assistant) if method.cacheable_thoughts else None  # as a training run owns it
    times = []
    for s in range(steps + 1):
        b = [examples[(s * batch + j) % len(examples)] for j in range(batch)]
        t0 = time.perf_counter()
        method.loss(b, n_thoughts, 512, cache=cache).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if s:  # step 0 warms up (allocations, SoftCoT's thought cache for these examples)
            times.append(time.perf_counter() - t0)
    return 1000 * statistics.fmean(times)


@torch.no_grad()
def generation_s_per_100(method, examples: list[Example], batch: int, max_new: int, n_thoughts: int) -> tuple[float, int]:
    dec = DecodingConfig(max_new_tokens=max_new, min_new_tokens=max_new)
    method.generate(examples[:2], DecodingConfig(max_new_tokens=2))  # warm-up
    t0 = time.perf_counter()
    per_question = 0
    for i in range(0, len(examples), batch):
        out = method.generate(examples[i : i + batch], dec, n_thoughts=n_thoughts)
        per_question = len(out[0])
    return 100 * (time.perf_counter() - t0) / len(examples), per_question


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="JSON file for the rows")
    p.add_argument("--steps", type=int, default=5, help="timed training steps per method")
    p.add_argument("--gen-examples", type=int, default=32, help="questions generated per method")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    examples = questions(max(args.gen_examples, 16))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        assistant_dir, llm_dir = save_pair(Path(tmp))
        for name in METHODS:
            torch.manual_seed(0)
            cfg = from_dict(SoftCoTConfig, {"method": name, "assistant": assistant_dir, "llm": llm_dir, "n_thoughts": 4,
                                            "coconut_stage": 3})  # Coconut at its last default stage
            method = build_method(cfg, "cpu")  # fresh models: LoRA/Coconut add adapters in place
            report = method.parameter_report()
            step_ms = train_step_ms(method, examples, args.steps, 32, 4)
            gen_s, per_q = generation_s_per_100(method, examples[: args.gen_examples], 16, args.max_new_tokens, 4)
            rows.append({"method": name, "trainable": report["trainable"], "total": report["total"],
                         "train_step_ms_batch4": None if step_ms is None else round(step_ms, 1),
                         "gen_s_per_100": round(gen_s, 3), "completions_per_question": per_q})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"settings": vars(args), "rows": rows}, indent=2) + "\n")
    print("| method | trainable | total | train step (ms, batch 4, N=32) | generation (s / 100 q) | completions / q |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        step = "-" if r["train_step_ms_batch4"] is None else f"{r['train_step_ms_batch4']:.1f}"
        print(f"| {r['method']} | {r['trainable']:,} | {r['total']:,} | {step} | {r['gen_s_per_100']:.2f} | "
              f"{r['completions_per_question']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

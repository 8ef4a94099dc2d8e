"""Core benchmark, run on demand (not in CI). Prints ratios measured in this one run.

    python benchmarks/bench_core.py [--device cpu] [--llm-hidden 256] [--out bench_core.json]

(1) generation wall time, SoftCoT vs plain generation by the same LLM on the same questions and
    the same forced number of new tokens, at batch 1 and batch 16 (target: ratio <= 1.10 at 16);
(2) training step time with cached soft thoughts vs recomputing them every step;
(3) peak memory of one training step (CUDA: max allocated; CPU: peak RSS growth, in a child process).
Models are random, of the sizes given, with word-piece tokenizers trained on mini-world text
(`--tokenizers char`: the character tokenizers of tests/tiny.py).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from softcot.config import DecodingConfig, SoftCoTConfig  # noqa: E402
from softcot.data import Example  # noqa: E402
from softcot.methods import build_method  # noqa: E402
from tests.tiny import assistant_tokenizer, llm_tokenizer  # noqa: E402


def bpe_tokenizers():
    """Word-piece tokenizers trained on mini-world text: realistic prompt lengths in tokens
    (the character tokenizers of the tests make every prompt ~4x longer than a real one)."""
    from softcot.miniworld import generator as gen
    from softcot.miniworld.tokenizer import build_assistant_tokenizer, build_llm_tokenizer
    from softcot.prompts import ASSISTANT_INSTRUCTION, LLM_INSTRUCTION, THOUGHT_PREAMBLE

    fixed = list(LLM_INSTRUCTION.values()) + list(ASSISTANT_INSTRUCTION.values()) + [THOUGHT_PREAMBLE, "Question:"]
    texts = [r["question"] + "\n" + r["answer"] for r in gen.generate(0, 3000)] + fixed * 200
    return build_llm_tokenizer(texts), build_assistant_tokenizer(texts)


def build(args, device: str):
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    lt, at = (llm_tokenizer(), assistant_tokenizer()) if args.tokenizers == "char" else bpe_tokenizers()
    llm = LlamaForCausalLM(LlamaConfig(vocab_size=len(lt), hidden_size=args.llm_hidden, intermediate_size=4 * args.llm_hidden,
                                       num_hidden_layers=args.llm_layers, num_attention_heads=8, num_key_value_heads=4,
                                       max_position_embeddings=4096, eos_token_id=lt.eos_token_id, pad_token_id=lt.pad_token_id))
    asst = Qwen2ForCausalLM(Qwen2Config(vocab_size=len(at), hidden_size=args.llm_hidden // 2, intermediate_size=2 * args.llm_hidden,
                                        num_hidden_layers=max(1, args.llm_layers // 2), num_attention_heads=4, num_key_value_heads=2,
                                        max_position_embeddings=4096, eos_token_id=at.eos_token_id, pad_token_id=at.pad_token_id))
    for m in (llm, asst):
        m.requires_grad_(False).eval().to(device)
    cfg = SoftCoTConfig(assistant="bench-assistant", llm="bench-llm", n_thoughts=4)
    soft = build_method(cfg, device, models={"llm": (llm, lt), "assistant": (asst, at)})
    plain = build_method(SoftCoTConfig(method="zero-shot-cot", llm="bench-llm"), device, models={"llm": (llm, lt)})
    return soft, plain


def questions(n: int) -> list[Example]:
    from softcot.miniworld import generator as gen

    recs = gen.generate(123, n, steps=(3,))  # same-length problems: padding does not blur the timing
    return [Example(id=f"b{i}", task="gsm8k", question=r["question"], answer="0",
                    steps=r["answer"].splitlines()[:-1]) for i, r in enumerate(recs)]


def timed(fn, repeats: int, sync) -> float:
    fn()  # warm-up
    sync()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_generation(soft, plain, args, sync) -> dict:
    dec = DecodingConfig(max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens)  # forced length
    out = {}
    for bs in (1, 16):
        ex = questions(bs)
        t_soft = timed(lambda: soft.generate(ex, dec), args.repeats, sync)
        t_plain = timed(lambda: plain.generate(ex, dec), args.repeats, sync)
        out[f"batch{bs}"] = {"softcot_s": t_soft, "plain_s": t_plain, "ratio": t_soft / t_plain}
    return out


def bench_training(soft, args, sync) -> dict:
    ex = questions(args.train_batch)
    params = soft.trainable_parameters()
    opt = torch.optim.AdamW(params, lr=1e-4)

    def step():
        loss = soft.loss(ex, n_thoughts=32)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    soft._cache = None
    t_recompute = timed(step, args.repeats, sync)
    soft.prepare_training(ex, 32)  # turns the cache on
    t_cached = timed(step, args.repeats, sync)
    return {"recompute_s": t_recompute, "cached_s": t_cached, "speedup": t_recompute / t_cached}


def memory_child(args) -> None:
    """Run one training step in this fresh process and print its peak memory growth."""
    soft, _ = build(args, args.device)
    ex = questions(args.train_batch)
    soft.prepare_training(ex, 32)
    soft.soft_thoughts(ex, 32)  # fill the cache: we measure the step itself
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    Path("/proc/self/clear_refs").write_text("5")  # Linux: reset the peak-RSS mark (VmHWM) to now
    before = _status_kb("VmRSS")
    soft.loss(ex, n_thoughts=32).backward()
    if args.device.startswith("cuda"):
        print(json.dumps({"peak_step_bytes": torch.cuda.max_memory_allocated() - base, "kind": "cuda max allocated"}))
    else:
        grow = (_status_kb("VmHWM") - before) * 1024
        print(json.dumps({"peak_step_bytes": grow, "kind": "CPU peak RSS above the pre-step RSS"}))


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--llm-hidden", type=int, default=256)
    p.add_argument("--llm-layers", type=int, default=4)
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--train-batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--tokenizers", choices=("bpe", "char"), default="bpe")
    p.add_argument("--out", default="")
    p.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        return memory_child(args)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    soft, plain = build(args, args.device)
    res = {"device": args.device, "llm_params": sum(p.numel() for p in soft.llm.model.parameters()),
           "assistant_params": sum(p.numel() for p in soft.assistant.model.parameters()),
           "generation": bench_generation(soft, plain, args, sync), "training": bench_training(soft, args, sync)}
    child = subprocess.run([sys.executable, __file__, "--memory-child", *sys.argv[1:]], capture_output=True, text=True, check=True)
    res["memory"] = json.loads(child.stdout.strip().splitlines()[-1])
    g, t = res["generation"], res["training"]
    print(f"models: LLM {res['llm_params']:,} params, assistant {res['assistant_params']:,} params, device {args.device}")
    print(f"(1) generation, {args.new_tokens} forced new tokens (median of {args.repeats}):")
    for bs in ("batch1", "batch16"):
        print(f"    {bs:8s} SoftCoT {g[bs]['softcot_s']:.3f}s  plain {g[bs]['plain_s']:.3f}s  ratio {g[bs]['ratio']:.3f}")
    print(f"    target at batch 16: ratio <= 1.10 -> {'met' if g['batch16']['ratio'] <= 1.10 else 'NOT met'}")
    print(f"(2) train step (batch {args.train_batch}, 32 thoughts): recompute {t['recompute_s']:.3f}s, "
          f"cached {t['cached_s']:.3f}s, speed-up x{t['speedup']:.2f}")
    print(f"(3) peak memory of one training step: {res['memory']['peak_step_bytes'] / 2**20:.1f} MiB ({res['memory']['kind']})")
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()

"""Core benchmark, run on demand (not in CI); `benchmarks/run_all.py` runs it with the others.

    python benchmarks/bench_core.py [--models miniworld|random] [--threads 1] [--quick] [--out runs/bench]

(1) generation: SoftCoT vs plain zero-shot CoT by the same frozen LLM on the same questions, at
    batch 1, 16 and 64, for 32 and 128 forced new tokens (min = max new tokens). Each side is
    timed from its prompts to the generated ids: SoftCoT's includes the assistant's prefill and
    the projection. The ids come straight from `model.generate` and their count is asserted
    (every row T ids, none of them a stop id). Ratio SoftCoT/plain, paired per repeat.
(2) training step (loss + backward + AdamW, 32 thoughts): soft thoughts recomputed by the
    assistant every step vs read from the cache; ratio recompute/cached = the cache's speed-up.
(3) peak memory of one (cached) training step, in a fresh child process (CUDA: max allocated;
    CPU: peak RSS growth).
Models: the mini world's shipped LLM + assistant (default; the projection is random, which does
not change the cost), or random models of --llm-hidden/--llm-layers with the mini world's
tokenizers (`--models random`).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import paired_ratio, set_threads, spread, write_results  # noqa: E402
from softcot.config import DecodingConfig, SoftCoTConfig, from_dict  # noqa: E402
from softcot.data import Example, load_examples  # noqa: E402
from softcot.methods import build_method  # noqa: E402

TRAIN_THOUGHTS = 32


def miniworld_models(device: str, dtype: str = "float32", attn: str = "auto") -> dict:
    from softcot.frozen import load_frozen_lm
    from softcot.miniworld import ASSISTANT_DIR, LLM_DIR

    return {"llm": load_frozen_lm(str(LLM_DIR), dtype, device, attn),
            "assistant": load_frozen_lm(str(ASSISTANT_DIR), dtype, device, attn)}


def random_models(device: str, hidden: int, layers: int) -> dict:
    """Random Llama LLM + Qwen2 assistant of the given sizes, with the mini world's tokenizers
    (so prompt lengths in tokens are the mini world's)."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    shipped = miniworld_models("cpu")
    lt, at = shipped["llm"][1], shipped["assistant"][1]  # their tokenizers only
    llm = LlamaForCausalLM(LlamaConfig(vocab_size=len(lt), hidden_size=hidden, intermediate_size=4 * hidden,
                                       num_hidden_layers=layers, num_attention_heads=8, num_key_value_heads=4,
                                       max_position_embeddings=4096, eos_token_id=lt.eos_token_id, pad_token_id=lt.pad_token_id))
    asst = Qwen2ForCausalLM(Qwen2Config(vocab_size=len(at), hidden_size=hidden // 2, intermediate_size=2 * hidden,
                                        num_hidden_layers=max(1, layers // 2), num_attention_heads=4, num_key_value_heads=2,
                                        max_position_embeddings=4096, eos_token_id=at.eos_token_id, pad_token_id=at.pad_token_id))
    for m in (llm, asst):
        m.requires_grad_(False).eval().to(device)
    return {"llm": (llm, lt), "assistant": (asst, at)}


def build(models: str = "miniworld", device: str = "cpu", hidden: int = 256, layers: int = 4, block: str | None = None,
          dtype: str = "float32", attn: str = "auto"):
    """(SoftCoT with a random `match`-normed projection, plain zero-shot CoT) sharing one frozen LLM."""
    m = miniworld_models(device, dtype, attn) if models == "miniworld" else random_models(device, hidden, layers)
    soft = soft_variant(m, device, block)
    plain = build_method(SoftCoTConfig(method="zero-shot-cot", llm="bench-llm"), device, models={"llm": m["llm"]})
    soft.shared_models = m
    return soft, plain


def soft_variant(m: dict, device: str, block: str | None):
    """SoftCoT on the models `m` with LLM thought block `block` (preamble | markers | slots; None =
    the default)."""
    torch.manual_seed(0)
    cfg = from_dict(SoftCoTConfig, {"method": "softcot", "assistant": "bench-assistant", "llm": "bench-llm",
                                    "n_thoughts": 4, "projection_norm": "match",
                                    **({"thought_block": block} if block else {})})
    return build_method(cfg, device, models=m)


def questions(n: int) -> list[Example]:
    """The first n mini-world test questions (the same for every model choice)."""
    from softcot.miniworld import DATA_DIR

    ex = load_examples("miniworld", DATA_DIR / "test.jsonl", limit=n)
    if len(ex) < n:
        raise ValueError(f"{DATA_DIR / 'test.jsonl'} has {len(ex)} examples, {n} needed")
    return ex


@torch.inference_mode()
def generate_ids(method, examples: list[Example], new_tokens: int, n_thoughts: int = 4) -> torch.Tensor:
    """Prompts -> exactly `new_tokens` greedy ids per row through the LLM's own decoding path
    (prompt-prefix reuse when the caller holds `method.reusing_prefix()`, as evaluate() does);
    raises if the count is not exact."""
    embeds, mask = method.generation_inputs(examples, n_thoughts)
    out = method.llm.generate_ids(embeds, mask, DecodingConfig(max_new_tokens=new_tokens, min_new_tokens=new_tokens))
    verify_ids(out, len(examples), new_tokens, method.llm.stop_ids)
    return out


def verify_ids(out: torch.Tensor, rows: int, new_tokens: int, stop_ids: list[int]) -> None:
    """T new ids per row, none a stop id (so no row ended early and was padded)."""
    if tuple(out.shape) != (rows, new_tokens):
        raise AssertionError(f"generate returned ids of shape {tuple(out.shape)}, expected ({rows}, {new_tokens})")
    if torch.isin(out, torch.tensor(stop_ids, device=out.device)).any():
        raise AssertionError("a generated row holds a stop id: it stopped before the forced length")


def prompt_tokens(method, examples: list[Example], n_thoughts: int = 4) -> dict:
    _, mask = method.generation_inputs(examples, n_thoughts)
    lens = mask.sum(1).tolist()
    return {"mean": sum(lens) / len(lens), "max": max(lens)}


def bench_generation(soft, plain, batches, token_counts, repeats, sync) -> dict:
    """SoftCoT (default thought block) vs plain at every batch x T; and the floor: the slots-only
    block (one assistant prefill + N slot tokens + one newline: SoftCoT's inherent extra work)."""
    exs = questions(max(batches))
    floor = soft_variant(soft.shared_models, soft.llm.model.device.type, "slots")
    out: dict = {"prompt_tokens": {"softcot": prompt_tokens(soft, exs), "floor": prompt_tokens(floor, exs),
                                   "plain": prompt_tokens(plain, exs)}}
    with contextlib.ExitStack() as reuse:  # every side reuses its prompt prefix, as in evaluate()
        for m in (soft, floor, plain):
            reuse.enter_context(m.reusing_prefix())
            prime(m)
        _generation_ratios(soft, floor, plain, exs, batches, token_counts, repeats, sync, out)
    return out


def _generation_ratios(soft, floor, plain, exs, batches, token_counts, repeats, sync, out: dict) -> None:
    for T in token_counts:
        for bs in batches:
            ex = exs[:bs]
            r = paired_ratio(lambda: generate_ids(soft, ex, T), lambda: generate_ids(plain, ex, T), repeats=repeats, sync=sync,
                             sides=("softcot", "plain"))
            f = paired_ratio(lambda: generate_ids(floor, ex, T), lambda: generate_ids(plain, ex, T), repeats=repeats,
                             sync=sync, sides=("floor", "plain"))
            out[f"T{T}_batch{bs}"] = {"new_tokens": T, "batch": bs, "verified_ids_per_row": T, **r, "floor": f}


def bench_prefix_reuse(soft, plain, batches, T: int, repeats: int, sync) -> dict:
    """Paired: each method without prompt-prefix reuse vs with it, in an evaluation's steady state
    (the shared prefix already found); ratio = the reuse's speed-up."""
    exs = questions(max(batches))
    out = {}
    for m in (plain, soft):
        with m.reusing_prefix():
            prime(m)
            for bs in batches:
                def full(m=m, bs=bs):
                    with m.reusing_prefix(False):
                        return generate_ids(m, exs[:bs], T)
                r = paired_ratio(full, lambda m=m, bs=bs: generate_ids(m, exs[:bs], T), repeats=repeats, sync=sync,
                                 sides=("full", "reused"))
                out[f"{m.name}_batch{bs}"] = {"method": m.name, "batch": bs, "new_tokens": T, **r}
    return out


def prime(method) -> None:
    """Let a prefix-reusing method find its shared prompt prefix on 16 questions that are never
    timed, as the first batch of an evaluation does. Timing one question over and over would
    otherwise let batch 1 remember its whole prompt as a "shared" prefix."""
    from softcot.miniworld import DATA_DIR

    generate_ids(method, load_examples("miniworld", DATA_DIR / "dev.jsonl", limit=16), 1)


def bench_training(soft, batch: int, repeats: int, sync) -> dict:
    """Paired: a step whose soft thoughts the assistant recomputes vs one reading a trainer's cache."""
    from softcot.assistant import ThoughtCache

    ex = questions(batch)
    opt = torch.optim.AdamW(soft.trainable_parameters(), lr=1e-4)
    cache = ThoughtCache(soft.assistant)  # filled by the warm-up round

    def step(cache=None):
        soft.loss(ex, TRAIN_THOUGHTS, cache=cache).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    r = paired_ratio(step, lambda: step(cache), repeats=repeats, sync=sync, sides=("recompute", "cached"))
    return {"batch": batch, "n_thoughts": TRAIN_THOUGHTS, **r}


def memory_child(args) -> None:
    """Run one cached training step in this fresh process and print its peak memory growth."""
    soft, _ = build(args.models, args.device, args.llm_hidden, args.llm_layers)
    ex = questions(args.train_batch)
    from softcot.assistant import ThoughtCache

    cache = ThoughtCache(soft.assistant)
    cache.get(ex, TRAIN_THOUGHTS)  # fill the cache: we measure the step itself
    cuda = args.device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    Path("/proc/self/clear_refs").write_text("5")  # Linux: reset the peak-RSS mark (VmHWM) to now
    before = _status_kb("VmRSS")
    soft.loss(ex, TRAIN_THOUGHTS, cache=cache).backward()
    if cuda:
        print(json.dumps({"peak_step_bytes": torch.cuda.max_memory_allocated() - base, "kind": "cuda max allocated"}))
    else:
        grow = (_status_kb("VmHWM") - before) * 1024
        print(json.dumps({"peak_step_bytes": grow, "kind": "CPU peak RSS above the pre-step RSS"}))


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status")


def peak_memory(args: argparse.Namespace, train_batch: int) -> dict:
    """One cached training step in a fresh child process (its peak is not this process's)."""
    child_args = ["--memory-child", "--models", args.models, "--device", args.device, "--train-batch", str(train_batch),
                  "--llm-hidden", str(args.llm_hidden), "--llm-layers", str(args.llm_layers),
                  "--threads", str(torch.get_num_threads())]
    child = subprocess.run([sys.executable, __file__, *child_args], capture_output=True, text=True, check=True)
    return json.loads(child.stdout.strip().splitlines()[-1])


def run(args: argparse.Namespace) -> dict:
    """All three measurements; returns the JSON-able result with its notes and markdown tables."""
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else None
    batches, token_counts = ((1, 16), (32,)) if args.quick else ((1, 16, 64), (32, 128))
    train_batch = 4 if args.quick else args.train_batch
    soft, plain = build(args.models, args.device, args.llm_hidden, args.llm_layers)
    gen = bench_generation(soft, plain, batches, token_counts, args.repeats, sync)
    reuse = bench_prefix_reuse(soft, plain, batches, token_counts[0], args.repeats, sync)
    train = bench_training(soft, train_batch, args.repeats, sync)
    mem = peak_memory(args, train_batch)
    llm_p = sum(p.numel() for p in soft.llm.model.parameters())
    asst_p = sum(p.numel() for p in soft.assistant.model.parameters())
    pt = gen["prompt_tokens"]
    gen_rows = [[g["new_tokens"], g["batch"], g["a_median_s"], g["b_median_s"], g["ratio_median"], spread(g),
                 g["floor"]["ratio_median"], spread(g["floor"])] for k, g in gen.items() if k != "prompt_tokens"]
    notes = [
        f"models: {args.models} (LLM {llm_p:,} params, assistant {asst_p:,} params), 4 thoughts at generation",
        f"prompt tokens over the first {max(batches)} test questions, mean (max): "
        f"SoftCoT {pt['softcot']['mean']:.1f} ({pt['softcot']['max']}), floor (slots only) {pt['floor']['mean']:.1f} "
        f"({pt['floor']['max']}), plain {pt['plain']['mean']:.1f} ({pt['plain']['max']})",
        "floor = SoftCoT with the slots-only thought block (`--thought-block slots`): the assistant's prefill plus N "
        "slot tokens, the work SoftCoT cannot avoid; SoftCoT's own ratio minus the floor's is what its prompt wording costs",
        "every generated batch verified: T ids per row straight from model.generate, no stop id among them",
        f"each ratio: median of {args.repeats} paired repeats (sides alternate, order swaps), after 1 warm-up round",
        "prompt-prefix reuse (evaluate's default, `--no-prefix-cache` turns it off): the prompt start every question "
        "shares is computed once; both sides of the SoftCoT/plain ratios reuse it, each after finding it on 16 dev questions",
        f"peak memory of one cached training step (batch {train_batch}, {TRAIN_THOUGHTS} thoughts): "
        f"{mem['peak_step_bytes'] / 2**20:.1f} MiB ({mem['kind']})",
    ]
    tables = [
        {"caption": "Generation wall time, SoftCoT vs plain zero-shot CoT (same LLM, forced new tokens)",
         "columns": ["new tokens", "batch", "SoftCoT s", "plain s", "ratio (median)", "ratio min-max",
                     "floor ratio (median)", "floor min-max"], "rows": gen_rows},
        {"caption": f"Prompt-prefix reuse, {token_counts[0]} forced new tokens: full prefill vs reused prefix",
         "columns": ["method", "batch", "full s", "reused s", "speed-up (median)", "speed-up min-max"],
         "rows": [[r["method"], r["batch"], r["a_median_s"], r["b_median_s"], r["ratio_median"], spread(r)]
                  for r in reuse.values()]},
        {"caption": f"Training step (batch {train_batch}, {TRAIN_THOUGHTS} thoughts): recomputed vs cached soft thoughts",
         "columns": ["recompute s", "cached s", "speed-up (median)", "speed-up min-max"],
         "rows": [[train["a_median_s"], train["b_median_s"], train["ratio_median"], spread(train)]]},
    ]
    return {"models": args.models, "llm_params": llm_p, "assistant_params": asst_p, "device": args.device,
            "generation": gen, "prefix_reuse": reuse, "training": train, "memory": mem, "notes": notes, "tables": tables}


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", choices=("miniworld", "random"), default="miniworld")
    p.add_argument("--llm-hidden", type=int, default=256, help="random models only")
    p.add_argument("--llm-layers", type=int, default=4, help="random models only")
    p.add_argument("--train-batch", type=int, default=8)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_args(p)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default="", help="folder for core.json + core.md")
    p.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    set_threads(args.threads)
    if args.memory_child:
        return memory_child(args)
    from harness import machine, markdown

    res = {"title": "Core benchmark", "machine": machine(args.device), "benchmarks": {"core": run(args)}}
    print(markdown(res))
    if args.out:
        write_results(args.out, "core", res)


if __name__ == "__main__":
    main()

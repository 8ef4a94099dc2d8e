"""SoftCoT's costs at the paper's real model shapes, on whatever device is here (random weights).

    python benchmarks/bench_shapes.py [--pairs qwen,llama] [--threads 2] [--out runs/bench]

No weights can be downloaded, but a model built from a real config with random weights does the
real work. What it measures:
  1. the frozen LM head of a batched prefill, fed transformers' last-position slice as torch
     runs it and with softcot's contiguous input (frozen.contiguous_lm_head);
  2. training: does caching the frozen assistant's thoughts pay? A step with recomputed thoughts
     (assistant prefill + projection + LLM forward/backward) against a cached one (projection +
     LLM forward/backward), at the paper's N=32 and GSM8K-like lengths;
  3. with --new-tokens (off by default: minutes per call on a CPU): generation, SoftCoT
     (assistant prefill, projection, LLM prompt with the thought block) against plain zero-shot
     CoT, forced new tokens, batch 16.
A full 7-8B model does not fit beside its assistant in a small machine's memory, and on a CPU a
full-depth step takes minutes, so each model is built at its real width with a few of its
layers: `u` depth units = u/16 of Llama (LLM 2u, assistant u layers) or u/14 of Qwen (2u and 2u).
Each side's time is measured at u=1 and u=2 (paired, alternating, median of >= 5) and extended
linearly to full depth: layers are identical, so time(u) = a + b*u exactly up to noise, where `a`
holds the embeddings and the LM head. The ratio at full depth is the ratio of the extrapolations;
the per-u ratios are printed beside it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import machine, markdown, paired_ratio, set_threads, spread, write_results  # noqa: E402

from softcot.frozen import contiguous_lm_head  # noqa: E402

# (assistant config, LLM config, full depth in units, layers per unit (assistant, LLM))
PAIRS = {
    "qwen": ("Qwen2.5-1.5B", dict(model_type="qwen2", hidden_size=1536, intermediate_size=8960, num_attention_heads=12,
                                  num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
             "Qwen2.5-7B", dict(model_type="qwen2", hidden_size=3584, intermediate_size=18944, num_attention_heads=28,
                                num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False),
             14, (2, 2)),
    "llama": ("Llama-3.2-1B", dict(model_type="llama", hidden_size=2048, intermediate_size=8192, num_attention_heads=32,
                                   num_key_value_heads=8, head_dim=64, vocab_size=128256, tie_word_embeddings=True),
              "Llama-3.1-8B", dict(model_type="llama", hidden_size=4096, intermediate_size=14336, num_attention_heads=32,
                                   num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=False),
              16, (1, 2)),
}
N = 32          # thoughts in training (the paper's setting)
N_GEN = 4       # thoughts at generation
LA = 80         # assistant prompt before its slots (template + instruction + a GSM8K question)
LP = 100        # LLM prompt without thoughts
BLOCK = 17      # thought-block text around the slots (preamble + markers), measured on the mini world
LT = 150        # training target (a GSM8K rationale + answer)


def build(spec: dict, layers: int, dtype: torch.dtype, device: str):
    from transformers import AutoConfig, AutoModelForCausalLM

    spec = dict(spec)
    cfg = AutoConfig.for_model(spec.pop("model_type"), num_hidden_layers=layers, max_position_embeddings=4096, **spec)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    return model.requires_grad_(False).eval()


class Parts:
    """The frozen assistant + LLM at `u` depth units and the trainable projection between them."""

    def __init__(self, pair: str, u: int, dtype: torch.dtype, device: str) -> None:
        from softcot.projection import Projection

        _, a_spec, _, l_spec, _, (la, ll) = PAIRS[pair]
        self.asst, self.llm, self.device = build(a_spec, la * u, dtype, device), build(l_spec, ll * u, dtype, device), device
        contiguous_lm_head(self.llm)  # as FrozenLLM does
        self.proj = Projection(a_spec["hidden_size"], l_spec["hidden_size"], norm="match", target_rms=0.02).to(device)
        self.va, self.vl = a_spec["vocab_size"], l_spec["vocab_size"]

    def ids(self, vocab: int, b: int, t: int) -> torch.Tensor:
        return torch.randint(10, vocab, (b, t), generator=torch.Generator().manual_seed(b * 1000 + t)).to(self.device)

    def thoughts(self, b: int, n: int) -> torch.Tensor:
        """Assistant prefill over [prompt, n slots] -> slot states [b, n, d_a] (no LM head)."""
        with torch.no_grad():
            h = self.asst.base_model(input_ids=self.ids(self.va, b, LA + n)).last_hidden_state
        return h[:, LA:]

    def llm_embeds(self, b: int, t: int, thoughts: torch.Tensor | None) -> torch.Tensor:
        emb = self.llm.get_input_embeddings()(self.ids(self.vl, b, t))  # [b, t, d_l]
        if thoughts is None:
            return emb
        proj = self.proj(thoughts.float()).to(emb.dtype)  # [b, n, d_l]
        s = LP + BLOCK // 2  # the slots sit inside the thought block, after the prompt
        return torch.cat([emb[:, :s], proj, emb[:, s + proj.shape[1]:]], 1)

    def train_step(self, b: int, cached: torch.Tensor | None) -> None:
        """One step at N thoughts: forward + backward to the projection (the LLM stays frozen);
        the loss is read at the target positions only, as FrozenLLM.reply_loss does."""
        thoughts = cached if cached is not None else self.thoughts(b, N)
        emb = self.llm_embeds(b, LP + BLOCK + N + LT, thoughts)
        h = self.llm.base_model(inputs_embeds=emb).last_hidden_state[:, -LT - 1:-1]  # [b, LT, d_l]
        logits = self.llm.get_output_embeddings()(h.reshape(-1, h.shape[-1])).float()  # [b*LT, vocab]
        loss = torch.nn.functional.cross_entropy(logits, self.ids(self.vl, b, LT).flatten())
        loss.backward()
        self.proj.zero_grad(set_to_none=True)

    def generate(self, b: int, new_tokens: int, soft: bool) -> None:
        thoughts = self.thoughts(b, N_GEN) if soft else None
        t = LP + (BLOCK + N_GEN if soft else 0)
        with torch.no_grad():
            emb = self.llm_embeds(b, t, thoughts)
            out = self.llm.generate(inputs_embeds=emb, attention_mask=torch.ones(emb.shape[:2], dtype=torch.long, device=self.device),
                                    max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                                    eos_token_id=None, pad_token_id=0)
        if out.shape != (b, new_tokens):
            raise AssertionError(f"generated {tuple(out.shape)}, expected ({b}, {new_tokens})")


def head_fix(pair: str, args, dtype: torch.dtype) -> list:
    """The frozen LM head on transformers' last-position slice hidden[:, -1:] [B, 1, d] (what
    every batched prefill does), as torch runs it vs with softcot's contiguous input."""
    _, _, l_name, l_spec, _, _ = PAIRS[pair]
    head = torch.nn.Linear(l_spec["hidden_size"], l_spec["vocab_size"], bias=False, dtype=dtype, device=args.device)
    head.requires_grad_(False)
    x = torch.randn(args.head_batch, 64, l_spec["hidden_size"], dtype=dtype, device=args.device)[:, -1:]
    with torch.no_grad():
        r = paired_ratio(lambda: head(x), lambda: head(x.contiguous()), repeats=args.repeats,
                         sync=torch.cuda.synchronize if args.device.startswith("cuda") else None, sides=("slice", "contiguous"))
    return [l_name, args.head_batch, r["a_median_s"], r["b_median_s"], r["ratio_median"], spread(r)]


def extrapolate(t1: float, t2: float, full: int) -> float:
    """time(u) = a + b*u through (1, t1) and (2, t2), at u = full."""
    return t1 + (t2 - t1) * (full - 1)


def run_pair(pair: str, args, dtype: torch.dtype) -> tuple[list, list, dict]:
    a_name, _, l_name, _, full, _ = PAIRS[pair]
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else None
    per_u: dict[int, dict] = {}
    for u in (1, 2):
        parts = Parts(pair, u, dtype, args.device)
        res = {}
        if not args.skip_train:
            cached = parts.thoughts(args.train_batch, N)
            res["train"] = paired_ratio(lambda: parts.train_step(args.train_batch, None),
                                        lambda: parts.train_step(args.train_batch, cached),
                                        repeats=args.repeats, sync=sync, sides=("recompute", "cached"))
        for T in args.new_tokens:
            if not args.only_parts:
                res[f"gen{T}"] = paired_ratio(lambda: parts.generate(args.gen_batch, T, True),
                                              lambda: parts.generate(args.gen_batch, T, False),
                                              repeats=args.repeats, sync=sync, sides=("softcot", "plain"))
            # SoftCoT against its parts: one assistant pass + plain generation of the same prompt
            res[f"parts{T}"] = paired_ratio(lambda: parts.generate(args.gen_batch, T, True),
                                            lambda: (parts.thoughts(args.gen_batch, N_GEN),
                                                     parts.generate(args.gen_batch, T, False)),
                                            repeats=args.repeats, sync=sync, sides=("softcot", "parts"))
        per_u[u] = res
        del parts
    name = f"{a_name} -> {l_name}"

    def row(key: str) -> list:
        a = extrapolate(per_u[1][key]["a_median_s"], per_u[2][key]["a_median_s"], full)
        b = extrapolate(per_u[1][key]["b_median_s"], per_u[2][key]["b_median_s"], full)
        return [a, b, a / b, per_u[1][key]["ratio_median"], per_u[2][key]["ratio_median"]]

    train_row = [name, args.train_batch] + row("train") if not args.skip_train else None
    gen_rows = [[name, args.gen_batch, T, what] + row(f"{key}{T}") for T in args.new_tokens
                for key, what in (("gen", "plain"), ("parts", "assistant pass + plain")) if f"{key}{T}" in per_u[1]]
    return train_row, gen_rows, {str(u): r for u, r in per_u.items()}


def run(args: argparse.Namespace) -> dict:
    from softcot.utils import autocast_bf16_ok

    dtype = torch.bfloat16 if autocast_bf16_ok(args.device) else torch.float32
    train_rows, gen_rows, head_rows, raw = [], [], [], {}
    for pair in args.pairs:
        head_rows.append(head_fix(pair, args, dtype))
        t, g, raw[pair] = run_pair(pair, args, dtype)
        train_rows += [t] if t else []
        gen_rows += g
    return {
        "dtype": str(dtype), "raw": raw,
        "notes": [f"random weights in {str(dtype).replace('torch.', '')}, real widths and vocabularies; each side timed at 1 and 2 "
                  "depth units and extended linearly to the full depth (full-depth s columns)",
                  f"training: N={N} thoughts, assistant prompt {LA}+{N} tokens, LLM {LP}+{BLOCK}+{N} prompt + {LT} target tokens; "
                  "backward reaches the projection only",
                  f"generation: N={N_GEN} thoughts, LLM prompt {LP} (+{BLOCK + N_GEN} for SoftCoT), greedy, forced new tokens",
                  f"each ratio: median of {args.repeats} paired repeats (sides alternate, order swaps) after 1 warm-up round"],
        "tables": [
            {"caption": "Frozen LM head on the last-position slice of a batched prefill: torch as is vs contiguous input",
             "columns": ["LLM", "batch", "slice s", "contiguous s", "speed-up (median)", "speed-up min-max"],
             "rows": head_rows},
            {"caption": "Training step at real shapes: recomputed vs cached soft thoughts",
             "columns": ["pair", "batch", "recompute s (full depth)", "cached s (full depth)", "speed-up (full depth)",
                         "speed-up at u=1", "speed-up at u=2"], "rows": train_rows},
        ] + ([{"caption": "Generation at real shapes: SoftCoT vs plain zero-shot CoT, and vs its parts (one assistant "
                           "pass + plain generation of the same prompt)",
                "columns": ["pair", "batch", "new tokens", "against", "SoftCoT s (full depth)", "other s (full depth)",
                            "ratio (full depth)", "ratio at u=1", "ratio at u=2"], "rows": gen_rows}] if gen_rows else []),
    }


def main() -> None:
    global BLOCK  # --block sets the module's default (declared first: the help text reads it)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", default="qwen,llama", help=f"comma-separated subset of {','.join(PAIRS)}")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--train-batch", type=int, default=1)
    p.add_argument("--gen-batch", type=int, default=16)
    p.add_argument("--head-batch", type=int, default=2, help="rows of the LM-head table (its slow side copies the head per row)")
    p.add_argument("--new-tokens", default="", help="comma-separated forced generation lengths of the generation "
                   "table (none by default: minutes per call on a CPU; e.g. 32,128 on a GPU)")
    p.add_argument("--out", default="", help="folder for shapes.json + shapes.md")
    p.add_argument("--skip-train", action="store_true", help="leave out the training-step table")
    p.add_argument("--only-parts", action="store_true", help="generation: time SoftCoT against its parts only "
                   "(not also against plain generation; halves a CPU run)")
    p.add_argument("--block", type=int, default=BLOCK, help=f"thought-block tokens around the slots (default {BLOCK}: "
                   "the preamble sentence + markers; 3: markers alone; 0: the slots alone)")
    args = p.parse_args()
    args.pairs = [x.strip() for x in args.pairs.split(",") if x.strip()]
    if set(args.pairs) - set(PAIRS):
        p.error(f"--pairs: unknown {sorted(set(args.pairs) - set(PAIRS))}; expected some of {sorted(PAIRS)}")
    args.new_tokens = [int(x) for x in args.new_tokens.split(",") if x.strip()]
    BLOCK = args.block  # read by Parts at call time
    set_threads(args.threads)
    res = {"title": "SoftCoT at real model shapes", "machine": machine(args.device), "benchmarks": {"shapes": run(args)}}
    print(markdown(res))
    if args.out:
        write_results(args.out, "shapes", res)


if __name__ == "__main__":
    main()

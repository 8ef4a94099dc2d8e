"""Build the mini world from scratch on a CPU: data splits, two tokenizers, a mini LLM and a
smaller mini assistant, saved as ordinary Hugging Face folders, plus a MANIFEST.json with the
measured held-out accuracies.

    python -m softcot.miniworld.build --out softcot/miniworld/assets          # ~10 min, 2 cores
    python -m softcot.miniworld.build --out /tmp/mw --quick                   # seconds, tiny

    from softcot.miniworld.build import build_miniworld
    paths = build_miniworld("out/mw", seed=0, quick=True)   # {"llm": ..., "assistant": ..., ...}

What is trained (everything from scratch, deterministic from the seed on a given machine and
thread count):

* the LLM (LlamaForCausalLM) on its chat prompt -> "## Step i: ...\\nThe answer is \\boxed{N}."
  + end-of-turn, 40% of the prompts with no thought block (zero-shot CoT), 40% with the gold
  HINT in the thought block (BEGIN hint END) and 20% with N placeholder tokens there (so an
  uninformative block is ignored: CoT-Unk ~ zero-shot, as for real LLMs), loss on the reply only;
* the assistant (Qwen2ForCausalLM) on its chat prompt -> HINT + end-of-turn, half of the prompts
  with N placeholder tokens appended (N in PLACEHOLDER_COUNTS), loss on the reply only.

The LMs train on the train split plus `n_extra` fresh problems (one pass, each problem once,
never a dev/test question); the shipped train split is what SoftCoT's projection trains on.

HINT is the calculator equations of the first two steps, e.g. "8*12=96, 96*9=864" (see
`hint_text`): for 1- and 2-step problems it contains the answer, for 3- and 4-step problems the
LLM still has to do the remaining steps itself.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from softcot import scoring
from softcot.data import target_text  # the same training target as every benchmark
from softcot.miniworld import generator as gen
from softcot.miniworld.tokenizer import (
    ASSISTANT_SPECIALS,
    LLM_SPECIALS,
    build_assistant_tokenizer,
    build_llm_tokenizer,
)
from softcot.prompts import assistant_message, end_of_turn_text, llm_message, render_prompt

HINT_STEPS = 2
HINT_MAX_TOKENS = 32  # Assist-CoT: the assistant writes at most this many tokens
PLACEHOLDER_COUNTS = (1, 2, 3, 4, 5, 6, 7, 8, 32)


# ------------------------------------------------------------------------- texts

def hint_text(example) -> str:
    """The hint: the first HINT_STEPS calculator equations, "3*4=12, 12+5=17"."""
    eqs = example.meta.get("equations")
    if not eqs:  # an Example from a GSM8K-format loader: read the equations off the step lines
        eqs = []
        for step in example.steps or []:
            m = re.search(r"\d+[-+*/]\d+=\d+", re.sub(r"<<[^>]*>>", "", step).replace(" ", ""))
            if m:
                eqs.append(m.group(0))
    return ", ".join(eqs[:HINT_STEPS])


def is_correct(completion: str, gold: str) -> bool:
    """Strict scoring (only an explicit \\boxed{N} or #### N counts), the project's own scorer."""
    return scoring.is_correct(scoring.extract_answer(completion, "miniworld", "strict"), gold, "miniworld")


# ------------------------------------------------------------------------- sizes

@dataclass
class BuildConfig:
    seed: int = 0
    n_train: int = 6000
    n_dev: int = 300
    n_test: int = 400
    n_extra: int = 24000  # fresh problems (never dev/test) added to train for the LMs' own training
    llm_mix: tuple = (0.4, 0.4, 0.2)  # LLM prompts: no thought block / gold hint / N placeholders
    # LLM (Llama)
    llm_hidden: int = 192
    llm_layers: int = 4
    llm_heads: int = 4
    llm_ffn: int = 512
    llm_steps: int = 900
    llm_lr: float = 1e-3
    # assistant (Qwen2)
    asst_hidden: int = 128
    asst_layers: int = 4
    asst_heads: int = 4
    asst_kv_heads: int = 2
    asst_ffn: int = 384
    asst_steps: int = 900
    asst_lr: float = 1e-3
    batch_size: int = 32
    warmup: int = 50
    n_eval: int = 400  # test examples scored for the MANIFEST (0 = skip the evaluation)
    eval_batch: int = 100
    max_new_tokens: int = 160
    threads: int = 0  # torch threads during the build (0 = leave as is)
    bf16: bool = True  # bf16 autocast for training on CPU

    @classmethod
    def quick(cls, seed: int = 0) -> "BuildConfig":
        return cls(seed=seed, n_train=48, n_dev=8, n_test=8, n_extra=16, llm_hidden=32, llm_layers=1, llm_heads=2,
                   llm_ffn=64, llm_steps=3, asst_hidden=24, asst_layers=1, asst_heads=2, asst_kv_heads=1,
                   asst_ffn=48, asst_steps=3, batch_size=8, warmup=1, n_eval=4, eval_batch=4,
                   max_new_tokens=8)


# ------------------------------------------------------------------------- models

def _llm_config(cfg: BuildConfig, tok):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tok), hidden_size=cfg.llm_hidden, intermediate_size=cfg.llm_ffn,
        num_hidden_layers=cfg.llm_layers, num_attention_heads=cfg.llm_heads,
        num_key_value_heads=cfg.llm_heads, max_position_embeddings=512, tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )


def _assistant_config(cfg: BuildConfig, tok):
    from transformers import Qwen2Config

    return Qwen2Config(
        vocab_size=len(tok), hidden_size=cfg.asst_hidden, intermediate_size=cfg.asst_ffn,
        num_hidden_layers=cfg.asst_layers, num_attention_heads=cfg.asst_heads,
        num_key_value_heads=cfg.asst_kv_heads, max_position_embeddings=512, tie_word_embeddings=True,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None,
    )


def _encode_pairs(tok, pairs: list[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
    """(prompt, reply) texts -> (ids, labels) with the prompt masked out (-100)."""
    prompts = tok([p for p, _ in pairs], add_special_tokens=False)["input_ids"]
    replies = tok([r for _, r in pairs], add_special_tokens=False)["input_ids"]
    return [(p + r, [-100] * len(p) + r) for p, r in zip(prompts, replies)]


def _batches(seqs, batch_size: int, steps: int, rng: random.Random):
    """`steps` batches; each epoch shuffles, groups similar lengths (less padding), shuffles batches."""
    out: list[list[int]] = []
    while len(out) < steps:
        idx = list(range(len(seqs)))
        rng.shuffle(idx)
        chunk = batch_size * 16
        epoch = []
        for c in range(0, len(idx), chunk):
            part = sorted(idx[c:c + chunk], key=lambda i: len(seqs[i][0]))
            epoch += [part[b:b + batch_size] for b in range(0, len(part), batch_size)]
        rng.shuffle(epoch)
        out += epoch
    return out[:steps]


def _collate(seqs, batch: list[int], pad_id: int, multiple: int = 32):
    # Few distinct shapes: CPU bf16 kernels are re-planned for every new shape (~1.6x slower).
    n = -(-max(len(seqs[i][0]) for i in batch) // multiple) * multiple
    ids = torch.full((len(batch), n), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), n), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), n), dtype=torch.long)
    for row, i in enumerate(batch):
        x, y = seqs[i]
        ids[row, :len(x)] = torch.tensor(x)
        labels[row, :len(y)] = torch.tensor(y)
        mask[row, :len(x)] = 1
    return ids, mask, labels


def train_lm(model, seqs, *, steps: int, batch_size: int, lr: float, warmup: int, seed: int,
             pad_id: int, bf16: bool = True, log=print, name: str = "lm", callback=None,
             callback_every: int = 0) -> dict:
    """AdamW + warmup + cosine decay; reply-only loss. Returns timing stats."""
    rng = random.Random(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.01)

    def lr_at(s):
        if s < warmup:
            return (s + 1) / warmup
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(1, steps - warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    model.train()
    t0 = time.time()
    tokens = 0
    ema = None
    for step, batch in enumerate(_batches(seqs, batch_size, steps, rng)):
        ids, mask, labels = _collate(seqs, batch, pad_id)
        tokens += int(mask.sum())
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        if (step + 1) % 100 == 0 or step + 1 == steps:
            dt = time.time() - t0
            log(f"[{name}] step {step + 1}/{steps} loss {ema:.4f} {tokens / dt:.0f} tok/s {dt:.0f}s")
        if callback is not None and callback_every and (step + 1) % callback_every == 0:
            model.eval()
            callback(step + 1)
            model.train()
    model.eval()
    dt = time.time() - t0
    return {"steps": steps, "seconds": round(dt, 1), "tokens": tokens, "tokens_per_s": round(tokens / max(dt, 1e-9)),
            "final_loss": round(ema or 0.0, 4)}


@torch.no_grad()
def greedy_generate(model, tok, prompts: list[str], *, max_new_tokens: int, batch_size: int = 100) -> list[str]:
    """Batched greedy decoding (left padding), stopping at the end-of-turn token."""
    tok.padding_side = "left"
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out = [""] * len(prompts)
    for b in range(0, len(order), batch_size):
        idx = order[b:b + batch_size]
        enc = tok([prompts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
        gen_ids = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        for i, row in zip(idx, gen_ids[:, enc["input_ids"].shape[1]:]):
            out[i] = tok.decode(row, skip_special_tokens=True).strip()
    return out


def evaluate(llm, ltok, asst, atok, examples, *, max_new_tokens: int, batch_size: int) -> dict:
    """Held-out greedy accuracy: no hint / gold hint / assistant-written hint (+ per step count)."""
    begin, end = LLM_SPECIALS["begin"], LLM_SPECIALS["end"]
    asst_hints = greedy_generate(asst, atok, [render_prompt(atok, assistant_message(e)) for e in examples],
                                 max_new_tokens=HINT_MAX_TOKENS, batch_size=batch_size)
    conds = {
        "no_hint": [llm_message(e) for e in examples],
        "gold_hint": [llm_message(e, thoughts=hint_text(e), begin=begin, end=end) for e in examples],
        "assistant_hint": [llm_message(e, thoughts=h, begin=begin, end=end) for e, h in zip(examples, asst_hints)],
    }
    res: dict = {"n": len(examples),
                 "assistant_hint_exact": round(sum(h == hint_text(e) for h, e in zip(asst_hints, examples)) / max(1, len(examples)), 4)}
    by_steps: dict = {}
    samples = {}
    for name, msgs in conds.items():
        comps = greedy_generate(llm, ltok, [render_prompt(ltok, m) for m in msgs],
                                max_new_tokens=max_new_tokens, batch_size=batch_size)
        ok = [is_correct(c, e.answer) for c, e in zip(comps, examples)]
        res[name] = round(sum(ok) / max(1, len(ok)), 4)
        for e, o in zip(examples, ok):
            by_steps.setdefault(str(len(e.steps)), {}).setdefault(name, []).append(o)
        samples[name] = comps[0]
    res["by_steps"] = {k: {n: round(sum(v) / len(v), 4) for n, v in d.items()} | {"n": len(d["no_hint"])}
                       for k, d in sorted(by_steps.items())}
    res["sample"] = {"question": examples[0].question, "assistant_hint": asst_hints[0], **samples} if examples else {}
    return res


# ------------------------------------------------------------------------- build

def _save(model, tok, folder: Path) -> None:
    from transformers import GenerationConfig

    model.generation_config = GenerationConfig(
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
        do_sample=False, max_new_tokens=256,
    )
    model.save_pretrained(folder)
    tok.save_pretrained(folder)


def build_miniworld(out_dir: str | Path, seed: int = 0, quick: bool = False, *, config: BuildConfig | None = None,
                    log=print) -> dict[str, Path]:
    """Generate data, train both mini LMs and save everything under out_dir.

    Returns {"llm", "assistant", "data", "train", "dev", "test", "manifest"} paths.
    """
    from transformers import LlamaForCausalLM, Qwen2ForCausalLM

    cfg = config or (BuildConfig.quick(seed) if quick else BuildConfig(seed=seed))
    out = Path(out_dir)
    t_start = time.time()
    old_threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        # 1. data
        paths = gen.write_splits(out / "data", seed=cfg.seed, n_train=cfg.n_train, n_dev=cfg.n_dev, n_test=cfg.n_test)
        records = {s: [json.loads(line) for line in open(p, encoding="utf-8")] for s, p in paths.items()}
        train = gen.to_examples(gen.pretraining_records(cfg.seed, cfg.n_extra, records), "pretrain")
        test = gen.to_examples(records["test"], "test")
        rng = random.Random(cfg.seed + 7)

        # 2. tokenizers, trained on the training split's texts
        begin, end = LLM_SPECIALS["begin"], LLM_SPECIALS["end"]
        corpus = ["user assistant system"]
        for e in gen.to_examples(records["train"], "train"):
            corpus += [llm_message(e, thoughts=hint_text(e)), assistant_message(e), target_text(e)]
        ltok = build_llm_tokenizer(corpus)
        atok = build_assistant_tokenizer(corpus)
        l_eot, a_eot = end_of_turn_text(ltok), end_of_turn_text(atok)

        # 3. LLM: each problem once: zero-shot prompt, gold hint in the thought block, or a block of
        #    N placeholder tokens (uninformative, so CoT-Unk starts near zero-shot as in the paper)
        pairs = []
        lph = LLM_SPECIALS["placeholder"]
        for e in train:
            reply = target_text(e) + l_eot
            u = rng.random()
            if u < cfg.llm_mix[0]:
                msg = llm_message(e)
            elif u < cfg.llm_mix[0] + cfg.llm_mix[1]:
                msg = llm_message(e, thoughts=hint_text(e), begin=begin, end=end)
            else:
                msg = llm_message(e, thoughts=lph * rng.choice(PLACEHOLDER_COUNTS), begin=begin, end=end)
            pairs.append((render_prompt(ltok, msg), reply))
        llm_seqs = _encode_pairs(ltok, pairs)
        log(f"data + tokenizers + encoding: {time.time() - t_start:.0f}s")
        torch.manual_seed(cfg.seed)
        llm = LlamaForCausalLM(_llm_config(cfg, ltok))
        log(f"LLM: {sum(p.numel() for p in llm.parameters())} params, {len(llm_seqs)} sequences")
        llm_stats = train_lm(llm, llm_seqs, steps=cfg.llm_steps, batch_size=cfg.batch_size, lr=cfg.llm_lr,
                             warmup=cfg.warmup, seed=cfg.seed, pad_id=ltok.pad_token_id, bf16=cfg.bf16,
                             log=log, name="llm")

        # 4. assistant: each problem once, half plain prompts, half with N placeholders -> hint
        ph = ASSISTANT_SPECIALS["placeholder"]
        pairs = []
        for e in train:
            reply = hint_text(e) + a_eot
            if rng.random() < 0.5:
                pairs.append((render_prompt(atok, assistant_message(e)), reply))
            else:
                n = rng.choice(PLACEHOLDER_COUNTS)
                pairs.append((render_prompt(atok, assistant_message(e, placeholders=ph * n)), reply))
        asst_seqs = _encode_pairs(atok, pairs)
        torch.manual_seed(cfg.seed + 1)
        asst = Qwen2ForCausalLM(_assistant_config(cfg, atok))
        log(f"assistant: {sum(p.numel() for p in asst.parameters())} params, {len(asst_seqs)} sequences")
        asst_stats = train_lm(asst, asst_seqs, steps=cfg.asst_steps, batch_size=cfg.batch_size, lr=cfg.asst_lr,
                              warmup=cfg.warmup, seed=cfg.seed + 1, pad_id=atok.pad_token_id, bf16=cfg.bf16,
                              log=log, name="assistant")
        t_train = time.time() - t_start
        log(f"trained both LMs: {t_train:.0f}s")

        # 5. save
        llm_dir, asst_dir = out / "llm", out / "assistant"
        _save(llm, ltok, llm_dir)
        _save(asst, atok, asst_dir)

        # 6. held-out accuracy (fp32 greedy, as the saved models load)
        acc = {}
        if cfg.n_eval:
            t0 = time.time()
            acc = evaluate(llm, ltok, asst, atok, test[:cfg.n_eval], max_new_tokens=cfg.max_new_tokens,
                           batch_size=cfg.eval_batch)
            acc["seconds"] = round(time.time() - t0, 1)
            log(f"evaluation: {acc['seconds']:.0f}s")
            log(f"test accuracy: no hint {acc['no_hint']}, gold hint {acc['gold_hint']}, "
                f"assistant hint {acc['assistant_hint']} (assistant hint exact {acc['assistant_hint_exact']})")
    finally:
        torch.set_num_threads(old_threads)

    manifest = {
        "seed": cfg.seed,
        "quick": quick,
        "config": asdict(cfg),
        "data": {s: len(r) for s, r in records.items()},
        "lm_training_problems": len(train),
        "hint_format": f"first {HINT_STEPS} calculator equations joined by ', ' (e.g. '8*12=96, 96*9=864')",
        "target_format": "## Step i: ... lines, then 'The answer is \\boxed{N}.', then the end-of-turn token",
        "llm": {"path": "llm", "architecture": "LlamaForCausalLM", "params": sum(p.numel() for p in llm.parameters()),
                "hidden_size": cfg.llm_hidden, "layers": cfg.llm_layers, "vocab_size": len(ltok),
                "special_tokens": LLM_SPECIALS, "end_of_turn": l_eot, "train": llm_stats},
        "assistant": {"path": "assistant", "architecture": "Qwen2ForCausalLM",
                      "params": sum(p.numel() for p in asst.parameters()), "hidden_size": cfg.asst_hidden,
                      "layers": cfg.asst_layers, "vocab_size": len(atok), "special_tokens": ASSISTANT_SPECIALS,
                      "end_of_turn": a_eot, "placeholder_counts_trained": list(PLACEHOLDER_COUNTS),
                      "hint_max_tokens": HINT_MAX_TOKENS, "train": asst_stats},
        "test_accuracy": acc,
        "train_seconds": round(t_train, 1),
        "build_seconds": round(time.time() - t_start, 1),
        "threads": cfg.threads or old_threads,
        "torch": torch.__version__,
    }
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return {"llm": out / "llm", "assistant": out / "assistant", "data": out / "data",
            "manifest": out / "MANIFEST.json", **paths}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output folder (llm/, assistant/, data/, MANIFEST.json)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="tiny sizes, seconds; the models learn nothing")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override BuildConfig fields")
    args = ap.parse_args(argv)
    cfg = BuildConfig.quick(args.seed) if args.quick else BuildConfig(seed=args.seed)
    cfg.threads = args.threads
    for kv in args.set:
        k, v = kv.split("=", 1)
        cur = getattr(cfg, k)
        if isinstance(cur, bool):
            setattr(cfg, k, v.lower() in ("1", "true", "yes"))
        elif isinstance(cur, tuple):
            setattr(cfg, k, tuple(float(x) for x in v.split(",")))
        else:
            setattr(cfg, k, type(cur)(v))
    build_miniworld(args.out, seed=args.seed, quick=args.quick, config=cfg, log=lambda s: print(s, flush=True))


if __name__ == "__main__":
    main()

"""Build the mini world from scratch on a CPU: data splits, two tokenizers, a mini LLM and a
smaller mini assistant, saved as ordinary Hugging Face folders, plus a MANIFEST.json with the
measured held-out accuracies.

    python -m softcot.miniworld.build --out softcot/miniworld/assets          # ~12 min, 2 cores
    python -m softcot.miniworld.build --out /tmp/mw --quick                   # seconds, tiny

    from softcot.miniworld.build import build_miniworld
    paths = build_miniworld("out/mw", seed=0, quick=True)   # {"llm": ..., "assistant": ..., ...}

What is trained (everything from scratch, deterministic from the seed on a given machine and
thread count):

* the LLM (LlamaForCausalLM) on its chat prompt -> "## Step i: ...\\nThe answer is \\boxed{N}."
  + end-of-turn, 40% of the prompts with no thought block (zero-shot CoT), 40% with the gold
  HINT in the thought block (BEGIN hint END, half of them padded with placeholder filler) and
  20% with N placeholder tokens there (so an uninformative block is ignored: CoT-Unk ~
  zero-shot, as for real LLMs), loss on the reply only;
* the assistant (Qwen2ForCausalLM) on its chat prompt -> HINT + end-of-turn, 70% of the prompts
  with N placeholder slots appended, where slot j is also trained to predict hint token j (see
  `assistant_sequence`): it writes its hint at the slots in one pass, which is what SoftCoT's
  soft thoughts (the last-layer slot states) carry.

HINT is the one fact the world keeps out of its questions: how many items a pack holds
("Tom has 3 crates of eggs." needs crates=12; `generator.PACK_SIZES`). The assistant trains on
the real world (the train split plus `n_extra` fresh problems); the LLM trains on as many fresh
problems in which packs have random sizes, told only in its gold hints. So the LLM reasons and
reads hints but never learns a pack size: without a hint it guesses, and whatever helps it on
pack problems must come from the assistant. None of them is a dev/test question; the shipped
train split is what SoftCoT's projection trains on.

This from-scratch pre-training of the two mini LMs (`train_lm`, full-parameter next-token
training) is a separate step from softcot's trainer (`softcot.train.train`, which only ever trains
a method's small trainable part beside frozen LMs); its held-out check is `measure_world`.
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

# The thought block the shipped LLM learned hints in (sentence + markers), whatever the default.
HINT_BLOCK = "preamble"

HINT_MAX_TOKENS = 32  # Assist-CoT: the assistant writes at most this many tokens
# N the LMs see in training. The hint needs at most 2 slots; slot states are causal, so fewer
# slots at test time (the demo's N=4) read the same first slots.
PLACEHOLDER_COUNTS = (8, 16, 24, 32)


# ------------------------------------------------------------------------- texts

_PACK_START = re.compile(r"has \d+ (" + "|".join(gen.PACK_SIZES) + r") of ")


def hint_text(example) -> str:
    """The hint: the world fact the question leaves out, the pack size ("12" for a problem that
    starts with crates), "" for one that needs none. Digits only, so both tokenizers split it the
    same way (one token per digit) and N=4 slots hold it. Read off the first step ("3*12=36"),
    so it is right in the LLM's random-size world too, and for GSM8K-format-loaded Examples."""
    m = _PACK_START.search(example.question.split(".")[0])
    if not m:
        return ""
    first = (example.meta.get("equations") or [re.sub(r"<<[^>]*>>", "", s) for s in example.steps or [""]])[0]
    size = re.search(r"\d+\*(\d+)=", first.replace(" ", ""))
    return size.group(1) if size else ""


def strict_correct(completion: str, gold: str) -> bool:
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
    asst_steps: int = 500
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


def assistant_sequence(tok, example, n: int, ph_id: int, hint: str | None = None) -> tuple[list[int], list[int]]:
    """The assistant's training sequence: prompt (+ n placeholder slots) -> hint + end of turn.

    Labels: the reply (hint text, written left to right) and, with n > 0, the slots: the hidden
    state at slot j is trained to predict hint token j (placeholder once the hint is done), so the
    assistant writes its hint at the slots in one parallel pass, like a model trained with pause
    or thought tokens. Those last-layer slot states are exactly SoftCoT's soft thoughts.
    `hint`: the text to teach (default: the gold `hint_text`).
    """
    ph = tok.convert_ids_to_tokens(ph_id)
    prompt = tok(render_prompt(tok, assistant_message(example, placeholders=ph * n if n else None)),
                 add_special_tokens=False)["input_ids"]
    hint = tok(hint_text(example) if hint is None else hint, add_special_tokens=False)["input_ids"]
    reply = hint + tok(end_of_turn_text(tok), add_special_tokens=False)["input_ids"]  # a special token: same ids
    labels = [-100] * len(prompt) + reply
    slots = [i for i, t in enumerate(prompt) if t == ph_id]
    for j, pos in enumerate(slots):  # labels are shifted inside the model: label at pos+1 is read at pos
        labels[pos + 1] = hint[j] if j < len(hint) else ph_id
    return prompt + reply, labels


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


@torch.no_grad()
def slot_hints(model, tok, examples, *, n: int = 8, batch_size: int = 100) -> list[str]:
    """What the assistant writes at its n placeholder slots in one pass (argmax of each slot's
    logits, up to the first placeholder): the text its soft thoughts carry."""
    ph_id = tok.convert_tokens_to_ids(ASSISTANT_SPECIALS["placeholder"])
    tok.padding_side = "left"
    out = []
    for b in range(0, len(examples), batch_size):
        texts = [render_prompt(tok, assistant_message(e, placeholders=tok.convert_ids_to_tokens(ph_id) * n))
                 for e in examples[b:b + batch_size]]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        pred = model(**enc).logits.argmax(-1)  # (B, T)
        for row_ids, row_pred in zip(enc["input_ids"], pred):
            ids = row_pred[row_ids == ph_id].tolist()
            ids = ids[:ids.index(ph_id)] if ph_id in ids else ids
            out.append(tok.decode(ids))
    return out


def measure_world(llm, ltok, asst, atok, examples, *, max_new_tokens: int, batch_size: int) -> dict:
    """Held-out greedy accuracy: no hint / gold hint / assistant-written hint / the hint the
    assistant writes at its slots (SoftCoT's ceiling with a perfect projection); also per step
    count and for pack / no-pack problems."""
    begin, end = LLM_SPECIALS["begin"], LLM_SPECIALS["end"]
    asst_hints = greedy_generate(asst, atok, [render_prompt(atok, assistant_message(e)) for e in examples],
                                 max_new_tokens=HINT_MAX_TOKENS, batch_size=batch_size)
    asst_slots = slot_hints(asst, atok, examples, batch_size=batch_size)
    conds = {
        "no_hint": [llm_message(e) for e in examples],
        "gold_hint": [llm_message(e, thoughts=hint_text(e), begin=begin, end=end, block=HINT_BLOCK) for e in examples],
        "assistant_hint": [llm_message(e, thoughts=h, begin=begin, end=end, block=HINT_BLOCK) for e, h in zip(examples, asst_hints)],
        "assistant_slot_hint": [llm_message(e, thoughts=h, begin=begin, end=end, block=HINT_BLOCK) for e, h in zip(examples, asst_slots)],
    }
    res: dict = {"n": len(examples),
                 "assistant_hint_exact": round(sum(h == hint_text(e) for h, e in zip(asst_hints, examples)) / max(1, len(examples)), 4),
                 "assistant_slot_exact": round(sum(h == hint_text(e) for h, e in zip(asst_slots, examples)) / max(1, len(examples)), 4)}
    groups: dict = {}
    samples = {}
    for name, msgs in conds.items():
        comps = greedy_generate(llm, ltok, [render_prompt(ltok, m) for m in msgs],
                                max_new_tokens=max_new_tokens, batch_size=batch_size)
        ok = [strict_correct(c, e.answer) for c, e in zip(comps, examples)]
        res[name] = round(sum(ok) / max(1, len(ok)), 4)
        for e, o in zip(examples, ok):
            groups.setdefault(str(len(e.steps)), {}).setdefault(name, []).append(o)
            groups.setdefault("pack" if hint_text(e) else "no pack", {}).setdefault(name, []).append(o)
        samples[name] = comps[0]
    res["by_group"] = {k: {n: round(sum(v) / len(v), 4) for n, v in d.items()} | {"n": len(d["no_hint"])}
                       for k, d in sorted(groups.items())}
    res["sample"] = {"question": examples[0].question, "gold_hint_text": hint_text(examples[0]),
                     "assistant_hint_text": asst_hints[0], "assistant_slot_text": asst_slots[0], **samples} if examples else {}
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
        # the assistant learns the real world; the LLM a world where packs have random sizes
        train = gen.to_examples(gen.pretraining_records(cfg.seed, cfg.n_extra, records), "pretrain")
        llm_train = gen.to_examples(gen.pretraining_records(cfg.seed, cfg.n_extra, records, random_packs=True), "llm")
        test = gen.to_examples(records["test"], "test")
        rng = random.Random(cfg.seed + 7)

        # 2. tokenizers, trained on the training split's texts
        begin, end = LLM_SPECIALS["begin"], LLM_SPECIALS["end"]
        corpus = ["user assistant system"]
        for e in gen.to_examples(records["train"], "train"):
            corpus += [llm_message(e, thoughts=hint_text(e), block=HINT_BLOCK), assistant_message(e), target_text(e)]
        ltok = build_llm_tokenizer(corpus)
        atok = build_assistant_tokenizer(corpus)
        l_eot, a_eot = end_of_turn_text(ltok), end_of_turn_text(atok)

        # 3. LLM: each problem once: zero-shot prompt, gold hint in the thought block (half of
        #    them followed by placeholder filler, which is what N > len(hint) soft thoughts look
        #    like), or N placeholders alone (uninformative, so CoT-Unk starts near zero-shot).
        #    Its packs have random sizes: it learns to read a pack's size from a hint, never the size.
        pairs = []
        lph = LLM_SPECIALS["placeholder"]
        for e in llm_train:
            reply = target_text(e) + l_eot
            u = rng.random()
            if u < cfg.llm_mix[0]:
                msg = llm_message(e)
            elif u < cfg.llm_mix[0] + cfg.llm_mix[1]:
                hint = hint_text(e)
                if rng.random() < 0.5:
                    hint += lph * max(0, rng.choice(PLACEHOLDER_COUNTS) - len(ltok(hint, add_special_tokens=False)["input_ids"]))
                msg = llm_message(e, thoughts=hint, begin=begin, end=end, block=HINT_BLOCK)
            else:
                msg = llm_message(e, thoughts=lph * rng.choice(PLACEHOLDER_COUNTS), begin=begin, end=end, block=HINT_BLOCK)
            pairs.append((render_prompt(ltok, msg), reply))
        llm_seqs = _encode_pairs(ltok, pairs)
        log(f"data + tokenizers + encoding: {time.time() - t_start:.0f}s")
        torch.manual_seed(cfg.seed)
        llm = LlamaForCausalLM(_llm_config(cfg, ltok))
        log(f"LLM: {sum(p.numel() for p in llm.parameters())} params, {len(llm_seqs)} sequences")
        llm_stats = train_lm(llm, llm_seqs, steps=cfg.llm_steps, batch_size=cfg.batch_size, lr=cfg.llm_lr,
                             warmup=cfg.warmup, seed=cfg.seed, pad_id=ltok.pad_token_id, bf16=cfg.bf16,
                             log=log, name="llm")

        # 4. assistant (the real world's pack sizes): each problem once; 30% plain prompts -> hint
        #    text, 70% with N placeholders, where slot j also learns hint token j (then filler)
        ph_id = atok.convert_tokens_to_ids(ASSISTANT_SPECIALS["placeholder"])
        asst_seqs = [assistant_sequence(atok, e, 0 if rng.random() < 0.3 else rng.choice(PLACEHOLDER_COUNTS), ph_id)
                     for e in train]
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
            acc = measure_world(llm, ltok, asst, atok, test[:cfg.n_eval], max_new_tokens=cfg.max_new_tokens,
                           batch_size=cfg.eval_batch)
            acc["seconds"] = round(time.time() - t0, 1)
            log(f"evaluation: {acc['seconds']:.0f}s")
            log(f"test accuracy: no hint {acc['no_hint']}, gold hint {acc['gold_hint']}, "
                f"assistant hint {acc['assistant_hint']}, slot hint {acc['assistant_slot_hint']} "
                f"(exact: written {acc['assistant_hint_exact']}, slots {acc['assistant_slot_exact']})")
    finally:
        torch.set_num_threads(old_threads)

    manifest = {
        "seed": cfg.seed,
        "quick": quick,
        "config": asdict(cfg),
        "data": {s: len(r) for s, r in records.items()},
        "lm_training_problems": {"llm": len(llm_train), "assistant": len(train)},
        "hint_format": "the pack size the question leaves out, digits only: '12' for crates ('' when there is no pack)",
        "pack_sizes": gen.PACK_SIZES,
        "llm_pack_sizes": f"random {gen.RANDOM_PACK_SIZES[0]}..{gen.RANDOM_PACK_SIZES[1]} (the LLM never sees the real ones)",
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
    ap.add_argument("--world", choices=("gsm8k", "families"), default="gsm8k",
                    help="gsm8k: the demo's world (this module); families: the five task families and two LLM "
                    "families (softcot.miniworld.build_families; its --set keys differ)")
    args = ap.parse_args(argv)
    if args.world == "families":
        from softcot.miniworld import build_families

        return build_families.main(["--out", args.out, "--seed", str(args.seed), "--threads", str(args.threads),
                                    *(["--quick"] if args.quick else []), *(["--set", *args.set] if args.set else [])])
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

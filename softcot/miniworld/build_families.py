"""Build the five-family mini world from scratch on a CPU: the five task families in their native
formats (`families.py`), one mini assistant that knows the world's facts imperfectly, and two mini
LLM families with different tokenizers, plus a MANIFEST.json with what each model can do per family.

    python -m softcot.miniworld.build_families --out runs/world5            # the full build (2-core CPU)
    python -m softcot.miniworld.build_families --out /tmp/w5 --quick        # seconds, tiny

What is trained (from scratch, deterministic from the seed on a given machine and thread count):

* the assistant (Qwen2-style, ChatML tokenizer) on the real world: question -> the fact it leaves
  out, as `build.assistant_sequence` teaches it (written, and at its placeholder slots). For the
  world's unsure facts the taught hint is either candidate (`families.assistant_hint`), so its
  written hint is right on a share of questions below 100 % and its slot states hold both;
* two LLMs on the LLM's world, where every fact is random and told only in a gold hint, so they
  learn to read hints and never the facts: a Llama-style one with its own tokenizer and chat
  template (`llama/`), and a Qwen-style one that shares the assistant's tokenizer (`qwen/`, as
  Qwen2.5-7B shares Qwen2.5-1.5B's). Their prompts: no thought block / gold hint (half padded
  with placeholders) / placeholders alone (`build.BuildConfig.llm_mix`); the reply is the
  family's worked solution (`data.target_text`), loss on the reply only.

The measured share of questions each model gets right (greedy, test split, per family and LLM)
goes into MANIFEST.json: the LLM with no hint and with the gold hint, and the assistant's own
hint (written and at its slots) against the true fact.
"""
from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from softcot import scoring
from softcot.data import load_examples, target_text
from softcot.miniworld import families as F
from softcot.miniworld.build import (
    HINT_BLOCK,
    HINT_MAX_TOKENS,
    PLACEHOLDER_COUNTS,
    BuildConfig,
    _assistant_config,
    _encode_pairs,
    _llm_config,
    _save,
    assistant_sequence,
    greedy_generate,
    slot_hints,
    train_lm,
)
from softcot.miniworld.tokenizer import ASSISTANT_SPECIALS, LLM_SPECIALS, build_assistant_tokenizer, build_llm_tokenizer
from softcot.utils import cpu_has_native_bf16
from softcot.prompts import assistant_message, end_of_turn_text, llm_message, render_prompt


@dataclass
class FamiliesConfig:
    seed: int = 0
    n_train: int = 1000  # per family: what SoftCoT's projection trains on
    n_dev: int = 150
    n_test: int = 300
    n_lm: int = 5000  # per family: fresh problems the mini LMs themselves train on (never dev/test)
    lms: BuildConfig = None  # sizes and steps of the LMs (build.BuildConfig's fields)

    def __post_init__(self):
        if self.lms is None:
            # bf16 autocast only where the CPU computes bf16 natively (an AVX2-only CPU runs it ~50x slower)
            # mostly gold-hint prompts: every family's skills are in its worked solution, so each
            # condition teaches them, and hint reading is what the methods compare
            self.lms = BuildConfig(seed=self.seed, llm_steps=1500, asst_steps=900, n_eval=200,
                                   llm_mix=(0.25, 0.55, 0.2), bf16=cpu_has_native_bf16())

    @classmethod
    def quick(cls, seed: int = 0) -> "FamiliesConfig":
        return cls(seed=seed, n_train=12, n_dev=4, n_test=6, n_lm=12, lms=BuildConfig.quick(seed))


def to_examples(family: str, its: list[F.Item]) -> list:
    """Items as softcot reads their native records (the real loader), with the worked solution the
    LLM is trained to write as steps and the gold hint in meta."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"x.{F.FILE_EXT[family]}"
        F.write_split(path, family, its)
        exs = load_examples(family, path)
    return [replace(e, steps=it.steps, meta={**e.meta, "hint": it.hint}) for e, it in zip(exs, its)]


def correct(completion: str, ex) -> bool:
    """The project's strict scorer: only an explicit \\boxed{..} or #### answer counts."""
    pred = scoring.extract_answer(completion, ex.task, "strict", options=ex.options)
    return scoring.is_correct(pred, ex.answer, ex.task)


def _specials(tok) -> dict:
    """The special tokens of one of the two tokenizers (the Llama LLM's, or the assistant's ChatML one)."""
    return LLM_SPECIALS if tok.name_or_path == "miniworld-llm" else ASSISTANT_SPECIALS


def llm_pairs(tok, examples: list, mix: tuple, rng: random.Random) -> list[tuple[str, str]]:
    """(prompt, reply) texts for an LLM: no block / gold hint (half padded with placeholders) /
    placeholders alone, the reply the worked solution + end of turn."""
    sp = _specials(tok)
    ph, begin, end = sp["placeholder"], sp["begin"], sp["end"]
    eot = end_of_turn_text(tok)
    out = []
    for e in examples:
        u = rng.random()
        if u < mix[0]:
            msg = llm_message(e)
        elif u < mix[0] + mix[1]:
            hint = e.meta["hint"]
            if rng.random() < 0.5:
                hint += ph * max(0, rng.choice(PLACEHOLDER_COUNTS) - len(tok(hint, add_special_tokens=False)["input_ids"]))
            msg = llm_message(e, thoughts=hint, begin=begin, end=end, block=HINT_BLOCK)
        else:
            msg = llm_message(e, thoughts=ph * rng.choice(PLACEHOLDER_COUNTS), begin=begin, end=end, block=HINT_BLOCK)
        out.append((render_prompt(tok, msg), target_text(e) + eot))
    return out


def measure(llm, tok, examples: list, asst_hints: list[str], *, cfg: BuildConfig) -> dict:
    """Greedy test accuracy of one LLM on one family: no hint, gold hint, the assistant's written hint."""
    sp = _specials(tok)
    conds = {"no_hint": [llm_message(e) for e in examples],
             "gold_hint": [llm_message(e, thoughts=e.meta["hint"], begin=sp["begin"], end=sp["end"], block=HINT_BLOCK)
                           for e in examples],
             "assistant_hint": [llm_message(e, thoughts=h, begin=sp["begin"], end=sp["end"], block=HINT_BLOCK)
                                for e, h in zip(examples, asst_hints)]}
    res = {}
    needs = [bool(e.meta["hint"]) for e in examples]
    for name, msgs in conds.items():
        comps = greedy_generate(llm, tok, [render_prompt(tok, m) for m in msgs], max_new_tokens=cfg.max_new_tokens,
                                batch_size=cfg.eval_batch)
        ok = [correct(c, e) for c, e in zip(comps, examples)]
        res[name] = round(sum(ok) / max(1, len(ok)), 4)
        res[name + "_needs_fact"] = round(sum(o for o, n in zip(ok, needs) if n) / max(1, sum(needs)), 4)
    return res


def build_families(out_dir: str | Path, seed: int = 0, quick: bool = False, *, config: FamiliesConfig | None = None,
                   log=print) -> dict:
    from transformers import LlamaForCausalLM, Qwen2ForCausalLM

    cfg = config or (FamiliesConfig.quick(seed) if quick else FamiliesConfig(seed=seed))
    lm = cfg.lms
    out = Path(out_dir)
    t_start = time.time()
    old_threads = torch.get_num_threads()
    if lm.threads:
        torch.set_num_threads(lm.threads)
    try:
        # 1. the five families' splits, in their native formats, and the LMs' own training problems
        splits = {f: F.make_splits(f, cfg.seed, cfg.n_train, cfg.n_dev, cfg.n_test) for f in F.FAMILIES}
        paths = {f: {s: out / "data" / f / f"{s}.{F.FILE_EXT[f]}" for s in sp} for f, sp in splits.items()}
        for f, sp in splits.items():  # the splits drawn once: written here, reused below
            for s, its in sp.items():
                F.write_split(paths[f][s], f, its)
        held = {f: {F.question_of(it) for s in ("dev", "test") for it in splits[f][s]} for f in F.FAMILIES}
        train = {f: to_examples(f, splits[f]["train"]) for f in F.FAMILIES}
        test = {f: to_examples(f, splits[f]["test"]) for f in F.FAMILIES}
        llm_items = {f: F.items(f, cfg.seed + 1, len(splits[f]["train"]) + cfg.n_lm, llm_world=True, exclude=held[f])
                     for f in F.FAMILIES}
        asst_items = {f: splits[f]["train"] + F.items(f, cfg.seed + 2, cfg.n_lm, exclude=held[f] | {
            F.question_of(it) for it in splits[f]["train"]}) for f in F.FAMILIES}
        rng = random.Random(cfg.seed + 7)
        llm_ex = [e for f in F.FAMILIES for e in to_examples(f, llm_items[f])]
        rng.shuffle(llm_ex)

        # 2. tokenizers on the train splits' texts: the Llama LLM's own; the assistant's, shared by the Qwen LLM
        corpus = ["user assistant system"]
        for f in F.FAMILIES:
            for e in train[f]:
                corpus += [llm_message(e, thoughts=e.meta["hint"], block=HINT_BLOCK), assistant_message(e), target_text(e)]
        ltok, atok = build_llm_tokenizer(corpus), build_assistant_tokenizer(corpus)
        log(f"data + tokenizers: {time.time() - t_start:.0f}s")

        # 3. the two LLMs, on the same problems and prompt mix, each through its own template
        llms, stats = {}, {}
        for name, tok, arch, conf in (("llama", ltok, LlamaForCausalLM, _llm_config(lm, ltok)),
                                      ("qwen", atok, Qwen2ForCausalLM, _qwen_llm_config(lm, atok))):
            seqs = _encode_pairs(tok, llm_pairs(tok, llm_ex, lm.llm_mix, random.Random(cfg.seed + 11)))
            torch.manual_seed(cfg.seed)
            model = arch(conf)
            log(f"LLM {name}: {sum(p.numel() for p in model.parameters())} params, {len(seqs)} sequences")
            stats[name] = train_lm(model, seqs, steps=lm.llm_steps, batch_size=lm.batch_size, lr=lm.llm_lr,
                                   warmup=lm.warmup, seed=cfg.seed, pad_id=tok.pad_token_id, bf16=lm.bf16, log=log,
                                   name=f"llm-{name}")
            llms[name] = (model, tok)

        # 4. the assistant on the real world, taught an unsure fact's either candidate
        ph_id = atok.convert_tokens_to_ids(ASSISTANT_SPECIALS["placeholder"])
        arng = random.Random(cfg.seed + 13)
        asst_seqs = []
        for f in F.FAMILIES:
            for e, it in zip(to_examples(f, asst_items[f]), asst_items[f]):
                n = 0 if arng.random() < 0.3 else arng.choice(PLACEHOLDER_COUNTS)
                asst_seqs.append(assistant_sequence(atok, e, n, ph_id, hint=F.assistant_hint(it.fact, arng)))
        torch.manual_seed(cfg.seed + 1)
        asst = Qwen2ForCausalLM(_assistant_config(lm, atok))
        log(f"assistant: {sum(p.numel() for p in asst.parameters())} params, {len(asst_seqs)} sequences")
        stats["assistant"] = train_lm(asst, asst_seqs, steps=lm.asst_steps, batch_size=lm.batch_size, lr=lm.asst_lr,
                                      warmup=lm.warmup, seed=cfg.seed + 1, pad_id=atok.pad_token_id, bf16=lm.bf16,
                                      log=log, name="assistant")
        t_train = time.time() - t_start
        for name, (model, tok) in llms.items():
            _save(model, tok, out / name)
        _save(asst, atok, out / "assistant")

        # 5. per family: the assistant's own accuracy on the fact, each LLM without / with hints
        acc: dict = {}
        t0 = time.time()
        for f in F.FAMILIES:
            exs = test[f][: lm.n_eval] if lm.n_eval else []
            if not exs:
                continue
            written = greedy_generate(asst, atok, [render_prompt(atok, assistant_message(e)) for e in exs],
                                      max_new_tokens=HINT_MAX_TOKENS, batch_size=lm.eval_batch)
            slots = slot_hints(asst, atok, exs, batch_size=lm.eval_batch)
            needs = [e for e in exs if e.meta["hint"]]
            acc[f] = {"n": len(exs), "needs_fact": len(needs),
                      "assistant_written": _share(written, exs), "assistant_slots": _share(slots, exs)}
            for name, (model, tok) in llms.items():
                acc[f][name] = measure(model, tok, exs, written, cfg=lm)
            log(f"{f}: {json.dumps(acc[f])}")
        eval_s = round(time.time() - t0, 1)
    finally:
        torch.set_num_threads(old_threads)

    manifest = {
        "seed": cfg.seed, "quick": quick, "config": {k: v for k, v in asdict(cfg).items() if k != "lms"},
        "lm_config": asdict(lm),
        "families": {f: {"folder": f"data/{f}", "files": {s: p.name for s, p in paths[f].items()}} for f in F.FAMILIES},
        "facts": {"sure_packs": F.SURE_PACKS, "unsure_packs": {k: list(v) for k, v in F.UNSURE_PACKS.items()},
                  "sure_festivals": {k: list(v) for k, v in F.SURE_FESTIVALS.items()},
                  "unsure_festivals": {k: [list(x) for x in v] for k, v in F.UNSURE_FESTIVALS.items()},
                  "unsure_true_share": F.UNSURE_TRUE_SHARE,
                  "llm_world": "every fact random, told only in gold hints"},
        "models": {name: {"path": name, "architecture": type(m).__name__, "params": sum(p.numel() for p in m.parameters()),
                          "hidden_size": m.config.hidden_size, "vocab_size": len(t), "train": stats[name]}
                   for name, (m, t) in {**llms, "assistant": (asst, atok)}.items()},
        "test_accuracy": acc, "eval_seconds": eval_s if acc else 0.0,
        "train_seconds": round(t_train, 1), "build_seconds": round(time.time() - t_start, 1),
        "torch": torch.__version__,
    }
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return {"manifest": out / "MANIFEST.json", "data": paths, **{n: out / n for n in (*llms, "assistant")}}


def _share(hints: list[str], exs: list) -> float | None:
    """The assistant's accuracy on what it knows: its hint equals the true fact, over the
    questions that need one."""
    pairs = [(h.strip(), e.meta["hint"]) for h, e in zip(hints, exs) if e.meta["hint"]]
    return round(sum(h == g for h, g in pairs) / len(pairs), 4) if pairs else None


def _qwen_llm_config(cfg: BuildConfig, tok):
    """The Qwen-style LLM: the Llama LLM's sizes, Qwen2's architecture (GQA, no BOS)."""
    from transformers import Qwen2Config

    return Qwen2Config(
        vocab_size=len(tok), hidden_size=cfg.llm_hidden, intermediate_size=cfg.llm_ffn,
        num_hidden_layers=cfg.llm_layers, num_attention_heads=cfg.llm_heads,
        num_key_value_heads=max(1, cfg.llm_heads // 2), max_position_embeddings=512, tie_word_embeddings=True,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None,
    )


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output folder (data/<family>/, llama/, qwen/, assistant/, MANIFEST.json)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="tiny sizes, seconds; the models learn nothing")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="override FamiliesConfig fields, or the LMs' (build.BuildConfig) as lms.KEY=VALUE")
    args = ap.parse_args(argv)
    cfg = FamiliesConfig.quick(args.seed) if args.quick else FamiliesConfig(seed=args.seed)
    cfg.lms.threads = args.threads
    for kv in args.set:
        k, v = kv.split("=", 1)
        obj, k = (cfg.lms, k[4:]) if k.startswith("lms.") else (cfg, k)
        cur = getattr(obj, k)
        setattr(obj, k, v.lower() in ("1", "true", "yes") if isinstance(cur, bool) else type(cur)(v))
    build_families(args.out, seed=args.seed, quick=args.quick, config=cfg, log=lambda s: print(s, flush=True))


if __name__ == "__main__":
    main()

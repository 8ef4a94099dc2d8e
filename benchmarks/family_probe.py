"""Can a mini LLM learn a family's worked solution in the build's budget? A cheap probe before a rebuild.

    python benchmarks/family_probe.py --families aqua,date --steps 600 --out runs/family-probe

Trains one Llama-style mini LLM (the build's sizes) from scratch on the LLM world of the given
families only (the build's prompt mix: no hint / gold hint / placeholders), for --steps steps of 32,
then decodes the first --n test questions of each family greedily with no hint and with the gold
hint and scores them with softcot's strict scorer. With two families a 600-step probe gives each
family about the exposure it gets in the 1,500-step five-family build. Writes probe.json and prints
one example completion per family.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    import torch
    from transformers import LlamaForCausalLM

    from softcot.data import target_text
    from softcot.miniworld import build_families as B
    from softcot.miniworld import families as F
    from softcot.miniworld.build import HINT_BLOCK, BuildConfig, _encode_pairs, _llm_config, greedy_generate, train_lm
    from softcot.miniworld.tokenizer import LLM_SPECIALS, build_llm_tokenizer
    from softcot.prompts import llm_message, render_prompt

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--families", default="aqua,date")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--n-lm", type=int, default=5000, help="LLM-world training problems per family")
    ap.add_argument("--n", type=int, default=100, help="test questions decoded per family and condition")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/family-probe")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    fams = args.families.split(",")
    t0 = time.time()
    lm = BuildConfig(seed=args.seed, llm_steps=args.steps, llm_mix=(0.25, 0.55, 0.2), bf16=False)
    test = {f: B.to_examples(f, F.items(f, args.seed, args.n)) for f in fams}
    held = {f: {e.question for e in test[f]} for f in fams}
    train = {f: F.items(f, args.seed + 1, args.n_lm, llm_world=True, exclude=held[f]) for f in fams}
    llm_ex = [e for f in fams for e in B.to_examples(f, train[f])]
    random.Random(args.seed + 7).shuffle(llm_ex)
    corpus = ["user assistant system"] + [x for e in llm_ex[:3000] for x in
                                          (llm_message(e, thoughts=e.meta["hint"], block=HINT_BLOCK), target_text(e))]
    tok = build_llm_tokenizer(corpus)
    seqs = _encode_pairs(tok, B.llm_pairs(tok, llm_ex, lm.llm_mix, random.Random(args.seed + 11)))
    lengths = sorted(len(s[0]) for s in seqs)
    torch.manual_seed(args.seed)
    model = LlamaForCausalLM(_llm_config(lm, tok))
    stats = train_lm(model, seqs, steps=args.steps, batch_size=lm.batch_size, lr=lm.llm_lr, warmup=lm.warmup,
                     seed=args.seed, pad_id=tok.pad_token_id, bf16=False, name="probe")
    res: dict = {"families": fams, "steps": args.steps, "train": stats, "seq_len_median": lengths[len(lengths) // 2],
                 "seq_len_max": lengths[-1]}
    sp = LLM_SPECIALS
    for f in fams:
        exs = test[f]
        res[f] = {}
        for cond in ("no_hint", "gold_hint"):
            msgs = [llm_message(e) if cond == "no_hint" else
                    llm_message(e, thoughts=e.meta["hint"], begin=sp["begin"], end=sp["end"], block=HINT_BLOCK) for e in exs]
            comps = greedy_generate(model, tok, [render_prompt(tok, m) for m in msgs], max_new_tokens=160)
            ok = [B.correct(c, e) for c, e in zip(comps, exs)]
            res[f][cond] = round(100 * sum(ok) / len(ok), 1)
            res[f][cond + "_ntok_max"] = max(len(tok(c, add_special_tokens=False)["input_ids"]) for c in comps)
            if cond == "gold_hint":
                res[f]["example"] = {"question": exs[0].question, "gold": exs[0].answer, "completion": comps[0]}
        print(f"{f}: {json.dumps(res[f], indent=1)}", flush=True)
    res["wall_s"] = round(time.time() - t0, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "probe.json").write_text(json.dumps(res, indent=1) + "\n")
    print(f"wall {res['wall_s']} s -> {out / 'probe.json'}")


if __name__ == "__main__":
    main()

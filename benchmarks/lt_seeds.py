"""LightThinker's training over fresh seeds on the mini world: does every seed learn, and if not, why?

    python benchmarks/lt_seeds.py --recipes 'old;lr=1e-3,limit=0' --seeds 1-5 --out runs/lt-seeds

For each (recipe, training seed): train LightThinker (gists + LoRA) on the mini world's train split
as `benchmarks/ideas.py` does, then decode the first --limit dev questions greedily and record what
tells a run that learns from one that does not: dev accuracy, the share of completions that state
no answer at all, the steps compressed per question, the final train / dev loss, the first steps'
gradient norm, and the norm of the gist vectors before and after. A finished run is never redone
(OUT/RECIPE/sS/result.json); OUT/summary.md has one table per recipe with the spread and how many
seeds land within --margin points of that recipe's best seed.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# recipe -> overrides of the demo's training config (TrainConfig fields) and of LightThinkerConfig
RECIPES: dict[str, dict] = {
    # the recipe ideas.py used when LightThinker scored 13.2 % in one run and 55.9 % in another
    "old": {"train": {"limit": 0, "lr": 3e-3, "epochs": 1}},
    "old-lr1e-3": {"train": {"limit": 0, "lr": 1e-3, "epochs": 1}},
    "demo": {"train": {}},  # the current SoftCoT recipe (20 steps of 32 at lr 3e-4) as it is
}


def parse_recipe(name: str) -> dict:
    """A named recipe, or 'lr=..,limit=..,epochs=..,gist_init=..' written inline."""
    if name in RECIPES:
        return RECIPES[name]
    out: dict = {"train": {}, "lt": {}}
    for kv in name.split(","):
        k, _, v = kv.partition("=")
        if k in ("lr",):
            out["train"][k] = float(v)
        elif k in ("limit", "epochs", "batch_size"):
            out["train"][k] = int(v)
        elif k == "schedule":
            out["train"][k] = v
        elif k == "group_by_length":
            out["train"][k] = v.lower() in ("1", "true", "yes")
        elif k == "gist_tokens":
            out["lt"][k] = int(v)
        elif k == "tail_loss":
            out["lt"][k] = float(v)
        elif k == "fade":
            out["lt"][k] = v.replace("+", ",")
        elif k in ("lora_r", "lora_targets"):
            out.setdefault("lora", {})[k[5:]] = int(v) if k == "lora_r" else v.replace("+", ",")
        else:
            raise SystemExit(f"--recipes: unknown key {k!r} in {name!r}; expected lr, limit, epochs, batch_size, schedule, group_by_length, gist_tokens, tail_loss, fade (a+b), lora_r, lora_targets (a+b)")
    return out


def run_one(models, world, recipe: str, seed: int, out: Path, limit: int) -> dict:
    import torch

    from softcot.config import DecodingConfig, EvalConfig
    from softcot.data import load_examples
    from softcot.demo import DemoConfig, method_config, train_config
    from softcot.evaluate import evaluate
    from softcot.methods import build_method
    from softcot.scoring import extract_answer
    from softcot.train import train
    from softcot.utils import seed_everything

    res_path = out / recipe.replace("/", "_") / f"s{seed}" / "result.json"
    if res_path.is_file():
        return json.loads(res_path.read_text())
    ov = parse_recipe(recipe)
    demo = DemoConfig()
    cfg = method_config("lightthinker", demo, world)
    if ov.get("lora"):
        cfg = dataclasses.replace(cfg, lora=dataclasses.replace(cfg.lora, **ov["lora"]))
    if ov.get("lt"):
        cfg = dataclasses.replace(cfg, lightthinker=dataclasses.replace(cfg.lightthinker, **ov["lt"]))
    llm, tok = models["llm"]
    import copy

    seed_everything(seed)  # LoRA's A matrices and the data order follow the training seed
    m = build_method(cfg, models={"llm": (copy.deepcopy(llm), tok), "assistant": models["assistant"]})
    gist0 = m.trainable["gist"].weight.detach().norm(dim=-1).mean().item()
    train_all = load_examples("miniworld", world["train"])
    tc = dataclasses.replace(train_config(demo, res_path.parent / "ckpt", len(train_all), m, seed), **ov["train"])
    train_ex = train_all[: tc.limit] if tc.limit else train_all
    dev_ex = load_examples("miniworld", world["dev"], limit=limit)
    t0 = time.time()
    summary = train(m, tc, train_ex, dev_ex[:64])
    train_s = time.time() - t0
    ecfg = EvalConfig(task="miniworld", data_file=world["dev"], output_dir=str(res_path.parent / "eval-dev"),
                      seeds=[41], batch_size=64, limit=len(dev_ex))
    res = evaluate(m, dev_ex, ecfg, DecodingConfig(do_sample=False, max_new_tokens=160))
    rows = [json.loads(x) for x in (res_path.parent / "eval-dev" / "predictions.jsonl").read_text().splitlines()]
    no_answer = sum(extract_answer(r["completion"], "miniworld") is None for r in rows) / max(1, len(rows))
    ckpt = res_path.parent / "ckpt"
    files = [ckpt / "metrics.jsonl"] if (ckpt / "metrics.jsonl").is_file() else [  # curriculum phases: one folder each
        ckpt / p / "metrics.jsonl" for p in m.training_phases()]
    metrics = [json.loads(x) for f in files for x in f.read_text().splitlines()]
    losses = [r["loss"] for r in metrics if "loss" in r]
    result = {"recipe": recipe, "seed": seed, "dev_acc": res["accuracy_mean"], "no_answer": 100 * no_answer,
              "steps": summary["steps"], "train_s": round(train_s, 1), "loss_first": losses[0] if losses else None,
              "loss_last5": statistics.mean(losses[-5:]) if losses else None,
              "best_dev_loss": summary.get("best_dev_loss"),
              "grad_norm_first10": statistics.mean(r["grad_norm"] for r in metrics[:10] if "grad_norm" in r),
              "gist_norm": [gist0, m.trainable["gist"].weight.detach().norm(dim=-1).mean().item()],
              "token_norm": m.llm.model.get_input_embeddings().weight.detach().norm(dim=-1).mean().item(),
              "dev_curve": [(r["step"], r["dev_loss"]) for r in metrics if r.get("dev_loss") is not None],
              "example": rows[0]["completion"][:300]}
    del m
    torch.cuda.empty_cache() if torch.cuda.is_available() else None
    res_path.write_text(json.dumps(result, indent=1))
    return result


def zero_shot_dev(models, world, out: Path, limit: int) -> float:
    from softcot.config import DecodingConfig, EvalConfig, ModelConfig
    from softcot.data import load_examples
    from softcot.evaluate import evaluate
    from softcot.methods import build_method

    m = build_method(ModelConfig(method="zero-shot-cot", llm=world["llm"], task="miniworld"), models=models)
    ex = load_examples("miniworld", world["dev"], limit=limit)
    ecfg = EvalConfig(task="miniworld", data_file=world["dev"], output_dir=str(out / "zero-shot-dev"), seeds=[41],
                      batch_size=64, limit=len(ex))
    return evaluate(m, ex, ecfg, DecodingConfig(do_sample=False, max_new_tokens=160))["accuracy_mean"]


def table(results: list[dict], margin: float) -> str:
    best = max(r["dev_acc"] for r in results)
    accs = [r["dev_acc"] for r in results]
    lines = ["| seed | dev acc | no answer % | steps | train loss first -> last 5 | best dev loss | grad norm (first 10) | gist norm init -> end |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['seed']} | {r['dev_acc']:.1f} | {r['no_answer']:.1f} | {r['steps']} | {r['loss_first']:.3f} -> "
                     f"{r['loss_last5']:.3f} | {r['best_dev_loss']:.4f} | {r['grad_norm_first10']:.2f} | "
                     f"{r['gist_norm'][0]:.2f} -> {r['gist_norm'][1]:.2f} |")
    sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
    ok = sum(best - a <= margin for a in accs)
    lines.append(f"\nDev accuracy mean {statistics.mean(accs):.1f} +- {sd:.1f}, min {min(accs):.1f}, max {best:.1f}; "
                 f"{ok}/{len(accs)} seeds within {margin:g} points of the best. Training {statistics.mean(r['train_s'] for r in results):.0f} s per run "
                 f"(token embedding norm {results[0]['token_norm']:.2f}).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recipes", default="old;demo", help="';'-separated: named recipes or inline 'lr=1e-3,limit=0,...'")
    ap.add_argument("--seeds", default="1-5")
    ap.add_argument("--limit", type=int, default=150, help="dev questions decoded per run")
    ap.add_argument("--margin", type=float, default=5.0, help="points from the best seed that count as landing")
    ap.add_argument("--out", default="runs/lt-seeds")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)
    import torch

    from softcot.config import parse_seeds
    from softcot.frozen import load_frozen_lm
    from softcot.presets import miniworld_world

    if args.threads:
        torch.set_num_threads(args.threads)
    t0, out = time.time(), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    world = miniworld_world()
    models = {"llm": load_frozen_lm(world["llm"]), "assistant": load_frozen_lm(world["assistant"])}
    md = ["# LightThinker (gists + LoRA) over training seeds (mini world, dev, greedy)\n",
          f"Zero-shot CoT on the same {args.limit} dev questions, greedy: {zero_shot_dev(models, world, out, args.limit):.1f} %.\n"]
    for recipe in [r.strip() for r in args.recipes.split(";") if r.strip()]:
        results = []
        for s in parse_seeds(args.seeds):
            r = run_one(models, world, recipe, s, out, args.limit)
            results.append(r)
            print(f"{recipe} seed {s}: dev {r['dev_acc']:.1f} no-answer {r['no_answer']:.1f}% loss {r['loss_first']:.3f}->"
                  f"{r['loss_last5']:.3f} gist {r['gist_norm'][0]:.2f}->{r['gist_norm'][1]:.2f} ({r['train_s']:.0f} s)", flush=True)
        md += [f"## {recipe}\n", table(results, args.margin), ""]
    md.append(f"Wall time {(time.time() - t0) / 60:.1f} min ({torch.get_num_threads()} threads).")
    (out / "summary.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()

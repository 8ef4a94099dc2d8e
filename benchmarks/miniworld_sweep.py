"""What moves SoftCoT on the mini world? A sweep of the knobs #5 names, measured on the DEV split.

    python benchmarks/miniworld_sweep.py --out runs/sweep                  # ~30 min on 2 CPU cores
    python benchmarks/miniworld_sweep.py --out runs/sweep --only base,lr1e-2

Every variant is the demo's SoftCoT (`softcot demo` defaults: 1 epoch, lr 3e-3, N=4, `match`
norm, last assistant layer, linear projection) with one setting changed; the reference rows are
the untrained baselines and static prompt tuning. Each row: dev accuracy (mean +- std over seeds,
sampling as in the demo), the final dev reply loss of the trained ones, and the paired
bootstrap difference to zero-shot CoT on the same dev questions. The test split is never read.
Writes sweep.json, sweep.md and sweep.png under --out; a rerun resumes (training and evaluation
are the library's resumable loops).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from softcot.config import DecodingConfig, ModelConfig, from_dict, parse_seeds, to_dict  # noqa: E402
from softcot.data import load_examples  # noqa: E402
from softcot.demo import DemoConfig, method_config, per_example, resolve_world, train_config  # noqa: E402
from softcot.evaluate import EvalConfig, evaluate, parse_seeds  # noqa: E402
from softcot.frozen import load_frozen_lm  # noqa: E402
from softcot.methods import build_method  # noqa: E402
from softcot.stats import paired_bootstrap  # noqa: E402
from softcot.train import train  # noqa: E402
from softcot.utils import atomic_write_text, seed_everything, write_json  # noqa: E402

REFERENCES = ["zero-shot-cot", "cot-unk", "assist-cot", "prompt-tuning"]
# name -> (method overrides, train overrides, eval N); everything else is the demo's SoftCoT
VARIANTS: dict[str, tuple[dict, dict, int | None]] = {
    "base": ({}, {}, None),
    "lr1e-3": ({}, {"lr": 1e-3}, None),
    "lr1e-2": ({}, {"lr": 1e-2}, None),
    "epochs3": ({}, {"epochs": 3}, None),
    "train-n32": ({}, {"train_n_thoughts": 32}, None),  # the paper: train with 32, test with 4
    "n16": ({"n_thoughts": 16}, {"train_n_thoughts": 16}, 16),
    "norm-none": ({"projection_norm": "none"}, {}, None),
    "norm-layernorm": ({"projection_norm": "layernorm"}, {}, None),
    "mlp": ({"projection": "mlp"}, {}, None),
    "layer-3": ({"assistant_layer": -3}, {}, None),  # hidden_states[-3]: two blocks below the top
    # the LLM's thought block: hint sentence + markers + slots (default, = base) / markers + slots / slots
    "block-markers": ({"thought_block": "markers"}, {}, None),
    "block-slots": ({"thought_block": "slots"}, {}, None),
}
# The thought-block rows again under other training seeds (data order, projection init): is a
# block's difference larger than what training randomness alone moves?
for _seed in (1, 2):
    for _name in ("base", "block-markers", "block-slots"):
        VARIANTS[f"{_name}@seed{_seed}"] = (VARIANTS[_name][0], {"seed": _seed}, None)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs/sweep")
    ap.add_argument("--only", default="", help="comma-separated rows (default: all references + variants)")
    ap.add_argument("--seeds", default="41-43")
    ap.add_argument("--limit-train", type=int, default=0)
    ap.add_argument("--limit-dev", type=int, default=0)
    args = ap.parse_args(argv)
    demo = DemoConfig()
    world = resolve_world(demo)
    out = Path(args.out)
    train_ex = load_examples(demo.task, world["train"], limit=args.limit_train or None)
    dev_ex = load_examples(demo.task, world["dev"], limit=args.limit_dev or None)
    models = {"llm": load_frozen_lm(world["llm"], demo.dtype), "assistant": load_frozen_lm(world["assistant"], demo.dtype)}
    dec = DecodingConfig(do_sample=True, temperature=demo.temperature, max_new_tokens=demo.max_new_tokens)
    seeds = parse_seeds(args.seeds)
    order = ["zero-shot-cot", "base"] + [r for r in REFERENCES + list(VARIANTS) if r not in ("zero-shot-cot", "base")]
    rows = [r for r in order if not args.only or r in args.only.split(",")]
    if "zero-shot-cot" not in rows:
        rows.insert(0, "zero-shot-cot")  # every row is compared with it
    results: dict[str, dict] = {}
    for row in rows:
        t0 = time.time()
        name = row if row in REFERENCES else "softcot"
        m_over, t_over, n_eval = VARIANTS.get(row, ({}, {}, None))
        mcfg = from_dict(ModelConfig, {**to_dict(method_config(name, demo, world)), **m_over})  # flat keys allowed
        # the trainable part's init follows the row's training seed (as `softcot train --seed`), so a row's
        # result does not depend on which rows ran before it in this process
        seed = t_over.get("seed", parse_seeds(demo.train_seeds)[0])
        seed_everything(seed)
        method = build_method(mcfg, models=models)
        dev_loss = None
        if name in ("softcot", "prompt-tuning"):
            tcfg = train_config(demo, out / row / "ckpt", len(train_ex), method, seed)
            train(method, dataclasses.replace(tcfg, **t_over), train_ex, dev_ex)
            dev_loss = final_dev_loss(out / row / "ckpt")
        ecfg = EvalConfig(task=demo.task, data_file=world["dev"], output_dir=str(out / row / "eval"), seeds=seeds,
                          batch_size=demo.eval_batch_size, limit=args.limit_dev, n_thoughts=n_eval or 0)
        res = evaluate(method, dev_ex, ecfg, dec)
        results[row] = {"accuracy_mean": res["accuracy_mean"], "accuracy_std": res["accuracy_std"],
                        "dev_loss": dev_loss, "settings": {"method": m_over, "train": t_over}, "seconds": round(time.time() - t0, 1)}
        print(f"[sweep] {row}: {res['accuracy_mean']:.2f} +- {res['accuracy_std']:.2f} dev loss {dev_loss} "
              f"({time.time() - t0:.0f}s)", flush=True)
    base = per_example([out / "zero-shot-cot" / "eval"])
    for row, r in results.items():
        if row != "zero-shot-cot":
            mine = per_example([out / row / "eval"])
            ids = sorted(base)
            r["minus_zero_shot"] = paired_bootstrap([mine[i] for i in ids], [base[i] for i in ids])
    write_json(out / "sweep.json", results)
    atomic_write_text(out / "sweep.md", table(results, len(dev_ex), args.seeds))
    plot(out / "sweep.png", results)
    print(table(results, len(dev_ex), args.seeds))
    return results


def final_dev_loss(ckpt: Path) -> float | None:
    """The last dev reply loss the training loop logged (metrics.jsonl)."""
    rows = [json.loads(x) for x in (ckpt / "metrics.jsonl").read_text().splitlines()]
    losses = [r["dev_loss"] for r in rows if r.get("dev_loss") is not None]
    return round(losses[-1], 5) if losses else None


def table(results: dict, n: int, seeds: str) -> str:
    lines = [f"# SoftCoT on the mini world: dev sweep ({n} dev questions, seeds {seeds})", "",
             "| row | changed | dev acc (mean +- std) | dev reply loss | minus zero-shot [95% CI] |", "|---|---|---|---|---|"]
    for row, r in results.items():
        changed = ", ".join([f"{k}={v}" for k, v in r["settings"]["method"].items()]
                            + [f"train {k}={v}" for k, v in r["settings"]["train"].items()]) or "-"
        d = r.get("minus_zero_shot")
        cmp = f"{100 * d['mean_diff']:+.1f} [{100 * d['ci95'][0]:+.1f}, {100 * d['ci95'][1]:+.1f}]" if d else ""
        loss = f"{r['dev_loss']:.4f}" if r["dev_loss"] is not None else "-"
        lines.append(f"| {row} | {changed} | {r['accuracy_mean']:.2f} +- {r['accuracy_std']:.2f} | {loss} | {cmp} |")
    return "\n".join(lines) + "\n"


def plot(path: Path, results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, ax = plt.subplots(figsize=(0.8 * len(names) + 2, 3.6))
    ax.bar(names, [results[k]["accuracy_mean"] for k in names], yerr=[results[k]["accuracy_std"] for k in names],
           capsize=3, color=["tab:gray" if k in REFERENCES else "tab:red" for k in names])
    ax.axhline(results["zero-shot-cot"]["accuracy_mean"], color="k", lw=0.8, ls="--")
    ax.set_ylabel("dev accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("SoftCoT variants vs baselines (mini world, dev, mean +- std over seeds)", fontsize=9)
    plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    fig.tight_layout()
    from softcot.utils import save_figure

    save_figure(fig, path)


if __name__ == "__main__":
    main()

"""`softcot demo`: the whole pipeline on the embedded mini world, in minutes on a laptop CPU.

    softcot demo                      # mini LLM + mini assistant + mini arithmetic world
    softcot demo --quick              # CI size: seconds of training, a small test subset
    softcot demo --llm L --assistant A --task gsm8k --train-file train.jsonl --test-file test.jsonl

setup : the frozen LMs load once and are shared by every method
train : SoftCoT's projection and the static prompt-tuning ablation (resumable, cached)
eval  : every method on the held-out test split over seeds (resumable, cached), SoftCoT at
        several N; dev split for anything that is chosen, never the test split
report: demo.md / demo.json (table, paired bootstrap vs SoftCoT) and PNG plots (accuracy by
        method, accuracy vs N, the projection's training curve)
A rerun with the same settings recomputes nothing: training resumes at its last step and each
evaluation at its last finished batch.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, fields
from pathlib import Path

from softcot.config import DecodingConfig, SoftCoTConfig, TrainConfig, _check
from softcot.data import load_examples
from softcot.errors import ConfigError
from softcot.evaluate import EvalConfig, evaluate, parse_seeds
from softcot.frozen import load_frozen_lm
from softcot.methods import METHODS, build_method
from softcot.stats import paired_bootstrap
from softcot.train import train
from softcot.utils import atomic_write_text, write_json

TRAINED = ("prompt-tuning", "softcot")


@dataclass
class DemoConfig:
    output_dir: str = "runs/demo"
    quick: bool = False  # CI size
    llm: str = ""  # "" = the embedded mini LLM
    assistant: str = ""  # "" = the embedded mini assistant
    task: str = "miniworld"
    train_file: str = ""  # "" = the mini world's splits
    dev_file: str = ""
    test_file: str = ""
    methods: str = "zero-shot-cot,cot-unk,assist-cot,prompt-tuning,softcot"
    seeds: str = "41-43"
    n_thoughts: int = 4  # at test time
    n_sweep: str = "1,2,4,8,16"  # SoftCoT accuracy vs N (first seed)
    train_n_thoughts: int = 4
    epochs: int = 1
    batch_size: int = 32
    lr: float = 3e-3
    projection_norm: str = "match"
    temperature: float = 0.5
    max_new_tokens: int = 160
    eval_batch_size: int = 64
    limit_train: int = 0
    limit_test: int = 0
    dtype: str = "float32"

    def __post_init__(self) -> None:
        _check(self.n_thoughts >= 1 and self.train_n_thoughts >= 1, "n_thoughts must be >= 1")
        unknown = [m for m in self.method_list() if m not in METHODS]
        _check(not unknown, f"--methods: unknown {unknown}; expected some of {sorted(METHODS)}")

    def method_list(self) -> list[str]:
        return [m.strip() for m in self.methods.split(",") if m.strip()]

    def sized(self) -> "DemoConfig":
        """--quick shrinks the work, keeping every code path."""
        if not self.quick:
            return self
        small = dict(seeds="41-42", n_sweep="1,4", epochs=1, limit_train=256, limit_test=48, max_new_tokens=96)
        return DemoConfig(**{**{f.name: getattr(self, f.name) for f in fields(self)}, **small})


def resolve_world(cfg: DemoConfig) -> dict[str, str]:
    """Model folders and data files: the user's, else the embedded mini world's."""
    if cfg.llm and cfg.train_file and cfg.test_file:
        return {"llm": cfg.llm, "assistant": cfg.assistant, "train": cfg.train_file,
                "dev": cfg.dev_file, "test": cfg.test_file}
    from softcot.miniworld import ASSISTANT_DIR, DATA_DIR, LLM_DIR

    if not (LLM_DIR / "config.json").is_file():
        raise ConfigError(f"{LLM_DIR}: the mini world is not built; run `python -m softcot.miniworld.build "
                          f"--out {LLM_DIR.parent}` (about 12 minutes) or pass --llm/--train-file/--test-file")
    return {"llm": cfg.llm or str(LLM_DIR), "assistant": cfg.assistant or str(ASSISTANT_DIR),
            "train": cfg.train_file or str(DATA_DIR / "train.jsonl"), "dev": cfg.dev_file or str(DATA_DIR / "dev.jsonl"),
            "test": cfg.test_file or str(DATA_DIR / "test.jsonl")}


def method_config(name: str, cfg: DemoConfig, world: dict) -> SoftCoTConfig:
    mc = SoftCoTConfig(method=name, assistant=world["assistant"], llm=world["llm"], task=cfg.task,
                       n_thoughts=cfg.n_thoughts, dtype=cfg.dtype, projection_norm=cfg.projection_norm)
    if hasattr(mc, "hint_tokens"):
        mc.hint_tokens = 32
    return mc


def train_config(cfg: DemoConfig, output_dir: Path, n_train: int, method) -> TrainConfig:
    """How the demo trains SoftCoT's projection and the prompt-tuning ablation."""
    return TrainConfig(output_dir=str(output_dir), n_thoughts=cfg.train_n_thoughts, epochs=cfg.epochs,
                       batch_size=cfg.batch_size, lr=cfg.lr, warmup_ratio=0.05, schedule="cosine",
                       bf16=method.llm.model.device.type == "cpu", seed=42, max_length=512,
                       eval_every=max(1, n_train // cfg.batch_size // 4))  # dev loss 4x per epoch


def run_demo(cfg: DemoConfig) -> dict:
    t_start = time.time()
    cfg = cfg.sized()
    out = Path(cfg.output_dir)
    world = resolve_world(cfg)
    # ---- setup: data and the frozen LMs, loaded once --------------------------------------------
    train_ex = load_examples(cfg.task, world["train"], limit=cfg.limit_train or None)
    dev_ex = load_examples(cfg.task, world["dev"]) if world["dev"] else None
    test_ex = load_examples(cfg.task, world["test"], limit=cfg.limit_test or None)
    models = {"llm": load_frozen_lm(world["llm"], cfg.dtype)}
    if world["assistant"]:
        models["assistant"] = load_frozen_lm(world["assistant"], cfg.dtype)
    dec = DecodingConfig(do_sample=True, temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens)
    seeds = parse_seeds(cfg.seeds)
    results: dict[str, dict] = {}
    built: dict[str, object] = {}
    # ---- train + evaluate every method ---------------------------------------------------------
    for name in cfg.method_list():
        method = build_method(method_config(name, cfg, world), models=models)
        if name in TRAINED:
            train(method, train_config(cfg, out / name / "ckpt", len(train_ex), method), train_ex, dev_ex)
        ecfg = EvalConfig(task=cfg.task, data_file=world["test"], output_dir=str(out / name / "eval"), seeds=seeds,
                          batch_size=cfg.eval_batch_size, limit=cfg.limit_test)
        results[name] = evaluate(method, test_ex, ecfg, dec)
        built[name] = method
    # ---- SoftCoT accuracy vs the number of soft thoughts (first seed) ---------------------------
    sweep = {}
    if "softcot" in built:
        for n in [int(x) for x in cfg.n_sweep.split(",") if x.strip()]:
            if n == cfg.n_thoughts:  # already evaluated above: reuse its first seed
                sweep[n] = next(iter(results["softcot"]["per_seed"].values()))["accuracy"]
                continue
            ecfg = EvalConfig(task=cfg.task, data_file=world["test"], output_dir=str(out / "softcot" / f"n{n}"),
                              seeds=seeds[:1], batch_size=cfg.eval_batch_size, limit=cfg.limit_test, n_thoughts=n)
            sweep[n] = evaluate(built["softcot"], test_ex, ecfg, dec)["accuracy_mean"]
    summary = summarize(cfg, out, results, sweep)
    summary["wall_time_s"] = round(time.time() - t_start, 1)
    write_json(out / "demo.json", summary)
    print(summary["markdown"])
    print(f"[softcot] demo report: {out / 'demo.md'} ({summary['wall_time_s']} s)")
    return summary


def per_example(eval_dir: Path) -> dict[str, float]:
    """Accuracy of each test example averaged over seeds (for the paired bootstrap)."""
    acc: dict[str, list[float]] = {}
    for line in (eval_dir / "predictions.jsonl").read_text().splitlines():
        r = json.loads(line)
        acc.setdefault(r["id"], []).append(float(r["correct"]))
    return {k: sum(v) / len(v) for k, v in acc.items()}


def summarize(cfg: DemoConfig, out: Path, results: dict[str, dict], sweep: dict[int, float]) -> dict:
    rows = ["| method | accuracy (mean +- std over seeds) | per seed | SoftCoT minus method [95% CI] |", "|---|---|---|---|"]
    comparisons = {}
    soft = per_example(out / "softcot" / "eval") if "softcot" in results else None
    for name, m in results.items():
        per_seed = ", ".join(f"{v['accuracy']:.1f}" for v in m["per_seed"].values())
        cmp = ""
        if soft is not None and name != "softcot":
            other = per_example(out / name / "eval")
            ids = sorted(soft)
            b = paired_bootstrap([soft[i] for i in ids], [other[i] for i in ids])
            comparisons[name] = b
            cmp = f"{100 * b['mean_diff']:+.1f} [{100 * b['ci95'][0]:+.1f}, {100 * b['ci95'][1]:+.1f}]"
        rows.append(f"| {name} | {m['accuracy_mean']:.2f} +- {m['accuracy_std']:.2f} | {per_seed} | {cmp} |")
    md = "\n".join(rows)
    if sweep:
        md += "\n\nSoftCoT accuracy vs number of soft thoughts (first seed): " + ", ".join(
            f"N={n}: {a:.1f}" for n, a in sweep.items())
    plots = write_plots(out, results, sweep)
    text = (f"# softcot demo\n\nTask `{cfg.task}`, {next(iter(results.values()))['n_examples']} test examples, "
            f"seeds {cfg.seeds}, sampling T={cfg.temperature}.\n\n{md}\n\n" + "".join(f"![{p}]({p})\n" for p in plots))
    atomic_write_text(out / "demo.md", text)
    return {"methods": {k: {"accuracy_mean": v["accuracy_mean"], "accuracy_std": v["accuracy_std"],
                            "per_seed": {s: x["accuracy"] for s, x in v["per_seed"].items()}} for k, v in results.items()},
            "softcot_vs": comparisons, "n_sweep": sweep, "markdown": md, "plots": plots}


def write_plots(out: Path, results: dict[str, dict], sweep: dict[int, float]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, ax = plt.subplots(figsize=(1.3 * len(names) + 2, 3.6))
    ax.bar(names, [results[n]["accuracy_mean"] for n in names], yerr=[results[n]["accuracy_std"] for n in names],
           capsize=4, color=["tab:red" if n == "softcot" else "tab:gray" for n in names])
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("accuracy by method (mean +- std over seeds)")
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    fig.tight_layout()
    fig.savefig(out / "accuracy_by_method.png", dpi=110)
    plt.close(fig)
    plots = ["accuracy_by_method.png"]
    if sweep:
        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        ax.plot(list(sweep), list(sweep.values()), marker="o")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("soft thoughts N at test time")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title("SoftCoT accuracy vs N")
        fig.tight_layout()
        fig.savefig(out / "accuracy_vs_n.png", dpi=110)
        plt.close(fig)
        plots.append("accuracy_vs_n.png")
    curve = out / "softcot" / "ckpt" / "metrics.jsonl"
    if curve.is_file():
        rows = [json.loads(x) for x in curve.read_text().splitlines()]
        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        steps, losses = [r["step"] for r in rows], [r["loss"] for r in rows]
        k = max(1, len(rows) // 20)  # per-batch losses are noisy: show a running mean over k steps
        windows = [losses[max(0, i - k + 1):i + 1] for i in range(len(losses))]
        smooth = [sum(w) / len(w) for w in windows]
        ax.plot(steps, losses, lw=0.6, alpha=0.35, color="tab:blue")
        ax.plot(steps, smooth, lw=1.5, color="tab:blue", label=f"train loss (mean of {k})")
        dev = [(r["step"], r["dev_loss"]) for r in rows if r.get("dev_loss") is not None]
        if dev:
            ax.plot(*zip(*dev), marker="o", color="tab:orange", label="dev loss")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("reply loss")
        ax.set_title("SoftCoT projection training")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "training_curve.png", dpi=110)
        plt.close(fig)
        plots.append("training_curve.png")
    return plots

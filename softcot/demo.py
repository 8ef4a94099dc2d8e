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
from dataclasses import dataclass, replace
from pathlib import Path

from softcot.config import (AssistCoTConfig, DecodingConfig, EvalConfig, ModelConfig, ProjectionConfig, TrainConfig,
                            _check, opt, parse_seeds)
from softcot.errors import ConfigError
from softcot.tasks import TASKS



@dataclass(frozen=True)
class DemoConfig:
    output_dir: str = opt("", "output folder (default: runs/demo, or runs/demo-quick with --quick)")
    quick: bool = opt(False, "CI size: a small train/test subset, every code path")
    llm: str = opt("", "LLM folder or hub id ('' = the embedded mini LLM)")
    assistant: str = opt("", "assistant folder or hub id ('' = the embedded mini assistant)")
    task: str = opt("miniworld", "task of the data files", choices=tuple(TASKS))
    train_file: str = opt("", "training file ('' = the mini world's train split)")
    dev_file: str = opt("", "dev file ('' = the mini world's dev split)")
    test_file: str = opt("", "test file ('' = the mini world's test split)")
    methods: str = opt("zero-shot-cot,cot-unk,assist-cot,prompt-tuning,softcot", "comma-separated methods to compare")
    seeds: str = opt("41-43", "sampling seeds of the test evaluation")
    n_thoughts: int = opt(4, "soft thoughts N at test time")
    n_sweep: str = opt("1,2,4,8,16", "SoftCoT accuracy vs N at these N (first seed)")
    train_n_thoughts: int = opt(4, "soft thoughts N in training")
    epochs: int = opt(1, "training epochs")
    batch_size: int = opt(32, "training batch size")
    lr: float = opt(3e-3, "learning rate")
    projection_norm: str = opt("match", "SoftCoT projection output norm", choices=("none", "layernorm", "match"))
    thought_block: str = opt("preamble", "the LLM's thought block (every method's)", choices=("preamble", "markers", "slots"))
    temperature: float = opt(0.5, "sampling temperature of the evaluation")
    max_new_tokens: int = opt(160, "most new tokens per completion")
    eval_batch_size: int = opt(64, "questions per generation batch")
    limit_train: int = opt(0, ">0: first N training examples")
    limit_test: int = opt(0, ">0: first N test examples")
    limit_dev: int = opt(0, ">0: first N dev examples for the dev loss")
    bf16: str = opt("auto", "bf16 autocast in training: auto = on CUDA and on CPUs with native bf16 only",
                    choices=("auto", "on", "off"))
    dtype: str = opt("float32", "dtype of the frozen LMs", choices=("float32", "bfloat16", "float16", "auto"))

    def __post_init__(self) -> None:
        from softcot.methods import METHOD_NAMES

        _check(self.n_thoughts >= 1 and self.train_n_thoughts >= 1, "n_thoughts must be >= 1")
        unknown = [m for m in self.method_list() if m not in METHOD_NAMES]
        _check(not unknown, f"--methods: unknown {unknown}; expected some of {list(METHOD_NAMES)}")
        sweep = [x.strip() for x in self.n_sweep.split(",") if x.strip()]
        _check(all(x.isascii() and x.isdigit() and int(x) >= 1 for x in sweep),
               f"--n-sweep {self.n_sweep!r}: expected comma-separated integers >= 1, e.g. '1,2,4'")
        for flag in ("limit_train", "limit_test", "limit_dev"):
            _check(getattr(self, flag) >= 0, f"--{flag.replace('_', '-')} must be >= 0, got {getattr(self, flag)}")
        # the configs the demo builds from these settings check the rest (lr, batch sizes, seeds, ...)
        TrainConfig(train_n_thoughts=self.train_n_thoughts, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr)
        DecodingConfig(do_sample=True, temperature=self.temperature, max_new_tokens=self.max_new_tokens)
        EvalConfig(seeds=parse_seeds(self.seeds), batch_size=self.eval_batch_size, limit=self.limit_test)

    def method_list(self) -> list[str]:
        return [m.strip() for m in self.methods.split(",") if m.strip()]

    def sized(self) -> "DemoConfig":
        """--quick shrinks the work, keeping every code path, in its own output folder (a full
        demo after a quick one must not find the quick one's files)."""
        out = self.output_dir or ("runs/demo-quick" if self.quick else "runs/demo")
        if not self.quick:
            return replace(self, output_dir=out)
        return replace(self, output_dir=out, seeds="41-42", n_sweep="1,4", epochs=1, limit_train=256, limit_test=48,
                       limit_dev=48, max_new_tokens=96)


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


def method_config(name: str, cfg: DemoConfig, world: dict) -> ModelConfig:
    return ModelConfig(method=name, assistant=world["assistant"], llm=world["llm"], task=cfg.task,
                       n_thoughts=cfg.n_thoughts, dtype=cfg.dtype, projection=ProjectionConfig(norm=cfg.projection_norm),
                       thought_block=cfg.thought_block, assist_cot=AssistCoTConfig(hint_tokens=32))


TRAIN_SEED = 42  # the demo's training seed: data order and (via seed_everything) the projection's init


def train_config(cfg: DemoConfig, output_dir: Path, n_train: int, method) -> TrainConfig:
    """How the demo trains SoftCoT's projection and the prompt-tuning ablation."""
    from softcot.utils import autocast_bf16_ok

    bf16 = cfg.bf16 == "on" or (cfg.bf16 == "auto" and autocast_bf16_ok(method.llm.model.device))
    return TrainConfig(output_dir=str(output_dir), train_n_thoughts=cfg.train_n_thoughts, epochs=cfg.epochs,
                       batch_size=cfg.batch_size, lr=cfg.lr, warmup_ratio=0.05, schedule="cosine",
                       bf16=bf16, seed=TRAIN_SEED, max_length=512,
                       eval_every=max(1, n_train // cfg.batch_size // 4))  # dev loss 4x per epoch


def run_demo(cfg: DemoConfig, device: str = "auto") -> dict:
    from softcot.data import load_examples
    from softcot.evaluate import evaluate
    from softcot.frozen import load_frozen_lm
    from softcot.methods import build_method
    from softcot.train import train
    from softcot.utils import log, write_json

    t_start = time.time()
    cfg = cfg.sized()
    out = Path(cfg.output_dir)
    world = resolve_world(cfg)
    # ---- setup: data and the frozen LMs, loaded once --------------------------------------------
    train_ex = load_examples(cfg.task, world["train"], limit=cfg.limit_train or None)
    dev_ex = load_examples(cfg.task, world["dev"], limit=cfg.limit_dev or None) if world["dev"] else None
    test_ex = load_examples(cfg.task, world["test"], limit=cfg.limit_test or None)
    models = {"llm": load_frozen_lm(world["llm"], cfg.dtype, device)}
    if world["assistant"]:
        models["assistant"] = load_frozen_lm(world["assistant"], cfg.dtype, device)
    dec = DecodingConfig(do_sample=True, temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens)
    seeds = parse_seeds(cfg.seeds)
    results: dict[str, dict] = {}
    built: dict[str, object] = {}
    # ---- train + evaluate every method ---------------------------------------------------------
    for name in cfg.method_list():
        method = build_method(method_config(name, cfg, world), models=models)
        if method.trains:
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
    log.info("demo report: %s (%s s)", out / "demo.md", summary["wall_time_s"])
    return summary


def per_example(eval_dir: Path) -> dict[str, float]:
    """Accuracy of each test example averaged over seeds (for the paired bootstrap)."""
    acc: dict[str, list[float]] = {}
    for line in (eval_dir / "predictions.jsonl").read_text().splitlines():
        r = json.loads(line)
        acc.setdefault(r["id"], []).append(float(r["correct"]))
    return {k: sum(v) / len(v) for k, v in acc.items()}


def summarize(cfg: DemoConfig, out: Path, results: dict[str, dict], sweep: dict[int, float]) -> dict:
    from softcot.stats import paired_bootstrap
    from softcot.utils import atomic_write_text

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

    from softcot.utils import save_figure

    names = list(results)
    first = next(iter(results.values()))
    n, n_seeds = first["n_examples"], len(first["seeds"])
    fig, ax = plt.subplots(figsize=(1.3 * len(names) + 2, 3.6))
    ax.bar(names, [results[m]["accuracy_mean"] for m in names], yerr=[results[m]["accuracy_std"] for m in names],
           capsize=4, color=["tab:red" if m == "softcot" else "tab:gray" for m in names])
    ax.set_ylim(0, 100)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"accuracy by method (n={n}, mean +- std over {n_seeds} seeds)", fontsize=10)
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    fig.tight_layout()
    save_figure(fig, out / "accuracy_by_method.png")
    plots = ["accuracy_by_method.png"]
    if sweep:
        fig, ax = plt.subplots(figsize=(4.8, 3.4))
        ns, accs = list(sweep), list(sweep.values())
        # one seed: the bars are the binomial standard error of each accuracy, sqrt(p(1-p)/n)
        err = [100 * (a / 100 * (1 - a / 100) / n) ** 0.5 for a in accs]
        ax.errorbar(ns, accs, yerr=err, marker="o", capsize=3)
        ax.set_xscale("log", base=2)
        ax.set_xticks(ns, [str(x) for x in ns])
        ax.set_ylim(0, 100)
        ax.set_xlabel("soft thoughts N at test time")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"SoftCoT accuracy vs N (n={n}, one seed, bars: binomial s.e.)", fontsize=9)
        fig.tight_layout()
        save_figure(fig, out / "accuracy_vs_n.png")
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
        save_figure(fig, out / "training_curve.png")
        plots.append("training_curve.png")
    return plots

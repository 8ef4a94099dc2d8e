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
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path

from softcot.config import (AssistCoTConfig, DecodingConfig, EvalConfig, ModelConfig, ProjectionConfig, TrainConfig,
                            _check, opt, parse_seeds)
from softcot.errors import ConfigError
from softcot.tasks import TASKS



def _recipe(section: str, key: str):
    """A default of the bundled `miniworld` preset: the one source of the demo's recipe, read by
    `softcot train --preset miniworld` too (so both train exactly the same projection)."""
    from softcot.presets import miniworld_preset

    return miniworld_preset()[section][key]


@dataclass(frozen=True)
class DemoConfig:
    output_dir: str = opt("", "output folder (default: runs/demo, or runs/demo-quick with --quick)")
    quick: bool = opt(False, "CI size: a small train/test subset, every code path, one training seed")
    llm: str = opt("", "LLM folder or hub id ('' = the embedded mini LLM)")
    assistant: str = opt("", "assistant folder or hub id ('' = the embedded mini assistant)")
    task: str = opt("miniworld", "task of the data files", choices=tuple(TASKS))
    train_file: str = opt("", "training file ('' = the mini world's train split)")
    dev_file: str = opt("", "dev file ('' = the mini world's dev split)")
    test_file: str = opt("", "test file ('' = the mini world's test split)")
    methods: str = opt("zero-shot-cot,cot-unk,assist-cot,prompt-tuning,softcot", "comma-separated methods to compare")
    seeds: str = opt("41-42", "sampling seeds of the test evaluation (2: the demo's time goes to 3 training "
                     "seeds of every trained method instead)")
    train_seeds: str = opt("42-44", "training seeds of every trained method (data order and init); --quick uses the first")
    n_thoughts: int = opt(_recipe("model", "n_thoughts"), "soft thoughts N at test time")
    n_sweep: str = opt("1,2,4,8,16", "SoftCoT accuracy vs N at these N (first seed)")
    train_n_thoughts: int = opt(_recipe("train", "train_n_thoughts"), "soft thoughts N in training")
    epochs: int = opt(_recipe("train", "epochs"), "training epochs")
    batch_size: int = opt(_recipe("train", "batch_size"), "training batch size")
    lr: float = opt(_recipe("train", "lr"), "learning rate")
    projection_norm: str = opt(_recipe("model", "projection")["norm"], "SoftCoT projection output norm",
                               choices=("none", "layernorm", "match"))
    projection_init: str = opt(_recipe("train", "projection_init"), "SoftCoT projection init: vocab (the "
                               "vocabulary bridge) or random", choices=("vocab", "random"))
    thought_block: str = opt(_recipe("model", "thought_block"), "the LLM's thought block (every method's)",
                             choices=("preamble", "markers", "slots"))
    temperature: float = opt(_recipe("decoding", "temperature"), "sampling temperature of the evaluation")
    max_new_tokens: int = opt(_recipe("decoding", "max_new_tokens"), "most new tokens per completion")
    eval_batch_size: int = opt(_recipe("eval", "batch_size"), "questions per generation batch")
    limit_train: int = opt(_recipe("train", "limit"), ">0: first N training examples (0: all)")
    limit_test: int = opt(0, ">0: first N test examples")
    limit_dev: int = opt(128, ">0: first N dev examples for the dev loss (0: all)")
    bf16: str = opt("off", "bf16 autocast in training (off: the preset's fp32, the same projection on every CPU; "
                    "auto = on CUDA and on CPUs with native bf16 only)", choices=("auto", "on", "off"))
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
        try:
            parse_seeds(self.train_seeds)
        except ConfigError as e:
            raise ConfigError(f"--train-seeds: {e}") from None

    def method_list(self) -> list[str]:
        return [m.strip() for m in self.methods.split(",") if m.strip()]

    def sized(self) -> "DemoConfig":
        """--quick shrinks the work, keeping every code path, in its own output folder (a full
        demo after a quick one must not find the quick one's files)."""
        out = self.output_dir or ("runs/demo-quick" if self.quick else "runs/demo")
        if not self.quick:
            return replace(self, output_dir=out)
        return replace(self, output_dir=out, seeds="41-42", n_sweep="1,4", epochs=1, limit_train=256, limit_test=48,
                       limit_dev=48, max_new_tokens=96, train_seeds=str(parse_seeds(self.train_seeds)[0]))


def resolve_world(cfg: DemoConfig) -> dict[str, str]:
    """Model folders and data files: the user's, else the embedded mini world's."""
    if cfg.llm and cfg.train_file and cfg.test_file:
        return {"llm": cfg.llm, "assistant": cfg.assistant, "train": cfg.train_file,
                "dev": cfg.dev_file, "test": cfg.test_file}
    from softcot.miniworld import LLM_DIR
    from softcot.presets import miniworld_world

    if not (LLM_DIR / "config.json").is_file():
        raise ConfigError(f"{LLM_DIR}: the mini world is not built; run `python -m softcot.miniworld.build "
                          f"--out {LLM_DIR.parent}` (about 12 minutes) or pass --llm/--train-file/--test-file")
    mw = miniworld_world()  # the embedded world's files, as the `miniworld` preset names them
    return {"llm": cfg.llm or mw["llm"], "assistant": cfg.assistant or mw["assistant"], "train": cfg.train_file or mw["train"],
            "dev": cfg.dev_file or mw["dev"], "test": cfg.test_file or mw["test"]}


def method_config(name: str, cfg: DemoConfig, world: dict) -> ModelConfig:
    """The preset's model settings for method `name` on this world (flags override them)."""
    from softcot.presets import miniworld_configs

    base, _ = miniworld_configs()
    return replace(base, method=name, assistant=world["assistant"], llm=world["llm"], task=cfg.task,
                   n_thoughts=cfg.n_thoughts, dtype=cfg.dtype, projection=replace(base.projection, norm=cfg.projection_norm),
                   thought_block=cfg.thought_block)


def train_config(cfg: DemoConfig, output_dir: Path, n_train: int, method, seed: int) -> TrainConfig:
    """The preset's training recipe (flags override it) for one training seed."""
    from softcot.presets import miniworld_configs
    from softcot.utils import autocast_bf16_ok

    _, base = miniworld_configs()
    bf16 = cfg.bf16 == "on" or (cfg.bf16 == "auto" and autocast_bf16_ok(method.llm.model.device))
    return replace(base, train_file="", dev_file=None, output_dir=str(output_dir), train_n_thoughts=cfg.train_n_thoughts,
                   epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, projection_init=cfg.projection_init,
                   bf16=bf16, seed=seed, limit=cfg.limit_train,  # recorded; the demo reads the data itself
                   eval_every=max(1, n_train // cfg.batch_size // 2))  # dev loss twice per epoch


class Clock:
    """What the demo is doing and how long each part took: one log line per finished part, and
    the list for demo.json (the parts add up to the wall time, less report writing)."""

    def __init__(self) -> None:
        self.t0, self.parts = time.time(), []

    def elapsed(self) -> str:
        s = int(time.time() - self.t0)
        return f"{s // 60}:{s % 60:02d}"

    def part(self, what: str):
        import contextlib

        from softcot.utils import log

        @contextlib.contextmanager
        def timed():
            t = time.time()
            log.info("[demo %s] %s ...", self.elapsed(), what)
            yield
            self.parts.append({"part": what, "seconds": round(time.time() - t, 1)})
            log.info("[demo %s] %s: %.1f s", self.elapsed(), what, time.time() - t)

        return timed()


def job_order(names: list[str], trains: dict[str, bool], train_seeds: list[int]) -> list[tuple[str, int | None]]:
    """(method, training seed) in the order the demo runs them: zero-shot CoT and SoftCoT's first
    training seed come first (the first comparison prints within minutes), then every other method
    and seed. Untrained methods run once (training seed None)."""
    jobs = [(n, t) for n in names for t in (train_seeds if trains[n] else [None])]
    first = [j for j in (("zero-shot-cot", None), ("softcot", train_seeds[0])) if j in jobs]
    return first + [j for j in jobs if j not in first]


def run_demo(cfg: DemoConfig, device: str = "auto") -> dict:
    from softcot.assistant import ThoughtCache
    from softcot.data import load_examples
    from softcot.evaluate import evaluate
    from softcot.frozen import load_frozen_lm
    from softcot.methods import build_method, method_class
    from softcot.train import train
    from softcot.utils import log, seed_everything, write_json

    clock = Clock()
    cfg = cfg.sized()
    out = Path(cfg.output_dir)
    world = resolve_world(cfg)
    # ---- setup: data and the frozen LMs, loaded once --------------------------------------------
    # the data first: a bad file fails in one line before anything is logged or loaded
    train_ex = load_examples(cfg.task, world["train"], limit=cfg.limit_train or None)
    dev_ex = load_examples(cfg.task, world["dev"], limit=cfg.limit_dev or None) if world["dev"] else None
    test_ex = load_examples(cfg.task, world["test"], limit=cfg.limit_test or None)
    with clock.part("setup: load the frozen LMs"):
        models = {"llm": load_frozen_lm(world["llm"], cfg.dtype, device)}
        if world["assistant"]:
            models["assistant"] = load_frozen_lm(world["assistant"], cfg.dtype, device)
    dec = DecodingConfig(do_sample=True, temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens)
    seeds, train_seeds = parse_seeds(cfg.seeds), parse_seeds(cfg.train_seeds)
    if cfg.quick:
        log.info("--quick: one training seed (%d); without --quick the demo trains every one of --train-seeds",
                 train_seeds[0])
    log.info("demo: %d training questions (%d optimizer steps per training run), %d test questions x %d sampling "
             "seeds, training seeds %s", len(train_ex), cfg.epochs * -(-len(train_ex) // cfg.batch_size), len(test_ex),
             len(seeds), cfg.train_seeds)
    runs: dict[str, dict[int | None, Path]] = {}  # method -> {training seed (None: nothing trained): run folder}
    results: dict[str, dict[int | None, dict]] = {}
    first: dict[str, object] = {}  # each method as built with the first training seed
    first_look_s = None  # when zero-shot CoT vs SoftCoT (first training seed) was printed
    caches: dict[str, ThoughtCache] = {}  # method -> the assistant's thoughts, shared by its training seeds
    names = cfg.method_list()
    # ---- train + evaluate every method: trainable ones once per training seed -------------------
    for name, tseed in job_order(names, {n: bool(method_class(n).trains_what) for n in names}, train_seeds):
        seed_everything(tseed if tseed is not None else train_seeds[0])  # the init follows the training seed
        method = build_method(method_config(name, cfg, world), models=models)
        run = out / name / f"train-seed-{tseed}" if method.trains else out / name
        label = f"{name}" + (f", training seed {tseed}" if method.trains else "")
        if method.trains:
            if method.cacheable_thoughts:
                caches.setdefault(name, ThoughtCache(method.assistant))
            with clock.part(f"train {label}"):
                train(method, train_config(cfg, run / "ckpt", len(train_ex), method, tseed), train_ex, dev_ex,
                      thought_cache=caches.get(name))
        ecfg = EvalConfig(task=cfg.task, data_file=world["test"], output_dir=str(run / "eval"), seeds=seeds,
                          batch_size=cfg.eval_batch_size, limit=cfg.limit_test)
        with clock.part(f"evaluate {label}"):
            results.setdefault(name, {})[tseed] = evaluate(method, test_ex, ecfg, dec)
        runs.setdefault(name, {})[tseed] = run
        first.setdefault(name, method)
        if name == "softcot" and "zero-shot-cot" in results and len(results["softcot"]) == 1:
            zs, sc = results["zero-shot-cot"][None], results["softcot"][tseed]
            first_look_s = round(time.time() - clock.t0, 1)
            print(f"[demo {clock.elapsed()}] first look: zero-shot CoT {zs['accuracy_mean']:.2f} +- "
                  f"{zs['accuracy_std']:.2f} vs SoftCoT {sc['accuracy_mean']:.2f} +- {sc['accuracy_std']:.2f} "
                  f"(training seed {tseed}; {sc['n_examples']} test questions, {len(seeds)} sampling seeds); "
                  "the other methods and training seeds follow", flush=True)
    # ---- SoftCoT accuracy vs the number of soft thoughts (first training seed, first seed) -------
    sweep = {}
    if "softcot" in first:
        run0 = runs["softcot"][train_seeds[0]]
        with clock.part("SoftCoT accuracy vs N"):
            for n in [int(x) for x in cfg.n_sweep.split(",") if x.strip()]:
                if n == cfg.n_thoughts:  # already evaluated above: reuse its first seed
                    sweep[n] = next(iter(results["softcot"][train_seeds[0]]["per_seed"].values()))["accuracy"]
                    continue
                ecfg = EvalConfig(task=cfg.task, data_file=world["test"], output_dir=str(run0 / f"n{n}"),
                                  seeds=seeds[:1], batch_size=cfg.eval_batch_size, limit=cfg.limit_test, n_thoughts=n)
                sweep[n] = evaluate(first["softcot"], test_ex, ecfg, dec)["accuracy_mean"]
    results = {n: results[n] for n in names if n in results}  # the table in --methods order
    summary = summarize(cfg, out, results, runs, sweep)
    summary["wall_time_s"] = round(time.time() - clock.t0, 1)
    summary["timings"], summary["first_look_s"] = clock.parts, first_look_s
    write_json(out / "demo.json", summary)
    print(summary["markdown"])
    print("\nwhere the time went: " + "; ".join(f"{p['part']} {p['seconds']:.0f} s" for p in clock.parts))
    print(f"\ndemo finished in {clock.elapsed()} (m:ss): {out / 'demo.md'}, {out / 'demo.json'}; plots: "
          + ", ".join(str(out / p) for p in summary["plots"]), flush=True)
    return summary


def per_example(eval_dirs: list[Path]) -> dict[str, float]:
    """Accuracy of each test example averaged over every run and seed (for the paired bootstrap)."""
    acc: dict[str, list[float]] = {}
    for d in eval_dirs:
        for line in (d / "predictions.jsonl").read_text().splitlines():
            r = json.loads(line)
            acc.setdefault(r["id"], []).append(float(r["correct"]))
    return {k: sum(v) / len(v) for k, v in acc.items()}


def spread(per_run: dict[int | None, dict]) -> dict:
    """Accuracy over training runs x sampling seeds: the mean, the std over training seeds (of each
    run's mean over sampling seeds) and the std over sampling seeds (within a run, averaged)."""
    import statistics

    grid = {t: [v["accuracy"] for v in r["per_seed"].values()] for t, r in per_run.items()}  # run -> [acc per seed]
    run_means = [statistics.mean(a) for a in grid.values()]
    within = [statistics.stdev(a) if len(a) > 1 else 0.0 for a in grid.values()]
    seeds = list(next(iter(per_run.values()))["per_seed"])
    return {"accuracy_mean": statistics.mean(run_means),
            "std_over_training_seeds": statistics.stdev(run_means) if len(run_means) > 1 else None,
            "std_over_sampling_seeds": statistics.mean(within),
            "per_train_seed": {str(t): statistics.mean(a) for t, a in grid.items() if t is not None},
            "per_seed": {s: statistics.mean(r["per_seed"][s]["accuracy"] for r in per_run.values()) for s in seeds}}


def summarize(cfg: DemoConfig, out: Path, results: dict[str, dict], runs: dict[str, dict], sweep: dict[int, float]) -> dict:
    from softcot.stats import paired_bootstrap
    from softcot.utils import atomic_write_text

    rows = ["| method | accuracy (mean) | +- std over training seeds | +- std over sampling seeds | per training seed "
            "| SoftCoT minus method [95% paired bootstrap CI over questions, runs pooled] | GFLOPs / ms per question |",
            "|---|---|---|---|---|---|---|"]
    comparisons, methods = {}, {}
    soft = per_example([r / "eval" for r in runs["softcot"].values()]) if "softcot" in results else None
    for name, per_run in results.items():
        sp = methods[name] = spread(per_run)
        cmp = ""
        if soft is not None and name != "softcot":
            other = per_example([r / "eval" for r in runs[name].values()])
            ids = sorted(soft)
            b = comparisons[name] = paired_bootstrap([soft[i] for i in ids], [other[i] for i in ids])
            cmp = f"{100 * b['mean_diff']:+.1f} [{100 * b['ci95'][0]:+.1f}, {100 * b['ci95'][1]:+.1f}]"
        t_sd = "n/a (not trained)" if sp["std_over_training_seeds"] is None and None in per_run else (
            f"{sp['std_over_training_seeds']:.2f}" if sp["std_over_training_seeds"] is not None else "n/a (1 seed)")
        per_t = ", ".join(f"{v:.1f}" for v in sp["per_train_seed"].values()) or "-"
        costs = [r["cost_per_question"] for r in per_run.values() if r.get("cost_per_question")]
        sp["cost_per_question"] = {k: statistics.fmean(c[k] for c in costs) for k in ("flops", "ms")} if costs else None
        cost = (f"{sp['cost_per_question']['flops'] / 1e9:.3f} / {sp['cost_per_question']['ms']:.0f}"
                if costs else "-")  # counted by softcot.flops over every evaluated batch
        rows.append(f"| {name} | {sp['accuracy_mean']:.2f} | {t_sd} | {sp['std_over_sampling_seeds']:.2f} | {per_t} | {cmp} "
                    f"| {cost} |")
    md = "\n".join(rows)
    if sweep:
        md += "\n\nSoftCoT accuracy vs number of soft thoughts (first training seed, first seed): " + ", ".join(
            f"N={n}: {a:.1f}" for n, a in sweep.items())
    plots = write_plots(out, results, methods, runs, sweep)
    first = next(iter(next(iter(results.values())).values()))
    text = (f"# softcot demo\n\nTask `{cfg.task}`, {first['n_examples']} test examples, sampling seeds {cfg.seeds} "
            f"(T={cfg.temperature}), training seeds {cfg.train_seeds}.\n\n{md}\n\n"
            + "".join(f"![{p}]({p})\n" for p in plots))
    atomic_write_text(out / "demo.md", text)
    return {"methods": methods, "softcot_vs": comparisons, "n_sweep": sweep, "markdown": md, "plots": plots,
            "train_seeds": parse_seeds(cfg.train_seeds), "seeds": parse_seeds(cfg.seeds)}


def write_plots(out: Path, results: dict[str, dict], methods: dict[str, dict], runs: dict[str, dict],
                sweep: dict[int, float]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from softcot.utils import save_figure

    names = list(results)
    first = next(iter(next(iter(results.values())).values()))
    n, n_seeds = first["n_examples"], len(first["seeds"])
    fig, ax = plt.subplots(figsize=(1.3 * len(names) + 2, 3.6))
    # error bars: std over training seeds where there are several, else over sampling seeds
    err = [methods[m]["std_over_training_seeds"] if methods[m]["std_over_training_seeds"] is not None
           else methods[m]["std_over_sampling_seeds"] for m in names]
    ax.bar(names, [methods[m]["accuracy_mean"] for m in names], yerr=err,
           capsize=4, color=["tab:red" if m == "softcot" else "tab:gray" for m in names])
    for i, m in enumerate(names):  # every training run's own accuracy as a dot
        ax.plot([i] * len(methods[m]["per_train_seed"]), list(methods[m]["per_train_seed"].values()), "k.", ms=4)
    ax.set_ylim(0, 100)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"accuracy by method (n={n}, {n_seeds} sampling seeds; bars: std over training seeds where "
                 "trained, else over sampling seeds; dots: training runs)", fontsize=8)
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
    curves = [r / "ckpt" / "metrics.jsonl" for r in runs.get("softcot", {}).values()]
    if curves and all(c.is_file() for c in curves):
        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        for i, (tseed, curve) in enumerate(zip(runs["softcot"], curves)):
            rows = [json.loads(x) for x in curve.read_text().splitlines()]
            steps, losses = [r["step"] for r in rows], [r["loss"] for r in rows]
            k = max(1, len(rows) // 20)  # per-batch losses are noisy: show a running mean over k steps
            smooth = [sum(losses[max(0, j - k + 1):j + 1]) / len(losses[max(0, j - k + 1):j + 1]) for j in range(len(losses))]
            color = f"C{i}"
            ax.plot(steps, smooth, lw=1.2, color=color, label=f"seed {tseed} train (mean of {k})")
            dev = [(r["step"], r["dev_loss"]) for r in rows if r.get("dev_loss") is not None]
            if dev:
                ax.plot(*zip(*dev), marker="o", ms=3, ls="--", color=color)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("reply loss (dashed: dev)")
        ax.set_title("SoftCoT projection training, per training seed", fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        save_figure(fig, out / "training_curve.png")
        plots.append("training_curve.png")
    return plots

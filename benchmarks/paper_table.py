"""The paper's Table 2 on the five-family mini world: every baseline, SoftCoT, SoftCoT++, LoRA and
the training-free bridge, on the five task families, one block per LLM family, over training seeds.

    python benchmarks/paper_table.py                      # the table, on the shipped world
    python benchmarks/paper_table.py --quick              # every cell at CI size
    python -m softcot.miniworld.build --world families --out runs/world5    # rebuild the world, then
    python benchmarks/paper_table.py --world runs/world5

For each LLM family (llama, qwen; one assistant serves both), task family and method: train the
method's small trainable part on the family's train split (one projection per family, as the
paper trains; the `miniworld` preset's recipe: 20 steps of 32 from the vocabulary bridge at lr
3e-4; LoRA and Coconut at LORA_LR, their usual scale, not tuned here), once per training seed,
then evaluate on the family's test split over sampling seeds (T=0.5), reading the files through
softcot's own loader, prompts and scorer (`--task <family>`). Cells: the mean, the std over
training seeds, the std over sampling seeds, and a paired bootstrap 95 % CI against zero-shot CoT
over test questions (every run's predictions pooled per question). The training-free bridge is
`softcot train --init-only`: deterministic, so one run.

Resumable: every training run and evaluation lives in OUT/<llm>/<family>/<method>/... and a
finished one is read back, not redone. Writes OUT/paper_table.md, .json, paper_table.png (accuracy) and paper_table_flops.png
(accuracy against inference FLOPs per question, the frontier marked), and prints the wall time.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from softcot.miniworld.families import FAMILIES, FILE_EXT  # noqa: E402  (pure Python, no torch)

LLMS = ("llama", "qwen")
# (method key, the method softcot builds, the row's name as in the paper's Table 2)
ROWS = [("zero-shot-cot", "zero-shot-cot", "Zero-Shot CoT"),
        ("cot-unk", "cot-unk", "Zero-Shot CoT-Unk (pause tokens)"),
        ("assist-cot", "assist-cot", "Zero-Shot Assist-CoT"),
        ("coconut", "coconut", "Coconut"),
        ("softcot", "softcot", "SoftCoT"),
        ("softcot-pp", "softcot-pp", "SoftCoT++"),
        ("lora", "lora", "LoRA (fine-tuning reference)"),
        ("bridge", "softcot", "SoftCoT, training-free (vocabulary bridge)"),
        ("sc", "zero-shot-cot", "Zero-Shot CoT + self-consistency, k at SoftCoT's FLOPs"),
        ("sc-pp", "zero-shot-cot", "Zero-Shot CoT + self-consistency, k at SoftCoT++'s FLOPs")]
# self-consistency rows: the method whose inference FLOPs per question k samples must reach
SC_TARGET = {"sc": "softcot", "sc-pp": "softcot-pp"}
LORA_LR = 1e-3


def world_files(world: Path, family: str) -> dict[str, str]:
    return {s: str(world / "data" / family / f"{s}.{FILE_EXT[family]}") for s in ("train", "dev", "test")}


def run_cell(models: dict, world: Path, llm: str, family: str, key: str, args, out: Path, caches: dict,
             num_samples: int = 1) -> dict:
    """Train (per training seed) and evaluate one method on one family; returns {seed: metrics}.
    num_samples > 1: k sampled completions per question, majority vote (self-consistency)."""
    from softcot.config import DecodingConfig, EvalConfig
    from softcot.data import load_examples
    from softcot.evaluate import evaluate
    from softcot.frozen import load_frozen_lm
    from softcot.methods import build_method
    from softcot.presets import miniworld_configs
    from softcot.assistant import ThoughtCache
    from softcot.train import train
    from softcot.utils import seed_everything

    method_name = dict((k, m) for k, m, _ in ROWS)[key]
    files = world_files(world, family)
    train_ex = load_examples(family, files["train"], limit=args.limit_train or None)
    dev_ex = load_examples(family, files["dev"], limit=args.limit_dev or None)
    test_ex = load_examples(family, files["test"], limit=args.limit_test or None)
    base_m, base_t = miniworld_configs()
    mcfg = replace(base_m, method=method_name, assistant=str(world / "assistant"), llm=str(world / llm), task=family,
                   softcot_pp=replace(base_m.softcot_pp, num_chains=args.chains))
    dec = DecodingConfig(do_sample=True, temperature=0.5, max_new_tokens=args.max_new_tokens, num_samples=num_samples)
    seeds = [int(s) for s in args.seeds.split(",")]
    results = {}
    for tseed in (args.train_seeds if method_name not in ("zero-shot-cot", "cot-unk", "assist-cot") and key != "bridge"
                  else [None]):
        seed_everything(tseed if tseed is not None else args.train_seeds[0])
        # LoRA and Coconut inject adapters into the LLM module in place: each gets its own copy, so
        # the shared frozen LLM every other method reads stays the plain one
        own = method_name in ("lora", "coconut")
        lm = load_frozen_lm(str(world / llm), "float32", "cpu") if own else models[llm]
        method = build_method(mcfg, models={"llm": lm, "assistant": models["assistant"]})
        run = out / llm / family / key / (f"train-seed-{tseed}" if tseed is not None else
                                          (f"k{num_samples}" if num_samples > 1 else "run"))
        if method.trains:
            tcfg = replace(base_t, output_dir=str(run / "ckpt"), seed=tseed if tseed is not None else 0,
                           limit=args.limit_train, init_only=key == "bridge", eval_every=args.eval_every,
                           lr=LORA_LR if method_name in ("lora", "coconut") else base_t.lr,
                           max_steps=args.max_steps)
            if method.cacheable_thoughts:
                caches.setdefault((llm, family, key), ThoughtCache(method.assistant))
            t = time.time()
            train(method, tcfg, train_ex, dev_ex, thought_cache=caches.get((llm, family, key)))
            train_s = time.time() - t  # a resumed, finished run reads back: see train_seconds in its summary
        ecfg = EvalConfig(task=family, data_file=files["test"], output_dir=str(run / "eval"), seeds=seeds,
                          batch_size=64, limit=args.limit_test, n_thoughts=base_m.n_thoughts)
        results[tseed] = evaluate(method, test_ex, ecfg, dec) | {"eval_dir": str(run / "eval")}
        if method.trains:
            results[tseed]["train_s"] = _train_seconds(run / "ckpt", train_s)
    return results


def sc_samples(zs_runs: dict, target_runs: dict) -> int:
    """The smallest number of sampled completions k (>= 2) whose inference FLOPs per question reach
    the target method's: each sample prefills and decodes on its own, so k samples cost k times one."""
    import math

    one = statistics.mean(r["cost_per_question"]["flops"] for r in zs_runs.values())
    target = statistics.mean(r["cost_per_question"]["flops"] for r in target_runs.values())
    return max(2, math.ceil(target / one))


def _train_seconds(ckpt: Path, measured: float) -> float:
    """A training run's wall time, kept beside it so a resumed table reports the first measurement."""
    path = ckpt / "train_seconds.json"
    if path.is_file():
        return json.loads(path.read_text())["seconds"]
    path.write_text(json.dumps({"seconds": round(measured, 2)}))
    return measured


def per_question(eval_dirs: list[str]) -> dict[str, float]:
    """Each test question's accuracy, averaged over every run and sampling seed."""
    acc: dict[str, list[float]] = {}
    for d in eval_dirs:
        for line in (Path(d) / "predictions.jsonl").read_text().splitlines():
            r = json.loads(line)
            acc.setdefault(r["id"], []).append(float(r["correct"]))
    return {k: sum(v) / len(v) for k, v in acc.items()}


def cell_summary(runs: dict, zs_runs: dict | None) -> dict:
    """Mean, std over training seeds, std over sampling seeds, paired bootstrap CI vs zero-shot CoT."""
    grid = [[v["accuracy"] for v in r["per_seed"].values()] for r in runs.values()]
    means = [statistics.mean(g) for g in grid]
    out = {"mean": statistics.mean(means), "n_train_seeds": len([t for t in runs if t is not None]),
           "std_train": statistics.stdev(means) if len(means) > 1 else None,
           "std_sampling": statistics.mean(statistics.stdev(g) if len(g) > 1 else 0.0 for g in grid),
           "per_train_seed": means}
    costs = [r["cost_per_question"] for r in runs.values() if r.get("cost_per_question")]
    if costs:
        out["gflops_per_q"] = statistics.mean(c["flops"] for c in costs) / 1e9
        out["ms_per_q"] = statistics.mean(c["ms"] for c in costs)
        out["llm_positions_per_q"] = statistics.mean(c["llm_positions"] for c in costs)
    out["num_samples"] = next(iter(runs.values())).get("num_samples", 1)
    trains = [r["train_s"] for r in runs.values() if "train_s" in r]
    out["train_s"] = statistics.mean(trains) if trains else 0.0
    if zs_runs is not None:
        out["vs_zero_shot"] = paired_diff(runs, zs_runs)
    return out


def paired_diff(runs_a: dict, runs_b: dict) -> dict:
    """A minus B in accuracy points, with a paired bootstrap 95 % CI over test questions (each
    question's accuracy averaged over every run and sampling seed of a method)."""
    from softcot.stats import paired_bootstrap

    a = per_question([r["eval_dir"] for r in runs_a.values()])
    b = per_question([r["eval_dir"] for r in runs_b.values()])
    ids = sorted(a)
    bs = paired_bootstrap([a[i] for i in ids], [b[i] for i in ids])
    return {"diff": 100 * bs["mean_diff"], "ci95": [100 * x for x in bs["ci95"]]}


PAIRS = (("softcot", "assist-cot"), ("softcot", "bridge"), ("softcot-pp", "softcot"), ("bridge", "assist-cot"))


def pairs(raw: dict) -> dict:
    """Paired bootstrap CIs over questions between the rows that answer the paper's questions
    (soft thoughts vs the written hint, training vs the bridge, SoftCoT++ vs SoftCoT): every
    run's predictions pooled per question. {llm: {family: {"a-b": {diff, ci95}}}}."""
    out: dict = {}
    for llm, fams in raw.items():
        for fam, keys in fams.items():
            for a, b in PAIRS:
                if a in keys and b in keys:
                    out.setdefault(llm, {}).setdefault(fam, {})[f"{a} - {b}"] = paired_diff(keys[a], keys[b])
    return out


def markdown(table: dict, args, wall_s: float, paired: dict | None = None) -> str:
    lines = [f"# The paper's Table 2 on the five-family mini world\n",
             f"Test split per family ({args.limit_test or 'all'} questions), sampling T=0.5, seeds {args.seeds}; "
             f"trained rows over training seeds {','.join(map(str, args.train_seeds))}; SoftCoT++ with K={args.chains} "
             "chains. Cell: mean accuracy "
             "(+- std over training seeds / +- std over sampling seeds) [95 % paired bootstrap CI vs zero-shot CoT]. "
             f"Wall time {wall_s / 60:.1f} min.\n"]
    for llm, block in table.items():
        lines += [f"\n## LLM family: {llm}\n", "| method | " + " | ".join(FAMILIES) + " | average |",
                  "|---|" + "---|" * (len(FAMILIES) + 1)]
        for key, _, label in ROWS:
            if key not in block:
                continue
            cells = []
            for fam in FAMILIES:
                c = block[key].get(fam)
                if c is None:
                    cells.append("-")
                    continue
                sd = f"+-{c['std_train']:.1f}/" if c["std_train"] is not None else "+-"
                ci = c.get("vs_zero_shot")
                ci_s = f" [{ci['ci95'][0]:+.1f}, {ci['ci95'][1]:+.1f}]" if ci and key != "zero-shot-cot" else ""
                cells.append(f"{c['mean']:.1f} ({sd}{c['std_sampling']:.1f}){ci_s}")
            avg = [block[key][f]["mean"] for f in FAMILIES if f in block[key]]
            if key in SC_TARGET:
                label += " (k = " + ", ".join(str(block[key][f].get("num_samples", "?")) for f in FAMILIES
                                              if f in block[key]) + " per family)"
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {statistics.mean(avg):.1f} |")
        lines += [f"\nCompute ({llm}): inference GFLOPs per question (both models, prompt and generated tokens, "
                  "counted by softcot.flops) / ms per question / seconds per training run, per family:\n",
                  "| method | " + " | ".join(FAMILIES) + " |", "|---|" + "---|" * len(FAMILIES)]
        for key, _, label in ROWS:
            if key not in block:
                continue
            cells = []
            for fam in FAMILIES:
                c = block[key].get(fam) or {}
                cells.append(f"{c['gflops_per_q']:.3f} / {c['ms_per_q']:.0f} / {c['train_s']:.0f}"
                             if "gflops_per_q" in c else "-")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append(f"\nOn the accuracy-vs-FLOPs frontier ({llm}; no method is as accurate for fewer FLOPs): " +
                     "; ".join(f"{fam}: {', '.join(frontier(block, fam)) or '-'}" for fam in FAMILIES
                               if any(fam in c for c in block.values())) + ".")
        for fam, ds in (paired or {}).get(llm, {}).items():
            lines.append(f"\nPaired over questions ({llm}, {fam}): " + "; ".join(
                f"{k} {d['diff']:+.1f} [{d['ci95'][0]:+.1f}, {d['ci95'][1]:+.1f}]" for k, d in ds.items()) + ".")
    return "\n".join(lines) + "\n"


def frontier(block: dict, family: str) -> list[str]:
    """The methods on the accuracy-vs-compute frontier of one family: no other method is at least as
    accurate for at most its inference FLOPs per question (and strictly better in one)."""
    pts = {k: (c[family]["gflops_per_q"], c[family]["mean"]) for k, c in block.items()
           if family in c and "gflops_per_q" in c[family]}
    return [k for k, (f, a) in pts.items()
            if not any(f2 <= f and a2 >= a and (f2, a2) != (f, a) for k2, (f2, a2) in pts.items() if k2 != k)]


def plot_frontier(table: dict, path: Path) -> None:
    """Accuracy against inference GFLOPs per question, one panel per LLM family x task family, every
    method a point (error bar: std over training seeds), the frontier drawn through its points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fams = [f for f in FAMILIES if any(f in c for b in table.values() for c in b.values())]
    fig, axes = plt.subplots(len(table), len(fams), figsize=(3.6 * len(fams), 3.3 * len(table)), squeeze=False)
    for r, (llm, block) in enumerate(table.items()):
        for c, fam in enumerate(fams):
            ax = axes[r][c]
            for i, (key, cell) in enumerate((k, v[fam]) for k, v in block.items() if fam in v and "gflops_per_q" in v[fam]):
                ax.errorbar(cell["gflops_per_q"], cell["mean"], yerr=cell["std_train"] or 0.0, fmt="o", ms=4,
                            color=f"C{i % 10}", label=key)
            front = sorted((block[k][fam]["gflops_per_q"], block[k][fam]["mean"]) for k in frontier(block, fam))
            if front:
                ax.plot(*zip(*front), "k--", lw=0.8, alpha=0.6)
            ax.set_xscale("log")
            ax.set_title(f"{llm} / {fam}", fontsize=9)
            ax.set_xlabel("GFLOPs per question", fontsize=8)
            ax.set_ylabel("test accuracy (%)", fontsize=8)
    axes[0][-1].legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot(table: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(table), figsize=(7 * len(table), 4.5), squeeze=False)
    for ax, (llm, block) in zip(axes[0], table.items()):
        keys = [k for k, _, _ in ROWS if k in block]
        width = 0.8 / max(1, len(keys))
        for j, k in enumerate(keys):
            ys = [block[k].get(f, {}).get("mean", 0.0) for f in FAMILIES]
            ax.bar([i + j * width for i in range(len(FAMILIES))], ys, width, label=k)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(FAMILIES))], FAMILIES)
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"LLM family: {llm}")
    axes[0][-1].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_parallel(argv: list[str], llms: list[str]) -> None:
    """One child process per LLM family, 1 torch thread each, side by side (tiny models use 2 cores
    better as 2 one-thread processes than as 1 two-thread one); a child that fails stops the table."""
    import subprocess

    procs = []
    for llm in llms:
        cmd = [sys.executable, str(Path(__file__).resolve()), *argv, "--llms", llm, "--threads", "1", "--jobs", "1"]
        print(f"[paper_table] {llm}: {' '.join(cmd[1:])}", flush=True)
        procs.append((llm, subprocess.Popen(cmd)))
    failed = [(llm, p.wait()) for llm, p in procs]
    failed = [(llm, rc) for llm, rc in failed if rc]
    if failed:
        sys.exit("paper_table.py: error: " + "; ".join(f"the {llm} process exited with {rc}" for llm, rc in failed))


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--world", default=None, help="the five-family world (default: the shipped one, "
                    "softcot/miniworld/assets/families; rebuild: python -m softcot.miniworld.build --world families)")
    ap.add_argument("--out", default="runs/paper-table")
    ap.add_argument("--llms", default=",".join(LLMS))
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--methods", default=",".join(k for k, _, _ in ROWS))
    ap.add_argument("--train-seeds", default="42,43,44")
    ap.add_argument("--seeds", default="41,42", help="sampling seeds of every evaluation")
    ap.add_argument("--limit-train", type=int, default=640)
    ap.add_argument("--limit-dev", type=int, default=128)
    ap.add_argument("--limit-test", type=int, default=200, help="the first N test questions of each family (0: all "
                    "300); 200 keeps the whole table within 2 hours on 2 cores")
    ap.add_argument("--max-steps", type=int, default=0)
    ap.add_argument("--eval-every", type=int, default=10)
    ap.add_argument("--max-new-tokens", type=int, default=160)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default); tiny models use "
                    "2 cores better as 2 processes of 1 thread, e.g. one per --llms")
    ap.add_argument("--chains", type=int, default=4, help="SoftCoT++'s K chains per question (the paper: 10; "
                    "training and evaluation cost K times SoftCoT's, so 4 keeps the table in its time)")
    ap.add_argument("--jobs", type=int, default=0, help="processes, one per LLM family, each with 1 thread; then the "
                    "joint report from their finished runs (0: one per LLM family when there are 2+ cores and "
                    "--threads is not set; 1: everything in this process)")
    ap.add_argument("--quick", action="store_true", help="every cell at CI size: 1 training seed, 1 sampling seed, "
                    "2 steps, 4 test questions")
    args = ap.parse_args(argv)
    t_begin = time.time()
    llm_list = [x for x in args.llms.split(",") if x]
    jobs = args.jobs or (len(llm_list) if (os.cpu_count() or 1) >= 2 and not args.threads and not args.quick else 1)
    if jobs > 1 and len(llm_list) > 1:
        run_parallel(argv if argv is not None else sys.argv[1:], llm_list)  # then read every run back below
    if args.quick:
        args.train_seeds, args.seeds, args.max_steps, args.limit_train = "42", "41", 2, 16
        args.limit_dev, args.limit_test, args.max_new_tokens, args.eval_every = 4, 4, 24, 1
    args.train_seeds = [int(s) for s in args.train_seeds.split(",")]
    import torch

    from softcot.frozen import load_frozen_lm
    from softcot.utils import write_json

    if args.threads:
        torch.set_num_threads(args.threads)

    from softcot.miniworld import FAMILIES_DIR

    world, out = Path(args.world or FAMILIES_DIR), Path(args.out)
    if not (world / "MANIFEST.json").is_file():
        sys.exit(f"paper_table.py: error: {world}: no five-family world there; build it with "
                 f"`python -m softcot.miniworld.build_families --out {world}`")
    t0 = time.time()
    llms = [x for x in args.llms.split(",") if x]
    models = {name: load_frozen_lm(str(world / name), "float32", "cpu") for name in [*llms, "assistant"]}
    caches: dict = {}
    table: dict = {}
    raw: dict = {}
    for llm in llms:
        for fam in [f for f in args.families.split(",") if f]:
            runs = {}
            for key in [m for m in args.methods.split(",") if m]:
                t = time.time()
                k = 1
                if key in SC_TARGET:  # the smallest k whose FLOPs reach the target's (zero-shot CoT: k=1 measured)
                    if "zero-shot-cot" not in runs or SC_TARGET[key] not in runs:
                        continue
                    k = sc_samples(runs["zero-shot-cot"], runs[SC_TARGET[key]])
                runs[key] = run_cell(models, world, llm, fam, key, args, out, caches, num_samples=k)
                for r in runs[key].values():
                    r["num_samples"] = k
                print(f"[{(time.time() - t0) / 60:5.1f} min] {llm} {fam} {key}: "
                      f"{statistics.mean(r['accuracy_mean'] for r in runs[key].values()):.1f} "
                      f"({time.time() - t:.0f} s)", flush=True)
            zs = runs.get("zero-shot-cot")
            for key, r in runs.items():
                table.setdefault(llm, {}).setdefault(key, {})[fam] = cell_summary(r, zs)
                raw.setdefault(llm, {}).setdefault(fam, {})[key] = {str(t): {k: v for k, v in m.items() if k != "per_seed"}
                                                                     for t, m in r.items()}
    wall = time.time() - t_begin  # the child processes' time included
    paired = pairs(raw)
    md = markdown(table, args, wall, paired)
    out.mkdir(parents=True, exist_ok=True)
    (out / "paper_table.md").write_text(md)
    plot(table, out / "paper_table.png")
    plot_frontier(table, out / "paper_table_flops.png")
    # LoRA and Coconut must have used their own copies: the shared LLMs carry no adapters
    plain = {name: not hasattr(models[name][0], "peft_config") for name in llms}
    result = {"table": table, "runs": raw, "paired": paired, "wall_s": round(wall, 1), "shared_llms_plain": plain,
              "args": {k: v for k, v in vars(args).items()}}
    write_json(out / "paper_table.json", result)
    print(md)
    print(f"wall time {wall / 60:.1f} min; {out / 'paper_table.md'}, {out / 'paper_table.json'}, {out / 'paper_table.png'}, "
          f"{out / 'paper_table_flops.png'}")
    return result


if __name__ == "__main__":
    main()

"""Beyond SoftCoT on the mini world: question-free SoftCoT, LightThinker-style step compression
(alone and with SoftCoT's thoughts), hidden-state re-injection, and fixed- vs mixed-N training.

    python benchmarks/ideas.py                        # 3 training seeds x 2 sampling seeds; writes runs/ideas/
    python benchmarks/ideas.py --quick                # every code path in a few minutes (runs/ideas-quick)

Protocol: the shipped mini LMs and splits. Every trained row is trained on training seeds 42-44
(--train-seeds) with its method's recipe (RECIPE: SoftCoT's miniworld preset, or a whole epoch for
the parts that start untrained; LightThinker's is the one benchmarks/lt_seeds.py showed lands on
every seed). Sampling T=0.5, 160 new tokens, sampling seeds 41-42; each row gives the mean, the
std over training seeds and the std over sampling seeds, and a paired bootstrap CI of the method
minus SoftCoT over test questions (each question's accuracy averaged over every training and
sampling seed). Every choice is made on the dev split (first training seed, first sampling seed):
question-free SoftCoT's N and re-injection's k (LightThinker's recipe comes from lt_seeds.py).
SoftCoT + LightThinker is measured twice: trained jointly like LightThinker, and as SoftCoT's
projection (from SoftCoT's, 1 epoch) trained on top of the chosen LightThinker of the
same training seed, whose gists and LoRA stay frozen. Cost (first training seed), on the first
--cost-n test questions with greedy decoding, batch 64: the LLM's prompt length in tokens, the peak
number of real cached key/value entries per question (plain decoding: prompt + generated tokens;
the step-wise methods count their cache after every forward), and the generation time per
question; GFLOPs per question are counted (softcot.flops) over the sampled test evaluation.
Accuracy vs N (first seeds): SoftCoT trained at N=4 and trained over N drawn from 1-32, and
question-free SoftCoT (trained over 1-32).
Writes ideas.json, ideas.md, accuracy_vs_n.png under --out (ideas-rows.* with --rows). Rerun: everything resumes (training
and evaluation are the library's resumable loops; cost rows are cached as JSON).
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from softcot.config import DecodingConfig, LightThinkerConfig, ReinjectConfig, parse_seeds  # noqa: E402
from softcot.data import load_examples  # noqa: E402
from softcot.demo import DemoConfig, method_config, per_example, resolve_world, spread, train_config  # noqa: E402
from softcot.evaluate import EvalConfig, evaluate  # noqa: E402
from softcot.frozen import load_frozen_lm  # noqa: E402
from softcot.methods import build_method  # noqa: E402
from softcot.stats import paired_bootstrap  # noqa: E402
from softcot.train import train  # noqa: E402
from softcot.utils import atomic_write_text, log, save_figure, seed_everything, write_json  # noqa: E402

SWEEP_N = [1, 2, 4, 8, 16, 32]
# Per method, what changes from the miniworld preset (SoftCoT's recipe: 20 steps of 32 from the
# vocabulary bridge at lr 3e-4). The methods that start from random or untrained parts (LoRA,
# gists, re-injection's d_llm -> d_llm projection) and the mixed-N / question-free projections
# (which must serve every N) get a whole epoch of the train split; LightThinker's recipe is the one
# benchmarks/lt_seeds.py found to land on every seed (README).
FULL_EPOCH = {"limit": 0, "lr": 1e-3}  # from the bridge: the full-epoch SoftCoT recipe before the demo's
SCRATCH = {"limit": 0, "lr": 3e-3}  # parts that start untrained: the demo's full-epoch recipe of the time
# chosen on dev by lt_seeds.py (seeds 44-45, the seeds 6 epochs alone left on the plateau); = its
# recipe "lr=1e-2,limit=0,epochs=6,gist_tokens=4,tail_loss=1" (checkpoints reusable: --lt-dir),
# confirmed on fresh seeds 46-50 (README): 4 gists, each but the last also trained to predict one
# of its step's last 3 content tokens (where the step states the result the next step needs)
LT_RECIPE = {"limit": 0, "lr": 1e-2, "epochs": 6}
LT_MODEL = LightThinkerConfig(lora=True, gist_tokens=4, tail_loss=1.0)
LT_LABEL = "4 gists with the tail target + LoRA, 6 epochs at lr 1e-2"
RECIPE: dict[str, dict] = {"lora": SCRATCH, "lightthinker": LT_RECIPE, "softcot-lightthinker": LT_RECIPE,
                           "reinject": SCRATCH, "softcot-qfree": FULL_EPOCH}
# run name -> (method, model-config overrides, train-config overrides)
RUNS: dict[str, tuple[str, dict, dict]] = {
    "zero-shot-cot": ("zero-shot-cot", {}, {}),
    "softcot": ("softcot", {}, {}),
    "softcot-mixN": ("softcot", {}, {"train_n_mix": "1-32", **FULL_EPOCH}),
    "softcot-qfree": ("softcot-qfree", {}, {"train_n_mix": "1-32"}),
    "lora": ("lora", {}, {}),
    "lightthinker": ("lightthinker", {"lightthinker": LT_MODEL}, {}),
    "softcot-lightthinker": ("softcot-lightthinker", {"lightthinker": LT_MODEL}, {}),
    # SoftCoT's projection trained (1 epoch, from SoftCoT's) on top of LightThinker (same seed), frozen
    "softcot-lightthinker-ontop": ("softcot-lightthinker", {"lightthinker": LT_MODEL}, {"epochs": 1, "lr": 1e-3}),
    "reinject-k1": ("reinject", {"reinject": ReinjectConfig(states=1)}, {}),
    "reinject-k2": ("reinject", {"reinject": ReinjectConfig(states=2)}, {}),
}
TRAINED = [r for r, (name, _, _) in RUNS.items() if name != "zero-shot-cot"]


class Bench:
    def __init__(self, args) -> None:
        self.args, self.out = args, Path(args.out)
        self.demo = DemoConfig()
        self.world = resolve_world(self.demo)
        lim = dict(quick=(256, 48, 48), full=(0, args.limit_dev, args.limit_test))["quick" if args.quick else "full"]
        self.train_all = load_examples("miniworld", self.world["train"], limit=lim[0] or None)
        self.dev_ex = load_examples("miniworld", self.world["dev"], limit=lim[1] or None)
        self.test_ex = load_examples("miniworld", self.world["test"], limit=lim[2] or None)
        self.loss_dev = self.dev_ex[:64]  # the trainer's dev loss: a small slice keeps it cheap
        self.models = {"llm": load_frozen_lm(self.world["llm"], "float32"),
                       "assistant": load_frozen_lm(self.world["assistant"], "float32")}
        self.seeds = [41, 42]  # sampling seeds
        self.train_seeds = [42] if args.quick else parse_seeds(args.train_seeds)
        self.dec = DecodingConfig(do_sample=True, temperature=0.5, max_new_tokens=96 if args.quick else 160)
        self.built: dict[str, object] = {}

    def trains(self, run: str) -> bool:
        return run in TRAINED

    def folder(self, run: str, tseed: int | None) -> Path:
        """out/run for a method that does not train, out/run/s{training seed} for one that does."""
        return self.out / run / f"s{tseed or self.train_seeds[0]}" if self.trains(run) else self.out / run

    def method(self, run: str, tseed: int | None = None):
        """Build (once) and train (resumable) the method of `run` with training seed `tseed`."""
        tseed = tseed or self.train_seeds[0]
        key = (run, tseed if self.trains(run) else None)
        if key in self.built:
            return self.built[key]
        name, mover, tover = RUNS[run]
        tover = {**RECIPE.get(name, {}), **tover}
        cfg = dataclasses.replace(method_config(name, self.demo, self.world), **mover)
        llm_model, tok = self.models["llm"]
        # LoRA is injected into the LLM module in place: those methods get their own copy
        own = cfg.method == "lora" or (cfg.method.endswith("lightthinker") and cfg.lightthinker.lora)
        models = {"llm": (copy.deepcopy(llm_model), tok) if own else (llm_model, tok), "assistant": self.models["assistant"]}
        seed_everything(tseed)  # LoRA's and the projections' random init follow the training seed
        m = build_method(cfg, models=models)
        if run == "softcot-lightthinker-ontop":
            self.warm_start(m, tseed)
        if m.trains:
            ckpt = self.folder(run, tseed) / "ckpt"
            reuse = Path(self.args.lt_dir or "-") / f"s{tseed}" / "ckpt"
            if run == "lightthinker" and reuse.is_dir():  # the same recipe, trained by lt_seeds.py: resumes as finished
                ckpt = reuse
            tc = train_config(self.demo, ckpt, len(self.train_all), m, tseed)
            tc = dataclasses.replace(tc, **tover)
            train_ex = self.train_all[: tc.limit] if tc.limit else self.train_all
            t0 = time.time()
            train(m, tc, train_ex, self.loss_dev)
            log.info("%s (training seed %d) trained/resumed in %.0f s", run, tseed, time.time() - t0)
        self.built[key] = m
        return m

    def warm_start(self, m, tseed: int) -> None:
        """Gists + LoRA from the chosen LightThinker (then frozen), projection from SoftCoT (same training seed)."""
        sd = m.trainable_state_dict()
        sd.update(self.method("lightthinker", tseed).trainable_state_dict())
        sd.update({"projection." + k: v for k, v in self.method("softcot", tseed).trainable_state_dict().items()})
        m.load_tensors(sd, "warm start")
        m.trainable["gist"].weight.requires_grad_(False)
        for name, p in m.llm.model.named_parameters():
            if "lora_" in name:
                p.requires_grad_(False)

    def eval(self, run: str, split: str, n: int = 0, seeds: list[int] | None = None, tag: str = "",
             tseed: int | None = None) -> dict:
        """Evaluate (resumable) in out/run[/sT]/{tag or split}[-n{n}]; a folder always holds one seed list."""
        m = self.method(run, tseed)
        examples, data = (self.dev_ex, "dev") if split == "dev" else (self.test_ex, "test")
        tag = tag or split
        folder = self.folder(run, tseed) / (f"{tag}-n{n}" if n else tag)
        ecfg = EvalConfig(task="miniworld", data_file=self.world[data], output_dir=str(folder),
                          seeds=seeds or self.seeds, batch_size=64, limit=len(examples), n_thoughts=n)
        return {**evaluate(m, examples, ecfg, self.dec), "folder": str(folder)}

    def test_row(self, run: str, n: int) -> dict:
        """The test split over every training seed (one run for a method that does not train):
        mean, std over training seeds, std over sampling seeds, and the evaluation folders."""
        tseeds = self.train_seeds if self.trains(run) else [None]
        per_run = {t: self.eval(run, "test", n, tseed=t) for t in tseeds}
        return {**spread(per_run), "folders": [r["folder"] for r in per_run.values()],
                "cost_per_question": next(iter(per_run.values())).get("cost_per_question")}

    def cost(self, run: str, n: int = 0) -> dict:
        """Prompt tokens, peak cached entries and generation time per question (greedy, batch 64)."""
        path = self.out / "cost" / f"{run}-n{n}.json"
        if path.is_file():
            return json.loads(path.read_text())
        m = self.method(run)
        ex = self.test_ex[: self.args.cost_n]
        nn = m.thought_count(n)
        dec = dataclasses.replace(self.dec, do_sample=False)
        prompt, peak, gen, fires, t0 = [], [], [], [], time.time()
        for i in range(0, len(ex), 64):
            batch = ex[i:i + 64]
            _, mask = m.llm.encode_prompts(m.prompt_texts(batch, nn))
            comps = m.generate(batch, dec, n_thoughts=nn)
            lens = mask.sum(1).tolist()
            prompt += lens
            gen += [c[0].tokens for c in comps]
            stats = getattr(m, "last_stats", None)
            if stats is not None:  # the step-wise decoders count their cache themselves
                peak += stats["peak_cached"]
                fires += stats["fires"]
            else:  # plain decoding keeps prompt + every generated token
                peak += [p + c[0].tokens for p, c in zip(lens, comps)]
        row = {"prompt_tokens": sum(prompt) / len(prompt), "peak_cached": sum(peak) / len(peak),
               "peak_cached_max": max(peak), "generated_tokens": sum(gen) / len(gen),
               "gen_ms_per_question": 1000 * (time.time() - t0) / len(ex),
               "fires_per_question": (sum(fires) / len(fires)) if fires else None, "n_questions": len(ex)}
        write_json(path, row)
        return row


def choose(bench: Bench, options: dict[str, tuple[str, int]]) -> tuple[str, dict]:
    """The option with the best dev accuracy (first seed); options: label -> (run, n)."""
    acc = {label: bench.eval(run, "dev", n, bench.seeds[:1])["accuracy_mean"] for label, (run, n) in options.items()}
    return max(acc, key=acc.get), acc


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="")
    ap.add_argument("--quick", action="store_true", help="CI size: 256 train / 48 dev / 48 test, 2 seeds")
    ap.add_argument("--limit-dev", type=int, default=150, help="dev questions for the choices (first seed)")
    ap.add_argument("--limit-test", type=int, default=0, help=">0: first N test questions (default: all 400)")
    ap.add_argument("--cost-n", type=int, default=128, help="test questions of the cost measurement")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train-seeds", default="42-44", help="training seeds of every trained row (--quick: 42 only)")
    ap.add_argument("--no-n-sweep", action="store_true", help="leave out mixed-N training and the accuracy-vs-N sweep")
    ap.add_argument("--lt-dir", default="", help="a benchmarks/lt_seeds.py recipe folder of the same recipe: LightThinker's "
                    "training seeds found there (sS/ckpt) are reused instead of trained again")
    ap.add_argument("--train-only", default="", help="','-separated runs (e.g. softcot-lightthinker): train them for "
                    "--train-seeds and stop, so training seeds can run side by side (--threads 1 each) before the table")
    ap.add_argument("--rows", default="", help="','-separated rows of the table (zero-shot CoT and SoftCoT always stay), "
                    "e.g. lightthinker,softcot-lightthinker,softcot-lightthinker-ontop for LightThinker's question over "
                    "more training seeds; default: every row")
    args = ap.parse_args(argv)
    args.out = args.out or ("runs/ideas-quick" if args.quick else "runs/ideas")
    if args.quick:
        args.cost_n = min(args.cost_n, 48)
    torch.set_num_threads(args.threads)
    t_start = time.time()
    runs = [r for r in args.train_only.split(",") if r]
    if any(r not in TRAINED for r in runs):  # checked before the models load
        raise SystemExit(f"ideas.py: --train-only {args.train_only}: expected trained runs among {', '.join(TRAINED)}")
    row_names = ["softcot-mixN", "softcot-qfree", "lora", "lightthinker", "softcot-lightthinker",
                 "softcot-lightthinker-ontop", "reinject"]
    rows_arg = [r for r in args.rows.split(",") if r]
    if any(r not in row_names for r in rows_arg):
        raise SystemExit(f"ideas.py: --rows {args.rows}: expected rows among {', '.join(row_names)}")
    b = Bench(args)
    if runs:
        for run in runs:
            for t in b.train_seeds:
                b.method(run, t)
        print(f"trained {', '.join(runs)} for training seeds {b.train_seeds} in {time.time() - t_start:.0f} s")
        return {"trained": runs, "train_seeds": b.train_seeds}
    want = set(rows_arg) if rows_arg else None  # None: every row
    # ---- choices on the dev split (only for the rows that need them) --------------------------
    choices, n_q, ri_label, ri_run = {}, 8, "k=2", "reinject-k2"
    if want is None or "softcot-qfree" in want:
        qfree_n, qfree_dev = choose(b, {f"N={n}": ("softcot-qfree", n) for n in (8, 16, 32)})
        n_q = int(qfree_n.split("=")[1])
        choices["softcot-qfree N"] = {"chosen": qfree_n, "dev_accuracy": qfree_dev}
    if want is None or "reinject" in want:
        ri_label, ri_dev = choose(b, {"k=1": ("reinject-k1", 0), "k=2": ("reinject-k2", 0)})
        ri_run = {"k=1": "reinject-k1", "k=2": "reinject-k2"}[ri_label]
        choices["reinject k"] = {"chosen": ri_label, "dev_accuracy": ri_dev}
    # ---- the test table ------------------------------------------------------------------------
    table = [("zero-shot CoT", "zero-shot-cot", 0), ("SoftCoT (N=4)", "softcot", 4),
             *([] if args.no_n_sweep else [("SoftCoT mixed-N 1-32 (N=4)", "softcot-mixN", 4)]),
             (f"question-free SoftCoT (N={n_q})", "softcot-qfree", n_q),
             ("LoRA CoT (no compression, 1 epoch)", "lora", 0),
             (f"LightThinker ({LT_LABEL})", "lightthinker", 0), (f"SoftCoT + LightThinker (N=4, {LT_LABEL})", "softcot-lightthinker", 4),
             ("SoftCoT + LightThinker (N=4, projection on top of the frozen LightThinker, +1 epoch)",
              "softcot-lightthinker-ontop", 4), (f"re-injection ({ri_label})", ri_run, 0)]
    if want is not None:  # zero-shot CoT and SoftCoT stay: every row is paired against SoftCoT
        table = [t for t in table if t[1] in ("zero-shot-cot", "softcot") or t[1] in want
                 or (t[1].startswith("reinject") and "reinject" in want)]
    results, rows = {}, {}
    for label, run, n in table:
        results[label] = (run, n, b.test_row(run, n))
    soft = per_example([Path(f) for f in results["SoftCoT (N=4)"][2]["folders"]])  # pooled over training x sampling seeds
    ids = sorted(soft)
    for label, (run, n, m) in results.items():
        cost = b.cost(run, n)
        row = {"run": run, "n": n, **{k: m[k] for k in ("accuracy_mean", "std_over_training_seeds", "std_over_sampling_seeds",
                                                       "per_train_seed", "per_seed")},
               "training_seeds": b.train_seeds if b.trains(run) else [], **cost,
               # counted by softcot.flops over the whole sampled test evaluation (first training seed): both
               # models, prompt and generated tokens, every extra pass of the step-wise decoders
               "cost_per_question": m.get("cost_per_question")}
        if run != "softcot":
            other = per_example([Path(f) for f in m["folders"]])
            bs = paired_bootstrap([other[i] for i in ids], [soft[i] for i in ids])
            row["minus_softcot"] = {"mean": 100 * bs["mean_diff"], "ci95": [100 * x for x in bs["ci95"]]}
        rows[label] = row
    # ---- the question that matters most: do soft thoughts raise LightThinker's accuracy? Paired
    # with LightThinker over the same questions, and per training seed (on top: the very same
    # LightThinker run with SoftCoT's projection added; jointly: its own run of the same seed)
    lt_label = next((k for k, v in results.items() if v[0] == "lightthinker"), None)
    lt_row = results[lt_label][2] if lt_label else None
    lt_acc = per_example([Path(f) for f in lt_row["folders"]]) if lt_row else {}
    for label, (run, n, m) in results.items():
        if run.startswith("softcot-lightthinker") and lt_row:
            other = per_example([Path(f) for f in m["folders"]])
            bs = paired_bootstrap([other[i] for i in ids], [lt_acc[i] for i in ids])
            rows[label]["minus_lightthinker"] = {
                "mean": 100 * bs["mean_diff"], "ci95": [100 * x for x in bs["ci95"]],
                "per_train_seed": {t: m["per_train_seed"][t] - lt_row["per_train_seed"][t] for t in m["per_train_seed"]}}
    # ---- accuracy vs N (first seed) ------------------------------------------------------------------
    sweep: dict[str, dict[int, float]] = {}
    prompt_tokens: dict[str, dict[int, float]] = {}
    for label, run in [] if args.no_n_sweep else [("SoftCoT fixed N=4", "softcot"), ("SoftCoT mixed N 1-32", "softcot-mixN"),
                                                  ("question-free SoftCoT, mixed N 1-32", "softcot-qfree")]:
        if run not in {t[1] for t in table}:
            continue
        sweep[label] = {n: b.eval(run, "test", n, b.seeds[:1], tag="sweep")["accuracy_mean"] for n in SWEEP_N}
        m = b.method(run)
        prompt_tokens[label] = {n: float(m.llm.encode_prompts(m.prompt_texts(b.test_ex, n))[1].sum(1).float().mean())
                                for n in SWEEP_N}
    summary = {"choices": choices, "table": rows, "accuracy_vs_n": sweep, "prompt_tokens_vs_n": prompt_tokens,
               "test_questions": len(b.test_ex), "seeds": b.seeds, "train_seeds": b.train_seeds,
               "recipes": {k: v for k, v in RECIPE.items()}, "wall_time_s": round(time.time() - t_start, 1)}
    summary["markdown"] = markdown(summary)
    summary["plots"] = plot(b.out, sweep, len(b.test_ex)) if sweep else []
    stem = "ideas-rows" if want is not None else "ideas"  # a row subset (--rows) never overwrites the whole table
    summary["rows"] = sorted(want) if want is not None else "all"
    write_json(b.out / f"{stem}.json", summary)
    atomic_write_text(b.out / f"{stem}.md", f"# Beyond SoftCoT on the mini world\n\n{summary['markdown']}\n\n"
                      + "".join(f"![{p}]({p})\n" for p in summary["plots"]))
    print(summary["markdown"])
    print(f"wall time {summary['wall_time_s']} s; report {b.out / (stem + '.md')}")
    return summary


def markdown(s: dict) -> str:
    ts = s.get("train_seeds", [])
    lines = [f"Test split ({s['test_questions']} questions); every trained row over training seeds {ts} x sampling "
             f"seeds {s['seeds']} (T=0.5): mean, +- std over training seeds, +- std over sampling seeds; the paired CI "
             "pools both. Cost columns: greedy, per question, first training seed.", "",
             "| method | accuracy | +- training seeds | +- sampling seeds | per training seed | minus SoftCoT [95% CI] | "
             "GFLOPs / question | prompt tokens | peak cached tokens | generated tokens | generation ms | steps compressed / re-injections |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, r in s["table"].items():
        d = r.get("minus_softcot")
        diff = f"{d['mean']:+.1f} [{d['ci95'][0]:+.1f}, {d['ci95'][1]:+.1f}]" if d else ""
        fires = f"{r['fires_per_question']:.2f}" if r.get("fires_per_question") is not None else ""
        c = r.get("cost_per_question") or {}
        gf = f"{c['flops'] / 1e9:.3f}" if c.get("flops") is not None else "-"
        st = r.get("std_over_training_seeds")
        per = ", ".join(f"{v:.1f}" for v in r.get("per_train_seed", {}).values())
        lines.append(f"| {label} | {r['accuracy_mean']:.2f} | {'' if st is None else f'{st:.2f}'} | "
                     f"{r['std_over_sampling_seeds']:.2f} | {per} | {diff} | {gf} | {r['prompt_tokens']:.1f} | "
                     f"{r['peak_cached']:.1f} | {r['generated_tokens']:.1f} | {r['gen_ms_per_question']:.1f} | {fires} |")
    for label, r in s["table"].items():
        d = r.get("minus_lightthinker")
        if d:
            diffs = list(d["per_train_seed"].values())
            per = ", ".join(f"{t}: {v:+.1f}" for t, v in d["per_train_seed"].items())
            sd = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
            lines.append(f"\n{label} minus LightThinker alone: {d['mean']:+.1f} [{d['ci95'][0]:+.1f}, {d['ci95'][1]:+.1f}] "
                         f"(paired over questions, seeds pooled); per training seed {per} "
                         f"(mean {statistics.mean(diffs):+.1f} +- {sd:.1f}; {sum(v > 0 for v in diffs)} of {len(diffs)} above 0).")
    if s["accuracy_vs_n"]:
        lines += ["", "Accuracy vs N (first seed) and the LLM's prompt length in tokens:", "",
                  "| training | " + " | ".join(f"N={n}" for n in SWEEP_N) + " |", "|---|" + "---|" * len(SWEEP_N)]
    for label, accs in s["accuracy_vs_n"].items():
        toks = s["prompt_tokens_vs_n"][label]
        lines.append(f"| {label} | " + " | ".join(f"{accs[n]:.1f} ({toks[n]:.0f} tok)" for n in SWEEP_N) + " |")
    lines += [] if not s["choices"] else ["", "Dev-split choices (first seed): " + "; ".join(
        f"{k}: {v['chosen']} (" + ", ".join(f"{a}: {x:.1f}" for a, x in v["dev_accuracy"].items()) + ")"
        for k, v in s["choices"].items())]
    return "\n".join(lines)


def plot(out: Path, sweep: dict, n_test: int) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.4, 3.6))
    for label, accs in sweep.items():
        ns = sorted(accs)
        ax.plot(ns, [accs[n] for n in ns], marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_xticks(SWEEP_N, [str(n) for n in SWEEP_N])
    ax.set_ylim(0, 100)
    ax.set_xlabel("soft thoughts N at test time")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"accuracy vs N, fixed- vs mixed-N training (n={n_test}, one seed)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, out / "accuracy_vs_n.png")
    return ["accuracy_vs_n.png"]


if __name__ == "__main__":
    main()

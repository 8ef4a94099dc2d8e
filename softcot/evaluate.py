"""One evaluation loop for every method and task: generate, extract, score, over seeds.

    softcot eval --checkpoint runs/gsm8k --task gsm8k --data-file test.jsonl \
        --do-sample --temperature 1.0 --seeds 41,42,43,44,45 --output-dir runs/gsm8k/eval

Writes into the output folder:
  predictions.jsonl  one line per (seed, example, sample): id, prompt, completion, extracted
                     answer, gold, correct; appended batch by batch as the run goes
  run_config.json    the settings fingerprint; a rerun with other settings is refused
  metrics.json       accuracy per seed (majority vote when there are several samples), mean and
                     std over seeds, extraction-failure rate, mean generated tokens, wall time
  summary.md         the printed table
Interrupted and rerun, it continues: finished batches are kept, none is recomputed or duplicated,
and a half-written batch is redone. Each batch is seeded from (seed, batch index), so the resumed
run equals an uninterrupted one.
"""
from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from softcot import distributed as dist
from softcot.assistant import ThoughtCache
from softcot.config import DecodingConfig, EvalConfig, parse_seeds, to_dict, with_legacy_values
from softcot.errors import ConfigError
from softcot.faults import maybe_crash
from softcot.flops import FlopMeter
from softcot.methods.base import Method
from softcot.prompts import question_block
from softcot.scoring import extract_answer, is_correct, majority_vote
from softcot.utils import append_jsonl, atomic_write_text, write_json

__all__ = ["EvalConfig", "parse_seeds", "evaluate", "summarize", "format_table"]

PRED_NAME, METRICS_NAME, RUNCFG_NAME = "predictions.jsonl", "metrics.json", "run_config.json"
PART_GLOB = "predictions.part*.jsonl"  # one per process of a multi-process run, merged at its end


def fingerprint(method: Method, ecfg: EvalConfig, dec: DecodingConfig) -> dict:
    """Everything that changes a prediction; seeds may be added later, so they are left out."""
    model = {k: v for k, v in to_dict(method.cfg).items() if k != "version"}
    # prefix_cache changes no prediction (the same keys/values, computed once instead of per row)
    ev = {k: v for k, v in to_dict(ecfg).items() if k not in ("seeds", "output_dir", "prefix_cache")}
    ev["data_file"] = str(Path(ecfg.data_file).resolve()) if ecfg.data_file else ""
    return {"method": model, "eval": ev, "decoding": to_dict(dec)}


def read_rows(path: Path) -> list[dict]:
    """The rows of one predictions file up to a torn last line (a crash while it was written)."""
    rows = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return rows


def complete_batches(rows: list[dict], expected: dict[tuple[int, int], int]) -> list[dict]:
    """Rows of complete (seed, batch) units only, each unit once: a half-written batch is
    dropped (it is redone), a batch found twice (a crash between merge and cleanup) is kept once."""
    by_unit: dict[tuple[int, int], list[dict]] = {}
    for r in rows:
        by_unit.setdefault((r["seed"], r["batch"]), []).append(r)
    kept = []
    for unit, unit_rows in by_unit.items():
        n = expected.get(unit)
        if n is not None and len(unit_rows) >= n:
            kept += unit_rows[:n]  # a duplicate copy follows the first complete one
    return kept


def evaluate(method: Method, examples: list, ecfg: EvalConfig, dec: DecodingConfig) -> dict:
    """Run (or resume) an evaluation and return its metrics.

    Examples are batched by question length (less padding) and rows written back in the
    original order. Under `accelerate launch` the (seed, batch) units are shared out over the
    processes: each appends to its own part file, the main process merges them; the result is
    identical to a one-process run, and a run killed at K processes resumes at any count."""
    if not examples:
        raise ConfigError(f"{ecfg.data_file}: no examples to evaluate")
    out = Path(ecfg.output_dir)
    seeds = ecfg.seeds if dec.do_sample else ecfg.seeds[:1]  # greedy decoding: seeds repeat each other
    n = method.thought_count(ecfg.n_thoughts)
    fp = fingerprint(method, ecfg, dec)
    runcfg, pred_path = out / RUNCFG_NAME, out / PRED_NAME
    if runcfg.is_file():
        try:
            old = json.loads(runcfg.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ConfigError(f"{runcfg}: not valid JSON; refusing to mix runs, use another --output-dir") from None
        if isinstance(old, dict) and isinstance(old.get("method"), dict):  # settings added since that run
            old = {**old, "method": with_legacy_values("method", old["method"])}
        if not isinstance(old, dict) or old != fp:
            if not isinstance(old, dict):
                raise ConfigError(f"{runcfg}: not a softcot run config; refusing to mix runs, use another --output-dir")
            raise ConfigError(f"{pred_path}: written by another configuration ({_diff(old, fp)}); use another --output-dir")
    elif pred_path.exists() or list(out.glob(PART_GLOB)):
        raise ConfigError(f"{pred_path}: exists without {RUNCFG_NAME}; refusing to mix runs, use another --output-dir")
    dist.barrier()  # every process checked the folder before anything in it changes

    # ---- the work: (seed, batch) units over length-sorted batches of example indices -------------
    order = sorted(range(len(examples)), key=lambda i: (len(question_block(examples[i])), i))
    batches = [order[i : i + ecfg.batch_size] for i in range(0, len(order), ecfg.batch_size)]
    k = method.completions_per_example(dec)
    expected = {(s, b): len(batch) * k for s in seeds for b, batch in enumerate(batches)}
    if dist.is_main():  # consolidate what earlier runs (any process count) finished
        out.mkdir(parents=True, exist_ok=True)
        write_json(runcfg, fp)
        _merge(out, expected, seeds)
    dist.barrier()
    rows = read_rows(pred_path)
    done = {(r["seed"], r["batch"]) for r in rows}
    todo = [(s, b) for s in seeds for b in range(len(batches)) if (s, b) not in done]
    mine = todo[dist.rank() :: dist.world()]
    part = pred_path if dist.world() == 1 else out / f"predictions.part{dist.rank()}.jsonl"
    t0 = time.time()
    prior_wall = _prior_wall(out)
    # A frozen assistant's states depend on the question alone: computed under the first seed, then
    # reused by every other seed (sampling differs, the thoughts do not); never kept past this call.
    thought_cache = ThoughtCache(method.assistant) if method.cacheable_thoughts and len(seeds) > 1 else None
    bar = tqdm(mine, desc=f"eval {method.name} on {ecfg.task}", dynamic_ncols=True, disable=not mine or not dist.is_main())
    with method.reusing_prefix(ecfg.prefix_cache):
        _generate_units(method, examples, ecfg, dec, batches, bar, part, n, thought_cache)
    dist.barrier()
    if not dist.is_main():
        return {}
    rows = _merge(out, expected, seeds)
    metrics = summarize(rows, seeds, ecfg, fp, examples)
    metrics["processes"] = dist.world()
    metrics["wall_time_s"] = round(prior_wall + time.time() - t0, 3)
    write_json(out / METRICS_NAME, metrics)
    atomic_write_text(out / "summary.md", format_table(metrics) + "\n")
    return metrics


def _generate_units(method: Method, examples: list, ecfg: EvalConfig, dec: DecodingConfig, batches: list[list[int]],
                    units, part: Path, n: int, thought_cache: ThoughtCache | None) -> None:
    """Generate, extract and score each (seed, batch) unit; append its rows to `part`."""
    for s, b in units:
        batch = [examples[i] for i in batches[b]]
        torch.manual_seed(s * 100_003 + b)  # per-batch stream: resume (on any process) reproduces it
        t = time.time()
        with torch.inference_mode(), FlopMeter(cost_models(method)) as meter:
            completions = method.generate(batch, dec, n_thoughts=n, thought_cache=thought_cache)
        cost = unit_cost(method, meter, len(batch), time.time() - t)
        # compute goes beside the predictions, not into them: predictions stay byte-identical across
        # process counts, resumes and prefix reuse, while the cost (ms, FLOPs) honestly differs
        append_jsonl(part.parent / ("costs" + part.name[len("predictions"):]), [{"seed": s, "batch": b, "questions": len(batch), **cost}])
        prompts = method.prompt_texts(batch, n)
        new = []
        for i, ex, prompt, comps in zip(batches[b], batch, prompts, completions):
            for j, c in enumerate(comps):
                pred = extract_answer(c, ecfg.task, ecfg.scoring, options=ex.options)
                new.append({"seed": s, "batch": b, "index": i, "id": ex.id, "sample": j, "prompt": prompt,
                            "completion": str(c), "pred": pred, "gold": ex.answer,
                            "correct": is_correct(pred, ex.answer, ecfg.task), "tokens": c.tokens})
        append_jsonl(part, new)  # one fsync'd append per batch: a crash loses at most this batch
        maybe_crash("eval-batch")


def cost_models(method: Method) -> dict:
    """The frozen models whose passes a method's generation runs (both, for two-model methods)."""
    return {"llm": method.llm.model, "assistant": method.assistant.model if method.assistant is not None else None}


def unit_cost(method: Method, meter: FlopMeter, n_questions: int, seconds: float) -> dict:
    """One batch's compute per question (every sample of it included): FLOPs of each model, the
    positions the LLM computed (prompt, thoughts and generated tokens, padding included), the
    largest key/value length cached and its entries (keys + values, all layers), milliseconds."""
    tot = meter.totals()
    cfg = method.llm.model.config
    hd = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    kv_heads = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
    peak = tot["llm"]["peak_kv"]
    out = {"flops": sum(v["flops"] for v in tot.values()) / n_questions,
           "flops_llm": tot["llm"]["flops"] / n_questions,
           "flops_assistant": tot["assistant"]["flops"] / n_questions if "assistant" in tot else 0.0,
           "llm_positions": tot["llm"]["tokens"] / n_questions, "peak_kv": peak,
           "peak_kv_entries": peak * cfg.num_hidden_layers * 2 * kv_heads * hd, "ms": 1000 * seconds / n_questions}
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}


def cost_summary(out: Path) -> dict | None:
    """Mean compute per question over the evaluated (seed, batch) units (`costs*.jsonl`, the last
    record of a unit redone on resume), weighted by the unit's questions; None for a run written
    before compute was recorded."""
    units: dict = {}
    for path in sorted(out.glob("costs*.jsonl")):
        for r in read_rows(path):
            units[(r["seed"], r["batch"])] = r
    if not units:
        return None
    rows = list(units.values())
    n = sum(r["questions"] for r in rows)
    keys = [k for k in rows[0] if k not in ("seed", "batch", "questions", "peak_kv", "peak_kv_entries")]
    res = {k: sum(r[k] * r["questions"] for r in rows) / n for k in keys}
    res["peak_kv"] = max(r["peak_kv"] for r in rows)
    res["peak_kv_entries"] = max(r["peak_kv_entries"] for r in rows)
    return res


def _merge(out: Path, expected: dict[tuple[int, int], int], seeds: list[int]) -> list[dict]:
    """predictions.jsonl + every part file -> predictions.jsonl (complete batches, each once, in
    seed then original example order), written atomically before the parts are removed."""
    pred_path = out / PRED_NAME
    parts = sorted(out.glob(PART_GLOB))
    rows = complete_batches(read_rows(pred_path) + [r for p in parts for r in read_rows(p)], expected)
    seed_pos = {s: i for i, s in enumerate(seeds)}
    rows.sort(key=lambda r: (seed_pos.get(r["seed"], len(seeds)), r["index"], r["sample"]))
    atomic_write_text(pred_path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    for p in parts:
        p.unlink()
    return rows


def _prior_wall(out: Path) -> float:
    p = out / METRICS_NAME
    return float(json.loads(p.read_text()).get("wall_time_s", 0.0)) if p.is_file() else 0.0


def _diff(old: dict, new: dict) -> str:
    diffs = []
    for sec in new:
        for key in sorted(set(old.get(sec, {})) | set(new[sec])):
            if old.get(sec, {}).get(key) != new[sec].get(key):
                diffs.append(f"{sec}.{key}: {old.get(sec, {}).get(key)!r} -> {new[sec].get(key)!r}")
    return "; ".join(diffs[:4]) or "different settings"


def summarize(rows: list[dict], seeds: list[int], ecfg: EvalConfig, fp: dict, examples: list) -> dict:
    """Per-seed accuracy (majority vote over an example's samples), then mean/std over seeds."""
    per_seed = {}
    for s in seeds:
        srows = [r for r in rows if r["seed"] == s]
        by_id: dict[str, list[dict]] = {}
        for r in srows:
            by_id.setdefault(r["id"], []).append(r)
        gold = {ex.id: ex.answer for ex in examples}
        voted = [is_correct(majority_vote([r["pred"] for r in rs], ecfg.task), gold[i], ecfg.task) for i, rs in by_id.items()]
        per_seed[str(s)] = {
            "n": len(by_id),
            "accuracy": 100.0 * sum(voted) / max(len(voted), 1),
            "sample_accuracy": 100.0 * sum(r["correct"] for r in srows) / max(len(srows), 1),
            "extraction_failure_rate": 100.0 * sum(r["pred"] is None for r in srows) / max(len(srows), 1),
            "mean_generated_tokens": sum(r["tokens"] for r in srows) / max(len(srows), 1),
        }
    accs = [v["accuracy"] for v in per_seed.values()]
    return {
        "method": fp["method"]["method"], "task": ecfg.task, "data_file": ecfg.data_file, "n_examples": len(examples),
        "seeds": seeds, "per_seed": per_seed,
        "accuracy_mean": statistics.fmean(accs), "accuracy_std": statistics.pstdev(accs) if len(accs) > 1 else 0.0,
        "extraction_failure_rate": statistics.fmean(v["extraction_failure_rate"] for v in per_seed.values()),
        "mean_generated_tokens": statistics.fmean(v["mean_generated_tokens"] for v in per_seed.values()),
        "cost_per_question": cost_summary(Path(ecfg.output_dir)),
        "settings": fp,
    }


def format_table(m: dict) -> str:
    lines = [f"{m['method']} on {m['task']} ({m['n_examples']} examples)", "",
             "| seed | accuracy | sample acc. | extraction failures | mean tokens |", "|---|---|---|---|---|"]
    for s, v in m["per_seed"].items():
        lines.append(f"| {s} | {v['accuracy']:.2f} | {v['sample_accuracy']:.2f} | "
                     f"{v['extraction_failure_rate']:.2f}% | {v['mean_generated_tokens']:.1f} |")
    lines.append(f"| **mean +- std** | **{m['accuracy_mean']:.2f} +- {m['accuracy_std']:.2f}** | | "
                 f"{m['extraction_failure_rate']:.2f}% | {m['mean_generated_tokens']:.1f} |")
    c = m.get("cost_per_question")
    if c:
        lines.append(f"\nper question: {c['flops'] / 1e9:.3g} GFLOPs (LLM {c['flops_llm'] / 1e9:.3g}, assistant "
                     f"{c['flops_assistant'] / 1e9:.3g}), {c['llm_positions']:.0f} LLM positions computed, "
                     f"peak key/value length {c['peak_kv']}, {c['ms']:.1f} ms")
    return "\n".join(lines)

"""Several eval runs -> one methods x datasets table (mean +- std over seeds) and a bar chart.

    softcot report runs/*/eval --out report/
    softcot report runs/demo --out report/     # folders are searched for eval runs (metrics.json)
    # report/report.md, report/report.json, report/report.png
"""
from __future__ import annotations

import json
from pathlib import Path

from softcot.errors import SoftCoTError
from softcot.utils import atomic_write_text, log, write_json


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Each path's metrics.json, or every metrics.json below it (the demo's runs/demo/<method>/eval)."""
    found = []
    for d in paths:
        d = Path(d)
        if (d / "metrics.json").is_file():
            found.append(d / "metrics.json")
            continue
        below = sorted(d.rglob("metrics.json")) if d.is_dir() else []
        if not below:
            raise SoftCoTError(f"{d}: no metrics.json in or below it; expected an output folder of `softcot eval`")
        found += below
    return found


def collect(run_dirs: list[str | Path]) -> dict[str, dict[str, dict]]:
    """{method: {task: metrics}} from each run's metrics.json (a later duplicate wins; the demo's
    training runs of one method are rows of their own)."""
    table: dict[str, dict[str, dict]] = {}
    for p in find_runs(run_dirs):
        try:
            m = json.loads(p.read_text(encoding="utf-8"))
            if not isinstance(m, dict):
                raise TypeError(f"expected a JSON object, got {type(m).__name__}")
            for key, ok, what in (("accuracy_mean", _number, "a number"), ("accuracy_std", _number, "a number"),
                                  ("task", lambda x: isinstance(x, str), "a string"),
                                  ("per_seed", lambda x: isinstance(x, dict), "an object"),
                                  ("seeds", lambda x: isinstance(x, list), "a list")):
                if not ok(m.get(key)):
                    raise TypeError(f"{key!r} should be {what}, got {m.get(key)!r}")
            label = m.get("label") or m["method"]
            tseed = next((d.name.removeprefix("train-seed-") for d in p.parents if d.name.startswith("train-seed-")), None)
            if tseed is not None:  # the demo's runs/demo/<method>/train-seed-S/...: one row per training run
                label = f"{label} (train seed {tseed})"
            if m.get("settings", {}).get("eval", {}).get("n_thoughts"):  # an N sweep point, not the main run
                label = f"{label} (N={m['settings']['eval']['n_thoughts']})"
            table.setdefault(label, {})[m["task"]] = m
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError, RecursionError) as e:
            raise SoftCoTError(f"{p}: not a softcot metrics file ({type(e).__name__}: {e})") from None
    return table


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def markdown(table: dict[str, dict[str, dict]]) -> str:
    tasks = sorted({t for row in table.values() for t in row})
    lines = ["| method | " + " | ".join(tasks) + " | avg |", "|---" * (len(tasks) + 2) + "|"]
    for method, row in table.items():
        cells, means = [], []
        for t in tasks:
            if t in row:
                cells.append(f"{row[t]['accuracy_mean']:.2f} +- {row[t]['accuracy_std']:.2f}")
                means.append(row[t]["accuracy_mean"])
            else:
                cells.append("-")
        avg = f"{sum(means) / len(means):.2f}" if len(means) == len(tasks) else "-"
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {avg} |")
    return "\n".join(lines)


def bar_chart(table: dict[str, dict[str, dict]], path: Path, title: str = "accuracy (mean +- std over seeds)") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({t for row in table.values() for t in row})
    methods = list(table)
    width = 0.8 / max(len(methods), 1)
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(tasks) + 2), 4))
    for i, m in enumerate(methods):
        xs = [j + i * width for j, t in enumerate(tasks) if t in table[m]]
        ys = [table[m][t]["accuracy_mean"] for t in tasks if t in table[m]]
        es = [table[m][t]["accuracy_std"] for t in tasks if t in table[m]]
        ax.bar(xs, ys, width, yerr=es, capsize=3, label=m)
    ax.set_xticks([j + width * (len(methods) - 1) / 2 for j in range(len(tasks))], tasks)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    n_seeds = sorted({len(v["seeds"]) for row in table.values() for v in row.values() if "seeds" in v})
    ax.set_title(f"{title}, {'/'.join(map(str, n_seeds))} seeds", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    from softcot.utils import save_figure

    save_figure(fig, path, dpi=120)


def write_report(run_dirs: list[str | Path], out_dir: str | Path) -> str:
    table = collect(run_dirs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = markdown(table)
    atomic_write_text(out / "report.md", "# softcot report\n\n" + md + "\n")
    write_json(out / "report.json", {m: {t: {k: v[k] for k in ("accuracy_mean", "accuracy_std", "per_seed")}
                                         for t, v in row.items()} for m, row in table.items()})
    bar_chart(table, out / "report.png")
    print(md)
    log.info("wrote %s and %s", out / "report.md", out / "report.png")
    return md

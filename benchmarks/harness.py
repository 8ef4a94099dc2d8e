"""Timing harness shared by the benchmarks: paired ratios that cannot flatter one side.

    set_threads(1)                                   # before any timing; stated in machine()
    r = paired_ratio(lambda: softcot(), lambda: plain(), repeats=5, warmup=1)
    r["ratio_median"], r["ratio_min"], r["ratio_max"]   # of the per-repeat a/b ratios
    write_results("runs/bench", "results", {"machine": machine(), "benchmarks": {...}})

The two sides of a ratio run back to back inside every repeat, and the side that goes first
swaps on odd repeats, so a burst of machine load lands on both sides instead of in the ratio.
A benchmark's result may carry "tables": [{"caption", "columns", "rows"}] and "notes": [str];
`write_results` renders those into the markdown next to the JSON.
"""
from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

MIN_REPEATS = 5
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def paired_ratio(a: Callable[[], Any], b: Callable[[], Any], *, repeats: int = MIN_REPEATS, warmup: int = 1,
                 sync: Callable[[], None] | None = None, sides: tuple[str, str] = ("a", "b")) -> dict:
    """Time a and b alternately: `warmup` untimed a+b rounds, then `repeats` rounds of one a and
    one b (b first on odd rounds). `sync` (e.g. torch.cuda.synchronize) runs before each clock read.
    Returns per-repeat seconds, the median of each side, and the median/min/max of the per-repeat
    ratios a/b (pairing within a round cancels slow drifts of the machine); `sides` names a and b
    in the result."""
    if repeats < MIN_REPEATS:
        raise ValueError(f"repeats must be >= {MIN_REPEATS}, got {repeats}")
    sync = sync or (lambda: None)
    for _ in range(warmup):
        a(), b()
    sync()
    times: dict[str, list[float]] = {"a": [], "b": []}
    for r in range(repeats):
        for side in ("a", "b") if r % 2 == 0 else ("b", "a"):
            gc.collect()  # no collection of the other side's garbage inside this side's clock
            t0 = time.perf_counter()
            (a if side == "a" else b)()
            sync()
            times[side].append(time.perf_counter() - t0)
    ratios = [x / y for x, y in zip(times["a"], times["b"])]
    return {
        "a": sides[0], "b": sides[1], "repeats": repeats, "warmup": warmup, "a_s": times["a"], "b_s": times["b"],
        "a_median_s": statistics.median(times["a"]), "b_median_s": statistics.median(times["b"]),
        "ratios": ratios, "ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
    }


def spread(r: dict) -> str:
    """"min-max" of a paired_ratio result's per-repeat ratios."""
    return f"{r['ratio_min']:.3f}-{r['ratio_max']:.3f}"


def set_threads(n: int) -> dict:
    """Use n CPU threads for torch's intra-op pool and (where torch still allows it) its inter-op
    pool; also export OMP/MKL_NUM_THREADS for child processes. OMP_NUM_THREADS only binds this
    process's OpenMP pool if set before torch is imported (run_all.py does that)."""
    if n < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    for k in THREAD_ENV:
        os.environ[k] = str(n)
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(n)  # allowed once, before any inter-op work started
        interop_set = True
    except RuntimeError:
        interop_set = False
    return {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads(), "inter_op_set": interop_set}


def _cpuinfo() -> tuple[str, set[str]]:
    model, flags = "", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, val = line.partition(":")
            if key.strip() == "model name" and not model:
                model = val.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(val.split())
    except OSError:
        pass
    return model or platform.processor() or platform.machine(), flags


def machine(device: str = "cpu") -> dict:
    """What the figures were measured on: CPU, cores, native bf16, versions, threads, device, load."""
    import transformers

    model, flags = _cpuinfo()
    info = {
        "cpu": model,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "native_bf16": sorted(flags & {"avx512_bf16", "amx_bf16"}) or False,
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "threads": {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads(),
                    **{k: os.environ.get(k, "unset") for k in THREAD_ENV}},
        "device": device,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    if hasattr(os, "getloadavg"):
        info["load_avg_1_5_15min"] = [round(x, 2) for x in os.getloadavg()]
    return info


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.3f}" if abs(x) < 100 else f"{x:.1f}"
    return str(x)


def markdown(results: dict) -> str:
    """Machine description, then each benchmark's notes and tables."""
    lines = [f"# {results.get('title', 'Benchmarks')}", ""]
    for k, v in results.get("machine", {}).items():
        lines.append(f"- **{k}**: {json.dumps(v) if isinstance(v, (dict, list)) else v}")
    for k in ("command", "wall_time_s"):
        if k in results:
            lines.append(f"- **{k}**: {fmt(results[k])}")
    for name, bench in results.get("benchmarks", {}).items():
        lines += ["", f"## {name}", ""]
        lines += [f"- {n}" for n in bench.get("notes", [])]
        for t in bench.get("tables", []):
            lines += ["", t["caption"], "", "| " + " | ".join(t["columns"]) + " |", "|" + "---|" * len(t["columns"])]
            lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in t["rows"]]
    return "\n".join(lines) + "\n"


def write_results(out_dir: str | Path, name: str, results: dict) -> tuple[Path, Path]:
    """Write {name}.json and {name}.md into out_dir, each atomically (temp file + os.replace)."""
    out = Path(out_dir)
    paths = out / f"{name}.json", out / f"{name}.md"
    _atomic_write(paths[0], json.dumps(results, indent=2) + "\n")
    _atomic_write(paths[1], markdown(results))
    return paths

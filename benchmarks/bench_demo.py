"""Time `softcot demo` and each of its parts, from a fresh output folder, on this CPU.

    python benchmarks/bench_demo.py                      # the full demo, fp32, this CPU's own kernels
    python benchmarks/bench_demo.py --avx2               # torch/oneDNN/MKL capped at AVX2 (no AVX-512, no native
                                                         # bf16): what a plain AVX2 laptop CPU runs
    python benchmarks/bench_demo.py --quick              # the CI-size demo

Runs the demo in a child process (so the ISA cap is set before torch loads) into a new folder,
then prints and writes `runs/bench/demo_parts.json` + `.md`: the machine, the wall time, the time
to the first comparison (zero-shot CoT vs SoftCoT, first training seed), and every part the demo
timed (setup, each training run, each evaluation, the N sweep), with their share of the wall time.
The timings come from the demo's own clock (`demo.json` "timings", "first_look_s").
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# What caps every kernel library torch uses on a CPU at AVX2 (ATen's own kernels, oneDNN, MKL).
AVX2_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "DNNL_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--avx2", action="store_true", help="cap torch's kernels at AVX2 (no AVX-512, no native bf16)")
    ap.add_argument("--quick", action="store_true", help="the CI-size demo")
    ap.add_argument("--out", default="runs/bench-demo", help="the demo's output folder (emptied first)")
    ap.add_argument("--results", default="runs/bench", help="where demo_parts.json / .md go")
    args, extra = ap.parse_known_args()
    from harness import machine, write_results

    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1", **(AVX2_ENV if args.avx2 else {})}
    cmd = [sys.executable, "-m", "softcot.cli", "demo", "--output-dir", str(out), *(["--quick"] if args.quick else []), *extra]
    t0 = time.time()
    subprocess.run(cmd, env=env, check=True)
    wall = time.time() - t0
    demo = json.loads((out / "demo.json").read_text())
    probe = subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
                           env=env, capture_output=True, text=True).stdout.strip()
    info = {**machine(), "torch_cpu_capability": probe, "isa_cap": "AVX2" if args.avx2 else "none"}
    rows = [[p["part"], f"{p['seconds']:.1f}", f"{100 * p['seconds'] / wall:.1f}"] for p in demo["timings"]]
    result = {"command": " ".join(cmd), "wall_s": round(wall, 1), "first_look_s": demo.get("first_look_s"),
              "parts": demo["timings"],
              "tables": [{"caption": f"softcot demo{' --quick' if args.quick else ''}: {wall / 60:.1f} min wall, first "
                                     f"comparison after {demo.get('first_look_s', 0) / 60:.1f} min "
                                     f"(CPU kernels: {probe})",
                          "columns": ["part", "seconds", "% of wall"], "rows": rows}]}
    write_results(args.results, "demo_parts", {"machine": info, "benchmarks": {"demo": result}})
    print(json.dumps({k: v for k, v in result.items() if k != "tables"}, indent=1))


if __name__ == "__main__":
    main()

"""Every benchmark in one command; figures as JSON + markdown with the machine's description.

    python benchmarks/run_all.py [--only core,eval] [--quick] [--threads 1] [--out runs/bench]

Writes OUT/results.json and OUT/results.md (and prints the markdown). Threads are set before
torch is imported (OMP/MKL_NUM_THREADS and torch's pools) and stated in the results: the default
is 1, so figures from a busy shared machine stay comparable. --quick: smaller sizes, same
number of paired repeats (>= 5).
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = ("core", "eval")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=",".join(BENCHES), help=f"comma-separated subset of {','.join(BENCHES)}")
    p.add_argument("--quick", action="store_true", help="smaller sizes (batches 1/16, fewer tokens and examples)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    p.add_argument("--out", default=str(HERE.parent / "runs" / "bench"))
    pre = p.parse_known_args()[0]
    wanted = [b.strip() for b in pre.only.split(",") if b.strip()]
    unknown = sorted(set(wanted) - set(BENCHES))
    if unknown:
        p.error(f"--only: unknown benchmark(s) {unknown}; expected some of {list(BENCHES)}")
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # before torch is imported: binds its OpenMP pool
        os.environ[k] = str(pre.threads)

    sys.path.insert(0, str(HERE))
    import bench_core
    import bench_eval
    from harness import machine, markdown, set_threads, write_results

    bench_core.add_args(p)
    bench_eval.add_args(p)
    args = p.parse_args()
    set_threads(args.threads)
    results: dict = {"title": "SoftCoT benchmarks" + (" (quick)" if args.quick else ""), "machine": machine(args.device),
                     "command": "python " + " ".join(shlex.quote(a) for a in sys.argv), "benchmarks": {}}
    t0 = time.perf_counter()
    for name in wanted:
        t = time.perf_counter()
        print(f"[run_all] {name} ...", file=sys.stderr, flush=True)
        res = results["benchmarks"][name] = {"core": bench_core, "eval": bench_eval}[name].run(args)
        res["wall_time_s"] = round(time.perf_counter() - t, 1)
        res["notes"].append(f"wall time of this benchmark: {res['wall_time_s']} s")
        print(f"[run_all] {name} done in {res['wall_time_s']} s", file=sys.stderr, flush=True)
    results["wall_time_s"] = round(time.perf_counter() - t0, 1)
    json_path, md_path = write_results(args.out, "results", results)
    print(markdown(results))
    print(f"wrote {json_path} and {md_path}", file=sys.stderr)


if __name__ == "__main__":
    main()

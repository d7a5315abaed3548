#!/usr/bin/env python
"""The cost of Ray on one machine: precompute of the demo set in one process against the same
command with ``--ray local --ray-workers W``, in the same run, each from an empty --out; wall
time of the whole command, the encode phase's clips/s (from its summary), and whether the two
caches are byte-identical.

  python bench/bench_ray.py
  python bench/bench_ray.py --workers 2 --chunk-size 30 --repeats 2
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from dacviz_testkit import cache_files  # noqa: E402


def run(args: list[str]) -> tuple[float, float, str]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, str(ROOT / "precompute.py"), "--no-progress", *args],
                          capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    rate = re.search(r"([0-9.]+) clips/s on", proc.stdout)
    return seconds, float(rate.group(1)) if rate else float("nan"), proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="Ray workers (default 2)")
    parser.add_argument("--chunk-size", type=int, default=30, help="clips per chunk (default 30)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each (default 1)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dacviz-bench-ray-"))
    demo = work / "demo_wavs"
    command = ["--demo", "--demo-dir", str(demo), "--untrained", "--device", "cpu",
               "--chunk-size", str(args.chunk_size),
               "--reconstruct", "4", "--reconstruct-max-clips", "8"]
    run(command + ["--out", str(work / "warm")])  # writes the demo set, warms the disk cache
    results: dict[str, list] = {"single process": [], f"ray local, {args.workers} workers": []}
    caches = {}
    for repeat in range(args.repeats):
        for name, extra in zip(results, ([], ["--ray", "local", "--ray-workers", str(args.workers)])):
            out = work / f"{repeat}-{len(extra)}"
            results[name].append(run(command + ["--out", str(out)] + extra)[:2])
            caches[name] = cache_files(out)
    print(f"demo set (120 clips), chunks of {args.chunk_size}, {os.cpu_count()} cores, median of {args.repeats}")
    print(f"{'':>22} {'whole command':>14} {'encode clips/s':>15}")
    for name, rows in results.items():
        print(f"{name:>22} {statistics.median(r[0] for r in rows):>12.1f} s {statistics.median(r[1] for r in rows):>15.1f}")
    same = len({repr(sorted(c.items())) for c in caches.values()}) == 1
    print(f"caches byte-identical: {same}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

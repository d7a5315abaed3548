#!/usr/bin/env python
"""The cost of Ray on one machine: precompute of the demo set in one process against the same
command with ``--ray local --ray-workers W``, in the same run, each from an empty --out; wall
time of the whole command, the encode phase's clips/s (from its summary), and whether the two
caches are byte-identical. The demo set is written first, then one untimed run of the command
warms the disk cache and the imports (--no-warm-up: none).

  python bench/bench_ray.py
  python bench/bench_ray.py --workers 2 --chunk-size 30 --repeats 2
  python bench/bench_ray.py --per-word 2 --chunk-size 6 --dnsmos-clips 0 --no-warm-up   # a quick look
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
from dacviz_app.precompute.cli import DNSMOS_CLIPS  # noqa: E402
from dacviz_app.precompute.demo import write_demo_set  # noqa: E402
from dacviz_testkit import cache_files  # noqa: E402
from dacviz_testkit.bench import BenchRecord  # noqa: E402


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
    parser.add_argument("--workers", type=int, default=2, help="Ray workers (default %(default)s)")
    parser.add_argument("--chunk-size", type=int, default=30, help="clips per chunk (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each (default %(default)s)")
    parser.add_argument("--per-word", type=int, metavar="N",
                        help="precompute's --per-word: N clips of each word of the demo set "
                             "(default: all of them, 120 clips)")
    parser.add_argument("--dnsmos-clips", type=int, metavar="N",
                        help=f"precompute's --dnsmos-clips (default: precompute's own, {DNSMOS_CLIPS['cpu']} "
                             f"on a CPU)")
    parser.add_argument("--depths", nargs="*", type=int, metavar="Q",
                        help="precompute's --depths (default: precompute's own, 1 2 4 8)")
    parser.add_argument("--no-warm-up", action="store_true",
                        help="no untimed run of the command first (default: one)")
    args = parser.parse_args()
    if args.workers < 1 or args.chunk_size < 1 or args.repeats < 1 or (args.per_word is not None
                                                                        and args.per_word < 1):
        parser.error("--workers, --chunk-size, --repeats and --per-word must be at least 1")
    if args.dnsmos_clips is not None and args.dnsmos_clips < 0:
        parser.error("--dnsmos-clips must be 0 or more")
    record = BenchRecord("bench_ray")
    work = Path(tempfile.mkdtemp(prefix="dacviz-bench-ray-"))
    try:
        demo = work / "demo_wavs"
        command = ["--demo", "--demo-dir", str(demo), "--untrained", "--device", "cpu",
                   "--chunk-size", str(args.chunk_size),
                   "--reconstruct", "4", "--reconstruct-max-clips", "8"]
        if args.per_word is not None:
            command += ["--per-word", str(args.per_word)]
        if args.depths is not None:
            command += ["--depths", *map(str, args.depths)]
        if args.dnsmos_clips is not None:
            command += ["--dnsmos-clips", str(args.dnsmos_clips)]
        write_demo_set(demo)  # as --demo does: no run writes it in its time
        outputs = [] if args.no_warm_up else [run(command + ["--out", str(work / "warm")])[2]]
        results: dict[str, list] = {"single process": [], f"ray local, {args.workers} workers": []}
        caches = {}
        for repeat in range(args.repeats):
            for name, extra in zip(results, ([], ["--ray", "local", "--ray-workers", str(args.workers)])):
                out = work / f"{repeat}-{len(extra)}"
                seconds, rate, stdout = run(command + ["--out", str(out)] + extra)
                results[name].append((seconds, rate))
                outputs.append(stdout)
                caches[name] = cache_files(out)
        selected = re.search(r"([0-9]+) clips selected from", outputs[0])
        n_clips = selected.group(1) if selected else "?"
        print(f"demo set ({n_clips} clips), chunks of {args.chunk_size}, {os.cpu_count()} cores, "
              f"median of {args.repeats}")
        print(f"{'':>22} {'whole command':>14} {'encode clips/s':>15}")
        for name, rows in results.items():
            print(f"{name:>22} {statistics.median(r[0] for r in rows):>12.1f} s "
                  f"{statistics.median(r[1] for r in rows):>15.1f}")
        same = len({repr(sorted(c.items())) for c in caches.values()}) == 1
        print(f"caches byte-identical: {same}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    baseline = "single process"  # each Ray figure against the same command in one process
    for name, rows in results.items():
        against = None if name == baseline else baseline
        record.add(f"{name}: whole command", [r[0] for r in rows], "s",
                   baseline=f"{against}: whole command" if against else None)
        record.add(f"{name}: encode clips/s", [r[1] for r in rows], "clips/s",
                   baseline=f"{against}: encode clips/s" if against else None, better="higher")
    record.save()


if __name__ == "__main__":
    main()

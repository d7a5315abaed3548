#!/usr/bin/env python
"""The cost of one write into the shared memo of sound summaries, below and at its bound.

A 100,000-clip cache with reconstructions has far more sounds than the memo's bound (20,000
summaries at most): once full, every new clip's summary is a write at capacity. The memo is
filled to its bound with real summaries (``sound.sound_summary`` of a 1 s clip: the size does
not matter, the file count does), then new keys are written one by one and each write is timed:
flask-caching's store (cachelib's FileSystemCache, what the server used before; threshold =
the bound, timeout 0, as it was configured) against ``ui.memo.SharedFileMemo``, in the same run,
in fresh folders. Medians and the 90th percentile, in ms.

  python bench/bench_sound_memo.py                       # 20,000 entries, 100 writes each side
  python bench/bench_sound_memo.py --entries 2000 --writes 20   # a quick look
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from dacviz_app.explore.sound import memo_entries, sound_summary
from dacviz_app.viewer.memo import SharedFileMemo
from dacviz_testkit.bench import BenchRecord

BASELINE = "cachelib FileSystemCache (before)"


def a_summary(folder: Path) -> dict:
    """The summary of a 1 s speech-like clip, as /sound serves it."""
    t = np.arange(16000) / 16000
    path = folder / "clip.wav"
    sf.write(path, (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2), 16000)
    return sound_summary(path)


def timed_writes(memo, entries: int, writes: int, value: dict) -> tuple[list[float], list[float], float]:
    """Fill ``memo`` with ``entries`` keys, then ``writes`` more: (ms of each write while it
    filled the last ``writes`` places below the bound, ms of each write past the bound, s to fill)."""
    started = time.perf_counter()
    below = []
    for i in range(entries):
        t0 = time.perf_counter()
        memo.set(f"/cache/audio/{i:06d}.wav", value)
        if i >= entries - writes:
            below.append(1000 * (time.perf_counter() - t0))
    filled = time.perf_counter() - started
    above = []
    for i in range(writes):
        t0 = time.perf_counter()
        memo.set(f"/cache/reconstructed/{i:06d}.wav", value)
        above.append(1000 * (time.perf_counter() - t0))
    return below, above, filled


def p90(xs: list[float]) -> float:
    return float(np.percentile(xs, 90))


def row(name: str, below: list[float], above: list[float], filled: float) -> str:
    return (f"| {name} | {statistics.median(below):.2f} | {statistics.median(above):.2f} | "
            f"{p90(above):.2f} | {statistics.median(above) / statistics.median(below):.0f}x | {filled:.1f} |")


def record_row(record: BenchRecord, name: str, below: list[float], above: list[float], filled: float,
               baseline: str | None) -> None:
    """The row's measured cells as figures (the ratio is theirs), each against the same cell of
    ``baseline``'s row when there is one."""
    for cell, samples, unit in (("write below the bound", below, "ms"), ("write past the bound", above, "ms"),
                                ("write past the bound, p90", p90(above), "ms"), ("fill", filled, "s")):
        record.add(f"{name}: {cell}", samples, unit, baseline=f"{baseline}: {cell}" if baseline else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=memo_entries(1.0),
                        help="the memo's bound (default %(default)s: the server's for clips of 1 s)")
    parser.add_argument("--writes", type=int, default=100, help="timed writes (default %(default)s)")
    args = parser.parse_args()
    if args.entries < 1 or args.writes < 1:
        parser.error("--entries and --writes must be at least 1")
    record = BenchRecord("bench_sound_memo")
    baseline = None
    with tempfile.TemporaryDirectory(prefix="bench-memo-") as tmp:
        tmp = Path(tmp)
        value = a_summary(tmp)
        print(f"{args.entries} entries of {len(str(value)) // 1024} KB; {args.writes} timed writes each side\n")
        print("| memo | write below the bound, ms (median) | write past the bound, ms (median) | p90 | ratio | fill, s |")
        print("|---|---|---|---|---|---|")
        try:
            from cachelib import FileSystemCache
        except ImportError:
            print("| cachelib FileSystemCache | not installed (pip install cachelib: the baseline) | | | | |")
        else:
            old = FileSystemCache(str(tmp / "old"), threshold=args.entries, default_timeout=0)
            measured = timed_writes(old, args.entries, args.writes, value)
            print(row(BASELINE, *measured), flush=True)
            record_row(record, BASELINE, *measured, baseline=None)
            baseline = BASELINE
        new = SharedFileMemo(tmp / "new", args.entries)
        measured = timed_writes(new, args.entries, args.writes, value)
        print(row("SharedFileMemo (now)", *measured))
        record_row(record, "SharedFileMemo (now)", *measured, baseline=baseline)
        print(f"\nSharedFileMemo holds {len(new)} entries (bound {args.entries}, "
              f"{new.per_shard} per shard of 256)")
    record.save()


if __name__ == "__main__":
    main()

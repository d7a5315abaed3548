#!/usr/bin/env python
"""How each step after encoding grows with the number of clips, and what 1M and 10M would cost.

For each N (default 25k, 50k, 100k), synthetic vectors fitted to a real cache (as
``bench_precompute_scale.py``: per-label Gaussians) go through the pipeline's own downstream
steps (``pipeline.finish_cache``): the exact neighbour table, PCA 2D + 3D, t-SNE 2D (FFT), t-SNE
3D (Barnes-Hut on the 20,000-clip sample, the rest placed), the metrics. Each step's wall time
is fitted as t = a * N^b (least squares on log t against log N) and extrapolated to 1M and 10M
clips. Encoding is not in it (it grows linearly and spreads over GPUs or Ray workers).

  python bench/bench_scaling.py --source cache/demo
  python bench/bench_scaling.py --source cache/demo --n 25000 50000 100000 --rep z
  python bench/bench_scaling.py --source cache/demo --neighbours approximate   # the inverted file's table, its recall@10
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from bench_precompute_scale import synthetic_data  # noqa: E402  (bench/ is on sys.path)
from dacviz_app.cache import CachePaths  # noqa: E402
from dacviz_app.precompute.dac_encode import WeightsChoice  # noqa: E402
from dacviz_app.precompute.config import PrecomputeConfig  # noqa: E402
from dacviz_app.precompute.downstream import finish_cache  # noqa: E402
from dacviz_testkit.bench import BenchRecord  # noqa: E402

STEPS = ("neighbours", "pca2+pca3", "tsne2", "tsne3", "metrics")
VIEW_LINE = re.compile(r"^\s+(\S+)\s+(pca2|pca3|tsne2|tsne3)\s+([0-9.]+) s$")


def one_size(source: str, n: int, rep: str, neighbours: str = "exact") -> dict[str, float]:
    """Seconds of each step at ``n`` clips, and with approximate neighbours the table's recall@10."""
    embeddings, labels, manifest = synthetic_data(source, n, [rep])
    out = Path(tempfile.mkdtemp(prefix="dacviz-scaling-"))
    config = PrecomputeConfig(out=out, model_type=manifest["model"]["type"],
                              weights=WeightsChoice(**manifest["model"]["weights"]), seed=42,
                              neighbours=neighbours)
    views: dict[str, float] = {}

    def say(line: str) -> None:
        match = VIEW_LINE.match(line)
        if match:
            views[match.group(2)] = float(match.group(3))

    try:
        steps = finish_cache(embeddings, {"label": labels}, config, "bench", 0, CachePaths(out), say)
        search = json.loads(CachePaths(out).neighbour_info(rep).read_text())
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {"neighbours": steps["neighbours"], "pca2+pca3": views["pca2"] + views["pca3"],
            "tsne2": views["tsne2"], "tsne3": views["tsne3"], "metrics": steps["metrics"],
            "recall": search.get("recall_at_k")}  # None: exact search


def fit(sizes: list[int], seconds: list[float]) -> tuple[float, float]:
    """(a, b) of t = a * N^b, least squares in log-log."""
    b, log_a = np.polyfit(np.log(sizes), np.log(np.maximum(seconds, 1e-3)), 1)
    return math.exp(log_a), float(b)


def human(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="cache/demo", help="a real cache to fit (default cache/demo)")
    parser.add_argument("--n", type=int, nargs="+", default=[25_000, 50_000, 100_000],
                        help="collection sizes (default 25000 50000 100000)")
    parser.add_argument("--rep", default="z", help="the representation (default z, 1024-D)")
    parser.add_argument("--neighbours", choices=("exact", "approximate"), default="exact",
                        help="the neighbour search, as precompute's --neighbours (default exact)")
    args = parser.parse_args()
    if min(args.n) < 100:
        parser.error("each --n must be at least 100 (t-SNE's perplexity 30)")
    record = BenchRecord("bench_scaling")
    print(f"{args.rep} of {args.source}, synthetic, {os.cpu_count()} cores, {args.neighbours} neighbours; "
          f"seconds per step")
    print(f"{'N':>8} " + " ".join(f"{s:>11}" for s in STEPS) + f" {'peak RSS':>9} {'recall@10':>9}")
    table = {}
    for n in dict.fromkeys(args.n):  # each size once
        started = time.perf_counter()
        table[n] = one_size(args.source, n, args.rep, args.neighbours)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        took = time.perf_counter() - started
        print(f"{n:>8} " + " ".join(f"{table[n][s]:>11.1f}" for s in STEPS)
              + f" {rss:>7.2f} GB {'exact' if table[n]['recall'] is None else format(table[n]['recall'], '.4f'):>9}"
              f"  ({took:.0f} s)", flush=True)
        if table[n]["recall"] is not None:
            record.add(f"N={n} neighbour recall@10", table[n]["recall"], "fraction", better="higher")
        for step in STEPS:
            record.add(f"N={n} {step}", table[n][step], "s")
        record.add(f"N={n} peak RSS", rss, "GB")
        record.add(f"N={n} all, with the data", took, "s")
    sizes = sorted(table)
    if len(sizes) < 2:
        print("\n(one size: no growth to fit; give --n two sizes or more for the exponents and the "
              "1M and 10M estimates)")
        record.save()
        return
    print(f"\n{'step':>11} {'exponent b':>10} {'1M clips':>10} {'10M clips':>10}")
    total = {1_000_000: 0.0, 10_000_000: 0.0}
    for step in STEPS:
        a, b = fit(sizes, [table[n][step] for n in sizes])
        at = {big: a * big ** b for big in total}
        for big in total:
            total[big] += at[big]
        print(f"{step:>11} {b:>10.2f} {human(at[1_000_000]):>10} {human(at[10_000_000]):>10}")
        record.add(f"{step} exponent b", b, "exponent")
        record.add(f"{step} at 1M clips (extrapolated)", at[1_000_000], "s")
        record.add(f"{step} at 10M clips (extrapolated)", at[10_000_000], "s")
    print(f"{'all':>11} {'':>10} {human(total[1_000_000]):>10} {human(total[10_000_000]):>10}")
    record.add("all at 1M clips (extrapolated)", total[1_000_000], "s")
    record.add("all at 10M clips (extrapolated)", total[10_000_000], "s")
    record.save()

if __name__ == "__main__":
    main()

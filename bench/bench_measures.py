#!/usr/bin/env python
"""What measuring the codec costs: each fidelity measure per clip and depth, and the probes
step per representation, on a real cache; then what that means at 100,000 clips, where both
steps are bounded (fidelity: --reconstruct-max-clips decoded clips, default 1,000 on a GPU and 48 on a CPU, DNSMOS on
--dnsmos-clips of them; probes: a stratified sample of 5,000 clips per probe).

Each measure is timed on the same clips and depths of the cache (its own WAVs), one call at a
time; medians in ms. The probes step is run whole (``codec_measures_all`` into a scratch copy
of probes.json) ``--repeats`` times; median seconds.

  python bench/bench_measures.py --cache cache/demo                 # 20 clips x every depth
  python bench/bench_measures.py --cache cache/demo --clips 5 --repeats 1   # a quick look
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from dacviz_app.cache import CachePaths, open_cache
from dacviz_app.precompute import fidelity as fid
from dacviz_app.precompute.codec_measures import codec_measures_all
from dacviz_app.precompute.downstream import metric_columns
from dacviz_testkit.bench import BenchRecord

MEASURES = {"si_sdr": lambda r, e, sr: fid.si_sdr(r, e), "mel_distance": fid.mel_distance,
            "stoi": fid.stoi, "pesq": fid.pesq_wb, "dnsmos": lambda r, e, sr: fid.dnsmos(e, sr)}


def time_measures(cache, clips: int) -> dict[str, list[float]]:
    """{measure: ms of each call, one per clip and depth} over ``clips`` decoded clips at every
    depth (no measure when the cache has no decoded clips)."""
    names = cache.clips["audio"]
    ids = cache.fidelity.clip_ids[:clips] if cache.fidelity is not None else []
    times = {m: [] for m in MEASURES}
    for clip in ids:
        reference, rate = fid.read_mono(cache.paths.audio(names[int(clip)]))
        for q in cache.reconstruction_depths:
            estimate, _ = fid.read_mono(cache.paths.reconstruction(q, names[int(clip)]))
            for name, measure in MEASURES.items():
                started = time.perf_counter()
                fid.undefined_as_nan(measure, reference, estimate, rate)
                times[name].append((time.perf_counter() - started) * 1000)
    return {m: t for m, t in times.items() if t}


def time_probes(cache, repeats: int) -> list[float]:
    """Seconds of each run of the whole probes step on the cache's embeddings (scratch output)."""
    embeddings = {r: np.load(cache.paths.array(r, "embedding")) for r in cache.representations}
    depth_reps = [rep for _, rep in cache.depths()]
    seconds = []
    with tempfile.TemporaryDirectory() as scratch:
        paths = CachePaths(Path(scratch))
        for rep in cache.representations:  # the neighbour tables the step reads
            target = paths.array(rep, "knn_index")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(cache.paths.array(rep, "knn_index"), target)
        for _ in range(repeats):
            started = time.perf_counter()
            codec_measures_all(embeddings, cache.clips, metric_columns(cache.clips), depth_reps, paths,
                               cache.manifest["seed"], cache.knn_k, say=lambda _: None)
            seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", required=True,
                        help="a cache with reconstructions (precompute's default; required, no default)")
    parser.add_argument("--clips", type=int, default=20, help="decoded clips timed per measure (default 20)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of the probes step (default 3)")
    args = parser.parse_args()
    if args.clips < 0 or args.repeats < 1:
        parser.error("--clips must be 0 or more, --repeats at least 1")
    record = BenchRecord("bench_measures")
    cache = open_cache(args.cache)
    depths = cache.reconstruction_depths
    samples = time_measures(cache, args.clips)
    per = {m: statistics.median(t) for m, t in samples.items()}
    print(f"cache {args.cache}: {cache.n_clips} clips, decoded depths {depths}, "
          f"median clip {np.median(cache.clips['duration_s']):.2f} s")
    print(f"{'measure':<14} {'ms per clip and depth':>22}")
    for name, ms in per.items():
        print(f"{name:<14} {ms:>22.1f}")
        record.add(f"{name}: ms per clip and depth", samples[name], "ms")
    without = sum(ms for m, ms in per.items() if m != "dnsmos")
    d = len(depths)
    print(f"fidelity per decoded clip ({d} depths): {without * d / 1000:.2f} s without DNSMOS, "
          f"+{per.get('dnsmos', 0) * (d + 1) / 1000:.2f} s with it (the original too)")
    if per:  # from the medians above: one decoded clip at every depth
        record.add("fidelity per decoded clip, without DNSMOS", without * d / 1000, "s")
        if "dnsmos" in per:
            record.add("fidelity per decoded clip, DNSMOS (the original too)",
                       per["dnsmos"] * (d + 1) / 1000, "s")
    for n_decoded, n_dnsmos in ((cache.reconstructed_clips, 8), (1000, 8), (1000, 100)):
        total = n_decoded * without * d / 1000 + n_dnsmos * per.get("dnsmos", 0) * (d + 1) / 1000
        print(f"  {n_decoded:>6,} decoded clips, DNSMOS on {n_dnsmos:>3}: {total / 60:6.1f} min "
              "(the default decodes 1,000 clips on a GPU, 48 on a CPU)")
    runs = time_probes(cache, args.repeats)
    probes = statistics.median(runs)
    print(f"probes step ({len(cache.representations)} representations, {cache.n_clips} clips): "
          f"{probes:.2f} s median of {args.repeats}")
    record.add("probes step", runs, "s")
    record.save()


if __name__ == "__main__":
    main()

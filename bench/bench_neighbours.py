#!/usr/bin/env python
"""The approximate neighbour search's trade-off (embedding/approximate.py), measured on synthetic
vectors fitted to a real cache's representation, at each --n:

- the inverted file's lists (how many, median and largest size);
- for 16, 32, 64, ... lists searched from each list (until the recall reaches --until, or every
  list): the share of clip pairs compared (the work; exact search compares all of them), the
  recall@10 [95 %] against exact search on the recall's 2,000 seeded clips (as the cache keeps it),
  and the seconds of that sample's search;
- with --spread, how the synthetic clips spread around their label's mean: "diagonal" draws each
  dimension apart with the spread pooled over labels (make_synthetic_cache's model), "covariance"
  draws from the pooled within-label covariance of the real clips (their correlations kept, its
  rank at most the real clips less the labels);
- with --balanced, also the lists after splitting every list of more than twice the mean size by
  spherical k-means on its own clips (a balanced partition: it changes the share per list, the
  measurement says whether it changes the recall per pair compared);
- at sizes up to --whole-up-to, the whole table (90 neighbours, t-SNE's width): exact search
  against the inverted file with the lists it chooses itself, seconds and recall.

  python bench/bench_neighbours.py --source cache/demo --n 50000 100000 200000
  python bench/bench_neighbours.py --source cache/demo --n 100000 --spread diagonal covariance --balanced
  python bench/bench_neighbours.py --source cache/demo --n 2000 --whole-up-to 2000   # seconds
"""
from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np

from dacviz_app.cache import open_cache
from dacviz_app.embedding import approximate
from dacviz_app.embedding.neighbours import cosine_knn, normalise_rows
from dacviz_app.precompute.synthetic import fit_and_sample
from dacviz_testkit.bench import BenchRecord

K = 90          # the table's width at the default perplexity (tsne_neighbour_count)
SPLIT_ABOVE = 2  # --balanced: lists of more than this times the mean size are split


def synthetic(source: str, rep: str, n: int, spread: str, seed: int = 0) -> np.ndarray:
    """(n, dim) float32 unit rows drawn per label of the real cache ``source`` (labels drawn with
    their real frequencies), spread "diagonal" (make_synthetic_cache) or "covariance"."""
    real = open_cache(source)
    x = np.asarray(real.embedding(rep), np.float64)
    labels = np.asarray(real.clips["label"])
    names, counts = np.unique(labels, return_counts=True)
    rng = np.random.default_rng(seed)
    codes = rng.choice(len(names), size=n, p=counts / counts.sum())
    if spread == "diagonal":
        return normalise_rows(fit_and_sample(x, labels, codes, names, 1.0, rng))
    means = np.stack([x[labels == name].mean(0) for name in names])
    residuals = np.concatenate([x[labels == name] - x[labels == name].mean(0) for name in names])
    scale = 1.0 / math.sqrt(max(1, len(x) - len(names)))  # pooled, unbiased
    out = np.empty((n, x.shape[1]), dtype=np.float32)
    for start in range(0, n, 20_000):
        block = codes[start:start + 20_000]
        out[start:start + len(block)] = means[block] + (rng.standard_normal((len(block), len(residuals)))
                                                        @ residuals) * scale
    return normalise_rows(out)


def split_large_lists(unit: np.ndarray, centres: np.ndarray, members: list[np.ndarray],
                      seed: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Every list of more than SPLIT_ABOVE x the mean size split into ceil(size / mean) lists by
    spherical k-means on its own clips; empty lists dropped. -> (lists, dim) centres, members."""
    mean = len(unit) / len(centres)
    kept_centres, kept_members = [], []
    for centre, clips in zip(centres, members):
        if len(clips) <= SPLIT_ABOVE * mean:
            if len(clips):
                kept_centres.append(centre)
                kept_members.append(clips)
            continue
        own = unit[clips]
        sub = approximate.spherical_kmeans(own, math.ceil(len(clips) / mean), seed)
        for sub_centre, sub_clips in zip(sub, approximate.lists_of(own, sub)):
            if len(sub_clips):
                kept_centres.append(sub_centre)
                kept_members.append(clips[sub_clips])
    return np.stack(kept_centres), kept_members


def pairs_compared(members: list[np.ndarray], searched: list[np.ndarray], n: int) -> float:
    """The share of the n^2 clip pairs the search compares."""
    sizes = np.array([len(m) for m in members], dtype=np.float64)
    return float(sum(len(m) * sizes[s].sum() for m, s in zip(members, searched)) / n ** 2)


def widen(unit: np.ndarray, centres: np.ndarray, members: list[np.ndarray], until: float, seed: int):
    """(probe, pairs share, recall dict, seconds) for 16, 32, ... lists, until ``until`` or every list."""
    import torch

    rows = torch.from_numpy(unit)
    sample = approximate.recall_rows(len(unit), seed)
    _, exact_distance = approximate.exact_unit_rows(unit, sample, approximate.RECALL_K)
    probe, out = 16, []
    while True:
        probe = min(probe, len(members))
        searched = approximate.lists_searched(centres, members, probe, K + 1)
        started = time.perf_counter()
        found, _ = approximate.search_lists(unit, rows, members, searched, K, "cpu", only=sample)
        seconds = time.perf_counter() - started
        shares = approximate.near_enough(unit, sample, found[:, :approximate.RECALL_K], exact_distance)
        recall = approximate.summarise_recall(shares, approximate.RECALL_K)
        out.append((probe, pairs_compared(members, searched, len(unit)), recall, seconds))
        if recall["recall_at_k"] >= until or probe == len(members):
            return out
        probe *= 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="cache/demo", help="the real cache fitted (default %(default)s)")
    parser.add_argument("--rep", default="z", help="its representation (default %(default)s)")
    parser.add_argument("--n", type=int, nargs="+", default=[20_000, 50_000],
                        help="synthetic clips, one table each (default %(default)s)")
    parser.add_argument("--spread", nargs="+", choices=("diagonal", "covariance"), default=["diagonal"],
                        help="how the clips spread around their label's mean (default %(default)s)")
    parser.add_argument("--balanced", action="store_true",
                        help="also measure the lists split to at most twice the mean size (default: off)")
    parser.add_argument("--until", type=float, default=0.97,
                        help="widen the lists searched until this recall@10 (default %(default)s)")
    parser.add_argument("--whole-up-to", type=int, default=0,
                        help="time the whole table, exact and approximate, at sizes up to this "
                             "(default %(default)s: none; ~4 min each at 100k on two cores)")
    parser.add_argument("--seed", type=int, default=0,
                        help="k-means' and the recall sample's seed (default %(default)s)")
    args = parser.parse_args()
    if min(args.n) < 200 or not 0 < args.until <= 1:
        parser.error("each --n must be at least 200 and --until in (0, 1]")
    record = BenchRecord("bench_neighbours")
    print(f"{args.rep} of {args.source}, synthetic; recall@10 on {approximate.RECALL_SAMPLE:,} seeded clips "
          f"(tie-aware) against exact search; {K} neighbours per clip")
    print(f"{'n':>9} {'spread':10} {'partition':9} {'lists (median, largest)':>24} {'lists searched':>14} "
          f"{'pairs compared':>14} {'recall@10 [95 %]':>22} {'sample search s':>15}")
    for n in args.n:
        for spread in args.spread:
            unit = synthetic(args.source, args.rep, n, spread, args.seed)
            centres = approximate.spherical_kmeans(unit, approximate.list_count(n), args.seed)
            members = approximate.lists_of(unit, centres)
            partitions = [("k-means", centres, members)]
            if args.balanced:
                partitions.append(("balanced", *split_large_lists(unit, centres, members, args.seed)))
            for partition, c, m in partitions:
                sizes = [len(clips) for clips in m]
                lists = f"{len(m)} ({int(statistics.median(sizes))}, {max(sizes)})"
                for probe, share, recall, seconds in widen(unit, c, m, args.until, args.seed):
                    said = f"{recall['recall_at_k']:.3f} [{recall['low']:.3f}, {recall['high']:.3f}]"
                    print(f"{n:>9,} {spread:10} {partition:9} {lists:>24} {probe:>14} {share:>14.1%} "
                          f"{said:>22} {seconds:>15.1f}", flush=True)
                    at = f"n={n} {spread} {partition} {probe} lists"
                    record.add(f"{at}: recall@10", recall["recall_at_k"], "fraction", better="higher")
                    record.add(f"{at}: pairs compared", share, "fraction")
            if n <= args.whole_up_to:
                whole(unit, n, spread, args.seed, record)
    record.save()


def whole(unit: np.ndarray, n: int, spread: str, seed: int, record: BenchRecord) -> None:
    """The whole table: exact search, then the inverted file choosing its lists (same run)."""
    started = time.perf_counter()
    cosine_knn(unit, K)
    exact_s = time.perf_counter() - started
    started = time.perf_counter()
    _, _, probe, recall = approximate.approximate_cosine_knn(unit, K, seed)
    approximate_s = time.perf_counter() - started
    print(f"{n:>9,} {spread:10} whole table: exact search {exact_s:.1f} s; inverted file {approximate_s:.1f} s "
          f"({probe} lists searched, recall@10 {recall['recall_at_k']:.3f}, x{exact_s / approximate_s:.2f} "
          f"the speed of exact)")
    record.add(f"n={n} {spread} whole table, exact search", exact_s, "s")
    record.add(f"n={n} {spread} whole table, inverted file", approximate_s, "s",
               baseline=f"n={n} {spread} whole table, exact search")


if __name__ == "__main__":
    main()

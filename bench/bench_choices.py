#!/usr/bin/env python
"""Algorithm choices, measured: t-SNE (scikit-learn vs openTSNE) and exact k-NN (blockwise
vs faiss flat vs scikit-learn brute), on data shaped like DAC latents.

Data: N clips drawn per label from Gaussians fitted to a real cache's `z` (per-label mean, the
pooled per-dimension std), so the clusters have the real cache's geometry.
Quality of a 2D map: the fraction of each clip's 10 nearest neighbours in the map that share its
label (higher keeps more of the cluster structure). Every timing is the median of --repeats;
openTSNE runs on --jobs threads, scikit-learn on all cores (OMP_NUM_THREADS caps it).

  python bench/bench_choices.py --cache cache/demo --sizes 2000 5000
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from dacviz_app.cache import open_cache  # noqa: E402
from dacviz_app.embedding.neighbours import cosine_knn  # noqa: E402
from dacviz_testkit.bench import BenchRecord  # noqa: E402


def synthetic(cache_dir: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    cache = open_cache(cache_dir)
    z = np.asarray(cache.embedding("z"), dtype=np.float64)
    labels = np.asarray(cache.clips["label"])
    names = np.unique(labels)
    means = np.stack([z[labels == name].mean(0) for name in names])
    std = np.sqrt(np.mean([z[labels == name].var(0) for name in names], axis=0))
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, len(names), n)
    x = (means[codes] + rng.standard_normal((n, z.shape[1])) * std).astype(np.float32)
    return x, codes


def label_agreement(coords: np.ndarray, codes: np.ndarray, k: int = 10) -> float:
    from sklearn.neighbors import NearestNeighbors

    _, idx = NearestNeighbors(n_neighbors=k + 1).fit(coords).kneighbors(coords)
    return float((codes[idx[:, 1:]] == codes[:, None]).mean())


def timed(fn, repeats: int):
    """(seconds of each of ``repeats`` runs, the last run's result)."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


# each way's baseline (the seed's, in the same run): openTSNE against scikit-learn's TSNE
TSNE_BASELINE = {"openTSNE 2D (FFT, cosine)": "sklearn TSNE 2D (BH, cosine; the seed)",
                 "openTSNE 2D (BH, cosine)": "sklearn TSNE 2D (BH, cosine; the seed)",
                 "openTSNE 3D (BH, cosine)": "sklearn TSNE 3D (BH, cosine; the seed)"}
KNN_BASELINE = "sklearn brute cosine"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default="cache/demo", help="the real cache fitted (default %(default)s)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 5000],
                        help="numbers of synthetic clips, one table each (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per timing, median (default %(default)s)")
    parser.add_argument("--jobs", type=int, default=2,
                        help="openTSNE's threads (default %(default)s; 1 where other work holds the cores: "
                             "two threads on a busy core wait on each other at every iteration)")
    args = parser.parse_args()
    if args.repeats < 1 or args.jobs < 1 or min(args.sizes) < 100:
        parser.error("--repeats and --jobs must be at least 1, each of --sizes at least 100 "
                     "(t-SNE's perplexity 30)")
    jobs = args.jobs
    from openTSNE import TSNE as OpenTSNE
    from sklearn.manifold import TSNE as SkTSNE
    from sklearn.neighbors import NearestNeighbors

    try:
        import faiss
    except ImportError:
        faiss = None
    record = BenchRecord("bench_choices")

    for n in args.sizes:
        x, codes = synthetic(args.cache, n)
        at = f"N={n}"
        print(f"\n== N={n} clips x {x.shape[1]}-D (synthetic from {args.cache} z) ==")
        full = float((codes[cosine_knn(x, 10)[0]] == codes[:, None]).mean())
        print(f"full-space cosine 10-NN label agreement: {full:.3f}")
        record.add(f"{at} full-space cosine 10-NN label agreement", full, "fraction", better="higher")
        runs = {
            "sklearn TSNE 2D (BH, cosine; the seed)": lambda: SkTSNE(2, metric="cosine", perplexity=30, random_state=42).fit_transform(x),
            "openTSNE 2D (FFT, cosine)": lambda: np.asarray(OpenTSNE(2, metric="cosine", perplexity=30, random_state=42, negative_gradient_method="fft", n_jobs=jobs).fit(x)),
            "openTSNE 2D (BH, cosine)": lambda: np.asarray(OpenTSNE(2, metric="cosine", perplexity=30, random_state=42, negative_gradient_method="bh", n_jobs=jobs).fit(x)),
            "sklearn TSNE 3D (BH, cosine; the seed)": lambda: SkTSNE(3, metric="cosine", perplexity=30, random_state=42).fit_transform(x),
            "openTSNE 3D (BH, cosine)": lambda: np.asarray(OpenTSNE(3, metric="cosine", perplexity=30, random_state=42, negative_gradient_method="bh", n_jobs=jobs).fit(x)),
        }
        for name, run in runs.items():
            times, coords = timed(run, args.repeats)
            agreement = label_agreement(coords, codes)
            print(f"{name:42s} {statistics.median(times):8.2f} s   10-NN label agreement {agreement:.3f}")
            baseline = TSNE_BASELINE.get(name)
            record.add(f"{at} {name}", times, "s", baseline=baseline and f"{at} {baseline}")
            record.add(f"{at} {name}: 10-NN label agreement", agreement, "fraction", better="higher",
                       baseline=baseline and f"{at} {baseline}: 10-NN label agreement")

        # exact k-NN tables
        def faiss_flat():
            unit = x / np.linalg.norm(x, axis=1, keepdims=True)
            index = faiss.IndexFlatIP(unit.shape[1])
            index.add(unit)
            return index.search(unit, 51)[1][:, 1:]

        knn_runs = {
            "blockwise, torch (dacviz)": lambda: cosine_knn(x, 50)[0],
            "faiss IndexFlatIP": faiss_flat if faiss is not None else None,
            KNN_BASELINE: lambda: NearestNeighbors(n_neighbors=51, metric="cosine", algorithm="brute").fit(x).kneighbors(x)[1][:, 1:],
        }
        reference, measured = None, {}
        for name, run in knn_runs.items():
            if run is None:
                print(f"k-NN table k=50, {name:28s} faiss not installed (pip install faiss-cpu)")
                continue
            times, table = timed(run, args.repeats)
            reference = table if reference is None else reference
            same = float((np.sort(table, 1) == np.sort(reference, 1)).mean())
            print(f"k-NN table k=50, {name:28s} {statistics.median(times):8.2f} s   same as numpy: {same:.4f}")
            measured[name] = times
        # scikit-learn's brute force first: the baseline of the others
        for name in sorted(measured, key=lambda name: name != KNN_BASELINE):
            record.add(f"{at} k-NN table k=50, {name}", measured[name], "s",
                       baseline=None if name == KNN_BASELINE else f"{at} k-NN table k=50, {KNN_BASELINE}")
    record.save()


if __name__ == "__main__":
    main()

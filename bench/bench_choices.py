#!/usr/bin/env python
"""Algorithm choices, measured: t-SNE (scikit-learn vs openTSNE) and exact k-NN (blockwise
vs faiss flat vs scikit-learn brute), on data shaped like DAC latents.

Data: N clips drawn per label from Gaussians fitted to a real cache's `z` (per-label mean, the
pooled per-dimension std), so the clusters have the real cache's geometry.
Quality of a 2D map: the fraction of each clip's 10 nearest neighbours in the map that share its
label (higher keeps more of the cluster structure). Every timing is the median of --repeats.

  python bench/bench_choices.py --cache cache/demo --sizes 2000 5000
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from dacviz_app.cache import open_cache  # noqa: E402
from dacviz_app.embedding.neighbours import cosine_knn  # noqa: E402


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
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default="cache/demo")
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 5000])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    from openTSNE import TSNE as OpenTSNE
    from sklearn.manifold import TSNE as SkTSNE

    for n in args.sizes:
        x, codes = synthetic(args.cache, n)
        print(f"\n== N={n} clips x {x.shape[1]}-D (synthetic from {args.cache} z) ==")
        print(f"full-space cosine 10-NN label agreement: "
              f"{float((codes[cosine_knn(x, 10)[0]] == codes[:, None]).mean()):.3f}")
        runs = {
            "sklearn TSNE 2D (BH, cosine; the seed)": lambda: SkTSNE(2, metric="cosine", perplexity=30, random_state=42).fit_transform(x),
            "openTSNE 2D (FFT, cosine)": lambda: np.asarray(OpenTSNE(2, metric="cosine", perplexity=30, random_state=42, negative_gradient_method="fft", n_jobs=2).fit(x)),
            "openTSNE 2D (BH, cosine)": lambda: np.asarray(OpenTSNE(2, metric="cosine", perplexity=30, random_state=42, negative_gradient_method="bh", n_jobs=2).fit(x)),
            "sklearn TSNE 3D (BH, cosine; the seed)": lambda: SkTSNE(3, metric="cosine", perplexity=30, random_state=42).fit_transform(x),
            "openTSNE 3D (BH, cosine)": lambda: np.asarray(OpenTSNE(3, metric="cosine", perplexity=30, random_state=42, negative_gradient_method="bh", n_jobs=2).fit(x)),
        }
        for name, run in runs.items():
            seconds, coords = timed(run, args.repeats)
            print(f"{name:42s} {seconds:8.2f} s   10-NN label agreement {label_agreement(coords, codes):.3f}")
        # exact k-NN tables
        import faiss
        from sklearn.neighbors import NearestNeighbors

        def faiss_flat():
            unit = x / np.linalg.norm(x, axis=1, keepdims=True)
            index = faiss.IndexFlatIP(unit.shape[1])
            index.add(unit)
            return index.search(unit, 51)[1][:, 1:]

        knn_runs = {
            "blockwise, torch (dacviz)": lambda: cosine_knn(x, 50)[0],
            "faiss IndexFlatIP": faiss_flat,
            "sklearn brute cosine": lambda: NearestNeighbors(n_neighbors=51, metric="cosine", algorithm="brute").fit(x).kneighbors(x)[1][:, 1:],
        }
        reference = None
        for name, run in knn_runs.items():
            seconds, table = timed(run, args.repeats)
            reference = table if reference is None else reference
            same = float((np.sort(table, 1) == np.sort(reference, 1)).mean())
            print(f"k-NN table k=50, {name:28s} {seconds:8.2f} s   same as numpy: {same:.4f}")


if __name__ == "__main__":
    main()

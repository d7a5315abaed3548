#!/usr/bin/env python
"""Non-encoding precompute steps: the seed notebook's way against dacviz's, same data, same run.

Data: N synthetic clips fitted to a real cache (``core.synthetic.fit_and_sample``: per-label
Gaussians), for the chosen representations (default: all four). The seed's way, per
representation: scikit-learn PCA 2D and 3D, TSNE 2D and 3D (cosine, perplexity 30, seed 42),
silhouette and Davies-Bouldin in the full space and the four projections (no neighbour table: the
seed has none). dacviz's way: the pipeline's own neighbour, projection and metric steps
(``pipeline.finish_cache``), which also build the 50-NN table
and k-NN accuracy, and write the manifest. Wall time of each; peak RSS of the process.

  python bench/bench_precompute_scale.py --source cache/demo --n 5000
  python bench/bench_precompute_scale.py --source cache/demo --n 40000 --reps z
"""
from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from dacviz_app.cache import CachePaths, open_cache  # noqa: E402
from dacviz_app.precompute.dac_encode import WeightsChoice  # noqa: E402
from dacviz_app.precompute.config import PrecomputeConfig  # noqa: E402
from dacviz_app.precompute.downstream import finish_cache  # noqa: E402
from dacviz_app.precompute.synthetic import fit_and_sample  # noqa: E402
from dacviz_testkit.bench import BenchRecord  # noqa: E402

SEED_WAY = "seed's scikit-learn way"


def synthetic_data(source: str, n: int, reps: list[str], seed: int = 0) -> tuple[dict, list[str], dict]:
    """{rep: (n, dim) float32} fitted to the cache in ``source``, the n labels, its manifest."""
    real = open_cache(source)
    rng = np.random.default_rng(seed)
    labels = np.asarray(real.clips["label"])
    names, counts = np.unique(labels, return_counts=True)
    codes = rng.choice(len(names), size=n, p=counts / counts.sum())
    embeddings = {rep: fit_and_sample(np.asarray(real.embedding(rep), np.float64), labels, codes, names,
                                      1.0, rng) for rep in reps}
    return embeddings, [str(names[c]) for c in codes], real.manifest


def dacviz_way(embeddings: dict, labels: list[str], manifest: dict) -> dict[str, float]:
    out = Path(tempfile.mkdtemp(prefix="dacviz-scale-"))
    config = PrecomputeConfig(out=out, model_type=manifest["model"]["type"],
                              weights=WeightsChoice(**manifest["model"]["weights"]), seed=42)
    try:
        return finish_cache(embeddings, {"label": labels}, config, "bench", 0, CachePaths(out), lambda _: None)
    finally:
        shutil.rmtree(out, ignore_errors=True)  # the cache it wrote is not needed (it was left behind)


def seed_way(embeddings: dict, labels: list[str]) -> float:
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from sklearn.metrics import davies_bouldin_score, silhouette_score

    started = time.perf_counter()
    for rep, x in embeddings.items():
        spaces = [x, PCA(2, random_state=42).fit_transform(x), PCA(3, random_state=42).fit_transform(x),
                  TSNE(2, random_state=42, metric="cosine", perplexity=30).fit_transform(x),
                  TSNE(3, random_state=42, metric="cosine", perplexity=30).fit_transform(x)]
        for points in spaces:
            silhouette_score(points, labels)
            davies_bouldin_score(points, labels)
        print(f"  seed way: {rep} done at {time.perf_counter() - started:.1f} s", flush=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="cache/demo", help="the real cache fitted (default %(default)s)")
    parser.add_argument("--n", type=int, default=5000, help="synthetic clips (default %(default)s)")
    parser.add_argument("--reps", nargs="+", help="representations (default: all of the source's)")
    args = parser.parse_args()
    if args.n < 100:
        parser.error("--n must be at least 100 (t-SNE's perplexity 30)")
    record = BenchRecord("bench_precompute_scale")
    reps = args.reps or list(open_cache(args.source).representations)
    embeddings, labels, manifest = synthetic_data(args.source, args.n, reps)
    timings = dacviz_way(embeddings, labels, manifest)
    ours = sum(timings.values())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"N={args.n} reps={','.join(reps)}: dacviz {ours:.1f} s ("
          + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()) + f"), peak RSS so far {peak:.2f} GB",
          flush=True)
    seed = seed_way(embeddings, labels)
    print(f"N={args.n} reps={','.join(reps)}: {SEED_WAY} {seed:.1f} s; dacviz x{seed / ours:.2f} "
          f"faster (dacviz also builds the 50-NN table and k-NN accuracy, which the seed does not)")
    record.add(SEED_WAY, seed, "s")
    record.add("dacviz", ours, "s", baseline=SEED_WAY)
    for step, seconds in timings.items():
        record.add(f"dacviz: {step}", seconds, "s")
    record.add("peak RSS so far (after dacviz)", peak, "GB")
    record.save()


if __name__ == "__main__":
    main()

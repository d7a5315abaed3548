"""Cluster-quality metrics of one set of points against the clip labels.

- silhouette: ``sklearn.metrics.silhouette_score`` (Euclidean, as the seed); exact up to
  SILHOUETTE_SAMPLE clips, beyond that on a seeded sample of that size (recorded).
- silhouette_cosine: the same with ``metric="cosine"`` (the distance the neighbours use).
- chance: the share of the most frequent value: the k-NN accuracy of always guessing it.
- davies_bouldin: ``sklearn.metrics.davies_bouldin_score`` (exact).
- knn_accuracy: leave-one-out k-NN label accuracy with k = KNN_ACCURACY_K: each clip's label
  is predicted by majority vote of its k nearest other clips (cosine in the full space, from
  the cache's neighbour table; Euclidean in a 2D/3D projection); a tie goes to the tied label
  whose member is nearest. The fraction predicted right.
"""
from __future__ import annotations

import numpy as np

KNN_ACCURACY_K = 5
SILHOUETTE_SAMPLE = 10_000
WORKING_MEMORY_MB = 64  # scikit-learn's chunks of pairwise distances (its default: 1,024)


def encode_labels(labels: list[str]) -> np.ndarray:
    """list of n label strings -> (n,) int64 codes (sorted label order)."""
    _, codes = np.unique(np.asarray(labels, dtype=object).astype(str), return_inverse=True)
    return codes.astype(np.int64)


def vote_predictions(neighbour_index: np.ndarray, codes: np.ndarray, k: int = KNN_ACCURACY_K) -> np.ndarray:
    """(n, >=k) neighbour indices (closest first, self excluded), (n,) int codes -> (n,) the
    code each clip's k nearest others vote for (most votes; a tie to the nearest tied one)."""
    votes = codes[np.asarray(neighbour_index)[:, :k]]  # (n, k) codes of the k neighbours
    counts = (votes[:, :, None] == votes[:, None, :]).sum(axis=2)  # (n, k) votes for each one's code
    score = counts * (k + 1) - np.arange(k)[None, :]  # more votes first, then the nearer
    return votes[np.arange(len(codes)), score.argmax(axis=1)]


def knn_vote_accuracy(neighbour_index: np.ndarray, codes: np.ndarray, k: int = KNN_ACCURACY_K) -> float:
    """(n, >=k) neighbour indices (closest first, self excluded), (n,) label codes -> accuracy."""
    return float(np.mean(vote_predictions(neighbour_index, codes, k) == codes))


def euclidean_knn_index(points: np.ndarray, k: int) -> np.ndarray:
    """(n, 2|3) points -> (n, k) indices of the k nearest other points (Euclidean)."""
    return nearest_others(points, k)


def nearest_others(points: np.ndarray, k: int, metric: str = "minkowski") -> np.ndarray:
    """(n, dim) points -> (n, k) int64 indices of the k nearest *other* points, closest first,
    by ``sklearn.neighbors.NearestNeighbors`` with ``metric`` (default: Euclidean; "cosine"
    searches by brute force)."""
    from sklearn.neighbors import NearestNeighbors

    tree = NearestNeighbors(n_neighbors=k + 1, metric=metric).fit(points)
    _, index = tree.kneighbors(points)
    is_self = index == np.arange(len(points))[:, None]  # wherever duplicates put the point itself
    others_first = np.argsort(is_self, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(index, others_first, axis=1).astype(np.int64)


def cluster_metrics(points: np.ndarray, codes: np.ndarray, neighbour_index: np.ndarray,
                    seed: int = 42) -> dict:
    """Silhouette (Euclidean and cosine), Davies-Bouldin, k-NN accuracy and its chance level of
    (n, dim) ``points`` under ``codes`` ((n,) int64 from ``encode_labels``).

    Values are None where undefined (fewer than 2 labels, or a label per clip).
    """
    from sklearn import config_context
    from sklearn.metrics import davies_bouldin_score, silhouette_score

    n, n_labels = len(codes), len(np.unique(codes))
    row: dict = {"silhouette": None, "silhouette_cosine": None, "davies_bouldin": None,
                 "knn_accuracy": None, "chance": float(np.bincount(codes).max() / n) if n else None,
                 "silhouette_sample": None}
    if 2 <= n_labels <= n - 1:
        sample = SILHOUETTE_SAMPLE if n > SILHOUETTE_SAMPLE else None
        # scikit-learn's own sampling for silhouette_score(sample_size=, random_state=seed), done
        # here so that only the sample is copied to float64 (the same rows, the same values), and
        # its distances in chunks of 64 MB instead of 1 GB (a row's sum does not depend on them):
        # 100,000 clips of 1024-D held 2.7 GB more for this, now ~0.9 GB (docs/benchmarks.md)
        rows = np.random.RandomState(seed).permutation(n)[:sample] if sample else np.arange(n)
        x, x_codes = np.asarray(points[rows] if sample else points, dtype=np.float64), codes[rows]
        with config_context(working_memory=WORKING_MEMORY_MB):
            row["silhouette"] = float(silhouette_score(x, x_codes))
            row["silhouette_cosine"] = float(silhouette_score(x, x_codes, metric="cosine"))
        row["silhouette_sample"] = sample
        del x
        row["davies_bouldin"] = float(davies_bouldin_score(np.asarray(points, dtype=np.float64), codes))
    if n_labels >= 2 and neighbour_index.shape[1] >= 1:
        row["knn_accuracy"] = knn_vote_accuracy(neighbour_index, codes,
                                                min(KNN_ACCURACY_K, neighbour_index.shape[1]))
    return row


def codebook_usage(counts: np.ndarray) -> dict[str, list]:
    """Per residual level, from (n_codebooks, codebook_size) code counts: how many entries the
    collection used, and the perplexity exp(H) of its code distribution (H in nats; the number
    of equally used entries that would give the same entropy).
    Returns {"level": [1..n], "used": [int], "perplexity": [float], "codebook_size": int}."""
    counts = np.asarray(counts, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    p = counts / np.where(totals > 0, totals, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
    return {"level": list(range(1, len(counts) + 1)), "used": [int(u) for u in (counts > 0).sum(axis=1)],
            "perplexity": [float(v) for v in np.exp(entropy)], "codebook_size": int(counts.shape[1])}

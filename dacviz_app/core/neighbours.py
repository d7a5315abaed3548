"""Exact cosine nearest neighbours of every clip in a representation's full space.

Blockwise: rows are L2-normalised once, then each block of queries is multiplied against all
clips, so memory is O(block * n_clips), never O(n_clips^2).
"""
from __future__ import annotations

import numpy as np

MAX_K = 50


def normalise_rows(x: np.ndarray) -> np.ndarray:
    """(n, dim) -> (n, dim) float32 unit rows (all-zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def cosine_knn(x: np.ndarray, k: int, block: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """k nearest *other* clips of every clip, by cosine distance 1 - cos.

    Args:
        x: (n_clips, dim) vectors.
        k: neighbours per clip, k <= n_clips - 1.
    Returns:
        index (n_clips, k) int32 and distance (n_clips, k) float32, closest first; ties broken
        by the lower clip index so the table is deterministic.
    """
    unit = normalise_rows(x)
    n = unit.shape[0]
    if not 1 <= k <= n - 1:
        raise ValueError(f"k={k} needs 1 <= k <= n_clips-1 = {n - 1}")
    index = np.empty((n, k), dtype=np.int32)
    distance = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, block):
        stop = min(start + block, n)
        dist = 1.0 - unit[start:stop] @ unit.T  # (block, n)
        rows = np.arange(stop - start)
        dist[rows, rows + start] = np.inf  # never your own neighbour
        take = min(k + 1, n - 1)
        part = np.argpartition(dist, take - 1, axis=1)[:, :take]
        part_dist = np.take_along_axis(dist, part, axis=1)
        order = np.lexsort((part, part_dist), axis=1)[:, :k]
        index[start:stop] = np.take_along_axis(part, order, axis=1)
        distance[start:stop] = np.maximum(np.take_along_axis(part_dist, order, axis=1), 0.0)
    return index, distance

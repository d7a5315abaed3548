"""Exact cosine nearest neighbours in a representation's full space.

Blockwise: rows are L2-normalised once, then each block of queries is multiplied against all
reference rows, so memory is O(block * n_reference), never O(n_clips^2).
"""
from __future__ import annotations

import numpy as np

MAX_K = 50
BLOCK = 1024


def normalise_rows(x: np.ndarray) -> np.ndarray:
    """(n, dim) -> (n, dim) float32 unit rows (all-zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def _nearest_in_block(dist: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(block, n_reference) distances -> the k smallest per row: (block, k) int32 column
    indices and (block, k) float32 distances, closest first, ties to the lower index."""
    take = min(k + 1, dist.shape[1])  # one spare, so a tie at the k-th place resolves by index
    if take < dist.shape[1]:
        part = np.argpartition(dist, take - 1, axis=1)[:, :take]
    else:
        part = np.broadcast_to(np.arange(dist.shape[1]), dist.shape).copy()
    part_dist = np.take_along_axis(dist, part, axis=1)
    order = np.lexsort((part, part_dist), axis=1)[:, :k]
    return (np.take_along_axis(part, order, axis=1).astype(np.int32),
            np.maximum(np.take_along_axis(part_dist, order, axis=1), 0.0).astype(np.float32))


def cosine_knn(x: np.ndarray, k: int, block: int = BLOCK) -> tuple[np.ndarray, np.ndarray]:
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
        index[start:stop], distance[start:stop] = _nearest_in_block(dist, k)
    return index, distance


def cosine_knn_among(x: np.ndarray, queries: np.ndarray, reference: np.ndarray, k: int,
                     block: int = BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest ``reference`` clips of each ``queries`` clip (cosine; the two sets are
    disjoint, so no clip meets itself).

    Args:
        x: (n_clips, dim) vectors.
        queries: (n_queries,) clip ids; reference: (n_reference,) clip ids, k <= n_reference.
    Returns:
        (n_queries, k) int32 *positions in ``reference``* and (n_queries, k) float32 cosine
        distances, closest first, ties to the lower position.
    """
    ref_unit = normalise_rows(x[np.asarray(reference)])
    index = np.empty((len(queries), k), dtype=np.int32)
    distance = np.empty((len(queries), k), dtype=np.float32)
    for start in range(0, len(queries), block):
        rows = np.asarray(queries[start:start + block])
        dist = 1.0 - normalise_rows(x[rows]) @ ref_unit.T  # (block, n_reference)
        index[start:start + len(rows)], distance[start:start + len(rows)] = _nearest_in_block(dist, k)
    return index, distance

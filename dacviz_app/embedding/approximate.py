"""Approximate cosine nearest neighbours (FAISS's HNSW graph) and their recall against exact search.

Exact search (``neighbours.cosine_knn``) costs O(n_clips^2 * dim): 118-140 s for z at 100,000 clips
on two cores, about three hours at a million. An HNSW graph over the unit rows (inner product =
cosine) grows more slowly (measured N^1.44 against N^1.94 from 25k to 100k, docs/benchmarks.md) but
its distance computations are slower than the exact search's matrix products, so on two cores it
only wins beyond a few hundred thousand clips (hence ``AUTO_EXACT_UP_TO``). What it misses is
measured, not assumed: ``recall_at_k`` compares its table with exact search on a seeded sample of clips, and the
cache keeps that figure beside the table (``cache.neighbour_search``), which the app shows.

The graph is built with every core (OpenMP), so the order in which clips join it, and hence a
few of the neighbours, can differ between machines with other core counts; the recall figure is
recomputed with the table, so it always describes the table it sits beside.
"""
from __future__ import annotations

import numpy as np

from dacviz_app.embedding.neighbours import BLOCK, normalise_rows

METHODS = ("exact", "approximate")
AUTO_EXACT_UP_TO = 200_000  # clips: exact search by default up to here (z: ~8 min on two cores)
HNSW_M = 32                 # graph links per node
EF_CONSTRUCTION = 128       # candidates kept while building
EF_SEARCH = 128             # candidates kept while searching (at least 2 x the columns asked)
RECALL_K = 10
RECALL_SAMPLE = 2000


def choose_method(asked: str, n_clips: int, device: str) -> str:
    """``asked`` ('auto', 'exact' or 'approximate') -> 'exact' or 'approximate': auto is exact up
    to AUTO_EXACT_UP_TO clips, and on a GPU at any size (blocks of queries against all rows)."""
    if asked in METHODS:
        return asked
    if asked != "auto":
        raise ValueError(f"neighbour search must be auto, exact or approximate, not {asked!r}")
    return "exact" if n_clips <= AUTO_EXACT_UP_TO or device.startswith("cuda") else "approximate"


def search_key(method: str) -> dict:
    """What a table searched by ``method`` depends on beyond its vectors and k (the cache's keys):
    nothing for exact search (the keys of caches made before approximate search stay valid)."""
    if method == "exact":
        return {}
    return {"search": {"method": method, "M": HNSW_M, "efConstruction": EF_CONSTRUCTION,
                       "efSearch": EF_SEARCH, "recall_k": RECALL_K, "recall_sample": RECALL_SAMPLE}}


def describe_index(columns: int) -> str:
    """The index's name and settings, as the cache records them."""
    return (f"FAISS HNSW, M={HNSW_M}, efConstruction={EF_CONSTRUCTION}, "
            f"efSearch={search_breadth(columns)}, inner product of unit rows")


def search_breadth(columns: int) -> int:
    return max(EF_SEARCH, 2 * (columns + 1))


def approximate_cosine_knn(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """About the k nearest *other* clips of every clip, by cosine distance 1 - cos.

    Args:
        x: (n_clips, dim) vectors (memory-mapped is fine: read once, by blocks).
        k: neighbours per clip, 1 <= k <= n_clips - 1.
    Returns:
        index (n_clips, k) int32 and distance (n_clips, k) float32, closest first, ties to the
        lower clip; a row the graph found fewer than k others for is filled with its last one.
    """
    import faiss

    n = len(x)
    if not 1 <= k <= n - 1:
        raise ValueError(f"k={k} needs 1 <= k <= n_clips-1 = {n - 1}")
    graph = faiss.IndexHNSWFlat(int(x.shape[1]), HNSW_M, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = EF_CONSTRUCTION
    for start in range(0, n, 16 * BLOCK):
        graph.add(normalise_rows(x[start:start + 16 * BLOCK]))
    graph.hnsw.efSearch = search_breadth(k)
    index = np.empty((n, k), dtype=np.int32)
    distance = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, 16 * BLOCK):
        stop = min(start + 16 * BLOCK, n)
        similarity, found = graph.search(normalise_rows(x[start:stop]), k + 1)
        index[start:stop], distance[start:stop] = _others(found, 1.0 - similarity, np.arange(start, stop), k)
    return index, distance


def _others(found: np.ndarray, distance: np.ndarray, own: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, k + 1) search results -> (rows, k) without each row's own clip (and without FAISS's
    -1 for a place it could not fill), ordered by distance then clip."""
    distance = np.where((found == own[:, None]) | (found < 0), np.inf, np.maximum(distance, 0.0))
    order = np.lexsort((np.where(found < 0, np.iinfo(np.int64).max, found), distance), axis=1)[:, :k]
    index = np.take_along_axis(found, order, axis=1)
    kept = np.take_along_axis(distance, order, axis=1)
    missing = ~np.isfinite(kept)
    if missing.any():  # a row short of k others: repeat its last real neighbour
        last = np.maximum(np.isfinite(kept).sum(axis=1) - 1, 0)
        rows = np.nonzero(missing)[0]
        index[missing] = index[rows, last[rows]]
        kept[missing] = kept[rows, last[rows]]
    return index.astype(np.int32), kept.astype(np.float32)


def exact_rows(x: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """(len(rows), k) int64: the exact k nearest other clips of each of ``rows`` (cosine), ties to
    the lower clip, by blocks of queries against every clip (O(block * n_clips) memory)."""
    unit_all = normalise_rows(x)
    out = np.empty((len(rows), k), dtype=np.int64)
    step = max(1, (64 * BLOCK * BLOCK) // max(len(x), 1))  # ~256 MB of similarities per block
    for start in range(0, len(rows), step):
        chunk = rows[start:start + step]
        similarity = normalise_rows(x[chunk]) @ unit_all.T
        similarity[np.arange(len(chunk)), chunk] = -np.inf  # never your own neighbour
        take = min(k + 1, similarity.shape[1] - 1)
        candidates = np.argpartition(-similarity, take - 1, axis=1)[:, :take]
        near = 1.0 - np.take_along_axis(similarity, candidates, axis=1)
        order = np.lexsort((candidates, near), axis=1)[:, :k]
        out[start:start + len(chunk)] = np.take_along_axis(candidates, order, axis=1)
    return out


def recall_at_k(x: np.ndarray, index: np.ndarray, seed: int, k: int = RECALL_K,
                sample: int = RECALL_SAMPLE) -> dict:
    """How much of the exact k nearest the table ``index`` (n_clips, >= k) finds, on a seeded
    sample of clips: {"recall_at_k", "k", "sample", "low", "high"} (the mean share, and a 95 %
    interval over the sampled clips, normal approximation)."""
    n = len(index)
    k = min(k, index.shape[1])
    rows = np.sort(np.random.default_rng(seed).choice(n, size=min(sample, n), replace=False))
    exact = exact_rows(x, rows, k)
    found = np.asarray(index[rows, :k], dtype=np.int64)
    shares = np.array([len(set(a) & set(b)) / k for a, b in zip(found.tolist(), exact.tolist())])
    mean = float(shares.mean())
    half = 1.96 * float(shares.std(ddof=1)) / float(np.sqrt(len(shares))) if len(shares) > 1 else 0.0
    return {"recall_at_k": round(mean, 4), "k": int(k), "sample": int(len(rows)),
            "low": round(max(0.0, mean - half), 4), "high": round(min(1.0, mean + half), 4)}

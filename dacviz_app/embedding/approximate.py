"""Approximate cosine nearest neighbours (an inverted file searched by matrix products) and their
recall against exact search.

Exact search (``neighbours.cosine_knn``) costs O(n_clips^2 * dim): 118-140 s for z at 100,000 clips
on two cores, about three hours at a million. The inverted file cuts the pairs compared, and keeps
the exact search's matrix products (BLAS in torch) for those that are:
1. spherical k-means on a seeded sample puts ``list_count(n)`` (about sqrt(n)) centres on the unit
   sphere, and every clip joins the list of its nearest centre;
2. each list's clips are compared with every clip of the PROBE lists whose centres are nearest
   its own centre (its own list first): one matrix product per block of a list's clips, then the
   same top-k and ordering as the exact search (``neighbours.nearest_in_block``).
So each clip is compared with about PROBE / list_count(n) of all clips (3 % at a million, more
where k-means makes unequal lists) instead of all of them. A clip whose true neighbours sit in a
list not searched from its own list misses them: what that costs is measured, not assumed.
``recall_at_k`` compares the table with exact search on a seeded sample of clips; before the
whole search, the sample's clips are compared with every clip once, and what a search of PROBE
lists, then sqrt(2) times more at each step, would find for them is counted from those products
(``sample_shares``); the fewest lists whose recall reaches RECALL_TARGET are searched
(``enough_probe``: hard data costs time, not recall), and
the cache keeps that figure beside the table (``cache.neighbour_search``), which the app shows.
The lists depend only on the vectors and the seed, so the table is the same on every machine with
the same BLAS results.

(An HNSW graph, FAISS's ``IndexHNSWFlat`` M=32, was measured first and dropped: on two cores it
was 1.5-1.7x slower than exact search at 25-50k clips and its recall@10 fell to 0.88 at 100k on the
synthetic z: docs/benchmarks.md.)
"""
from __future__ import annotations

import math

import numpy as np

from dacviz_app.embedding.neighbours import BLOCK, nearest_in_block, normalise_rows

METHODS = ("exact", "approximate")
AUTO_EXACT_UP_TO = 200_000  # clips: exact search by default up to here (z: ~8 min on two cores)
PROBE = 32                  # lists searched from each list (its own and the nearest others)
KMEANS_SAMPLE_PER_LIST = 32  # clips of the k-means sample per list
KMEANS_ITERATIONS = 8
ROWS_PER_PASS = 16 * BLOCK  # clips normalised / assigned at once
RECALL_K = 10
RECALL_SAMPLE = 2000
RECALL_TARGET = 0.95        # the recall@10 the lists searched are widened to reach
SAMPLE_PRODUCTS = 2 ** 26   # distances held at once by near_sets (256 MB of float32)
TIE = 1e-5  # distances this close count as the same (recall_at_k)


def choose_method(asked: str, n_clips: int, device: str) -> str:
    """``asked`` ('auto', 'exact' or 'approximate') -> 'exact' or 'approximate': auto is exact up
    to AUTO_EXACT_UP_TO clips, and on a GPU at any size (blocks of queries against all rows)."""
    if asked in METHODS:
        return asked
    if asked != "auto":
        raise ValueError(f"neighbour search must be auto, exact or approximate, not {asked!r}")
    return "exact" if n_clips <= AUTO_EXACT_UP_TO or device.startswith("cuda") else "approximate"


def search_key(method: str, seed: int) -> dict:
    """What a table searched by ``method`` depends on beyond its vectors and k (the cache's keys):
    nothing for exact search (the keys of caches made before approximate search stay valid); the
    index's settings and the seed of its k-means and of the recall's sample for approximate search."""
    if method == "exact":
        return {}
    return {"search": {"method": method, "seed": seed, "index": "ivf", "lists": "sqrt(n)", "probe": PROBE,
                       "steps": "sqrt(2)", "target": RECALL_TARGET,
                       "kmeans": [KMEANS_SAMPLE_PER_LIST, KMEANS_ITERATIONS],
                       "recall_k": RECALL_K, "recall_sample": RECALL_SAMPLE}}


def list_count(n_clips: int) -> int:
    """How many lists the inverted file has for ``n_clips`` clips: round(sqrt(n)), at least 1."""
    return max(1, int(round(math.sqrt(n_clips))))


def describe_index(n_clips: int, probe: int) -> str:
    """The index's name and settings, as the cache records them (``probe``: the lists searched)."""
    lists = list_count(n_clips)
    return (f"inverted file: {lists} lists (spherical k-means, {KMEANS_ITERATIONS} rounds on "
            f"{min(n_clips, lists * KMEANS_SAMPLE_PER_LIST)} seeded clips), each list searched against "
            f"its {min(probe, lists)} nearest lists (the fewest of "
            f"{', '.join(map(str, probes_tried(4 * PROBE)[:3]))}, ... "
            f"reaching recall@{RECALL_K} {RECALL_TARGET} on the recall's sample), cosine of unit rows")


def approximate_cosine_knn(x: np.ndarray, k: int, seed: int, device: str = "cpu",
                           probe: int | None = None) -> tuple[np.ndarray, np.ndarray, int, dict]:
    """About the k nearest *other* clips of every clip, by cosine distance 1 - cos.

    Args:
        x: (n_clips, dim) vectors (memory-mapped is fine: read once, by blocks).
        k: neighbours per clip, 1 <= k <= n_clips - 1.
        seed: the k-means sample's and starting centres' seed, and the recall's sample's.
        device: where the products run ("cpu", "cuda").
        probe: lists searched from each list; None: the fewest of ``probes_tried``
            whose table reaches RECALL_TARGET on ``recall_at_k``'s sample (every list: exact).
    Returns:
        index (n_clips, k) int32 and distance (n_clips, k) float32, closest first, ties to the
        lower clip (exact for every clip when every list is searched); the lists searched; and
        the table's recall, as ``recall_at_k(x, index, seed)`` recomputes it from the cache (its
        sample's exact search done once, here, for the widening and the figure).
    """
    import torch

    n = len(x)
    if not 1 <= k <= n - 1:
        raise ValueError(f"k={k} needs 1 <= k <= n_clips-1 = {n - 1}")
    unit = np.empty(x.shape, dtype=np.float32)  # (n_clips, dim): the only full copy
    for start in range(0, n, ROWS_PER_PASS):
        unit[start:start + ROWS_PER_PASS] = normalise_rows(x[start:start + ROWS_PER_PASS])
    rows = torch.from_numpy(unit)
    centres = spherical_kmeans(unit, list_count(n), seed)
    members = lists_of(unit, centres)
    sample = recall_rows(n, seed)
    at = min(RECALL_K, k)
    _, exact_distance = exact_unit_rows(unit, sample, at)
    if probe is None:
        probe = enough_probe(unit, rows, centres, members, k, sample, exact_distance)
    probe = min(probe, len(members))
    index, distance = search_lists(unit, rows, members, lists_searched(centres, members, probe, k + 1), k, device)
    recall = summarise_recall(near_enough(unit, sample, index[sample, :at].astype(np.int64), exact_distance), at)
    return index, distance, probe, recall


def enough_probe(unit: np.ndarray, rows, centres: np.ndarray, members: list[np.ndarray], k: int,
                 sample: np.ndarray, exact_distance: np.ndarray) -> int:
    """The fewest lists to search (``probes_tried``, else every list) whose table's recall on
    ``recall_at_k``'s own ``sample`` (its exact distances ``exact_distance``) reaches
    RECALL_TARGET (``sample_shares``: every number tried from one pass over the sample)."""
    tried = probes_tried(len(members))
    if not tried:
        return len(members)
    shares = sample_shares(unit, rows, centres, members, k, sample, exact_distance, tried)
    for probe, level_shares in zip(tried, shares):
        if level_shares.mean() >= RECALL_TARGET:
            return probe
    return len(members)


def probes_tried(lists: int) -> list[int]:
    """The numbers of lists tried, below ``lists`` (every list is exact search): PROBE, then
    steps of sqrt(2) (32, 45, 64, 91, 128, ...): at 200k clips of the synthetic z, 32 lists found
    0.90 of the neighbours and 64 found 0.99 for twice the work, so doubling overshot."""
    out, step = [], 0
    while (probe := int(round(PROBE * 2 ** (step / 2)))) < lists:
        out.append(probe)
        step += 1
    return out


def sample_shares(unit: np.ndarray, rows, centres: np.ndarray, members: list[np.ndarray], k: int,
                  sample: np.ndarray, exact_distance: np.ndarray, tried: list[int]) -> np.ndarray:
    """(len(tried), len(sample)) each sampled clip's share of its exact neighbours found (as
    ``near_enough``) by a search of ``tried[i]`` lists from each list, without searching.

    A search of some lists returns a clip's nearest among the clips those lists hold, so of the
    clips as near as its exact k-th (``near_sets``) it finds all that those lists hold, up to k:
    the share is min(k, how many of them the lists reach) / k. (Searching the sample list by list
    for each number gathered every list's candidates for a few clips: 18 s of the 68 at 100k for
    32 lists; a masked top-k over the sample's products for each number cost as much again.)"""
    at = exact_distance.shape[1]
    list_of = np.empty(len(unit), dtype=np.int64)  # (n_clips,) each clip's list
    for i, clips in enumerate(members):
        list_of[clips] = i
    near_lists = [list_of[close] for close in near_sets(unit, rows, sample, exact_distance[:, at - 1] + TIE)]
    own_lists = list_of[sample]
    shares = np.empty((len(tried), len(sample)))
    for level, probe in enumerate(tried):
        reach = reach_matrix(lists_searched(centres, members, probe, k + 1))
        shares[level] = [min(at, int(reach[own, close].sum())) / at for own, close in zip(own_lists, near_lists)]
    return shares


def near_sets(unit: np.ndarray, rows, sample: np.ndarray, within: np.ndarray) -> list[np.ndarray]:
    """For each of ``sample``'s clips, the other clips at cosine distance <= ``within`` (its own
    bound, (len(sample),)): one pass of products with every clip, by blocks."""
    import torch

    out = []
    block_rows = max(1, SAMPLE_PRODUCTS // len(unit))
    for start in range(0, len(sample), block_rows):
        block = sample[start:start + block_rows]
        distance = 1.0 - torch.from_numpy(unit[block]) @ rows.T  # (len(block), n_clips)
        distance[torch.arange(len(block)), torch.from_numpy(block)] = math.inf  # never its own
        close = (distance <= torch.from_numpy(within[start:start + len(block)]).unsqueeze(1)).numpy()
        out.extend(np.flatnonzero(row) for row in close)
    return out


def reach_matrix(searched: list[np.ndarray]) -> np.ndarray:
    """(lists, lists) bool: [own, other] is True where ``searched[own]`` holds other."""
    reach = np.zeros((len(searched), len(searched)), dtype=bool)
    for own, lists in enumerate(searched):
        reach[own, lists] = True
    return reach


def search_lists(unit: np.ndarray, rows, members: list[np.ndarray], searched: list[np.ndarray], k: int,
                 device: str, only: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each list's clips against the clips of the lists ``searched`` from it: (n_clips, k) int32
    clips and float32 distances, or with ``only`` (sorted clips) the rows of those clips alone."""
    import torch

    out = len(unit) if only is None else len(only)
    index = np.empty((out, k), dtype=np.int32)
    distance = np.empty((out, k), dtype=np.float32)
    for own_list, queries in enumerate(members):
        if only is not None:
            queries = np.intersect1d(queries, only, assume_unique=True)
        if not len(queries):
            continue
        candidates = np.sort(np.concatenate([members[i] for i in searched[own_list]]))  # by clip: ties as exact
        reference = rows[torch.from_numpy(candidates)].to(device)  # (n_candidates, dim)
        for start in range(0, len(queries), BLOCK):
            block = queries[start:start + BLOCK]
            found, near = nearest_in_block(unit[block], reference, k, own=np.searchsorted(candidates, block))
            at = block if only is None else np.searchsorted(only, block)
            index[at], distance[at] = candidates[found], near
    return index, distance


def spherical_kmeans(unit: np.ndarray, lists: int, seed: int) -> np.ndarray:
    """(lists, dim) float32 unit centres: k-means by cosine on a seeded sample of ``unit``'s rows
    (KMEANS_SAMPLE_PER_LIST per list), started from ``lists`` of its rows; a list left empty in a
    round starts again from a sampled row."""
    import torch

    rng = np.random.default_rng(seed)
    n = len(unit)
    sample = torch.from_numpy(unit[np.sort(rng.choice(n, size=min(n, lists * KMEANS_SAMPLE_PER_LIST), replace=False))])
    centres = sample[torch.from_numpy(rng.choice(len(sample), size=lists, replace=False))].clone()
    for _ in range(KMEANS_ITERATIONS):
        nearest = torch.argmax(sample @ centres.T, dim=1)
        sums = torch.zeros_like(centres).index_add_(0, nearest, sample)
        empty = torch.bincount(nearest, minlength=lists) == 0
        if bool(empty.any()):
            sums[empty] = sample[torch.from_numpy(rng.choice(len(sample), size=int(empty.sum()), replace=False))]
        centres = torch.nn.functional.normalize(sums, dim=1)
    return centres.numpy()


def lists_of(unit: np.ndarray, centres: np.ndarray) -> list[np.ndarray]:
    """Each list's clips (int64, ascending): every clip joins the list of its nearest centre."""
    import torch

    nearest = np.empty(len(unit), dtype=np.int64)
    to_centres = torch.from_numpy(centres).T
    for start in range(0, len(unit), ROWS_PER_PASS):
        nearest[start:start + ROWS_PER_PASS] = torch.argmax(
            torch.from_numpy(unit[start:start + ROWS_PER_PASS]) @ to_centres, dim=1).numpy()
    order = np.argsort(nearest, kind="stable")
    bounds = np.searchsorted(nearest[order], np.arange(len(centres) + 1))
    return [order[bounds[i]:bounds[i + 1]] for i in range(len(centres))]


def lists_searched(centres: np.ndarray, members: list[np.ndarray], probe: int, least: int) -> list[np.ndarray]:
    """For each list, the lists its clips are compared with: the ``probe`` whose centres are
    nearest its own (itself first), and more in that order until they hold ``least`` clips."""
    ranked = np.argsort(-(centres @ centres.T), axis=1, kind="stable")
    sizes = np.array([len(m) for m in members])
    out = []
    for own, order in enumerate(ranked):
        order = np.concatenate([[own], order[order != own]])
        enough = int(np.searchsorted(np.cumsum(sizes[order]), least)) + 1
        out.append(order[:max(min(probe, len(order)), enough)])
    return out


def exact_rows(x: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The exact k nearest other clips of each of ``rows`` (cosine), ties to the lower clip, by
    blocks of queries against every clip (O(block * n_clips) memory): (len(rows), k) int64 clips
    and (len(rows), k) float32 distances 1 - cos, closest first."""
    return exact_unit_rows(normalise_rows(x), rows, k)


def exact_unit_rows(unit: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``exact_rows`` of vectors already unit rows (``normalise_rows``): no copy of them."""
    import torch

    reference = torch.from_numpy(unit)
    index = np.empty((len(rows), k), dtype=np.int64)
    distance = np.empty((len(rows), k), dtype=np.float32)
    for start in range(0, len(rows), BLOCK):
        chunk = np.asarray(rows[start:start + BLOCK])
        index[start:start + len(chunk)], distance[start:start + len(chunk)] = nearest_in_block(
            unit[chunk], reference, k, own=chunk)
    return index, distance


def recall_rows(n_clips: int, seed: int, sample: int = RECALL_SAMPLE) -> np.ndarray:
    """The clips the recall is measured on: ``sample`` of them (all, below), drawn with ``seed``, sorted."""
    return np.sort(np.random.default_rng(seed).choice(n_clips, size=min(sample, n_clips), replace=False))


def near_enough(x: np.ndarray, rows: np.ndarray, found: np.ndarray, exact_distance: np.ndarray) -> np.ndarray:
    """(len(rows),) the share of each row's ``found`` (len(rows), k) clips that are as near as its
    exact k-th (``exact_distance`` (len(rows), k), within TIE)."""
    unit_rows = normalise_rows(x[rows])
    found_distance = np.stack([1.0 - normalise_rows(x[found[i]]) @ unit_rows[i] for i in range(len(rows))])
    k = found.shape[1]
    return (found_distance <= exact_distance[:, k - 1:k] + TIE).sum(axis=1) / k


def recall_at_k(x: np.ndarray, index: np.ndarray, seed: int, k: int = RECALL_K,
                sample: int = RECALL_SAMPLE) -> dict:
    """How much of the exact k nearest the table ``index`` (n_clips, >= k) finds, on a seeded
    sample of clips: {"recall_at_k", "k", "sample", "low", "high"} (the mean share, and a 95 %
    interval over the sampled clips, normal approximation).

    A clip the table gives that is as near as the exact k-th (within TIE, a float's rounding)
    counts as found: where distances tie (integer codes: many clips at one distance) exact search
    keeps the lower ids, and another clip at the same distance is as right an answer."""
    k = min(k, index.shape[1])
    rows = recall_rows(len(index), seed, sample)
    _, exact_distance = exact_rows(x, rows, k)
    return summarise_recall(near_enough(x, rows, np.asarray(index[rows, :k], dtype=np.int64), exact_distance), k)


def summarise_recall(shares: np.ndarray, k: int) -> dict:
    """Each sampled clip's share found (len(sample),) -> {"recall_at_k", "k", "sample", "low",
    "high"}: the mean, and a 95 % interval over the sampled clips (normal approximation)."""
    mean = float(shares.mean())
    half = 1.96 * float(shares.std(ddof=1)) / float(np.sqrt(len(shares))) if len(shares) > 1 else 0.0
    return {"recall_at_k": round(mean, 4), "k": int(k), "sample": int(len(shares)),
            "low": round(max(0.0, mean - half), 4), "high": round(min(1.0, mean + half), 4)}

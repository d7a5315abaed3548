"""Approximate neighbour search (embedding/approximate.py): the inverted file's table against exact
search, the recall it reports against the recall of the whole table, the method chosen by size,
and the sidecar the app reads."""
from __future__ import annotations

import numpy as np
import pytest

from dacviz_app.embedding.approximate import (AUTO_EXACT_UP_TO, RECALL_TARGET, approximate_cosine_knn,
                                              choose_method, describe_index, exact_rows, list_count,
                                              recall_at_k)
from dacviz_app.embedding.neighbours import cosine_knn


def clustered(n: int, dim: int, spread: float, seed: int = 0) -> np.ndarray:
    """(n, dim) float32: 12 Gaussian clusters of width ``spread`` around unit-scale centres."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(12, dim)).astype(np.float32)
    return (centres[rng.integers(0, 12, n)] + spread * rng.normal(size=(n, dim))).astype(np.float32)


def whole_recall(found: np.ndarray, exact: np.ndarray, k: int = 10) -> float:
    return float(np.mean([len(set(a[:k]) & set(b[:k])) / k for a, b in zip(found.tolist(), exact.tolist())]))


def test_the_approximate_table_finds_the_exact_neighbours_and_says_how_well():
    x = clustered(4000, 96, 2.0)
    index, distance, _, _ = approximate_cosine_knn(x, 20, seed=0, probe=32)  # 32 of 63 lists (isotropic clusters: near-ties)
    exact, _ = cosine_knn(x, 20)
    assert index.shape == distance.shape == (4000, 20) and index.dtype == np.int32
    assert not (index == np.arange(4000)[:, None]).any()  # never its own neighbour
    assert (np.diff(distance, axis=1) >= 0).all()  # closest first
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    rows = np.arange(0, 4000, 97)
    true = 1.0 - np.einsum("rd,rkd->rk", unit[rows], unit[index[rows]])
    assert np.allclose(distance[rows], np.maximum(true, 0), atol=1e-5)  # the distances of those clips
    whole = whole_recall(index, exact)
    assert whole >= 0.95
    reported = recall_at_k(x, index, seed=3, sample=500)
    assert reported["k"] == 10 and reported["sample"] == 500
    assert abs(reported["recall_at_k"] - whole) <= 0.02  # the sample says what the whole table does


def test_probing_every_list_is_exact_search_and_fewer_lists_find_less():
    x = clustered(3000, 48, 3.0, seed=4)
    exact_index, exact_distance = cosine_knn(x, 15)
    every = list_count(len(x))
    index, distance, probe, _ = approximate_cosine_knn(x, 15, seed=1, probe=every)
    assert probe == every
    assert (index == exact_index).all() and np.allclose(distance, exact_distance, atol=1e-6)
    few = approximate_cosine_knn(x, 15, seed=1, probe=2)[0]
    assert whole_recall(few, exact_index) < whole_recall(approximate_cosine_knn(x, 15, seed=1, probe=12)[0],
                                                         exact_index) < 1.0
    again = approximate_cosine_knn(x, 15, seed=1, probe=2)[0]
    assert (again == few).all()  # the same seed, the same table
    assert recall_at_k(x, approximate_cosine_knn(x, 15, seed=1, probe=32)[0], seed=1)["recall_at_k"] < RECALL_TARGET
    widened, _, probe, recall = approximate_cosine_knn(x, 15, seed=1)  # so lists are added until the sample's recall is 0.95
    assert probe > 32 and recall_at_k(x, widened, seed=1)["recall_at_k"] >= RECALL_TARGET
    assert recall == recall_at_k(x, widened, seed=1)  # the figure it returns is the one the cache recomputes
    assert describe_index(len(x), probe).startswith("inverted file: 55 lists") and f"its {probe} nearest" in \
        describe_index(len(x), probe)
    tiny = clustered(40, 8, 1.0)
    assert approximate_cosine_knn(tiny, 39, seed=0, probe=1)[0].shape == (40, 39)  # lists widened to k + 1 clips


def test_the_recall_is_measured_not_assumed():
    x = clustered(1500, 32, 1.0, seed=1)
    exact, _ = cosine_knn(x, 10)
    assert recall_at_k(x, exact, seed=0)["recall_at_k"] == 1.0
    assert (exact_rows(x, np.arange(1500), 10)[0] == exact).mean() > 0.999  # the same ties, the same order
    wrong = np.random.default_rng(0).permutation(exact)  # each clip given another clip's neighbours
    shuffled = recall_at_k(x, wrong, seed=0)
    assert shuffled["recall_at_k"] < 0.3 and shuffled["high"] < 0.35
    half = exact.copy()
    half[:, 5:] = np.roll(exact[:, 5:], 1, axis=0)  # the last five of each row wrong
    assert recall_at_k(x, half, seed=0)["recall_at_k"] == pytest.approx(0.5, abs=0.05)


def test_auto_is_exact_where_it_is_affordable():
    assert choose_method("auto", AUTO_EXACT_UP_TO, "cpu") == "exact"
    assert choose_method("auto", AUTO_EXACT_UP_TO + 1, "cpu") == "approximate"
    assert choose_method("auto", 10 * AUTO_EXACT_UP_TO, "cuda") == "exact"
    assert choose_method("approximate", 100, "cpu") == "approximate"
    assert choose_method("exact", 10**7, "cpu") == "exact"
    with pytest.raises(ValueError, match="auto, exact or approximate"):
        choose_method("fast", 100, "cpu")


def test_the_search_is_in_the_keys_and_exact_keys_stay_as_they_were():
    from dacviz_app.precompute.inputs import digest, downstream_keys

    exact = downstream_keys({"z": "e"}, knn_k=10, seed=1, perplexity=30.0, depth_reps=[])
    approximate = downstream_keys({"z": "e"}, knn_k=10, seed=1, perplexity=30.0, depth_reps=[],
                                  search="approximate")
    assert exact["knn:z"] == digest({"embedding": "e", "k": 10})  # caches made before: still fresh
    changed = {key for key in exact if exact[key] != approximate[key]}
    assert changed == {"knn:z", "view:z:tsne2", "view:z:tsne3", "metrics:z", "probes:z", "geometry"}
    reseeded = downstream_keys({"z": "e"}, knn_k=10, seed=2, perplexity=30.0, depth_reps=[],
                               search="approximate")
    assert reseeded["knn:z"] != approximate["knn:z"]  # its lists and its recall's sample follow the seed
    assert downstream_keys({"z": "e"}, knn_k=10, seed=2, perplexity=30.0, depth_reps=[])["knn:z"] == exact["knn:z"]


def test_a_neighbour_as_near_as_the_exact_ones_counts_as_found():
    """Integer codes tie: many clips sit at one distance, exact search keeps the lowest ids, and
    another clip at that distance is as right an answer (the recall would otherwise call it wrong)."""
    x = np.repeat(np.eye(4, dtype=np.float32) + 0.1, 50, axis=0)  # 4 directions, 50 copies of each
    exact, _ = cosine_knn(x, 10)
    group = np.arange(200) // 50
    others = np.array([[j for j in range(50 * g + 49, 50 * g - 1, -1) if j != i][:10]
                       for i, g in enumerate(group)])  # the highest ids of its copies
    assert len(set(exact[0]) & set(others[0])) == 0  # none of the lowest ids exact search kept
    assert recall_at_k(x, others, seed=0, sample=100)["recall_at_k"] == 1.0
    wrong = (others + 50) % 200  # copies of another direction
    assert recall_at_k(x, wrong, seed=0, sample=100)["recall_at_k"] == 0.0


def test_the_numbers_of_lists_tried_on_the_sample_find_what_the_search_finds():
    """enough_probe reads each number of lists from one pass over the sample's products: those
    shares are the ones a search of that many lists finds for the sampled clips."""
    import torch

    from dacviz_app.embedding import approximate

    x = clustered(3000, 48, 3.0, seed=4)
    unit = approximate.normalise_rows(x)
    centres = approximate.spherical_kmeans(unit, approximate.list_count(len(x)), seed=1)
    members = approximate.lists_of(unit, centres)
    sample = approximate.recall_rows(len(x), seed=1, sample=400)
    _, exact_distance = approximate.exact_unit_rows(unit, sample, 10)
    tried = [2, 8, 32]
    shares = approximate.sample_shares(unit, torch.from_numpy(unit), centres, members, 15, sample, exact_distance,
                                       tried)
    for probe, level in zip(tried, shares):
        searched = approximate.lists_searched(centres, members, probe, 16)
        found, _ = approximate.search_lists(unit, torch.from_numpy(unit), members, searched, 15, "cpu", only=sample)
        assert np.allclose(level, approximate.near_enough(unit, sample, found[:, :10], exact_distance))
    assert shares[0].mean() < shares[1].mean() < shares[2].mean()  # more lists, more found

"""Neighbour search and t-SNE on small clustered data: exact neighbours, the table reused by
t-SNE, and the large-3D path (fit on a sample, place the rest)."""
from __future__ import annotations

import numpy as np
import pytest

from dacviz_app.embedding import projections
from dacviz_app.embedding.metrics import euclidean_knn_index, knn_vote_accuracy
from dacviz_app.embedding.neighbours import cosine_knn, cosine_knn_among


@pytest.fixture(scope="module")
def clusters() -> tuple[np.ndarray, np.ndarray]:
    """(600, 32) float32 vectors in 6 well-separated directions, and their (600,) labels."""
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((6, 32)) * 3
    labels = np.repeat(np.arange(6), 100)
    return (centres[labels] + rng.standard_normal((600, 32))).astype(np.float32), labels


def brute_cosine(queries: np.ndarray, reference: np.ndarray) -> np.ndarray:
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    r = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    return 1.0 - q.astype(np.float64) @ r.T.astype(np.float64)


def test_cosine_knn_is_the_exact_table(clusters):
    x, _ = clusters
    index, distance = cosine_knn(x, 20, block=128)  # several blocks
    full = brute_cosine(x, x)
    np.fill_diagonal(full, np.inf)
    expected = np.sort(full, axis=1)[:, :20]
    assert index.shape == (600, 20) and index.dtype == np.int32
    assert not (index == np.arange(600)[:, None]).any()
    assert np.allclose(distance, expected, atol=1e-5)
    assert np.allclose(np.take_along_axis(full, index.astype(np.int64), axis=1), expected, atol=1e-5)


def test_cosine_knn_among_searches_only_the_reference(clusters):
    x, _ = clusters
    queries, reference = np.arange(0, 600, 5), np.setdiff1d(np.arange(600), np.arange(0, 600, 5))
    position, distance = cosine_knn_among(x, queries, reference, 7, block=50)
    full = brute_cosine(x[queries], x[reference])
    assert np.allclose(distance, np.sort(full, axis=1)[:, :7], atol=1e-5)
    assert np.allclose(np.take_along_axis(full, position.astype(np.int64), axis=1), distance, atol=1e-5)


def test_tsne_from_a_given_table_equals_tsne_searching_itself(clusters):
    x, _ = clusters
    k = projections.tsne_neighbour_count(len(x))
    own, info = projections.tsne(x, 2, seed=7)
    given, _ = projections.tsne(x, 2, seed=7, neighbours=cosine_knn(x, k + 10))
    assert info["neighbours"] == f"exact, {k} per clip" and k == 90
    assert np.array_equal(own, given)


def test_large_3d_tsne_fits_a_sample_and_places_the_rest_near_their_cluster(clusters, monkeypatch):
    x, labels = clusters
    monkeypatch.setattr(projections, "MAX_3D_POINTS", 200)
    sample = projections.sample_3d(len(x), 5)
    coords, info = projections.tsne(x, 3, seed=5, sample=sample)
    assert coords.shape == (600, 3) and np.isfinite(coords).all()
    assert info["fit_sample"] == 200 and len(sample) == 200
    rest = np.setdiff1d(np.arange(600), sample)
    # every placed clip's nearest clips in the 3D map mostly share its label
    nearest = euclidean_knn_index(coords, 5)
    assert knn_vote_accuracy(nearest, labels, 5) > 0.9
    votes = labels[nearest[rest]]
    assert (votes == labels[rest][:, None]).mean() > 0.9


def test_nearest_sample_clips_are_exact_even_when_the_table_has_too_few(clusters):
    x, _ = clusters
    sample = np.sort(np.random.default_rng(0).choice(600, 150, replace=False))
    rest = np.setdiff1d(np.arange(600), sample)
    index, distance = cosine_knn(x, 12)  # 12 neighbours, ~3 of them sample clips: most rows short
    near, near_distance = projections.nearest_sample_clips(x, rest, sample, index[rest], distance[rest])
    full = brute_cosine(x[rest], x[sample])
    expected = np.sort(full, axis=1)[:, :projections.PLACE_K]
    assert near.shape == (len(rest), projections.PLACE_K) and (near >= 0).all()
    assert np.allclose(near_distance, expected, atol=1e-5)
    wide_index, wide_distance = cosine_knn(x, 200)  # every row has >= 10 sample clips among 200
    near_wide, _ = projections.nearest_sample_clips(x, rest, sample, wide_index[rest], wide_distance[rest])
    assert np.allclose(np.take_along_axis(full, near_wide.astype(np.int64), axis=1), expected, atol=1e-5)

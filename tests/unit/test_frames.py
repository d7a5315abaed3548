"""A clip frame by frame (``embedding.frames``): DTW against the textbook recurrence written out
cell by cell, frame latents against the quantizer's sum written out codebook by codebook, the
batched cosine search against the one-vector search query by voice uses. No DAC."""
from __future__ import annotations

import numpy as np
import pytest

from dacviz_app.embedding.frames import cosine_cost, decimate, dtw, dtw_distance, frame_latents
from dacviz_app.embedding.neighbours import nearest_to, nearest_to_many, normalise_rows


def textbook_dtw(cost: np.ndarray) -> float:
    n, m = cost.shape
    total = np.full((n + 1, m + 1), np.inf)
    total[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            total[i, j] = cost[i - 1, j - 1] + min(total[i - 1, j - 1], total[i - 1, j], total[i, j - 1])
    return float(total[n, m])


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (6, 1), (5, 9), (17, 11), (30, 30)])
def test_dtw_is_the_textbook_recurrence(shape):
    cost = np.random.default_rng(sum(shape)).random(shape)
    total, cells = dtw(cost)
    assert total == pytest.approx(textbook_dtw(cost), rel=1e-12)
    assert max(shape) <= cells <= sum(shape) - 1


def test_dtw_of_a_sequence_with_itself_is_zero_and_a_stretched_copy_is_found():
    rng = np.random.default_rng(0)
    word = rng.standard_normal((20, 16))
    assert dtw_distance(word, word) == pytest.approx(0.0, abs=1e-12)
    slow = np.repeat(word, 2, axis=0)  # the same word said twice as slowly
    other = rng.standard_normal((40, 16))
    assert dtw_distance(word, slow) == pytest.approx(0.0, abs=1e-12)
    assert dtw_distance(word, other) > 0.5


def test_cosine_cost_is_one_minus_cos_and_zero_frames_are_at_one():
    a = np.array([[1.0, 0.0], [0.0, 0.0]])
    b = np.array([[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0]])
    np.testing.assert_allclose(cosine_cost(a, b), [[0, 1, 2], [1, 1, 1]], atol=1e-12)


def test_frame_latents_sum_the_first_depth_codebooks():
    rng = np.random.default_rng(1)
    n_cb, size, cb_dim, latent = 4, 16, 3, 10
    tables = {"codebooks": rng.standard_normal((n_cb, size, cb_dim)).astype(np.float32),
              "out_weight": rng.standard_normal((n_cb, latent, cb_dim)).astype(np.float32),
              "out_bias": rng.standard_normal((n_cb, latent)).astype(np.float32)}
    codes = rng.integers(0, size, (7, n_cb)).astype(np.int16)
    for depth in (1, 2, 4):
        expected = np.zeros((7, latent))
        for t in range(7):
            for i in range(depth):
                expected[t] += tables["out_weight"][i] @ tables["codebooks"][i][codes[t, i]] + tables["out_bias"][i]
        np.testing.assert_allclose(frame_latents(tables, codes, depth), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError):
        frame_latents(tables, codes, 5)


def test_decimate_keeps_short_paths_whole_and_the_ends_of_long_ones():
    assert decimate(5, 300).tolist() == [0, 1, 2, 3, 4]
    kept = decimate(1500, 300)
    assert len(kept) == 300 and kept[0] == 0 and kept[-1] == 1499 and np.all(np.diff(kept) > 0)


def test_nearest_to_many_agrees_with_the_one_vector_search():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((500, 32)).astype(np.float32)
    frames = rng.standard_normal((9, 32)).astype(np.float32)
    ids, distance = nearest_to_many(normalise_rows(x), frames, 10)
    norms = np.linalg.norm(x, axis=1)
    for row, frame in enumerate(frames):
        one_ids, one_distance = nearest_to(x, norms, frame, 10)
        assert ids[row].tolist() == one_ids.tolist()
        np.testing.assert_allclose(distance[row], one_distance, atol=1e-5)

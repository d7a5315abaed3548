"""Probes on small synthetic sets with known answers: controlled k-NN sees the word behind a loud
speaker, the linear probe's interval sits above chance only when there is something to find,
confounded columns are flagged, CKA is 1 for the same representation, Jaccard 1 for the same table."""
from __future__ import annotations

import numpy as np
import pytest

from dacviz_app.embedding import probes
from dacviz_app.embedding.metrics import knn_vote_accuracy, nearest_others


@pytest.fixture(scope="module")
def crossed() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """4 speakers x 5 words x 2 takes: (40, 16) vectors = loud speaker axis + quiet word axis +
    noise, and the (40,) word and speaker codes. Cosine similarity: same speaker 9, same word 1."""
    rng = np.random.default_rng(0)
    speaker, word, _ = (a.ravel() for a in np.meshgrid(np.arange(4), np.arange(5), np.arange(2),
                                                        indexing="ij"))
    x = np.zeros((40, 16))
    x[np.arange(40), speaker] = 3.0
    x[np.arange(40), 4 + word] = 1.0
    return x + 0.05 * rng.standard_normal((40, 16)), word, speaker


def test_controlling_for_speaker_reveals_the_word(crossed):
    x, word, speaker = crossed
    table = nearest_others(x, 20, metric="cosine")  # 9 same-speaker clips, then 6 same-word ones
    plain = knn_vote_accuracy(table, word, 5)
    controlled = probes.controlled_knn_accuracy(table, word, speaker, k=5)
    assert plain < 0.5  # the neighbours are the same speaker saying other words
    assert controlled["accuracy"] == 1.0
    assert controlled["n_scored"] == 40 and controlled["n_short"] == 0 and controlled["k"] == 5
    assert controlled["chance"] == pytest.approx(6 / 30)  # 6 of the 30 other-speaker clips per word


def test_table_and_exact_variants_agree(crossed):
    x, word, speaker = crossed
    table = nearest_others(x, 25, metric="cosine")
    for column, control in ((word, speaker), (speaker, word)):
        for k in (1, 3, 5):
            assert probes.controlled_knn_accuracy(table, column, control, k) == \
                probes.controlled_knn_accuracy_exact(x, column, control, k)


def test_no_control_is_the_plain_knn_accuracy(crossed):
    x, word, _ = crossed
    table = nearest_others(x, 10, metric="cosine")
    every_clip_alone = np.arange(40)
    result = probes.controlled_knn_accuracy(table, word, every_clip_alone, 5)
    assert result["accuracy"] == knn_vote_accuracy(table, word, 5)
    assert result["chance"] == pytest.approx(8 / 39)  # 8 clips per word among the 39 others


def test_short_rows_and_rows_with_no_eligible_neighbour(crossed):
    x, word, speaker = crossed
    only_same_speaker = probes.controlled_knn_accuracy(nearest_others(x, 9, metric="cosine"), word, speaker)
    assert only_same_speaker == {"accuracy": None, "n_scored": 0, "n_short": 0, "k": 5, "chance": None}
    short = probes.controlled_knn_accuracy(nearest_others(x, 12, metric="cosine"), word, speaker)
    assert short["n_scored"] == 40 and short["n_short"] == 40  # 3 of the 5 wanted after 9 skipped
    assert short["accuracy"] == 1.0


def test_linear_probe_finds_separable_labels():
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(3), 40)
    x = rng.standard_normal((120, 8))
    x[np.arange(120), labels] += 6.0
    result = probes.linear_probe(x, labels, n_boot=500)
    assert result["accuracy"] >= 0.97 and result["ci_low"] > result["chance"] == pytest.approx(1 / 3)
    assert result["cv"] == "StratifiedKFold" and result["n_splits"] == 5 and result["n"] == 120
    assert result["interval"] == "bootstrap over clips, 95 %" and result["reason"] is None
    assert result["ci_low"] <= result["accuracy"] <= result["ci_high"]


def test_linear_probe_on_random_labels_stays_near_chance():
    rng = np.random.default_rng(2)
    x, labels = rng.standard_normal((200, 6)), rng.integers(0, 2, 200)
    result = probes.linear_probe(x, labels, n_boot=500)
    assert result["ci_low"] <= result["chance"] + 0.05 and abs(result["accuracy"] - 0.5) < 0.12


def test_linear_probe_holds_out_groups_and_samples(crossed):
    rng = np.random.default_rng(8)  # 6 speakers x 3 words x 5 takes, speakers drawn alike
    speaker, word = np.repeat(np.arange(6), 15), np.tile(np.repeat(np.arange(3), 5), 6)
    x = 4.0 * np.eye(8)[word] + rng.standard_normal((6, 8))[speaker] + 0.3 * rng.standard_normal((90, 8))
    held_out = probes.linear_probe(x, word, groups=speaker, n_boot=200)
    assert held_out["cv"] == "GroupKFold by control" and held_out["n_splits"] == 5
    assert held_out["accuracy"] >= 0.9  # the word reads the same on speakers it never saw
    x, word, _ = crossed
    sampled = probes.linear_probe(x, word, max_clips=20, n_boot=200)
    assert sampled["sample"] == 20 and sampled["n"] == 20 and sampled["n_splits"] == 4  # 4 per word


def test_linear_probe_by_group_can_fall_below_chance(crossed):
    x, _, speaker = crossed  # predicting the speaker with each speaker held out: never seen
    result = probes.linear_probe(x, speaker, groups=speaker, n_boot=200)
    assert result["accuracy"] == 0.0 < result["chance"] == 0.25


def test_linear_probe_explains_why_it_cannot_run():
    x = np.random.default_rng(3).standard_normal((10, 4))
    one_value = probes.linear_probe(x, np.zeros(10, dtype=int))
    assert one_value["accuracy"] is None and "one value" in one_value["reason"]
    single_clip = probes.linear_probe(x, np.array([0] * 9 + [1]))
    assert single_clip["accuracy"] is None and "single clip" in single_clip["reason"]


def test_stratified_sample_keeps_the_shares():
    codes = np.repeat([0, 1, 2], [600, 300, 100])
    picked = probes.stratified_sample(codes, 100, seed=4)
    assert len(np.unique(picked)) == 100 and list(np.bincount(codes[picked])) == [60, 30, 10]


def test_relabelled_copies_are_confounded():
    speaker = np.repeat(np.arange(3), 7)
    language = np.array([2, 0, 1])[speaker]
    agreement = probes.partition_agreement(speaker, language)
    assert agreement["ami"] == pytest.approx(1.0) and agreement["cramers_v"] == pytest.approx(1.0)
    assert probes.confounded(speaker, language)
    assert probes.confound_sentence("speaker", "language", speaker, language) == (
        "speaker and language are the same partition here (AMI 1.00, Cramér's V 1.00): "
        "3 values of speaker, 3 of language")


def test_crossed_columns_are_not_confounded(crossed):
    _, word, speaker = crossed
    agreement = probes.partition_agreement(word, speaker)
    assert agreement["cramers_v"] == pytest.approx(0.0, abs=1e-12)
    assert -0.2 < agreement["ami"] <= 0.0  # no shared information: at or below chance agreement
    assert not probes.confounded(word, speaker)
    sentence = probes.confound_sentence("word", "speaker", word, speaker)
    assert sentence.startswith("word and speaker are not confounded here")
    assert sentence.endswith("5 values of word, 4 of speaker")
    rng = np.random.default_rng(9)
    independent = probes.partition_agreement(rng.integers(0, 5, 5000), rng.integers(0, 4, 5000))
    assert abs(independent["ami"]) < 0.01 and independent["cramers_v"] < 0.05


def test_cka_is_one_for_the_same_representation_up_to_rotation_and_scale():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((50, 10))
    rotation, _ = np.linalg.qr(rng.standard_normal((10, 10)))
    assert probes.linear_cka(x, x) == pytest.approx(1.0)
    assert probes.linear_cka(x, 7.5 * x @ rotation) == pytest.approx(1.0)
    y = rng.standard_normal((50, 30))
    assert probes.linear_cka(x, y) == pytest.approx(probes.linear_cka(7.5 * x @ rotation, y))


@pytest.mark.parametrize("n, d1, d2", [(40, 100, 60), (200, 5, 8)])
def test_cka_gram_and_feature_forms_agree(n, d1, d2):
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((n, d1)), rng.standard_normal((n, d2))
    y[:, :3] += x[:, :3]  # something shared
    assert probes.linear_cka(x, y, form="gram") == pytest.approx(probes.linear_cka(x, y, form="feature"))


def test_cka_of_independent_data_is_small_and_the_matrix_is_symmetric():
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((2000, 4)), rng.standard_normal((2000, 6))
    assert probes.linear_cka(x, y) < 0.05
    matrix = probes.cka_matrix([x, y, 2 * x], max_clips=500)
    assert matrix.shape == (3, 3) and np.allclose(matrix, matrix.T)
    assert np.allclose(np.diag(matrix), 1.0) and matrix[0, 2] == pytest.approx(1.0) and matrix[0, 1] < 0.1


def test_jaccard_of_neighbour_tables():
    table = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])
    shifted = np.array([[1, 2, 4], [0, 2, 3], [0, 1, 3], [0, 1, 2]])  # row 0: 2 shared of 4
    assert probes.jaccard_consecutive([table, table, shifted], 3) == pytest.approx([1.0, (0.5 + 3) / 4])
    assert probes.jaccard_consecutive([table], 3) == []


def test_the_probes_step_on_the_smallest_collection_does_not_fail(tmp_path):
    """Five clips, four neighbours each (fewer than the vote's k = 5): the step still writes its
    rows, with k lowered as the metrics lower it and the impossible probes given a reason."""
    from dacviz_app.cache import CachePaths
    from dacviz_app.precompute.codec_measures import probe_rows

    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 16)).astype(np.float32)
    index = np.argsort(-(x @ x.T) + np.eye(5) * 1e9, axis=1)[:, :4]
    columns = {"label": ["a", "a", "b", "b", "c"], "speaker": ["s", "t", "s", "t", "s"]}
    rows = probe_rows(x, index, "z", columns, ["label", "speaker"], seed=0)
    assert len(rows) == 4 and all(r["knn"]["accuracy"] is not None for r in rows if r["control"] is None)
    assert any(r["probe"]["reason"] for r in rows)
    assert CachePaths(tmp_path).probes.name == "probes.json"

"""precompute.py end to end, with the real DAC architecture (untrained) on real WAV files: the
demo cache as the README builds it (its faults: test_precompute_faults.py)."""
from __future__ import annotations

import numpy as np
import pytest

from dacviz_app.cache import open_cache
from dacviz_app.embedding.spaces import VIEWS


def test_demo_cache_has_the_promised_shapes_and_says_untrained(demo_cache):
    out, stdout = demo_cache
    cache = open_cache(out)
    n = cache.n_clips
    assert n == 120 and cache.untrained and not cache.skipped
    dims = {"z": 1024, "codes_concat": 96, "codes_mean": 8, "mfcc": 80}
    for rep, dim in dims.items():
        assert cache.embedding(rep).shape == (n, dim)
        assert cache.embedding(rep).dtype == np.float32
        assert np.isfinite(cache.embedding(rep)).all()
        for view in VIEWS:
            assert cache.projection(rep, view.name).shape == (n, view.dim)
        index, distance = cache.neighbours(rep)
        assert index.shape == distance.shape == (n, 50)
        assert (np.diff(distance, axis=1) >= 0).all()  # closest first
        assert not (index == np.arange(n)[:, None]).any()  # never its own neighbour
    assert sorted(set(cache.clips["label"])) == sorted(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "yes", "no"])
    assert len(set(cache.clips["speaker"])) == 10
    assert "UNTRAINED" in stdout and "clips encoded : 120 of 120" in stdout
    assert "Davies-Bouldin" in stdout and "t-SNE 3D" in stdout
    import soundfile as sf
    manifest = cache.manifest
    assert manifest["model"]["weights"]["untrained"] is True
    assert manifest["model"]["sample_rate"] == 16000 and manifest["format_version"] == 1
    assert "--demo" in manifest["command"]
    assert not (out / "work").exists()
    # the codec lens: the default depths 1 2 4 8 stored (12 is z itself), decoded audio at the defaults
    assert cache.depths() == [(q, f"z_q{q}") for q in (1, 2, 4, 8)] + [(12, "z")]
    for q in (1, 2, 4, 8):
        assert cache.embedding(f"z_q{q}").shape == (n, 1024)
        assert cache.projection(f"z_q{q}", "tsne3").shape == (n, 3)
    assert cache.kbps("z_q4") == pytest.approx(2.0) and cache.kbps("z") == pytest.approx(6.0)
    # the device's default count of clips (12 on a CPU), evenly spread, decoded at every default depth
    from dacviz_app.precompute.cli import RECONSTRUCT_MAX_CLIPS
    from dacviz_app.precompute.encode_run import reconstructed_plan_indices

    expected = min(n, RECONSTRUCT_MAX_CLIPS[manifest["encode"]["device"]])
    assert cache.reconstruction_depths == [1, 2, 4, 8, 12] and cache.reconstructed_clips == expected
    decoded = [i for i in range(n) if cache.reconstruction_path(i, 1) is not None]
    assert decoded == list(reconstructed_plan_indices(n, expected))  # nothing skipped: clip id = plan index
    assert decoded[0] == 0 and decoded[-1] == n - 1
    for q in cache.reconstruction_depths:
        decoded_q = sf.info(str(cache.reconstruction_path(decoded[2], q)))
        assert decoded_q.samplerate == 16000 and abs(decoded_q.duration - cache.clips["duration_s"][decoded[2]]) < 1e-3
    counts = cache.code_counts()
    frames = sum(int(np.ceil(d * 16000 / 320 - 1e-9)) for d in cache.clips["duration_s"])
    assert counts.shape == (12, 1024) and abs(int(counts[0].sum()) - frames) <= n
    assert "z at q codebooks" in stdout
    assert f"decoder fidelity (median over {cache.reconstructed_clips} decoded clips" in stdout and "linear probe accuracy" in stdout
    # every clip is playable from the cache alone, at the model rate
    info = sf.info(str(cache.audio_path(0)))
    assert info.samplerate == 16000 and info.channels == 1
    assert abs(info.duration - cache.clips["duration_s"][0]) < 1e-3


def test_every_metric_recomputes_with_sklearn_from_the_cache(demo_cache):
    from sklearn.decomposition import PCA
    from sklearn.metrics import davies_bouldin_score, silhouette_score
    from sklearn.neighbors import NearestNeighbors

    cache = open_cache(demo_cache[0])
    k = cache.metrics["params"]["knn_accuracy_k"]
    n_reps = len(cache.representations)
    # DAC's 3 and its 4 default depths, MFCC, and the trained speaker encoder installed beside them
    assert n_reps == 4 + 4 + 1 and cache.metrics["params"]["columns"] == ["label", "speaker"]
    assert cache.representations[-1] == "resemblyzer" and cache.trained("resemblyzer")
    assert cache.encoders() == [("dac", False), ("mfcc", False), ("resemblyzer", True)]
    assert len(cache.metrics["rows"]) == n_reps * 5 * 2  # label and speaker: every space

    def loo_knn_accuracy(points, metric, labels):
        nn = NearestNeighbors(n_neighbors=k + 1, metric=metric, algorithm="brute").fit(points)
        dist, idx = nn.kneighbors(points)
        right = 0
        for row in range(len(points)):
            others = [j for j in idx[row] if j != row][:k]
            votes = list(labels[others])
            best = max(votes, key=lambda lab: (votes.count(lab), -votes.index(lab)))
            right += best == labels[row]
        return right / len(points)

    for row in cache.metrics["rows"]:
        rep, space = row["representation"], row["space"]
        labels = np.asarray(cache.clips[row["column"]])
        points = np.asarray(cache.embedding(rep) if space == "full" else cache.projection(rep, space),
                            dtype=np.float64)
        assert row["silhouette"] == pytest.approx(silhouette_score(points, labels), abs=1e-6)
        assert row["silhouette_cosine"] == pytest.approx(
            silhouette_score(points, labels, metric="cosine"), abs=1e-6)
        values, counts = np.unique(labels, return_counts=True)
        assert row["chance"] == pytest.approx(counts.max() / len(labels))
        assert row["davies_bouldin"] == pytest.approx(davies_bouldin_score(points, labels), rel=1e-6)
        metric = "cosine" if space == "full" else "euclidean"
        assert row["knn_accuracy"] == pytest.approx(loo_knn_accuracy(points, metric, labels), abs=1e-9), (rep, space)

    for rep in cache.representations:
        x = np.asarray(cache.embedding(rep), dtype=np.float64)
        ratio = PCA(n_components=2).fit(x).explained_variance_ratio_
        assert cache.projection_info[rep]["pca2"]["explained_variance_ratio"] == pytest.approx(ratio, rel=1e-5)
        nn = NearestNeighbors(n_neighbors=51, metric="cosine", algorithm="brute").fit(x)
        dist, idx = nn.kneighbors(x)
        index, distance = cache.neighbours(rep)
        np.testing.assert_allclose(distance, dist[:, 1:], atol=1e-5)
        # the same neighbours, allowing swaps between (near-)equal distances
        same = (index == idx[:, 1:]).mean()
        assert same > 0.99, (rep, same)


def test_batched_encode_equals_one_by_one(demo_wavs):
    """Clips of unequal length, batched with padding, give the one-at-a-time vectors
    to 1e-4 relative (measured: about 1e-7)."""
    from dacviz_app.precompute.audio import load_clip
    from dacviz_app.precompute.dac_encode import encode_batch, load_dac, resolve_weights

    files = sorted(demo_wavs.glob("*/*.wav"))[::15][:8]
    clips = [load_clip(f, 16000, 30).audio for f in files]
    assert len({len(c) for c in clips}) > 4  # really unequal lengths
    model = load_dac("16khz", resolve_weights("16khz", None, True, 42), "cpu")
    batched = encode_batch(model, clips, "cpu")
    for i, clip in enumerate(clips):
        alone = encode_batch(model, [clip], "cpu")
        for rep in ("z", "codes_concat", "codes_mean"):
            a, b = alone[rep][0], batched[rep][i]
            assert np.linalg.norm(a - b) <= 1e-4 * np.linalg.norm(a), (rep, i)


def test_depth_latents_are_codebook_prefixes_and_depth_n_is_z(demo_wavs):
    """The quantized latent of the first q codebooks, pooled like z: batched = alone, depth 12
    equals z, each level's code counts cover every real frame, and reconstructions have the
    clip's own length."""
    from dacviz_app.precompute.audio import load_clip
    from dacviz_app.precompute.dac_encode import depth_name, encode_batch, frame_count, load_dac, resolve_weights

    files = sorted(demo_wavs.glob("*/*.wav"))[::20][:6]
    clips = [load_clip(f, 16000, 30).audio for f in files]
    model = load_dac("16khz", resolve_weights("16khz", None, True, 42), "cpu")
    out = encode_batch(model, clips, "cpu", depths=(1, 4, 12))
    z = out["z"]
    assert np.allclose(out[depth_name(12)], z, rtol=1e-5, atol=1e-6 * np.abs(z).max())
    assert not np.allclose(out[depth_name(1)], z, rtol=1e-2)  # a prefix really is less
    for i, clip in enumerate(clips):
        alone = encode_batch(model, [clip], "cpu", depths=(4,))
        a, b = alone[depth_name(4)][0], out[depth_name(4)][i]
        assert np.linalg.norm(a - b) <= 1e-4 * np.linalg.norm(a)
    frames = sum(frame_count(len(c), 320) for c in clips)
    assert out["code_counts"].shape == (12, 1024) and (out["code_counts"].sum(1) == frames).all()
    # the stored codes give the same depths (pooled in float64) and decode back to each clip's length
    from dacviz_app.precompute.from_codes import decode_clips, pooled_depths

    codes = out["frame_codes"]
    offsets = np.concatenate([[0], np.cumsum([len(c) for c in codes])])
    pooled = pooled_depths(model, np.concatenate(codes), offsets, [1, 4])
    for q in (1, 4):
        assert np.allclose(pooled[q], out[depth_name(q)], rtol=1e-4, atol=1e-5 * np.abs(z).max())
    for depth in (1, 12):
        decoded = decode_clips(model, [codes[0], codes[3]], depth, [len(clips[0]), len(clips[3])])
        for audio, row in zip(decoded, (0, 3)):
            assert audio.shape == clips[row].shape and audio.dtype == np.float32



"""The synthetic large-cache tool writes a real cache, honestly labelled, that the app opens."""
from __future__ import annotations

import numpy as np

from dacviz_app.cache import open_cache
from dacviz_app.precompute.synthetic import build_synthetic_cache
from dacviz_app.viewer.app import create_app


def test_synthetic_cache_is_complete_fitted_and_labelled_synthetic(demo_cache, tmp_path):
    out = tmp_path / "synth"
    build_synthetic_cache(demo_cache[0], out, 400, seed=1, say=lambda _: None, depths=(4,))
    real, synth = open_cache(demo_cache[0]), open_cache(out)
    assert synth.synthetic and synth.n_clips == 400 and "synthetic" in synth.manifest["name"]
    # every representation but the depths not asked for (each depth costs its maps and measures)
    assert synth.representations == [r for r in real.representations if not r.startswith("z_q") or r == "z_q4"]
    for rep in synth.representations:
        assert synth.embedding(rep).shape == (400, real.embedding(rep).shape[1])
        # each label's synthetic mean is near the real mean of that label
        for label in ("zero", "yes"):
            r = np.asarray(real.embedding(rep))[np.asarray(real.clips["label"]) == label].mean(0)
            s = np.asarray(synth.embedding(rep))[np.asarray(synth.clips["label"]) == label].mean(0)
            spread = np.asarray(real.embedding(rep)).std(0).mean()
            assert np.abs(r - s).mean() < spread
    assert set(synth.clips["audio"]) <= {p.name for p in synth.paths.audio_dir.iterdir()}
    page = create_app(out).server.test_client().get("/_dash-layout").get_data(as_text=True)
    assert "SYNTHETIC COLLECTION" in page


def test_synthetic_cache_is_written_under_the_lock_and_finished_like_a_real_one(demo_cache, tmp_path):
    import pytest

    from dacviz_app.cache import DirectoryLock
    from dacviz_app.precompute.config import PrecomputeError

    out = tmp_path / "synth"
    with DirectoryLock(out, "another run"):
        with pytest.raises(PrecomputeError, match="another run"):
            build_synthetic_cache(demo_cache[0], out, 60, say=lambda _: None, depths=())
    build_synthetic_cache(demo_cache[0], out, 60, say=lambda _: None, depths=())
    cache = open_cache(out)
    assert not (out / "work").exists() and not (out / ".lock").exists()
    from dacviz_app.cache import COMPUTED_CLIP_COLUMNS
    from dacviz_app.embedding.spaces import VIEW_NAMES
    assert set(COMPUTED_CLIP_COLUMNS) <= set(cache.clips)
    assert cache.manifest["projections"] == list(VIEW_NAMES) and cache.sample_3d() is None


def test_an_approximate_table_keeps_its_recall_which_the_app_shows_and_anyone_can_recompute(demo_cache, tmp_path):
    from dacviz_app.embedding.approximate import recall_at_k
    from dacviz_app.viewer.panels import render_neighbours

    out = tmp_path / "synth"
    said = []
    build_synthetic_cache(demo_cache[0], out, 600, seed=2, say=said.append, depths=(), neighbours="approximate")
    cache = open_cache(out)
    assert any("approximate: recall@10" in line for line in said)  # the run says it, per representation
    for rep in cache.representations:
        search = cache.neighbour_search[rep]
        assert search["method"] == "approximate" and search["index"].startswith("inverted file: 24 lists")
        assert search["sample"] == 600 and search["recall_at_k"] >= 0.9
        index, _ = cache.neighbours(rep)
        assert recall_at_k(cache.embedding(rep), index, seed=cache.manifest["seed"]) == {
            key: search[key] for key in ("recall_at_k", "k", "sample", "low", "high")}
    lines = render_neighbours(cache, {"clip": 5, "cursor": -1}, "z", 10, ["label"])
    space = next(line for line in lines if getattr(line, "id", None) == "neighbour-space").children
    assert f"approximate search (inverted file): recall@10 {cache.neighbour_search['z']['recall_at_k']:.2f}" in space
    assert "on 600 sampled clips" in space
    exact = render_neighbours(open_cache(demo_cache[0]), {"clip": 5, "cursor": -1}, "z", 10, ["label"])
    assert "exact search" in next(line for line in exact if getattr(line, "id", None) == "neighbour-space").children

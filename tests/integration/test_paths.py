"""A clip as a path (``/path``, ``/paths``) on the demo cache built by the README's command: the
frame latents the viewer rebuilds in numpy are DAC's own (``quantizer.from_codes``), their mean is
the clip's stored point, PCA places them on the clip's own point, and every forged request is
refused like any other route's."""
from __future__ import annotations

import numpy as np
import pytest

from dacviz_app.cache import open_cache
from dacviz_app.embedding.frames import frame_latents


@pytest.fixture(scope="module")
def served(demo_cache):
    from dacviz_app.viewer.app import create_app

    cache = open_cache(demo_cache[0])
    return cache, create_app(demo_cache[0]).server.test_client()


def test_frame_latents_are_dacs_from_codes_and_average_to_the_stored_point(demo_cache):
    import torch

    from dacviz_app.precompute.dac_encode import WeightsChoice, load_dac, quantized_at_depth

    cache = open_cache(demo_cache[0])
    model = load_dac(cache.model["type"], WeightsChoice(untrained=True, seed=cache.model["weights"]["seed"]), "cpu")
    for clip in (0, 57, cache.n_clips - 1):
        codes = cache.frame_codes(clip)
        for q, rep in cache.depths():
            ours = frame_latents(cache.quantizer, codes, q)
            with torch.inference_mode():
                dacs = quantized_at_depth(model, torch.from_numpy(codes.astype(np.int64).T[None]), q)[0].T.numpy()
            np.testing.assert_allclose(ours, dacs, rtol=1e-4, atol=1e-4 * np.abs(dacs).max())
            np.testing.assert_allclose(ours.mean(axis=0), cache.embedding(rep)[clip],
                                       rtol=1e-3, atol=1e-4 * np.abs(dacs).max())


def test_a_path_is_drawn_in_every_view_and_pca_centres_it_on_the_clip(served):
    cache, client = served
    answer = client.get(f"/path/5?rep=z&v={cache.identity}")
    assert answer.status_code == 200, answer.json
    body = answer.json
    codes = cache.frame_codes(5)
    assert body["clip"] == 5 and body["n_frames"] == len(codes) and body["frames"] == list(range(len(codes)))
    assert body["frame_s"] == pytest.approx(cache.model["hop_length"] / cache.model["sample_rate"])
    assert body["untrained"] is True
    for view, placed in body["views"].items():
        xyz = np.asarray(placed["xyz"])
        assert xyz.shape == (len(codes), 2 if view.endswith("2") else 3) and np.all(np.isfinite(xyz))
        if view.startswith("pca"):
            np.testing.assert_allclose(xyz.mean(axis=0), cache.projection("z", view)[5], atol=1e-2)
            assert "exact" in placed["placed"]
        else:
            assert "nearest clips" in placed["placed"]
    assert "max-age" in answer.headers.get("Cache-Control", "")
    depth = client.get("/path/5?rep=z_q2").json
    assert depth["rep"] == "z_q2" and depth["views"]["pca2"]["xyz"] != body["views"]["pca2"]["xyz"]


def test_two_paths_compared_with_their_chance_level(served):
    cache, client = served
    labels = cache.clips["label"]
    same = next(i for i in range(1, cache.n_clips) if labels[i] == labels[0])
    body = client.get(f"/paths/0/{same}?rep=z").json
    assert body["first"] == 0 and body["second"] == same and 0 <= body["dtw"] <= 2
    assert body["reference"]["clips"] >= 8 and 0 <= body["reference"]["closer"] <= body["reference"]["clips"]
    assert "cosine" in body["frame_distance"] and "DTW" not in body["frame_distance"]
    assert client.get("/paths/3/3?rep=z").json["dtw"] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("url, status", [
    ("/path/999999?rep=z", 404), ("/path/-1?rep=z", 404), ("/path/1", 400), ("/path/1?rep=nope", 400),
    ("/path/1?rep=codes_concat", 409), ("/path/1?rep=resemblyzer", 409), ("/path/1?rep=mfcc", 503),
    ("/paths/1/2?rep=codes_mean", 409), ("/path/1/2?rep=z", 404),
    ("/paths/1?rep=z", 404), ("/paths/1/999999?rep=z", 404), ("/pathx/1?rep=z", 200),
])
def test_forged_path_requests_are_refused(served, url, status):
    _cache, client = served
    answer = client.get(url)
    if status == 200:  # not our prefix: Dash's page, as for any unknown path
        assert answer.status_code in (200, 404)
        return
    assert answer.status_code == status
    if status == 409:
        assert "no path" in answer.json["error"]
    if status == 503:  # MFCC's frames come from the encoder service, which this app was not given
        assert "query encoder" in answer.json["error"]


def test_a_click_gets_its_path_with_its_neighbours_in_one_answer(served):
    """``/clip-at?highlight=1&path=1`` (what a click asks): the clip's path comes with its early
    highlight, the very answer /path gives; a representation without a path sends none."""
    cache, client = served
    key = '{"colour": "label", "compare": null, "filter": []}'
    answer = client.get("/clip-at/tsne2/0/1", query_string={"key": key, "rep": "z", "highlight": "1", "path": "1"}).json
    assert answer["path"] == client.get(f"/path/{answer['clip']}?rep=z").json
    plain = client.get("/clip-at/tsne2/0/1", query_string={"key": key, "rep": "codes_concat", "highlight": "1",
                                                          "path": "1"}).json
    assert "path" not in plain and plain["highlight"]

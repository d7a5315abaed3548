"""Damaged caches the app must refuse at start, with one line naming the file and the fix
(hardening round three, issue 24 items 8 and 9): a manifest whose keys are missing or of the
wrong type, arrays of the wrong dtype or out of range, JSON sidecars of the wrong shape.
No DAC: the cache is written by the cache module's own writers. Each test failed before its
fix (a 15-18 line traceback at start, or a cache that opened and then failed on every click)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT
from dacviz_app import cache as cache_format
from dacviz_app.cache import CacheError, CachePaths, open_cache
from dacviz_app.embedding.spaces import FULL_SPACE, VIEWS

N_CLIPS, KNN_K = 12, 5
REPRESENTATIONS = {"z": 8, "mfcc": 4}


def write_small_cache(root: Path) -> Path:
    """A complete cache of N_CLIPS random clips (three labels) in REPRESENTATIONS, written the
    way precompute writes one (``cache.write_*``, then ``cache.finish``)."""
    paths = CachePaths(root)
    rng = np.random.default_rng(0)
    for rep, dim in REPRESENTATIONS.items():
        x = rng.standard_normal((N_CLIPS, dim)).astype(np.float32)
        unit = x / np.linalg.norm(x, axis=1, keepdims=True)
        distance = 1.0 - unit @ unit.T
        np.fill_diagonal(distance, np.inf)
        index = np.argsort(distance, axis=1)[:, :KNN_K]
        cache_format.write_embedding(paths, rep, x)
        cache_format.write_neighbours(paths, rep, index,
                                      np.take_along_axis(distance, index, 1).clip(0, 2), {"method": "exact"})
        for view in VIEWS:
            info = ({"method": "pca", "explained_variance": 0.5} if view.method == "pca"
                    else {"method": "tsne", "perplexity": 4.0})
            cache_format.write_projection(paths, rep, view.name, x[:, :view.dim], info)
    labels = ["a", "b", "c"] * (N_CLIPS // 3)
    cache_format.write_clips(paths, {
        "id": list(range(N_CLIPS)), "label": labels, "speaker": [""] * N_CLIPS,
        "source": [f"{i}.wav" for i in range(N_CLIPS)], "duration_s": [1.0] * N_CLIPS,
        "audio": [paths.audio_name(i) for i in range(N_CLIPS)]})
    cache_format.write_skipped(paths, [])
    cache_format.write_metrics(paths, {"knn_accuracy_k": KNN_K}, rows=[
        {"representation": rep, "space": FULL_SPACE, "column": "label", "dim": dim,
         "silhouette": 0.1, "davies_bouldin": 1.0, "knn_accuracy": 0.5}
        for rep, dim in REPRESENTATIONS.items()])
    cache_format.finish(paths, cache_format.make_manifest(
        name="small", command="test", source="", synthetic=True, plan_id="test", model_type="16khz",
        weights={"untrained": True, "seed": 0, "path": None, "sha256": None}, n_clips=N_CLIPS,
        n_skipped=0, knn_k=KNN_K, seed=0, sample_3d=None,
        representations={rep: {"dim": dim, "title": rep, "description": rep}
                         for rep, dim in REPRESENTATIONS.items()}))
    return root


@pytest.fixture
def small_cache(tmp_path) -> Path:
    return write_small_cache(tmp_path / "cache")


def edit_json(path: Path, change) -> None:
    """Rewrite the JSON file at ``path`` as ``change(its value)`` returns it."""
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


def without(mapping: dict, key: str) -> dict:
    return {k: v for k, v in mapping.items() if k != key}


def refusal(cache: Path) -> str:
    """The app started on ``cache`` as a user starts it; asserts that it stops at once with
    exit code 2 and one line, no traceback. Returns that line."""
    proc = subprocess.run([sys.executable, "-m", "dacviz_app", "--cache", str(cache), "--port", "1"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    return proc.stderr.strip()


def test_the_small_cache_opens(small_cache):
    cache = open_cache(small_cache)
    assert cache.n_clips == N_CLIPS and cache.representations == list(REPRESENTATIONS)
    assert cache.skipped == [] and cache.n_skipped == 0


# ----------------------------------------------------------------------------- 8: manifests
@pytest.mark.parametrize("damage, change, says", [
    ("knn_k missing", lambda m: without(m, "knn_k"), '"knn_k" is missing (expected a whole number >= 1)'),
    ("n_clips as text", lambda m: {**m, "n_clips": str(m["n_clips"])},
     '"n_clips" is the text "12", expected a whole number >= 1'),
    ("model missing", lambda m: without(m, "model"), '"model" is missing (expected an object)'),
    ("a representation without dim",
     lambda m: {**m, "representations": {**m["representations"],
                                         "z": without(m["representations"]["z"], "dim")}},
     '"representations.z.dim" is missing'),
    ("representations as a list", lambda m: {**m, "representations": list(m["representations"])},
     '"representations" is a list of 2, expected a non-empty object'),
    ("model type unknown", lambda m: {**m, "model": {**m["model"], "type": 16}}, '"model.type" is 16'),
    ("a representation named as a path",
     lambda m: {**m, "representations": {"../../z": m["representations"]["z"]}},
     '"representations" has the name "../../z", expected a plain file name'),
])
def test_a_damaged_manifest_stops_the_app_with_one_line(small_cache, damage, change, says):
    edit_json(small_cache / "manifest.json", change)
    with pytest.raises(CacheError, match="manifest.json"):
        open_cache(small_cache)
    line = refusal(small_cache)
    assert f"{small_cache / 'manifest.json'}: {says}" in line, line
    assert "rebuild it with precompute.py" in line


# ----------------------------------------------------------------------------- 9: arrays and sidecars
def damage_array(name: str, values) -> callable:
    def change(root: Path) -> None:
        path = root / "arrays" / "z" / f"{name}.npy"
        np.save(path, values(np.load(path)))
    return change


def set_first(value):
    def values(array):
        array = array.copy()
        array[0, 0] = value
        return array
    return values


@pytest.mark.parametrize("file, damage, says", [
    ("arrays/z/knn_index.npy", damage_array("knn_index", set_first(10**6)),
     "clip ids from 0 to 1000000, expected 0 to 11 (12 clips)"),
    ("arrays/z/knn_index.npy", damage_array("knn_index", lambda a: a.astype(np.float32)),
     "dtype float32, expected int32 clip ids"),
    ("arrays/z/knn_index.npy", damage_array("knn_index", set_first(-1)), "clip ids from -1 to"),
    ("arrays/z/knn_distance.npy", damage_array("knn_distance", set_first(np.nan)), "not finite"),
    ("arrays/z/knn_distance.npy", damage_array("knn_distance", set_first(7.0)),
     "cosine distances from 0"),
    ("arrays/z/tsne2.npy", damage_array("tsne2", set_first(np.inf)), "not finite"),
    ("arrays/z/embedding.npy", damage_array("embedding", lambda a: a.astype(np.int32)),
     "dtype int32, expected float32"),
    ("arrays/z/pca2.json", lambda root: (root / "arrays/z/pca2.json").write_text("{}"),
     '"explained_variance" is missing (expected a finite number)'),
    ("arrays/z/tsne3.json", lambda root: (root / "arrays/z/tsne3.json").write_text('{"perplexity": "30"}'),
     '"perplexity" is the text "30"'),
    ("metrics.json", lambda root: (root / "metrics.json").write_text("[]"),
     "the file is a list of 0, expected an object"),
    ("metrics.json", lambda root: edit_json(root / "metrics.json", lambda m: {**m, "rows": [{}]}),
     '"rows[0].representation" is missing'),
    ("skipped.json", lambda root: (root / "skipped.json").write_text('{"a": 1}'), '"n_skipped" is missing'),
    ("clips.json", lambda root: edit_json(root / "clips.json", lambda c: {
        "columns": {**c["columns"], "label": "a" * N_CLIPS}}), 'column "label" is the text'),
])
def test_a_damaged_array_or_sidecar_stops_the_app_with_one_line(small_cache, file, damage, says):
    damage(small_cache)
    with pytest.raises(CacheError, match=Path(file).name):
        open_cache(small_cache)
    line = refusal(small_cache)
    assert line.startswith(f"dacviz: {small_cache / file}: ") and says in line, line
    assert "rebuild it with precompute.py" in line



# ----------------------------------------------------------------------------- 14: many skipped clips
def test_many_skipped_clips_are_grouped_in_bounded_memory(small_cache):
    """30,000 skipped clips: skipped.json groups them by reason (a few KB; before: the list
    itself, ~4 MB, built in memory first), every one is in skipped_all.jsonl.gz, and the
    writer holds a bounded number of them, not all."""
    import gzip
    import tracemalloc

    def entries():
        for i in range(30_000):
            reason = ("cannot open file: No such file or directory" if i % 4 else
                      "too short: 0.010 s < 0.1 s")
            yield {"source": f"/clips/{i:06d}.wav", "label": "a", "reason": reason}

    paths = CachePaths(small_cache)
    tracemalloc.start()
    counts = cache_format.write_skipped(paths, entries())
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert counts == {"cannot open file": 22_500, "too short": 7_500}
    assert peak < 2 * 2**20, f"{peak / 2**20:.1f} MB"
    assert paths.skipped.stat().st_size < 5_000
    with gzip.open(paths.skipped_all, "rt") as lines:
        assert sum(1 for _ in lines) == 30_000
    cache = open_cache(small_cache)
    assert cache.n_skipped == 30_000 and cache.skipped_reasons == counts
    assert [e["source"] for e in cache.skipped][:2] == ["/clips/000001.wav", "/clips/000002.wav"]
    cache_format.write_skipped(paths, list(entries())[:3])  # few again: the list, nothing beside
    assert not paths.skipped_all.exists() and len(open_cache(small_cache).skipped) == 3

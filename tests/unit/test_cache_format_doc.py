"""docs/cache-format.md is the one written copy of the cache format: every key and every file the
cache's own writers write must be named there (in a code span or a code block), and so must every
key the reader checks at open. No DAC, no subprocess: a small cache is written through the cache
module's writers (as tests/test_damaged_cache.py does), with the records precompute hands them
built here with the keys precompute gives them (their producers need torch or scikit-learn)."""
from __future__ import annotations

import gzip
import io
import json
import re
import wave
from pathlib import Path

import numpy as np
import pytest

from dacviz_app import cache as cache_format
from dacviz_app.cache import CachePaths, DirectoryLock, open_cache
from dacviz_app.cache.checks import (  # what the reader checks in each JSON file at open
    AGREEMENT_FIELDS, MANIFEST_FIELDS, METRIC_ROW_FIELDS, METRICS_FIELDS, METRICS_PARAMS_FIELDS,
    MODEL_FIELDS, PROJECTION_INFO_FIELDS, RECONSTRUCTIONS_FIELDS, REPRESENTATION_FIELDS,
    SAMPLE_3D_FIELDS, SKIPPED_FIELDS, SKIPPED_GROUP_FIELDS, TRUST_ROW_FIELDS, WEIGHTS_FIELDS)
from dacviz_app.precompute.encoders import Encoder
from dacviz_app.cache.representations import describe
from dacviz_app.embedding.spaces import FULL_SPACE, VIEWS

DOC = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file()) \
    / "docs" / "cache-format.md"
N_CLIPS, KNN_K, SEED = 12, 5, 42
SAMPLE_3D = np.arange(0, N_CLIPS, 2)  # a 3D sample, as a cache above 20,000 clips records one
DEPTH = 4  # one stored codebook depth, also decoded to audio


class SpeakerEncoder(Encoder):
    """An encoder beside DAC, for its manifest entry (``Encoder.describe``)."""

    name, sample_rate, dim, trained = "speaker", 16000, 6, True
    title, description = "speaker (6-D)", "a stand-in for an encoder beside DAC"

    def weights_record(self) -> dict:  # the keys every encoder's record has
        return {"source": "test weights", "sha256": "0" * 64}


def wav(n_samples: int = 160) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(16000)
        handle.writeframes(b"\0\0" * n_samples)
    return out.getvalue()


def projection_info(view, n_clips: int) -> dict:
    """A view's sidecar as precompute writes it (pipeline ``project``, projections ``tsne``)."""
    if view.method == "pca":
        return {"method": "pca", "explained_variance_ratio": [0.3] * view.dim,
                "explained_variance": 0.3 * view.dim, "seed": SEED}
    info = {"method": "tsne", "perplexity": 3.0, "metric": "cosine", "seed": SEED, "gradient": "bh",
            "neighbours": "exact, 9 per clip", "library": "openTSNE"}
    if view.dim == 3:  # fitted on the 3D sample, the other clips placed
        info.update({"fit_sample": len(SAMPLE_3D), "fit_sample_seed": SEED,
                     "placed": "other clips at the inverse-distance-weighted mean of their 10 "
                               "nearest sample clips (cosine, exact)"})
    return info


def write_everything(paths: CachePaths, representations: dict[str, dict]) -> None:
    """Every file a precompute run writes before its manifest, through the cache's writers."""
    rng = np.random.default_rng(0)
    plan = {"plan_id": "test", "clips": [[f"{i}.wav", "a", "", [["gender", "f"]], 100, 1]
                                         for i in range(N_CLIPS)],
            "model_type": "16khz", "weights": {"untrained": True, "path": None, "sha256": None,
                                               "seed": SEED},
            "device": "cpu", "chunk_size": 256, "batch_size": 8, "batch_seconds": 16.0,
            "precision": "bf16", "compile": False, "max_seconds": 30.0, "seed": SEED,
            "knn_k": KNN_K, "format_version": cache_format.FORMAT_VERSION, "depths": [DEPTH],
            "reconstruct": [DEPTH], "reconstruct_max_clips": 1000,
            "encoders": {"speaker": {"spec": {"name": "speaker", "path": None, "layer": None},
                                     "sha256": "0" * 64}}}
    cache_format.write_plan(paths, plan)
    cache_format.atomic_save_npz(paths.chunk(0), plan_index=np.arange(N_CLIPS))
    names = [paths.audio_name(i) for i in range(N_CLIPS)]
    for i, name in enumerate(names):
        cache_format.atomic_write_bytes(paths.audio(name), wav())
        if i < 2:
            cache_format.atomic_write_bytes(paths.reconstruction(DEPTH, name), wav())
    # more than SKIPPED_LISTED skipped clips: the grouped skipped.json and skipped_all.jsonl.gz
    cache_format.write_skipped(paths, ({"source": f"bad/{i}.wav", "label": "a",
                                        "reason": "too short: 0.01 s"}
                                       for i in range(cache_format.SKIPPED_LISTED + 1)))
    cache_format.write_code_counts(paths, np.ones((12, 1024), np.int64))
    cache_format.write_frame_codes(paths, np.zeros((N_CLIPS, 12), np.int16), np.arange(N_CLIPS + 1))
    cache_format.write_quantizer(paths, np.zeros((12, 1024, 8), np.float32),
                                 np.zeros((12, 1024, 8), np.float32), np.zeros((12, 1024), np.float32))
    computed = {"id": list(range(N_CLIPS)), "label": ["a", "b", "c"] * (N_CLIPS // 3),
                "speaker": ["s1", "s2"] * (N_CLIPS // 2), "source": [f"{i}.wav" for i in range(N_CLIPS)],
                "duration_s": [0.5] * N_CLIPS, "audio": names, "original_rate": [16000] * N_CLIPS,
                "channels": [1] * N_CLIPS}
    assert set(computed) == set(cache_format.COMPUTED_CLIP_COLUMNS)
    columns, renamed = cache_format.clip_columns(computed, {"gender": ["f", "m"] * (N_CLIPS // 2),
                                                            "duration_s": ["x"] * N_CLIPS})
    assert renamed == {"duration_s": "csv_duration_s"}
    cache_format.write_clips(paths, columns)
    cache_format.write_precision_reference(paths, np.arange(4), rng.standard_normal((4, 1024)))
    cache_format.write_sample_3d(paths, SAMPLE_3D)
    for rep, entry in representations.items():
        x = rng.standard_normal((N_CLIPS, entry["dim"])).astype(np.float32)
        unit = x / np.linalg.norm(x, axis=1, keepdims=True)
        distance = 1.0 - unit @ unit.T
        np.fill_diagonal(distance, np.inf)
        index = np.argsort(distance, axis=1)
        cache_format.write_embedding(paths, rep, x)
        cache_format.atomic_save_npy(paths.work_table(rep, "knn_index"), index[:, :9])
        cache_format.atomic_save_npy(paths.work_table(rep, "knn_distance"),
                                     np.take_along_axis(distance, index[:, :9], 1))
        cache_format.write_neighbours(paths, rep, index[:, :KNN_K],
                                      np.take_along_axis(distance, index[:, :KNN_K], 1).clip(0, 2),
                                      {"method": "exact"})
        for view in VIEWS:
            if view.method == "pca":
                cache_format.write_pca_basis(paths, rep, view.name, {
                    "mean": x.mean(axis=0), "components": np.eye(view.dim, entry["dim"])})
            cache_format.write_projection(paths, rep, view.name, x[:, :view.dim],
                                          projection_info(view, N_CLIPS))
    scores = {"silhouette": 0.1, "silhouette_cosine": 0.2, "davies_bouldin": 1.0,  # metrics
              "knn_accuracy": 0.5, "chance": 1 / 3, "silhouette_sample": None}  # cluster_metrics
    rows = [{"representation": rep, "space": space, "column": column,
             "dim": entry["dim"] if space == FULL_SPACE else int(space[-1]), **scores}
            for column in ("label", "speaker", "gender") for rep, entry in representations.items()
            for space in (FULL_SPACE, *(v.name for v in VIEWS))]
    trust = [{"representation": rep, "view": view.name, "trustworthiness": 0.9, "continuity": 0.8,
              "k": 5, "n": N_CLIPS} for rep in representations for view in VIEWS]  # trust_scores
    params = {"silhouette": "sklearn silhouette_score, euclidean",  # pipeline metrics_all
              "silhouette_cosine": "sklearn silhouette_score, metric='cosine'", "chance": "…",
              "silhouette_sample_above": 10_000, "seed": SEED,
              "davies_bouldin": "sklearn davies_bouldin_score", "knn_accuracy_k": KNN_K,
              "knn_accuracy": "…", "columns": ["label", "speaker", "gender"], "trust": "…",
              "trust_k": 10, "trust_sample_above": 5_000}
    cache_format.write_metrics(paths, params, rows, trust)
    # what the codec keeps: the real producers, on these arrays and WAVs (small: a few seconds)
    from dacviz_app.precompute.codec_measures import codec_measures_all
    from dacviz_app.precompute.fidelity import fidelity_all

    embeddings = {rep: np.load(paths.array(rep, "embedding")) for rep in representations}
    depth_reps = [r for r, e in representations.items() if e.get("depth")]
    codec_measures_all(embeddings, columns, ["label", "speaker", "gender"], depth_reps, paths, SEED, KNN_K,
                       say=lambda _: None)
    fidelity_all(paths, names, [DEPTH], dnsmos_clips=1, say=lambda _: None)


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict:
    """The cache, and the files in its folder while the run held it (before ``finish``)."""
    paths = CachePaths(tmp_path_factory.mktemp("doc") / "cache")
    representations = {**describe("16khz", (DEPTH,), untrained=True),
                       "speaker": SpeakerEncoder().describe()}
    with DirectoryLock(paths.root, command="test"):
        write_everything(paths, representations)
        during = sorted(p for p in paths.root.rglob("*") if p.is_file())
        encode = {"device": "cpu", "device_name": "a CPU", "precision": "bf16",  # encode_record
                  "compile": False, "torch": "2.11", "batch_size": 8, "batch_seconds": 16.0,
                  "agreement": {"n": 4, "k": 3, "max_relative_error": 0.1,  # precision.agreement
                                "mean_relative_error": 0.05, "knn_agreement": 0.9, "seed": SEED}}
        cache_format.finish(paths, cache_format.make_manifest(
            name="doc", command="test", source="clips/", synthetic=False, plan_id="test",
            model_type="16khz", weights={"untrained": True, "path": None, "sha256": None, "seed": SEED},
            n_clips=N_CLIPS, n_skipped=cache_format.SKIPPED_LISTED + 1, knn_k=KNN_K, seed=SEED,
            sample_3d=len(SAMPLE_3D), depths=(DEPTH,),
            reconstructions={"depths": [DEPTH], "n_clips": 2, "max_clips": 1000}, encode=encode,
            representations=representations))
    after = sorted(p for p in paths.root.rglob("*") if p.is_file())
    open_cache(paths.root)  # what the writers wrote is a cache the reader takes
    return {"paths": paths, "files": sorted(set(during) | set(after)),
            "representations": list(representations)}


def documented() -> tuple[set[str], str]:
    """The names docs/cache-format.md gives (every word in its code spans and code blocks), and
    the text of those spans and blocks."""
    text = DOC.read_text()
    blocks = re.findall(r"```.*?```", text, flags=re.S)
    spans = re.findall(r"`([^`]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    code = "\n".join(blocks + spans)
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", code)), code


def keys_of(value, where: str, skip_names_under: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(key, its place) of every key of ``value``, nested dicts (in lists too) included. Under a
    place in ``skip_names_under`` the keys are names (representations), not format keys: only
    their values' keys are taken."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            if where in skip_names_under:
                found += keys_of(item, f"{where}.<name>", skip_names_under)
            else:
                found.append((key, f"{where}.{key}"))
                found += keys_of(item, f"{where}.{key}", skip_names_under)
    elif isinstance(value, list):
        for item in value:
            found += keys_of(item, f"{where}[]", skip_names_under)
    return found


def missing(keys: list[tuple[str, str]]) -> list[str]:
    names, _ = documented()
    return sorted({place for key, place in keys if key not in names})


def test_every_key_the_writers_write_is_in_the_format_doc(written):
    paths = written["paths"]
    read = cache_format.read_json
    keys = keys_of(read(paths.manifest), "manifest.json", ("manifest.json.representations",))
    keys += keys_of(read(paths.clips), "clips.json", ("clips.json.columns",))  # "columns"; then
    keys += [(column, f"clips.json.columns.{column}") for column in cache_format.COMPUTED_CLIP_COLUMNS]
    keys += keys_of(read(paths.skipped), "skipped.json")
    with gzip.open(paths.skipped_all, "rt") as handle:
        keys += keys_of(json.loads(handle.readline()), paths.skipped_all.name)
    keys += keys_of(read(paths.metrics), "metrics.json")  # params, rows, trust and their keys
    keys += keys_of(read(paths.plan), "plan.json", ("plan.json.encoders",))
    for rep in written["representations"]:
        for view in VIEWS:
            keys += keys_of(read(paths.projection_info(rep, view.name)), f"arrays/<rep>/{view.name}.json")
    with np.load(paths.pca_basis("z", "pca2")) as basis, np.load(paths.precision_reference) as ref:
        keys += [(name, f"{what}:{name}") for what, data in
                 (("<view>_basis.npz", basis), ("precision_reference.npz", ref)) for name in data.files]
    assert len(keys) > 100
    absent = missing(keys)
    assert not absent, (f"{DOC.name} does not document these keys the cache's writers write "
                        f"(name each in a code span or the format block): {', '.join(absent)}")
    _, code = documented()
    assert "csv_<name>" in code, "clips.json's renamed CSV column, csv_<name>, is not documented"


def pattern(relative: str, representations: list[str]) -> str:
    """A file's path in the cache as the doc's format block writes it: representation names as
    <rep>, view names as <view>, a clip's file as <name>, a depth as q<q>, a chunk as chunk_<n>."""
    views = {view.name for view in VIEWS}
    parts = relative.split("/")
    for i, part in enumerate(parts):
        stem, dot, suffix = part.partition(".")
        if i > 0 and parts[i - 1] in ("arrays", "tsne_neighbours") and part in representations:
            parts[i] = "<rep>"
        elif stem in views or (stem.endswith("_basis") and stem[:-len("_basis")] in views):
            parts[i] = stem.replace(stem.removesuffix("_basis"), "<view>") + dot + suffix
        elif re.fullmatch(r"[0-9]{7}", stem):
            parts[i] = "<name>" + dot + suffix
        elif i > 0 and re.fullmatch(r"q[0-9]+", part) and parts[i - 1] == "audio":
            parts[i] = "q<q>"
        elif re.fullmatch(r"chunk_[0-9]+", stem):
            parts[i] = "chunk_<n>" + dot + suffix
    return "/".join(parts)


def test_every_file_the_writers_write_is_in_the_format_doc(written):
    root = written["paths"].root
    relative = [str(p.relative_to(root)) for p in written["files"]]
    assert not [r for r in relative if r.endswith(cache_format.TEMPORARY_SUFFIX)], relative
    patterns = {pattern(r, written["representations"]) for r in relative}
    assert {"manifest.json", ".lock", "work/chunks/chunk_<n>.npz", "audio/q<q>/<name>.wav",
            "arrays/<rep>/<view>_basis.npz", "skipped_all.jsonl.gz"} <= patterns, patterns
    names, code = documented()
    absent = sorted(p for p in patterns if p not in code)
    absent += sorted(v.name for v in VIEWS if v.name not in names)
    assert not absent, (f"{DOC.name} does not document these files the cache's writers write "
                        f"(as a pattern in the format block): {', '.join(absent)}")


def test_every_key_the_reader_checks_is_in_the_format_doc():
    """The reader's tables of what each JSON file must hold (checked at open)."""
    tables = {
        "MANIFEST_FIELDS": MANIFEST_FIELDS, "MODEL_FIELDS": MODEL_FIELDS,
        "WEIGHTS_FIELDS": WEIGHTS_FIELDS, "REPRESENTATION_FIELDS": REPRESENTATION_FIELDS,
        "SAMPLE_3D_FIELDS": SAMPLE_3D_FIELDS, "RECONSTRUCTIONS_FIELDS": RECONSTRUCTIONS_FIELDS,
        "AGREEMENT_FIELDS": AGREEMENT_FIELDS, "METRICS_FIELDS": METRICS_FIELDS,
        "METRICS_PARAMS_FIELDS": METRICS_PARAMS_FIELDS, "METRIC_ROW_FIELDS": METRIC_ROW_FIELDS,
        "TRUST_ROW_FIELDS": TRUST_ROW_FIELDS, "SKIPPED_FIELDS": SKIPPED_FIELDS,
        "SKIPPED_GROUP_FIELDS": SKIPPED_GROUP_FIELDS,
        **{f"PROJECTION_INFO_FIELDS[{method}]": fields
           for method, fields in PROJECTION_INFO_FIELDS.items()}}
    absent = missing([(key, f"{table}.{key}") for table, fields in tables.items() for key in fields])
    assert not absent, f"{DOC.name} does not document these keys the reader checks: {', '.join(absent)}"

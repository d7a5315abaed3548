"""After encoding: the chunks assembled into arrays, then the neighbour tables, projections,
metrics, what the codec keeps (probes.json), the decoder's fidelity and the manifest
(``finish_cache``), each result one file, skipped when present."""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from dacviz_app import cache as cache_format
from dacviz_app.cache import CachePaths, atomic_save_npy
from dacviz_app.embedding.metrics import (KNN_ACCURACY_K, SILHOUETTE_SAMPLE, cluster_metrics,
                                          encode_labels, euclidean_knn_index)
from dacviz_app.embedding.neighbours import cosine_knn
from dacviz_app.embedding.projections import pca, sample_3d, tsne, tsne_neighbour_count
from dacviz_app.embedding.spaces import FULL_SPACE, VIEWS, View
from dacviz_app.explore.analysis import TRUST_K, TRUST_SAMPLE, trust_scores
from dacviz_app.precompute.config import PrecomputeConfig
from dacviz_app.precompute.dac_encode import pick_device
from dacviz_app.precompute.codec_measures import codec_measures_all
from dacviz_app.precompute.fidelity import fidelity_all
from dacviz_app.precompute.encode_run import _representation_dims, representations_of
from dacviz_app.precompute.precision import precision_mode
from dacviz_app.precompute.sources import ClipSource




def assemble(clips: list[ClipSource], config: PrecomputeConfig, paths: CachePaths) -> dict:
    """Merge the chunks into per-representation embeddings, clips.json and skipped.json.

    Returns {"embeddings": {rep: (n, dim) float32}, "columns": clips.json's columns,
    "skipped": {reason kind: count} (``cache.write_skipped``), "plan_index": (n,) int64 each
    clip's place in the plan}. The skipped clips stream from the chunks to skipped.json, never
    all in memory. A CSV column named like one the cache computes is kept apart
    (``cache.clip_columns``; ``column_notes`` says which).
    """
    n_chunks = math.ceil(len(clips) / config.chunk_size)
    skipped = cache_format.write_skipped(paths, skipped_clips(clips, n_chunks, paths))
    parts = []
    for c in range(n_chunks):
        with np.load(paths.chunk(c), allow_pickle=False) as chunk:
            parts.append({key: chunk[key] for key in chunk.files if key not in SKIPPED_KEYS})
    plan_index = np.concatenate([p["plan_index"] for p in parts])
    embeddings = {rep: np.concatenate([p[rep] for p in parts]).astype(np.float32)
                  for rep in _representation_dims(config)}
    cache_format.write_code_counts(paths, sum(p["code_counts"] for p in parts))
    durations = np.concatenate([p["duration_s"] for p in parts])
    rates = np.concatenate([p["original_rate"] for p in parts])
    channels = np.concatenate([p["channels"] for p in parts])
    chosen = [clips[i] for i in plan_index]
    computed: dict[str, list] = {
        "id": list(range(len(chosen))),
        "label": [c.label for c in chosen],
        "speaker": [c.speaker for c in chosen],
        "source": [_display_path(c.path, config.source) for c in chosen],
        "duration_s": [round(float(d), 4) for d in durations],
        "audio": [paths.audio_name(int(i)) for i in plan_index],
        "original_rate": [int(r) for r in rates],
        "channels": [int(c) for c in channels],
    }
    user = {name: [dict(c.extra).get(name, "") for c in chosen]
            for name in dict.fromkeys(k for c in clips for k, _ in c.extra)}
    columns, _ = cache_format.clip_columns(computed, user)
    cache_format.write_clips(paths, columns)
    for rep, values in embeddings.items():
        if not paths.array(rep, "embedding").is_file():
            cache_format.write_embedding(paths, rep, values)
    return {"embeddings": embeddings, "columns": columns, "skipped": skipped,
            "plan_index": plan_index}


SKIPPED_KEYS = ("skipped_index", "skipped_reason")  # a chunk's (m,) plan indices and reasons


def skipped_clips(clips: list[ClipSource], n_chunks: int, paths: CachePaths) -> Iterator[dict]:
    """{"source", "label", "reason"} of each clip the chunks skipped, in chunk order, one chunk
    in memory at a time (only its SKIPPED_KEYS are read)."""
    for c in range(n_chunks):
        with np.load(paths.chunk(c), allow_pickle=False) as chunk:
            index, reasons = chunk[SKIPPED_KEYS[0]].tolist(), chunk[SKIPPED_KEYS[1]].tolist()
        for i, reason in zip(index, reasons):
            yield {"source": clips[i].path, "label": clips[i].label, "reason": str(reason)}


def _display_path(path: str, source: str) -> str:
    """The clip's path relative to the source folder (or the CSV's folder) where possible."""
    root = Path(source) if Path(source).is_dir() else Path(source).parent
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return path


# ----------------------------------------------------------------------------- downstream
def project(x: np.ndarray, view: View, seed: int, table: tuple | None,
            sample: np.ndarray | None) -> tuple[np.ndarray, dict, dict | None]:
    """One view of one representation: ((n_clips, view.dim) float32, how it was made, the
    fitted PCA basis (``projections.pca``) or None for t-SNE).
    ``table``: the wider neighbour table for t-SNE (or None); ``sample``: the 3D sample."""
    if view.method == "pca":
        coords, ratio, basis = pca(x, view.dim, seed)
        return coords, {"method": "pca", "explained_variance_ratio": ratio,
                        "explained_variance": float(sum(ratio)), "seed": seed}, basis
    if view.method == "tsne":
        coords, info = tsne(x, view.dim, seed, neighbours=table,
                            sample=sample if view.dim == 3 else None)
        return coords, {"method": "tsne", **info}, None
    raise ValueError(f"no projector for method {view.method!r}")


def project_all(embeddings: dict[str, np.ndarray], config: PrecomputeConfig, paths: CachePaths,
                say: Callable[[str], None]) -> np.ndarray | None:
    """Every view of ``spaces.VIEWS`` for every representation; existing results are kept.
    t-SNE takes its affinities from the neighbour table ``neighbours_all`` left in work/.
    Above MAX_3D_POINTS clips the 3D sample is recorded first. Returns it (or None)."""
    n_clips = len(next(iter(embeddings.values())))
    sample = sample_3d(n_clips, config.seed)
    if sample is not None:
        cache_format.write_sample_3d(paths, sample)
    for rep, x in embeddings.items():
        table = _tsne_table(paths, rep)
        for view in VIEWS:
            if paths.array(rep, view.name).is_file() and paths.projection_info(rep, view.name).is_file():
                continue
            started = time.perf_counter()
            coords, info, basis = project(x, view, config.seed, table, sample)
            if basis is not None:  # before the view: the view's presence means it is done
                cache_format.write_pca_basis(paths, rep, view.name, basis)
            cache_format.write_projection(paths, rep, view.name, coords, info)
            say(f"  {rep:13s} {view.name:6s} {time.perf_counter() - started:7.2f} s")
    return sample


def _tsne_table(paths: CachePaths, rep: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The wider neighbour table of ``rep`` kept in work/ for t-SNE, or None (t-SNE then
    computes it itself: same numbers, more time)."""
    index, distance = paths.work_table(rep, "knn_index"), paths.work_table(rep, "knn_distance")
    if not (index.is_file() and distance.is_file()):
        return None
    return np.load(index, mmap_mode="r"), np.load(distance, mmap_mode="r")


def neighbours_all(embeddings: dict[str, np.ndarray], k: int, paths: CachePaths,
                   say: Callable[[str], None] = lambda _: None, device: str = "cpu") -> None:
    """The exact cosine k-NN table of every representation, on ``device`` in fp32; existing
    tables are kept.

    One search per representation serves both the cache's k-column table and t-SNE's wider
    one (tsne_neighbour_count columns, kept in work/ until the run ends)."""
    for rep, x in embeddings.items():
        done = paths.array(rep, "knn_index").is_file() and paths.array(rep, "knn_distance").is_file()
        tsne_done = all(paths.array(rep, p).is_file() for p in ("tsne2", "tsne3"))
        if done and (tsne_done or _tsne_table(paths, rep) is not None):
            continue
        started = time.perf_counter()
        with precision_mode("fp32", device):
            index, distance = cosine_knn(x, max(k, tsne_neighbour_count(len(x))), device=device)
        atomic_save_npy(paths.work_table(rep, "knn_distance"), distance)
        atomic_save_npy(paths.work_table(rep, "knn_index"), index)
        cache_format.write_neighbours(paths, rep, index[:, :k], distance[:, :k])
        say(f"  {rep:13s} {index.shape[1]}-NN  {time.perf_counter() - started:7.2f} s")


def metrics_all(embeddings: dict[str, np.ndarray], columns: dict[str, list], config: PrecomputeConfig,
                paths: CachePaths, sample_3d: np.ndarray | None = None) -> list[dict]:
    """metrics.json's rows, written and returned: for every categorical column
    (``metric_columns``, the label first), one row per (representation, space). Each row names
    its column. Also the trust of every view (``analysis.trust_scores``; a 3D view with a
    ``sample_3d`` on the clips it draws)."""
    k = min(KNN_ACCURACY_K, len(columns["label"]) - 1)
    scored = metric_columns(columns)
    rows = []
    for column in scored:
        codes = encode_labels(columns[column])
        for rep, x in embeddings.items():
            full_index = np.load(paths.array(rep, "knn_index"), mmap_mode="r")
            rows.append({"representation": rep, "space": FULL_SPACE, "column": column,
                         "dim": int(x.shape[1]),
                         **cluster_metrics(x, codes, np.asarray(full_index[:, :k]), config.seed)})
            for view in VIEWS:
                coords = np.load(paths.array(rep, view.name))
                rows.append({"representation": rep, "space": view.name, "column": column,
                             "dim": view.dim, **cluster_metrics(coords, codes,
                                                                euclidean_knn_index(coords, k),
                                                                config.seed)})
    trust = [{"representation": rep, "view": view.name,
              **trust_scores(x, np.load(paths.array(rep, view.name)), config.seed,
                             among=sample_3d if view.dim == 3 else None)}
             for rep, x in embeddings.items() for view in VIEWS]
    cache_format.write_metrics(paths, rows=rows, trust=trust, params={"silhouette": "sklearn silhouette_score, euclidean",
                   "silhouette_cosine": "sklearn silhouette_score, metric='cosine'",
                   "chance": "share of the most frequent value: the accuracy of always guessing it",
                   "silhouette_sample_above": SILHOUETTE_SAMPLE, "seed": config.seed,
                   "davies_bouldin": "sklearn davies_bouldin_score",
                   "knn_accuracy_k": k,
                   "knn_accuracy": "leave-one-out majority vote of the k nearest other clips; "
                                   "cosine in the full space, euclidean in projections; ties to "
                                   "the nearest tied label",
                   "columns": scored,
                   "trust": "sklearn trustworthiness of each view against its full space "
                            "(L2-normalised: cosine ranks), continuity the same with the roles "
                            "swapped", "trust_k": TRUST_K, "trust_sample_above": TRUST_SAMPLE})
    return rows


METRIC_COLUMN_MAX_VALUES = 200
NOT_METRIC_COLUMNS = ("id", "source", "audio", "duration_s")


def metric_columns(columns: dict[str, list]) -> list[str]:
    """The columns the metrics score: label first, then every other column with 2 to
    METRIC_COLUMN_MAX_VALUES distinct values, fewer than the clips (a category, not an id)."""
    n = len(columns["label"])
    out = ["label"]
    for name, values in columns.items():
        if name in out or name in NOT_METRIC_COLUMNS:
            continue
        distinct = len({str(v) for v in values})
        if 2 <= distinct <= min(METRIC_COLUMN_MAX_VALUES, n - 1):
            out.append(name)
    return out


def finish_cache(embeddings: dict[str, np.ndarray], columns: dict[str, list], config: PrecomputeConfig,
                 plan_id: str, n_skipped: int, paths: CachePaths,
                 say: Callable[[str], None], encode: dict | None = None) -> dict[str, float]:
    """Every step after encoding, in order: the neighbour tables (first: t-SNE reuses them),
    the projections, the metrics, what the codec keeps (``codec_measures``), the decoder's
    fidelity where clips were decoded (``fidelity``); then the manifest and the end of ``work/``
    (``cache.finish``).
    ``embeddings``: {rep: (n_clips, dim) float32}; ``columns``: clips.json's columns;
    ``encode``: the manifest's record of how the encoder ran (None: not encoded here).
    Returns the seconds each step took."""
    n_clips = len(columns["label"])
    k = min(config.knn_k, n_clips - 1)
    timings: dict[str, float] = {}

    def step(name: str, run: Callable[[], object]):
        say(f"{name}:")
        started = time.perf_counter()
        result = run()
        timings[name] = time.perf_counter() - started
        return result

    # the driver's own device under --ray: the workers' GPU may not be here
    here = config.device if config.device == "cpu" or not config.ray else pick_device("auto")
    step("neighbours", lambda: neighbours_all(embeddings, k, paths, say, here))
    sample = step("projections", lambda: project_all(embeddings, config, paths, say))
    step("metrics", lambda: metrics_all(embeddings, columns, config, paths, sample))
    if not paths.probes.is_file():
        depth_reps = [r for r, e in sorted(representations_of(config).items(),
                                           key=lambda item: item[1].get("depth") or 0) if e.get("depth")]
        step("what the codec keeps", lambda: codec_measures_all(
            embeddings, columns, metric_columns(columns), depth_reps, paths, config.seed, k, say))
    decoded = sum(1 for _ in paths.audio_dir.glob("q*/*.wav")) // max(len(config.reconstruct), 1)
    if decoded and not paths.fidelity_info.is_file():
        step("fidelity", lambda: fidelity_all(paths, columns["audio"], list(config.reconstruct),
                                                        config.dnsmos_clips, say, config.pesq))
    cache_format.finish(paths, cache_format.make_manifest(
        name=config.name, command=config.command, source=config.source,
        synthetic=config.synthetic, plan_id=plan_id, model_type=config.model_type,
        weights=config.weights.as_dict(), n_clips=n_clips, n_skipped=n_skipped, knn_k=k,
        seed=config.seed, sample_3d=None if sample is None else len(sample), depths=config.depths,
        representations=representations_of(config),
        reconstructions={"depths": list(config.reconstruct) if decoded else [], "n_clips": decoded,
                         "max_clips": config.reconstruct_max_clips}, encode=encode))
    return timings

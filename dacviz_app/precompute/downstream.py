"""After encoding: the chunks assembled into arrays, then the neighbour tables, projections,
metrics, what the codec keeps (probes.json), the decoder's fidelity and the manifest
(``finish_cache``), each result one file, skipped when present."""
from __future__ import annotations

import math
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from dacviz_app import cache as cache_format
from dacviz_app.cache import CachePaths, atomic_save_npy
from dacviz_app.embedding.metrics import (KNN_ACCURACY_K, SILHOUETTE_SAMPLE, cluster_metrics,
                                          encode_labels, euclidean_knn_index)
from dacviz_app.embedding.approximate import approximate_cosine_knn, choose_method, describe_index
from dacviz_app.embedding.neighbours import cosine_knn
from dacviz_app.embedding.projections import (DEFAULT_PERPLEXITY, pca, sample_3d, tsne,
                                              tsne_neighbour_count)
from dacviz_app.embedding.spaces import FULL_SPACE, VIEWS, View
from dacviz_app.explore.analysis import TRUST_K, TRUST_SAMPLE, trust_scores
from dacviz_app.precompute.config import PrecomputeConfig
from dacviz_app.precompute.dac_encode import driver_device
from dacviz_app.precompute.codec_measures import codec_measures_all
from dacviz_app.precompute.fidelity import fidelity_all
from dacviz_app.precompute.encode_run import representations_of
from dacviz_app.precompute.inputs import Record, digest, downstream_keys
from dacviz_app.precompute.memory import give_back
from dacviz_app.precompute.precision import precision_mode
from dacviz_app.precompute.sources import ClipSource




def assemble(clips: list[ClipSource], config: PrecomputeConfig, paths: CachePaths) -> dict:
    """Merge the chunks into per-representation embeddings, clips.json and skipped.json.

    Writes the embeddings the encoders gave (``encoded_representations``: not the depths, which
    come from the frame codes, also written here) and the code counts.
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
                  for rep in encoded_representations(config)}
    cache_format.write_code_counts(paths, sum(p["code_counts"] for p in parts))
    frame_count = np.concatenate([p["frame_count"] for p in parts])
    cache_format.write_frame_codes(paths, np.concatenate([p["frame_codes"] for p in parts]),
                                   np.concatenate([[0], np.cumsum(frame_count)]).astype(np.int64))
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
        cache_format.write_embedding(paths, rep, values)
    return {"embeddings": embeddings, "columns": columns, "skipped": skipped,
            "plan_index": plan_index}


def encoded_representations(config: PrecomputeConfig) -> list[str]:
    """The representations the encoders give directly: all but DAC's depths (``from_codes``)."""
    return [rep for rep, entry in representations_of(config).items()
            if not (entry.get("encoder") == "dac" and entry.get("depth") and rep != "z")]


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
            sample: np.ndarray | None, perplexity: float = DEFAULT_PERPLEXITY
            ) -> tuple[np.ndarray, dict, dict | None]:
    """One view of one representation: ((n_clips, view.dim) float32, how it was made, the
    fitted PCA basis (``projections.pca``) or None for t-SNE).
    ``table``: the wider neighbour table for t-SNE (or None); ``sample``: the 3D sample."""
    if view.method == "pca":
        coords, ratio, basis = pca(x, view.dim, seed)
        return coords, {"method": "pca", "explained_variance_ratio": ratio,
                        "explained_variance": float(sum(ratio)), "seed": seed}, basis
    if view.method == "tsne":
        coords, info = tsne(x, view.dim, seed, perplexity=perplexity, neighbours=table,
                            sample=sample if view.dim == 3 else None)
        return coords, {"method": "tsne", **info}, None
    raise ValueError(f"no projector for method {view.method!r}")


class StoredEmbeddings(Mapping):
    """{representation: (n_clips, dim) float32} read from the cache at each access: iterated,
    one representation is in memory at a time."""

    def __init__(self, paths: CachePaths, representations: list[str]):
        self.paths, self.representations = paths, list(representations)

    def __getitem__(self, rep: str) -> np.ndarray:
        if rep not in self.representations:
            raise KeyError(rep)
        return np.load(self.paths.array(rep, "embedding"), allow_pickle=False).astype(np.float32, copy=False)

    def __iter__(self):
        return iter(self.representations)

    def __len__(self) -> int:
        return len(self.representations)


class Steps:
    """The results a run computes: each is skipped when the Record holds its key (and its files
    are there), else computed, written, and its key recorded (``inputs``)."""

    def __init__(self, keys: Mapping[str, str], record: Record):
        self.keys, self.record = keys, record
        self.computed: list[str] = []

    def fresh(self, result: str, *files: Path) -> bool:
        """Whether ``result`` is on disk (``files``) and made from the inputs its key says."""
        return result in self.keys and self.record.holds(result, self.keys[result]) \
            and all(f.is_file() for f in files)

    def done(self, result: str) -> None:
        """``result`` was just written: record its key."""
        if result in self.keys:
            self.record.mark(result, self.keys[result])
        self.computed.append(result)


def project_all(embeddings: Mapping[str, np.ndarray], config: PrecomputeConfig, paths: CachePaths,
                say: Callable[[str], None], steps: Steps) -> np.ndarray | None:
    """Every view of ``spaces.VIEWS`` for every representation whose view key changed.
    t-SNE takes its affinities from the neighbour table ``neighbours_all`` left in work/.
    Above MAX_3D_POINTS clips the 3D sample is recorded first. Returns it (or None)."""
    n_clips = len(embeddings[next(iter(embeddings))])
    sample = sample_3d(n_clips, config.seed)
    if sample is not None:
        cache_format.write_sample_3d(paths, sample)
    for rep in embeddings:
        todo = [view for view in VIEWS if not steps.fresh(
            f"view:{rep}:{view.name}", paths.array(rep, view.name), paths.projection_info(rep, view.name))]
        if not todo:
            continue
        x, table = embeddings[rep], _tsne_table(paths, rep, config.perplexity)
        for view in todo:
            started = time.perf_counter()
            coords, info, basis = project(x, view, config.seed, table, sample, config.perplexity)
            if basis is not None:  # before the view: the view's presence means it is done
                cache_format.write_pca_basis(paths, rep, view.name, basis)
            cache_format.write_projection(paths, rep, view.name, coords, info)
            steps.done(f"view:{rep}:{view.name}")
            say(f"  {rep:13s} {view.name:6s} {time.perf_counter() - started:7.2f} s")
            del coords, info, basis
            give_back()  # a t-SNE's temporaries, before the next view
    return sample


def _tsne_table(paths: CachePaths, rep: str, perplexity: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The wider neighbour table of ``rep`` kept in work/ for t-SNE when it is wide enough for
    ``perplexity``, or None (t-SNE then computes it itself: same numbers, more time)."""
    index, distance = paths.work_table(rep, "knn_index"), paths.work_table(rep, "knn_distance")
    if not (index.is_file() and distance.is_file()):
        return None
    index, distance = np.load(index, mmap_mode="r"), np.load(distance, mmap_mode="r")
    if index.shape[1] < tsne_neighbour_count(len(index), perplexity):
        return None
    return index, distance


def neighbour_search(config: PrecomputeConfig, n_clips: int) -> str:
    """How this run searches neighbours: "exact" or "approximate" (``--neighbours``; auto by size)."""
    return choose_method(config.neighbours, n_clips, driver_device(config.device, config.ray))


def neighbours_all(embeddings: Mapping[str, np.ndarray], k: int, paths: CachePaths,
                   say: Callable[[str], None], steps: Steps, perplexity: float = DEFAULT_PERPLEXITY,
                   device: str = "cpu", search: str = "exact", seed: int = 0) -> None:
    """The cosine k-NN table of every representation whose key changed, and the wider table a
    t-SNE to be computed needs, on ``device`` in fp32: ``search`` "exact" or "approximate"
    (``embedding.approximate``: an inverted file searched by matrix products, its recall@10
    against exact search measured on a seeded sample and kept beside the table).

    One search per representation serves both the cache's k-column table and t-SNE's wider
    one (tsne_neighbour_count columns, kept in work/ until the run ends)."""
    for rep in embeddings:
        done = steps.fresh(f"knn:{rep}", paths.array(rep, "knn_index"), paths.array(rep, "knn_distance"))
        tsne_done = all(steps.fresh(f"view:{rep}:{v.name}", paths.array(rep, v.name))
                        for v in VIEWS if v.method == "tsne")
        if done and (tsne_done or _tsne_table(paths, rep, perplexity) is not None):
            continue
        started = time.perf_counter()
        x = embeddings[rep]
        columns = max(k, tsne_neighbour_count(len(x), perplexity))
        if search == "approximate":
            with precision_mode("fp32", device):
                index, distance, probe, recall = approximate_cosine_knn(x, columns, seed, device=device)
            info = {"method": "approximate", "index": describe_index(len(x), probe), **recall}
            said = (f"approximate: recall@{info['k']} {info['recall_at_k']:.3f} "
                    f"[{info['low']:.3f}, {info['high']:.3f}] on {info['sample']:,} sampled clips")
        else:
            with precision_mode("fp32", device):
                index, distance = cosine_knn(x, columns, device=device)
            info, said = {"method": "exact"}, "exact"
        atomic_save_npy(paths.work_table(rep, "knn_distance"), distance)
        atomic_save_npy(paths.work_table(rep, "knn_index"), index)
        if not done:
            cache_format.write_neighbours(paths, rep, index[:, :k], distance[:, :k], info)
            steps.done(f"knn:{rep}")
        say(f"  {rep:13s} {index.shape[1]}-NN  {time.perf_counter() - started:7.2f} s  {said}")


def metrics_of(rep: str, x: np.ndarray, columns: dict[str, list], scored: list[str], k: int,
               paths: CachePaths, seed: int, sample_3d: np.ndarray | None) -> tuple[dict, list[dict]]:
    """One representation's metrics: ({column: its rows, full space then each view}, its trust
    rows, one per view)."""
    full_index = np.asarray(np.load(paths.array(rep, "knn_index"), mmap_mode="r")[:, :k])
    views = {view.name: np.load(paths.array(rep, view.name)) for view in VIEWS}
    rows = {}
    for column in scored:
        codes = encode_labels(columns[column])
        rows[column] = [{"representation": rep, "space": FULL_SPACE, "column": column,
                         "dim": int(x.shape[1]), **cluster_metrics(x, codes, full_index, seed)}]
        for view in VIEWS:
            coords = views[view.name]
            rows[column].append({"representation": rep, "space": view.name, "column": column,
                                 "dim": view.dim, **cluster_metrics(coords, codes,
                                                                    euclidean_knn_index(coords, k), seed)})
    trust = [{"representation": rep, "view": view.name,
              **trust_scores(x, views[view.name], seed, among=sample_3d if view.dim == 3 else None)}
             for view in VIEWS]
    return rows, trust


def metrics_all(embeddings: Mapping[str, np.ndarray], columns: dict[str, list], config: PrecomputeConfig,
                paths: CachePaths, sample_3d: np.ndarray | None, steps: Steps) -> list[dict]:
    """metrics.json's rows, written and returned: for every categorical column
    (``metric_columns``, the label first), one row per (representation, space). Each row names
    its column. Also the trust of every view (``analysis.trust_scores``; a 3D view with a
    ``sample_3d`` on the clips it draws). A representation whose metrics key is recorded keeps
    its rows from the metrics.json on disk; the file is the same as one computed whole."""
    k = min(KNN_ACCURACY_K, len(columns["label"]) - 1)
    scored = metric_columns(columns)
    previous = cache_format.read_json(paths.metrics) if paths.metrics.is_file() else {}
    by_rep: dict[str, tuple[dict, list]] = {}
    for rep in embeddings:
        kept = _rows_of(previous, rep, scored) if steps.fresh(f"metrics:{rep}", paths.metrics) else None
        by_rep[rep] = kept or metrics_of(rep, embeddings[rep], columns, scored, k, paths, config.seed,
                                         sample_3d)
    rows = [row for column in scored for rep in embeddings for row in by_rep[rep][0][column]]
    trust = [row for rep in embeddings for row in by_rep[rep][1]]
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
    for rep in embeddings:
        if not steps.fresh(f"metrics:{rep}", paths.metrics):
            steps.done(f"metrics:{rep}")
    return rows


def _rows_of(previous: dict, rep: str, scored: list[str]) -> tuple[dict, list] | None:
    """``rep``'s rows and trust rows from a metrics.json read back (JSON nulls as NaN, as
    written), None when any is missing."""
    rows = {column: [_nan_for_null(r) for r in previous.get("rows", [])
                     if r.get("representation") == rep and r.get("column") == column]
            for column in scored}
    trust = [_nan_for_null(r) for r in previous.get("trust", []) if r.get("representation") == rep]
    if any(len(r) != 1 + len(VIEWS) for r in rows.values()) or len(trust) != len(VIEWS):
        return None
    return rows, trust


def _nan_for_null(row: dict) -> dict:
    return {key: float("nan") if value is None else value for key, value in row.items()}


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


def finish_cache(embeddings: Mapping[str, np.ndarray], columns: dict[str, list], config: PrecomputeConfig,
                 plan_id: str, n_skipped: int, paths: CachePaths,
                 say: Callable[[str], None], encode: dict | None = None,
                 keys: Mapping[str, str] | None = None, record: Record | None = None,
                 computed: list[str] | None = None) -> dict[str, float]:
    """Every step after encoding, in order: the neighbour tables (first: t-SNE reuses them),
    the projections, the metrics, what the codec keeps (``codec_measures``), the decoder's
    fidelity where clips were decoded (``fidelity``); then the manifest and the end of ``work/``
    (``cache.finish``), and last the results of settings no longer asked for (``remove_unused``).
    Each result is computed only when its key (``keys``, ``inputs.downstream_keys``) is not the
    one ``record`` holds; ``keys`` None: keys of this ``plan_id`` (a cache built in one go).
    ``embeddings``: {rep: (n_clips, dim) float32}; ``columns``: clips.json's columns;
    ``encode``: the manifest's record of how the encoder ran (None: not encoded here);
    ``computed``: the names of the results computed are appended to it.
    Returns the seconds each step took."""
    n_clips = len(columns["label"])
    k = min(config.knn_k, n_clips - 1)
    timings: dict[str, float] = {}
    representations = representations_of(config)
    depth_reps = [r for r, e in sorted(representations.items(), key=lambda item: item[1].get("depth") or 0)
                  if e.get("depth")]
    if keys is None:
        keys = downstream_keys({rep: digest([plan_id, rep]) for rep in embeddings}, knn_k=k,
                               seed=config.seed, perplexity=config.perplexity, depth_reps=depth_reps,
                               search=neighbour_search(config, n_clips))
    steps = Steps(keys, record or Record(paths))

    def step(name: str, run: Callable[[], object]):
        say(f"{name}:")
        started = time.perf_counter()
        result = run()
        timings[name] = time.perf_counter() - started
        return result

    # the driver's own device under --ray: the workers' GPU may not be here
    here = driver_device(config.device, config.ray)
    search = neighbour_search(config, n_clips)
    step("neighbours", lambda: neighbours_all(embeddings, k, paths, say, steps, config.perplexity, here,
                                              search, config.seed))
    sample = step("projections", lambda: project_all(embeddings, config, paths, say, steps))
    step("metrics", lambda: metrics_all(embeddings, columns, config, paths, sample, steps))
    step("what the codec keeps", lambda: codec_measures_all(
        embeddings, columns, metric_columns(columns), depth_reps, paths, config.seed, k, say, steps))
    decoded = decoded_clip_count(paths, columns.get("audio") or [], config.reconstruct)
    if decoded:
        step("fidelity", lambda: fidelity_all(paths, columns["audio"], list(config.reconstruct),
                                              config.dnsmos_clips, say, config.pesq, steps))
    cache_format.finish(paths, cache_format.make_manifest(
        name=config.name, command=config.command, source=config.source,
        synthetic=config.synthetic, plan_id=plan_id, model_type=config.model_type,
        weights=config.weights.as_dict(), n_clips=n_clips, n_skipped=n_skipped, knn_k=k,
        seed=config.seed, sample_3d=None if sample is None else len(sample), depths=config.depths,
        representations=representations,
        reconstructions={"depths": list(config.reconstruct) if decoded else [], "n_clips": decoded,
                         "max_clips": config.reconstruct_max_clips}, encode=encode))
    remove_unused(paths, representations, config.reconstruct if decoded else (), steps)
    if computed is not None:
        computed.extend(steps.computed)
    return timings


def decoded_clip_count(paths: CachePaths, audio_names: list[str], depths: tuple[int, ...]) -> int:
    """How many clips have a reconstruction at every one of ``depths`` (0 without depths)."""
    if not depths:
        return 0
    return sum(1 for name in audio_names if all(paths.reconstruction(q, name).is_file() for q in depths))


def remove_unused(paths: CachePaths, representations: Mapping[str, dict], decoded: tuple[int, ...],
                  steps: Steps) -> None:
    """After the manifest: the files of representations and decoded depths this run no longer
    has (a depth or an encoder dropped), and the record of every result it has not."""
    arrays = paths.arrays_dir
    for folder in (arrays.iterdir() if arrays.is_dir() else ()):
        if folder.is_dir() and folder.name not in representations:
            shutil.rmtree(folder)
    for folder in (paths.audio_dir.glob("q*") if paths.audio_dir.is_dir() else ()):
        depth = folder.name[1:]
        if folder.is_dir() and depth.isdigit() and int(depth) not in decoded:
            shutil.rmtree(folder)
    steps.record.keep_only(steps.keys)

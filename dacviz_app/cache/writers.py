"""The only code that writes cache files: one writer per file (arrays, sidecars, clips,
skipped clips, the plan, metrics) and the manifest, written last (``finish``)."""

from __future__ import annotations

import gzip
import json
import shutil
import time
from typing import Iterable

import numpy as np

from dacviz_app import __version__
from dacviz_app.cache.atomic import (atomic_write, read_json, atomic_save_npy, atomic_save_npz,
                                     atomic_write_json)
from dacviz_app.cache.models import MODEL_CONFIGS, hop_length
from dacviz_app.cache.paths import (SKIPPED_ALL, SKIPPED_EXAMPLES, SKIPPED_LISTED, COMPUTED_CLIP_COLUMNS, CachePaths, FORMAT_VERSION,
                                    REQUIRED_CLIP_COLUMNS, USER_COLUMN_PREFIX)
from dacviz_app.cache.representations import describe
from dacviz_app.embedding.spaces import VIEW_NAMES


def write_embedding(paths: "CachePaths", representation: str, x: np.ndarray) -> None:
    """(n_clips, dim) float32 full-space vectors of ``representation``."""
    atomic_save_npy(paths.array(representation, "embedding"), np.asarray(x, np.float32))


def write_projection(paths: "CachePaths", representation: str, view: str, coords: np.ndarray,
                     info: dict) -> None:
    """(n_clips, dim of ``view``) float32 coordinates and the sidecar saying how they were
    made (the sidecar first: the array's presence means the view is done)."""
    atomic_write_json(paths.projection_info(representation, view), info)
    atomic_save_npy(paths.array(representation, view), np.asarray(coords, np.float32))


def write_pca_basis(paths: "CachePaths", representation: str, view: str,
                    basis: dict[str, np.ndarray]) -> None:
    """The fitted PCA of a PCA view: "mean" (dim,) and "components" (axes, dim) float64."""
    atomic_save_npz(paths.pca_basis(representation, view),
                    mean=np.asarray(basis["mean"], np.float64),
                    components=np.asarray(basis["components"], np.float64))


def write_neighbours(paths: "CachePaths", representation: str, index: np.ndarray,
                     distance: np.ndarray, search: dict) -> None:
    """The (n_clips, k) int32 neighbour ids and (n_clips, k) float32 cosine distances, and how
    they were searched (``search``: {"method": "exact"} or the approximate index and its recall,
    ``embedding.approximate``), the sidecar first."""
    atomic_write_json(paths.neighbour_info(representation), search)
    atomic_save_npy(paths.array(representation, "knn_distance"), np.asarray(distance, np.float32))
    atomic_save_npy(paths.array(representation, "knn_index"), np.asarray(index, np.int32))


def write_code_counts(paths: "CachePaths", counts: np.ndarray) -> None:
    """(n_codebooks, codebook_size) int64 code counts of the whole collection."""
    atomic_save_npy(paths.code_counts, np.asarray(counts, np.int64))


def write_frame_codes(paths: "CachePaths", frames: np.ndarray, offsets: np.ndarray) -> None:
    """``frames``: (total_frames, n_codebooks) int16 every clip's DAC codes in clip-id order;
    ``offsets``: (n_clips + 1,) int64 clip i's frames are rows offsets[i]:offsets[i+1]. Written
    offsets last: their presence means both are complete."""
    atomic_save_npy(paths.frame_codes, np.asarray(frames, np.int16))
    atomic_save_npy(paths.frame_offsets, np.asarray(offsets, np.int64))


def read_frame_codes(paths: "CachePaths") -> tuple[np.ndarray, np.ndarray] | None:
    """(frames memory-mapped, offsets) of ``write_frame_codes``; None when the cache has none
    (made before they were kept, or synthetic)."""
    if not (paths.frame_codes.is_file() and paths.frame_offsets.is_file()):
        return None
    return (np.load(paths.frame_codes, mmap_mode="r", allow_pickle=False),
            np.load(paths.frame_offsets, allow_pickle=False))


QUANTIZER_FIELDS = ("codebooks", "out_weight", "out_bias")


def write_quantizer(paths: "CachePaths", codebooks: np.ndarray, out_weight: np.ndarray,
                    out_bias: np.ndarray) -> None:
    """DAC's residual quantizer, all a frame's latent needs besides its codes
    (``quantizer.from_codes``): ``codebooks`` (n_codebooks, codebook_size, codebook_dim) float32
    each codebook's entries; ``out_weight`` (n_codebooks, latent_dim, codebook_dim) and
    ``out_bias`` (n_codebooks, latent_dim) float32 each codebook's output projection (its 1x1
    convolution, weight norm folded in)."""
    atomic_save_npz(paths.quantizer, codebooks=np.asarray(codebooks, np.float32),
                    out_weight=np.asarray(out_weight, np.float32), out_bias=np.asarray(out_bias, np.float32))


def read_quantizer(paths: "CachePaths") -> dict[str, np.ndarray] | None:
    """{"codebooks", "out_weight", "out_bias"} of ``write_quantizer``; None when the cache has
    none (made before it was kept, or synthetic) or its shapes do not agree."""
    if not paths.quantizer.is_file():
        return None
    try:
        with np.load(paths.quantizer, allow_pickle=False) as data:
            tables = {name: np.asarray(data[name], np.float32) for name in QUANTIZER_FIELDS}
    except (ValueError, OSError, KeyError, EOFError):
        return None
    books, weight, bias = (tables[name] for name in QUANTIZER_FIELDS)
    if books.ndim != 3 or weight.shape != (books.shape[0], bias.shape[-1], books.shape[2]) \
            or bias.shape != (books.shape[0], weight.shape[1]):
        return None
    return tables


def write_precision_reference(paths: "CachePaths", ids: np.ndarray, z: np.ndarray) -> None:
    """(m,) clip ids and (m, dim) float32 their z in plain fp32 (``precision.agreement``)."""
    atomic_save_npz(paths.precision_reference, ids=np.asarray(ids, np.int64),
                    z=np.asarray(z, np.float32))


def read_precision_reference(paths: "CachePaths") -> tuple[np.ndarray, np.ndarray] | None:
    """(ids, z) written by ``write_precision_reference``, or None when there is none."""
    if not paths.precision_reference.is_file():
        return None
    with np.load(paths.precision_reference, allow_pickle=False) as data:
        return data["ids"], data["z"]


def write_sample_3d(paths: "CachePaths", ids: np.ndarray) -> None:
    """(n_sample,) sorted clip ids: the clips a large 3D t-SNE is fitted on and 3D views draw."""
    atomic_save_npy(paths.sample_3d, np.asarray(ids, np.int64))


def write_clips(paths: "CachePaths", columns: dict[str, list]) -> None:
    """clips.json from ``clip_columns``'s columns (every column n_clips long)."""
    missing = [c for c in REQUIRED_CLIP_COLUMNS if c not in columns]
    if missing:
        raise ValueError(f"clips.json needs the columns {missing}")
    atomic_write_json(paths.clips, {"columns": columns})


def read_clip_columns(paths: "CachePaths") -> dict[str, list]:
    """clips.json's columns as ``write_clips`` wrote them (for a run that goes on with them)."""
    return dict(read_json(paths.clips)["columns"])




def skip_kind(reason: str) -> str:
    """What a skip reason is counted under: 'cannot open file' of 'cannot open file: No such
    file or directory', 'too long' of 'too long: 31.0 s > --max-seconds 30 s'."""
    return reason.split(":")[0].split("(")[0].strip()


class _SkipTally:
    """Skipped clips counted as they stream past: the first SKIPPED_LISTED of them kept, and per
    reason kind a count and the first SKIPPED_EXAMPLES (memory bounded by those, not by n)."""

    def __init__(self) -> None:
        self.n = 0
        self.listed: list[dict] = []
        self.counts: dict[str, int] = {}
        self.examples: dict[str, list[dict]] = {}

    def add(self, entry: dict) -> None:
        self.n += 1
        if len(self.listed) < SKIPPED_LISTED:
            self.listed.append(entry)
        kind = skip_kind(entry["reason"])
        self.counts[kind] = self.counts.get(kind, 0) + 1
        examples = self.examples.setdefault(kind, [])
        if len(examples) < SKIPPED_EXAMPLES:
            examples.append(entry)

    def grouped(self) -> dict:
        """skipped.json's grouped form (module docstring), the commonest reason first."""
        kinds = sorted(self.counts, key=lambda kind: (-self.counts[kind], kind))
        return {"n_skipped": self.n, "all": SKIPPED_ALL,
                "reasons": [{"reason": kind, "count": self.counts[kind],
                             "examples": self.examples[kind]} for kind in kinds]}


def _stream_skipped(skipped: Iterable[dict], tally: _SkipTally, handle) -> None:
    """Each entry of ``skipped`` into ``tally`` and, as one JSON line, into gzip ``handle``."""
    with gzip.GzipFile(fileobj=handle, mode="wb", mtime=0) as out:
        for entry in skipped:
            tally.add(entry)
            out.write(json.dumps(entry).encode("ascii") + b"\n")


def write_skipped(paths: "CachePaths", skipped: Iterable[dict]) -> dict[str, int]:
    """skipped.json from ``skipped``, an iterable of {"source", "label", "reason"} (read once,
    in bounded memory): the list itself up to SKIPPED_LISTED entries; above, the grouped form
    and every entry in skipped_all.jsonl.gz (module docstring). Returns {reason kind: count}."""
    tally = _SkipTally()
    atomic_write(paths.skipped_all, lambda handle: _stream_skipped(skipped, tally, handle))
    if tally.n <= SKIPPED_LISTED:
        paths.skipped_all.unlink()
        atomic_write_json(paths.skipped, tally.listed)
    else:
        atomic_write_json(paths.skipped, tally.grouped())
    return dict(tally.counts)


def write_plan(paths: "CachePaths", plan: dict) -> None:
    """plan.json: ``plan`` as compact JSON, ASCII (a plan lists every clip: a million clips
    are ~60 MB of text, written in 1 MB pieces rather than encoded whole a second time)."""
    text = json.dumps(plan, separators=(",", ":"))

    def write(handle) -> None:
        for start in range(0, len(text), 2**20):
            handle.write(text[start:start + 2**20].encode("ascii"))
    atomic_write(paths.plan, write)


def write_metrics(paths: "CachePaths", params: dict, rows: list[dict],
                  trust: list[dict] | None = None) -> None:
    """metrics.json: how the metrics were computed, one row per representation, space and
    column, and ``trust``: one row per representation and 2D/3D view, {"representation",
    "view", "trustworthiness", "continuity", "k", "n"} (``analysis.trust_scores``)."""
    atomic_write_json(paths.metrics, {"params": params, "rows": rows, "trust": trust or []})


def write_probes(paths: "CachePaths", params: dict, confounds: list[dict], rows: list[dict],
                 geometry: dict) -> None:
    """probes.json: {"params", "confounds": [{"a", "b", "ami", "cramers_v", "confounded",
    "sentence"}], "rows": [{"representation", "column", "control" (a column or None), "probe":
    {"accuracy", "chance", "ci_low", "ci_high", "n", "n_splits", "cv", "interval", "sample",
    "reason"}, "knn": {"accuracy", "chance", "n_scored", "n_short"}}], "geometry": {"cka":
    {"representations", "matrix", "n", "seed"}, "depth_jaccard": {"representations", "k",
    "values"}}} (``precompute/codec_measures.py``)."""
    atomic_write_json(paths.probes, {"params": params, "confounds": confounds, "rows": rows,
                                     "geometry": geometry})


def write_fidelity(paths: "CachePaths", clip_ids: np.ndarray, depths: list[int],
                   values: dict[str, np.ndarray], dnsmos_original: np.ndarray, params: dict) -> None:
    """arrays/fidelity.npz: ``clip_ids`` (m,) int64 (the decoded clips), ``depths`` (d,) int64,
    one (m, d) float32 array per measure (NaN: undefined for that clip), ``dnsmos_original``
    (m,) float32; then fidelity.json: {"params": how they were computed, "depths", "measures"
    (their names, in order), "n_clips" (m)}, written last: its presence means both are done."""
    atomic_save_npz(paths.fidelity, clip_ids=np.asarray(clip_ids, np.int64),
                    depths=np.asarray(depths, np.int64), dnsmos_original=np.asarray(dnsmos_original, np.float32),
                    **{name: np.asarray(v, np.float32) for name, v in values.items()})
    atomic_write_json(paths.fidelity_info, {"params": params, "depths": [int(q) for q in depths],
                                            "measures": list(values), "n_clips": int(len(clip_ids))})


def make_manifest(*, name: str, command: str, source: str, synthetic: bool, plan_id: str,
                  model_type: str, weights: dict, n_clips: int, n_skipped: int, knn_k: int,
                  seed: int, sample_3d: int | None, depths: tuple[int, ...] = (),
                  reconstructions: dict | None = None, encode: dict | None = None,
                  representations: dict | None = None) -> dict:
    """The manifest of a finished cache (see the module docstring for the keys).
    ``sample_3d``: the size of the 3D sample, None when every clip is drawn in 3D.
    ``reconstructions``: {"depths": [q...], "n_clips": int, "max_clips": int} or None.
    ``encode``: how the encoder ran (device, precision, ...; see the module docstring) or None.
    ``representations``: {name: {"dim", "title", "description", ...}}, the run's own (DAC's,
    MFCC's and those of the encoders beside them); None: DAC's and MFCC's (``describe``)."""
    cfg = MODEL_CONFIGS[model_type]
    return {
        "format_version": FORMAT_VERSION,
        "dacviz_version": __version__,
        "name": name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": command,
        "source": source,
        "synthetic": synthetic,
        "plan_id": plan_id,
        "model": {"family": "descript-audio-codec", "type": model_type,
                  "sample_rate": cfg["sample_rate"], "hop_length": hop_length(model_type),
                  "n_codebooks": cfg["n_codebooks"], "codebook_dim": cfg["codebook_dim"],
                  "codebook_size": cfg["codebook_size"], "weights": weights},
        "audio": {"format": "wav", "subtype": "PCM_16", "channels": 1,
                  "sample_rate": cfg["sample_rate"]},
        "n_clips": n_clips,
        "n_skipped": n_skipped,
        "knn_k": knn_k,
        "seed": seed,
        "representations": representations or describe(model_type, tuple(depths), weights.get("untrained")),
        "projections": list(VIEW_NAMES),
        "sample_3d": None if sample_3d is None else {"n": int(sample_3d), "seed": seed},
        "depths": sorted(int(q) for q in depths),
        "reconstructions": reconstructions or {"depths": [], "n_clips": 0, "max_clips": 0},
        "encode": encode,
    }


def finish(paths: "CachePaths", manifest: dict) -> None:
    """Complete a cache: write its manifest (last of all files), then remove ``work/``."""
    atomic_write_json(paths.manifest, manifest)
    shutil.rmtree(paths.work_dir, ignore_errors=True)


def clip_columns(computed: dict[str, list], user: dict[str, list]) -> tuple[dict[str, list], dict[str, str]]:
    """clips.json's columns: the computed ones (COMPUTED_CLIP_COLUMNS, from precompute) and the
    user's metadata columns (a CSV's extras). A user column whose name the cache uses is
    stored as ``csv_<name>`` (``csv_<name>_2``... if that is taken too), never over a computed
    one. Returns (columns, {user name: stored name} for the renamed ones)."""
    columns = dict(computed)
    renamed: dict[str, str] = {}
    for name, values in user.items():
        stored = name
        if stored in columns or stored in COMPUTED_CLIP_COLUMNS:
            stored, n = f"{USER_COLUMN_PREFIX}{name}", 1
            while stored in columns or stored in user:
                n += 1
                stored = f"{USER_COLUMN_PREFIX}{name}_{n}"
            renamed[name] = stored
        columns[stored] = values
    return columns, renamed



"""Reading a complete cache: ``open_cache`` validates it once (``checks``) and gives a ``Cache``,
the one reader every part of dacviz asks (arrays memory-mapped, read-only)."""

from __future__ import annotations

import collections
import functools
import hashlib
import json
import os
import re
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np

from dacviz_app.cache.atomic import read_json
from dacviz_app.cache.checks import (PROJECTION_INFO_FIELDS, array_problem, described,
                                     manifest_problem, metrics_problem, neighbour_info_problem,
                                     shape_problem, skipped_problem)
from dacviz_app.cache.paths import CacheError, CachePaths, FORMAT_VERSION, REQUIRED_CLIP_COLUMNS
from dacviz_app.cache.fidelity import Fidelity, read_fidelity
from dacviz_app.cache.writers import read_frame_codes, read_quantizer, skip_kind
from dacviz_app.embedding.spaces import VIEWS


def unreadable_message(path: Path, root: Path) -> str:
    """The message for a file (or folder) of the cache in ``root`` that this process may not
    read: a permission problem, said as one, with the fix."""
    try:
        st = os.stat(path)
        owner = f"owned by uid {st.st_uid}, mode {st.st_mode & 0o777:04o}"
    except OSError:
        owner = "a folder on its path cannot be entered"
    return (f"{path}: permission denied ({owner}); this process runs as uid {os.getuid()}. "
            f"Let it read the cache, e.g. `chmod -R a+rX {root}`; the cache itself is fine.")


# ----------------------------------------------------------------------------- reading
PROBES_KEYS = ("params", "confounds", "rows", "geometry")


def probes_problem(data) -> str | None:
    """What is wrong with probes.json's shape (``write_probes``), None when nothing is."""
    if not isinstance(data, dict) or any(k not in data for k in PROBES_KEYS):
        return f"not an object with {', '.join(PROBES_KEYS)}"
    if not all(isinstance(r, dict) and {"representation", "column", "control", "probe", "knn"} <= set(r)
               for r in data["rows"]) or not isinstance(data["geometry"], dict):
        return "rows or geometry of the wrong shape"
    return None


def _load_array(path: Path, root: Path) -> np.ndarray:
    if not path.is_file():
        raise damaged(path, "missing", root)
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except PermissionError:
        raise CacheError(unreadable_message(path, root))
    except (ValueError, OSError, EOFError) as err:
        raise damaged(path, f"unreadable or truncated ({err})", root)


class Cache:
    """A complete cache, opened read-only. Arrays are memory-mapped and validated on open.

    Every file's shape is checked on open (the manifest's keys and types, the dtype and range
    of the arrays, the JSON files' fields the app reads): a damaged cache is refused there, with
    one line naming the file and the fix, never later by a failing figure or click.

    Attributes:
        manifest: the manifest dict.
        clips: columnar clip metadata, ``{column: list of n_clips values}``.
        n_clips: number of encoded clips.
        skipped: [{"source", "label", "reason"}] of the clips not encoded: all of them up to
            SKIPPED_LISTED, else the examples of each reason (all are in skipped_all.jsonl.gz).
        skipped_reasons: {reason kind (``skip_kind``): count} over all the skipped clips.
        n_skipped: how many clips were skipped.
    """

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.paths = CachePaths(self.root)
        self.manifest, self._identity = _read_manifest(self.paths)
        self.clips: dict[str, list] = self._read_clips()
        self.n_clips = int(self.manifest["n_clips"])
        self.representations: list[str] = list(self.manifest["representations"])
        self.metrics: dict = self._read_checked(self.paths.metrics, metrics_problem)
        self.skipped, self.skipped_reasons = self._read_skipped()
        self.n_skipped: int = sum(self.skipped_reasons.values())
        self._arrays: dict[tuple[str, str], np.ndarray] = {}
        self._validate_arrays()
        self._sample_3d = self._read_sample_3d()
        self._code_counts = self._read_code_counts()
        self.fidelity: Fidelity | None = self._read_fidelity()
        self.probes: dict | None = self._read_checked(self.paths.probes, probes_problem) \
            if self.paths.probes.is_file() else None  # caches made before it have none
        self.neighbour_search: dict[str, dict] = {  # caches made before the sidecar searched exactly
            rep: self._read_checked(self.paths.neighbour_info(rep), neighbour_info_problem)
            if self.paths.neighbour_info(rep).is_file() else {"method": "exact"} for rep in self.representations}
        self.projection_info: dict[str, dict[str, dict]] = {
            rep: {v.name: self._read_checked(self.paths.projection_info(rep, v.name), partial(
                shape_problem, fields=PROJECTION_INFO_FIELDS[v.method])) for v in VIEWS}
            for rep in self.representations}

    def _damaged(self, path: Path, problem: str) -> CacheError:
        """The refusal of a file that reads but does not hold what it should: one line, the fix."""
        return damaged(path, problem, self.root)

    def _read_json_file(self, path: Path):
        if not path.is_file():
            raise damaged(path, "missing", self.root)
        try:
            return read_json(path)
        except PermissionError:
            raise CacheError(unreadable_message(path, self.root))
        except (ValueError, OSError) as err:
            raise damaged(path, f"not valid JSON ({err})", self.root)

    def _read_checked(self, path: Path, problem_of: Callable[[Any], str | None]):
        """A JSON file of the cache whose shape ``problem_of`` approves (else CacheError)."""
        data = self._read_json_file(path)
        problem = problem_of(data)
        if problem:
            raise self._damaged(path, problem)
        return data

    def _read_clips(self) -> dict[str, list]:
        data = self._read_json_file(self.paths.clips)
        columns = data.get("columns") if isinstance(data, dict) else None
        if not isinstance(columns, dict) or any(c not in columns for c in REQUIRED_CLIP_COLUMNS):
            raise self._damaged(self.paths.clips, f"lacks the columns {REQUIRED_CLIP_COLUMNS}")
        for name, values in columns.items():
            if not isinstance(values, list):
                raise self._damaged(self.paths.clips, f'column "{name}" is {described(values)}, '
                                                      f"expected a list")
        return columns

    def _read_skipped(self) -> tuple[list[dict], dict[str, int]]:
        """skipped.json -> (its entries: every skipped clip up to SKIPPED_LISTED, else the
        examples of each reason; {reason kind: count} of all of them)."""
        data = self._read_checked(self.paths.skipped, skipped_problem)
        if isinstance(data, list):
            counts: dict[str, int] = {}
            for entry in data:
                kind = skip_kind(entry["reason"])
                counts[kind] = counts.get(kind, 0) + 1
            return data, counts
        groups = data["reasons"]
        return ([e for g in groups for e in g["examples"]],
                {g["reason"]: g["count"] for g in groups})

    def _validate_arrays(self) -> None:
        n = self.n_clips
        for name, column in self.clips.items():
            if len(column) != n:
                raise self._damaged(self.paths.clips, f"column {name!r} has {len(column)} values, "
                                                      f"the manifest says {n} clips")
        k = int(self.manifest["knn_k"])
        for rep in self.representations:
            dim = int(self.manifest["representations"][rep]["dim"])
            expected = {"embedding": (n, dim), "knn_index": (n, k), "knn_distance": (n, k)}
            expected.update({v.name: (n, v.dim) for v in VIEWS})
            for kind, shape in expected.items():
                path = self.paths.array(rep, kind)
                array = _load_array(path, self.root)
                if array.shape != shape:
                    raise self._damaged(path, f"shape {array.shape}, expected {shape} ({n} clips)")
                problem = array_problem(path, kind, n)
                if problem:
                    raise self._damaged(path, problem)
                self._arrays[(rep, kind)] = array

    def _read_sample_3d(self) -> np.ndarray | None:
        recorded = self.manifest.get("sample_3d")
        if not recorded:
            return None
        ids = _load_array(self.paths.sample_3d, self.root)
        ids = np.asarray(ids, dtype=np.int64)
        if (ids.ndim != 1 or len(ids) != int(recorded["n"]) or len(ids) == 0 or ids[0] < 0
                or ids[-1] >= self.n_clips or np.any(np.diff(ids) <= 0)):
            raise self._damaged(self.paths.sample_3d, f"not {recorded['n']} sorted, distinct clip "
                                                      f"ids below {self.n_clips}")
        return ids

    def _read_fidelity(self) -> Fidelity | None:
        """The decoder's fidelity per clip and depth (``cache/fidelity.py``), None without it."""
        try:
            fidelity = read_fidelity(self.paths)
        except (ValueError, OSError, KeyError) as err:
            raise self._damaged(self.paths.fidelity, str(err)[:200])
        if fidelity is not None and len(fidelity.clip_ids) and int(fidelity.clip_ids[-1]) >= self.n_clips:
            raise self._damaged(self.paths.fidelity, f"clip ids beyond the {self.n_clips} clips")
        return fidelity

    def _read_code_counts(self) -> np.ndarray | None:
        """Read once on open; a cache made before code counts has none."""
        path = self.paths.code_counts
        if not path.is_file():
            return None
        counts = _load_array(path, self.root)
        model = self.manifest["model"]
        shape = (int(model["n_codebooks"]), int(model.get("codebook_size", 1024)))
        if counts.shape != shape:
            raise self._damaged(path, f"shape {counts.shape}, expected {shape}")
        if counts.dtype.kind not in "iu" or counts.min() < 0:
            raise self._damaged(path, f"not counts (dtype {counts.dtype}, least value {counts.min()})")
        return counts

    # -- accessors -------------------------------------------------------------------
    def embedding(self, representation: str) -> np.ndarray:
        """(n_clips, dim) float32, memory-mapped."""
        return self._arrays[(representation, "embedding")]

    def projection(self, representation: str, view: str) -> np.ndarray:
        """(n_clips, 2 or 3) float32 coordinates of ``view`` (``spaces.VIEW_NAMES``)."""
        return self._arrays[(representation, view)]

    def pca_basis(self, representation: str, view: str) -> dict[str, np.ndarray] | None:
        """{"mean": (dim,), "components": (axes, dim)} float64 of a PCA view, None when the
        cache has none (made before it was stored) or it does not fit the representation."""
        path = self.paths.pca_basis(representation, view)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                mean, components = np.asarray(data["mean"]), np.asarray(data["components"])
        except (ValueError, OSError, KeyError, EOFError):
            return None
        dim = self.dim(representation)
        if mean.shape != (dim,) or components.ndim != 2 or components.shape[1] != dim:
            return None
        return {"mean": mean, "components": components}

    def neighbours(self, representation: str) -> tuple[np.ndarray, np.ndarray]:
        """((n_clips, k) int32 indices, (n_clips, k) float32 cosine distances), closest first."""
        return (self._arrays[(representation, "knn_index")],
                self._arrays[(representation, "knn_distance")])

    @functools.cached_property
    def smallest_label(self) -> int:
        """How many clips the rarest label has (t-SNE's perplexity is compared with it)."""
        return min(collections.Counter(map(str, self.clips["label"])).values())

    @functools.cached_property
    def _frame_codes(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(frames memory-mapped, offsets) when the cache keeps frame codes that fit its clips."""
        try:
            stored = read_frame_codes(self.paths)
        except (ValueError, OSError, EOFError):
            return None
        if stored is None:
            return None
        frames, offsets = stored
        n_codebooks = int(self.manifest["model"]["n_codebooks"])
        if offsets.shape != (self.n_clips + 1,) or frames.ndim != 2 or frames.shape[1] != n_codebooks \
                or int(offsets[0]) != 0 or int(offsets[-1]) != len(frames) or np.any(np.diff(offsets) < 1):
            return None
        return frames, offsets

    def frame_codes(self, clip_id: int) -> np.ndarray | None:
        """(n_frames, n_codebooks) int16 clip ``clip_id``'s DAC codes, frame by frame (one
        frame per hop_length samples); None when the cache keeps none (made before they were
        kept, or synthetic). Raises IndexError outside 0..n_clips-1."""
        if not 0 <= clip_id < self.n_clips:
            raise IndexError(clip_id)
        stored = self._frame_codes
        if stored is None:
            return None
        frames, offsets = stored
        return np.asarray(frames[int(offsets[clip_id]):int(offsets[clip_id + 1])])

    @functools.cached_property
    def quantizer(self) -> dict[str, np.ndarray] | None:
        """DAC's quantizer as tables (``writers.write_quantizer``) when the cache keeps it and
        it fits the manifest's model; else None."""
        tables = read_quantizer(self.paths)
        if tables is None or tables["codebooks"].shape[0] != int(self.manifest["model"]["n_codebooks"]):
            return None
        return tables

    @property
    def untrained(self) -> bool:
        return bool(self.manifest["model"]["weights"].get("untrained"))

    @property
    def synthetic(self) -> bool:
        return bool(self.manifest.get("synthetic"))

    @property
    def knn_k(self) -> int:
        """How many neighbours the cache stores per clip (the most the app can show)."""
        return int(self.manifest["knn_k"])

    @property
    def seed(self) -> int:
        return int(self.manifest["seed"])

    @property
    def name(self) -> str:
        return str(self.manifest.get("name", "collection"))

    @property
    def model(self) -> dict:
        """{family, type, sample_rate, hop_length, n_codebooks, codebook_dim, weights}."""
        return self.manifest["model"]

    def dim(self, representation: str) -> int:
        """The dimension of ``representation``'s full space."""
        return int(self.manifest["representations"][representation]["dim"])

    def title(self, representation: str) -> str:
        """'z (1024-D latent)': how the page names ``representation``."""
        return str(self.manifest["representations"][representation]["title"])

    def encoder(self, representation: str) -> str:
        """The encoder that made ``representation``: 'dac', 'mfcc', or the name of one beside
        them ('resemblyzer', a Hugging Face model's name); caches made before encoders were
        recorded: 'mfcc' for mfcc, else 'dac'."""
        entry = self.manifest["representations"][representation]
        return str(entry.get("encoder") or ("mfcc" if representation == "mfcc" else "dac"))

    def trained(self, representation: str) -> bool:
        """Whether ``representation`` comes from trained weights (MFCC has none: False; DAC's
        follow the manifest's weights when the entry does not say)."""
        entry = self.manifest["representations"][representation]
        if "trained" in entry:
            return bool(entry["trained"])
        return False if self.encoder(representation) == "mfcc" else not self.untrained

    def encoders(self) -> list[tuple[str, bool]]:
        """[(encoder, trained)] in the order the representations come, each once."""
        seen: dict[str, bool] = {}
        for rep in self.representations:
            seen.setdefault(self.encoder(rep), self.trained(rep))
        return list(seen.items())

    def has_representation(self, representation) -> bool:
        return isinstance(representation, str) and representation in self.manifest["representations"]

    def clip_or_none(self, value) -> int | None:
        """``value`` as a clip id of this cache (an int, or a string of one, in 0..n_clips-1),
        else None: the one check of a clip id that came from outside."""
        if isinstance(value, bool):
            return None
        try:
            clip = int(value)
        except (TypeError, ValueError, OverflowError):
            return None
        return clip if 0 <= clip < self.n_clips else None

    def clamp_k(self, value, default: int) -> int:
        """A requested neighbour count -> 1..knn_k (``default`` when it is not a number)."""
        try:
            k = int(value)
        except (TypeError, ValueError, OverflowError):
            k = default
        return min(max(k, 1), self.knn_k)

    def depths(self) -> list[tuple[int, str]]:
        """[(q, representation)] of the stored depths, ascending, ending with (n_codebooks,
        'z'); [] for a cache made before depths existed (or with ``--depths`` none)."""
        reps = self.manifest["representations"]
        found = sorted((int(d["depth"]), name) for name, d in reps.items() if d.get("depth"))
        return found if len(found) > 1 else []

    def pooling(self, representation: str) -> str:
        """What one clip's vector of ``representation`` is, in words: the manifest's description
        ("quantized latent z, mean over time"): every clip is pooled over its frames."""
        entry = self.manifest["representations"].get(representation) or {}
        return str(entry.get("description") or representation)

    def kbps(self, representation: str) -> float | None:
        """The bitrate of a depth representation (z included), None for the others."""
        return self.manifest["representations"][representation].get("kbps")

    @property
    def reconstruction_depths(self) -> list[int]:
        """The depths whose reconstructions precompute wrote ([] for older caches)."""
        return list((self.manifest.get("reconstructions") or {}).get("depths") or [])

    @property
    def reconstructed_clips(self) -> int:
        """How many clips have decoded audio (``--reconstruct-max-clips`` bounds it)."""
        return int((self.manifest.get("reconstructions") or {}).get("n_clips") or 0)

    @staticmethod
    def depth_or_none(value) -> int | None:
        """A codebook count from outside (a URL's ``q``): 1 to 3 ASCII digits, else None."""
        text = str(value)
        return int(text) if re.fullmatch(r"[0-9]{1,3}", text) else None

    def reconstruction_path(self, clip_id: int, depth: int) -> Path | None:
        """Clip ``clip_id`` decoded from ``depth`` codebooks, if the cache holds it, else None."""
        if depth not in self.reconstruction_depths or self.clip_or_none(clip_id) is None:
            return None
        path = self.paths.reconstruction(depth, self.clips["audio"][clip_id])
        return path if path.is_file() else None

    def code_counts(self) -> np.ndarray | None:
        """(n_codebooks, codebook_size) int64 code counts, None for a cache without them."""
        return self._code_counts

    @property
    def encode_settings(self) -> dict | None:
        """How the encoder ran (manifest "encode"), None for caches without it."""
        value = self.manifest.get("encode")
        return dict(value) if isinstance(value, dict) else None

    def sample_3d(self) -> np.ndarray | None:
        """(n_sample,) int64 sorted clip ids the 3D views draw (and the 3D t-SNE was fitted
        on), or None when they draw every clip."""
        return self._sample_3d

    @property
    def metrics_rows(self) -> list[dict]:
        """metrics.json's rows: one per representation and space, as precompute wrote them."""
        return list(self.metrics["rows"])

    def trust(self, representation: str, view: str) -> dict | None:
        """metrics.json's trust row of ``view`` of ``representation`` (None: not computed, as
        in caches made before it): {"trustworthiness", "continuity", "k", "n"}."""
        for row in self.metrics.get("trust") or []:
            if isinstance(row, dict) and row.get("representation") == representation \
                    and row.get("view") == view:
                return row
        return None

    @property
    def metrics_params(self) -> dict:
        """How the metrics were computed (distances, k, silhouette sample, seed)."""
        return dict(self.metrics.get("params", {}))

    @property
    def identity(self) -> str:
        """16 hex digits that differ between any two caches (a hash of manifest.json, which
        holds the plan id and the creation time): names this cache in URLs the browser keeps."""
        return self._identity

    def audio_path(self, clip_id: int) -> Path:
        """The playable file of clip ``clip_id`` (0 <= clip_id < n_clips); raises IndexError."""
        if not 0 <= clip_id < self.n_clips:
            raise IndexError(clip_id)
        return self.paths.audio(self.clips["audio"][clip_id])


def _read_manifest(paths: CachePaths) -> tuple[dict, str]:
    """The validated manifest and the cache's identity (a hash of the very bytes read)."""
    if not paths.root.is_dir():
        raise CacheError(f"{paths.root}: no such cache directory. Make one with "
                         f"`python precompute.py --demo --untrained --out {paths.root}`.")
    if not paths.manifest.is_file():
        hint = " (a run is in progress or was interrupted: rerun the same command to resume)" \
            if paths.work_dir.is_dir() else ""
        raise CacheError(f"{paths.manifest}: missing, so the cache is not complete{hint}. "
                         f"Run precompute.py to build it.")
    try:
        raw = paths.manifest.read_bytes()
        manifest = json.loads(raw)
    except PermissionError:
        raise CacheError(unreadable_message(paths.manifest, paths.root))
    except (ValueError, OSError) as err:
        raise damaged(paths.manifest, f"not valid JSON ({err})", paths.root)
    version = manifest.get("format_version") if isinstance(manifest, dict) else None
    if version != FORMAT_VERSION:
        raise CacheError(f"{paths.manifest}: cache format version {version!r}, this dacviz reads "
                         f"version {FORMAT_VERSION}. Rebuild the cache with this version's "
                         f"precompute.py (the command that made it is in the manifest).")
    problem = manifest_problem(manifest)
    if problem:
        raise damaged(paths.manifest, problem, paths.root)
    return manifest, hashlib.sha256(raw).hexdigest()[:16]


def damaged(path: Path, problem: str, root: Path) -> CacheError:
    """The refusal of a cache file that reads but holds the wrong thing (``problem``, in
    words), with the fix: one line. A complete cache is never recomputed in place, hence the
    delete."""
    return CacheError(f"{path}: {problem}. The cache is damaged: delete {root} and rebuild it "
                      f"with precompute.py (the command that made it is manifest.json's \"command\").")


def open_cache(root: Path | str) -> Cache:
    """Open and validate a complete cache; raises CacheError with a clear message (a folder
    this process may not enter included: ``Path.is_file`` raises then)."""
    try:
        return Cache(root)
    except PermissionError as err:
        raise CacheError(unreadable_message(Path(err.filename or root), Path(root))) from None

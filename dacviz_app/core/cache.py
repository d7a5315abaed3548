"""The dacviz cache format: the one contract between precompute and the app.

Everything that knows a file name inside a cache directory lives here. A cache is a
directory::

    manifest.json            format_version, dacviz_version, name, created, command, source,
                             synthetic, plan_id, model {family, type, sample_rate, hop_length,
                             n_codebooks, codebook_dim, weights}, audio {format, subtype,
                             channels, sample_rate}, n_clips, n_skipped, knn_k, seed,
                             representations {name: {dim, title, description}}, projections
                             [view names], sample_3d (null or {"n", "seed"}), depths [q...]
                             (z_q<q> representations), reconstructions {"depths", "n_clips",
                             "max_clips"}, encode (null for synthetic caches and caches
                             made before it) {"device", "device_name", "precision", "compile",
                             "torch", "batch_size", "batch_seconds", "agreement": null or
                             {"n", "k", "seed", "max_relative_error", "mean_relative_error",
                             "knn_agreement"}: the precision's cost against fp32, recomputable
                             from arrays/precision_reference.npz}. Written LAST
                             (``make_manifest``, ``finish``): a cache without it is incomplete
                             (a run in progress or interrupted).
    clips.json               per-clip metadata, columnar: {"columns": {name: [n values]}}
                             always has COMPUTED_CLIP_COLUMNS; a CSV's columns follow
    skipped.json             the clips not encoded: up to SKIPPED_LISTED of them, the list
                             [{"source": str, "label": str, "reason": str}]; above, grouped:
                             {"n_skipped": int, "reasons": [{"reason": kind (``skip_kind``),
                             "count": int, "examples": [SKIPPED_EXAMPLES entries as above]}],
                             "all": "skipped_all.jsonl.gz"} (``write_skipped``)
    skipped_all.jsonl.gz     only beside a grouped skipped.json: every skipped clip, one JSON
                             object {"source", "label", "reason"} a line, gzip-compressed
    metrics.json             {"params": {...}, "rows": [{representation, space, dim, silhouette,
                             silhouette_sample, davies_bouldin, knn_accuracy}]}
    arrays/<rep>/embedding.npy      (n_clips, dim) float32, the full-space vectors
    arrays/<rep>/<view>.npy         (n_clips, 2|3) float32, one per row of ``spaces.VIEWS``
    arrays/<rep>/<view>.json        how it was made: {"method": "pca", "explained_variance_ratio":
                                    [..]} or {"method": "tsne", "perplexity": .., "seed": ..}
    arrays/<rep>/<view>_basis.npz   PCA views only: "mean" (dim,) and "components" (axes, dim)
                                    float64, the fitted PCA, so that a query is placed exactly
                                    (``projections.pca_place``); caches made before it lack it
    arrays/<rep>/knn_index.npy      (n_clips, k) int32, nearest other clips, closest first
    arrays/<rep>/knn_distance.npy   (n_clips, k) float32, cosine distance 1 - cos
    arrays/sample_3d.npy            (n_sample,) int64 sorted clip ids, only above
                                    ``projections.MAX_3D_POINTS`` clips: the clips the 3D t-SNE
                                    was fitted on, and the clips the 3D views draw
    arrays/code_counts.npy          (n_codebooks, codebook_size) int64: how often each level used
                                    each codebook entry over all clips' frames
    arrays/precision_reference.npz  only for a precision other than fp32 (or a compiled
                                    encoder): "ids" (m,) int64 sorted clip ids, "z" (m, 1024)
                                    float32 their pooled z encoded again in plain fp32
    audio/<name>.wav                mono 16-bit PCM at the model's sample rate
    audio/q<q>/<name>.wav           the clip decoded by DAC from its first q codebooks (the depths
                                    of manifest["reconstructions"], for a spread of clips)
    plan.json                       what the results depend on (clips with their size and
                                    modification time, model, settings) and its hash, plan_id;
                                    compact JSON, one line (``write_plan``)
    work/                           resume state of an unfinished run (encoded chunks,
                                    t-SNE's wider neighbour tables)
    .lock                           only while a run writes the directory: held with flock,
                                    names the pid and command that hold it

Every file is written atomically (temporary file in the same directory, fsync, rename), so
a crash never leaves a file that looks complete and is not; files get the mode the umask
gives (0644 under the usual 022), so a cache built by one user can be served by another.
Arrays are plain ``.npy`` files, opened memory-mapped by the reader.
"""
from __future__ import annotations

import errno
import fcntl
import gzip
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from .. import __version__
from .models import MODEL_CONFIGS, hop_length
from .representations import describe
from .spaces import VIEWS, VIEW_NAMES

FORMAT_VERSION = 1
REQUIRED_CLIP_COLUMNS = ("id", "label", "speaker", "source", "duration_s", "audio")
COMPUTED_CLIP_COLUMNS = REQUIRED_CLIP_COLUMNS + ("original_rate", "channels")
USER_COLUMN_PREFIX = "csv_"


class CacheError(Exception):
    """A cache that cannot be used; the message names the file and the fix."""


# ----------------------------------------------------------------------------- writing
@lru_cache(maxsize=1)
def _file_mode() -> int:
    """The mode a plain ``open()`` would give a new file under this process's umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


TEMPORARY_SUFFIX = ".tmp"


def _atomic_write(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX, dir=path.parent)
    try:
        os.fchmod(fd, _file_mode())  # mkstemp's 0600 would lock every other user out
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def remove_partial_files(root: Path) -> int:
    """Delete the temporary files a killed run left half-written under ``root`` (a run that
    dies by ``kill -9`` inside ``_atomic_write`` cannot clean up). Call it holding the
    directory's lock, so no live writer owns them. Returns how many were removed."""
    removed = 0
    for path in Path(root).rglob(f".*{TEMPORARY_SUFFIX}"):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that the file is either absent or complete."""
    _atomic_write(path, lambda handle: handle.write(data))


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically. NaN is written as null."""
    text = json.dumps(_nan_to_none(obj), indent=1, sort_keys=False)
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    """Save one array as ``.npy``, atomically."""
    _atomic_write(path, lambda handle: np.save(handle, np.ascontiguousarray(array)))


def atomic_save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Save several arrays as one ``.npz``, atomically (used for resume chunks)."""
    _atomic_write(path, lambda handle: np.savez(handle, **arrays))


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
                     distance: np.ndarray) -> None:
    """The (n_clips, k) int32 neighbour ids and (n_clips, k) float32 cosine distances."""
    atomic_save_npy(paths.array(representation, "knn_distance"), np.asarray(distance, np.float32))
    atomic_save_npy(paths.array(representation, "knn_index"), np.asarray(index, np.int32))


def write_code_counts(paths: "CachePaths", counts: np.ndarray) -> None:
    """(n_codebooks, codebook_size) int64 code counts of the whole collection."""
    atomic_save_npy(paths.code_counts, np.asarray(counts, np.int64))


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


SKIPPED_LISTED = 1_000  # skipped.json lists the skipped clips one by one up to this many
SKIPPED_EXAMPLES = 5  # above, it groups them by reason, with this many examples of each
SKIPPED_ALL = "skipped_all.jsonl.gz"  # then every skipped clip is in this file


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
    _atomic_write(paths.skipped_all, lambda handle: _stream_skipped(skipped, tally, handle))
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
    _atomic_write(paths.plan, write)


def write_metrics(paths: "CachePaths", params: dict, rows: list[dict],
                  trust: list[dict] | None = None) -> None:
    """metrics.json: how the metrics were computed, one row per representation, space and
    column, and ``trust``: one row per representation and 2D/3D view, {"representation",
    "view", "trustworthiness", "continuity", "k", "n"} (``analysis.trust_scores``)."""
    atomic_write_json(paths.metrics, {"params": params, "rows": rows, "trust": trust or []})


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


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    return obj


def read_json(path: Path) -> Any:
    with open(path, "rb") as handle:
        return json.loads(handle.read())


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


class CacheLocked(Exception):
    """Another live process is writing the same cache directory."""


class DirectoryLock:
    """An exclusive lock on a cache directory while a run writes it (``.lock``, flock'd).

    The kernel drops a flock when its process dies, even by ``kill -9``, so a crashed run
    never leaves a stale lock. The file names the holder (pid, command) for the message a
    second run prints. Released and removed by ``release`` (or leaving the ``with``).
    """

    def __init__(self, root: Path, command: str = ""):
        self.path = CachePaths(Path(root)).lock
        self.command = command
        self._fd: int | None = None
        self.warning = ""  # set when the filesystem cannot lock (then the run goes on unlocked)

    def acquire(self) -> "DirectoryLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            try:  # never through a symlink: the lock file is written and removed
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, _file_mode())
            except OSError as err:
                if err.errno == errno.ELOOP:
                    raise CacheLocked(f"{self.path} is a symbolic link; remove it (a dacviz "
                                      f"lock file is a plain file).") from None
                raise
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                if err.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                    os.close(fd)
                    self.warning = (f"{self.path.parent} is on a filesystem that cannot lock "
                                    f"files ({err.strerror}); make sure no other run writes it.")
                    return self
                holder = os.read(fd, 4096).decode("utf-8", "replace").strip() or "unknown process"
                os.close(fd)
                if err.errno in (errno.EAGAIN, errno.EACCES):
                    raise CacheLocked(f"{self.path.parent} is being written by another run "
                                      f"({holder}). Wait for it to finish or stop it; two runs "
                                      f"must not write one cache.") from None
                raise
            try:  # the holder before us may have removed the file after we opened it
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}: {self.command}".encode()[:4000])
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "DirectoryLock":
        return self.acquire()

    def __exit__(self, *_exc) -> None:
        self.release()


# ----------------------------------------------------------------------------- layout
@dataclass(frozen=True)
class CachePaths:
    """File names inside one cache directory; nothing outside this module builds them."""

    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def clips(self) -> Path:
        return self.root / "clips.json"

    @property
    def skipped(self) -> Path:
        return self.root / "skipped.json"

    @property
    def skipped_all(self) -> Path:
        return self.root / SKIPPED_ALL

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def audio_dir(self) -> Path:
        return self.root / "audio"

    @property
    def work_dir(self) -> Path:
        return self.root / "work"

    @property
    def plan(self) -> Path:
        return self.root / "plan.json"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    @property
    def legacy_plan(self) -> Path:
        """Where caches made before 2026-11-27 kept the plan of an unfinished run."""
        return self.work_dir / "plan.json"

    def work_table(self, representation: str, kind: str) -> Path:
        """t-SNE's wider neighbour table ('knn_index' or 'knn_distance'), kept until the run ends."""
        return self.work_dir / "tsne_neighbours" / representation / f"{kind}.npy"

    def chunk(self, index: int) -> Path:
        return self.work_dir / "chunks" / f"chunk_{index:06d}.npz"

    def audio_name(self, plan_index: int) -> str:
        return f"{plan_index:07d}.wav"

    def audio(self, name: str) -> Path:
        return self.audio_dir / name

    @property
    def code_counts(self) -> Path:
        return self.root / "arrays" / "code_counts.npy"

    def reconstruction(self, depth: int, name: str) -> Path:
        """The clip ``name`` decoded from its first ``depth`` codebooks."""
        return self.audio_dir / f"q{int(depth)}" / name

    @property
    def sample_3d(self) -> Path:
        return self.root / "arrays" / "sample_3d.npy"

    @property
    def precision_reference(self) -> Path:
        return self.root / "arrays" / "precision_reference.npz"

    def array(self, representation: str, kind: str) -> Path:
        """kind: 'embedding', a view name (``spaces.VIEW_NAMES``), 'knn_index' or 'knn_distance'."""
        return self.root / "arrays" / representation / f"{kind}.npy"

    def projection_info(self, representation: str, view: str) -> Path:
        """The JSON sidecar saying how ``view`` of ``representation`` was made."""
        return self.root / "arrays" / representation / f"{view}.json"

    def pca_basis(self, representation: str, view: str) -> Path:
        """The fitted PCA of a PCA ``view`` of ``representation`` (``write_pca_basis``)."""
        return self.root / "arrays" / representation / f"{view}_basis.npz"


# ----------------------------------------------------------------------------- shapes
@dataclass(frozen=True)
class Kind:
    """What one JSON value must be: ``test`` says whether a value is one, ``said`` names it in
    a message; ``optional``: the key may be absent."""

    test: Callable[[Any], bool]
    said: str
    optional: bool = False


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """An int, or a float that is not NaN or infinite (JSON's NaN reads as one)."""
    return _is_whole(value) or (isinstance(value, float) and math.isfinite(value))


def whole(least: int) -> Kind:
    """An int (not a bool) of at least ``least``."""
    return Kind(lambda v: _is_whole(v) and v >= least, f"a whole number >= {least}")


def maybe(kind: Kind) -> Kind:
    """``kind``, or the key absent."""
    return Kind(kind.test, kind.said, optional=True)


def or_null(kind: Kind) -> Kind:
    """``kind``, or null."""
    return Kind(lambda v: v is None or kind.test(v), f"null or {kind.said}", kind.optional)


def list_of(kind: Kind) -> Kind:
    """A list whose every item is ``kind``."""
    return Kind(lambda v: isinstance(v, list) and all(kind.test(x) for x in v),
                f"a list, each {kind.said}")


TEXT = Kind(lambda v: isinstance(v, str), "a string")
NUMBER = Kind(_is_number, "a finite number")
FLAG = Kind(lambda v: isinstance(v, bool), "true or false")
OBJECT = Kind(lambda v: isinstance(v, dict), "an object")
REPRESENTATION_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")  # one safe file name

# every key of a manifest the code reads, with what it must be (the module docstring has all)
MANIFEST_FIELDS = {
    "n_clips": whole(1), "knn_k": whole(1), "seed": whole(0), "plan_id": TEXT, "name": maybe(TEXT),
    "synthetic": maybe(FLAG), "model": OBJECT,
    "representations": Kind(lambda v: isinstance(v, dict) and len(v) > 0, "a non-empty object"),
    "sample_3d": maybe(or_null(OBJECT)), "reconstructions": maybe(or_null(OBJECT)),
    "encode": maybe(or_null(OBJECT))}
MODEL_FIELDS = {"type": Kind(lambda v: v in MODEL_CONFIGS, " or ".join(map(repr, MODEL_CONFIGS))),
                "sample_rate": whole(1), "n_codebooks": whole(1), "codebook_size": maybe(whole(1)),
                "weights": OBJECT}
WEIGHTS_FIELDS = {"untrained": maybe(or_null(FLAG)), "path": maybe(or_null(TEXT)),
                  "sha256": maybe(or_null(TEXT))}
REPRESENTATION_FIELDS = {"dim": whole(1), "title": TEXT, "description": maybe(TEXT),
                         "encoder": maybe(or_null(TEXT)), "trained": maybe(FLAG),
                         "depth": maybe(or_null(whole(1))), "kbps": maybe(or_null(NUMBER)),
                         "weights": maybe(or_null(OBJECT))}
SAMPLE_3D_FIELDS = {"n": whole(1)}
RECONSTRUCTIONS_FIELDS = {"depths": maybe(or_null(list_of(whole(1)))),
                          "n_clips": maybe(or_null(whole(0)))}
AGREEMENT_FIELDS = {"n": maybe(whole(0)), "k": maybe(whole(0)), "knn_agreement": maybe(NUMBER),
                    "max_relative_error": maybe(NUMBER)}
METRICS_FIELDS = {"rows": list_of(OBJECT), "params": maybe(OBJECT),
                  "trust": maybe(or_null(list_of(OBJECT)))}
METRICS_PARAMS_FIELDS = {"knn_accuracy_k": maybe(or_null(whole(1))), "columns": maybe(list_of(TEXT))}
METRIC_ROW_FIELDS = {"representation": TEXT, "space": TEXT, "dim": whole(1),
                     "column": maybe(TEXT), "silhouette": or_null(NUMBER),
                     "davies_bouldin": or_null(NUMBER), "knn_accuracy": or_null(NUMBER),
                     "silhouette_cosine": maybe(or_null(NUMBER)), "chance": maybe(or_null(NUMBER))}
TRUST_ROW_FIELDS = {"trustworthiness": maybe(or_null(NUMBER)),
                    "continuity": maybe(or_null(NUMBER)), "k": maybe(or_null(whole(1)))}
PROJECTION_INFO_FIELDS = {"pca": {"explained_variance": NUMBER},  # by the view's method
                          "tsne": {"perplexity": NUMBER}}
SKIPPED_FIELDS = {"source": TEXT, "label": TEXT, "reason": TEXT}
SKIPPED_GROUP_FIELDS = {"reason": TEXT, "count": whole(1), "examples": list_of(OBJECT)}


def described(value: Any) -> str:
    """A JSON value in a few words, for a message: 'the text "120"', 'a list of 3', 'null'."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return repr(value)[:40]
    if isinstance(value, str):
        return f"the text {json.dumps(value[:40])}{'...' if len(value) > 40 else ''}"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return "an object"


def shape_problem(value: Any, fields: dict[str, Kind], where: str = "") -> str | None:
    """The first of ``fields`` that ``value`` (a JSON object) lacks or holds as something else,
    in words ('"knn_k" is missing (expected a whole number >= 1)'); None when all are right.
    ``where``: the place of ``value`` in its file, said before the key ('model.')."""
    if not isinstance(value, dict):
        place = f'"{where.rstrip(".")}"' if where else "the file"
        return f"{place} is {described(value)}, expected an object"
    for key, kind in fields.items():
        if key not in value:
            if not kind.optional:
                return f'"{where}{key}" is missing (expected {kind.said})'
        elif not kind.test(value[key]):
            return f'"{where}{key}" is {described(value[key])}, expected {kind.said}'
    return None


def manifest_problem(manifest: dict) -> str | None:
    """What is wrong with the shape of a manifest of this format version, in words (the first
    thing found), or None: every key the code reads, nested ones included, has its type."""
    problem = shape_problem(manifest, MANIFEST_FIELDS)
    if problem:
        return problem
    model = manifest["model"]
    checks = [(model, MODEL_FIELDS, "model."), (model.get("weights"), WEIGHTS_FIELDS, "model.weights.")]
    for name, entry in manifest["representations"].items():
        if not REPRESENTATION_NAME.fullmatch(name) or name in (".", ".."):
            return f'"representations" has the name {json.dumps(name[:40])}, expected a plain file name'
        checks.append((entry, REPRESENTATION_FIELDS, f"representations.{name}."))
    for key, fields in (("sample_3d", SAMPLE_3D_FIELDS), ("reconstructions", RECONSTRUCTIONS_FIELDS)):
        if manifest.get(key) is not None:
            checks.append((manifest[key], fields, f"{key}."))
    agreement = (manifest.get("encode") or {}).get("agreement")
    if agreement is not None:
        checks.append((agreement, AGREEMENT_FIELDS, "encode.agreement."))
    return next(filter(None, (shape_problem(value, fields, where) for value, fields, where in checks)), None)


def metrics_problem(metrics: Any) -> str | None:
    """What is wrong with the shape of metrics.json (module docstring), or None."""
    problem = shape_problem(metrics, METRICS_FIELDS)
    if problem:
        return problem
    checks = [(metrics.get("params", {}), METRICS_PARAMS_FIELDS, "params.")]
    checks += [(row, METRIC_ROW_FIELDS, f"rows[{i}].") for i, row in enumerate(metrics["rows"])]
    checks += [(row, TRUST_ROW_FIELDS, f"trust[{i}].") for i, row in enumerate(metrics.get("trust") or [])]
    return next(filter(None, (shape_problem(value, fields, where) for value, fields, where in checks)), None)


def skipped_problem(skipped: Any) -> str | None:
    """What is wrong with the shape of skipped.json (a list, or the grouped form), or None."""
    if isinstance(skipped, list):
        entries = enumerate(skipped)
        return next(filter(None, (shape_problem(e, SKIPPED_FIELDS, f"[{i}].") for i, e in entries)), None)
    problem = shape_problem(skipped, {"n_skipped": whole(0), "reasons": list_of(OBJECT)})
    if problem:
        return problem
    for i, group in enumerate(skipped["reasons"]):
        problem = shape_problem(group, SKIPPED_GROUP_FIELDS, f"reasons[{i}].") or next(filter(None, (
            shape_problem(e, SKIPPED_FIELDS, f"reasons[{i}].examples[{j}].")
            for j, e in enumerate(group["examples"]))), None)
        if problem:
            return problem
    return None


ARRAY_DISTANCE_MAX = 2.0 + 1e-3  # a cosine distance 1 - cos is at most 2 (float rounding aside)


def array_problem(path: Path, kind: str, n_clips: int) -> str | None:
    """What is wrong with the dtype or the values of the array of ``kind`` at ``path`` (its shape
    is checked already), or None: "knn_index" clip ids in 0..n_clips-1, an integer dtype;
    "knn_distance" in 0..2; views finite; every other array a float dtype (an embedding's
    values are not read: it is the largest file). Values come from min and max of a memory
    map opened here and closed on return, so the caller's map stays unread."""
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    if kind == "knn_index":
        if array.dtype.kind not in "iu":
            return f"dtype {array.dtype}, expected int32 clip ids"
        low, high = int(array.min()), int(array.max())
        if low < 0 or high >= n_clips:
            return f"clip ids from {low} to {high}, expected 0 to {n_clips - 1} ({n_clips} clips)"
        return None
    if array.dtype.kind != "f":
        return f"dtype {array.dtype}, expected float32"
    if kind == "embedding":
        return None
    low, high = float(array.min()), float(array.max())
    if not (np.isfinite(low) and np.isfinite(high)):
        return "values that are not finite (NaN or infinity)"
    if kind == "knn_distance" and (low < 0 or high > ARRAY_DISTANCE_MAX):
        return f"cosine distances from {low:g} to {high:g}, expected 0 to 2"
    return None


# ----------------------------------------------------------------------------- reading
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

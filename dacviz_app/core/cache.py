"""The dacviz cache format: the one contract between precompute and the app.

Everything that knows a file name inside a cache directory lives here. A cache is a
directory::

    manifest.json            format version, model, weights, sample rate, representations,
                             creation time, the command that made it. Written LAST: a cache
                             without it is incomplete (a run in progress or interrupted).
    clips.json               per-clip metadata, columnar: {"columns": {name: [n values]}}
                             always has id, label, speaker, source, duration_s, audio
    skipped.json             [{"source": str, "reason": str}] clips that were not encoded
    metrics.json             {"params": {...}, "rows": [{representation, space, silhouette,
                             davies_bouldin, knn_accuracy}]}
    arrays/<rep>/embedding.npy      (n_clips, dim) float32, the full-space vectors
    arrays/<rep>/<projection>.npy   (n_clips, 2|3) float32 for pca2, pca3, tsne2, tsne3
    arrays/<rep>/<projection>.json  how it was made: {"method": "pca", "explained_variance_ratio":
                                    [..]} or {"method": "tsne", "perplexity": .., "seed": ..}
    arrays/<rep>/knn_index.npy      (n_clips, k) int32, nearest other clips, closest first
    arrays/<rep>/knn_distance.npy   (n_clips, k) float32, cosine distance 1 - cos
    audio/<name>.wav                mono 16-bit PCM at the model's sample rate
    plan.json                       what the results depend on (clips with their size and
                                    modification time, model, settings) and its hash, plan_id
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
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 1
REPRESENTATIONS = ("z", "codes_concat", "codes_mean", "mfcc")
PROJECTIONS = ("pca2", "pca3", "tsne2", "tsne3")
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

    def array(self, representation: str, kind: str) -> Path:
        """kind: 'embedding', one of PROJECTIONS, 'knn_index' or 'knn_distance'."""
        return self.root / "arrays" / representation / f"{kind}.npy"

    def projection_info(self, representation: str, projection: str) -> Path:
        """The JSON sidecar saying how ``projection`` of ``representation`` was made."""
        return self.root / "arrays" / representation / f"{projection}.json"


# ----------------------------------------------------------------------------- reading
def _load_array(path: Path, root: Path) -> np.ndarray:
    rel = path.relative_to(root)
    if not path.is_file():
        raise CacheError(f"{path}: missing. The cache is incomplete; rerun precompute.py "
                         f"with the command in manifest.json to rebuild it.")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except PermissionError:
        raise CacheError(unreadable_message(path, root))
    except (ValueError, OSError, EOFError) as err:
        raise CacheError(f"{path}: unreadable or truncated ({err}). Delete {rel} and rerun "
                         f"precompute.py with the same command; it recomputes missing files.")


class Cache:
    """A complete cache, opened read-only. Arrays are memory-mapped and validated on open.

    Attributes:
        manifest: the manifest dict.
        clips: columnar clip metadata, ``{column: list of n_clips values}``.
        n_clips: number of encoded clips.
    """

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.paths = CachePaths(self.root)
        self.manifest, self._identity = _read_manifest(self.paths)
        self.clips: dict[str, list] = self._read_clips()
        self.n_clips = int(self.manifest["n_clips"])
        self.representations: list[str] = list(self.manifest["representations"])
        self.metrics: dict = self._read_json_file(self.paths.metrics)
        self.skipped: list = self._read_json_file(self.paths.skipped)
        self._arrays: dict[tuple[str, str], np.ndarray] = {}
        self._validate_arrays()
        self.projection_info: dict[str, dict[str, dict]] = {
            rep: {p: self._read_json_file(self.paths.projection_info(rep, p)) for p in PROJECTIONS}
            for rep in self.representations}

    def _read_json_file(self, path: Path):
        if not path.is_file():
            raise CacheError(f"{path}: missing. Rerun precompute.py with the command in "
                             f"manifest.json to complete the cache.")
        try:
            return read_json(path)
        except PermissionError:
            raise CacheError(unreadable_message(path, self.root))
        except (ValueError, OSError) as err:
            raise CacheError(f"{path}: not valid JSON ({err}). Delete it and rerun precompute.py "
                             f"with the command in manifest.json.")

    def _read_clips(self) -> dict[str, list]:
        data = self._read_json_file(self.paths.clips)
        columns = data.get("columns") if isinstance(data, dict) else None
        if not isinstance(columns, dict) or any(c not in columns for c in REQUIRED_CLIP_COLUMNS):
            raise CacheError(f"{self.paths.clips}: lacks the columns {REQUIRED_CLIP_COLUMNS}. "
                             f"Rebuild the cache with precompute.py.")
        return columns

    def _validate_arrays(self) -> None:
        n = self.n_clips
        for name, column in self.clips.items():
            if len(column) != n:
                raise CacheError(f"{self.paths.clips}: column {name!r} has {len(column)} values, "
                                 f"the manifest says {n} clips. Rebuild the cache with precompute.py.")
        k = int(self.manifest["knn_k"])
        for rep in self.representations:
            dim = int(self.manifest["representations"][rep]["dim"])
            expected = {"embedding": (n, dim), "knn_index": (n, k), "knn_distance": (n, k)}
            expected.update({p: (n, int(p[-1])) for p in PROJECTIONS})
            for kind, shape in expected.items():
                path = self.paths.array(rep, kind)
                array = _load_array(path, self.root)
                if array.shape != shape:
                    raise CacheError(f"{path}: shape {array.shape}, expected {shape} "
                                     f"({n} clips). The cache is inconsistent; rebuild it with "
                                     f"precompute.py.")
                self._arrays[(rep, kind)] = array

    # -- accessors -------------------------------------------------------------------
    def embedding(self, representation: str) -> np.ndarray:
        """(n_clips, dim) float32, memory-mapped."""
        return self._arrays[(representation, "embedding")]

    def projection(self, representation: str, projection: str) -> np.ndarray:
        """(n_clips, 2 or 3) float32 coordinates of ``projection`` in PROJECTIONS."""
        return self._arrays[(representation, projection)]

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
        return int(self.manifest["knn_k"])

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
        raise CacheError(f"{paths.manifest}: not valid JSON ({err}). Rebuild the cache.")
    version = manifest.get("format_version") if isinstance(manifest, dict) else None
    if version != FORMAT_VERSION:
        raise CacheError(f"{paths.manifest}: cache format version {version!r}, this dacviz reads "
                         f"version {FORMAT_VERSION}. Rebuild the cache with this version's "
                         f"precompute.py (the command that made it is in the manifest).")
    return manifest, hashlib.sha256(raw).hexdigest()[:16]


def open_cache(root: Path | str) -> Cache:
    """Open and validate a complete cache; raises CacheError with a clear message (a folder
    this process may not enter included: ``Path.is_file`` raises then)."""
    try:
        return Cache(root)
    except PermissionError as err:
        raise CacheError(unreadable_message(Path(err.filename or root), Path(root))) from None

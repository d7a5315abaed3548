"""Atomic writes: every cache file is written to a temporary name, fsynced and renamed, with
the mode the umask gives; what a killed run left half-written is removed (``remove_partial_files``)."""

from __future__ import annotations

import json
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np


# ----------------------------------------------------------------------------- writing
@lru_cache(maxsize=1)
def _file_mode() -> int:
    """The mode a plain ``open()`` would give a new file under this process's umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


TEMPORARY_SUFFIX = ".tmp"


def atomic_write(path: Path, write) -> None:
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
    dies by ``kill -9`` inside ``atomic_write`` cannot clean up). Call it holding the
    directory's lock, so no live writer owns them. Returns how many were removed."""
    removed = 0
    for path in Path(root).rglob(f".*{TEMPORARY_SUFFIX}"):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that the file is either absent or complete."""
    atomic_write(path, lambda handle: handle.write(data))


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically. NaN is written as null."""
    text = json.dumps(_nan_to_none(obj), indent=1, sort_keys=False)
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    """Save one array as ``.npy``, atomically."""
    atomic_write(path, lambda handle: np.save(handle, np.ascontiguousarray(array)))


def atomic_save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Save several arrays as one ``.npz``, atomically (used for resume chunks)."""
    atomic_write(path, lambda handle: np.savez(handle, **arrays))


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



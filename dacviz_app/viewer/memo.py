"""A memo on disk that every gunicorn worker of one machine shares: JSON values under string
keys, bounded in entries, and cheap to keep bounded.

flask-caching's FileSystemCache (used before) scanned and sorted its whole folder on every
write once it held its threshold of entries: 700-870 ms a write at 20,000 entries, each one
blocking every client of a gevent worker. Here the entries are spread over SHARDS
subfolders by the key's hash, and a write that finds its own subfolder over its share
removes that subfolder's oldest entries: a write lists at most ``ceil(max_entries / SHARDS)``
+ 1 files, whatever the memo holds (``bench/bench_sound_memo.py`` measures both).

Values are JSON (never pickle: nothing read back can run code). A write that fails (a full
disk, a folder removed) is said in one log line and the value is simply not kept; a read that
fails is a miss.

Shapes: a key is any string (hashed: its length costs nothing on disk); a value is what
``json.dumps`` takes. ``private_folder`` gives the folder (this user's, no one else may write
it); ``remove_stale_private_folders`` clears the memos of caches gone since.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

SHARDS = 256
log = logging.getLogger("dacviz")


class SharedFileMemo:
    """A bounded JSON memo in ``folder`` (made if missing; the caller chooses a private one).

    Attributes:
        folder: where the SHARDS subfolders ("00".."ff") live.
        max_entries: the most entries it keeps (the share of each subfolder is
            ``ceil(max_entries / SHARDS)``, so it may hold up to SHARDS - 1 more in all).
    """

    def __init__(self, folder: Path | str, max_entries: int):
        self.folder = Path(folder)
        self.max_entries = int(max_entries)
        self.per_shard = max(1, math.ceil(self.max_entries / SHARDS))

    def _path(self, key: str) -> Path:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return self.folder / digest[:2] / f"{digest[2:]}.json"

    def get(self, key: str):
        """The value stored under ``key``, or None (absent, unreadable or damaged)."""
        try:
            return json.loads(self._path(key).read_bytes())
        except (OSError, ValueError):
            return None

    def set(self, key: str, value) -> bool:
        """Store ``value`` under ``key`` (atomically: a reader sees the old entry or the new
        one); then keep the key's subfolder at its share. False when it could not be written."""
        path = self._path(key)
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as handle:
                handle.write(json.dumps(value, separators=(",", ":")).encode())
            os.replace(tmp, path)
            tmp = None
        except OSError as err:
            log.warning("dacviz: a sound summary was not kept in the memo at %s (%s)",
                        self.folder, err.strerror or type(err).__name__)
            return False
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
        self._prune(path.parent)
        return True

    def _prune(self, shard: Path) -> None:
        """Remove the oldest entries of ``shard`` beyond its share (other workers may be
        removing the same ones: a file already gone is fine)."""
        try:
            entries = [e for e in os.scandir(shard) if e.name.endswith(".json")]
        except OSError:
            return
        if len(entries) <= self.per_shard:
            return
        for entry in sorted(entries, key=_written)[:len(entries) - self.per_shard]:
            try:
                os.unlink(entry.path)
            except OSError:
                pass

    def __len__(self) -> int:
        """How many entries it holds now (lists every subfolder: for tests and benches)."""
        return sum(1 for _ in self.folder.glob("??/*.json"))


def _written(entry: os.DirEntry) -> int:
    """When an entry was written (ns), 0 when it is already gone."""
    try:
        return entry.stat().st_mtime_ns
    except OSError:
        return 0


STALE_MEMO_DAYS = 7


def remove_stale_private_folders(prefix: str, max_age_days: float = STALE_MEMO_DAYS) -> list[Path]:
    """Remove this user's private folders ``<temp>/<prefix>*-uid<uid>`` untouched for
    ``max_age_days`` (the memos of caches rebuilt or deleted since, or of an older summary
    version). Only folders this user owns, never a link. Returns those removed."""
    removed = []
    cutoff = time.time() - max_age_days * 86400
    for folder in Path(tempfile.gettempdir()).glob(f"{prefix}*-uid{os.getuid()}"):
        try:
            st = os.lstat(folder)
            if folder.is_symlink() or st.st_uid != os.getuid() or st.st_mtime > cutoff:
                continue
            shutil.rmtree(folder)
            removed.append(folder)
        except OSError:
            continue  # another worker removed it first, or it is not ours to remove
    return removed


def private_folder(name: str) -> Path:
    """``<system temp>/<name>-uid<uid>``, made 0700 and used only if this user owns it and no one
    else may write it (what the memo reads back is drawn for every user: a folder another local
    user planted must never be trusted); otherwise a fresh private folder (then not shared)."""
    folder = Path(tempfile.gettempdir()) / f"{name}-uid{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        st = os.lstat(folder)
        if st.st_uid == os.getuid() and (st.st_mode & 0o077) == 0 and not folder.is_symlink():
            return folder
    except OSError:
        pass
    return Path(tempfile.mkdtemp(prefix=f"{name}-"))

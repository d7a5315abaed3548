"""The directory lock: one precompute run writes a cache directory at a time (``flock``,
dropped by the kernel when its process dies, even by ``kill -9``)."""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

from dacviz_app.cache.atomic import _file_mode
from dacviz_app.cache.paths import CachePaths


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



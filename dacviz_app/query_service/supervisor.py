"""Starting the encoder service beside the web server, and keeping it alive: restarted if it
dies, killed and restarted if it stops answering; the socket folders of servers killed with
-9 removed at the next start."""
from __future__ import annotations

from dacviz_app.query_service.client import status
from dacviz_app.query_service.protocol import (FOLDER_PREFIX, HEALTH_EVERY_S, HEALTH_FAILURES,
                                               RESTART_S, SOCKET_ENV)

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path


# ----------------------------------------------------------------------------- starting it
class EncoderProcess:
    """The service as the server that started it sees it: the process, its socket in a private
    folder (named with this server's pid, so that a later start can tell a folder left by a
    server killed with -9), and a thread that starts it again (at most every RESTART_S) if it
    dies (an out-of-memory kill, a crash), or kills it first if it stops answering (HEALTH_FAILURES
    status checks in a row; a stopped or hung process), on the same socket, so the workers
    never need to know."""

    def __init__(self, cache_dir: str, threads: int | None = None):
        remove_stale_folders()
        self.folder = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-"))  # 0700
        self.path = str(self.folder / "encoder.sock")
        self.command = [sys.executable, "-m", "dacviz_app.query_service.server", str(cache_dir), self.path]
        self.env = {**os.environ, **({"DACVIZ_ENCODER_THREADS": str(threads)} if threads else {})}
        self.stopping = threading.Event()
        self.restarts = 0
        self.process = self._spawn()
        threading.Thread(target=self._watch, daemon=True).start()

    def _spawn(self) -> subprocess.Popen:
        return subprocess.Popen(self.command, env=self.env, stdin=subprocess.DEVNULL,
                                start_new_session=True)  # Ctrl-C stops the server, which stops it

    def _watch(self) -> None:
        unanswered = 0
        while not self.stopping.wait(HEALTH_EVERY_S if self.process.poll() is None else 1.0):
            if self.process.poll() is None:
                unanswered = unanswered + 1 if self._silent() else 0
                if unanswered < HEALTH_FAILURES or self.stopping.is_set():
                    continue
                print(f"dacviz: the query encoder has not answered for {HEALTH_FAILURES} checks "
                      f"in a row (stopped or hung); killing it", file=sys.stderr, flush=True)
                self.process.kill()
                self.process.wait()
            unanswered = 0
            print(f"dacviz: the query encoder stopped (exit {self.process.returncode}); "
                  f"starting it again", file=sys.stderr, flush=True)
            self.restarts += 1
            self.stopping.wait(RESTART_S)
            if not self.stopping.is_set():
                self.process = self._spawn()

    def _silent(self) -> bool:
        """True when the running service did not answer a status request in ANSWER_TIMEOUT_S
        (a service still loading its model answers "starting": that is an answer)."""
        if not os.path.exists(self.path):
            return False  # not listening yet (the interpreter is starting): not a hang
        return "not answering" in str(status(self.path).get("reason") or "")

    def stop(self) -> None:
        """Stop it (terminate, then kill after 10 s) and remove its socket's folder."""
        self.stopping.set()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def remove_stale_folders(temp: str | None = None) -> list[Path]:
    """Remove the socket folders ``<temp>/dacviz-encoder-<pid>-*`` of servers that are gone
    (killed with -9: ``stop`` never ran). Only this user's folders, never a link, never one
    whose server pid is alive. Returns those removed."""
    removed = []
    for folder in Path(temp or tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*-*"):
        pid = folder.name[len(FOLDER_PREFIX):].partition("-")[0]
        try:
            st = os.lstat(folder)
            if not pid.isdigit() or folder.is_symlink() or st.st_uid != os.getuid() \
                    or _alive(int(pid)):
                continue
            shutil.rmtree(folder)
            removed.append(folder)
        except OSError:
            continue  # another server removed it first
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's process: not ours to judge
    return True


def start(cache_dir: str, threads: int | None = None) -> EncoderProcess:
    """Start the service for ``cache_dir`` in its own process and name its socket in this
    process's environment (the web workers forked after inherit it). Returns at once; the
    model loads in the background."""
    service = EncoderProcess(cache_dir, threads)
    os.environ[SOCKET_ENV] = service.path
    return service


def stop(service: EncoderProcess | None) -> None:
    """Stop a service ``start`` started (and remove its socket's folder)."""
    if service is not None:
        service.stop()



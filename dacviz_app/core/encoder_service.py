"""The encoder service: one process per server that encodes query clips, so that the web
workers never import torch (they stay small) and one model serves them all.

The server that starts the web workers starts it first (``start``: ``python -m dacviz_app``
and gunicorn's ``dacviz_app.gunicorn_conf``, which the Procfile names) and names its socket to
the workers in $DACVIZ_ENCODER_SOCKET. It listens on a Unix socket in a private folder (0700),
so only this user's processes on this machine reach it.

One model thread encodes, one query at a time; ``query.QUEUE_SIZE`` more may wait, and each
client address may have ``query.PER_CLIENT`` queries in the service. The web worker reads the
whole upload from its client first (a slow client holds no place here), then asks for
admission and, once admitted, sends the bytes at once over the local socket: a full queue is a
503, a client over its share a 429, never a wait. At most MAX_CONNECTIONS connections are
served at once. The model loads in the background: until it has, queries get 503 "starting".
The server that started it starts it again if it dies, and kills and restarts it if it stops
answering (``EncoderProcess``: a stopped or hung process); the web workers wait at most
ANSWER_TIMEOUT_S for any answer but the encoding itself, so meanwhile a query gets a 503 in
seconds.

Messages: frames of a 4-byte big-endian length and the bytes (JSON, or the audio file). No
pickle: the answer's vectors are JSON numbers.
  {"op": "status"} -> {"state": "starting" | "ready" | "off", "reason", "unavailable", "queued",
                       "encoding"} ("queued": admitted queries not yet being encoded)
  {"op": "encode", "client": address} -> {"status": 100} (admitted) or {"status": 429|503, "error"};
  once admitted, the audio file's bytes -> {"status": 200, "vectors": {rep: [..]}, "duration_s",
  "encode_ms", "waited_ms", "unavailable"} or {"status": 4xx|5xx, "error": reason}.

examples:
  python -m dacviz_app.core.encoder_service CACHE_DIR SOCKET_PATH   # what ``start`` runs
"""
from __future__ import annotations

import json
import os
import queue
import shutil
import socket
import socketserver
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .query import ENCODE_TIMEOUT_S, MAX_UPLOAD_BYTES, PER_CLIENT, QUEUE_SIZE, QueryRefused

SOCKET_ENV = "DACVIZ_ENCODER_SOCKET"
MAX_HEADER_BYTES = 64 * 1024
MAX_CONNECTIONS = 32  # open connections the service serves at once; more are refused at once
RESTART_S = 2.0  # a dead service is started again after this
START_TIMEOUT_S = 120.0
ANSWER_TIMEOUT_S = 3.0  # a status or an admission takes milliseconds; silence this long: not answering
HEALTH_EVERY_S = 5.0  # how often the starter asks a running service for its status
HEALTH_FAILURES = 3  # that many unanswered checks in a row: the service is killed and restarted
FOLDER_PREFIX = "dacviz-encoder-"


# ----------------------------------------------------------------------------- framing
def _send_frame(sock: socket.socket, data: bytes) -> None:
    sock.sendall(struct.pack(">I", len(data)) + data)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            raise ConnectionError("the other side closed the connection")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _recv_frame(sock: socket.socket, limit: int) -> bytes:
    (length,) = struct.unpack(">I", _recv_exact(sock, 4))
    if length > limit:
        raise ValueError(f"frame of {length} bytes exceeds {limit}")
    return _recv_exact(sock, length)


# ----------------------------------------------------------------------------- client (web workers)
def socket_path() -> str | None:
    """The encoder service's socket as the server that started it named it, or None."""
    return os.environ.get(SOCKET_ENV) or None


def _connect(path: str | None, timeout: float) -> socket.socket:
    path = path or socket_path()
    if not path:
        raise QueryRefused(503, "query by voice is off: this server was started without its "
                                "encoder (python -m dacviz_app or the Procfile start it)")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except OSError as err:
        sock.close()
        raise _not_answering(err)
    return sock


def _not_answering(err: BaseException) -> QueryRefused:
    return QueryRefused(503, f"the query encoder is not answering ({type(err).__name__}); "
                             f"try again in a moment")


def status(path: str | None = None, timeout: float = ANSWER_TIMEOUT_S) -> dict:
    """The service's state: {"state": "starting"|"ready"|"off", "reason": str|None,
    "unavailable", "queued", "encoding"}; {"state": "off", "reason": ...} when there is none or
    it does not answer within ``timeout``. Plain sockets: under gevent the worker serves other
    requests while it waits."""
    try:
        with _connect(path, timeout) as sock:
            _send_frame(sock, json.dumps({"op": "status"}).encode())
            return json.loads(_recv_frame(sock, MAX_HEADER_BYTES))
    except QueryRefused as err:
        return {"state": "off", "reason": err.message, "unavailable": {}}
    except (OSError, ConnectionError, ValueError) as err:
        return {"state": "off", "reason": _not_answering(err).message, "unavailable": {}}


def check_free(state: dict) -> None:
    """Raise the QueryRefused a query would get now, as ``status`` describes the service (off,
    starting, or its queue full), so that the web worker need not read an upload for nothing."""
    if state.get("state") != "ready":
        raise QueryRefused(503, str(state.get("reason") or "the query encoder is starting; "
                                                           "try again in a few seconds"))
    if int(state.get("queued") or 0) + bool(state.get("encoding")) >= 1 + QUEUE_SIZE:
        raise QueryRefused(503, _busy_message())  # what ``EncoderService.admit`` would answer


def _busy_message() -> str:
    return f"the query encoder is busy ({QUEUE_SIZE} queries waiting); try again in a moment"


def encode(data: bytes, client: str, path: str | None = None) -> dict:
    """Encode one upload (the file's bytes, already read from the client): {"vectors": {rep:
    [..]}, "duration_s", "encode_ms", "waited_ms", "unavailable"}; QueryRefused with the
    service's status and reason. The service admits the query first (the client's share, a
    place in the queue); the bytes follow at once."""
    try:
        with _connect(path, ANSWER_TIMEOUT_S) as sock:
            _send_frame(sock, json.dumps({"op": "encode", "client": client}).encode())
            admitted = json.loads(_recv_frame(sock, MAX_HEADER_BYTES))
            if admitted.get("status") != 100:
                raise QueryRefused(int(admitted.get("status") or 503), str(admitted.get("error") or "refused"))
            sock.settimeout(ENCODE_TIMEOUT_S + 5)
            _send_frame(sock, data)
            answer = json.loads(_recv_frame(sock, 64 * 2**20))
    except QueryRefused:
        raise
    except (OSError, ConnectionError, ValueError) as err:
        raise _not_answering(err)
    if answer.get("status") != 200:
        raise QueryRefused(int(answer.get("status") or 503), str(answer.get("error") or "failed"))
    return answer


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
        self.command = [sys.executable, "-m", "dacviz_app.core.encoder_service", str(cache_dir), self.path]
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


def wait_ready(path: str | None = None, timeout: float = START_TIMEOUT_S) -> dict:
    """Poll the service until it is ready or has said why not (for tests and benches)."""
    deadline = time.monotonic() + timeout
    state = status(path)
    while state.get("state") != "ready" and time.monotonic() < deadline:
        if state.get("state") == "off" and "not answering" not in str(state.get("reason")):
            return state
        time.sleep(0.2)
        state = status(path)
    return state


# ----------------------------------------------------------------------------- the service
class _Job:
    def __init__(self, client: str):
        self.client = client
        self.data = b""
        self.done = threading.Event()
        self.cancelled = False
        self.answer: dict = {}
        self.queued = time.perf_counter()


class EncoderService:
    """The state of the running service: the model (once loaded), the queue and the clients'
    shares. Lives only in the service's process.

    A query holds its place (``admitted``: one of 1 + QUEUE_SIZE, and one of its client's
    PER_CLIENT) from admission until the model thread has taken it off the queue and is done
    with it (or, if its upload never came, until the handler gives it back): a query that timed
    out or whose client left still holds it until the model thread drops it."""

    def __init__(self, cache_dir: str):
        self.cache_dir = cache_dir
        self.state, self.reason = "starting", None
        self.unavailable: dict[str, str] = {}
        self.encoder = None
        self.jobs: queue.Queue[_Job] = queue.Queue()
        self.lock = threading.Lock()
        self.admitted = 0
        self.encoding = False
        self.per_client: dict[str, int] = {}
        self.connections = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def load(self) -> None:
        """Open the cache and load its models (in a thread: status answers meanwhile)."""
        try:
            import torch

            torch.set_num_threads(int(os.environ.get("DACVIZ_ENCODER_THREADS") or
                                      max(1, (os.cpu_count() or 2) // 2)))
            from .cache import open_cache
            from .query_encoder import QueryEncoder

            self.encoder = QueryEncoder(open_cache(self.cache_dir))
            self.unavailable = dict(self.encoder.unavailable)
            self.state = "ready"
        except QueryRefused as err:
            self.state, self.reason = "off", err.message
        except Exception as err:  # noqa: BLE001 - said to every query, the service stays up
            self.state, self.reason = "off", f"query by voice is off: the encoder failed to load ({err})"

    def status(self) -> dict:
        """What ``status`` answers; "queued" counts every admitted query not being encoded, so
        that it agrees with ``admit``'s refusals."""
        with self.lock:
            queued = self.admitted - (1 if self.encoding else 0)
        return {"state": self.state, "reason": self.reason, "unavailable": self.unavailable,
                "queued": max(queued, 0), "encoding": self.encoding}

    def admit(self, client: str) -> tuple[_Job | None, dict]:
        """A place for one query of ``client``, or the refusal: (job, {"status": 100}) or
        (None, {"status": 429|503, "error"})."""
        if self.state != "ready":
            return None, {"status": 503, "error": self.reason or "the query encoder is starting; "
                                                                "try again in a few seconds"}
        with self.lock:
            if self.per_client.get(client, 0) >= PER_CLIENT:
                return None, {"status": 429, "error": f"one query at a time per client "
                                                      f"({PER_CLIENT}); wait for the last one's answer"}
            if self.admitted >= 1 + QUEUE_SIZE:
                return None, {"status": 503, "error": _busy_message()}
            self.admitted += 1
            self.per_client[client] = self.per_client.get(client, 0) + 1
        return _Job(client), {"status": 100}

    def release(self, job: _Job) -> None:
        """Give back the places ``admit`` gave ``job`` (exactly once per job)."""
        with self.lock:
            self.admitted -= 1
            left = self.per_client.get(job.client, 1) - 1
            if left > 0:
                self.per_client[job.client] = left
            else:
                self.per_client.pop(job.client, None)

    def wait(self, job: _Job) -> dict:
        """Queue an admitted job whose upload has arrived and wait for its answer."""
        job.queued = time.perf_counter()
        self.jobs.put(job)
        if not job.done.wait(ENCODE_TIMEOUT_S):
            job.cancelled = True  # the model thread drops it (and gives its places back)
            return {"status": 503, "error": "the query took too long to encode"}
        return job.answer

    def work(self) -> None:
        """The model thread: encode queued clips one at a time, forever."""
        while True:
            job = self.jobs.get()
            try:
                if not job.cancelled:
                    self.encoding = True
                    job.answer = self._encode(job)
            finally:
                self.encoding = False
                job.data = b""
                self.release(job)
                job.done.set()

    def _encode(self, job: _Job) -> dict:
        waited = time.perf_counter() - job.queued
        try:
            vectors, info = self.encoder.encode(job.data)
        except QueryRefused as err:
            return {"status": err.status, "error": err.message}
        except Exception as err:  # noqa: BLE001 - one bad clip never stops the service
            return {"status": 500, "error": f"the encoder failed on this clip ({type(err).__name__})"}
        return {"status": 200, **info, "waited_ms": round(1000 * waited, 1),
                "vectors": {rep: [float(x) for x in v] for rep, v in vectors.items()},
                "unavailable": self.unavailable}


def _handler(service: EncoderService):
    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            if not service.connections.acquire(blocking=False):
                self._answer({"status": 503, "error": "the query encoder has too many connections"})
                return
            try:
                self.request.settimeout(ANSWER_TIMEOUT_S)
                header = json.loads(_recv_frame(self.request, MAX_HEADER_BYTES))
                op = header.get("op") if isinstance(header, dict) else None
                if op == "status":
                    self._answer(service.status())
                elif op == "encode":
                    self._encode(str(header.get("client") or "?")[:200])
                else:
                    self._answer({"status": 400, "error": "unknown request"})
            except (ValueError, ConnectionError, OSError, UnicodeDecodeError):
                return
            finally:
                service.connections.release()

        def _encode(self, client: str) -> None:
            job, answer = service.admit(client)
            self._answer(answer)
            if job is None:
                return
            try:  # the web worker has the bytes in hand: they follow at once
                self.request.settimeout(ANSWER_TIMEOUT_S)
                job.data = _recv_frame(self.request, MAX_UPLOAD_BYTES)
            except BaseException:
                service.release(job)  # the upload never came: never queued
                raise
            self.request.settimeout(None)
            self._answer(service.wait(job))

        def _answer(self, answer: dict) -> None:
            try:
                _send_frame(self.request, json.dumps(answer).encode())
            except OSError:
                pass
    return Handler


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def _exit_with_parent(parent: int) -> None:
    """End this process when the server that started it is gone (killed without stopping it)."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os.kill(os.getpid(), 15)


def serve(cache_dir: str, path: str) -> None:
    """Run the service for ``cache_dir`` on the Unix socket ``path`` until terminated."""
    service = EncoderService(cache_dir)
    threading.Thread(target=lambda: (service.load(), service.work()), daemon=True).start()
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    if os.path.exists(path):  # a service that died left it (its folder is the starter's)
        os.unlink(path)
    with _Server(path, _handler(service)) as server:
        os.chmod(path, 0o600)
        try:
            server.serve_forever()
        finally:
            try:
                os.unlink(path)
            except OSError:
                pass


def main(argv: list[str] | None = None) -> int:
    import signal

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    serve(args[0], args[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())

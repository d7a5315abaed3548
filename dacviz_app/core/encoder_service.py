"""The encoder service: one process per server that encodes query clips, so that the web
workers never import torch (they stay small) and one model serves them all.

The server that starts the web workers starts it first (``start``: ``python -m dacviz_app``
and gunicorn's ``dacviz_app.gunicorn_conf``, which the Procfile names) and names its socket to
the workers in $DACVIZ_ENCODER_SOCKET. It listens on a Unix socket in a private folder (0700),
so only this user's processes on this machine reach it.

One model thread encodes, one query at a time, from a bounded queue (``query.QUEUE_SIZE``);
each client address may have ``query.PER_CLIENT`` queries in it. A full queue is a 503, a
client over its share a 429, both at once, never a wait. The model loads in the background:
until it has, queries get 503 "starting".

Messages, both ways: a 4-byte big-endian length and a JSON header, then (requests only) a
4-byte length and the audio file's bytes. No pickle: the answer's vectors are JSON numbers.
Requests: {"op": "status"} -> {"state": "starting" | "ready" | "off", "reason", "unavailable"};
{"op": "encode", "client": address} + bytes -> {"status": 200, "vectors": {rep: [..]},
"duration_s", "encode_ms", "waited_ms"} or {"status": 4xx/5xx, "error": reason}.

examples:
  python -m dacviz_app.core.encoder_service CACHE_DIR SOCKET_PATH   # what ``start`` runs
"""
from __future__ import annotations

import json
import os
import queue
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
START_TIMEOUT_S = 120.0


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


def call(header: dict, payload: bytes = b"", path: str | None = None,
         timeout: float = ENCODE_TIMEOUT_S) -> dict:
    """One request to the service -> its JSON answer; QueryRefused(503) when there is no
    service or it does not answer. Plain sockets: under gevent the worker serves other
    requests while it waits."""
    path = path or socket_path()
    if not path:
        raise QueryRefused(503, "query by voice is off: this server was started without its "
                                "encoder (python -m dacviz_app or the Procfile start it)")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            _send_frame(sock, json.dumps(header).encode())
            _send_frame(sock, payload)
            return json.loads(_recv_frame(sock, 64 * 2**20))
    except (OSError, ConnectionError, ValueError) as err:
        raise QueryRefused(503, f"the query encoder is not answering ({type(err).__name__}); "
                                f"try again in a moment")


def status(path: str | None = None) -> dict:
    """The service's state: {"state": "starting"|"ready"|"off", "reason": str|None, ...};
    {"state": "off", "reason": ...} when there is none."""
    try:
        return call({"op": "status"}, path=path, timeout=5.0)
    except QueryRefused as err:
        return {"state": "off", "reason": err.message, "unavailable": {}}


def encode(data: bytes, client: str, path: str | None = None) -> dict:
    """Encode one upload: {"vectors": {rep: [..]}, "duration_s", "encode_ms", "waited_ms"};
    QueryRefused with the service's status and reason."""
    answer = call({"op": "encode", "client": client}, data, path=path)
    if answer.get("status") != 200:
        raise QueryRefused(int(answer.get("status") or 503), str(answer.get("error") or "failed"))
    return answer


# ----------------------------------------------------------------------------- starting it
def start(cache_dir: str, threads: int | None = None) -> subprocess.Popen:
    """Start the service for ``cache_dir`` in its own process and name its socket in this
    process's environment (the web workers forked after inherit it). Returns at once; the
    model loads in the background."""
    folder = Path(tempfile.mkdtemp(prefix="dacviz-encoder-"))  # 0700: this user's only
    path = str(folder / "encoder.sock")
    env = dict(os.environ)
    if threads:
        env["DACVIZ_ENCODER_THREADS"] = str(threads)
    process = subprocess.Popen([sys.executable, "-m", "dacviz_app.core.encoder_service",
                                str(cache_dir), path], env=env, stdin=subprocess.DEVNULL)
    os.environ[SOCKET_ENV] = path
    return process


def stop(process: subprocess.Popen | None) -> None:
    """Stop a service ``start`` started (and remove its socket's folder)."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def wait_ready(path: str | None = None, timeout: float = START_TIMEOUT_S) -> dict:
    """Poll the service until it is no longer starting (for tests and benches)."""
    deadline = time.monotonic() + timeout
    state = status(path)
    while state.get("state") != "ready" and time.monotonic() < deadline:
        if state.get("state") == "off" and "not answering" not in str(state.get("reason")) \
                and "without its encoder" not in str(state.get("reason")):
            return state
        time.sleep(0.2)
        state = status(path)
    return state


# ----------------------------------------------------------------------------- the service
class _Job:
    def __init__(self, data: bytes, client: str):
        self.data, self.client = data, client
        self.done = threading.Event()
        self.answer: dict = {}
        self.queued = time.perf_counter()


class EncoderService:
    """The state of the running service: the model (once loaded), the queue and the clients'
    shares. Lives only in the service's process."""

    def __init__(self, cache_dir: str):
        self.cache_dir = cache_dir
        self.state, self.reason = "starting", None
        self.unavailable: dict[str, str] = {}
        self.encoder = None
        self.jobs: queue.Queue[_Job] = queue.Queue(maxsize=QUEUE_SIZE)
        self.lock = threading.Lock()
        self.per_client: dict[str, int] = {}

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
        return {"state": self.state, "reason": self.reason, "unavailable": self.unavailable,
                "queued": self.jobs.qsize()}

    def submit(self, data: bytes, client: str) -> dict:
        """Queue one clip and wait for its answer; refuses at once when it cannot be taken."""
        if self.state != "ready":
            return {"status": 503, "error": self.reason or "the query encoder is starting; "
                                                          "try again in a few seconds"}
        with self.lock:
            if self.per_client.get(client, 0) >= PER_CLIENT:
                return {"status": 429, "error": f"one query at a time per client "
                                                f"({PER_CLIENT}); wait for the last one's answer"}
            job = _Job(data, client)
            try:
                self.jobs.put_nowait(job)
            except queue.Full:
                return {"status": 503, "error": f"the query encoder is busy ({QUEUE_SIZE} "
                                                f"queries waiting); try again in a moment"}
            self.per_client[client] = self.per_client.get(client, 0) + 1
        try:
            if not job.done.wait(ENCODE_TIMEOUT_S):
                return {"status": 503, "error": "the query took too long to encode"}
            return job.answer
        finally:
            with self.lock:
                left = self.per_client.get(client, 1) - 1
                if left > 0:
                    self.per_client[client] = left
                else:
                    self.per_client.pop(client, None)

    def work(self) -> None:
        """The model thread: encode queued clips one at a time, forever."""
        while True:
            job = self.jobs.get()
            waited = time.perf_counter() - job.queued
            try:
                vectors, info = self.encoder.encode(job.data)
                job.answer = {"status": 200, **info, "waited_ms": round(1000 * waited, 1),
                              "vectors": {rep: [float(x) for x in v] for rep, v in vectors.items()},
                              "unavailable": self.unavailable}
            except QueryRefused as err:
                job.answer = {"status": err.status, "error": err.message}
            except Exception as err:  # noqa: BLE001 - one bad clip never stops the service
                job.answer = {"status": 500, "error": f"the encoder failed on this clip "
                                                      f"({type(err).__name__})"}
            job.done.set()


def _handler(service: EncoderService):
    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            try:
                header = json.loads(_recv_frame(self.request, MAX_HEADER_BYTES))
                payload = _recv_frame(self.request, MAX_UPLOAD_BYTES)
            except (ValueError, ConnectionError, OSError, UnicodeDecodeError):
                return
            op = header.get("op") if isinstance(header, dict) else None
            if op == "status":
                answer = service.status()
            elif op == "encode":
                answer = service.submit(payload, str(header.get("client") or "?")[:200])
            else:
                answer = {"status": 400, "error": "unknown request"}
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
    if os.path.exists(path):
        os.unlink(path)
    with _Server(path, _handler(service)) as server:
        os.chmod(path, 0o600)
        try:
            server.serve_forever()
        finally:
            try:
                os.unlink(path)
                os.rmdir(os.path.dirname(path))
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

"""The encoder service: one process per server that encodes query clips, so that the web
workers never import torch (they stay small) and one model serves them all.

The server that starts the web workers starts it first (``start``: ``python -m dacviz_app``
and gunicorn's ``dacviz_app.viewer.gunicorn_conf``, which the Procfile names) and names its socket to
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

Messages: ``protocol``'s docstring (the one copy).

examples:
  python -m dacviz_app.query_service.server CACHE_DIR SOCKET_PATH   # what ``start`` runs
"""
from __future__ import annotations

from dacviz_app.query_service.protocol import (ANSWER_TIMEOUT_S, ENCODE_TIMEOUT_S, MAX_CONNECTIONS,
                                               MAX_FRAME_CLIPS, MAX_FRAMES_PER_CLIP, MAX_HEADER_BYTES, MAX_UPLOAD_BYTES, PER_CLIENT,
                                               QUEUE_SIZE, QueryRefused, busy_message, recv_frame,
                                               send_frame)

import json
import os
import queue
import socketserver
import sys
import threading
import time


# ----------------------------------------------------------------------------- the service
class _Job:
    def __init__(self, client: str):
        self.client = client
        self.data = b""
        self.clips: list[int] | None = None  # a "frames" job: the cache's clips whose MFCC frames are asked
        self.most = MAX_FRAMES_PER_CLIP  # and at most how many frames of each
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
            from dacviz_app.cache import open_cache
            from dacviz_app.query_service.encoder import QueryEncoder

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
                return None, {"status": 503, "error": busy_message()}
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
        if job.clips is not None:
            return self._frames(job.clips, job.most, waited)
        try:
            vectors, info = self.encoder.encode(job.data)
        except QueryRefused as err:
            return {"status": err.status, "error": err.message}
        except Exception as err:  # noqa: BLE001 - one bad clip never stops the service
            return {"status": 500, "error": f"the encoder failed on this clip ({type(err).__name__})"}
        return {"status": 200, **info, "waited_ms": round(1000 * waited, 1),
                "vectors": {rep: [float(x) for x in v] for rep, v in vectors.items()},
                "unavailable": self.unavailable}


    def _frames(self, clips: list[int], most: int, waited: float) -> dict:
        started = time.perf_counter()
        try:
            answer = {"frames": {str(clip): self.encoder.clip_mfcc_frames(clip, most) for clip in clips},
                      "frame_s": self.encoder.mfcc_frame_s}
        except QueryRefused as err:
            return {"status": err.status, "error": err.message}
        except Exception as err:  # noqa: BLE001 - one bad clip never stops the service
            return {"status": 500, "error": f"the MFCC frames failed on this clip ({type(err).__name__})"}
        return {"status": 200, **answer, "waited_ms": round(1000 * waited, 1),
                "encode_ms": round(1000 * (time.perf_counter() - started), 1)}


def frame_request(header: dict) -> bool:
    """Whether ``header`` asks what a "frames" request may: 1..MAX_FRAME_CLIPS clip ids and at
    most 1..MAX_FRAMES_PER_CLIP frames of each."""
    clips, most = header.get("clips"), header.get("most")
    whole = lambda v: isinstance(v, int) and not isinstance(v, bool)  # noqa: E731
    return (isinstance(clips, list) and 1 <= len(clips) <= MAX_FRAME_CLIPS
            and all(whole(c) and c >= 0 for c in clips) and whole(most) and 1 <= most <= MAX_FRAMES_PER_CLIP)


def _handler(service: EncoderService):
    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            if not service.connections.acquire(blocking=False):
                self._answer({"status": 503, "error": "the query encoder has too many connections"})
                return
            try:
                self.request.settimeout(ANSWER_TIMEOUT_S)
                header = json.loads(recv_frame(self.request, MAX_HEADER_BYTES))
                op = header.get("op") if isinstance(header, dict) else None
                if op == "status":
                    self._answer(service.status())
                elif op == "encode":
                    self._encode(str(header.get("client") or "?")[:200])
                elif op == "frames" and frame_request(header):
                    self._frames(str(header.get("client") or "?")[:200], header["clips"], header["most"])
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
                job.data = recv_frame(self.request, MAX_UPLOAD_BYTES)
            except BaseException:
                service.release(job)  # the upload never came: never queued
                raise
            self.request.settimeout(None)
            self._answer(service.wait(job))

        def _frames(self, client: str, clips: list[int], most: int) -> None:
            job, answer = service.admit(client)  # the same queue and shares as a query
            if job is None:
                self._answer(answer)
                return
            job.clips, job.most = clips, most
            self.request.settimeout(None)
            self._answer(service.wait(job))  # queued at once: the model thread releases it

        def _answer(self, answer: dict) -> None:
            try:
                send_frame(self.request, json.dumps(answer).encode())
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

"""The web worker's side of the encoder service: its status, whether it is free, and one
encode (the upload already read). Plain sockets: under gevent the worker serves other requests
while it waits. No torch."""
from __future__ import annotations

from dacviz_app.query_service.protocol import (ANSWER_TIMEOUT_S, ENCODE_TIMEOUT_S, MAX_HEADER_BYTES,
                                               QUEUE_SIZE, QueryRefused, SOCKET_ENV,
                                               START_TIMEOUT_S, busy_message, recv_frame, send_frame)

import json
import os
import socket
import time


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
            send_frame(sock, json.dumps({"op": "status"}).encode())
            return json.loads(recv_frame(sock, MAX_HEADER_BYTES))
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
        raise QueryRefused(503, busy_message())  # what ``EncoderService.admit`` would answer


def encode(data: bytes, client: str, path: str | None = None) -> dict:
    """Encode one upload (the file's bytes, already read from the client): {"vectors": {rep:
    [..]}, "duration_s", "encode_ms", "waited_ms", "unavailable"}; QueryRefused with the
    service's status and reason. The service admits the query first (the client's share, a
    place in the queue); the bytes follow at once."""
    try:
        with _connect(path, ANSWER_TIMEOUT_S) as sock:
            send_frame(sock, json.dumps({"op": "encode", "client": client}).encode())
            admitted = json.loads(recv_frame(sock, MAX_HEADER_BYTES))
            if admitted.get("status") != 100:
                raise QueryRefused(int(admitted.get("status") or 503), str(admitted.get("error") or "refused"))
            sock.settimeout(ENCODE_TIMEOUT_S + 5)
            send_frame(sock, data)
            return _answered(sock)
    except QueryRefused:
        raise
    except (OSError, ConnectionError, ValueError) as err:
        raise _not_answering(err)


def _answered(sock: socket.socket) -> dict:
    """The service's final answer on ``sock``, or its refusal raised as QueryRefused."""
    answer = json.loads(recv_frame(sock, 64 * 2**20))
    if answer.get("status") != 200:
        raise QueryRefused(int(answer.get("status") or 503), str(answer.get("error") or "failed"))
    return answer




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


def mfcc_frames(clips: list[int], most: int, client: str, path: str | None = None) -> dict:
    """The MFCC frames of the cache's ``clips`` (at most MAX_FRAME_CLIPS), at most ``most`` of
    each, from the service, one job in its queue under the client's share: {"frames": {str(id):
    {"n_frames", "frames": [[40 floats]]}}, "frame_s", "encode_ms", "waited_ms"}; QueryRefused
    as ``encode``."""
    try:
        with _connect(path, ANSWER_TIMEOUT_S) as sock:
            send_frame(sock, json.dumps({"op": "frames", "client": client, "most": int(most),
                                         "clips": [int(c) for c in clips]}).encode())
            sock.settimeout(ENCODE_TIMEOUT_S + 5)
            return _answered(sock)
    except QueryRefused:
        raise
    except (OSError, ConnectionError, ValueError) as err:
        raise _not_answering(err)

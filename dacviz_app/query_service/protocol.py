"""What the viewer and the encoder service agree on: the limits every query obeys, the refusal
(``QueryRefused``), the socket's name and timeouts, and the framing of messages:
frames of a 4-byte big-endian length and the bytes (JSON, or the audio file). No
pickle: the answer's vectors are JSON numbers.
  {"op": "status"} -> {"state": "starting" | "ready" | "off", "reason", "unavailable", "queued",
                       "encoding"} ("queued": admitted queries not yet being encoded)
  {"op": "encode", "client": address} -> {"status": 100} (admitted) or {"status": 429|503, "error"};
  once admitted, the audio file's bytes -> {"status": 200, "vectors": {rep: [..]}, "duration_s",
  "encode_ms", "waited_ms", "unavailable"} or {"status": 4xx|5xx, "error": reason}.
  {"op": "frames", "client": address, "clips": [id, ...] (1..MAX_FRAME_CLIPS), "most": k
  (1..MAX_FRAMES_PER_CLIP)} -> (admitted as one query, then) {"status": 200, "frames": {id:
  {"n_frames": n, "frames": [[40 MFCCs] of at most k evenly spaced frames]}}, "frame_s",
  "encode_ms", "waited_ms"}, or a refusal as above: cached clips' MFCC frames, for their paths
  (``explore.paths``).
"""
from __future__ import annotations

import socket
import struct

from dacviz_app.explore.paths import MAX_DTW_FRAMES, MAX_PATH_POINTS


MAX_SECONDS = 10.0  # longest clip a query may be
MAX_UPLOAD_BYTES = 8 * 2**20  # 10 s of 48 kHz stereo float32 WAV is 3.8 MB
QUEUE_SIZE = 4  # queries that may wait in the encoder while one encodes
PER_CLIENT = 1  # queries one client (address) may have in the encoder at once
ENCODE_TIMEOUT_S = 60.0
MAX_FRAME_CLIPS = 20  # clips one "frames" request may ask for (two compared and their references)
# frames of each it answers with (evenly spaced): what a path draws or two paths align, at most
MAX_FRAMES_PER_CLIP = max(MAX_PATH_POINTS, MAX_DTW_FRAMES)


class QueryRefused(Exception):
    """A query that cannot be answered: ``status`` (an HTTP code) and a one-line reason."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message




SOCKET_ENV = "DACVIZ_ENCODER_SOCKET"
MAX_HEADER_BYTES = 64 * 1024
MAX_CONNECTIONS = 32  # open connections the service serves at once; more are refused at once
RESTART_S = 2.0  # a dead service is started again after this
START_TIMEOUT_S = 120.0
ANSWER_TIMEOUT_S = 3.0  # a status or an admission takes milliseconds; silence this long: not answering
HEALTH_EVERY_S = 5.0  # how often the starter asks a running service for its status
HEALTH_FAILURES = 3  # that many unanswered checks in a row: the service is killed and restarted
FOLDER_PREFIX = "dacviz-encoder-"


def busy_message() -> str:
    return f"the query encoder is busy ({QUEUE_SIZE} queries waiting); try again in a moment"


# ----------------------------------------------------------------------------- framing
def send_frame(sock: socket.socket, data: bytes) -> None:
    sock.sendall(struct.pack(">I", len(data)) + data)


def recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            raise ConnectionError("the other side closed the connection")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv_frame(sock: socket.socket, limit: int) -> bytes:
    (length,) = struct.unpack(">I", recv_exact(sock, 4))
    if length > limit:
        raise ValueError(f"frame of {length} bytes exceeds {limit}")
    return recv_exact(sock, length)



"""Query by voice's encoder: its own process per server (the only one of the server that loads
torch), so that web workers stay small. The viewer asks it through the names below.

- ``protocol``: the limits, the refusal, the socket's name, the framing;
- ``client``: what a web worker calls (status, whether it is free, one encode, a clip's MFCC frames);
- ``supervisor``: started beside the web server, health-checked, restarted;
- ``server``: the process itself (queue, shares, one model thread);
- ``encoder``: the torch side, exactly precompute's encode (imported only by ``server``).
"""
from dacviz_app.query_service.client import check_free, encode, mfcc_frames, socket_path, status, wait_ready
from dacviz_app.query_service.protocol import (ANSWER_TIMEOUT_S, ENCODE_TIMEOUT_S, FOLDER_PREFIX,
                                               HEALTH_EVERY_S, HEALTH_FAILURES, MAX_SECONDS,
                                               MAX_UPLOAD_BYTES, PER_CLIENT, QUEUE_SIZE,
                                               SOCKET_ENV, QueryRefused)
from dacviz_app.query_service.supervisor import EncoderProcess, remove_stale_folders, start, stop

__all__ = ["check_free", "encode", "mfcc_frames", "socket_path", "status", "wait_ready", "ANSWER_TIMEOUT_S",
           "ENCODE_TIMEOUT_S", "FOLDER_PREFIX", "HEALTH_EVERY_S", "HEALTH_FAILURES", "MAX_SECONDS",
           "MAX_UPLOAD_BYTES", "PER_CLIENT", "QUEUE_SIZE", "SOCKET_ENV", "QueryRefused",
           "EncoderProcess", "remove_stale_folders", "start", "stop"]

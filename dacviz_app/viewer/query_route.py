"""``/query``: a recorded clip posted by the page, read within bounds and handed to the encoder
service (``dacviz_app.query_service``); the answer is its nearest clips and its place in every
view (``explore.nearest.answer``). Registered by ``viewer.routes``."""
from __future__ import annotations

import contextlib
import math
import tempfile

from flask import jsonify, request
from werkzeug.exceptions import HTTPException

from dacviz_app import query_service
from dacviz_app.cache import Cache
from dacviz_app.explore.nearest import answer, clean_vectors, weights_problem
from dacviz_app.explore.paths import clean_frame_codes, clean_mfcc_frames, query_path
from dacviz_app.explore.sound import clean_summary
from dacviz_app.query_service.protocol import MAX_SECONDS, MAX_UPLOAD_BYTES, QueryRefused
from dacviz_app.viewer.layout import DEFAULT_K

FORM_OVERHEAD_BYTES = 64 * 1024  # multipart headers and the small fields beside the audio
MAX_FORM_PARTS = 16  # the query form has 4 fields; werkzeug's own limit is 1,000
UPLOAD_DEADLINE_S = 20.0  # the whole upload must arrive within this (8 MB at 3.4 Mbit/s)


def serve_query(cache: Cache):
    """``POST /query``: a multipart form with the field ``audio`` (a WAV/FLAC/OGG/MP3 file) and
    optionally ``rep`` (a representation; default the first), ``k`` (default DEFAULT_K) and
    ``vectors=1`` (the page: send the query's vectors too). The encoder service encodes it
    into every representation; the answer says, for ``rep``, its k nearest clips and its place
    in every view (``explore.nearest.answer``), and its frames as a path where ``rep`` has one
    (``explore.paths.query_path``; else "path" is null). Nothing is written. Refusals are JSON
    {"error": one line} with a 4xx (bad upload, too many at once, too slow) or 503 (no encoder,
    busy). A busy or absent encoder is a 503 before the upload is read; otherwise the whole
    upload is read first (within UPLOAD_DEADLINE_S) and only then does the encoder admit the
    query, so a slow upload holds no place in its queue.
    ``request.remote_addr`` names the client (behind a proxy: $DACVIZ_PROXIES, ``routes.trust_proxies``).
    ``GET /query``: {"state", "reason", "unavailable", "queued", ...}, whether queries can be
    answered now."""
    problem = weights_problem(cache)
    if request.method == "GET":
        state = {"state": "off", "reason": problem, "unavailable": {}} if problem \
            else query_service.status()
        return jsonify({**state, "max_seconds": MAX_SECONDS, "max_bytes": MAX_UPLOAD_BYTES})
    try:
        if problem:
            raise QueryRefused(503, problem)
        query_service.check_free(query_service.status())
        with upload_deadline(UPLOAD_DEADLINE_S):
            data, rep, k, want_vectors = query_form(cache)
        encoded = query_service.encode(data, request.remote_addr or "?")
    except QueryRefused as err:
        return {"error": err.message}, err.status
    except HTTPException as err:  # 413 from the length limit, 400 from a broken form
        return {"error": query_http_error(err)}, err.code or 400
    vectors = clean_vectors(cache, encoded.get("vectors"))
    if rep not in vectors:
        reason = (encoded.get("unavailable") or {}).get(rep) or f"{rep} was not encoded"
        return {"error": reason}, 409
    body = {**answer(cache, vectors, rep, k),
            **{key: encoded.get(key) for key in ("duration_s", "encode_ms", "waited_ms")},
            "encoded_into": sorted(vectors), "not_encoded": encoded.get("unavailable") or {},
            "untrained": cache.untrained}
    if want_vectors:
        body["vectors"] = {name: [float(x) for x in v] for name, v in vectors.items()}
    codes = clean_frame_codes(cache, encoded.get("frame_codes"), max_query_frames(cache))
    mfcc_s = encoded.get("mfcc_frame_s")
    mfcc_s = mfcc_s if isinstance(mfcc_s, float) and math.isfinite(mfcc_s) and mfcc_s > 0 else None
    mfcc = clean_mfcc_frames(encoded.get("mfcc_frames"), int(MAX_SECONDS / mfcc_s) + 2) if mfcc_s else None
    body["path"] = query_path(cache, rep, codes, mfcc, mfcc_s)
    body["sound"] = clean_summary(encoded.get("sound"), MAX_SECONDS)
    return jsonify(body)


def max_query_frames(cache: Cache) -> int:
    """The most frames a query of MAX_SECONDS has (DAC: one per hop_length samples)."""
    model = cache.model
    return int(MAX_SECONDS * int(model["sample_rate"]) // int(model["hop_length"])) + 2


class UploadTooSlow(Exception):
    """An upload that did not arrive within its deadline."""


@contextlib.contextmanager
def upload_deadline(seconds: float):
    """Raise QueryRefused(408) if the body inside takes longer than ``seconds`` to read. Under
    gevent (gunicorn's worker, ``python -m dacviz_app``) a blocked read is interrupted; in a
    threaded server (``--dev``) a slow upload only holds its own thread, and no queue place."""
    from gevent import monkey

    if not monkey.is_module_patched("socket"):
        yield
        return
    import gevent

    try:
        with gevent.Timeout(seconds, UploadTooSlow):
            yield
    except UploadTooSlow:
        raise QueryRefused(408, f"the upload did not arrive within {seconds:g} s; send it again")


def query_form(cache: Cache) -> tuple[bytes, str, int, bool]:
    """The query's fields, read and checked: (audio bytes, representation, k, vectors wanted).
    The form is read with at most MAX_FORM_PARTS parts and MAX_UPLOAD_BYTES of audio; a file
    part is spooled to the temp folder by werkzeug, so a full disk is said as such."""
    request.max_content_length = MAX_UPLOAD_BYTES + FORM_OVERHEAD_BYTES
    request.max_form_parts = MAX_FORM_PARTS
    try:
        upload = request.files.get("audio")
    except OSError as err:
        raise QueryRefused(507, f"the server cannot hold the upload: its temporary folder "
                                f"({tempfile.gettempdir()}) said {err.strerror or type(err).__name__}")
    if upload is None:
        raise QueryRefused(400, "send the clip as the multipart form field 'audio'")
    data = upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise QueryRefused(413, f"the upload is larger than {MAX_UPLOAD_BYTES // 2**20} MB")
    if not data:
        raise QueryRefused(400, "the upload is empty (0 bytes)")
    rep = request.form.get("rep") or cache.representations[0]
    if not cache.has_representation(rep):
        raise QueryRefused(400, f"unknown representation {rep[:60]!r}; this cache has "
                                f"{', '.join(cache.representations)}")
    return data, rep, cache.clamp_k(request.form.get("k"), DEFAULT_K), request.form.get("vectors") == "1"


def query_http_error(err: HTTPException) -> str:
    """What a refused form was refused for, in one line (werkzeug answers 413 both for a body
    over the length limit and for a form of too many parts)."""
    if err.code == 413 and (request.content_length or 0) <= request.max_content_length:
        return f"the form has too many fields (at most {MAX_FORM_PARTS}: audio, rep, k, vectors)"
    if err.code == 413:
        return f"the upload is larger than {MAX_UPLOAD_BYTES // 2**20} MB"
    return "not a multipart form with an 'audio' file"

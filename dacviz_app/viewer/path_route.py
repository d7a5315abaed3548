"""``/path`` and ``/paths``: a clip's frames as a path in every view, and two clips' paths
compared (``explore.paths``). DAC's frames come from the cache; MFCC's from the encoder service
(``query_service.mfcc_frames``: the web workers hold no torch), under the same queue and
per-client share as a query. Registered by ``viewer.routes``."""
from __future__ import annotations

from flask import abort, jsonify, request

from dacviz_app import query_service
from dacviz_app.cache import Cache
from dacviz_app.cache.representations import MFCC_HOP_S
from dacviz_app.explore import paths
from dacviz_app.query_service.protocol import QueryRefused

PATH_MAX_AGE_S = 24 * 3600  # a path of a named cache never changes


def path_request_rep(cache: Cache) -> str:
    """The ``rep`` argument of a path request, checked (400 for one the cache does not have)."""
    rep = request.args.get("rep")
    if not cache.has_representation(rep):
        abort(400, f"unknown representation; this cache has {', '.join(cache.representations)}")
    return rep


def cached_json(answer: dict):
    """``answer`` as JSON, kept by the browser when the URL names the cache (``?v=``)."""
    response = jsonify(answer)
    if request.args.get("v") is not None:
        response.cache_control.max_age = PATH_MAX_AGE_S
    return response


def service_frames(cache: Cache, clips: list[int]) -> tuple[dict, float]:
    """The MFCC frames of ``clips`` from the encoder service: ({clip: (n_frames, 40)}, seconds
    per frame); QueryRefused when it is off, busy, or answers something else."""
    answer = query_service.mfcc_frames(clips, request.remote_addr or "?")
    frame_s = answer.get("frame_s")
    found = answer.get("frames") if isinstance(answer.get("frames"), dict) else {}
    if not isinstance(frame_s, float) or frame_s <= 0:
        raise QueryRefused(502, "the encoder service answered without a frame rate")
    out = {}
    for clip in clips:
        frames = paths.clean_mfcc_frames(found.get(str(clip)), paths.max_mfcc_frames(cache, frame_s))
        if frames is None:
            raise QueryRefused(502, f"the encoder service sent no MFCC frames for clip {clip}")
        out[clip] = frames
    return out, frame_s


def serve_path(cache: Cache, clip_id: int):
    """``/path/<clip>?rep=&v=``: the clip's frames as a path in every view of ``rep``
    (``explore.paths``); 404 for a clip the cache does not have, 400 for an unknown
    representation, 409 {"error"} for one without a path here, the encoder service's refusal
    (503, 429) for MFCC when it cannot answer now."""
    clip = cache.clip_or_none(clip_id)
    if clip is None:
        abort(404)
    rep = path_request_rep(cache)
    problem = paths.path_problem(cache, rep)
    if problem:
        return {"error": problem}, 409
    if not paths.from_service(cache, rep):
        return cached_json(paths.clip_path(cache, clip, rep))
    try:
        frames, frame_s = service_frames(cache, [clip])
    except QueryRefused as err:
        return {"error": f"MFCC frames come from the query encoder: {err.message}"}, err.status
    return cached_json(paths.mfcc_clip_path(cache, clip, frames[clip], frame_s))


def serve_path_comparison(cache: Cache, first: int, second: int):
    """``/paths/<first>/<second>?rep=&v=``: two clips' paths compared (``paths.compare``: DTW
    and its chance level); the same refusals as ``/path``."""
    a, b = cache.clip_or_none(first), cache.clip_or_none(second)
    if a is None or b is None:
        abort(404)
    rep = path_request_rep(cache)
    problem = paths.path_problem(cache, rep)
    if problem:
        return {"error": problem}, 409
    if not paths.from_service(cache, rep):
        return cached_json(paths.compare_paths(cache, a, b, rep))
    frame_s = MFCC_HOP_S
    n_first = int(float(cache.clips["duration_s"][a]) / frame_s) + 1
    references = paths.reference_clips(cache, a, b, n_first, frame_s)
    try:
        frames, _ = service_frames(cache, sorted({a, b, *references}))
    except QueryRefused as err:
        return {"error": f"MFCC frames come from the query encoder: {err.message}"}, err.status
    vectors = {clip: paths.mfcc_vectors(cache, f, clip) for clip, f in frames.items()}
    return cached_json(paths.compare(cache, a, b, rep, vectors, references))


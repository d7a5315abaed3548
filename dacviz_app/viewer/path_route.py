"""``/path`` and ``/paths``: a clip's frames as a path in every view, and two clips' paths
compared (``explore.paths``). DAC's frames come from the cache; MFCC's from the encoder service
(``query_service.mfcc_frames``: the web workers hold no torch), under the same queue and
per-client share as a query. Registered by ``viewer.routes``."""
from __future__ import annotations

import math

from flask import abort, jsonify, request

from dacviz_app import query_service
from dacviz_app.cache import Cache
from dacviz_app.cache.representations import MFCC_HOP_S
from dacviz_app.explore import paths
from dacviz_app.query_service.protocol import QueryRefused

PATH_MAX_AGE_S = 24 * 3600  # a path of a named cache never changes


class BadRequest(Exception):
    """A path request the server answers 400 {"error": message}."""


def path_request_rep(cache: Cache) -> str:
    """The ``rep`` argument of a path request, checked (BadRequest for none or one the cache
    does not have)."""
    rep = request.args.get("rep")
    if not cache.has_representation(rep):
        said = "missing" if rep is None else "unknown"
        raise BadRequest(f"{said} representation (?rep=); this cache has {', '.join(cache.representations)}")
    return rep


def cached_json(cache: Cache, answer: dict):
    """``answer`` as JSON, kept by the browser when the URL names this very cache (``?v=`` its
    identity: a page of a cache since rebuilt does not keep it)."""
    response = jsonify(answer)
    if request.args.get("v") == cache.identity:
        response.cache_control.max_age = PATH_MAX_AGE_S
    return response


def service_frames(clips: list[int], most: int) -> tuple[dict, dict, float]:
    """The MFCC frames of ``clips`` from the encoder service, at most ``most`` of each:
    ({clip: (k, 40)}, {clip: its frame count}, seconds per frame); QueryRefused when it is off,
    busy, or answers something else."""
    answer = query_service.mfcc_frames(clips, most, request.remote_addr or "?")
    frame_s = answer.get("frame_s")
    found = answer.get("frames") if isinstance(answer.get("frames"), dict) else {}
    if not isinstance(frame_s, float) or not math.isfinite(frame_s) or frame_s <= 0:
        raise QueryRefused(502, "the encoder service answered without a frame rate")
    frames, counts = {}, {}
    for clip in clips:
        entry = found.get(str(clip)) if isinstance(found.get(str(clip)), dict) else {}
        count = entry.get("n_frames")
        kept = paths.clean_mfcc_frames(entry.get("frames"), most)
        if not isinstance(count, int) or kept is None or len(kept) != min(count, most):
            raise QueryRefused(502, f"the encoder service sent no MFCC frames for clip {clip}")
        frames[clip], counts[clip] = kept, count
    return frames, counts, frame_s


def refused(cache: Cache, clips: list[int | None]) -> tuple[str | None, tuple[dict, int] | None]:
    """A path request's checks, in order: 404 (abort) for a clip the cache does not have; then
    (its representation, None), or (None, the 400/409 answer) for a missing or unknown one, or
    one without a path here."""
    if any(clip is None for clip in clips):
        abort(404)
    try:
        rep = path_request_rep(cache)
    except BadRequest as err:
        return None, ({"error": str(err)}, 400)
    problem = paths.path_problem(cache, rep)
    return (None, ({"error": problem}, 409)) if problem else (rep, None)


def service_refusal(err: QueryRefused) -> tuple[dict, int]:
    """The answer when the encoder service cannot give MFCC frames now."""
    return {"error": f"MFCC frames come from the query encoder: {err.message}"}, err.status


def serve_path(cache: Cache, clip_id: int):
    """``/path/<clip>?rep=&v=``: the clip's frames as a path in every view of ``rep``
    (``explore.paths``); 404 for a clip the cache does not have, 400 for an unknown
    representation, 409 {"error"} for one without a path here, the encoder service's refusal
    (503, 429) for MFCC when it cannot answer now."""
    clip = cache.clip_or_none(clip_id)
    rep, answer = refused(cache, [clip])
    if answer:
        return answer
    if not paths.from_service(cache, rep):
        return cached_json(cache, paths.clip_path(cache, clip, rep))
    try:
        frames, counts, frame_s = service_frames([clip], paths.MAX_PATH_POINTS)
    except QueryRefused as err:
        return service_refusal(err)
    return cached_json(cache, paths.mfcc_clip_path(cache, clip, frames[clip], counts[clip], frame_s))


def serve_path_comparison(cache: Cache, first: int, second: int):
    """``/paths/<first>/<second>?rep=&v=``: two clips' paths compared (``paths.compare``: DTW
    and its chance level); the same refusals as ``/path``."""
    a, b = cache.clip_or_none(first), cache.clip_or_none(second)
    rep, answer = refused(cache, [a, b])
    if answer:
        return answer
    if not paths.from_service(cache, rep):
        return cached_json(cache, paths.compare_paths(cache, a, b, rep))
    n_first = int(float(cache.clips["duration_s"][a]) / MFCC_HOP_S) + 1
    references = paths.reference_clips(cache, a, b, n_first, MFCC_HOP_S)
    try:
        frames, counts, _ = service_frames(sorted({a, b, *references}), paths.MAX_DTW_FRAMES)
    except QueryRefused as err:
        return service_refusal(err)
    vectors = {clip: paths.mfcc_vectors(cache, f, clip) for clip, f in frames.items()}
    return cached_json(cache, paths.compare(cache, a, b, rep, vectors, counts, references))

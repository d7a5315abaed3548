"""The app's own HTTP routes beside Dash's: ``/audio`` (a clip's WAV or its reconstruction),
``/sound`` (its waveform and spectrogram as JSON), ``/clip-at`` (the clip at a clicked point),
``/path`` and ``/paths`` (``viewer.path_route``: a clip's frames as a path in every view, two
paths compared) and ``/query`` (``viewer.query_route``); the one containment check of every file sent; no stack
trace to a client; the proxy rule. ``register`` puts them on the app's Flask server.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from dash.exceptions import DependencyException
from flask import abort, jsonify, request, send_file
from werkzeug.exceptions import HTTPException

from dacviz_app.cache import Cache
from dacviz_app.embedding.spaces import is_view
from dacviz_app.explore import paths
from dacviz_app.explore.groups import ViewGroups
from dacviz_app.explore.sound import SUMMARY_VERSION, TooLong, memo_entries, sound_summary
from dacviz_app.viewer import page_state
from dacviz_app.viewer.memo import SharedFileMemo, private_folder, remove_stale_private_folders
from dacviz_app.viewer.path_route import serve_path, serve_path_comparison
from dacviz_app.viewer.query_route import serve_query

AUDIO_MAX_AGE_S = 24 * 3600
MAX_REQUEST_BYTES = 16 * 1024 * 1024  # a lasso over 100k points is ~6 MB of selectedData
CALLBACK_PATH = "/_dash-update-component"
SOUND_MEMO_PREFIX = "dacviz-sound-"
log = logging.getLogger("dacviz")


def register(server, cache: Cache, view_groups: ViewGroups) -> None:
    """Every route the app serves beside Dash's own, on the Flask ``server``, and the guard that
    keeps any other path under them from reaching Dash's page route; plus the error handling and
    the proxy rule. One sound memo per app (``sound_memo``)."""
    server.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    trust_proxies(server)
    install_error_handling(server)
    memo = sound_memo(cache)

    @server.route("/audio/<int:clip_id>")
    def audio(clip_id: int):
        return serve_audio(cache, clip_id)

    @server.route("/sound/<int:clip_id>")
    def sound(clip_id: int):
        return serve_sound(cache, memo, clip_id)

    @server.route("/clip-at/<view>/<int:curve>/<int:point>")
    def clip_at(view: str, curve: int, point: int):
        return clip_at_request(view_groups, view, curve, point)

    @server.route("/path/<int:clip_id>")
    def path(clip_id: int):
        return serve_path(cache, clip_id)

    @server.route("/paths/<int:first>/<int:second>")
    def paths(first: int, second: int):
        return serve_path_comparison(cache, first, second)

    @server.route("/query", methods=["GET", "POST"])
    def query():
        return serve_query(cache)

    @server.before_request
    def only_our_paths():
        if len(request.query_string) > page_state.MAX_SEARCH_CHARS:  # before anything parses it
            abort(414)
        # any other /audio... or /clip-at... path would otherwise reach Dash's page route (a 200)
        for prefix, endpoint in (("/audio", "audio"), ("/sound", "sound"), ("/clip-at", "clip_at"),
                                 ("/path", "path"), ("/paths", "paths"), ("/query", "query")):
            inside = request.path == prefix or request.path.startswith(prefix + "/")
            if inside and request.endpoint != endpoint:
                abort(404)


def clip_at_request(view_groups: ViewGroups, view: str, curve: int, point: int):
    """``/clip-at``'s arguments read from the request (bounded) for ``clip_at_point``."""
    key = request.args.get("key")  # the figure's own groups key; else the page's link says it
    if key is None:
        key = page_state.query_groups_key(view_groups, request.query_string.decode("latin-1"))
    wanted = None
    if request.args.get("highlight") == "1":
        wanted = {"rep": request.args.get("rep"), "k": request.args.get("k"),
                  "hide": [h[:500] for h in request.args.getlist("hide")[:200]],
                  "path": request.args.get("path") == "1"}
    return clip_at_point(view_groups, view, curve, point, key, wanted)


def install_error_handling(server) -> None:
    """No stack trace ever reaches a client. A callback request that makes Dash or a callback
    fail (forged or malformed input) is answered 400; anything else unexpected 500, both
    with a one-line body. The exception is logged on the server."""

    @server.errorhandler(Exception)
    def on_exception(err):
        if isinstance(err, HTTPException):
            return err
        if isinstance(err, DependencyException):  # /_dash-component-suites/<not ours>
            return {"error": "not found"}, 404
        log.exception("dacviz: error while serving %s %s", request.method, request.path)
        if request.path == CALLBACK_PATH:
            return {"error": "invalid callback request"}, 400
        return {"error": "internal error"}, 500


def audio_file(cache: Cache, clip_id: int) -> Path | None:
    """The audio file of ``clip_id`` if it is one of this cache's and lies inside its audio
    folder (symlinks resolved); otherwise None."""
    try:
        path = cache.audio_path(clip_id)
    except IndexError:
        return None
    return inside_audio_dir(cache, path)


def inside_audio_dir(cache: Cache, path: Path) -> Path | None:
    """``path`` resolved (symlinks followed) if it is a file inside the cache's audio folder,
    else None: the one containment check of every file the server sends."""
    root = os.path.realpath(cache.paths.audio_dir)
    real = os.path.realpath(path)
    if os.path.commonpath([root, real]) != root or not os.path.isfile(real):
        return None
    return Path(real)


def audio_url(cache: Cache, clip_id: int | str, depth: int | str = 0) -> str:
    """The URL the page plays ``clip_id`` from (``depth`` > 0: its reconstruction from that
    many codebooks). It names the cache (``?v=identity``) so that a browser never plays a clip
    it kept from another cache served at the same address. With ``clip_id="{clip}"`` and
    ``depth="{q}"``, the template the page's script fills in."""
    return f"/audio/{clip_id}?v={cache.identity}" + ("" if depth == 0 else f"&q={depth}")


def sound_url(cache: Cache, clip_id: int | str, depth: int | str = 0) -> str:
    """The URL of a clip's waveform and spectrogram (``/sound``), as ``audio_url``."""
    return f"/sound/{clip_id}?v={cache.identity}&q={depth}"


def path_url(cache: Cache, clip_id: int | str, rep: str) -> str:
    """The URL of a clip's path in ``rep`` (``/path``), as ``audio_url``."""
    return f"/path/{clip_id}?v={cache.identity}&rep={rep}"


def paths_url(cache: Cache, first: int | str, second: int | str, rep: str) -> str:
    """The URL of two clips' paths compared (``/paths``), as ``audio_url``."""
    return f"/paths/{first}/{second}?v={cache.identity}&rep={rep}"


def requested_file(cache: Cache, clip_id: int) -> Path | None:
    """The file ``/audio`` and ``/sound`` answer with: the clip's own audio (``q`` absent or 0)
    or its reconstruction from ``q`` codebooks; None (a 404) for anything else, another cache's
    ``v`` included."""
    version = request.args.get("v")
    if version is not None and version != cache.identity:
        return None
    depth = request.args.get("q", "0")
    if depth in ("", "0"):
        return audio_file(cache, clip_id)
    depth = cache.depth_or_none(depth)
    path = None if depth is None else cache.reconstruction_path(clip_id, depth)
    return None if path is None else inside_audio_dir(cache, path)


def serve_audio(cache: Cache, clip_id: int):
    """``/audio/<clip>``: the clip's WAV, with ranges and an ETag naming the cache.

    ``?v=<this cache's identity>`` (the page's URLs): kept a day by the browser. No ``v``:
    revalidated on every use (ETag), so a script's or an old link's answer is never stale.
    Another cache's ``v``: 404. A multi-range request gets the whole file (200), as HTTP allows.
    """
    path = requested_file(cache, clip_id)
    version = request.args.get("v")
    if path is None:
        abort(404)
    if "," in request.headers.get("Range", ""):
        request.environ.pop("HTTP_RANGE", None)  # werkzeug answers several ranges with 416
    response = send_file(path, mimetype="audio/wav", conditional=True,
                         etag=f"{cache.identity}-{clip_id}-{request.args.get('q', '0')}",
                         max_age=AUDIO_MAX_AGE_S)
    if version is None:
        response.cache_control.max_age = None
        response.cache_control.no_cache = True
    return response


def clip_at_point(view_groups: ViewGroups, view: str, curve: int, point: int, key,
                  highlight_for: dict | None = None):
    """``/clip-at/<view>/<trace>/<point>?key=<groups key>`` (or ``?<the page's link>``): the clip
    drawn there, ``{"clip": id}``, or 404; ``key``: the groups key the figure was drawn for (its
    ``layout.meta.groups``) or the one the link describes (``page_state.query_groups_key``). Lets
    the browser start a clicked clip's audio, and draw its neighbours, before the Dash round trip.

    ``highlight_for``: {"rep", "k", "hide", "path"} (the figure's representation, the page's k and
    hidden groups, whether the clip's path is wanted): the answer also holds ``"highlight"``, the
    payload the Dash path will send for this click (``page_state.highlight_update`` without a
    box/lasso set, which the page keeps), and with "path" the clip's path where ``rep`` has one
    from the cache (``/path``'s answer)."""
    if not is_view(view):
        abort(404)
    clip = page_state.point_to_clip(view_groups.drawn(key, view),
                                   {"curveNumber": curve, "pointNumber": point})
    if clip is None:
        abort(404)
    if highlight_for is None:
        return {"clip": clip}
    cache = view_groups.cache
    rep = highlight_for["rep"]
    if not cache.has_representation(rep):
        return {"clip": clip}
    groups = view_groups.all(key)
    hidden = {h for h in highlight_for["hide"] if isinstance(h, str)} & set(groups.names)
    selection = {"clip": clip, "cursor": -1, "play": clip, "nonce": 0}
    answer = {"clip": clip, "highlight": page_state.highlight_update(
        cache, groups, rep, selection, highlight_for["k"], [], hidden, False)}
    if highlight_for.get("path") and not paths.path_problem(cache, rep) and not paths.from_service(cache, rep):
        answer["path"] = paths.clip_path(cache, clip, rep)  # what /path answers: no second round trip
    return answer


def sound_memo(cache: Cache) -> SharedFileMemo:
    """The memo of sound summaries on disk, shared by every gunicorn worker of this machine:
    a clip's summary is computed once (FFTs of the whole clip), then read back. Bounded in
    entries (``sound.memo_entries``) and cheap to keep bounded (``memo.SharedFileMemo``)."""
    remove_stale_private_folders(SOUND_MEMO_PREFIX)
    longest = max((float(d) for d in cache.clips["duration_s"]), default=0.0)
    return SharedFileMemo(private_folder(f"{SOUND_MEMO_PREFIX}{cache.identity}-v{SUMMARY_VERSION}"),
                          memo_entries(longest))


def serve_sound(cache: Cache, memo, clip_id: int):
    """``/sound/<clip>?v=&q=``: ``explore.sound.sound_summary`` of the file ``/audio`` would
    serve, as JSON (a few KB for a short clip), memoised across workers; 404 under the same rules."""
    path = requested_file(cache, clip_id)
    if path is None:
        abort(404)
    key = str(path)  # the resolved file: one entry per file of the cache, whatever the URL said
    summary = memo.get(key)
    if summary is None:
        try:
            summary = sound_summary(path)
        except TooLong as err:
            return {"error": f"not drawn: {err}"}, 413
        memo.set(key, summary)  # a full disk: one log line, the answer is still sent
    response = jsonify(summary)
    if request.args.get("v") is not None:  # the page's URLs name the cache: safe to keep
        response.cache_control.max_age = AUDIO_MAX_AGE_S
    return response


PROXIES_ENV = "DACVIZ_PROXIES"


def trust_proxies(server) -> None:
    """Behind N reverse proxies ($DACVIZ_PROXIES=N, default 0: none), the client's address is
    the one the proxies say (X-Forwarded-For), so each user has their own query share; without
    proxies a forged header is ignored."""
    try:
        hops = int(os.environ.get(PROXIES_ENV) or 0)
    except ValueError:
        hops = 0
    if hops > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        server.wsgi_app = ProxyFix(server.wsgi_app, x_for=hops)

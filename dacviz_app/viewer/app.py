"""``create_app(cache_dir)``: the Dash app over one cache, and the audio route.

Everything the page needs (Bootstrap, Plotly, fonts: the system's) is served by the app
itself, so it works on a laptop with no network.
"""
from __future__ import annotations

import contextlib
import html
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import dash
from dash import Dash
from dash.exceptions import DependencyException
from flask import abort, jsonify, request, send_file
from werkzeug.exceptions import HTTPException

from dacviz_app import query_service
from dacviz_app.cache import Cache, open_cache
from dacviz_app.embedding.spaces import is_view
from dacviz_app.explore.groups import ViewGroups
from dacviz_app.explore.nearest import answer, clean_vectors, weights_problem
from dacviz_app.explore.sound import SUMMARY_VERSION, TooLong, memo_entries, sound_summary
from dacviz_app.query_service.protocol import MAX_SECONDS, MAX_UPLOAD_BYTES, QueryRefused
from dacviz_app.viewer import callbacks, page_state
from dacviz_app.viewer.layout import DEFAULT_K, build_layout
from dacviz_app.viewer.memo import SharedFileMemo

ASSETS = Path(__file__).resolve().parents[2] / "assets"
AUDIO_MAX_AGE_S = 24 * 3600
MAX_REQUEST_BYTES = 16 * 1024 * 1024  # a lasso over 100k points is ~6 MB of selectedData
CALLBACK_PATH = "/_dash-update-component"
log = logging.getLogger("dacviz")


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


def page_title(cache: Cache) -> str:
    """The page's <title>, HTML-escaped: Dash pastes it into its index template as it is, and
    the collection name comes from the user (``--name``) or a shared cache's manifest."""
    return html.escape(f"dacviz · {cache.name}")


def audio_url(cache: Cache, clip_id: int | str, depth: int | str = 0) -> str:
    """The URL the page plays ``clip_id`` from (``depth`` > 0: its reconstruction from that
    many codebooks). It names the cache (``?v=identity``) so that a browser never plays a clip
    it kept from another cache served at the same address. With ``clip_id="{clip}"`` and
    ``depth="{q}"``, the template the page's script fills in."""
    return f"/audio/{clip_id}?v={cache.identity}" + ("" if depth == 0 else f"&q={depth}")


def sound_url(cache: Cache, clip_id: int | str, depth: int | str = 0) -> str:
    """The URL of a clip's waveform and spectrogram (``/sound``), as ``audio_url``."""
    return f"/sound/{clip_id}?v={cache.identity}&q={depth}"


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

    ``highlight_for``: {"rep", "k", "hide"} (the figure's representation, the page's k and hidden
    groups): the answer also holds ``"highlight"``, the payload the Dash path will send for this
    click (``page_state.highlight_update`` without a box/lasso set, which the page keeps)."""
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
    return {"clip": clip, "highlight": page_state.highlight_update(
        cache, groups, rep, selection, highlight_for["k"], [], hidden, False)}


FORM_OVERHEAD_BYTES = 64 * 1024  # multipart headers and the small fields beside the audio
MAX_FORM_PARTS = 16  # the query form has 4 fields; werkzeug's own limit is 1,000
UPLOAD_DEADLINE_S = 20.0  # the whole upload must arrive within this (8 MB at 3.4 Mbit/s)


def serve_query(cache: Cache):
    """``POST /query``: a multipart form with the field ``audio`` (a WAV/FLAC/OGG/MP3 file) and
    optionally ``rep`` (a representation; default the first), ``k`` (default DEFAULT_K) and
    ``vectors=1`` (the page: send the query's vectors too). The encoder service encodes it
    into every representation; the answer says, for ``rep``, its k nearest clips and its place
    in every view (``core.query.answer``). Nothing is written. Refusals are JSON
    {"error": one line} with a 4xx (bad upload, too many at once, too slow) or 503 (no encoder,
    busy). A busy or absent encoder is a 503 before the upload is read; otherwise the whole
    upload is read first (within UPLOAD_DEADLINE_S) and only then does the encoder admit the
    query, so a slow upload holds no place in its queue.
    ``request.remote_addr`` names the client (behind a proxy: $DACVIZ_PROXIES, ``create_app``).
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
    return jsonify(body)


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


def sound_memo(cache: Cache) -> SharedFileMemo:
    """The memo of sound summaries on disk, shared by every gunicorn worker of this machine:
    a clip's summary is computed once (FFTs of the whole clip), then read back. Bounded in
    entries (``sound.memo_entries``) and cheap to keep bounded (``memo.SharedFileMemo``)."""
    remove_stale_private_folders(SOUND_MEMO_PREFIX)
    longest = max((float(d) for d in cache.clips["duration_s"]), default=0.0)
    return SharedFileMemo(private_folder(f"{SOUND_MEMO_PREFIX}{cache.identity}-v{SUMMARY_VERSION}"),
                          memo_entries(longest))


SOUND_MEMO_PREFIX = "dacviz-sound-"
STALE_MEMO_DAYS = 7


def remove_stale_private_folders(prefix: str, max_age_days: float = STALE_MEMO_DAYS) -> list[Path]:
    """Remove this user's private folders ``<temp>/<prefix>*-uid<uid>`` untouched for
    ``max_age_days`` (the memos of caches rebuilt or deleted since, or of an older summary
    version). Only folders this user owns, never a link. Returns those removed."""
    removed = []
    cutoff = time.time() - max_age_days * 86400
    for folder in Path(tempfile.gettempdir()).glob(f"{prefix}*-uid{os.getuid()}"):
        try:
            st = os.lstat(folder)
            if folder.is_symlink() or st.st_uid != os.getuid() or st.st_mtime > cutoff:
                continue
            shutil.rmtree(folder)
            removed.append(folder)
        except OSError:
            continue  # another worker removed it first, or it is not ours to remove
    return removed


def private_folder(name: str) -> Path:
    """``<system temp>/<name>-uid<uid>``, made 0700 and used only if this user owns it and no one
    else may write it (what the memo reads back is drawn for every user: a folder another local
    user planted must never be trusted); otherwise a fresh private folder (then not shared)."""
    folder = Path(tempfile.gettempdir()) / f"{name}-uid{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        st = os.lstat(folder)
        if st.st_uid == os.getuid() and (st.st_mode & 0o077) == 0 and not folder.is_symlink():
            return folder
    except OSError:
        pass
    return Path(tempfile.mkdtemp(prefix=f"{name}-"))


def serve_sound(cache: Cache, memo, clip_id: int):
    """``/sound/<clip>?v=&q=``: ``core.sound.sound_summary`` of the file ``/audio`` would
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


def create_app(cache_dir: str | Path) -> Dash:
    """The app for the cache in ``cache_dir``; raises CacheError when it cannot be used."""
    cache = open_cache(cache_dir)
    app = Dash(__name__, assets_folder=str(ASSETS), external_stylesheets=[],
               serve_locally=True, suppress_callback_exceptions=True,
               title=page_title(cache), update_title=None)
    app.layout = build_layout(cache, {"data-src-template": audio_url(cache, "{clip}"),
                                      "data-audio-template": audio_url(cache, "{clip}", "{q}"),
                                      "data-sound-template": sound_url(cache, "{clip}", "{q}")})
    app.server.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    trust_proxies(app.server)
    install_error_handling(app.server)
    view_groups = ViewGroups(cache)
    callbacks.register(app, cache, view_groups)

    @app.server.route("/audio/<int:clip_id>")
    def audio(clip_id: int):
        return serve_audio(cache, clip_id)

    memo = sound_memo(cache)

    @app.server.route("/sound/<int:clip_id>")
    def sound(clip_id: int):
        return serve_sound(cache, memo, clip_id)

    @app.server.route("/clip-at/<view>/<int:curve>/<int:point>")
    def clip_at(view: str, curve: int, point: int):
        key = request.args.get("key")  # the figure's own groups key; else the page's link says it
        if key is None:
            key = page_state.query_groups_key(view_groups, request.query_string.decode("latin-1"))
        wanted = None
        if request.args.get("highlight") == "1":
            wanted = {"rep": request.args.get("rep"), "k": request.args.get("k"),
                      "hide": [h[:500] for h in request.args.getlist("hide")[:200]]}
        return clip_at_point(view_groups, view, curve, point, key, wanted)

    @app.server.route("/query", methods=["GET", "POST"])
    def query():
        return serve_query(cache)

    @app.server.before_request
    def only_clip_ids_under_audio():
        if len(request.query_string) > page_state.MAX_SEARCH_CHARS:  # before anything parses it
            abort(414)
        # any other /audio... or /clip-at... path would otherwise reach Dash's page route (a 200)
        for prefix, endpoint in (("/audio", "audio"), ("/sound", "sound"), ("/clip-at", "clip_at"),
                                 ("/query", "query")):
            if request.path.startswith(prefix) and request.endpoint != endpoint:
                abort(404)

    log.info("dacviz: %s clips from %s (dash %s)", cache.n_clips, cache.root, dash.__version__)
    return app

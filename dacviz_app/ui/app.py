"""``create_app(cache_dir)``: the Dash app over one cache, and the audio route.

Everything the page needs (Bootstrap, Plotly, fonts: the system's) is served by the app
itself, so it works on a laptop with no network.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import dash
from dash import Dash
from flask import abort, request, send_file
from werkzeug.exceptions import HTTPException
from flask_caching import Cache as FlaskCache

from ..core.cache import Cache, open_cache
from . import callbacks
from .layout import build_layout

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
    root = os.path.realpath(cache.paths.audio_dir)
    real = os.path.realpath(path)
    if os.path.commonpath([root, real]) != root or not os.path.isfile(real):
        return None
    return Path(real)


def create_app(cache_dir: str | Path) -> Dash:
    """The app for the cache in ``cache_dir``; raises CacheError when it cannot be used."""
    cache = open_cache(cache_dir)
    app = Dash(__name__, assets_folder=str(ASSETS), external_stylesheets=[],
               serve_locally=True, suppress_callback_exceptions=True,
               title=f"dacviz · {cache.manifest.get('name', 'collection')}",
               update_title=None)
    app.layout = build_layout(cache)
    app.server.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    install_error_handling(app.server)
    memo = FlaskCache(app.server, config={"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 0})
    callbacks.register(app, cache, memo)

    @app.server.route("/audio/<int:clip_id>")
    def audio(clip_id: int):
        path = audio_file(cache, clip_id)
        if path is None:
            abort(404)
        return send_file(path, mimetype="audio/wav", conditional=True, etag=True,
                         max_age=AUDIO_MAX_AGE_S)

    @app.server.before_request
    def only_clip_ids_under_audio():
        # any other /audio... or /clip-at... path would otherwise reach Dash's page route (a 200)
        for prefix, endpoint in (("/audio", "audio"), ("/clip-at", "clip_at")):
            if request.path.startswith(prefix) and request.endpoint != endpoint:
                abort(404)

    log.info("dacviz: %s clips from %s (dash %s)", cache.n_clips, cache.root, dash.__version__)
    return app

"""``create_app(cache_dir)``: the Dash app over one cache: the page (``layout``), its callbacks
(``callbacks``) and the routes beside them (``routes``).

Everything the page needs (Bootstrap, Plotly, fonts: the system's) is served by the app
itself, so it works on a laptop with no network.
"""
from __future__ import annotations

import html
import logging
from pathlib import Path

import dash
from dash import Dash

from dacviz_app.cache import Cache, open_cache
from dacviz_app.explore.groups import ViewGroups
from dacviz_app.viewer import callbacks, routes
from dacviz_app.viewer.layout import build_layout

ASSETS = Path(__file__).resolve().parents[2] / "assets"
log = logging.getLogger("dacviz")


def page_title(cache: Cache) -> str:
    """The page's <title>, HTML-escaped: Dash pastes it into its index template as it is, and
    the collection name comes from the user (``--name``) or a shared cache's manifest."""
    return html.escape(f"dacviz · {cache.name}")


def create_app(cache_dir: str | Path) -> Dash:
    """The app for the cache in ``cache_dir``; raises CacheError when it cannot be used."""
    cache = open_cache(cache_dir)
    app = Dash(__name__, assets_folder=str(ASSETS), external_stylesheets=[],
               serve_locally=True, suppress_callback_exceptions=True,
               title=page_title(cache), update_title=None)
    app.layout = build_layout(cache, {"data-src-template": routes.audio_url(cache, "{clip}"),
                                      "data-audio-template": routes.audio_url(cache, "{clip}", "{q}"),
                                      "data-sound-template": routes.sound_url(cache, "{clip}", "{q}"),
                                      "data-path-template": routes.path_url(cache, "{clip}", "{rep}"),
                                      "data-paths-template": routes.paths_url(cache, "{first}", "{second}", "{rep}")})
    view_groups = ViewGroups(cache)
    callbacks.register(app, cache, view_groups)
    routes.register(app.server, cache, view_groups)
    log.info("dacviz: %s clips from %s (dash %s)", cache.n_clips, cache.root, dash.__version__)
    return app

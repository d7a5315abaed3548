"""The callbacks the browser runs (assets/1-dacviz.js, 2-dacviz-sound.js): zoom and camera kept,
the highlight drawn, A/B and depth for the audio, the clip played, the link kept in the URL."""
from __future__ import annotations

from dash import Input, Output, State

from dacviz_app.cache import Cache
from dacviz_app.embedding.spaces import VIEW_NAMES
from dacviz_app.explore.groups import ViewGroups


def register(app, cache: Cache, view_groups: ViewGroups) -> None:
    """Attach this feature's callbacks to ``app`` for ``cache``."""
    app.clientside_callback(
        "function(){return window.dacviz.keepView.apply(null, arguments);}",
        Output("view-state", "data"), *[Input(f"view-{v}", "relayoutData") for v in VIEW_NAMES],
        *[State(f"view-{v}", "figure") for v in VIEW_NAMES], State("view-state", "data"),
        prevent_initial_call=True)
    app.clientside_callback(
        "function(payload){return window.dacviz.drawHighlight(payload);}",
        Output("highlight-sync", "children"), Input("highlight", "data"))
    app.clientside_callback(
        "function(q){return window.dacvizSound.choose(q);}",
        Output("ab-sync", "children"), Input("ab", "value"), prevent_initial_call=True)
    app.clientside_callback(
        "function(q, ab){return window.dacvizSound.refresh();}",
        Output("sound-sync", "children"), Input("depth", "value"), Input("ab", "value"),
        prevent_initial_call=True)
    app.clientside_callback(
        "function(sel){return window.dacviz.play(sel);}",
        Output("audio-sync", "children"), Input("selection", "data"))
    app.clientside_callback(
        "function(sel, rep, colour, k, pres, q, cmp, filter, lasso, shown, options)"
        "{return window.dacviz.syncUrl(sel, rep, colour, k, pres, q, cmp, filter, lasso, shown, options);}",
        Output("url-sync", "children"), Input("selection", "data"), Input("rep", "value"),
        Input("colour", "value"), Input("k", "value"), Input("presentation", "value"),
        Input("depth", "value"), Input("compare", "value"), Input("filter", "value"),
        Input("lasso-link", "data"), Input("legend", "value"), State("legend", "options"))

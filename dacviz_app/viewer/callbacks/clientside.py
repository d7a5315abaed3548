"""The callbacks the browser runs: functions in assets/ that Dash calls by name
(``ClientsideFunction``): namespace "dacviz" (assets/1e-dacviz-keys.js registers keepView,
drawHighlight, play and syncUrl from 1b-1d) and "dacvizSound" (assets/2-dacviz-sound.js).
Zoom and camera kept, the highlight drawn, A/B and depth for the audio, the clip played, the link
kept in the URL."""
from __future__ import annotations

from dash import ClientsideFunction, Input, Output, State

from dacviz_app.cache import Cache
from dacviz_app.embedding.spaces import VIEW_NAMES
from dacviz_app.explore.groups import ViewGroups


def page(function_name: str) -> ClientsideFunction:
    """``window.dash_clientside.dacviz[function_name]`` (assets/1e-dacviz-keys.js)."""
    return ClientsideFunction(namespace="dacviz", function_name=function_name)


def sound(function_name: str) -> ClientsideFunction:
    """``window.dash_clientside.dacvizSound[function_name]`` (assets/2-dacviz-sound.js)."""
    return ClientsideFunction(namespace="dacvizSound", function_name=function_name)


def register(app, cache: Cache, view_groups: ViewGroups) -> None:
    """Attach this feature's callbacks to ``app`` for ``cache``."""
    app.clientside_callback(
        page("keepView"),
        Output("view-state", "data"), *[Input(f"view-{v}", "relayoutData") for v in VIEW_NAMES],
        *[State(f"view-{v}", "figure") for v in VIEW_NAMES], State("view-state", "data"),
        prevent_initial_call=True)
    app.clientside_callback(page("mapsDrawn"), Output("maps-drawn", "data"),
                            *[Input(f"view-{v}", "figure") for v in VIEW_NAMES])
    app.clientside_callback(page("drawHighlight"), Output("highlight-sync", "children"), Input("highlight", "data"))
    app.clientside_callback(sound("choose"), Output("ab-sync", "children"), Input("ab", "value"),
                            prevent_initial_call=True)
    app.clientside_callback(sound("refresh"), Output("sound-sync", "children"), Input("depth", "value"),
                            Input("ab", "value"), prevent_initial_call=True)
    app.clientside_callback(page("play"), Output("audio-sync", "children"), Input("selection", "data"))
    app.clientside_callback(
        page("syncUrl"),
        Output("url-sync", "children"), Input("selection", "data"), Input("rep", "value"),
        Input("colour", "value"), Input("k", "value"), Input("presentation", "value"),
        Input("depth", "value"), Input("compare", "value"), Input("filter", "value"),
        Input("lasso-link", "data"), Input("legend", "value"), Input("view-state", "data"),
        State("legend", "options"))

"""The measures panel: probes against depth with "control for", the decoder's fidelity, CKA, and
the clicked clip's fidelity under the player."""
from __future__ import annotations

from dash import Input, Output, State, html

from dacviz_app.cache import Cache
from dacviz_app.explore.groups import ViewGroups
from dacviz_app.viewer import measures_state
from dacviz_app.viewer.page_state import clean_selection


def lines(sentences: list[str]) -> list:
    return [html.P(s, className="mb-1") for s in sentences]


def register(app, cache: Cache, view_groups: ViewGroups) -> None:
    """Attach this feature's callbacks to ``app`` for ``cache``."""
    @app.callback(Output("probe-chart", "figure"), Output("probe-note", "children"),
                  inputs=dict(control=Input("control", "value"), presentation=Input("presentation", "value")))
    def on_probes(control, presentation):
        figure, note = measures_state.probe_panels(cache, control, bool(presentation))
        return figure, lines(note)

    @app.callback(Output("fidelity-chart", "figure"), Output("fidelity-note", "children"),
                  inputs=dict(_drawn=Input("maps-drawn", "data")),  # after the maps (callbacks/side.py)
                  state=dict(colour=State("colour", "value"), presentation=State("presentation", "value")),
                  prevent_initial_call=True)
    def on_fidelity(_drawn, colour, presentation):
        figure, note = measures_state.fidelity_panel(cache, colour, bool(presentation))
        return figure, lines(note)

    @app.callback(Output("cka-chart", "figure"), Output("cka-note", "children"),
                  inputs=dict(presentation=Input("presentation", "value")))
    def on_cka(presentation):
        figure, note = measures_state.cka_panel(cache, bool(presentation))
        return figure, lines(note)

    @app.callback(Output("clip-fidelity", "children"),
                  inputs=dict(selection=Input("selection", "data"), depth=Input("ab", "value")))
    def on_clip_fidelity(selection, depth):
        clip = clean_selection(cache, selection).get("clip")
        return measures_state.clip_fidelity_text(cache, clip, cache.depth_or_none(depth) if depth else 0)

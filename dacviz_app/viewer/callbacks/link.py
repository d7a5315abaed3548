"""The link: its settings set the controls, the folded row opens for a link that filters or
compares, and the groups key (colour, compared pair, filter) follows the controls."""
from __future__ import annotations

from dash import Input, Output, State, ctx, no_update

from dacviz_app.cache import Cache
from dacviz_app.explore.groups import AGREEMENT, ViewGroups
from dacviz_app.viewer.page_state import parse_query, shown_rep, valid_compare


def register(app, cache: Cache, view_groups: ViewGroups) -> None:
    """Attach this feature's callbacks to ``app`` for ``cache``."""
    @app.callback(Output("rep", "value"),
                  Output("colour", "value"),
                  Output("k", "value"),
                  Output("presentation", "value"),
                  Output("depth", "value"),
                  Output("compare", "value"),
                  Output("filter", "value"),
                  Output("restored-hide", "data"),
                  Output("view-state", "data", allow_duplicate=True),
                  inputs=dict(search=Input("url", "search")),
                  prevent_initial_call="initial_duplicate")
    def url_to_controls(search):
        """The link's settings into the controls, and its zooms and cameras (view=) into the
        view-state store, which the next figures of the link's representation are drawn with."""
        settings = parse_query(cache, search)
        key = view_groups.make_key("label", filters=settings["filter"])
        return (settings["rep"], settings["colour"], settings["k"],
                ["on"] if settings["presentation"] else [], settings["depth"] or no_update,
                settings["compare"], list(key.filters), settings["hide"], settings["views"] or no_update)

    @app.callback(Output("more-controls", "is_open"),
                  inputs=dict(_clicks=Input("more-toggle", "n_clicks"),
                              search=Input("url", "search")),
                  state=dict(is_open=State("more-controls", "is_open")))
    def on_more_controls(_clicks, search, is_open):
        """The filter, find, compare and export row: folded, open on a click, and open for a
        link that filters or compares (so what shapes the maps is in sight)."""
        if ctx.triggered_id == "more-toggle":
            return not is_open
        settings = parse_query(cache, search)
        return bool(settings["filter"]) or settings["colour"] == AGREEMENT

    @app.callback(Output("groups-key", "data"),
                  inputs=dict(colour=Input("colour", "value"),
                              rep=Input("rep", "value"),
                              depth=Input("depth", "value"),
                              compare=Input("compare", "value"),
                              filters=Input("filter", "value")),
                  state=dict(current=State("groups-key", "data")))
    def on_groups_key(colour, rep, depth, compare, filters, current):
        key = view_groups.make_key(colour, shown_rep(cache, rep, depth),
                                   valid_compare(cache, compare, rep), filters).text
        return no_update if key == current else key

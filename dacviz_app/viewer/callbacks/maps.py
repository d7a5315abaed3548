"""The four maps: their figures and the shared legend from the controls, and the highlight
payload drawn over them on every selection (``figures.highlight_payload``)."""
from __future__ import annotations

from dash import Input, Output, State, ctx, no_update

from dacviz_app.cache import Cache
from dacviz_app.embedding.spaces import VIEW_NAMES
from dacviz_app.explore.groups import AGREEMENT, ViewGroups
from dacviz_app.viewer.page_state import (figures_update, hidden_groups, highlight_update,
                                          shown_rep, valid_compare, valid_rep)
from dacviz_app.viewer.layout import colour_options, legend_options


def register(app, cache: Cache, view_groups: ViewGroups) -> None:
    """Attach this feature's callbacks to ``app`` for ``cache``."""
    @app.callback(*[Output(f"view-{v}", "figure") for v in VIEW_NAMES],
                  Output("legend", "options"),
                  Output("legend", "value"),
                  Output("restored-hide", "data", allow_duplicate=True),
                  inputs=dict(rep=Input("rep", "value"),
                              colour=Input("colour", "value"),
                              depth=Input("depth", "value"),
                              compare=Input("compare", "value"),
                              filters=Input("filter", "value"),
                              presentation=Input("presentation", "value"),
                              shown=Input("legend", "value")),
                  state=dict(options=State("legend", "options"),
                             restored=State("restored-hide", "data"),
                             view_state=State("view-state", "data")),
                  prevent_initial_call="initial_duplicate")
    def on_figures(rep, colour, depth, compare, filters, presentation, shown, options, restored,
                   view_state):
        """The four figures and the shared legend, in one answer straight from the controls
        (not through the groups-key store and the legend: each link in that chain was a round
        trip before a 100k page could start drawing). A legend click patches visibility only;
        new groups show every group, but a link's hidden ones (``hide=``) once. "Compare with"
        redraws nothing unless the maps are coloured by the agreement it changes, nor does the
        slider while another representation than z is shown."""
        current = shown_rep(cache, rep, depth)
        alone = len(ctx.triggered) == 1
        if alone and ((ctx.triggered_id == "compare" and colour != AGREEMENT)
                      or (ctx.triggered_id == "depth" and valid_rep(cache, rep) != "z")):
            return (no_update,) * (len(VIEW_NAMES) + 3)  # the slider applies to z only
        key = view_groups.make_key(colour, current, valid_compare(cache, compare, rep), filters)
        groups = view_groups.all(key)
        drawn = {v: view_groups.drawn(key, v) for v in VIEW_NAMES}
        if ctx.triggered_id == "legend" and len(ctx.triggered) == 1:
            return *figures_update(cache, drawn, current, bool(presentation),
                                   hidden_groups(groups, shown), True), no_update, no_update, no_update
        names = list(groups.names)
        same = isinstance(options, list) and [o.get("value") for o in options if isinstance(o, dict)] == names
        hide = {h for h in restored if isinstance(h, str)} if isinstance(restored, list) else set()
        if hide & set(names):  # a link's hidden groups, once (the legend may already list them)
            legend = no_update if same else legend_options(groups)
            value, restored_out = [n for n in names if n not in hide], []
            hidden = hide & set(names)
        elif same:
            legend, value, restored_out = no_update, no_update, no_update
            hidden = hidden_groups(groups, shown)
        else:
            legend, value, restored_out = legend_options(groups), names, no_update
            hidden = set()
        return (*figures_update(cache, drawn, current, bool(presentation), hidden, False,
                                uirevision=current, key=key.text, filtered=bool(key.filters),
                                view_state=view_state),
                legend, value, restored_out)

    @app.callback(Output("colour", "options"),
                  inputs=dict(rep=Input("rep", "value"),
                              depth=Input("depth", "value"),
                              compare=Input("compare", "value")))
    def on_colour_names(rep, depth, compare):
        """"Colour by"'s agreement choice names both representations it compares."""
        return colour_options(cache, shown_rep(cache, rep, depth), valid_compare(cache, compare, rep))

    @app.callback(Output("highlight", "data"),
                  inputs=dict(selection=Input("selection", "data"),
                              rep=Input("rep", "value"),
                              k=Input("k", "value"),
                              lasso=Input("lasso-store", "data"),
                              shown=Input("legend", "value"),
                              presentation=Input("presentation", "value"),
                              depth=Input("depth", "value"),
                              key=Input("groups-key", "data")),
                  state=dict(query=State("query", "data")))
    def on_highlight(selection, rep, k, lasso, shown, presentation, depth, key, query):
        groups = view_groups.all(key)
        return highlight_update(cache, groups, shown_rep(cache, rep, depth), selection, k, lasso,
                                hidden_groups(groups, shown), bool(presentation), query)

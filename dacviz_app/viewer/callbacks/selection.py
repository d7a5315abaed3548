"""What is selected: a clicked clip (or a query by voice) and the neighbour playing, and the
box/lasso set (from a view, a confusion cell, the find box or the link)."""
from __future__ import annotations

from dash import Input, Output, State, ctx, no_update

from dacviz_app.cache import Cache
from dacviz_app.embedding.spaces import VIEW_NAMES, VIEWS
from dacviz_app.explore.groups import ViewGroups
from dacviz_app.viewer.page_state import (confusion_cell_clips, find_selection, next_selection,
                                          parse_query, points_to_clips, shown_rep)


def register(app, cache: Cache, view_groups: ViewGroups) -> None:
    """Attach this feature's callbacks to ``app`` for ``cache``."""
    flat = [v.name for v in VIEWS if v.dim == 2]

    @app.callback(Output("selection", "data"),
                  inputs=dict(search=Input("url", "search"),
                              clicks=[Input(f"view-{v}", "clickData") for v in VIEW_NAMES],
                              _clear=Input("clear", "n_clicks"), _next=Input("key-next", "n_clicks"),
                              _prev=Input("key-prev", "n_clicks"),
                              played=Input("neighbour-play", "data"),  # assets/1c-dacviz-click.js
                              query=Input("query", "data")),  # set by assets/3-dacviz-query.js
                  state=dict(selection=State("selection", "data"), key=State("groups-key", "data"),
                             rep=State("rep", "value"), k=State("k", "value"),
                             depth=State("depth", "value"), mode=State("click-mode", "data")))
    def on_event(search, clicks, _clear, _next, _prev, played, query, selection, key, rep, k, depth, mode):
        """The selection after a click, a key, a neighbour's play button (``played``: {"clip",
        "nonce"}), a query by voice or the link. A shift-click on a view selects nothing: it
        compares paths (assets/4-dacviz-path.js)."""
        trigger = ctx.triggered_id
        if trigger is None or (trigger == "query" and not isinstance(query, dict)) \
                or (trigger == "neighbour-play" and not isinstance(played, dict)):
            trigger = "url"  # the page's first call (an empty store announces itself then)
        neighbour = None
        if trigger == "neighbour-play":
            trigger, neighbour = {"type": "play-neighbour"}, cache.clip_or_none(played.get("clip"))
        view = trigger[5:] if isinstance(trigger, str) and trigger.startswith("view-") else None
        if view is not None and isinstance(mode, dict) and mode.get("shift") is True:
            return no_update
        click = clicks[VIEW_NAMES.index(view)] if view in VIEW_NAMES else None
        return next_selection(cache, view_groups.drawn(key, view or VIEW_NAMES[0]), trigger,
                              selection, shown_rep(cache, rep, depth), k, click=click, search=search,
                              neighbour=neighbour,
                              query=query)

    @app.callback(Output("lasso-store", "data"), Output("find-note", "children"),
                  inputs=dict(search=Input("url", "search"),
                              selected=[Input(f"view-{name}", "selectedData") for name in flat],
                              _clear=Input("clear", "n_clicks"), cell=Input("confusion", "clickData"),
                              _go=Input("find-go", "n_clicks"), _enter=Input("find", "n_submit")),
                  state=dict(text=State("find", "value"), key=State("groups-key", "data"),
                             rep=State("rep", "value"), depth=State("depth", "value"),
                             colour=State("colour", "value"), control=State("control", "value")))
    def on_lasso(search, selected, _clear, cell, _go, _enter, text, key, rep, depth, colour, control):
        """The box/lasso selection: from the link, a 2D view's box or lasso, a confusion cell
        or the find box (and the find box's note)."""
        trigger = ctx.triggered_id
        kept = view_groups.all(key).group_of() >= 0  # the clips the filter keeps
        shown = lambda ids: [i for i in ids if kept[i]]  # noqa: E731
        if trigger is None or trigger == "url":
            return shown(parse_query(cache, search)["lasso"]), no_update
        if trigger == "clear":
            return [], ""
        if trigger == "confusion":
            return shown(confusion_cell_clips(cache, shown_rep(cache, rep, depth), colour, cell, control)), ""
        if trigger in ("find-go", "find"):
            if not isinstance(text, str) or not text.strip():
                return no_update, ""
            return find_selection(cache, text, kept)
        view = trigger[5:] if isinstance(trigger, str) else None
        if view not in flat:
            return no_update, no_update
        return points_to_clips(cache, view_groups.drawn(key, view), selected[flat.index(view)]), ""

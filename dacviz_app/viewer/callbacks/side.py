"""The side and lower panels: the clip and its neighbours, the selection list, the metrics
table, the analysis, a filter's scores, the exports, and the codec lens's charts."""
from __future__ import annotations

from functools import partial

from dash import Input, Output, State, ctx, dcc, html, no_update


from dacviz_app.cache import Cache
from dacviz_app.embedding.spaces import VIEW_NAMES
from dacviz_app.explore import analysis
from dacviz_app.explore.groups import AGREEMENT, ViewGroups
from dacviz_app.explore.measures import confound_note, controlled_knn
from dacviz_app.viewer.figures import confusion_figure, depth_marker
from dacviz_app.viewer.analysis_view import analysis_note, metrics_table, subset_table, weights_notes
from dacviz_app.viewer.layout import depth_label
from dacviz_app.viewer.page_state import (clean_clip_list, clean_selection, codec_charts, confusion_control,
                                          column_rows, figures_update, hidden_groups,
                                          highlight_update, link_selection, metrics_column,
                                          shown_rep, valid_compare, valid_depth)
from dacviz_app.viewer.panels import (exported_clips, render_clip_info, render_lasso,
                                      render_neighbours)
from dacviz_app.viewer.report import report_html


def register(app, cache: Cache, view_groups: ViewGroups) -> None:
    """Attach this feature's callbacks to ``app`` for ``cache``."""
    columns = view_groups.filter_columns
    notes = weights_notes(cache)
    filter_said = partial(filter_note, cache, view_groups)

    @app.callback(Output("clip-info", "children"),
                  Output("neighbour-list", "children"),
                  inputs=dict(selection=Input("selection", "data"),
                              rep=Input("rep", "value"),
                              k=Input("k", "value"),
                              depth=Input("depth", "value"),
                              compare=Input("compare", "value")),
                  state=dict(query=State("query", "data")))
    def on_details(selection, rep, k, depth, compare, query):
        selection, current = clean_selection(cache, selection), shown_rep(cache, rep, depth)
        return render_clip_info(cache, selection, query, current), render_neighbours(
            cache, selection, current, k, columns, valid_compare(cache, compare, rep), query)

    @app.callback(Output("lasso-list", "children"),
                  Output("lasso-link", "data"),
                  inputs=dict(lasso=Input("lasso-store", "data")))
    def on_lasso_list(lasso):
        lasso = clean_clip_list(cache, lasso)
        link = link_selection(lasso)
        return render_lasso(cache, lasso, columns, link is not None), link

    # the panels below the maps follow "maps-drawn" (assets/1d-dacviz-layout.js), not the controls
    # that redraw the maps: the browser draws the maps first, then these
    @app.callback(Output("metrics-table", "children"),
                  inputs=dict(_drawn=Input("maps-drawn", "data"),
                              control=Input("control", "value")),
                  state=dict(rep=State("rep", "value"),
                             depth=State("depth", "value"),
                             colour=State("colour", "value"),
                             filters=State("filter", "value")),
                  prevent_initial_call=True)
    def on_metrics(_drawn, control, rep, depth, colour, filters):
        current, column = shown_rep(cache, rep, depth), metrics_column(cache, colour)
        held_out = confusion_control(cache, control, column)
        return [filter_said(filters), metrics_table(
            column_rows(cache, current, column), current, cache.metrics_params, column, colour, notes,
            controlled_knn(cache, column, held_out), held_out, confound_note(cache, column))]

    @app.callback(Output("confusion", "figure"),
                  Output("analysis-note", "children"),
                  inputs=dict(_drawn=Input("maps-drawn", "data"),
                              control=Input("control", "value"),
                              compare=Input("compare", "value")),  # redraws no map (but agreement's)
                  state=dict(rep=State("rep", "value"),
                             depth=State("depth", "value"),
                             colour=State("colour", "value"),
                             presentation=State("presentation", "value"),
                             filters=State("filter", "value")),
                  prevent_initial_call=True)
    def on_analysis(_drawn, control, compare, rep, depth, colour, presentation, filters):
        if ctx.triggered_id == "compare" and len(ctx.triggered) == 1 and colour == AGREEMENT:
            return no_update, no_update  # the maps are redrawn for it: maps-drawn follows
        current, column = shown_rep(cache, rep, depth), metrics_column(cache, colour)
        conf = analysis.confusion(cache, current, column, confusion_control(cache, control, column))
        compare = valid_compare(cache, compare, rep)
        mean = float(analysis.agreement(cache, current, compare).mean()) if compare != current else None
        kept = view_groups.kept(view_groups.make_key("label", current, compare, filters))
        filtered = None if kept is None else int(kept.sum())
        return (confusion_figure(conf, bool(presentation), filtered is not None),
                analysis_note(cache, conf, current, compare, mean, colour, filtered))

    register_scores_and_exports(app, cache, view_groups)


def filter_note(cache: Cache, view_groups: ViewGroups, filters) -> html.Small | None:
    """'The filter does not apply here: …' for a panel that scores every clip while the page's
    filter (``filters``, the control's value) hides some; None without a filter."""
    kept = view_groups.kept(view_groups.make_key("label", filters=filters))
    if kept is None:
        return None
    return html.Small(f"The filter does not apply here: every clip is scored (the maps show "
                      f"{int(kept.sum()):,} of {cache.n_clips:,}).", className="d-block text-warning-emphasis filter-said")


def register_scores_and_exports(app, cache: Cache, view_groups: ViewGroups) -> None:
    """A filter's scores, the CSV and report exports, the codebook label, and the lens's charts."""
    @app.callback(Output("filter-metrics", "children"),
                  inputs=dict(clicks=Input("score-filter", "n_clicks"),
                              key=Input("groups-key", "data"),
                              rep=Input("rep", "value"),
                              depth=Input("depth", "value")),
                  state=dict(colour=State("colour", "value")),
                  prevent_initial_call=True)
    def on_score_filter(clicks, key, rep, depth, colour):
        if ctx.triggered_id != "score-filter":
            return []  # a new filter or representation: the old scores no longer apply
        parsed = view_groups.key(key)
        keep = view_groups.kept(parsed)
        if keep is None:
            return html.Div("Choose a filter first (e.g. speaker=…).", className="text-muted")
        current, column = shown_rep(cache, rep, depth), metrics_column(cache, colour)
        result = analysis.subset_metrics(cache, current, column, keep, VIEW_NAMES)
        return subset_table(result, current, column, parsed.filters)

    @app.callback(Output("download", "data"),
                  inputs=dict(_csv=Input("export-csv", "n_clicks"),
                              _report=Input("export-report", "n_clicks")),
                  state=dict(selection=State("selection", "data"),
                             lasso=State("lasso-store", "data"),
                             rep=State("rep", "value"),
                             depth=State("depth", "value"),
                             k=State("k", "value"),
                             key=State("groups-key", "data"),
                             shown=State("legend", "value"),
                             colour=State("colour", "value")),
                  prevent_initial_call=True)
    def on_export(_csv, _report, selection, lasso, rep, depth, k, key, shown, colour):
        current = shown_rep(cache, rep, depth)
        keep = view_groups.kept(key)
        if ctx.triggered_id == "export-csv":
            clips, name = exported_clips(cache, selection, lasso, current, k, keep)
            clicked = clean_selection(cache, selection)["clip"]
            text = analysis.export_csv(cache, clips, current, clicked, VIEW_NAMES)
            return dcc.send_string(text, f"dacviz-{cache.name}-{current}-{name}.csv", type="text/csv")
        if ctx.triggered_id == "export-report":
            groups = view_groups.all(key)
            figures = figures_update(cache, {v: view_groups.drawn(key, v) for v in VIEW_NAMES},
                                     current, False, hidden_groups(groups, shown), False)
            highlight = highlight_update(cache, groups, current, selection, k, lasso,
                                         hidden_groups(groups, shown), False)
            column = metrics_column(cache, colour)
            text = report_html(cache, current, figures, highlight,
                               column_rows(cache, current, column), column, groups,
                               hidden_groups(groups, shown))
            return dcc.send_string(text, f"dacviz-{cache.name}-{current}-report.html", type="text/html")
        return no_update

    if cache.depths():
        @app.callback(Output("depth-label", "children"),
                      inputs=dict(depth=Input("depth", "value")))
        def on_depth_label(depth):
            return depth_label(cache, valid_depth(cache, depth))

    if cache.depths() or cache.code_counts() is not None:
        register_lens_charts(app, cache, view_groups)


def register_lens_charts(app, cache: Cache, view_groups: ViewGroups) -> None:
    """The codec lens's two charts (a cache with depths or code counts)."""
    filter_said = partial(filter_note, cache, view_groups)

    @app.callback(Output("depth-chart", "figure"),
                  Output("codec-note", "children"),
                  inputs=dict(_drawn=Input("maps-drawn", "data"),
                              depth=Input("depth", "value")),
                  state=dict(colour=State("colour", "value"),
                             presentation=State("presentation", "value"),
                             filters=State("filter", "value")),
                  prevent_initial_call=True)
    def on_depth_chart(_drawn, depth, colour, presentation, filters):
        """The metrics against q: the whole chart after the maps are drawn; a slider move
        alone (with another representation shown, no map changes) moves its q line only."""
        if ctx.triggered_id == "depth" and len(ctx.triggered) == 1:
            return depth_marker(valid_depth(cache, depth)), no_update
        figure, _usage, note = codec_charts(cache, colour, depth, bool(presentation))
        return figure, [note, filter_said(filters)]

    @app.callback(Output("usage-chart", "figure"),
                  inputs=dict(presentation=Input("presentation", "value")))
    def on_usage_chart(presentation):
        """How each level uses its codebook: only the presentation's font size changes it."""
        return codec_charts(cache, None, None, bool(presentation))[1]

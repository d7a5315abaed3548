"""Callbacks: a click travels clickData -> clip id -> neighbour rows from the cache's table ->
a small highlight payload drawn over all four views by the browser + the audio element. No
figure is rebuilt or patched on a click.

The decision logic lives in plain functions (``next_selection``, ``points_to_clips``,
``parse_query``, ``figures_update``) that the tests call directly; ``register`` wires them.
"""
from __future__ import annotations

from urllib.parse import parse_qs

import numpy as np

import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, ctx, html, no_update

from dash import dcc

from dacviz_app.explore import analysis
from dacviz_app.cache import Cache
from dacviz_app.explore.nearest import clean_vectors, nearest, nearest_and_place
from dacviz_app.embedding.spaces import VIEW_NAMES, VIEWS
from dacviz_app.embedding.spaces import view as view_row
from dacviz_app.embedding.metrics import codebook_usage
from dacviz_app.explore.groups import (AGREEMENT, ViewGroups, active_representation, clip_details, depth_metrics,
                          hover_texts, neighbour_rows, scored_columns,
                          valid_clip_ids, valid_colour)
from dacviz_app.viewer.figures import (MAX_LASSO_DRAWN, base_figure, confusion_figure, depth_figure,
                      highlight_payload, legend_patch, usage_figure, user_view, view_title)
from dacviz_app.viewer.layout import (DEFAULT_K, analysis_note, depth_label, metrics_table, representation_choices,
                     subset_table, unscored_reason, weights_notes)
from dacviz_app.viewer.report import report_html

EMPTY_SELECTION = {"clip": None, "cursor": -1, "play": None, "nonce": 0}


# ----------------------------------------------------------------------------- pure logic
def _int(value, default=None):
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return default


MAX_SEARCH_CHARS = 32 * 1024  # a link the page writes stays far below (sel= alone is cut at 1,500)
MAX_SEARCH_FIELDS = 1500  # filter= (at most 1,000 read) + hide= (200) + the dozen settings


def bounded_search(search) -> str:
    """A link's search string (untrusted: a forged one may be megabytes) -> at most
    MAX_SEARCH_CHARS characters, cut at the last whole field, without the leading '?'."""
    text = search if isinstance(search, str) else ""
    if len(text) > MAX_SEARCH_CHARS:
        text = text[:MAX_SEARCH_CHARS].rpartition("&")[0]
    return text.lstrip("?")


def parse_link(search) -> dict[str, list[str]]:
    """A link's search string -> {name: [values]} (``parse_qs``), reading at most
    MAX_SEARCH_CHARS characters and MAX_SEARCH_FIELDS fields (more fields: nothing is read)."""
    try:
        return parse_qs(bounded_search(search), max_num_fields=MAX_SEARCH_FIELDS)
    except ValueError:  # more fields than a link has
        return {}


def parse_query(cache: Cache, search: str | None) -> dict:
    """'?rep=z&colour=label&k=10&clip=3&cmp=mfcc&filter=speaker%3Dx&sel=1-4,9' -> validated
    settings; bad values fall back (a search longer than a link is read as ``parse_link`` says)."""
    lists = parse_link(search)
    query = {k: v[-1] for k, v in lists.items()}
    colour = query.get("colour")
    return {"rep": valid_rep(cache, query.get("rep")),
            "colour": AGREEMENT if colour == AGREEMENT else valid_colour(cache, colour),
            "k": cache.clamp_k(query.get("k"), DEFAULT_K), "clip": cache.clip_or_none(query.get("clip")),
            "presentation": query.get("present") == "1", "depth": valid_depth(cache, query.get("q")),
            "compare": valid_compare(cache, query.get("cmp"), valid_rep(cache, query.get("rep"))),
            "filter": lists.get("filter", [])[:1000],
            "hide": [h[:500] for h in lists.get("hide", [])[:200]],
            "lasso": decode_id_ranges(cache, query.get("sel"))}


def query_groups_key(view_groups: ViewGroups, search: str | None) -> str:
    """The groups key (``views.GroupsKey.text``) the page's URL describes: what /clip-at reads
    when the figure does not say its own key."""
    cache = view_groups.cache
    q = parse_query(cache, search)
    return view_groups.make_key(q["colour"], shown_rep(cache, q["rep"], q["depth"]), q["compare"],
                                q["filter"]).text


def valid_compare(cache: Cache, compare, rep) -> str:
    """The representation to compare with: ``compare`` if it is a dropdown choice other than
    ``rep``, else mfcc (or the first choice that is not ``rep``)."""
    choices = representation_choices(cache)
    others = [c for c in choices if c != rep] or choices
    if isinstance(compare, str) and compare in others:
        return compare
    return "mfcc" if "mfcc" in others else others[0]


MAX_LINK_CHARS = 1500  # a selection longer than this as id ranges is not put in the link


def encode_id_ranges(ids: list[int]) -> str:
    """Sorted unique ids -> '1-4,9,12-13' (what the link's sel= holds)."""
    parts, start = [], None
    for i, clip in enumerate(ids):
        if start is None:
            start = clip
        if i + 1 == len(ids) or ids[i + 1] != clip + 1:
            parts.append(str(start) if start == clip else f"{start}-{clip}")
            start = None
    return ",".join(parts)


def decode_id_ranges(cache: Cache, text) -> list[int]:
    """'1-4,9' from a link (untrusted) -> the valid clip ids, sorted and unique; at most
    MAX_LINK_CHARS of text is read, and a range never reaches past the cache."""
    if not isinstance(text, str) or not text:
        return []
    keep = np.zeros(cache.n_clips, dtype=bool)  # O(parts + n_clips), whatever the ranges say
    for part in text[:MAX_LINK_CHARS].split(","):
        low, _, high = part.partition("-")
        low_i, high_i = _int(low), _int(high) if high else _int(low)
        if low_i is None or high_i is None:
            continue
        keep[max(low_i, 0):max(min(high_i, cache.n_clips - 1) + 1, 0)] = True
    return np.flatnonzero(keep).tolist()


def link_selection(ids: list[int]) -> str | None:
    """The link's sel= value for a box/lasso selection; None when it is too long to keep."""
    text = encode_id_ranges(ids)
    return text if len(text) <= MAX_LINK_CHARS else None


def valid_depth(cache: Cache, depth) -> int | None:
    """A stored codebook depth (the full count when ``depth`` is not one); None without depths."""
    stored = [q for q, _rep in cache.depths()]
    if not stored:
        return None
    depth = cache.depth_or_none(depth)
    return depth if depth in stored else stored[-1]


def clean_selection(cache: Cache, selection) -> dict:
    """A selection store value as sent by a client (maybe forged) -> a valid one."""
    selection = selection if isinstance(selection, dict) else {}
    clip = cache.clip_or_none(selection.get("clip"))
    return {"clip": clip,
            "cursor": min(max(_int(selection.get("cursor"), -1), -1), cache.knn_k - 1),
            "play": cache.clip_or_none(selection.get("play")), "nonce": _int(selection.get("nonce"), 0),
            "query": None if clip is not None else _int(selection.get("query"))}


def query_vectors(cache: Cache, selection: dict, query) -> dict | None:
    """The query the selection shows (``selection["query"]``: its nonce), as {rep: (dim,)
    float32}, or None (no query selected, or the store holds another one)."""
    if selection.get("query") is None or not isinstance(query, dict) \
            or _int(query.get("nonce")) != selection["query"]:
        return None
    return clean_vectors(cache, query.get("vectors")) or None


def query_rows(cache: Cache, vectors: dict | None, rep: str, k) -> list[dict]:
    """The query's k nearest clips in ``rep`` (rows as ``neighbour_rows``), [] without it."""
    if not vectors or rep not in vectors:
        return []
    return nearest(cache, rep, vectors[rep], cache.clamp_k(k, DEFAULT_K))


def clean_clip_list(cache: Cache, clips) -> list[int]:
    """A list of clip ids from a client (maybe forged: a million ids, repeats, junk) -> the
    valid ones, sorted and unique: at most n_clips, whatever the request held."""
    if not isinstance(clips, list):
        return []
    return valid_clip_ids(cache.n_clips, clips)


def valid_rep(cache: Cache, rep) -> str:
    """``rep`` if it is one of the dropdown's representations, else the first one."""
    choices = representation_choices(cache)
    return rep if isinstance(rep, str) and rep in choices else choices[0]


def shown_rep(cache: Cache, rep, depth) -> str:
    """The representation on screen: the dropdown's choice, at the slider's depth for z."""
    return active_representation(cache, valid_rep(cache, rep), depth)


def point_to_clip(groups, point: dict) -> int | None:
    """A clickData/selectedData point -> clip id, or None for a point we did not draw."""
    if not isinstance(point, dict):
        return None
    curve = _int(point.get("curveNumber"))
    index = _int(point.get("pointNumber", point.get("pointIndex")))
    if curve is None or index is None or index < 0:
        return None
    try:  # every trace is a colour group; highlights are drawn on a canvas, not as traces
        return groups.clip_at(curve, index)
    except IndexError:
        return None


def points_to_clips(cache: Cache, groups, selected_data) -> list[int]:
    """selectedData of a box/lasso -> sorted unique clip ids. A view draws each clip at most
    once, so only the first n_clips points are read (a forged list may be longer)."""
    points = (selected_data or {}).get("points") or [] if isinstance(selected_data, dict) else []
    if not isinstance(points, list):
        return []
    clips = {point_to_clip(groups, p) for p in points[:cache.n_clips]}
    return sorted(c for c in clips if c is not None)


def next_selection(cache: Cache, groups, trigger: str | dict | None, selection: dict | None,
                   rep: str, k, click: dict | None = None, search: str | None = None,
                   neighbour: int | None = None, query: dict | None = None) -> dict:
    """The selection after one event.

    trigger: 'url' (page load), a view id (a click, ``click`` its clickData), 'clear',
    'key-next'/'key-prev' (step through the neighbours), {'type': 'play-neighbour'}
    (``neighbour`` = that clip), or 'query' (a query by voice landed: ``query`` is the store's
    value). Returns {"clip", "cursor", "play", "nonce", "query"}: the selected clip, which
    neighbour is playing (-1: the clip itself; for a query, nothing here: its recording plays
    from the query card), the clip to play now (None: don't), a counter
    that changes whenever something should (re)play, and the nonce of the query shown instead
    of a clip (None: none).
    """
    selection = clean_selection(cache, selection)
    nonce = selection["nonce"] + 1
    clip = selection.get("clip")
    if trigger == "query":
        chosen = _int(query.get("nonce")) if isinstance(query, dict) else None
        if chosen is None:
            return selection
        return {"clip": None, "cursor": -1, "play": None, "nonce": nonce, "query": chosen}
    if trigger == "url":
        chosen = parse_query(cache, search)["clip"]
        return {"clip": chosen, "cursor": -1, "play": None, "nonce": nonce}
    if trigger == "clear":
        return {**EMPTY_SELECTION, "nonce": nonce}
    if isinstance(trigger, str) and trigger.startswith("view-"):
        points = (click or {}).get("points") or []
        chosen = point_to_clip(groups, points[0]) if points else None
        if chosen is None:
            return selection
        return {"clip": chosen, "cursor": -1, "play": chosen, "nonce": nonce}
    vectors = query_vectors(cache, selection, query)
    if clip is None and vectors is None:
        return selection
    rows = query_rows(cache, vectors, rep, k) if clip is None else \
        neighbour_rows(cache, rep, clip, cache.clamp_k(k, DEFAULT_K))
    if trigger in ("key-next", "key-prev"):
        step = 1 if trigger == "key-next" else -1
        cursor = min(max(_int(selection.get("cursor"), -1) + step, -1), len(rows) - 1)
    elif isinstance(trigger, dict) and trigger.get("type") == "play-neighbour":
        ids = [row["id"] for row in rows]
        if neighbour not in ids:
            return selection
        cursor = ids.index(neighbour)
    else:
        return selection
    play = clip if cursor < 0 else rows[cursor]["id"]
    return {**selection, "cursor": cursor, "play": play, "nonce": nonce}


def figures_update(cache: Cache, groups_by_view: dict, rep: str, presentation: bool,
                   hidden: set[str], legend_only: bool, uirevision: str | None = None,
                   key: str | None = None, filtered: bool = False, view_state=None) -> list:
    """One figure per view (``spaces.VIEWS`` order): full builds, or Patches of the groups'
    visibility when only the legend changed. ``groups_by_view``: {view: ColourGroups drawn};
    ``view_state``: the page's zooms and cameras (``figures.user_view``), kept for ``rep``."""
    out = []
    hover = None if legend_only else hover_texts(cache)
    for view in VIEW_NAMES:
        groups = groups_by_view[view]
        if legend_only:
            out.append(legend_patch(groups, hidden))
            continue
        title = view_title(view, cache.projection_info[rep][view], cache.trust(rep, view))
        out.append(base_figure(view, cache.projection(rep, view), groups, title,
                               uirevision=uirevision or rep, key=key, filtered=filtered,
                               sampled=view_row(view).dim == 3 and cache.sample_3d() is not None,
                               presentation=presentation, hidden=hidden, hover=hover, rep=rep,
                               kept=user_view(view_state, view, rep)))
    return out


def highlight_update(cache: Cache, groups, rep: str, selection, k, lasso, hidden: set[str],
                     presentation: bool, query=None) -> dict:
    """The highlight payload (figures.highlight_payload) for the current selection: a clip and
    its neighbours, or the query by voice it shows (``query``: the store's value) and its."""
    selection = clean_selection(cache, selection)
    clip = selection["clip"]
    vectors = query_vectors(cache, selection, query)
    placed = None
    if clip is not None:
        rows = neighbour_rows(cache, rep, clip, cache.clamp_k(k, DEFAULT_K))
    elif vectors and rep in vectors:
        rows, views = nearest_and_place(cache, rep, vectors[rep], cache.clamp_k(k, DEFAULT_K))
        placed = {view: entry["xyz"] for view, entry in views.items()}
    else:
        rows = []
    projections = {view: cache.projection(rep, view) for view in VIEW_NAMES}
    return highlight_payload(projections, groups, clip, rows, clean_clip_list(cache, lasso),
                             hidden, presentation, query=placed)


def metrics_column(cache: Cache, colour) -> str:
    """The column the metrics table scores: the one the maps are coloured by when precompute
    scored it (``views.scored_columns``), else the label."""
    return colour if colour in scored_columns(cache) else "label"


def column_rows(cache: Cache, current: str, column: str = "label") -> list[dict]:
    """The metrics table's rows: ``column``'s, for the dropdown's representations and the one
    on screen (a depth's rows appear while the slider shows it; the chart has them all)."""
    keep = set(representation_choices(cache)) | {current}
    return [r for r in cache.metrics_rows
            if r.get("column", "label") == column and r["representation"] in keep]


def codec_charts(cache: Cache, colour, depth, presentation: bool) -> tuple:
    """(metrics-against-depth figure, codebook-usage figure, the note under them). The depth
    chart scores "Colour by"'s column when precompute scored it, else the label."""
    columns = scored_columns(cache)
    column = colour if colour in columns else "label"
    rows = depth_metrics(cache, column)
    counts = cache.code_counts()
    usage = None if counts is None else codebook_usage(counts)
    note = (f"Full space of z, cosine k-NN (k={cache.metrics_params.get('knn_accuracy_k')}), "
            f"Euclidean silhouette; scored by {column!r}"
            + ("" if column == colour else f" ({unscored_reason(colour)})")
            + f". Usage over all {cache.n_clips:,} clips' frames."
            + (" UNTRAINED weights: the codebooks are random." if cache.untrained else ""))
    return (depth_figure(rows, column, valid_depth(cache, depth), presentation),
            usage_figure(usage, presentation), note)


# ----------------------------------------------------------------------------- rendering
def render_query_info(cache: Cache, query: dict) -> list:
    """The side panel's head while a query by voice is shown."""
    duration = query.get("duration_s")
    seconds = f"{duration:.2f} s" if isinstance(duration, (int, float)) else ""
    name = str(query.get("name") or "your recording")[:80]
    return [html.Div([html.Span("query", className="fw-bold", id="selected-clip"),
                      html.Span(f" · {name} · {seconds}", id="selected-duration")]),
            html.Small(f"encoded by the server with this cache's models ({cache_models(cache)}), "
                       f"placed among its {cache.n_clips:,} clips; not added to the cache. "
                       f"▶ on the query card plays it.", className="text-muted d-block")]


def cache_models(cache: Cache) -> str:
    """'dac UNTRAINED, mfcc, resemblyzer': the encoders a query goes through."""
    return ", ".join(name + (" UNTRAINED" if name == "dac" and not trained else "")
                     for name, trained in cache.encoders())


def render_clip_info(cache: Cache, selection: dict, query=None) -> list:
    clip, play = selection.get("clip"), selection.get("play")
    if clip is None and query_vectors(cache, selection, query) is not None:
        return render_query_info(cache, query)
    if clip is None:
        return [html.P("Click a point in any view to play it and light up its nearest "
                       "neighbours.", className="text-muted")]
    details = clip_details(cache, clip)
    rows = [("label", details["label"] or "—"), ("speaker", details["speaker"] or "—"),
            ("file", details["source"]), ("duration", f"{details['duration_s']:.2f} s")]
    rows += [(k, v) for k, v in details.items()
             if k not in ("id", "label", "speaker", "source", "duration_s")]
    playing = "" if play in (None, clip) else f" · playing neighbour #{selection['cursor'] + 1}"
    if play is None:  # restored from a link: browsers start no audio without a gesture
        playing = " · from the link: press r or ▶ to listen"
    # the player's own clock reads 0:00 / 0:00 for a clip under a second: its length is said here
    return [html.Div([html.Span(f"clip {clip}", className="fw-bold", id="selected-clip"),
                      html.Span(f" · {details['duration_s']:.2f} s", id="selected-duration"),
                      html.Span(playing, className="text-muted")]),
            html.Table([html.Tr([html.Th(name), html.Td(str(value))]) for name, value in rows],
                       className="table table-sm clip-table mb-0")]


def render_neighbours(cache: Cache, selection: dict, rep: str, k, columns: list[str],
                      compare: str | None = None, query=None) -> list:
    """The clicked clip's (or the query's) k nearest clips (rows with a play button), how many
    share each of ``columns`` with it (the query: the most common value among them), and how
    many of them ``compare``'s k nearest share."""
    clip = selection.get("clip")
    vectors = query_vectors(cache, selection, query) if clip is None else None
    if clip is None and vectors is None:
        return []
    cursor = _int(selection.get("cursor"), -1)
    k = cache.clamp_k(k, DEFAULT_K)
    if vectors is not None:
        return render_query_neighbours(cache, query_rows(cache, vectors, rep, k), rep, cursor,
                                       columns, query_rows(cache, vectors, compare, k)
                                       if compare and compare != rep else None, compare)
    rows = neighbour_rows(cache, rep, clip, k)
    label = cache.clips["label"][clip]
    ids = [r["id"] for r in rows]
    shares = " · ".join(f"{sum(str(cache.clips[c][j]) == str(cache.clips[c][clip]) for j in ids)}/"
                        f"{len(ids)} same {c}" for c in columns)
    lines = [html.Small(shares, className="d-block", id="neighbour-shares"),
             html.Small(f"cosine distance in the full {cache.dim(rep)}-D {rep} space, k={len(ids)}",
                        className="text-muted d-block")]
    if compare and compare != rep and cache.has_representation(compare):
        other = {r["id"] for r in neighbour_rows(cache, compare, clip, k)}
        shared = len(other & set(ids))
        lines.append(html.Small(f"{shared}/{len(ids)} also among its {len(ids)} nearest in "
                                f"{compare} (Jaccard {shared / (2 * len(ids) - shared):.2f})",
                                className="text-muted d-block", id="neighbour-compare"))
    return lines + [neighbour_items(rows, cursor, label)]


def neighbour_items(rows: list[dict], cursor: int, same_label: str | None) -> html.Ol:
    """The neighbour rows: ▶ (plays it), rank, label (marked when it is ``same_label``),
    speaker, cosine distance."""
    return html.Ol([html.Li([
        dbc.Button("▶", id={"type": "play-neighbour", "index": r["id"]}, size="sm",
                   color="primary" if i == cursor else "light", className="play-btn",
                   title=f"play clip {r['id']}"),
        html.Span(f"#{r['rank']}", className="rank"),
        html.Span(r["label"], className="nb-label" + (" same" if r["label"] == same_label else "")),
        html.Span(r["speaker"], className="nb-speaker text-muted"),
        html.Span(f"{r['distance']:.4f}", className="nb-dist", title="cosine distance"),
    ], className="neighbour" + (" playing" if i == cursor else ""), **{"data-clip": r["id"]})
        for i, r in enumerate(rows)], className="list-unstyled mb-0", id="neighbour-items")


def render_query_neighbours(cache: Cache, rows: list[dict], rep: str, cursor: int,
                            columns: list[str], compared: list[dict] | None, compare) -> list:
    """A query's nearest clips: the most common value of each of ``columns`` among them, the
    space, the overlap with ``compare``'s nearest (``compared``), and the rows."""
    ids = [r["id"] for r in rows]
    shares = []
    for column in columns:
        values = [str(cache.clips[column][j]) for j in ids]
        if values:
            top = max(sorted(set(values)), key=values.count)
            shares.append(f"{values.count(top)}/{len(ids)} {column} {top!r}")
    lines = [html.Small(" · ".join(shares), className="d-block", id="neighbour-shares"),
             html.Small(f"cosine distance in the full {cache.dim(rep)}-D {rep} space, k={len(ids)}, "
                        f"all {cache.n_clips:,} clips", className="text-muted d-block")]
    if compared:
        shared = len({r["id"] for r in compared} & set(ids))
        lines.append(html.Small(f"{shared}/{len(ids)} also among its {len(ids)} nearest in {compare}",
                                className="text-muted d-block", id="neighbour-compare"))
    top_label = max(sorted({r["label"] for r in rows}), key=[r["label"] for r in rows].count) if rows else None
    return lines + [neighbour_items(rows, cursor, top_label)]


def render_lasso(cache: Cache, lasso: list[int], columns: list[str], in_link: bool = True) -> list:
    """The box/lasso (or heatmap cell, or search) selection: a readable summary per column and
    the first 100 clips as rows (click: play; double-click: select)."""
    if not lasso:
        return [html.P("Drag a box or lasso in a 2D view, click a cell of the confusion heatmap, "
                       "or find clips above.", className="text-muted")]
    drawn = f" · rings drawn for {MAX_LASSO_DRAWN:,} of them, evenly spread" \
        if len(lasso) > MAX_LASSO_DRAWN else ""
    link = "" if in_link else " · too many to keep in the link"
    summary = [html.Div([html.Span(f"{column}: ", className="text-muted"),
                         ", ".join(f"{value} ×{n}" for value, n in counts)],
                        className="lasso-summary")
               for column, counts in analysis.selection_summary(cache, lasso, columns)]
    shown = lasso[:100]
    return [html.Div(f"{len(lasso):,} clips selected{drawn}{link}", id="lasso-count"),
            *summary,
            html.Ul([html.Li(f"{c} · {cache.clips['label'][c]} · {cache.clips['speaker'][c]}",
                             className="lasso-row", title="click: play · double-click: select",
                             **{"data-clip": c})
                     for c in shown], className="small mb-0 lasso-rows"),
            html.Small(f"… and {len(lasso) - len(shown):,} more") if len(lasso) > len(shown) else None]


def exported_clips(cache: Cache, selection, lasso, rep: str, k, keep) -> tuple[list[int], str]:
    """What the CSV export holds, and its name: the box/lasso selection if any, else the clicked
    clip and its k neighbours, else the clips the filter keeps (``keep``: (n,) bool or None),
    else every clip."""
    lasso = clean_clip_list(cache, lasso)
    clip = clean_selection(cache, selection)["clip"]
    if lasso:
        return lasso, "selection"
    if clip is not None:
        rows = neighbour_rows(cache, rep, clip, cache.clamp_k(k, DEFAULT_K))
        return [clip] + [r["id"] for r in rows], f"clip{clip}-neighbours"
    if keep is not None:
        return [int(i) for i in keep.nonzero()[0]], "filtered"
    return list(range(cache.n_clips)), "all"


def legend_options(groups) -> list[dict]:
    return [{"label": html.Span([html.Span(className="swatch", style={"background": colour}), name],
                                title=name),
             "value": name} for name, colour in zip(groups.names, groups.colours)]


# ----------------------------------------------------------------------------- wiring
def register(app, cache: Cache, view_groups: ViewGroups) -> None:
    """Attach every callback of the page to ``app`` for ``cache``; ``view_groups``: the app's
    memoised colour groups (the /clip-at route in ``app.py`` reads the same). Every callback
    that maps a point to a clip or draws groups reads the page's groups key (colour, compared
    representations, filter: ``views.GroupsKey``)."""
    n_views = len(VIEW_NAMES)
    columns = view_groups.filter_columns
    notes = weights_notes(cache)

    @app.callback(Output("rep", "value"), Output("colour", "value"), Output("k", "value"),
                  Output("presentation", "value"), Output("depth", "value"),
                  Output("compare", "value"), Output("filter", "value"),
                  Output("restored-hide", "data"), Input("url", "search"))
    def url_to_controls(search):
        settings = parse_query(cache, search)
        key = view_groups.make_key("label", filters=settings["filter"])
        return (settings["rep"], settings["colour"], settings["k"],
                ["on"] if settings["presentation"] else [], settings["depth"] or no_update,
                settings["compare"], list(key.filters), settings["hide"])

    @app.callback(Output("more-controls", "is_open"), Input("more-toggle", "n_clicks"),
                  Input("url", "search"), State("more-controls", "is_open"))
    def on_more_controls(_clicks, search, is_open):
        """The filter, find, compare and export row: folded, open on a click, and open for a
        link that filters or compares (so what shapes the maps is in sight)."""
        if ctx.triggered_id == "more-toggle":
            return not is_open
        settings = parse_query(cache, search)
        return bool(settings["filter"]) or settings["colour"] == AGREEMENT

    @app.callback(Output("groups-key", "data"), Input("colour", "value"), Input("rep", "value"),
                  Input("depth", "value"), Input("compare", "value"), Input("filter", "value"),
                  State("groups-key", "data"))
    def on_groups_key(colour, rep, depth, compare, filters, current):
        key = view_groups.make_key(colour, shown_rep(cache, rep, depth),
                                   valid_compare(cache, compare, rep), filters).text
        return no_update if key == current else key

    @app.callback(Output("selection", "data"),
                  Input("url", "search"), *[Input(f"view-{v}", "clickData") for v in VIEW_NAMES],
                  Input("clear", "n_clicks"), Input("key-next", "n_clicks"),
                  Input("key-prev", "n_clicks"),
                  Input({"type": "play-neighbour", "index": ALL}, "n_clicks"),
                  Input("query", "data"),
                  State("selection", "data"), State("groups-key", "data"), State("rep", "value"),
                  State("k", "value"), State("depth", "value"))
    def on_event(search, *rest):
        # rest: one clickData per view, then clear, next, prev, the play buttons, the query
        # by voice (set by assets/3-dacviz-query.js), then the states
        clicks, query = rest[:n_views], rest[n_views + 4]
        selection, key, rep, k, depth = rest[n_views + 5:]
        trigger = ctx.triggered_id
        if trigger is None or (trigger == "query" and not isinstance(query, dict)):
            trigger = "url"  # the page's first call (the empty query store announces itself then)
        if isinstance(trigger, dict) and not (ctx.triggered and ctx.triggered[0]["value"]):
            return no_update  # buttons appearing in the list are not clicks
        view = trigger[5:] if isinstance(trigger, str) and trigger.startswith("view-") else None
        click = clicks[VIEW_NAMES.index(view)] if view in VIEW_NAMES else None
        return next_selection(cache, view_groups.drawn(key, view or VIEW_NAMES[0]), trigger,
                              selection, shown_rep(cache, rep, depth), k, click=click, search=search,
                              neighbour=trigger.get("index") if isinstance(trigger, dict) else None,
                              query=query)

    flat = [v.name for v in VIEWS if v.dim == 2]

    @app.callback(Output("lasso-store", "data"), Output("find-note", "children"),
                  Input("url", "search"),
                  *[Input(f"view-{name}", "selectedData") for name in flat],
                  Input("clear", "n_clicks"), Input("confusion", "clickData"),
                  Input("find-go", "n_clicks"), Input("find", "n_submit"),
                  State("find", "value"), State("groups-key", "data"), State("rep", "value"),
                  State("depth", "value"), State("colour", "value"))
    def on_lasso(search, *args):
        trigger = ctx.triggered_id
        selected, rest = args[:len(flat)], args[len(flat):]
        cell, (text, key, rep, depth, colour) = rest[1], rest[4:]  # rest: clear, cell, go, enter, states
        kept = view_groups.all(key).group_of() >= 0  # the clips the filter keeps
        shown = lambda ids: [i for i in ids if kept[i]]  # noqa: E731
        if trigger is None or trigger == "url":
            return shown(parse_query(cache, search)["lasso"]), no_update
        if trigger == "clear":
            return [], ""
        if trigger == "confusion":
            return shown(confusion_cell_clips(cache, shown_rep(cache, rep, depth), colour, cell)), ""
        if trigger in ("find-go", "find"):
            if not isinstance(text, str) or not text.strip():
                return no_update, ""
            found = analysis.find_clips(cache, text, analysis.FIND_LIMIT + 1)
            hidden = len(found) - len(shown(found))
            found = shown(found)
            more = len(found) > analysis.FIND_LIMIT
            return found[:analysis.FIND_LIMIT], (
                f"{min(len(found), analysis.FIND_LIMIT)} found" + (" (the first ones)" if more else "")
                + (f", {hidden} hidden by the filter" if hidden else ""))
        view = trigger[5:] if isinstance(trigger, str) else None
        if view not in flat:
            return no_update, no_update
        return points_to_clips(cache, view_groups.drawn(key, view), selected[flat.index(view)]), ""

    def hidden_groups(groups, shown) -> set[str]:
        return set() if not isinstance(shown, list) else set(groups.names) - {str(x) for x in shown}

    @app.callback(*[Output(f"view-{v}", "figure") for v in VIEW_NAMES],
                  Output("legend", "options"), Output("legend", "value"),
                  Output("restored-hide", "data", allow_duplicate=True),
                  Input("rep", "value"), Input("colour", "value"), Input("depth", "value"),
                  Input("compare", "value"), Input("filter", "value"), Input("presentation", "value"),
                  Input("legend", "value"), State("legend", "options"), State("restored-hide", "data"),
                  State("view-state", "data"), prevent_initial_call="initial_duplicate")
    def on_figures(rep, colour, depth, compare, filters, presentation, shown, options, restored,
                   view_state):
        """The four figures and the shared legend, in one answer straight from the controls
        (not through the groups-key store and the legend: each link in that chain was a round
        trip before a 100k page could start drawing). A legend click patches visibility only;
        new groups show every group, but a link's hidden ones (``hide=``) once."""
        current = shown_rep(cache, rep, depth)
        key = view_groups.make_key(colour, current, valid_compare(cache, compare, rep), filters)
        groups = view_groups.all(key)
        drawn = {v: view_groups.drawn(key, v) for v in VIEW_NAMES}
        if ctx.triggered_id == "legend" and len(ctx.triggered) == 1:
            return *figures_update(cache, drawn, current, bool(presentation),
                                   hidden_groups(groups, shown), True), no_update, no_update, no_update
        names = list(groups.names)
        same = isinstance(options, list) and [o.get("value") for o in options if isinstance(o, dict)] == names
        hide = {h for h in restored if isinstance(h, str)} if isinstance(restored, list) else set()
        if same:
            legend, value, restored_out = no_update, no_update, no_update
            hidden = hidden_groups(groups, shown)
        elif hide & set(names):
            legend, value, restored_out = legend_options(groups), [n for n in names if n not in hide], []
            hidden = hide & set(names)
        else:
            legend, value, restored_out = legend_options(groups), names, no_update
            hidden = set()
        return (*figures_update(cache, drawn, current, bool(presentation), hidden, False,
                                uirevision=current, key=key.text, filtered=bool(key.filters),
                                view_state=view_state),
                legend, value, restored_out)

    @app.callback(Output("highlight", "data"),
                  Input("selection", "data"), Input("rep", "value"), Input("k", "value"),
                  Input("lasso-store", "data"), Input("legend", "value"),
                  Input("presentation", "value"), Input("depth", "value"),
                  Input("groups-key", "data"), State("query", "data"))
    def on_highlight(selection, rep, k, lasso, shown, presentation, depth, key, query):
        groups = view_groups.all(key)
        return highlight_update(cache, groups, shown_rep(cache, rep, depth), selection, k, lasso,
                                hidden_groups(groups, shown), bool(presentation), query)

    @app.callback(Output("clip-info", "children"), Output("neighbour-list", "children"),
                  Input("selection", "data"), Input("rep", "value"), Input("k", "value"),
                  Input("depth", "value"), Input("compare", "value"), State("query", "data"))
    def on_details(selection, rep, k, depth, compare, query):
        selection = clean_selection(cache, selection)
        return render_clip_info(cache, selection, query), render_neighbours(
            cache, selection, shown_rep(cache, rep, depth), k, columns,
            valid_compare(cache, compare, rep), query)

    @app.callback(Output("lasso-list", "children"), Output("lasso-link", "data"),
                  Input("lasso-store", "data"))
    def on_lasso_list(lasso):
        lasso = clean_clip_list(cache, lasso)
        link = link_selection(lasso)
        return render_lasso(cache, lasso, columns, link is not None), link

    @app.callback(Output("metrics-table", "children"), Input("rep", "value"), Input("depth", "value"),
                  Input("colour", "value"))
    def on_metrics(rep, depth, colour):
        current, column = shown_rep(cache, rep, depth), metrics_column(cache, colour)
        return metrics_table(column_rows(cache, current, column), current, cache.metrics_params,
                             column, colour, notes)

    @app.callback(Output("confusion", "figure"), Output("analysis-note", "children"),
                  Input("rep", "value"), Input("depth", "value"), Input("colour", "value"),
                  Input("compare", "value"), Input("presentation", "value"))
    def on_analysis(rep, depth, colour, compare, presentation):
        current, column = shown_rep(cache, rep, depth), metrics_column(cache, colour)
        conf = analysis.confusion(cache, current, column)
        compare = valid_compare(cache, compare, rep)
        mean = float(analysis.agreement(cache, current, compare).mean()) if compare != current else None
        return (confusion_figure(conf, bool(presentation)),
                analysis_note(cache, conf, current, compare, mean, colour))

    @app.callback(Output("filter-metrics", "children"), Input("score-filter", "n_clicks"),
                  Input("groups-key", "data"), Input("rep", "value"), Input("depth", "value"),
                  State("colour", "value"), prevent_initial_call=True)
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

    @app.callback(Output("download", "data"), Input("export-csv", "n_clicks"),
                  Input("export-report", "n_clicks"),
                  State("selection", "data"), State("lasso-store", "data"), State("rep", "value"),
                  State("depth", "value"), State("k", "value"), State("groups-key", "data"),
                  State("legend", "value"), State("colour", "value"), prevent_initial_call=True)
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
        @app.callback(Output("depth-label", "children"), Input("depth", "value"))
        def on_depth_label(depth):
            return depth_label(cache, valid_depth(cache, depth))

    if cache.depths() or cache.code_counts() is not None:
        @app.callback(Output("depth-chart", "figure"), Output("usage-chart", "figure"),
                      Output("codec-note", "children"), Input("colour", "value"),
                      Input("depth", "value"), Input("presentation", "value"))
        def on_codec_charts(colour, depth, presentation):
            return codec_charts(cache, colour, depth, bool(presentation))

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


def confusion_cell_clips(cache: Cache, rep: str, colour, click) -> list[int]:
    """A click on the confusion heatmap (clickData: x the voted value, y the true one) -> the
    clips of that cell."""
    points = (click or {}).get("points") if isinstance(click, dict) else None
    if not isinstance(points, list) or not points or not isinstance(points[0], dict):
        return []
    true_value, voted = points[0].get("y"), points[0].get("x")
    if not isinstance(true_value, str) or not isinstance(voted, str):
        return []
    return analysis.confusion_cell(cache, rep, metrics_column(cache, colour), true_value, voted)

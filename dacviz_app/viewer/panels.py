"""The side panels as Dash components: the clicked clip or query, its neighbours, the box/lasso
selection, the legend's options, and what the CSV export holds."""
from __future__ import annotations

from dash import html

from dacviz_app.cache import Cache
from dacviz_app.explore import analysis
from dacviz_app.explore.groups import clip_details, neighbour_rows
from dacviz_app.viewer.figures import MAX_LASSO_DRAWN
from dacviz_app.viewer.layout import DEFAULT_K
from dacviz_app.viewer.page_state import (to_int, clean_clip_list, clean_selection, query_rows,
                                          query_vectors)


# ----------------------------------------------------------------------------- rendering
def render_query_info(cache: Cache, query: dict, rep: str, nearest_row: dict | None) -> list:
    """The side panel's head while a query by voice is shown: its name and length, and its
    nearest clip in ``rep``, the representation on screen (``nearest_row``: its first row)."""
    duration = query.get("duration_s")
    seconds = f"{duration:.2f} s" if isinstance(duration, (int, float)) else ""
    name = str(query.get("name") or "your recording")[:80]
    nearest_line = [] if nearest_row is None else [html.Div(
        f"nearest in {rep} is clip {nearest_row['id']} ({nearest_row['label']}, {nearest_row['speaker']}) "
        f"at {nearest_row['distance']:.4f}", id="query-nearest")]
    return [html.Div([html.Span("query", className="fw-bold", id="selected-clip"),
                      html.Span(f" · {name} · {seconds}", id="selected-duration")]),
            *nearest_line,
            html.Small(f"encoded by the server with this cache's models ({cache_models(cache)}), "
                       f"placed among its {cache.n_clips:,} clips; not added to the cache. "
                       f"▶ on the query card plays it.", className="text-muted d-block")]


def cache_models(cache: Cache) -> str:
    """'dac UNTRAINED, mfcc, resemblyzer': the encoders a query goes through."""
    return ", ".join(name + (" UNTRAINED" if name == "dac" and not trained else "")
                     for name, trained in cache.encoders())


def render_clip_info(cache: Cache, selection: dict, query=None, rep: str | None = None) -> list:
    """The clicked clip's head and metadata (or the query's head, its nearest in ``rep``)."""
    clip, play = selection.get("clip"), selection.get("play")
    vectors = query_vectors(cache, selection, query) if clip is None else None
    if vectors is not None:
        rep = rep or cache.representations[0]
        rows = query_rows(cache, vectors, rep, 1)
        return render_query_info(cache, query, rep, rows[0] if rows else None)
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
    # one line (clip · length · label · speaker), the file and every column one click away: the
    # neighbours stay in view
    return [html.Div([html.Span(f"clip {clip}", className="fw-bold", id="selected-clip"),
                      html.Span(f" · {details['duration_s']:.2f} s", id="selected-duration"),
                      html.Span([" · ", html.Span(str(rows[0][1]), className="fw-semibold"), " · ",
                                 str(rows[1][1])], id="clip-line"),
                      html.Span(playing, className="text-muted")]),
            html.Details([html.Summary(f"file and all {len(rows)} columns", className="small text-muted"),
                          html.Table([html.Tr([html.Th(name), html.Td(str(value))]) for name, value in rows],
                                     className="table table-sm clip-table mb-0")], className="clip-columns")]


def render_neighbours(cache: Cache, selection: dict, rep: str, k, columns: list[str],
                      compare: str | None = None, query=None) -> list:
    """The clicked clip's (or the query's) k nearest clips (rows with a play button), how many
    share each of ``columns`` with it (the query: the most common value among them), and how
    many of them ``compare``'s k nearest share."""
    clip = selection.get("clip")
    vectors = query_vectors(cache, selection, query) if clip is None else None
    if clip is None and vectors is None:
        return []
    cursor = to_int(selection.get("cursor"), -1)
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
             html.Small(f"{rep} ({cache.dim(rep)}-D, {cache.pooling(rep)}), cosine distance, k={len(ids)}, "
                        f"{search_note(cache, rep)}",
                        className="text-muted d-block", id="neighbour-space",
                        title="the k clips nearest the clicked one, by the cosine distance between clip vectors")]
    if compare and compare != rep and cache.has_representation(compare):
        other = {r["id"] for r in neighbour_rows(cache, compare, clip, k)}
        shared = len(other & set(ids))
        lines.append(html.Small(f"{rep} vs {compare}: {shared}/{len(ids)} of these are also its {len(ids)} "
                                f"nearest in {compare} (Jaccard {shared / (2 * len(ids) - shared):.2f})",
                                className="text-muted d-block", id="neighbour-compare"))
    return lines + [neighbour_items(rows, cursor, label)]


def neighbour_items(rows: list[dict], cursor: int, same_label: str | None) -> html.Ol:
    """The neighbour rows: ▶ (plays it), rank, label (marked when it is ``same_label``),
    speaker, cosine distance."""
    return html.Ol([html.Li([
        # a plain button (no Dash id): assets/1c-dacviz-click.js sends its clip to the
        # neighbour-play store; a pattern-matching id made Dash's renderer re-walk its callback
        # graph for every new list (~0.4 s of the browser's time per click on a busy machine)
        html.Button("▶", className="btn btn-sm play-btn " + ("btn-primary" if i == cursor else "btn-light"),
                    title=f"play clip {r['id']}", **{"data-clip": r["id"]}),
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
             html.Small(f"{rep} ({cache.dim(rep)}-D, {cache.pooling(rep)}), cosine distance, k={len(ids)}, "
                        f"among all {cache.n_clips:,} clips", className="text-muted d-block")]
    if compared:
        shared = len({r["id"] for r in compared} & set(ids))
        lines.append(html.Small(f"{rep} vs {compare}: {shared}/{len(ids)} of these are also its {len(ids)} "
                                f"nearest in {compare}",
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
                         ", ".join(f"{value} ×{n}" for value, n in counts),
                         html.Span(f" +{more:,} more", className="text-muted summary-more") if more else None],
                        className="lasso-summary")
               for column, counts, more in analysis.selection_summary(cache, lasso, columns)]
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


def search_note(cache: Cache, rep: str) -> str:
    """How ``rep``'s neighbour table was searched, with the recall of an approximate one."""
    search = cache.neighbour_search.get(rep, {"method": "exact"})
    if search["method"] == "exact":
        return "exact search"
    index = search["index"].split(":")[0].split(",")[0]  # "inverted file" (or "FAISS HNSW", an older cache)
    return (f"approximate search ({index}): recall@{search['k']} {search['recall_at_k']:.2f} "
            f"[{search['low']:.2f}–{search['high']:.2f}] on {search['sample']:,} sampled clips")

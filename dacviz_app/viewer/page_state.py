"""The page's state, as plain functions that the callbacks and the routes share (neither imports
the other): a link's settings (``parse_query``, read within MAX_SEARCH_CHARS), the selection
after an event (``next_selection``), a clicked point's clip (``point_to_clip``), the figures and
the highlight payload (``figures_update``, ``highlight_update``; its shape is
``figures.highlight_payload``'s docstring). Every value from the page is untrusted and checked.
"""
from __future__ import annotations

import re
from urllib.parse import parse_qs

import numpy as np


from dacviz_app.cache import Cache
from dacviz_app.embedding.metrics import codebook_usage
from dacviz_app.embedding.spaces import FULL_SPACE, VIEW_NAMES
from dacviz_app.embedding.spaces import view as view_row
from dacviz_app.explore import analysis
from dacviz_app.explore.measures import valid_control
from dacviz_app.explore.groups import (AGREEMENT, ViewGroups, active_representation, depth_metrics,
                                       hover_texts, neighbour_rows, scored_columns, valid_clip_ids,
                                       valid_colour)
from dacviz_app.explore.nearest import clean_vectors, nearest, nearest_and_place
from dacviz_app.viewer.figures import (MAX_VIEW_COORDINATE, base_figure, depth_figure, highlight_payload,
                                       legend_patch, usage_figure, user_view, view_title)
from dacviz_app.viewer.analysis_view import unscored_reason
from dacviz_app.viewer.layout import DEFAULT_K, representation_choices


EMPTY_SELECTION = {"clip": None, "cursor": -1, "play": None, "nonce": 0}


# ----------------------------------------------------------------------------- pure logic
def to_int(value, default=None):
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
            "lasso": decode_id_ranges(cache, query.get("sel")),
            "views": parse_views(lists.get("view", [])[:len(VIEW_NAMES)],
                                 shown_rep(cache, query.get("rep"), query.get("q")))}


MAX_VIEW_FIELD_CHARS = 300  # 'pca3:' and nine numbers of a camera, with room to spare
VIEW_NUMBER = re.compile(r"-?\d+(\.\d+)?(e[-+]?\d+)?", re.IGNORECASE)  # the page's script: the same rule


def parse_views(fields: list[str], rep: str) -> dict:
    """The link's view= fields (untrusted) -> the view-state store's value for ``rep`` (the
    representation shown): 'pca2:x0,x1,y0,y1' is a 2D view's zoom, 'tsne3:ex,ey,ez,cx,cy,cz,
    ux,uy,uz' a 3D view's camera (eye, centre, up); the page writes them (assets/1d, syncUrl).
    Each field is read within MAX_VIEW_FIELD_CHARS; a malformed one, an unknown view, a number not
    written as VIEW_NUMBER or beyond MAX_VIEW_COORDINATE is dropped; of the first len(VIEW_NAMES)
    fields, the last one of a view counts."""
    out = {}
    for field in fields:
        if not isinstance(field, str) or len(field) > MAX_VIEW_FIELD_CHARS:
            continue
        name, _, numbers = field.partition(":")
        if name not in VIEW_NAMES:
            continue
        texts = numbers.split(",")
        if not all(VIEW_NUMBER.fullmatch(t) for t in texts):
            continue
        values = [float(t) for t in texts]
        if not all(np.isfinite(values)) or any(abs(v) > MAX_VIEW_COORDINATE for v in values):
            continue
        dim = view_row(name).dim
        if dim == 2 and len(values) == 4:
            entry = {"rep": rep, "x": values[:2], "y": values[2:]}
        elif dim == 3 and len(values) == 9:
            entry = {"rep": rep, "camera": {part: dict(zip("xyz", values[3 * i:3 * i + 3]))
                                            for i, part in enumerate(("eye", "center", "up"))}}
        else:
            continue
        kept = user_view({name: entry}, name, rep)
        if kept and (dim == 3 or len(kept) == 2):  # a zoom is both ranges
            out[name] = {"rep": rep, **kept}
    return out


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
        low_i, high_i = to_int(low), to_int(high) if high else to_int(low)
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
            "cursor": min(max(to_int(selection.get("cursor"), -1), -1), cache.knn_k - 1),
            "play": cache.clip_or_none(selection.get("play")), "nonce": to_int(selection.get("nonce"), 0),
            "query": None if clip is not None else to_int(selection.get("query"))}


def query_vectors(cache: Cache, selection: dict, query) -> dict | None:
    """The query the selection shows (``selection["query"]``: its nonce), as {rep: (dim,)
    float32}, or None (no query selected, or the store holds another one)."""
    if selection.get("query") is None or not isinstance(query, dict) \
            or to_int(query.get("nonce")) != selection["query"]:
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
    curve = to_int(point.get("curveNumber"))
    index = to_int(point.get("pointNumber", point.get("pointIndex")))
    if curve is None or index is None or index < 0:
        return None
    try:  # every trace is a colour group; highlights are drawn on a canvas, not as traces
        return groups.clip_at(curve, index)
    except IndexError:
        return None


def find_selection(cache: Cache, text, kept: np.ndarray) -> tuple[list[int], str]:
    """The find box's text (untrusted) -> (the clips it selects, the note under the box): what
    every column matched (``analysis.find_clips``), the clips the filter hides (``kept``:
    (n_clips,) bool) said and left out."""
    found = analysis.find_clips(cache, text, cache.n_clips)
    visible = [i for i in found.clips if kept[i]]
    hidden = len(found.clips) - len(visible)
    limit = analysis.FIND_LIMIT
    note = found.summary() + (f"; {hidden:,} hidden by the filter" if hidden else "") \
        + (f"; the first {limit:,} selected" if len(visible) > limit else "")
    return visible[:limit], note


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
        chosen = to_int(query.get("nonce")) if isinstance(query, dict) else None
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
        cursor = min(max(to_int(selection.get("cursor"), -1) + step, -1), len(rows) - 1)
    elif isinstance(trigger, dict) and trigger.get("type") == "play-neighbour":
        ids = [row["id"] for row in rows]
        if neighbour not in ids:
            return selection
        cursor = ids.index(neighbour)
    else:
        return selection
    play = clip if cursor < 0 else rows[cursor]["id"]
    return {**selection, "cursor": cursor, "play": play, "nonce": nonce}


def hidden_groups(groups, shown) -> set[str]:
    """The legend's groups the user hid (``shown``: the legend's value, from the page)."""
    return set() if not isinstance(shown, list) else set(groups.names) - {str(x) for x in shown}


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
        title = view_title(view, cache.projection_info[rep][view], cache.trust(rep, view),
                           cache.smallest_label)
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
    note = (f"Full space of z (each clip: z averaged over its frames, 1024-D), cosine k-NN (k={cache.metrics_params.get('knn_accuracy_k')}), "
            f"Euclidean silhouette; scored by {column!r}"
            + ("" if column == colour else f" ({unscored_reason(colour)})")
            + f". Usage over all {cache.n_clips:,} clips' frames."
            + (" UNTRAINED weights: the codebooks are random." if cache.untrained else ""))
    chance = next((r.get("chance") for r in cache.metrics_rows
                   if r["space"] == FULL_SPACE and r.get("column", "label") == column), None)
    return (depth_figure(rows, column, valid_depth(cache, depth), presentation, chance),
            usage_figure(usage, presentation), note)


def confusion_control(cache: Cache, control, column: str) -> str | None:
    """The column the confusion's votes hold out ("control for"), None when it is none, not a
    probed column, or the scored column itself."""
    control = valid_control(cache, control)
    return None if control == column else control


def confusion_cell_clips(cache: Cache, rep: str, colour, click, control=None) -> list[int]:
    """A click on the confusion heatmap (clickData: x the voted value, y the true one) -> the
    clips of that cell."""
    points = (click or {}).get("points") if isinstance(click, dict) else None
    if not isinstance(points, list) or not points or not isinstance(points[0], dict):
        return []
    true_value, voted = points[0].get("y"), points[0].get("x")
    if not isinstance(true_value, str) or not isinstance(voted, str):
        return []
    column = metrics_column(cache, colour)
    return analysis.confusion_cell(cache, rep, column, true_value, voted,
                                   confusion_control(cache, control, column))

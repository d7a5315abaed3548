"""Plotly figures for the four views, and the highlight that is drawn over them.

Every view (a row of ``core.spaces.VIEWS``) has one WebGL trace per colour group (coordinates
sent as typed arrays). A 3D view of a cache that records a 3D sample draws those clips (a note in
its corner says so; ``core.views.ViewGroups`` decides); 2D views draw every clip. A selection never touches the figures: redrawing a WebGL figure redraws all
its points, which at 100k clips takes seconds. Instead ``highlight_payload`` sends the few
highlighted points' coordinates, and ``assets/1b-dacviz-layer.js`` draws them on a canvas laid over
each view (a white veil dims the rest), following zoom, pan and the 3D camera.
"""
from __future__ import annotations

import base64
import html

import numpy as np
from dash import Patch, no_update

from dacviz_app.embedding.spaces import view as view_row

# A 3D drag rotates in Plotly's "orbit" mode. Its "turntable" mode (which keeps the up axis) applies
# a camera set by relayout (a link, a test, an undo) several frames late, which the highlight layer
# could follow only by polling; "orbit" applies it on the next frame.
HIDDEN_COLOUR = "#9e9e9e"  # a clicked clip the filter hides is drawn grey
MAX_LASSO_DRAWN = 10_000  # rings drawn for a box/lasso selection (evenly spread over it)
OPACITY = 0.75
# plotly.js draws each 3D marker as a triangulated glyph: a square is 2 triangles, a circle many.
# At 2 x 20,000 points in software WebGL the square drew the two 3D views ~0.35 s sooner (1.03-1.14
# s -> 0.69-0.79 s, Plotly.newPlot, 100k cache); at 2-3.5 px it looks the same.
SYMBOL_3D = "square"
# far enough that the axis titles stay inside a narrow view (1.25, 1.25, 0.95 clipped "PC 3")
DEFAULT_CAMERA = {"eye": {"x": 1.45, "y": 1.45, "z": 1.1}}


def typed(values: np.ndarray) -> dict:
    """A float32 array as Plotly's typed-array spec (base64, a quarter of JSON's size)."""
    data = np.ascontiguousarray(values, dtype="<f4").tobytes()
    return {"dtype": "f4", "bdata": base64.b64encode(data).decode("ascii")}


def typed_ids(values: np.ndarray) -> dict:
    """Clip ids as Plotly's typed-array spec (int32, base64)."""
    data = np.ascontiguousarray(values, dtype="<i4").tobytes()
    return {"dtype": "i4", "bdata": base64.b64encode(data).decode("ascii")}


# every graph: no Plotly logo link and no "send to Plotly Cloud" button (it uploads the chart):
# nothing on the page reaches off this machine
GRAPH_CONFIG = {"displaylogo": False, "showSendToCloud": False, "showLink": False,
                "showEditInChartStudio": False}

def plotly_text(value: str) -> str:
    """``value`` as literal text in a Plotly label: Plotly reads a subset of HTML in labels, so
    markup is escaped; put it in ``meta`` and reference ``%{meta}``, never into a template."""
    return html.escape(value, quote=False)


def view_title(view: str, info: dict, trust: dict | None = None,
               smallest_label: int | None = None) -> tuple[str, str]:
    """('PCA 2D · 42.4% variance' or 't-SNE 3D · perplexity 30', from the view's sidecar;
    'trust 0.91 · continuity 0.93 (k=10)' from its trust row (``Cache.trust``), or '' when
    absent). A t-SNE title whose perplexity exceeds ``smallest_label`` (the clips of the rarest
    label) says so on its second line: each clip's neighbourhood, about the perplexity in clips,
    is then larger than that label, and labels may look less apart than they are. The figure
    draws the second line, smaller, under the first (the first stays short: a narrow view or
    presentation's larger font would cut a long one under the modebar)."""
    row = view_row(view)
    notes = []
    if row.method == "pca":
        title = f"{row.title} · {100 * info['explained_variance']:.1f}% variance"
    else:
        title = f"{row.title} · perplexity {round(float(info['perplexity']), 1):g}"
        if smallest_label is not None and smallest_label < float(info["perplexity"]):
            notes.append(f"perplexity > rarest label's {smallest_label} clips")
    if trust and trust.get("trustworthiness") is not None:
        k = f" (k={int(trust['k'])})" if trust.get("k") else ""
        notes.append(f"trust {trust['trustworthiness']:.2f} · continuity {trust['continuity']:.2f}{k}")
    return title, " · ".join(notes)


NOTE_LEFT_PX = 40  # where a view's sample note starts: clear of the maximise button


def sample_note(drawn: int, total: int, filtered: bool = False, sampled: bool = True) -> str:
    """'' when every clip is drawn, else '20,000 of 100,000 drawn (seeded sample)', or
    '(the filter)' / '(seeded sample, the filter)' when a filter keeps fewer."""
    if drawn >= total:
        return ""
    why = ", ".join(w for w, on in (("seeded sample", sampled), ("the filter", filtered)) if on)
    return f"{drawn:,} of {total:,} drawn ({why})"


def marker_size(dim: int, presentation: bool, n_clips: int) -> float:
    size = (7 if n_clips <= 5_000 else 4 if n_clips <= 30_000 else 2.5) if dim == 2 else \
        (3.5 if n_clips <= 5_000 else 2.0)
    return size * (1.6 if presentation else 1.0)


def _trace(dim: int, coords: np.ndarray, **style) -> dict:
    trace = {"type": "scattergl" if dim == 2 else "scatter3d", "mode": "markers",
             "x": typed(coords[:, 0]), "y": typed(coords[:, 1]), **style}
    if dim == 3:
        trace["z"] = typed(coords[:, 2])
    return trace


def base_figure(view: str, coords: np.ndarray, groups, title: str | tuple[str, str], uirevision: str,
                presentation: bool, hidden: set[str], key: str | None = None,
                filtered: bool = False, sampled: bool | None = None,
                hover: list[str] | None = None, rep: str | None = None,
                kept: dict | None = None) -> dict:
    """The full figure of one view.

    Args:
        coords: (n_clips, 2|3) float32 projection (all clips; ``groups`` says which are drawn).
        groups: a ``core.views.ColourGroups`` of the clips this view draws.
        title: the title, or (title, a smaller line under it) as ``view_title`` gives.
        hidden: group names toggled off in the shared legend.
        key: the groups key (``core.views.GroupsKey.text``) the figure is drawn for, kept in
            ``layout.meta.groups``: the page's script asks /clip-at with it, so a click maps
            through the groups this figure shows, even while a newer one is on its way; and
            ``layout.meta.rep``, the representation drawn (``rep``), with which it asks for the
            clicked clip's neighbours.
        kept: the zoom or camera to draw it with (``user_view``); {} or None: the whole cloud.
        filtered: a filter keeps fewer clips; sampled: a 3D sample (default: any 3D view that
            draws fewer clips than it has, without a filter).
        hover: per clip, what hovering its point says (``core.views.hover_texts``, escaped
            here), and then each point's clip id as its customdata (a click starts the clip's
            audio with no round trip: assets/1c-dacviz-click.js); None: the group's name only
            (a large cache: /clip-at names the clicked clip).
    """
    row = view_row(view)
    dim = row.dim
    size = marker_size(dim, presentation, len(coords))
    drawn = sum(len(m) for m in groups.members)
    note = sample_note(drawn, len(coords), filtered, dim == 3 and (sampled if sampled is not None
                                                                    else not filtered))
    data = [_trace(dim, coords[member], name=name, legendgroup=name, showlegend=False,
                   visible=name not in hidden,
                   marker={"size": size, "color": colour, "opacity": OPACITY, "line": {"width": 0},
                           **({"symbol": SYMBOL_3D} if dim == 3 else {})},
                   meta=plotly_text(name),
                   **({"text": [plotly_text(hover[i]) for i in member], "customdata": typed_ids(member),
                       "hovertemplate": "%{text}<extra>%{meta}</extra>"} if hover is not None
                      else {"hovertemplate": "%{meta}<extra></extra>"}))
            for name, member, colour in zip(groups.names, groups.members, groups.colours)]
    font = 18 if presentation else 12
    title, under = title if isinstance(title, tuple) else (title, "")
    layout = {"title": {"text": title, "font": {"size": font + 2}, "x": 0.02, "xanchor": "left",
                        "yref": "container", "y": 1, "yanchor": "top", "pad": {"t": 6}},
              "margin": {"l": 26 if dim == 2 else 8, "r": 30, "t": 34 + (font + 4 if under else 0),
                         "b": 26 if dim == 2 else 8},
              # the modebar stands on the right edge, clear of the title
              "modebar": {"orientation": "v", "bgcolor": "rgba(255,255,255,0.7)"},
              "showlegend": False,  # 2D: room for the axis titles (PC 1, t-SNE 2, ...)
              "uirevision": uirevision, "font": {"size": font}, "paper_bgcolor": "white",
              "meta": {"groups": key, "rep": rep} if key else None,
              "plot_bgcolor": "white", "hovermode": "closest",
              "clickmode": "event" if dim == 3 else "none",  # 2D: the page's own click (assets/1c)
              "dragmode": "orbit" if dim == 3 else "zoom",  # 3D: a drag rotates (ORBIT below)
              # the note starts right of the view's maximise button (bottom left, 1-dacviz.css)
              "annotations": ([{"text": note, "showarrow": False, "xref": "paper", "yref": "paper",
                                "x": 0, "y": 0, "xanchor": "left", "yanchor": "bottom",
                                "xshift": NOTE_LEFT_PX - (26 if dim == 2 else 8),
                                "font": {"size": font - 1, "color": "#666"}}] if note else [])
              + ([{"text": under, "showarrow": False, "xref": "paper", "yref": "paper", "x": 0,
                   "y": 1, "xanchor": "left", "yanchor": "bottom", "yshift": 2,
                   "font": {"size": font - 1, "color": "#666"}}] if under else [])}
    titles = row.axis_titles
    if dim == 2:
        axis = {"showgrid": True, "gridcolor": "#eee", "zeroline": False, "showticklabels": False}
        layout["xaxis"] = {**axis, "title": {"text": titles[0]}, "scaleanchor": "y", "scaleratio": 1}
        layout["yaxis"] = {**axis, "title": {"text": titles[1]}}
        for a in ("x", "y"):
            if (kept or {}).get(a):
                layout[a + "axis"].update(range=kept[a], autorange=False)
    else:
        axis = {"showticklabels": False, "backgroundcolor": "white", "gridcolor": "#ddd"}
        ranges = cube_ranges(coords)
        layout["scene"] = {"xaxis": {**axis, "title": {"text": titles[0]}, "range": ranges[0]},
                           "yaxis": {**axis, "title": {"text": titles[1]}, "range": ranges[1]},
                           "zaxis": {**axis, "title": {"text": titles[2]}, "range": ranges[2]},
                           "aspectmode": "cube", "uirevision": uirevision, "dragmode": "orbit",
                           "camera": (kept or {}).get("camera") or DEFAULT_CAMERA}
    return {"data": data, "layout": layout}


def _finite_pair(value) -> list[float] | None:
    if not (isinstance(value, list) and len(value) == 2):
        return None
    try:
        pair = [float(value[0]), float(value[1])]
    except (TypeError, ValueError, OverflowError):
        return None
    return pair if all(np.isfinite(pair)) and pair[0] != pair[1] else None


def _xyz(value) -> dict | None:
    if not isinstance(value, dict):
        return None
    try:
        point = {a: float(value[a]) for a in ("x", "y", "z")}
    except (KeyError, TypeError, ValueError, OverflowError):
        return None
    return point if all(np.isfinite(list(point.values()))) else None


MAX_VIEW_COORDINATE = 1e6  # a zoom or camera in a link beyond this is not one the page made


def user_view(state, view: str, rep: str) -> dict:
    """The zoom (2D) or camera (3D) the user left ``view`` at, from the page's view-state store
    (``dacviz.keepView``: {view: {"rep", "x": [lo, hi], "y": [lo, hi], "camera": {...}}}), if it
    was for ``rep``: {"x": [..], "y": [..]} or {"camera": {"eye", "center", "up"}}; anything
    malformed is dropped."""
    entry = state.get(view) if isinstance(state, dict) else None
    if not isinstance(entry, dict) or entry.get("rep") != rep:
        return {}
    if view_row(view).dim == 2:
        return {a: pair for a in ("x", "y") if (pair := _finite_pair(entry.get(a))) is not None}
    camera = entry.get("camera")
    parts = {p: _xyz(camera.get(p)) for p in ("eye", "center", "up")} if isinstance(camera, dict) else {}
    return {"camera": parts} if parts and all(parts.values()) else {}


def cube_ranges(coords: np.ndarray) -> list[list[float]]:
    """Axis ranges of one size for a 3D scene, centred on the data: true proportions (one unit
    is as long on every axis) in a cube. Plotly's ``aspectmode="data"`` instead shapes the
    scene like the data, and a nearly flat cloud (a tiny t-SNE, a PCA with little variance
    on PC 3) became a sliver with most points out of view."""
    low, high = coords.min(axis=0).astype(float), coords.max(axis=0).astype(float)
    half = max(float((high - low).max()) / 2 * 1.05, 1e-6)
    centre = (low + high) / 2
    return [[float(c - half), float(c + half)] for c in centre]


def legend_patch(groups, hidden: set[str]) -> Patch:
    """Show or hide whole groups (the shared legend): only the ``visible`` flags change."""
    patch = Patch()
    for number, name in enumerate(groups.names):
        patch["data"][number]["visible"] = name not in hidden
    return patch


QUERY_COLOUR = "#000000"  # the query by voice: a black star, whatever the colouring


def highlight_payload(projections: dict[str, np.ndarray], groups, selected: int | None,
                      neighbours: list[dict], lasso: list[int], hidden: set[str],
                      presentation: bool, query: dict[str, list[float]] | None = None) -> dict:
    """What the overlay canvases draw, for every view.

    Args:
        projections: {view: (n_clips, 2|3) float32}.
        groups: the ``ColourGroups`` of every clip the filter keeps, for colours and hidden
            labels; a clip in none of them (filtered out) is left out, except the selected one,
            drawn grey.
        lasso: valid, unique clip ids; at most MAX_LASSO_DRAWN of them are drawn, evenly spread.
        query: {view: [x, y(, z)]}, where a query by voice is placed (``core.query.place``),
            drawn instead of a selected clip; None: no query.
    Returns:
        {"active": bool, "presentation": bool, "views": {view: {"dim": 2|3,
         "selected"|"neighbours"|"lasso"|"query": {"ids": [..], "xyz": [[x, y(, z)], ..],
         "colours": [..], "text": [..]}}}}. Clips of hidden labels are left out, except the
        selected one.
    """
    group_of = groups.group_of()
    shown_group = np.asarray([name not in hidden for name in groups.names] + [False])  # -1: filtered out
    shown = lambda i: bool(shown_group[group_of[i]])  # noqa: E731
    lasso = np.asarray(lasso, dtype=np.int64)
    lasso = lasso[shown_group[group_of[lasso]]] if len(lasso) else lasso
    if len(lasso) > MAX_LASSO_DRAWN:  # the answer stays small whatever was selected
        lasso = lasso[np.linspace(0, len(lasso) - 1, MAX_LASSO_DRAWN).round().astype(np.int64)]
    members = {"selected": [] if selected is None else [selected],
               "neighbours": [r["id"] for r in neighbours if shown(r["id"])],
               "lasso": lasso.tolist()}
    rank = {r["id"]: r for r in neighbours}
    views = {}
    for view, coords in projections.items():
        entry = {"dim": int(coords.shape[1])}
        for name, ids in members.items():
            index = np.asarray(ids, dtype=np.int64)
            entry[name] = {"ids": [int(i) for i in ids],
                           "xyz": np.round(coords[index].astype(np.float64), 5).tolist() if ids else [],
                           "colours": [groups.colours[group_of[i]] if group_of[i] >= 0 else HIDDEN_COLOUR
                                       for i in ids],
                           "text": [f"#{rank[i]['rank']}" if name == "neighbours" else ""
                                    for i in ids]}
        xyz = [] if query is None or view not in query else [query[view]]
        entry["query"] = {"ids": [], "xyz": xyz, "colours": [QUERY_COLOUR] * len(xyz),
                          "text": ["query"] * len(xyz)}
        views[view] = entry
    return {"active": selected is not None or bool(members["lasso"]) or bool(query),
            "presentation": presentation, "views": views}


METRIC_PANELS = (("knn_accuracy", "k-NN accuracy ↑", "#1f77b4"), ("silhouette", "silhouette ↑", "#2ca02c"),
                 ("davies_bouldin", "Davies-Bouldin ↓", "#d62728"))


def panel_domains(n: int, gap: float = 0.07) -> list[list[float]]:
    """``n`` side-by-side x domains in [0, 1] with ``gap`` between them."""
    width = (1 - gap * (n - 1)) / n
    return [[i * (width + gap), i * (width + gap) + width] for i in range(n)]


def axis_name(kind: str, i: int) -> str:
    """Plotly's axis key for panel i: xaxis, xaxis2, ... (``kind`` "x" or "y")."""
    return f"{kind}axis" + ("" if i == 0 else str(i + 1))


def trace_axes(i: int) -> dict:
    return {"xaxis": "x" if i == 0 else f"x{i + 1}", "yaxis": "y" if i == 0 else f"y{i + 1}"}


def empty_figure(text: str, height: int = 240) -> dict:
    return {"data": [], "layout": {"height": height, "paper_bgcolor": "white", "plot_bgcolor": "white",
                                   "xaxis": {"visible": False}, "yaxis": {"visible": False},
                                   "annotations": [{"text": text, "showarrow": False, "xref": "paper",
                                                    "yref": "paper", "x": 0.5, "y": 0.5}]}}


def _small_layout(title: str, presentation: bool) -> dict:
    font = 15 if presentation else 11
    return {"title": {"text": title, "font": {"size": font + 1}, "x": 0.01, "y": 0.97},
            "margin": {"l": 44, "r": 44, "t": 30, "b": 38}, "font": {"size": font},
            "paper_bgcolor": "white", "plot_bgcolor": "white", "hovermode": "x unified",
            "legend": {"orientation": "h", "y": -0.28, "x": 0}, "height": 260}


def depth_figure(rows: list[dict], column: str, current: int | None, presentation: bool,
                 chance: float | None = None) -> dict:
    """k-NN accuracy (with its chance level dashed), silhouette and Davies-Bouldin of z's full
    space against the number of codebooks q (``explore.groups.depth_metrics`` rows): one panel
    and one y axis each, stacked (small multiples sharing the q axis, which is written under the
    lowest), the slider's q marked. No fixed height: it fills its box (the page's CSS sizes it)."""
    if not rows:
        return empty_figure("no codebook depths in this cache", 260)
    font = 15 if presentation else 11
    qs = [r["q"] for r in rows]
    layout = {"font": {"size": font}, "paper_bgcolor": "white", "plot_bgcolor": "white",
              "margin": {"l": 40, "r": 12, "t": 40, "b": 40}, "showlegend": False, "annotations": [],
              "shapes": [], "title": {"text": f"z at q codebooks, scored by {plotly_text(column)}",
                                      "font": {"size": font + 1}, "x": 0.01, "y": 0.99, "yanchor": "top"}}
    data = []
    count = len(METRIC_PANELS)
    domains = [list(d) for d in reversed(panel_domains(count, gap=0.11))]  # the first panel on top
    for i, ((key, name, colour), domain) in enumerate(zip(METRIC_PANELS, domains)):
        data.append({"type": "scatter", "mode": "lines+markers", "x": qs, "y": [r[key] for r in rows],
                     "name": name, "line": {"color": colour},
                     "hovertemplate": "q=%{x}: %{y:.3f}<extra>" + name + "</extra>", **trace_axes(i)})
        if key == "knn_accuracy" and chance is not None:
            data.append({"type": "scatter", "mode": "lines", "x": [qs[0], qs[-1]], "y": [chance, chance],
                         "name": "chance", "line": {"color": "#555", "dash": "dash", "width": 1.2},
                         "hovertemplate": "chance %{y:.3f}<extra></extra>", **trace_axes(i)})
        lowest = i == count - 1
        layout[axis_name("x", i)] = {"title": {"text": "codebooks q" if lowest else ""}, "tickvals": qs,
                                     "showticklabels": lowest, "gridcolor": "#eee",
                                     "anchor": trace_axes(i)["yaxis"],
                                     **({} if i == 0 else {"matches": "x"})}
        layout[axis_name("y", i)] = {"domain": domain, "gridcolor": "#eee", "anchor": trace_axes(i)["xaxis"],
                                     "zeroline": True, **({"range": [0, 1.02]} if key == "knn_accuracy" else {})}
        layout["annotations"].append({"text": name + (" · chance dashed" if key == "knn_accuracy" and chance
                                                      is not None else ""),
                                      "showarrow": False, "xref": "paper", "yref": "paper", "y": domain[1],
                                      "x": 0, "xanchor": "left", "yanchor": "bottom",
                                      "font": {"size": font, "color": colour}})
        if current is not None:
            layout["shapes"].append({"type": "line", "x0": current, "x1": current,
                                     "xref": trace_axes(i)["xaxis"], "y0": 0, "y1": 1,
                                     "yref": f"{trace_axes(i)['yaxis']} domain",
                                     "line": {"color": "#888", "dash": "dot", "width": 1.5}})
    return {"data": data, "layout": layout}


def depth_marker(current: int | None):
    """A Patch of ``depth_figure``'s q line to ``current`` (a slider move), in each panel."""
    if current is None:
        return no_update
    patch = Patch()
    for i in range(len(METRIC_PANELS)):
        patch["layout"]["shapes"][i]["x0"] = current
        patch["layout"]["shapes"][i]["x1"] = current
    return patch


def usage_figure(usage: dict | None, presentation: bool) -> dict:
    """Per residual level: entries used of the codebook (bars) and the perplexity of its code
    distribution (line), from ``core.metrics.codebook_usage``."""
    layout = _small_layout("codebook usage per level", presentation)
    del layout["height"]  # it fills its box (the page's CSS sizes it)
    layout["showlegend"] = False  # said under the title: a legend does not fit a narrow column
    if usage is None:
        layout["annotations"] = [{"text": "no code counts in this cache", "showarrow": False,
                                  "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}]
        return {"data": [], "layout": layout}
    size = usage["codebook_size"]
    layout["title"].update(yref="container", y=1, yanchor="top", pad={"t": 4})
    layout["margin"] = {**layout["margin"], "t": 46}
    layout["annotations"] = [{"text": f"bars: entries used (of {size}) · line: perplexity", "showarrow": False,
                              "xref": "paper", "yref": "paper", "x": 0, "y": 1, "xanchor": "left",
                              "yanchor": "bottom", "yshift": 4, "font": {"size": layout["font"]["size"] - 1,
                                                                        "color": "#555"}}]
    data = [{"type": "bar", "x": usage["level"], "y": usage["used"], "name": f"entries used (of {size})",
             "marker": {"color": "#9ecae1"}, "hovertemplate": "%{y} used<extra></extra>"},
            {"type": "scatter", "mode": "lines+markers", "x": usage["level"],
             "y": [round(p, 1) for p in usage["perplexity"]], "name": "perplexity",
             "line": {"color": "#08519c"}, "hovertemplate": "perplexity %{y}<extra></extra>"}]
    layout.update({"xaxis": {"title": {"text": "level"}, "tickvals": usage["level"]},
                   "yaxis": {"title": {"text": "entries / perplexity"}, "range": [0, size * 1.05],
                             "gridcolor": "#eee"}, "bargap": 0.25})
    return {"data": data, "layout": layout}


def confusion_figure(conf: dict, presentation: bool, filtered: bool = False) -> dict:
    """The k-NN vote's confusion (``core.analysis.confusion``) as a heatmap: rows the true value
    (with its accuracy), columns the voted one, colour the share of the row, the count on hover
    (and written in each cell up to 15 values)."""
    names = [str(n) for n in conf["names"]]
    counts = np.asarray(conf["counts"], dtype=np.int64)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    font = 15 if presentation else 11
    shown = [plotly_text(n) for n in names]
    ticks = [f"{plotly_text(n)} · {acc:.2f}" for n, acc in zip(names, conf["per_class"])]
    data = [{"type": "heatmap", "x": names, "y": names, "z": np.round(share, 4).tolist(),
             "zmin": 0, "zmax": 1, "colorscale": [[0, "#f7fbff"], [0.5, "#6baed6"], [1, "#08306b"]],
             "customdata": [[[int(c), shown[i], shown[j]] for j, c in enumerate(row)]
                            for i, row in enumerate(counts)],
             "text": counts.tolist() if len(names) <= 15 else None,
             "texttemplate": "%{text}" if len(names) <= 15 else None,
             "hovertemplate": "true %{customdata[1]} · voted %{customdata[2]}: %{customdata[0]} "
                              "clips (%{z:.0%} of the row)<extra></extra>",
             "colorbar": {"title": {"text": "share"}, "thickness": 10}}]
    height = max(260, min(640, 60 + 22 * len(names)))
    layout = {"title": {"text": f"k-NN vote by {plotly_text(conf['column'])} · "
                                f"{plotly_text(conf['representation'])} · k={conf['k']} · "
                                f"accuracy {conf['accuracy']:.2f} (chance {conf['chance']:.2f})"
                                + (f" · {conf['n_scored']:,} scored clips (the filter does not apply)"
                                   if filtered else ""),
                        "font": {"size": font + 1}, "x": 0.01, "y": 0.98},
              "margin": {"l": 10, "r": 10, "t": 34, "b": 10}, "font": {"size": font},
              "height": height, "paper_bgcolor": "white", "plot_bgcolor": "white",
              "xaxis": {"type": "category", "title": {"text": "voted"}, "tickvals": names,
                        "ticktext": shown, "automargin": True, "side": "bottom"},
              "yaxis": {"type": "category", "title": {"text": "true · accuracy"}, "tickvals": names,
                        "ticktext": ticks, "automargin": True, "autorange": "reversed"}}
    return {"data": data, "layout": layout}

"""Plotly figures for the four views, and the small patches that highlight a selection.

Every view has one WebGL trace per colour group (coordinates sent as typed arrays), then three
overlay traces in a fixed order: the box/lasso set, the neighbours, the selected clip. A
highlight only patches the overlays and the groups' opacity; the figure is never resent.
"""
from __future__ import annotations

import base64

import numpy as np
from dash import Patch

VIEWS = ("pca2", "pca3", "tsne2", "tsne3")
OVERLAYS = ("lasso", "neighbours", "selected")
AXIS_TITLES = {"pca": ("PC 1", "PC 2", "PC 3"), "tsne": ("t-SNE 1", "t-SNE 2", "t-SNE 3")}
DIMMED, NORMAL = 0.12, 0.75


def typed(values: np.ndarray) -> dict:
    """A float32 array as Plotly's typed-array spec (base64, a quarter of JSON's size)."""
    data = np.ascontiguousarray(values, dtype="<f4").tobytes()
    return {"dtype": "f4", "bdata": base64.b64encode(data).decode("ascii")}


def view_title(view: str, info: dict) -> str:
    """'PCA 2D · 42.4% variance' or 't-SNE 3D · perplexity 30'."""
    method, dim = view[:-1], view[-1]
    if method == "pca":
        return f"PCA {dim}D · {100 * info['explained_variance']:.1f}% variance"
    return f"t-SNE {dim}D · perplexity {info['perplexity']:g}"


def _marker_size(dim: int, presentation: bool) -> float:
    size = 7 if dim == 2 else 3.5
    return size * (1.6 if presentation else 1.0)


def _trace(dim: int, coords: np.ndarray, **style) -> dict:
    trace = {"type": "scattergl" if dim == 2 else "scatter3d", "mode": "markers",
             "x": typed(coords[:, 0]), "y": typed(coords[:, 1]), **style}
    if dim == 3:
        trace["z"] = typed(coords[:, 2])
    return trace


def base_figure(view: str, coords: np.ndarray, groups, title: str, uirevision: str,
                presentation: bool, hidden: set[str], highlight: dict) -> dict:
    """The full figure of one view.

    Args:
        coords: (n_clips, 2|3) float32 projection.
        groups: a ``core.views.ColourGroups``.
        hidden: group names toggled off in the shared legend.
        highlight: keyword arguments of ``overlay_traces`` (selected, neighbours, lasso).
    """
    dim = coords.shape[1]
    size = _marker_size(dim, presentation)
    opacity = DIMMED if _active(highlight) else NORMAL
    data = [_trace(dim, coords[member], name=name, legendgroup=name, showlegend=False,
                   visible=name not in hidden,
                   marker={"size": size, "color": colour, "opacity": opacity,
                           "line": {"width": 0}},
                   hovertemplate=f"{name}<extra></extra>")
            for name, member, colour in zip(groups.names, groups.members, groups.colours)]
    data += overlay_traces(coords, groups, hidden=hidden, presentation=presentation, **highlight)
    font = 18 if presentation else 12
    layout = {"title": {"text": title, "font": {"size": font + 2}, "x": 0.02, "y": 0.97},
              "margin": {"l": 8, "r": 8, "t": 34, "b": 8}, "showlegend": False,
              "uirevision": uirevision, "font": {"size": font}, "paper_bgcolor": "white",
              "plot_bgcolor": "white", "hovermode": "closest", "clickmode": "event",
              "dragmode": "pan" if dim == 3 else "zoom"}
    titles = AXIS_TITLES[view[:-1]]
    if dim == 2:
        axis = {"showgrid": True, "gridcolor": "#eee", "zeroline": False, "showticklabels": False}
        layout["xaxis"] = {**axis, "title": {"text": titles[0]}, "scaleanchor": "y", "scaleratio": 1}
        layout["yaxis"] = {**axis, "title": {"text": titles[1]}}
    else:
        axis = {"showticklabels": False, "backgroundcolor": "white", "gridcolor": "#ddd"}
        layout["scene"] = {"xaxis": {**axis, "title": {"text": titles[0]}},
                           "yaxis": {**axis, "title": {"text": titles[1]}},
                           "zaxis": {**axis, "title": {"text": titles[2]}},
                           "aspectmode": "data", "uirevision": uirevision,
                           "camera": {"eye": {"x": 1.25, "y": 1.25, "z": 0.95}}}
    return {"data": data, "layout": layout}


def _active(highlight: dict) -> bool:
    return highlight.get("selected") is not None or bool(highlight.get("lasso"))


def overlay_traces(coords: np.ndarray, groups, selected: int | None, neighbours: list[dict],
                   lasso: list[int], hidden: set[str], presentation: bool) -> list[dict]:
    """The three overlay traces (OVERLAYS order): the box/lasso set, the neighbours, the
    selected clip. Clips of hidden groups are left out, except the selected one."""
    dim = coords.shape[1]
    size = _marker_size(dim, presentation)
    group_of = groups.group_of()
    shown = lambda i: groups.names[group_of[i]] not in hidden  # noqa: E731
    members = {"lasso": [i for i in lasso if shown(i)],
               "neighbours": [r["id"] for r in neighbours if shown(r["id"])],
               "selected": [] if selected is None else [selected]}
    traces = []
    for name in OVERLAYS:
        ids = members[name]
        colours = [groups.colours[group_of[i]] for i in ids]
        marker = {
            "lasso": {"size": size + 4, "color": "rgba(0,0,0,0)", "opacity": 1.0,
                      "line": {"width": 1.5, "color": "#222"}},
            "neighbours": {"size": size * 1.7, "color": colours, "opacity": 1.0,
                           "line": {"width": 2, "color": "#111"}},
            "selected": {"size": size * 2.8, "color": colours, "opacity": 1.0,
                         "symbol": "diamond", "line": {"width": 3, "color": "#000"}},
        }[name]
        points = coords[np.asarray(ids, dtype=np.int64)] if ids else np.zeros((0, dim), np.float32)
        traces.append(_trace(dim, points, name=name, showlegend=False, marker=marker,
                             customdata=list(ids), hoverinfo="text",
                             text=_overlay_text(name, ids, neighbours, groups, group_of)))
    return traces


def highlight_patch(coords: np.ndarray, groups, hidden: set[str], presentation: bool,
                    highlight: dict) -> Patch:
    """A Patch of one view: the overlay traces replaced, the groups dimmed while anything is
    highlighted, legend visibility applied. The groups' coordinates are not resent."""
    patch = Patch()
    opacity = DIMMED if _active(highlight) else NORMAL
    for number, name in enumerate(groups.names):
        patch["data"][number]["marker"]["opacity"] = opacity
        patch["data"][number]["visible"] = name not in hidden
    overlays = overlay_traces(coords, groups, hidden=hidden, presentation=presentation, **highlight)
    for offset, trace in enumerate(overlays):
        patch["data"][len(groups.names) + offset] = trace
    return patch


def _overlay_text(name: str, ids: list[int], neighbours: list[dict], groups, group_of) -> list[str]:
    if name == "neighbours":
        rank = {row["id"]: row for row in neighbours}
        return [f"#{rank[i]['rank']} {rank[i]['label']} · d={rank[i]['distance']:.3f}" for i in ids]
    prefix = "selected: " if name == "selected" else ""
    return [f"{prefix}{groups.names[group_of[i]]}" for i in ids]

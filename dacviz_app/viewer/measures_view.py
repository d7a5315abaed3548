"""The panel "What the codec keeps, measured": its layout and its three figures (probe accuracy
against depth with chance and intervals, the decoder's fidelity against depth, linear CKA
between representations). The numbers come from ``explore/measures.py``; each figure says its
space, pooling, k, sample, chance and interval next to it."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from dacviz_app.cache import Cache
from dacviz_app.explore import measures
from dacviz_app.viewer.figures import (GRAPH_CONFIG, axis_name, empty_figure, panel_domains, plotly_text,
                                      trace_axes)

BAND = "rgba(31, 119, 180, 0.18)"
LINE = "#1f77b4"
KNN_LINE = "#ff7f0e"
CHANCE = "#555"
GROUP_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")


def band(x: list, low: list, high: list, i: int, colour: str, name: str) -> dict:
    """A filled band between ``low`` and ``high`` (an interval) on panel i."""
    return {"type": "scatter", "mode": "lines", "x": x + x[::-1], "y": high + low[::-1], "fill": "toself",
            "fillcolor": colour, "line": {"width": 0}, "hoverinfo": "skip", "name": name,
            "showlegend": i == 0, "legendgroup": name, **trace_axes(i)}


def depth_ticks(series: list[dict]) -> dict:
    """x ticks "q\\nkbps" for the depths of ``series``."""
    return {"tickvals": [s["q"] for s in series],
            "ticktext": [f"{s['q']}<br>{s['kbps']:g}" if s.get("kbps") is not None else str(s["q"])
                         for s in series]}


def probe_figure(panels: list[tuple[str, list[dict]]], control: str | None, presentation: bool) -> dict:
    """One panel per probed column: linear-probe accuracy (line, 95 % interval as a band) and
    k-NN accuracy against the codebooks q, each with its chance level (dashed). ``panels``:
    [(column, ``measures.probe_series`` rows)]."""
    panels = [(c, s) for c, s in panels if s]
    if not panels:
        return empty_figure("no probes in this cache (made before them, or no depths)")
    font = 15 if presentation else 11
    data, layout = [], {"height": 300, "font": {"size": font}, "paper_bgcolor": "white",
                        "plot_bgcolor": "white", "margin": {"l": 48, "r": 12, "t": 46, "b": 62},
                        "legend": {"orientation": "h", "y": -0.32, "x": 0}, "hovermode": "x unified",
                        "annotations": []}
    for i, ((column, series), domain) in enumerate(zip(panels, panel_domains(len(panels)))):
        x = [s["q"] for s in series]
        probe = [s["probe"] for s in series]
        ok = [p["accuracy"] is not None for p in probe]
        xs = [q for q, good in zip(x, ok) if good]
        data.append(band(xs, [p["ci_low"] for p in probe if p["accuracy"] is not None],
                         [p["ci_high"] for p in probe if p["accuracy"] is not None], i, BAND,
                         "probe 95 % interval"))
        data.append({"type": "scatter", "mode": "lines+markers", "x": xs, "name": "linear probe",
                     "y": [p["accuracy"] for p in probe if p["accuracy"] is not None],
                     "line": {"color": LINE}, "legendgroup": "probe", "showlegend": i == 0,
                     "hovertemplate": "probe %{y:.3f}<extra></extra>", **trace_axes(i)})
        data.append({"type": "scatter", "mode": "lines+markers", "x": x, "name": "k-NN vote",
                     "y": [s["knn"]["accuracy"] for s in series], "line": {"color": KNN_LINE, "width": 1.5},
                     "marker": {"size": 5}, "legendgroup": "knn", "showlegend": i == 0,
                     "hovertemplate": "k-NN %{y:.3f}<extra></extra>", **trace_axes(i)})
        data.append({"type": "scatter", "mode": "lines", "x": x, "name": "chance (probe)",
                     "y": [p["chance"] for p in probe], "line": {"color": CHANCE, "dash": "dash", "width": 1.5},
                     "legendgroup": "chance", "showlegend": i == 0,
                     "hovertemplate": "chance %{y:.3f}<extra></extra>", **trace_axes(i)})
        if any(s["control"] for s in series):
            data.append({"type": "scatter", "mode": "lines", "x": x, "name": "chance (controlled k-NN)",
                         "y": [s["knn"]["chance"] for s in series],
                         "line": {"color": KNN_LINE, "dash": "dot", "width": 1.2},
                         "legendgroup": "chance-knn", "showlegend": True,
                         "hovertemplate": "k-NN chance %{y:.3f}<extra></extra>", **trace_axes(i)})
        held = series[0]["control"]
        title = f"{plotly_text(column)}" + (f" · {plotly_text(held)} held out" if held else
                                            (" · not controlled" if control and control == column else ""))
        layout[axis_name("x", i)] = {"domain": domain, "title": {"text": "codebooks q · kbps"},
                                     "gridcolor": "#eee", **depth_ticks(series), "anchor": trace_axes(i)["yaxis"]}
        layout[axis_name("y", i)] = {"range": [0, 1.02], "gridcolor": "#eee", "anchor": trace_axes(i)["xaxis"],
                                     "title": {"text": "accuracy" if i == 0 else ""}}
        layout["annotations"].append({"text": f"<b>{title}</b>", "showarrow": False, "xref": "paper",
                                      "yref": "paper", "x": (domain[0] + domain[1]) / 2, "y": 1.13,
                                      "xanchor": "center", "font": {"size": font + 1}})
    return {"data": data, "layout": layout}


def fidelity_figure(summary: dict | None, untrained: bool, presentation: bool) -> dict:
    """One panel per fidelity measure: its median over the decoded clips against q (the
    interquartile range as a band), or one median line per colour group."""
    if summary is None:
        return empty_figure("no decoded audio in this cache: no fidelity (precompute --reconstruct)")
    font = 14 if presentation else 10
    measures_ = summary["measures"]
    domains = panel_domains(len(measures_), gap=0.05)
    x = summary["depths"]
    data, layout = [], {"height": 280, "font": {"size": font}, "paper_bgcolor": "white",
                        "plot_bgcolor": "white", "margin": {"l": 40, "r": 10, "t": 46, "b": 62},
                        "legend": {"orientation": "h", "y": -0.34, "x": 0}, "annotations": []}
    for i, (m, domain) in enumerate(zip(measures_, domains)):
        rows = summary["all"][m["name"]]
        if summary["groups"]:
            for g, (name, by_measure) in enumerate(summary["groups"].items()):
                data.append({"type": "scatter", "mode": "lines+markers", "x": x, "name": plotly_text(name),
                             "y": [r["median"] for r in by_measure[m["name"]]], "legendgroup": name,
                             "line": {"color": GROUP_COLOURS[g % len(GROUP_COLOURS)], "width": 1.5},
                             "marker": {"size": 4}, "showlegend": i == 0,
                             "hovertemplate": plotly_text(name) + " median %{y:.2f}<extra></extra>", **trace_axes(i)})
        else:
            good = [j for j, r in enumerate(rows) if r["median"] is not None]
            xs = [x[j] for j in good]
            data.append(band(xs, [rows[j]["q25"] for j in good], [rows[j]["q75"] for j in good], i, BAND,
                             "interquartile range"))
            data.append({"type": "scatter", "mode": "lines+markers", "x": xs, "name": "median",
                         "y": [rows[j]["median"] for j in good], "line": {"color": LINE},
                         "customdata": [rows[j]["n"] for j in good], "legendgroup": "median",
                         "showlegend": i == 0, "hovertemplate": "median %{y:.2f} (n=%{customdata})<extra></extra>",
                         **trace_axes(i)})
        if m["name"] == "dnsmos" and summary["dnsmos_original"]["median"] is not None:
            data.append({"type": "scatter", "mode": "lines", "x": [x[0], x[-1]], "name": "original's DNSMOS",
                         "y": [summary["dnsmos_original"]["median"]] * 2, "showlegend": True,
                         "line": {"color": CHANCE, "dash": "dash", "width": 1.2},
                         "hovertemplate": "original %{y:.2f}<extra></extra>", **trace_axes(i)})
        arrow = "↑" if m["higher_is_better"] else "↓"
        unit = f" ({m['unit']})" if m["unit"] else ""
        layout[axis_name("x", i)] = {"domain": domain, "gridcolor": "#eee", "tickvals": x,
                                     "ticktext": [f"{q}<br>{kbps:g}" for q, kbps in zip(x, summary["kbps"])],
                                     "title": {"text": "q · kbps" if i else "codebooks q · kbps"},
                                     "anchor": trace_axes(i)["yaxis"]}
        layout[axis_name("y", i)] = {"gridcolor": "#eee", "anchor": trace_axes(i)["xaxis"]}
        layout["annotations"].append({"text": f"<b>{m['title']}{unit} {arrow}</b>", "showarrow": False,
                                      "xref": "paper", "yref": "paper", "x": (domain[0] + domain[1]) / 2,
                                      "y": 1.14, "xanchor": "center", "font": {"size": font + 1}})
    if untrained:
        layout["annotations"].append({"text": "UNTRAINED weights: the decoder makes noise; these numbers "
                                              "measure noise", "showarrow": False, "xref": "paper",
                                      "yref": "paper", "x": 0.5, "y": 1.27, "xanchor": "center",
                                      "font": {"color": "#b00020", "size": font + 1}})
        layout["margin"]["t"] = 62
    return {"data": data, "layout": layout}


def cka_figure(table: dict | None, presentation: bool) -> dict:
    """Linear CKA between every pair of representations as a heatmap (1: the same geometry up
    to rotation and scale)."""
    if not table:
        return empty_figure("no CKA in this cache (made before it)")
    names = [plotly_text(n) for n in table["representations"]]
    font = 14 if presentation else 10
    return {"data": [{"type": "heatmap", "x": names, "y": names, "z": table["matrix"], "zmin": 0, "zmax": 1,
                      "colorscale": [[0, "#f7fbff"], [0.5, "#6baed6"], [1, "#08306b"]],
                      "hovertemplate": "%{y} vs %{x}: CKA %{z:.3f}<extra></extra>",
                      "colorbar": {"title": {"text": "CKA"}, "thickness": 10}}],
            "layout": {"height": max(300, 60 + 20 * len(names)), "font": {"size": font},
                       "margin": {"l": 10, "r": 10, "t": 10, "b": 10}, "paper_bgcolor": "white",
                       "xaxis": {"type": "category", "automargin": True, "tickangle": -45},
                       "yaxis": {"type": "category", "automargin": True, "autorange": "reversed"}}}


def control_choice(cache: Cache) -> dbc.Row:
    """"Control for <column>": hold a probed column out of the k-NN votes and the probes (the
    confusion, the metrics table and the probe chart follow it)."""
    columns = measures.probed_columns(cache)
    options = [{"label": "nothing", "value": "none"}] + [{"label": c, "value": c} for c in columns]
    return dbc.Row([dbc.Col(dbc.Label("Control for", html_for="control"), width="auto"),
                    dbc.Col(dcc.Dropdown(id="control", value="none", clearable=False, options=options,
                                         className="control-choice"), md=3),
                    dbc.Col(html.Small("the neighbours and the probe's held-out folds are then clips "
                                       "of another value of that column", className="text-muted"))],
                   className="g-2 align-items-center mb-1")


def measures_panel(cache: Cache) -> dbc.Card:
    """The card: the probe chart (following the analysis card's "control for"), the fidelity
    chart, CKA, and their notes."""
    graph = {**GRAPH_CONFIG, "displayModeBar": False}
    return dbc.Card(dbc.CardBody([
        html.H5("What the codec keeps, measured", className="card-title"),
        html.Small("Control for: the analysis card's choice (above).", className="text-muted d-block"),
        dcc.Graph(id="probe-chart", className="measure-chart", config=graph),
        html.Div(id="probe-note", className="small text-muted"),
        html.H6("The decoder's fidelity against depth", className="mt-3"),
        dcc.Graph(id="fidelity-chart", className="measure-chart", config=graph),
        html.Div(id="fidelity-note", className="small text-muted"),
        html.H6("How alike the representations are (linear CKA)", className="mt-3"),
        dbc.Row([dbc.Col(dcc.Graph(id="cka-chart", config=graph), lg=7),
                 dbc.Col(html.Div(id="cka-note", className="small text-muted"), lg=5)], className="g-2"),
    ]), className="mt-2", id="measures-panel")

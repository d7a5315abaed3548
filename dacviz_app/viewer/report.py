"""The offline HTML report: the four views as the page shows them now (representation, colours,
filter, hidden groups, the highlighted clip, its neighbours and the box/lasso selection) and the
metrics table, in one self-contained file: plotly.js is inlined, nothing is fetched, no
external URL is referenced by the page itself (the seed's ``write_html``, for all four views).
"""
from __future__ import annotations

import datetime
import html
import json

from dacviz_app.cache import Cache
from dacviz_app.embedding.spaces import VIEW_NAMES, space_title
from dacviz_app.embedding.spaces import view as view_row
from dacviz_app.viewer.figures import GRAPH_CONFIG

REPORT_HEIGHT = 460
HIGHLIGHT_STYLES = (("lasso", "selection", 7, "circle-open"), ("neighbours", "neighbours", 11, "circle"),
                    ("selected", "clicked clip", 16, "diamond"))


def plotly_bundle() -> str:
    """plotly.js as shipped inside the plotly package (the same version Dash serves)."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def highlight_traces(entry: dict) -> list[dict]:
    """The highlight payload of one view (``figures.highlight_payload``) as Plotly traces drawn
    over the groups: the selection as rings, the neighbours and the clicked clip outlined."""
    traces = []
    dim = entry["dim"]
    for key, name, size, symbol in HIGHLIGHT_STYLES:
        part = entry.get(key) or {}
        points = part.get("xyz") or []
        if not points:
            continue
        trace = {"type": "scattergl" if dim == 2 else "scatter3d", "mode": "markers", "name": name,
                 "x": [p[0] for p in points], "y": [p[1] for p in points], "showlegend": False,
                 "marker": {"size": size if dim == 2 else size / 2, "color": part["colours"],
                            "symbol": symbol, "line": {"color": "#111", "width": 2}},
                 "hovertemplate": f"{name} · clip %{{customdata}}<extra></extra>",
                 "customdata": part["ids"]}
        if dim == 3:
            trace["z"] = [p[2] for p in points]
            trace["marker"]["symbol"] = "diamond" if key == "selected" else "circle"
        traces.append(trace)
    return traces


def _json_for_script(value) -> str:
    """JSON that cannot end the <script> element it sits in."""
    return json.dumps(value, separators=(",", ":")).replace("</", "<\\/").replace("<!--", "<\\!--")


def metrics_html(rows: list[dict], current: str, column: str, k) -> str:
    def cell(value, digits=3):
        return "n/a" if value is None else f"{value:.{digits}f}"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in (
        "representation", "space", "dim", "silhouette ↑", "silhouette cos ↑", "Davies-Bouldin ↓",
        f"k-NN acc (k={k}) ↑", "chance"))
    body = "".join(
        f"<tr class=\"{'current' if r['representation'] == current else ''}\">"
        f"<td>{html.escape(str(r['representation']))}</td><td>{html.escape(space_title(r['space']))}</td>"
        f"<td>{r['dim']}</td><td>{cell(r['silhouette'])}</td><td>{cell(r.get('silhouette_cosine'))}</td>"
        f"<td>{cell(r['davies_bouldin'])}</td><td>{cell(r['knn_accuracy'])}</td><td>{cell(r.get('chance'))}</td></tr>"
        for r in rows)
    return (f"<h2>Cluster quality, scored by {html.escape(column)}</h2>"
            f"<table class=\"metrics\"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            "<p class=\"note\">Silhouette: Euclidean and cosine; k-NN accuracy: leave-one-out vote "
            "of the k nearest other clips, cosine in the full space, Euclidean in projections; "
            "chance: the share of the most frequent value. Recomputable from the cache (README).</p>")


def report_html(cache: Cache, current: str, figures: list[dict], highlight: dict,
                rows: list[dict], column: str, groups, hidden: set[str] = frozenset()) -> str:
    """The report's HTML text. ``figures``: the four views' figures (``VIEW_NAMES`` order) as
    ``callbacks.figures_update`` builds them; ``highlight``: ``figures.highlight_payload``;
    ``rows``: the metrics rows shown; ``groups``: the colour groups drawn (for the legend);
    ``hidden``: the groups switched off in the page's legend."""
    plots = []
    for view, figure in zip(VIEW_NAMES, figures):
        layout = dict(figure["layout"], height=REPORT_HEIGHT, uirevision=None)
        data = list(figure["data"]) + highlight_traces((highlight.get("views") or {}).get(view, {"dim": view_row(view).dim}))
        plots.append({"data": data, "layout": layout})
    drawn = sum(len(m) for n, m in zip(groups.names, groups.members) if n not in hidden)
    legend = "".join(f"<span class=\"swatch\" style=\"background:{html.escape(c)}\"></span>"
                     f"{html.escape(n)} ({len(m):,}{', hidden' if n in hidden else ''}) &nbsp; "
                     for n, c, m in zip(groups.names, groups.colours, groups.members) if len(m))
    warning = ("<p class=\"banner\">UNTRAINED CODEC WEIGHTS: this cache was encoded with a randomly "
               "initialised DAC. The maps and metrics say nothing about the trained codec.</p>"
               if cache.untrained else "")
    lasso = len((highlight.get("views") or {}).get(VIEW_NAMES[0], {}).get("lasso", {}).get("ids", []))
    selected = (highlight.get("views") or {}).get(VIEW_NAMES[0], {}).get("selected", {}).get("ids", [])
    state = (f"representation <b>{html.escape(current)}</b> · coloured by <b>{html.escape(groups.column)}</b>"
             f" · {drawn:,} of {cache.n_clips:,} clips drawn"
             + (f" · clicked clip {selected[0]} with its neighbours outlined" if selected else "")
             + (f" · {lasso:,} selected clips ringed" if lasso else ""))
    created = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    k = cache.metrics_params.get("knn_accuracy_k")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>dacviz report: {html.escape(cache.name)} · {html.escape(current)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 16px; color: #222; }}
.grid {{ display: grid; grid-template-columns: 1fr 1fr; gap: 8px; }}
.banner {{ background: #f8d7da; color: #842029; padding: 8px; font-weight: bold; }}
.swatch {{ display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 4px; }}
table.metrics {{ border-collapse: collapse; font-size: 13px; }}
table.metrics td, table.metrics th {{ padding: 2px 8px; border-bottom: 1px solid #ddd; text-align: right; }}
tr.current {{ background: #fff3cd; }}
.note {{ color: #666; font-size: 12px; }}
</style>
<script>{plotly_bundle()}</script>
</head><body>
<h1>dacviz report: {html.escape(cache.name)}</h1>
{warning}
<p>{state}. DAC {html.escape(str(cache.model['type']))}, {cache.n_clips:,} clips; made {created}.</p>
<p class="legend">{legend}</p>
<div class="grid">{''.join(f'<div id="view-{v}" class="view"></div>' for v in VIEW_NAMES)}</div>
{metrics_html(rows, current, column, k)}
<script>
var figures = {_json_for_script(plots)};
var names = {_json_for_script(list(VIEW_NAMES))};
figures.forEach(function (f, i) {{
  Plotly.newPlot("view-" + names[i], f.data, f.layout,
                 {_json_for_script({**GRAPH_CONFIG, "responsive": True})});
}});
</script>
</body></html>
"""

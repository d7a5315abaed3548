"""The analysis card's and the metrics card's contents, rendered by the callbacks: the metrics
table (every representation scored by a column, with its chance level), the heatmap's note (space,
distance, k, sample, confound, probe), and the filtered clips' own scores."""
from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html

from dacviz_app.cache import Cache
from dacviz_app.embedding.spaces import space_title
from dacviz_app.explore import analysis
from dacviz_app.explore.groups import AGREEMENT
from dacviz_app.explore.measures import FIDELITY_COLOUR, confound_note, probe_row


def subset_table(result: dict, rep: str, column: str, filters: tuple[str, ...]) -> html.Div:
    """``analysis.subset_metrics``' answer as a small table, with what it was computed on."""
    def cell(value):
        return "n/a" if value is None else f"{value:.3f}"

    if not result["rows"]:
        return html.Div("Too few clips in the filter to score.", className="text-muted")
    head = html.Thead(html.Tr([html.Th(h) for h in ("space", "silhouette", "silhouette cos",
                                                     "Davies-Bouldin", f"k-NN acc (k={result['k']})",
                                                     "chance")]))
    body = html.Tbody([html.Tr([html.Td(space_title(r["space"])), html.Td(cell(r["silhouette"])),
                                html.Td(cell(r["silhouette_cosine"])), html.Td(cell(r["davies_bouldin"])),
                                html.Td(cell(r["knn_accuracy"])), html.Td(cell(r["chance"]))])
                       for r in result["rows"]])
    sample = (f"a seeded sample of {analysis.SUBSET_SAMPLE:,} of them" if result["sampled"]
              else "all of them")
    return html.Div([html.Div(f"{rep}, {result['n']:,} clips kept by {', '.join(filters)}, scored by "
                              f"{column} among themselves ({sample}; neighbours searched among "
                              f"them: cosine in the full space, Euclidean in views)",
                              className="text-muted"),
                     dbc.Table([head, body], size="sm", className="metrics mb-0", id="filter-metrics-table")])


def unscored_reason(colour) -> str:
    """Why the metrics are not scored by the "Colour by" choice."""
    if colour == AGREEMENT:
        return "the maps are coloured by k-NN agreement, not a column"
    if isinstance(colour, str) and colour.startswith(FIDELITY_COLOUR):
        return "the maps are coloured by the decoder's fidelity, not a column"
    return f"{colour!r} is not a scored column: precompute scores columns of 2 to 200 values"


def analysis_note(cache: Cache, conf: dict, current: str, compare: str, mean_agreement,
                  colour, filtered: int | None = None) -> list:
    """What the heatmap shows and the agreement's mean, with space, distance, k and sample;
    ``filtered``: how many clips the page's filter keeps (None: no filter), said not to apply."""
    column, control = conf["column"], conf.get("control")
    unscored = (f" ({unscored_reason(colour)}: the label is shown)"
                if colour not in (column, None) else "")
    worst = sorted(zip(conf["per_class"], conf["names"], conf["support"]))[:3]
    voters = (f"the k nearest clips of another {control} (controlled: {conf['n_scored']:,} of "
              f"{cache.n_clips:,} clips had such neighbours in the table; chance: the most frequent "
              f"{column} among the other {control} values)" if control else
              f"leave-one-out, all {cache.n_clips:,} clips")
    lines = [html.P([html.Strong(f"k-NN vote by {column}{unscored}: "),
                     f"accuracy {conf['accuracy']:.3f} (chance {conf['chance']:.3f}), "
                     f"{current} (mean over frames), full space, cosine, k={conf['k']}, {voters}. "
                     f"Rows: the true {column}; columns: what the k nearest voted; colour: the "
                     f"share of the row. Click a cell to select its clips."], id="confusion-summary"),
             html.P("Hardest: " + ", ".join(f"{name} {acc:.2f} (n={n})" for acc, name, n in worst))]
    if filtered is not None:
        lines.append(html.P([html.Strong("The filter does not apply here: "),
                             f"the maps show {filtered:,} of {cache.n_clips:,} clips; the heatmap, the "
                             f"probe and the agreement score all of them. “Score the filtered clips” "
                             f"scores those {filtered:,} among themselves."],
                            className="text-warning-emphasis", id="filter-not-applied"))
    said = confound_note(cache, column)
    if said:
        lines.append(html.P([html.Strong("Confound: "), said, " Scores of these columns are one "
                             "finding, not several."], className="text-danger", id="confound-note"))
    row = probe_row(cache, current, column, control)
    if row and row["probe"]["accuracy"] is not None:
        p = row["probe"]
        lines.append(html.P([html.Strong(f"Linear probe of {column} on {current}: "),
                             f"{p['accuracy']:.3f} [95 % {p['ci_low']:.3f}–{p['ci_high']:.3f}] "
                             f"(chance {p['chance']:.3f}; {p['cv']}, {p['n']:,} clips; bootstrap over "
                             f"clips)."], id="probe-summary"))
    if mean_agreement is not None:
        lines.append(html.P([html.Strong(f"Agreement {current} vs {compare}: "),
                             f"mean Jaccard of the {analysis.AGREEMENT_K} nearest (cosine, full "
                             f"spaces) {mean_agreement:.3f} over all {cache.n_clips:,} clips "
                             f"(1: the same neighbours, 0: none shared). Colour by "
                             f"“k-NN agreement” to see where they disagree."],
                            id="agreement-summary"))
    return lines


def weights_notes(cache: Cache) -> dict[str, str]:
    """{representation: 'trained' | 'untrained' | 'no weights'}: what the metrics table says of
    each representation's encoder."""
    return {rep: "no weights" if cache.encoder(rep) == "mfcc" else
            "trained" if cache.trained(rep) else "untrained" for rep in cache.representations}


def metrics_table(rows: list[dict], current: str, params: dict, column: str = "label",
                  colour: str | None = None, notes: dict[str, str] | None = None,
                  controlled: dict | None = None, control: str | None = None,
                  confound: str | None = None) -> html.Div:
    """The seed's comparison table for every representation, scored by ``column`` (the
    "Colour by" column when precompute scored it), with the chance level; the current
    representation marked; ``notes`` (``weights_notes``): whether each one's encoder is trained."""
    notes = notes or {}

    def name(rep):
        note = notes.get(rep)
        return [rep, html.Small(f" {note}", className="text-danger" if note == "untrained" else
                                "text-success" if note == "trained" else "text-muted")] if note else rep

    def cell(value, digits=3):
        return "n/a" if value is None else f"{value:.{digits}f}"

    k = params.get("knn_accuracy_k")
    controlled = controlled or {}
    extra = [f"k-NN acc, {control} held out ↑"] if control else []
    head = html.Thead(html.Tr([html.Th(h) for h in (
        "representation", "space", "dim", "silhouette ↑", "silhouette cos ↑", "Davies-Bouldin ↓",
        f"k-NN acc (k={k}) ↑", *extra, "chance")]))

    def held_out(r):
        if not control:
            return []
        value = controlled.get(r["representation"]) if r["space"] == "full" else None
        return [html.Td(cell(value) if r["space"] == "full" else "")]

    body = [html.Tr([html.Td(name(r["representation"])), html.Td(space_title(r["space"])),
                     html.Td(r["dim"]), html.Td(cell(r["silhouette"])),
                     html.Td(cell(r.get("silhouette_cosine"))),
                     html.Td(cell(r["davies_bouldin"])), html.Td(cell(r["knn_accuracy"])),
                     *held_out(r), html.Td(cell(r.get("chance")))],
                    className="current" if r["representation"] == current else "")
            for r in rows]
    sample = params.get("silhouette_sample_above")
    unscored = (f" ({unscored_reason(colour)})" if colour and colour != column else "")
    title = html.Div([html.Strong(f"Scored by {column}"), unscored], className="metrics-column",
                     id="metrics-column")
    note = (f"Silhouette: Euclidean and cosine, in each space, exact up to {sample:,} clips, beyond "
            f"that on a seeded sample of {sample:,} (seed {params.get('seed')}). k-NN accuracy: "
            f"leave-one-out majority vote of the k={k} nearest other clips, cosine in the full "
            f"space, Euclidean in projections; chance: the share of the most frequent {column} "
            f"(the accuracy of always guessing it). Each clip is one vector: its representation "
            f"pooled over frames (z: mean over frames)."
            + (f" Held out: the k nearest clips of another {control} vote (full space; its own "
               f"chance is in the probe chart)." if control else "")
            + " Recompute from the cache with scikit-learn: see docs/cache-format.md.")
    said = [html.P([html.Strong("Confound: "), confound, " Their rows are one finding, not two."],
                   className="text-danger small mb-1")] if confound else []
    return html.Div([title, *said, dbc.Table([head, html.Tbody(body)], size="sm", bordered=False, hover=True,
                                             className="metrics"), html.Small(note, className="text-muted")])

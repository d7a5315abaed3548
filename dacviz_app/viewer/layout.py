"""The page: header, controls, the shared legend, four linked views, the listening panel and
the metrics table. Static structure only; callbacks fill it."""
from __future__ import annotations

import json

import dash_bootstrap_components as dbc
from dash import dcc, html

from dacviz_app.cache import Cache
from dacviz_app.embedding.spaces import VIEWS, page_table, space_title
from dacviz_app.explore import analysis
from dacviz_app.explore.groups import AGREEMENT, colour_columns, groups_key
from dacviz_app.explore.measures import FIDELITY_COLOUR, confound_note, fidelity_colours, probe_row
from dacviz_app.explore.nearest import weights_problem
from dacviz_app.cache.encode_record import describe_settings, short_settings
from dacviz_app.query_service.protocol import MAX_SECONDS, MAX_UPLOAD_BYTES
from dacviz_app.viewer.figures import GRAPH_CONFIG
from dacviz_app.viewer.measures_view import control_choice, measures_panel

DEFAULT_K = 10
SHORTCUTS = (("click", "select a clip and play it"), ("→ / n", "next neighbour"),
             ("← / p", "previous neighbour"), ("r", "replay"), ("Esc", "clear selection"),
             ("t", "presentation mode"), ("a", "original ↔ decoded"))


def header(cache: Cache) -> html.Div:
    model = cache.model
    banners = []
    if cache.untrained:
        banners.append(dbc.Alert(
            [html.Strong("UNTRAINED CODEC WEIGHTS. "),
             "This cache was encoded with a randomly initialised DAC (seed "
             f"{model['weights'].get('seed')}). The maps and metrics say nothing about the "
             "trained codec."], color="danger", id="untrained-banner", className="banner mb-2"))
    if cache.synthetic:
        banners.append(dbc.Alert(
            [html.Strong("SYNTHETIC COLLECTION. "),
             "Embeddings were generated from a fitted model of a small real cache, for scale "
             "testing; audio files are reused."], color="warning", id="synthetic-banner",
            className="banner mb-2"))
    return html.Div([
        html.Div([
            html.H1("dacviz", className="brand"),
            html.Div([
                html.Span(cache.name, className="collection-name"),
                html.Span(f"{cache.n_clips:,} clips", className="badge bg-secondary ms-2"),
                html.Span(f"DAC {model['type']} · {model['sample_rate']} Hz",
                          className="badge bg-info text-dark ms-2"),
                html.Span(f"{len(set(cache.clips['label']))} labels",
                          className="badge bg-light text-dark ms-2"),
                *encoder_badge(cache),
                *encoder_names(cache),
                html.Button("exit presentation (t)", id="exit-presentation", n_clicks=0,
                            className="exit-presentation btn btn-sm btn-outline-secondary ms-2"),
            ], className="header-meta"),
        ], className="d-flex align-items-baseline gap-3 header-row"),
        *banners,
    ])


ENCODER_NAMES = {"dac": "DAC", "mfcc": "MFCC"}


def encoder_names(cache: Cache) -> list:
    """One badge per encoder in the cache, saying whether its weights are trained: 'DAC ·
    untrained' red, 'MFCC · no weights' grey, 'resemblyzer · trained' green."""
    out = []
    for name, trained in cache.encoders():
        if name == "mfcc":
            state, colour = "no weights", "bg-light text-dark"
        elif trained:
            state, colour = "trained", "bg-success"
        else:
            state, colour = "untrained", "bg-danger"
        out.append(html.Span(f"{ENCODER_NAMES.get(name, name)} · {state}", className=f"badge {colour} ms-1",
                             title=f"encoder {name}: {state}", **{"data-encoder": name}))
    return out


def representation_label(cache: Cache, rep: str) -> str:
    """The dropdown's name of ``rep``: its title, and ' · untrained' when its encoder is a
    learned one with random weights."""
    untrained = cache.encoder(rep) != "mfcc" and not cache.trained(rep)
    return cache.title(rep) + (" · untrained" if untrained else "")


def encoder_badge(cache: Cache) -> list:
    """How the encoder ran (precision, device, the measured cost against fp32), the full line
    on hover; 'precision not recorded' for an encoded cache made before it was."""
    if cache.synthetic:
        return []
    settings = cache.encode_settings
    text = short_settings(settings) or "precision not recorded"
    full = describe_settings(settings) or "made before dacviz recorded the encoder's precision"
    return [html.Span(text, id="encoder-badge", title=full, className="badge bg-light text-dark ms-2")]


def controls(cache: Cache) -> dbc.Card:
    return dbc.Card(dbc.CardBody([dbc.Row([
        dbc.Col([dbc.Label("Representation", html_for="rep"),
                 dcc.Dropdown(id="rep", clearable=False, value=cache.representations[0],
                              options=[{"label": representation_label(cache, r), "value": r}
                                       for r in representation_choices(cache)]),
                 depth_control(cache)], md=4),
        dbc.Col([dbc.Label("Colour by", html_for="colour"),
                 dcc.Dropdown(id="colour", clearable=False, value="label",
                              options=[{"label": c, "value": c} for c in colour_columns(cache)] +
                                      [{"label": "k-NN agreement with…", "value": AGREEMENT,
                                        "title": f"Jaccard overlap of each clip's {analysis.AGREEMENT_K} "
                                                 "nearest in this representation and in 'Compare with'"}] +
                                      fidelity_colours(cache))],
                md=2),
        dbc.Col([dbc.Label("Neighbours k", html_for="k"),
                 dcc.Slider(id="k", min=1, max=cache.knn_k, step=1, value=min(DEFAULT_K, cache.knn_k),
                            marks={1: "1", **{v: str(v) for v in (10, 20, 30, 40, 50) if v <= cache.knn_k}},
                            tooltip={"placement": "bottom"})], md=2),
        dbc.Col([dbc.Checklist(id="presentation", switch=True, value=[],
                               options=[{"label": "Presentation (t)", "value": "on"}]),
                 dbc.Button("Clear selection (Esc)", id="clear", size="sm", color="secondary",
                            outline=True, className="mt-1")], md=2),
        dbc.Col([dbc.Button("Filter · find · compare · export ▾", id="more-toggle", size="sm",
                            color="secondary", outline=True, n_clicks=0, className="more-toggle"),
                 keys_line()], md=2),
    ], className="g-2 align-items-end"),
        dbc.Collapse(analysis_controls(cache), id="more-controls", is_open=False)]),
        className="mb-2", id="controls-card")


def keys_line() -> html.Div:
    """The keyboard shortcuts, one line of keys (what each does on hover)."""
    return html.Div([html.Span("keys ", className="text-muted")] +
                    [html.Kbd(key.split(" ")[0], title=what, className="me-1") for key, what in SHORTCUTS],
                    className="shortcuts mt-1",
                    title=" · ".join(f"{key}: {what}" for key, what in SHORTCUTS))


def analysis_controls(cache: Cache) -> dbc.Row:
    """Filter by metadata values, find clips, the representation to compare with, exports."""
    from dacviz_app.explore.groups import filter_columns

    choices = analysis.filter_choices(cache, filter_columns(cache))
    return dbc.Row([
        dbc.Col([dbc.Label("Filter (hide the others in every view)", html_for="filter"),
                 dcc.Dropdown(id="filter", multi=True, value=[], placeholder="e.g. speaker=…",
                              options=[{"label": c, "value": c} for c in choices])], md=4),
        dbc.Col([dbc.Label("Find clips (id, file name, speaker or label)", html_for="find"),
                 dbc.InputGroup([dbc.Input(id="find", type="text", debounce=False, maxLength=200,
                                           placeholder="e.g. 12, seven, carib-f4"),
                                 dbc.Button("Find", id="find-go", color="secondary", n_clicks=0)],
                                size="sm"),
                 html.Small(id="find-note", className="text-muted")], md=3),
        dbc.Col([dbc.Label("Compare with", html_for="compare"),
                 dcc.Dropdown(id="compare", clearable=False,
                              options=[{"label": cache.title(r), "value": r}
                                       for r in representation_choices(cache)])], md=2),
        dbc.Col([dbc.Label("Export"),
                 html.Div([dbc.Button("CSV", id="export-csv", size="sm", color="secondary",
                                      outline=True, n_clicks=0,
                                      title="the selection (or the clicked clip and its "
                                            "neighbours, or the filtered clips) as CSV"),
                           dbc.Button("HTML report", id="export-report", size="sm",
                                      color="secondary", outline=True, n_clicks=0,
                                      title="the four views and the metrics, one offline file")],
                          className="d-flex gap-2"),
                 dcc.Download(id="download")], md=3),
    ], className="g-3 align-items-end mt-1")


def representation_choices(cache: Cache) -> list[str]:
    """The dropdown's representations: all but the depths (the codebook slider reaches those)."""
    depth_reps = {rep for _q, rep in cache.depths() if rep != "z"}
    return [r for r in cache.representations if r not in depth_reps]


def depth_label(cache: Cache, q: int) -> str:
    """'4 codebooks · 2.0 kbps'."""
    rep = dict(cache.depths()).get(q, "z")
    return f"{q} codebook{'s' if q != 1 else ''} · {cache.kbps(rep):.1f} kbps"


def depth_control(cache: Cache) -> html.Div:
    """The 'codebooks q' slider over the stored depths of z (hidden, with a note, without)."""
    depths = [q for q, _rep in cache.depths()]
    if not depths:
        return html.Div([dcc.Slider(id="depth", min=1, max=1, value=1, disabled=True),
                         html.Small("This cache has no codebook depths (made before them, or "
                                    "with --depths and no value).", className="text-muted",
                                    id="depth-note")],
                        id="depth-box", className="depth-box", hidden=True)
    full = depths[-1]
    return html.Div([
        html.Div([html.Span("codebooks q ", className="text-muted"),
                  html.Span(depth_label(cache, full), id="depth-label", className="fw-semibold")],
                 className="small mt-1"),
        dcc.Slider(id="depth", min=depths[0], max=full, step=None, value=full,
                   marks={q: str(q) for q in depths}, included=True,
                   tooltip={"placement": "bottom", "always_visible": False}),
    ], id="depth-box", className="depth-box",
        title="z quantized with only its first q residual codebooks (applies to z)")


def views_grid() -> html.Div:
    graphs = [html.Div([
        dcc.Graph(id=f"view-{view.name}", className="view", config={
            **GRAPH_CONFIG, "scrollZoom": True, "responsive": True,
            "modeBarButtonsToRemove": ["toImage"] if view.dim == 3 else []}),
        # one view fills the page, and back (assets/1d-dacviz-layout.js; the link keeps it as max=)
        html.Button("⤢", className="maximise", title=f"{view.title}: fill the page (and back)",
                    **{"data-view": view.name, "aria-label": f"maximise {view.title}"}),
    ], className="view-box", id=f"box-{view.name}") for view in VIEWS]
    return html.Div([
        dbc.Checklist(id="legend", inline=True, value=[], options=[], className="legend mb-1"),
        html.Div(graphs, className="views-grid"),
    ])


def query_panel(cache: Cache) -> html.Div:
    """Query by voice: record (the microphone, a level meter, up to MAX_SECONDS) or drop an
    audio file; assets/3-dacviz-query.js sends it to /query and shows the answer. Disabled with
    its one-line reason when this server cannot encode for this cache."""
    off = weights_problem(cache)
    return html.Div([
        html.Div([
            html.H6("Query by voice", className="mb-0 me-auto"),
            html.Button("● Record", id="query-record", className="btn btn-sm btn-danger",
                        disabled=bool(off), title=off or f"say something (up to {MAX_SECONDS:g} s); "
                                                         f"press again to stop"),
            html.Canvas(id="query-level", className="query-level", width=90, height=12,
                        title="input level"),
        ], className="d-flex flex-wrap align-items-center gap-2 query-head"),
        html.Div(f"or drop an audio file here (WAV, FLAC, OGG, MP3; up to {MAX_SECONDS:g} s), or "
                 f"click to choose one", id="query-drop", className="query-drop" + (" off" if off else ""),
                 tabIndex="0", role="button"),
        html.Small(off or "", id="query-status", className="query-status d-block"),
        html.Audio(id="query-player", controls=True, className="w-100 query-player", hidden=True),
    ], className="query-panel", id="query-panel",
        **{"data-max-seconds": str(MAX_SECONDS), "data-max-bytes": str(MAX_UPLOAD_BYTES),
           "data-off": off or ""})


def listening_panel(cache: Cache, templates: dict[str, str]) -> dbc.Card:
    """``templates``: the player's URL templates, ``{clip}`` for the clip id and ``{q}`` for a
    reconstruction's depth (0: the original): data-src-template (what a click plays; the A/B
    choice rewrites it), data-audio-template, data-sound-template."""
    return dbc.Card(dbc.CardBody([
        query_panel(cache),
        html.H5("Listen", className="card-title"),
        html.Audio(id="player", controls=True, preload="auto", className="w-100", **templates),
        reconstruction_control(cache),
        html.Div([html.Canvas(id="sound-canvas", className="sound-canvas", width=320, height=150),
                  html.Small("", id="sound-caption", className="text-muted sound-caption"),
                  html.Canvas(id="hover-canvas", className="sound-canvas", width=320, height=80,
                              hidden=True)],
                 className="sound-box", title="waveform and log-mel spectrogram (dBFS); the line "
                                              "follows the audio"),
        html.Div(id="clip-info", className="clip-info",
                 children=html.P("Click a point in any view to play it and light up its "
                                 "nearest neighbours.", className="text-muted")),
        html.H6("Nearest neighbours", className="mt-3"),
        html.Div(id="neighbour-list", className="neighbour-list"),
        html.H6("Box / lasso selection", className="mt-3"),
        html.Div(id="lasso-list", className="lasso-list",
                 children=html.P("Drag a box or lasso in a 2D view.", className="text-muted")),
    ]), className="side-panel")


def metrics_panel() -> dbc.Card:
    return dbc.Card(dbc.CardBody([
        html.H5("Cluster quality by representation", className="card-title"),
        html.Div(id="metrics-table"),
    ]), className="mt-2", id="metrics-panel")


def analysis_panel(cache: Cache) -> dbc.Card:
    """The k-NN vote's confusion heatmap (a cell click selects its clips), "control for" (which
    the confusion, the metrics table and the probe chart follow) and the agreement of the
    current representation with the compared one."""
    return dbc.Card(dbc.CardBody([
        html.H5("Analysis: where the neighbours vote right, and where representations disagree",
                className="card-title"),
        control_choice(cache),
        dbc.Row([
            dbc.Col(dcc.Graph(id="confusion", className="confusion-chart",
                              config={**GRAPH_CONFIG, "displayModeBar": False}), lg=7),
            dbc.Col([html.Div(id="analysis-note", className="analysis-note small"),
                     dbc.Button("Score the filtered clips", id="score-filter", size="sm",
                                color="secondary", outline=True, n_clicks=0,
                                title="silhouette, Davies-Bouldin and k-NN accuracy of the clips "
                                      "the filter keeps, among themselves"),
                     html.Div(id="filter-metrics", className="small mt-1")], lg=5),
        ], className="g-2"),
    ]), className="mt-2", id="analysis-panel")


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
                  colour) -> list:
    """What the heatmap shows and the agreement's mean, with space, distance, k and sample."""
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


def reconstruction_control(cache: Cache) -> html.Div:
    """Original / decoded-at-q choice for the player (key 'a' toggles); hidden, with a note,
    for a cache without reconstructions."""
    depths = cache.reconstruction_depths if cache.reconstructed_clips else []
    if not depths:
        return html.Div([dbc.RadioItems(id="ab", value=0, options=[{"label": "original", "value": 0}]),
                         html.Small("No decoded audio in this cache (made before it, or with "
                                    "--reconstruct and no value).", className="text-muted")],
                        hidden=True, id="ab-box")
    note = []
    if cache.untrained:
        note = [html.Small("Untrained codec: the decoded audio is noise, not the codec's sound.",
                           className="text-danger fw-semibold d-block", id="ab-untrained")]
    return html.Div([
        html.Div([html.Span("Play ", className="text-muted"), html.Kbd("a"),
                  html.Span(" original ↔ decoded", className="text-muted")], className="small"),
        dbc.RadioItems(id="ab", value=0, inline=True, className="ab-choice",
                       options=[{"label": "original", "value": 0}] +
                               [{"label": f"{q} cb", "value": q} for q in depths]),
        *note,
        html.Small(id="clip-fidelity", className="d-block clip-fidelity"),
        html.Small(f"cb: decoded by DAC from the first q codebooks; "
                   f"{cache.reconstructed_clips:,} of {cache.n_clips:,} clips have it",
                   className="text-muted d-block"),
    ], id="ab-box", className="ab-box")


def codec_panel(cache: Cache) -> dbc.Card:
    """What each codebook adds: metrics of z against q, and how each level uses its codebook."""
    if not cache.depths() and cache.code_counts() is None:
        return html.Div(id="codec-panel", hidden=True)
    return dbc.Card(dbc.CardBody([
        html.H5("The codec lens: what each codebook adds", className="card-title"),
        dbc.Row([
            dbc.Col(dcc.Graph(id="depth-chart", className="small-chart",
                              config={**GRAPH_CONFIG, "displayModeBar": False}), lg=8),
            dbc.Col(dcc.Graph(id="usage-chart", className="small-chart",
                              config={**GRAPH_CONFIG, "displayModeBar": False}), lg=4),
        ], className="g-2"),
        html.Small(id="codec-note", className="text-muted"),
    ]), className="mt-2", id="codec-panel")


def build_layout(cache: Cache, templates: dict[str, str]) -> html.Div:
    """The whole page for one cache; ``templates`` as in ``listening_panel``."""
    return html.Div([
        dcc.Location(id="url", refresh=False),
        dcc.Store(id="selection", data={"clip": None, "cursor": -1, "play": None, "nonce": 0}),
        dcc.Store(id="lasso-store", data=[]),
        dcc.Store(id="lasso-link", data=""),
        dcc.Store(id="restored-hide", data=[]),
        dcc.Store(id="view-state", data={}),  # zoom and camera per view (dacviz.keepView)
        dcc.Store(id="groups-key", data=groups_key(cache, "label").text),
        dcc.Store(id="highlight", data=None),
        dcc.Store(id="query", data=None),  # the query by voice: {"nonce", "vectors", ...} (3-dacviz-query.js)
        html.Div(id="highlight-sync", hidden=True),
        html.Div(id="url-sync", hidden=True),
        html.Div(id="audio-sync", hidden=True),
        html.Div(id="ab-sync", hidden=True),
        html.Div(id="sound-sync", hidden=True),
        html.Button(id="key-next", hidden=True, n_clicks=0),
        html.Button(id="key-prev", hidden=True, n_clicks=0),
        header(cache),
        controls(cache),
        dbc.Row([
            dbc.Col(views_grid(), lg=9),
            dbc.Col(listening_panel(cache, templates), lg=3),
        ], className="g-2"),
        analysis_panel(cache),
        codec_panel(cache),
        measures_panel(cache),
        metrics_panel(),
    ], id="page", className="container-fluid py-2",
        **{"data-views": json.dumps(page_table())})  # the script's view table (core.spaces)


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

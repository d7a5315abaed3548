"""The page: header, controls, the shared legend, four linked views, the listening panel and
the metrics table. Static structure only; callbacks fill it."""
from __future__ import annotations

import json

import dash_bootstrap_components as dbc
from dash import dcc, html

from dacviz_app.cache import Cache
from dacviz_app.embedding.spaces import VIEWS, page_table
from dacviz_app.explore import analysis
from dacviz_app.explore.groups import AGREEMENT, colour_columns, colour_groups, groups_key
from dacviz_app.explore.measures import fidelity_colours
from dacviz_app.explore.nearest import weights_problem
from dacviz_app.cache.encode_record import describe_settings, short_settings
from dacviz_app.query_service.protocol import MAX_SECONDS, MAX_UPLOAD_BYTES
from dacviz_app.viewer.figures import GRAPH_CONFIG, MAX_VIEW_COORDINATE
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
             html.Span("This cache was encoded with a randomly initialised DAC (seed "
                       f"{model['weights'].get('seed')}). ", className="banner-detail"),
             "The maps and metrics say nothing about the trained codec."],
            color="danger", id="untrained-banner", className="banner mb-2"))
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
                 depth_control(cache)], xl=4, lg=6),
        dbc.Col([dbc.Label("Colour by", html_for="colour"),
                 dcc.Dropdown(id="colour", clearable=False, value="label",
                              options=colour_options(cache, cache.representations[0], None))],
                xl=2, lg=3),
        dbc.Col([dbc.Label("Neighbours k", html_for="k"),
                 dcc.Slider(id="k", min=1, max=cache.knn_k, step=1, value=min(DEFAULT_K, cache.knn_k),
                            marks={1: "1", **{v: str(v) for v in (10, 20, 30, 40, 50) if v <= cache.knn_k}},
                            tooltip={"placement": "bottom"})], xl=2, lg=3),
        dbc.Col([dbc.Checklist(id="presentation", switch=True, value=[],
                               options=[{"label": "Presentation (t)", "value": "on"}]),
                 dbc.Button("Clear selection (Esc)", id="clear", size="sm", color="secondary",
                            outline=True)], xl=2, lg=5, className="control-pair"),
        dbc.Col([dbc.Button("Filter · find · compare · export ▾", id="more-toggle", size="sm",
                            color="secondary", outline=True, n_clicks=0, className="more-toggle"),
                 keys_line()], xl=2, lg=7, className="control-pair"),
    ], className="g-2 align-items-end"),
        dbc.Collapse(analysis_controls(cache), id="more-controls", is_open=False)]),
        className="mb-2", id="controls-card")


def colour_options(cache: Cache, rep: str, other: str | None) -> list[dict]:
    """"Colour by"'s choices: the metadata columns, the k-NN agreement of ``rep`` (shown) with
    ``other`` (compared; both named once known), the fidelity measures."""
    pair = f"{rep} vs {other}" if other else f"{rep} vs the compared one"
    return ([{"label": c, "value": c} for c in colour_columns(cache)] +
            [{"label": f"k-NN agreement: {pair}", "value": AGREEMENT,
              "title": f"Jaccard overlap of each clip's {analysis.AGREEMENT_K} nearest in {rep} and in "
                       f"{other or 'the compared representation'} (the second: 'Compare with')"}] +
            fidelity_colours(cache))


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
        dbc.Col([dbc.Label("Find clips (id, label, speaker, file name, any column; column=value for one)", html_for="find"),
                 dbc.InputGroup([dbc.Input(id="find", type="text", debounce=False, maxLength=200,
                                           placeholder="e.g. 12, seven, label=7, carib-f4"),
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


def legend_options(groups) -> list[dict]:
    """The shared legend's checkboxes: one per group of ``groups`` (a ``ColourGroups``), its
    colour's swatch and its name."""
    return [{"label": html.Span([html.Span(className="swatch", style={"background": colour}), name],
                                title=name),
             "value": name} for name, colour in zip(groups.names, groups.colours)]


def views_grid(cache: Cache) -> html.Div:
    """The shared legend above the four views. The legend starts with the label's groups (what
    the page first colours by), so it has its rows before the first figures arrive and the views,
    which share the height under it, are not resized (and redrawn) when they do."""
    first = colour_groups(cache, "label")
    graphs = [html.Div([
        dcc.Graph(id=f"view-{view.name}", className="view", config={
            **GRAPH_CONFIG, "scrollZoom": True, "responsive": True,
            "modeBarButtonsToRemove": ["toImage"] if view.dim == 3 else []}),
        # one view fills the page, and back (assets/1d-dacviz-layout.js; the link keeps it as max=)
        html.Button("⤢", className="maximise", title=f"{view.title}: fill the page (and back)",
                    **{"data-view": view.name, "aria-label": f"maximise {view.title}"}),
    ], className="view-box", id=f"box-{view.name}") for view in VIEWS]
    return html.Div([
        dbc.Checklist(id="legend", inline=True, value=list(first.names), options=legend_options(first),
                      className="legend mb-1"),
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
        html.Div("or drop a file here, or click to choose one", id="query-drop",
                 className="query-drop" + (" off" if off else ""), tabIndex="0", role="button",
                 title=f"WAV, FLAC, OGG or MP3, up to {MAX_SECONDS:g} s"),
        html.Small(off or "", id="query-status", className="query-status d-block"),
        html.Audio(id="query-player", controls=True, className="w-100 query-player", hidden=True),
        html.Canvas(id="query-sound", className="sound-canvas", width=320, height=190, hidden=True,
                    title="the recording as the encoder heard it: waveform and log-mel spectrogram"),
    ], className="query-panel", id="query-panel",
        **{"data-max-seconds": str(MAX_SECONDS), "data-max-bytes": str(MAX_UPLOAD_BYTES),
           "data-off": off or ""})


def listening_panel(cache: Cache, templates: dict[str, str]) -> dbc.Card:
    """``templates``: the player's URL templates, ``{clip}`` for the clip id and ``{q}`` for a
    reconstruction's depth (0: the original): data-src-template (what a click plays; the A/B
    choice rewrites it), data-audio-template, data-sound-template, data-path-template ({clip},
    {rep}) and data-paths-template ({first}, {second}, {rep})."""
    return dbc.Card(dbc.CardBody([
        query_panel(cache),
        html.H5("Listen", className="card-title"),
        html.Div([html.Audio(id="player", controls=True, preload="auto", className="player", **templates),
                  # the browser's own clock reads 0:00 / 0:00 under a second: ours says the length
                  html.Span("", id="player-time", className="player-time",
                            title="position / length of what plays, in seconds")],
                 className="player-row"),
        reconstruction_control(cache),
        html.Div(id="clip-info", className="clip-info",
                 children=html.P("Click a point in any view to play it and light up its "
                                 "nearest neighbours.", className="text-muted")),
        # the neighbours straight under the clip: in view after a click, without scrolling
        html.H6("Nearest neighbours", className="mt-2 mb-1"),
        html.Div(id="neighbour-list", className="neighbour-list"),
        html.Div([html.Canvas(id="sound-canvas", className="sound-canvas", width=320, height=230),
                  html.Small("", id="sound-caption", className="text-muted sound-caption d-block"),
                  html.Canvas(id="hover-canvas", className="sound-canvas", width=320, height=150,
                              hidden=True)],
                 className="sound-box", title="waveform and log-mel spectrogram (dBFS); the line "
                                              "follows the audio"),
        html.Div(id="path-info", className="path-info small", hidden=True),  # assets/4-dacviz-path.js
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
        note = [html.Span("Untrained codec: noise, not the codec's sound.",
                          className="text-danger fw-semibold", id="ab-untrained")]
    return html.Div([
        html.Div([html.Span([html.Kbd("a"), " play "], className="small text-muted",
                            title="a: original ↔ decoded"),
                  dbc.RadioItems(id="ab", value=0, inline=True, className="ab-choice",
                                 options=[{"label": "original", "value": 0}] +
                                         [{"label": f"{q} cb", "value": q} for q in depths])],
                 className="d-flex flex-wrap align-items-center gap-1"),
        html.Small([html.Span(f"cb: DAC decoded from the first q codebooks ({cache.reconstructed_clips:,} of "
                              f"{cache.n_clips:,} clips). ", className="text-muted"), *note], className="d-block"),
        html.Small(id="clip-fidelity", className="d-block clip-fidelity"),
    ], id="ab-box", className="ab-box")


def codec_panel(cache: Cache) -> dbc.Card:
    """What each codebook adds: metrics of z against q, and how each level uses its codebook.
    On a wide window it is the column between the maps and the listening panel, so a sweep of
    the codebook slider is watched in one screen (maps, these charts, the clip's neighbours)."""
    if not cache.depths() and cache.code_counts() is None:
        return html.Div(id="codec-panel", hidden=True)
    return dbc.Card(dbc.CardBody([
        html.H6("Codec lens: what each codebook adds", className="card-title mb-1"),
        dcc.Graph(id="depth-chart", className="lens-chart depth-chart",
                  config={**GRAPH_CONFIG, "displayModeBar": False, "responsive": True}),
        dcc.Graph(id="usage-chart", className="lens-chart usage-chart",
                  config={**GRAPH_CONFIG, "displayModeBar": False, "responsive": True}),
        html.Small(id="codec-note", className="text-muted codec-note"),
    ]), id="codec-panel", className="codec-panel")


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
        # the four maps' newest figures drawn: the panels below follow it (callbacks/side.py), so a
        # colour, slider or representation change redraws the maps first
        dcc.Store(id="maps-drawn", data=None),
        dcc.Store(id="neighbour-play", data=None),  # a neighbour's ▶: {"clip", "nonce"} (1c-dacviz-click.js)
        dcc.Store(id="click-mode", data={"shift": False}),  # a shift-click compares paths (4-dacviz-path.js)
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
        # the maps, the listening panel and the codec lens: a grid whose arrangement follows the
        # window (assets/1-dacviz.css: three columns on a wide one, the lens below on a narrow one)
        html.Div([html.Div(views_grid(cache), className="area-maps"),
                  html.Div(codec_panel(cache), className="area-lens"),
                  html.Div(listening_panel(cache, templates), className="area-side")],
                 className="work-grid" + ("" if cache.depths() or cache.code_counts() is not None
                                          else " no-lens")),
        analysis_panel(cache),
        measures_panel(cache),
        metrics_panel(),
    ], id="page", className="container-fluid py-2",
        **{"data-views": json.dumps(page_table()),  # the script's view table (core.spaces)
           # the representation z shows at each slider depth (the link's view= is for it)
           "data-depth-reps": json.dumps({str(q): rep for q, rep in cache.depths()}),
           "data-view-limit": str(MAX_VIEW_COORDINATE)})  # a link's view= values (page_state.parse_views)

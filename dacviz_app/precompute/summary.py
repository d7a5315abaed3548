"""Plain-text reports of a precompute run: the untrained warning and the closing summary."""
from __future__ import annotations

from dacviz_app.cache.representations import DEPTH_PREFIX
from dacviz_app.embedding.spaces import FULL_SPACE, space_title


def untrained_banner() -> str:
    line = "!" * 78
    texts = ("UNTRAINED DAC WEIGHTS: the codec has random (seeded) weights.",
             "Embeddings, maps and metrics say nothing about the trained codec.")
    return "\n".join([line, *(f"!!  {text:<72}!!" for text in texts), line])


def _number(value, digits: int = 4) -> str:
    return "   n/a" if value is None else f"{value:.{digits}f}"


def depth_table(rows: list[dict]) -> str:
    """z's full space at each stored depth, scored by the label: one line per q."""
    by_rep = {r["representation"]: r for r in rows
              if r["space"] == FULL_SPACE and r.get("column", "label") == "label"}
    depths = sorted((int(rep[len(DEPTH_PREFIX):]), rep) for rep in by_rep if rep.startswith(DEPTH_PREFIX))
    if not depths:
        return ""
    lines = ["z at q codebooks (full space, label):", f"{'q':>4} {'silhouette':>11} "
             f"{'Davies-Bouldin':>15} {'kNN acc':>8}"]
    for q, rep in depths + [(None, "z")]:
        row = by_rep.get(rep)
        if row is None:
            continue
        lines.append(f"{'all' if q is None else q:>4} {_number(row['silhouette']):>11} "
                     f"{_number(row['davies_bouldin']):>15} {_number(row['knn_accuracy'], 3):>8}")
    return "\n".join(lines)


def metrics_table(rows: list[dict], knn_k: int | None) -> str:
    """The seed's comparison table: one block per representation, one line per space, scored
    by the label (depths: ``depth_table``). ``knn_k``: the k the k-NN accuracy was computed
    with (metrics.json's params)."""
    rows = [r for r in rows if r.get("column", "label") == "label"
            and not r["representation"].startswith(DEPTH_PREFIX)]
    lines = [f"{'representation':<14} {'space':<11} {'dim':>5} {'silhouette':>11} "
             f"{'Davies-Bouldin':>15} {'kNN acc':>8}"]
    for row in rows:
        lines.append(f"{row['representation']:<14} {space_title(row['space']):<11} "
                     f"{row['dim']:>5} {_number(row['silhouette']):>11} "
                     f"{_number(row['davies_bouldin']):>15} {_number(row['knn_accuracy'], 3):>8}")
    lines.append("silhouette: higher is better (-1..1) · Davies-Bouldin: lower is better · "
                 f"kNN acc: leave-one-out, k={knn_k}")
    return "\n".join(lines)


def measures_tables(cache) -> str:
    """What the codec keeps, for the closing summary: the decoder's fidelity (medians over the
    decoded clips) and the linear probes of the probed columns against q (with chance)."""
    from dacviz_app.explore import measures

    parts = []
    summary = measures.fidelity_summary(cache)
    if summary is not None:
        names = [m["name"] for m in summary["measures"]]
        titles = {"si_sdr": "SI-SDR dB", "mel_distance": "log-mel", "stoi": "STOI", "pesq": "PESQ",
                  "dnsmos": "DNSMOS"}
        scored = summary["params"].get("dnsmos_clips", 0)
        dnsmos = (f"DNSMOS over {scored}, the original's "
                  f"{_number(summary['dnsmos_original']['median'], 2).strip()}" if scored
                  else "no DNSMOS: --dnsmos-clips N adds it")
        lines = [f"decoder fidelity (median over {summary['n_clips']:,} decoded clips; {dnsmos}):",
                 f"{'q':>4} {'kbps':>5} " + " ".join(f"{titles.get(n, n):>10}" for n in names)]
        for j, q in enumerate(summary["depths"]):
            cells = [_number(summary["all"][n][j]["median"], 2) for n in names]
            lines.append(f"{q:>4} {summary['kbps'][j]:>5.1f} " + " ".join(f"{c:>10}" for c in cells))
        parts.append("\n".join(lines))
    columns = measures.probed_columns(cache)
    series = {c: measures.probe_series(cache, c, None) for c in columns}
    if any(series.values()):
        lines = ["linear probe accuracy of z at q (5-fold, 95 % bootstrap interval; chance):",
                 f"{'q':>4} " + " ".join(f"{c[:18]:>24}" for c in columns)]
        for i, row in enumerate(series[columns[0]]):
            cells = []
            for c in columns:
                p = series[c][i]["probe"] if i < len(series[c]) else None
                cells.append("n/a" if not p or p["accuracy"] is None else
                             f"{p['accuracy']:.2f} [{p['ci_low']:.2f}-{p['ci_high']:.2f}] ({p['chance']:.2f})")
            lines.append(f"{row['q']:>4} " + " ".join(f"{cell:>24}" for cell in cells))
        parts.append("\n".join(lines))
    for row in measures.confound_rows(cache):
        parts.append("confound: " + row["sentence"])
    return "\n\n".join(parts)


def computed_in_words(computed: list[str], named: int = 4) -> str:
    """What a run computed (``inputs`` result names), grouped by kind, each kind's results named
    up to ``named`` of them, else counted: 'embedding z_q3; knn z_q3; view z_q3:pca2, ...';
    'embedding 9; view 36; ...'; 'nothing: every result was kept'."""
    if not computed:
        return "nothing: every result was kept"
    groups: dict[str, list[str]] = {}
    for result in computed:
        kind, _, what = result.partition(":")
        groups.setdefault(kind, []).append(what)
    parts = []
    for kind, whats in groups.items():
        names = sorted(set(w for w in whats if w))
        parts.append(f"{kind} {', '.join(names)}".strip() if len(names) <= named else f"{kind} {len(names)}")
    return "; ".join(parts)


def format_summary(summary) -> str:
    """The closing summary of a RunSummary, as printed by precompute.py."""
    rule = "=" * 78
    parts = [rule, "dacviz precompute summary" + ("  (cache was already complete)"
                                                  if summary.already_complete else ""), rule]
    parts.append(f"clips encoded : {summary.n_encoded} of {summary.n_planned} "
                 f"({summary.newly_encoded} encoded in this run)")
    skipped = ", ".join(f"{k}: {v}" for k, v in sorted(summary.skipped_reasons.items()))
    parts.append(f"clips skipped : {summary.n_skipped}" + (f"  ({skipped}; see skipped.json)"
                                                          if skipped else ""))
    if summary.newly_encoded:
        parts.append(f"encoding      : {summary.encode_seconds:.1f} s, "
                     f"{summary.clips_per_second:.1f} clips/s on {summary.device}")
    parts.append(f"total time    : {summary.total_seconds:.1f} s")
    if summary.computed or not summary.already_complete:
        parts.append(f"computed      : {computed_in_words(summary.computed)}")
    if summary.encoder:
        parts.append(f"encoder       : {summary.encoder}")
    parts.append(f"weights       : {summary.weights}")
    parts.append(f"cache         : {summary.cache_dir}")
    parts.extend(f"note          : {note}" for note in summary.notes)
    parts.append("")
    parts.append(metrics_table(summary.metrics_rows, summary.knn_accuracy_k))
    depths = depth_table(summary.metrics_rows)
    if depths:
        parts.extend(["", depths])
    if summary.measures:
        parts.extend(["", summary.measures])
    if summary.untrained:
        parts.append("")
        parts.append(untrained_banner())
    parts.append(rule)
    return "\n".join(parts)

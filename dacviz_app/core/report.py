"""Plain-text reports of a precompute run: the untrained warning and the closing summary."""
from __future__ import annotations

from .spaces import space_title


def untrained_banner() -> str:
    line = "!" * 78
    texts = ("UNTRAINED DAC WEIGHTS: the codec has random (seeded) weights.",
             "Embeddings, maps and metrics say nothing about the trained codec.")
    return "\n".join([line, *(f"!!  {text:<72}!!" for text in texts), line])


def _number(value, digits: int = 4) -> str:
    return "   n/a" if value is None else f"{value:.{digits}f}"


def metrics_table(rows: list[dict], knn_k: int | None) -> str:
    """The seed's comparison table: one block per representation, one line per space.
    ``knn_k``: the k the k-NN accuracy was computed with (metrics.json's params)."""
    lines = [f"{'representation':<14} {'space':<11} {'dim':>5} {'silhouette':>11} "
             f"{'Davies-Bouldin':>15} {'kNN acc':>8}"]
    for row in rows:
        lines.append(f"{row['representation']:<14} {space_title(row['space']):<11} "
                     f"{row['dim']:>5} {_number(row['silhouette']):>11} "
                     f"{_number(row['davies_bouldin']):>15} {_number(row['knn_accuracy'], 3):>8}")
    lines.append("silhouette: higher is better (-1..1) · Davies-Bouldin: lower is better · "
                 f"kNN acc: leave-one-out, k={knn_k}")
    return "\n".join(lines)


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
    parts.append(f"weights       : {summary.weights}")
    parts.append(f"cache         : {summary.cache_dir}")
    parts.extend(f"note          : {note}" for note in summary.notes)
    parts.append("")
    parts.append(metrics_table(summary.metrics_rows, summary.knn_accuracy_k))
    if summary.untrained:
        parts.append("")
        parts.append(untrained_banner())
    parts.append(rule)
    return "\n".join(parts)

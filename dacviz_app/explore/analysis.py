"""Analysis of a cache by any column, from what precompute stored (no Dash): the confusion of
the k-NN votes, the agreement of two representations' neighbours, trust in a 2D/3D view,
filters, search, selection summaries and the CSV export.

Every number here is recomputable from the cache with numpy and scikit-learn; each function
says its space, distance, k and sample.

- k-NN vote (``metrics.vote_predictions``): each clip's value of a column is predicted by majority vote
  of its k nearest other clips in the full space (cosine, the cache's neighbour table); a tie
  goes to the tied value whose member is nearest. k = the metrics' k (``metrics.KNN_ACCURACY_K``
  or fewer for a tiny cache), so the confusion's accuracy is the metrics table's k-NN accuracy.
- Agreement of two representations (``agreement``): per clip, the Jaccard index of its k
  nearest neighbours in each, |A ∩ B| / |A ∪ B| (1: the same k clips, 0: none shared).
- Trust (``trust_scores``): ``sklearn.manifold.trustworthiness`` of a view against its full
  space, and continuity (the same with the roles swapped), k = TRUST_K, on a seeded sample of at
  most TRUST_SAMPLE clips; the full space is L2-normalised first, so its Euclidean ranks are the
  cosine ranks the neighbours use.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

import numpy as np

from dacviz_app.cache import Cache
from dacviz_app.cache.paths import COMPUTED_CLIP_COLUMNS
from dacviz_app.embedding.metrics import KNN_ACCURACY_K, encode_labels, vote_predictions
from dacviz_app.embedding.probes import controlled_chance, controlled_predictions

AGREEMENT_K = 10
AGREEMENT_BINS = (0.0, 0.2, 0.4, 0.6, 0.8)  # lower edges; the last bin holds 0.8..1
TRUST_K = 10
TRUST_SAMPLE = 5_000
FIND_LIMIT = 500
SUBSET_SAMPLE = 5_000  # the filtered clips scored on request: at most this many (seeded sample)
FILTER_SEPARATOR = "="


# ----------------------------------------------------------------------------- k-NN votes
def column_codes(cache: Cache, column: str) -> tuple[list[str], np.ndarray]:
    """(the column's distinct values in sorted order, (n_clips,) int64 codes into them): the
    coding the metrics use (``metrics.encode_labels``)."""
    values = [str(v) for v in cache.clips[column]]
    return sorted(set(values)), encode_labels(values)


def confusion(cache: Cache, rep: str, column: str, control: str | None = None) -> dict:
    """The confusion of the k-NN votes for ``column`` in ``rep``'s full space; with
    ``control`` (another column), each clip's voters are its k nearest clips of a *different*
    ``control`` value (``probes.controlled_predictions``; a clip with none is not counted).

    Returns {"column", "representation", "control", "k", "names": [value], "counts": (c, c)
    int64 (row: the true value, column: the voted one), "per_class": [accuracy of each true
    value], "support": [clips of each value counted], "accuracy", "chance", "n_scored"} (chance:
    the share of the most frequent value; with a control, ``probes.controlled_chance``)."""
    k = confusion_k(cache)
    names, codes, predicted = votes(cache, rep, column, control)
    scored = predicted >= 0
    c = len(names)
    counts = np.bincount(codes[scored] * c + predicted[scored], minlength=c * c).reshape(c, c)
    support = counts.sum(axis=1)
    per_class = np.diag(counts) / np.maximum(support, 1)
    n = max(int(scored.sum()), 1)
    chance = float(support.max() / n) if control is None else \
        float(np.nanmean(controlled_chance(codes, column_codes(cache, control)[1])[scored]))
    return {"column": column, "representation": rep, "control": control, "k": k, "names": names,
            "counts": counts, "per_class": per_class.tolist(), "support": support.tolist(),
            "accuracy": float(np.trace(counts) / n), "chance": chance, "n_scored": int(scored.sum())}


def votes(cache: Cache, rep: str, column: str, control: str | None = None
          ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(the column's values, (n_clips,) true codes, (n_clips,) codes the k nearest vote for, -1
    where no voter is eligible) in ``rep``'s full space, k = ``confusion_k``; with ``control``,
    the voters are the nearest clips of another ``control`` value (from the whole table)."""
    k = confusion_k(cache)
    names, codes = column_codes(cache, column)
    index, _distance = cache.neighbours(rep)
    if control is not None:
        return names, codes, controlled_predictions(np.asarray(index), codes,
                                                    column_codes(cache, control)[1], k)
    return names, codes, vote_predictions(np.asarray(index[:, :k]), codes, k)


def confusion_k(cache: Cache) -> int:
    """The k of the votes: the metrics' k (the same accuracy as the metrics table)."""
    return int(cache.metrics_params.get("knn_accuracy_k") or min(KNN_ACCURACY_K, cache.knn_k))


def confusion_cell(cache: Cache, rep: str, column: str, true_value: str, voted_value: str,
                   control: str | None = None) -> list[int]:
    """The clips whose ``column`` is ``true_value`` and whose k nearest voted ``voted_value``
    (``confusion``'s cell, ``control`` as there), ascending; [] for a value the column does not
    have."""
    names, codes, predicted = votes(cache, rep, column, control)
    if true_value not in names or voted_value not in names:
        return []
    hit = (codes == names.index(true_value)) & (predicted == names.index(voted_value))
    return np.flatnonzero(hit).tolist()


# ----------------------------------------------------------------------------- agreement
def jaccard(index_a: np.ndarray, index_b: np.ndarray, k: int) -> np.ndarray:
    """(n, >=k) and (n, >=k) neighbour indices -> (n,) float32 Jaccard index of each row's
    first k: |A ∩ B| / |A ∪ B| = s / (2k - s), s the number of clips in both."""
    a, b = np.asarray(index_a)[:, :k], np.asarray(index_b)[:, :k]
    both = np.sort(np.concatenate([a, b], axis=1), axis=1)  # a row's ids are distinct in each
    shared = (both[:, 1:] == both[:, :-1]).sum(axis=1)
    return (shared / (2 * k - shared)).astype(np.float32)


def agreement(cache: Cache, rep_a: str, rep_b: str, k: int = AGREEMENT_K) -> np.ndarray:
    """(n_clips,) float32: per clip, the Jaccard index of its k nearest neighbours (cosine, full
    space) in ``rep_a`` and in ``rep_b``."""
    k = min(k, cache.knn_k)
    return jaccard(cache.neighbours(rep_a)[0], cache.neighbours(rep_b)[0], k)


def agreement_bin_names() -> list[str]:
    """'0–0.2' ... '0.8–1': the names of the agreement colour groups, low first."""
    edges = list(AGREEMENT_BINS) + [1.0]
    return [f"{lo:g}–{hi:g}" for lo, hi in zip(edges[:-1], edges[1:])]


def agreement_bins(values: np.ndarray) -> np.ndarray:
    """(n,) Jaccard values -> (n,) int bin numbers into ``agreement_bin_names``."""
    return (np.searchsorted(np.asarray(AGREEMENT_BINS[1:]), values, side="right")).astype(np.int64)


# ----------------------------------------------------------------------------- trust
def trust_scores(full: np.ndarray, coords: np.ndarray, seed: int, k: int = TRUST_K,
                 sample: int = TRUST_SAMPLE, among: np.ndarray | None = None) -> dict:
    """Trustworthiness and continuity of ``coords`` ((n, 2|3)) against ``full`` ((n, dim)), on a
    seeded sample of at most ``sample`` clips (the same rows of both), drawn from ``among``
    (clip ids: the clips a view draws, e.g. a 3D view's fitted sample) or from all clips.

    Returns {"trustworthiness", "continuity", "k", "n"}; k is lowered to (n - 1) // 2 for a tiny
    collection (sklearn needs k < n / 2), and both scores are None below 3 clips."""
    from sklearn.manifold import trustworthiness

    pool = np.arange(len(full)) if among is None else np.sort(np.asarray(among, dtype=np.int64))
    rows = pool[trust_sample(len(pool), seed, sample)]
    n = len(rows)
    k = min(k, (n - 1) // 2)
    if k < 1:
        return {"trustworthiness": None, "continuity": None, "k": k, "n": n}
    x = np.asarray(full[rows], dtype=np.float64)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)  # Euclidean ranks = cosine ranks
    y = np.asarray(coords[rows], dtype=np.float64)
    return {"trustworthiness": float(trustworthiness(x, y, n_neighbors=k)),
            "continuity": float(trustworthiness(y, x, n_neighbors=k)), "k": k, "n": n}


def trust_sample(n_clips: int, seed: int, sample: int = TRUST_SAMPLE) -> np.ndarray:
    """The clips the trust scores use: all up to ``sample``, else a seeded sample, ascending."""
    if n_clips <= sample:
        return np.arange(n_clips)
    return np.sort(np.random.default_rng(seed).choice(n_clips, size=sample, replace=False))


# ----------------------------------------------------------------------------- a subset's metrics
def subset_metrics(cache: Cache, rep: str, column: str, keep: np.ndarray, views: tuple[str, ...]) -> dict:
    """The metrics of the clips ``keep`` ((n_clips,) bool) alone, scored by ``column``, in
    ``rep``'s full space and each of ``views``: the k nearest are searched among those clips
    only (full space: cosine, ``sklearn.neighbors.NearestNeighbors`` brute force; views:
    Euclidean), at most SUBSET_SAMPLE clips (a seeded sample beyond). Returns {"n", "sampled",
    "k", "rows": [{"space", "dim", **metrics.cluster_metrics}]}."""
    from dacviz_app.embedding.metrics import cluster_metrics, euclidean_knn_index, nearest_others

    ids = np.flatnonzero(keep)
    sampled = len(ids) > SUBSET_SAMPLE
    if sampled:
        ids = np.sort(np.random.default_rng(cache.seed).choice(ids, SUBSET_SAMPLE, replace=False))
    codes = encode_labels([str(cache.clips[column][i]) for i in ids])
    k = min(confusion_k(cache), len(ids) - 1)
    out = {"n": int(keep.sum()), "sampled": sampled, "k": k, "rows": []}
    if k < 1:
        return out
    x = np.asarray(cache.embedding(rep)[ids], dtype=np.float32)
    out["rows"].append({"space": "full", "dim": int(x.shape[1]),
                        **cluster_metrics(x, codes, nearest_others(x, k, "cosine"), cache.seed)})
    for view in views:
        coords = np.asarray(cache.projection(rep, view)[ids])
        out["rows"].append({"space": view, "dim": int(coords.shape[1]),
                            **cluster_metrics(coords, codes, euclidean_knn_index(coords, k), cache.seed)})
    return out


# ----------------------------------------------------------------------------- filter, search
def filter_choices(cache: Cache, columns: list[str]) -> list[str]:
    """'column=value' for every value of the categorical ``columns`` (the filter's options)."""
    out = []
    for column in columns:
        values = sorted({str(v) for v in cache.clips[column]})
        out += [f"{column}{FILTER_SEPARATOR}{v}" for v in values]
    return out


def parse_filters(cache: Cache, columns: list[str], chosen) -> dict[str, set[str]]:
    """Untrusted 'column=value' strings -> {column: {values}} for the given ``columns`` (the
    longest column name that prefixes the item wins, so a '=' in a name or a value is read
    right); values are not checked here (``views.groups_key`` keeps only real choices)."""
    out: dict[str, set[str]] = {}
    if not isinstance(chosen, list):
        return out
    by_length = sorted(columns, key=len, reverse=True)
    for item in chosen[:1000]:
        if not isinstance(item, str):
            continue
        column = next((c for c in by_length if item.startswith(c + FILTER_SEPARATOR)), None)
        if column is not None:
            out.setdefault(column, set()).add(item[len(column) + 1:])
    return out


def filter_mask(cache: Cache, filters: dict[str, set[str]]) -> np.ndarray | None:
    """(n_clips,) bool: the clips whose value is one of the chosen ones in every filtered column
    (OR within a column, AND across columns); None without a filter."""
    if not filters:
        return None
    keep = np.ones(cache.n_clips, dtype=bool)
    for column, values in filters.items():
        keep &= np.isin(np.asarray([str(v) for v in cache.clips[column]], dtype=object),
                        np.asarray(sorted(values), dtype=object))
    return keep


FIND_PART_COLUMN = "source"  # the file name: a part of it is enough, when no column matches whole
@dataclass(frozen=True)
class FindResult:
    """What the find box found: ``clips`` ascending (at most the limit asked), ``total`` before
    the limit, and ``matched``: [(column, value shown, count)] in the order searched ('id'
    first), each column that matched and how many clips it gave; ``searched``: the columns
    looked in."""
    clips: list[int]
    total: int
    matched: list[tuple[str, str, int]]
    searched: tuple[str, ...] = ()  # the columns looked in

    def summary(self) -> str:
        """"13 found: id 7 (1) · label '7' (12)"."""
        if not self.total:
            return f"nothing found (searched {', '.join(self.searched)})"
        parts = " · ".join(f"{column} {value} ({n:,})" for column, value, n in self.matched)
        more = f", the first {len(self.clips):,} shown" if len(self.clips) < self.total else ""
        return f"{self.total:,} found{more}: {parts}"


def find_columns(cache: Cache) -> list[str]:
    """The columns the find box searches, after the id: the label, speaker, file name and every
    column the collection brought (not the ones dacviz computes: duration, audio, rate, channels)."""
    return ["label", "speaker", FIND_PART_COLUMN] + \
        [c for c in cache.clips if c not in COMPUTED_CLIP_COLUMNS]


def find_clips(cache: Cache, text, limit: int = FIND_LIMIT) -> FindResult:
    """Clips that ``text`` names: the id (digits) and the whole value of every other column at
    once (case-insensitive: the label "7", the speaker "us-m1", a metadata value), or, when no
    column holds it whole, a part of the file name. 'column=value' (or 'column:value') searches
    that column only. A clip matched by several columns counts once; at most ``limit`` clips,
    ascending."""
    text = str(text or "").strip()[:200]
    if not text:
        return FindResult([], 0, [])
    columns = ["id", *find_columns(cache)]
    for separator in ("=", ":"):
        name, found, value = text.partition(separator)
        if found and name.strip() in columns and value.strip():
            columns, text = [name.strip()], value.strip()
            break
    needle = text.lower()
    hits = np.zeros(cache.n_clips, dtype=bool)
    matched = []

    def lowered(column):
        return np.char.lower(np.asarray([str(v) for v in cache.clips[column]], dtype=str))

    for column in columns:
        if column == "id":
            clip = cache.clip_or_none(text) if text.isdigit() else None
            mask = np.zeros(cache.n_clips, dtype=bool)
            if clip is not None:
                mask[clip] = True
        else:
            mask = lowered(column) == needle
        if mask.any():
            matched.append((column, text if column == "id" else repr(text), int(mask.sum())))
            hits |= mask
    if not hits.any() and FIND_PART_COLUMN in columns:
        hits = np.char.find(lowered(FIND_PART_COLUMN), needle) >= 0
        if hits.any():
            matched.append((FIND_PART_COLUMN, f"contains {text!r}", int(hits.sum())))
    ids = np.flatnonzero(hits)
    return FindResult(ids[:limit].tolist(), int(ids.size), matched, tuple(columns))


# ----------------------------------------------------------------------------- selections
def selection_summary(cache: Cache, clips: list[int], columns: list[str],
                      top: int = 6) -> list[tuple[str, list, int]]:
    """Per column, the most frequent values among ``clips``: [(column, [(value, count)], more)],
    at most ``top`` values each, most frequent first (ties by value); ``more``: how many other
    values the column has among them (the page says "+3 more")."""
    out = []
    for column in columns:
        counts: dict[str, int] = {}
        values = cache.clips[column]
        for clip in clips:
            value = str(values[clip])
            counts[value] = counts.get(value, 0) + 1
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        out.append((column, ranked[:top], max(len(ranked) - top, 0)))
    return out


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# a spreadsheet may split a text cell at any of these (the comma, and the semicolon of locales
# whose decimal mark is a comma, and tab or pipe when asked); a formula may start after one
CELL_SEPARATORS = re.compile(r"([,;\t|]\s*)(?=[=+\-@])")


def _cell(value) -> str:
    """A metadata value (or a column name) for a CSV cell: a text that a spreadsheet would run
    as a formula gets a leading quote, and so does every part of it that starts after a
    separator ('x;=cmd' -> "x;'=cmd": in a ';' locale the second cell reads '=cmd as text);
    numbers are written as they are."""
    if not isinstance(value, str):
        return str(value)
    value = CELL_SEPARATORS.sub(r"\1'", value)
    return "'" + value if value.startswith(FORMULA_START) else value


def export_csv(cache: Cache, clips: list[int], rep: str, clicked: int | None,
               views: tuple[str, ...]) -> str:
    """The CSV of ``clips``: id, file, every metadata column, the coordinates of ``rep`` in each
    of ``views``, and the cosine distance to ``clicked`` in ``rep``'s full space (empty without
    a clicked clip). Text values that start like a spreadsheet formula get a leading quote."""
    columns = [c for c in cache.clips if c not in ("id", "audio")]
    header = ["id"] + [_cell(c) for c in columns]
    coords = {}
    for view in views:
        xyz = np.asarray(cache.projection(rep, view)[clips])
        coords[view] = xyz
        header += [f"{rep}_{view}_{axis}" for axis in "xyz"[:cache.projection(rep, view).shape[1]]]
    header.append(f"cosine_distance_to_clip_{clicked}" if clicked is not None else "cosine_distance")
    distances = cosine_distances_to(cache, rep, clicked, clips)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row, clip in enumerate(clips):
        line = [clip] + [_cell(cache.clips[c][clip]) for c in columns]
        for view in views:
            line += [f"{v:.6g}" for v in coords[view][row]]
        line.append("" if distances is None else f"{distances[row]:.6f}")
        writer.writerow(line)
    return out.getvalue()


def cosine_distances_to(cache: Cache, rep: str, clicked: int | None, clips: list[int]) -> np.ndarray | None:
    """(len(clips),) float64 cosine distances from ``clicked`` to ``clips`` in ``rep``'s full
    space, as the neighbour table measures them; None without a clicked clip."""
    if clicked is None:
        return None
    x = np.asarray(cache.embedding(rep)[clips], dtype=np.float64)
    q = np.asarray(cache.embedding(rep)[clicked], dtype=np.float64)
    norms = np.maximum(np.linalg.norm(x, axis=1) * np.linalg.norm(q), 1e-12)
    return 1.0 - (x @ q) / norms

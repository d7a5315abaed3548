"""What the codec keeps, measured once at precompute (probes.json): for every scored column,
linear probes and k-NN accuracy per representation, plain and with each other scored column
controlled for; which scored columns are (nearly) the same partition; how much the geometry
changes between depths (linear CKA, Jaccard of neighbour sets). The maths is
``embedding/probes.py`` (its docstring holds every definition); this module chooses what to
score and bounds the cost.

Bounds: the probed columns are the first PROBED_COLUMNS scored columns (label first); a probe
fits at most probes.MAX_CLIPS clips (a seeded stratified sample above, recorded); CKA uses at
most probes.MAX_CLIPS clips (seeded). At the demo (120 clips, 16 representations) the step takes
~30 s on 2 cores (docs/precompute.md#what-the-codec-keeps).
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Callable

import numpy as np

from dacviz_app import cache as cache_format
from dacviz_app.cache import CachePaths, read_json
from dacviz_app.embedding import probes
from dacviz_app.embedding.metrics import KNN_ACCURACY_K, encode_labels, knn_vote_accuracy

PROBED_COLUMNS = 4  # columns probed (and controlled for): label first, then the next scored ones
PROBE_FOLDS = 5
PROBE_BOOTSTRAP = 1000


def confound_rows(columns: dict[str, list], scored: list[str]) -> list[dict]:
    """One row per pair of scored columns: {a, b, ami, cramers_v, confounded, sentence}."""
    rows = []
    for i, a in enumerate(scored):
        for b in scored[i + 1:]:
            ca, cb = encode_labels(columns[a]), encode_labels(columns[b])
            agreement = probes.partition_agreement(ca, cb)
            rows.append({"a": a, "b": b, "ami": agreement["ami"], "cramers_v": agreement["cramers_v"],
                         "confounded": probes.confounded(ca, cb),
                         "sentence": probes.confound_sentence(a, b, ca, cb)})
    return rows


def probe_rows(x: np.ndarray, knn_index: np.ndarray, rep: str, columns: dict[str, list],
               probed: list[str], seed: int) -> list[dict]:
    """The probes of one representation ((n_clips, dim) float32 ``x``, its (n_clips, K)
    neighbour table): for each probed column, plain (control None) and controlled for each
    other probed column."""
    codes = {c: encode_labels(columns[c]) for c in probed}
    k = min(KNN_ACCURACY_K, knn_index.shape[1])  # a tiny collection has fewer neighbours (as the metrics)
    rows = []
    for column in probed:
        for control in [None] + [c for c in probed if c != column]:
            groups = None if control is None else codes[control]
            probe = probes.linear_probe(x, codes[column], groups=groups, n_splits=PROBE_FOLDS, seed=seed,
                                        n_boot=PROBE_BOOTSTRAP)
            if control is None:
                knn = {"accuracy": knn_vote_accuracy(knn_index, codes[column], k),
                       "chance": float(np.bincount(codes[column]).max() / len(codes[column])),
                       "n_scored": len(codes[column]), "n_short": 0}
            else:
                knn = probes.controlled_knn_accuracy(knn_index, codes[column], codes[control], k)
            rows.append({"representation": rep, "column": column, "control": control,
                         "probe": probe, "knn": {key: knn[key] for key in
                                                 ("accuracy", "chance", "n_scored", "n_short")}})
    return rows


def geometry(embeddings: dict[str, np.ndarray], depth_reps: list[str], paths: CachePaths,
             k: int, seed: int) -> dict:
    """Linear CKA between every pair of representations (manifest order) and the mean
    Jaccard@k of neighbour sets between consecutive depths."""
    names = list(embeddings)
    n = len(embeddings[names[0]])
    rows = probes.cka_rows(n, probes.MAX_CLIPS, seed)  # each representation's sample only in memory
    matrix = probes.cka_matrix([np.asarray(embeddings[r])[rows] for r in names], seed=seed)
    tables = [np.load(paths.array(r, "knn_index"), mmap_mode="r") for r in depth_reps]
    return {"cka": {"representations": names, "matrix": np.round(matrix, 6).tolist(),
                    "n": min(n, probes.MAX_CLIPS), "seed": seed},
            "depth_jaccard": {"representations": depth_reps, "k": k,
                              "values": [round(v, 6) for v in probes.jaccard_consecutive(tables, k)]}}


def codec_measures_all(embeddings: Mapping[str, np.ndarray], columns: dict[str, list], scored: list[str],
                       depth_reps: list[str], paths: CachePaths, seed: int, k: int,
                       say: Callable[[str], None] = print, steps=None) -> None:
    """Write probes.json (``cache.write_probes``): confounds, probes and geometry.
    ``scored``: the scored columns (metrics.json's, label first); ``depth_reps``: DAC's
    representations by depth, z_q1 ... z (the full depth last). With ``steps``
    (``downstream.Steps``), a representation whose probe key is recorded keeps its rows from the
    probes.json on disk, and the geometry its values when the depths' key is recorded."""
    from threadpoolctl import threadpool_limits

    probed = scored[:PROBED_COLUMNS]
    previous = read_json(paths.probes) if steps is not None and paths.probes.is_file() else {}
    fresh = (lambda result: steps.fresh(result, paths.probes)) if steps is not None else (lambda _: False)
    if all(fresh(f"probes:{rep}") for rep in embeddings) and fresh("geometry"):
        return
    rows = []
    for rep in embeddings:
        kept = [r for r in previous.get("rows", []) if r.get("representation") == rep] \
            if fresh(f"probes:{rep}") else []
        if kept:
            rows += kept
            continue
        started = time.perf_counter()
        index = np.load(paths.array(rep, "knn_index"), mmap_mode="r")
        with threadpool_limits(limits=1):  # small matrices: one BLAS thread is 4x faster than two here
            rows += probe_rows(embeddings[rep], np.asarray(index), rep, columns, probed, seed)
        say(f"  {rep:13s} probes {time.perf_counter() - started:7.2f} s")
    params = {"probe": probes.__doc__.strip(), "knn_k": min(KNN_ACCURACY_K, k), "folds": PROBE_FOLDS,
              "bootstrap": PROBE_BOOTSTRAP, "interval": "95 % percentile bootstrap over clips",
              "probed_columns": probed, "max_clips": probes.MAX_CLIPS,
              "confound_threshold": probes.CONFOUND_THRESHOLD, "seed": seed}
    shape = previous.get("geometry") if fresh("geometry") else None
    cache_format.write_probes(paths, params=params, confounds=confound_rows(columns, scored), rows=rows,
                              geometry=shape or geometry(embeddings, depth_reps, paths, k, seed))
    if steps is not None:
        for result in [f"probes:{rep}" for rep in embeddings] + ["geometry"]:
            if not fresh(result):
                steps.done(result)

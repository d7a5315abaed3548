"""What a representation encodes beyond the clusters: controlled k-NN, linear probes, how two label
columns overlap, and how alike two representations are. Pure numpy/scipy/scikit-learn.

- controlled k-NN accuracy of column A given column B: leave-one-group-out k-NN. Each clip's label
  in A is predicted by majority vote (a tie to the nearest tied one, as ``metrics.vote_predictions``)
  of its k nearest other clips *whose value of B differs from its own* (cosine, from the cache's
  neighbour table: the row is walked closest first, same-B clips skipped, the first k kept). A clip
  with fewer than k such clips in its row votes with those it has and is counted "short"; a clip
  with none is not scored. Its chance level: for each scored clip, the share of the most frequent
  A value among the clips with a different B value (the accuracy of always guessing that value),
  averaged over the scored clips.
- linear probe: a multinomial logistic regression (StandardScaler, then the training fold's span
  by a PCA that keeps every component (a rotation: no prediction changes), then
  LogisticRegression, C=1.0, the newton-cg solver: the optimum lbfgs reaches, ~10x sooner here)
  predicting A; out-of-fold predictions by GroupKFold over B when groups are given (A values seen
  only in held-out groups are still scored, so accuracy can fall *below* chance), else by
  StratifiedKFold (shuffled, seeded); a held-out group may also lie along directions the training
  clips barely vary in, which standardising magnifies. n_splits is reduced to the smallest class
  count (or the number of groups), at least 2. Chance: the share of the most frequent A value.
  Interval: 95 % percentile bootstrap over clips of the out-of-fold correctness (a resampled mean
  of n 0/1 values is Binomial(n, accuracy) / n, drawn directly).
  Above max_clips clips: a seeded stratified sample.
- partition agreement: adjusted mutual information (``sklearn.metrics.adjusted_mutual_info_score``)
  and Cramér's V = sqrt(chi2 / (n (min(r, c) - 1))) from the r x c contingency table (Pearson
  chi2, no continuity or bias correction). AMI is 0 at chance agreement and can be negative (a
  balanced crossing shares less than chance). Two columns are *confounded* when either is >= 0.9.
- linear CKA (Kornblith et al. 2019) of (n, d1) X and (n, d2) Y on the same clips, columns centred:
  ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F) (feature form), equal to <K, L>_F / (||K||_F ||L||_F)
  with K = X X^T, L = Y Y^T (Gram form, used when n < max(d1, d2)). In float64; 1 for the same
  representation, invariant to rotations and isotropic scaling of either. Above max_clips clips:
  a seeded sample (the same clips for every representation).
- Jaccard@k of two neighbour tables: per clip |A ∩ B| / |A ∪ B| of its two sets of k nearest
  others, averaged over the clips.
"""
from __future__ import annotations

import numpy as np

CONFOUND_THRESHOLD = 0.9
MAX_CLIPS = 5000


def _vote(neighbours: np.ndarray, valid: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """(n, k) neighbour indices closest first, (n, k) bool which are used, (n,) codes -> (n,) the
    code the used neighbours vote for (most votes; a tie to the nearest tied one; -1 if none)."""
    n, k = neighbours.shape
    if k == 0:
        return np.full(n, -1, dtype=np.int64)
    votes = np.where(valid, codes[np.where(valid, neighbours, 0)], -1)  # (n, k)
    counts = ((votes[:, :, None] == votes[:, None, :]) & valid[:, None, :]).sum(axis=2)
    score = np.where(valid, counts * (k + 1) - np.arange(k)[None, :], -1)
    best = votes[np.arange(n), score.argmax(axis=1)]
    return np.where(valid.any(axis=1), best, -1)


def controlled_chance(codes: np.ndarray, control_codes: np.ndarray) -> np.ndarray:
    """(n,) int codes of A and of B -> (n,) per clip the share of the most frequent A value among
    the clips with a different B value (nan where every clip shares its B value)."""
    _, a = np.unique(codes, return_inverse=True)
    _, b = np.unique(control_codes, return_inverse=True)
    table = np.zeros((b.max() + 1, a.max() + 1), dtype=np.int64)  # (B values, A values)
    np.add.at(table, (b, a), 1)
    others = table.sum(axis=0)[None, :] - table  # per B value: A counts among the other B values
    totals = others.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = others.max(axis=1) / totals
    return np.where(totals > 0, share, np.nan)[b]


def _controlled_result(picked: np.ndarray, valid: np.ndarray, codes: np.ndarray,
                       control_codes: np.ndarray, k: int) -> dict:
    """(n, k) chosen neighbours and which are used -> the controlled k-NN result dict."""
    scored = valid.any(axis=1)
    n_scored = int(scored.sum())
    result = {"accuracy": None, "n_scored": n_scored,
              "n_short": int((scored & (valid.sum(axis=1) < k)).sum()), "k": int(k), "chance": None}
    if n_scored:
        predicted = _vote(picked, valid, codes)
        result["accuracy"] = float(np.mean(predicted[scored] == codes[scored]))
        result["chance"] = float(np.mean(controlled_chance(codes, control_codes)[scored]))
    return result


def controlled_knn_accuracy(neighbour_index: np.ndarray, codes: np.ndarray,
                            control_codes: np.ndarray, k: int = 5) -> dict:
    """k-NN accuracy of ``codes`` (A) with each clip's neighbours taken only among the clips whose
    ``control_codes`` (B) value differs from its own (see the module docstring).

    Args:
        neighbour_index: (n, K) int nearest other clips, closest first, self excluded (the cache's
            table); only these K are walked, so a clip whose row is mostly its own B value is short.
        codes, control_codes: (n,) int codes of A and B.
    Returns:
        {"accuracy": float | None, "n_scored": int, "n_short": int, "k": int,
         "chance": float | None} (None when no clip has an eligible neighbour).
    """
    picked, valid = controlled_neighbours(neighbour_index, control_codes, k)
    return _controlled_result(picked, valid, np.asarray(codes), np.asarray(control_codes), k)


def controlled_neighbours(neighbour_index: np.ndarray, control_codes: np.ndarray, k: int
                          ) -> tuple[np.ndarray, np.ndarray]:
    """(n, K) neighbour table, (n,) control codes -> ((n, k) the first k neighbours of each clip
    whose control value differs from its own, (n, k) bool which of them exist)."""
    index = np.asarray(neighbour_index, dtype=np.int64)
    control = np.asarray(control_codes)
    eligible = (index >= 0) & (control[np.maximum(index, 0)] != control[:, None])  # (n, K)
    rank = np.cumsum(eligible, axis=1)  # (n, K) 1-based rank among the eligible
    keep = eligible & (rank <= k)
    order = np.argsort(~keep, axis=1, kind="stable")[:, :k]  # kept columns first, in row order
    return np.take_along_axis(index, order, axis=1), np.take_along_axis(keep, order, axis=1)


def controlled_predictions(neighbour_index: np.ndarray, codes: np.ndarray, control_codes: np.ndarray,
                           k: int = 5) -> np.ndarray:
    """(n,) the code of A each clip's controlled neighbours vote for (-1: none eligible)."""
    picked, valid = controlled_neighbours(neighbour_index, control_codes, k)
    return _vote(picked, valid, np.asarray(codes))


def controlled_knn_accuracy_exact(vectors: np.ndarray, codes: np.ndarray,
                                  control_codes: np.ndarray, k: int = 5) -> dict:
    """The same as ``controlled_knn_accuracy`` with each clip's k nearest different-B clips found
    among all clips by cosine distance ((n, dim) ``vectors``, ties to the lower clip): no short
    rows but those with fewer than k different-B clips. O(n^2) memory: small n only."""
    x = np.asarray(vectors, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-300)
    codes, control = np.asarray(codes), np.asarray(control_codes)
    distance = 1.0 - x @ x.T  # (n, n)
    n = len(x)
    picked = np.zeros((n, k), dtype=np.int64)
    valid = np.zeros((n, k), dtype=bool)
    for i in range(n):
        others = np.flatnonzero(control != control[i])
        nearest = others[np.argsort(distance[i, others], kind="stable")[:k]]
        picked[i, :len(nearest)], valid[i, :len(nearest)] = nearest, True
    return _controlled_result(picked, valid, codes, control, k)


def stratified_sample(codes: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """(n,) codes -> (size,) sorted clip positions, each value's share kept to within one clip
    (every (n/size)-th clip of a seeded shuffle sorted by value)."""
    codes = np.asarray(codes)
    shuffled = np.random.default_rng(seed).permutation(len(codes))
    by_value = shuffled[np.argsort(codes[shuffled], kind="stable")]
    return np.sort(by_value[(np.arange(size) * len(codes)) // size])


def _probe_splits(codes: np.ndarray, groups: np.ndarray | None, n_splits: int, seed: int):
    """-> (list of (train, test) positions, cv name) or (None, reason)."""
    from sklearn.model_selection import GroupKFold, StratifiedKFold

    if groups is not None:
        n_groups = len(np.unique(groups))
        if n_groups < 2:
            return None, "one control value only: nothing to hold out"
        folds = GroupKFold(n_splits=min(n_splits, n_groups))
        return list(folds.split(codes, codes, groups)), "GroupKFold by control"
    smallest = int(np.bincount(np.unique(codes, return_inverse=True)[1]).min())
    if smallest < 2:
        return None, "a value with a single clip: no stratified split possible"
    folds = StratifiedKFold(n_splits=min(n_splits, smallest), shuffle=True, random_state=seed)
    return list(folds.split(codes, codes)), "StratifiedKFold"


def linear_probe(vectors: np.ndarray, codes: np.ndarray, groups: np.ndarray | None = None,
                 n_splits: int = 5, seed: int = 0, n_boot: int = 1000,
                 max_clips: int = MAX_CLIPS) -> dict:
    """Out-of-fold accuracy of a logistic-regression probe predicting (n,) ``codes`` from (n, dim)
    ``vectors`` (see the module docstring), with optional (n,) ``groups`` (B codes) to hold out.

    Returns:
        {"accuracy", "chance", "ci_low", "ci_high": float, "n", "n_splits": int, "cv": str,
         "interval": "bootstrap over clips, 95 %", "sample": int | None, "reason": None}; where no
        probe is possible (one value, or no valid split) the numbers are None and "reason" says why.
    """
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, codes = np.asarray(vectors, dtype=np.float64), np.asarray(codes)
    groups = None if groups is None else np.asarray(groups)
    sample = None
    if len(codes) > max_clips:
        keep = stratified_sample(codes, max_clips, seed)
        x, codes, sample = x[keep], codes[keep], int(max_clips)
        groups = None if groups is None else groups[keep]
    result = {"accuracy": None, "chance": None, "ci_low": None, "ci_high": None, "n": len(codes),
              "n_splits": None, "cv": None, "interval": "bootstrap over clips, 95 %",
              "sample": sample, "reason": None}
    values, counts = np.unique(codes, return_counts=True)
    if len(values) < 2:
        result["reason"] = "one value only: nothing to predict"
        return result
    splits, cv = _probe_splits(codes, groups, n_splits, seed)
    if splits is None:
        result["reason"] = cv
        return result
    predicted = np.empty_like(codes)
    for train, test in splits:
        if len(np.unique(codes[train])) == 1:  # a fold that sees one value predicts it
            predicted[test] = codes[train][0]
            continue
        # the training fold's own span (PCA keeping every component, not whitened: an
        # orthogonal projection) changes no prediction of an L2-regularised linear model, whose
        # weights lie in that span; with fewer clips than dimensions it makes the fit fast
        rank = min(len(train), x.shape[1])
        model = make_pipeline(StandardScaler(), PCA(n_components=rank, svd_solver="full"),
                              LogisticRegression(C=1.0, solver="newton-cg", max_iter=2000))
        predicted[test] = model.fit(x[train], codes[train]).predict(x[test])
    accuracy = float(np.mean(predicted == codes))
    resampled = np.random.default_rng(seed).binomial(len(codes), accuracy, n_boot) / len(codes)
    result.update(accuracy=accuracy, chance=float(counts.max() / len(codes)), n_splits=len(splits),
                  cv=cv, ci_low=float(np.percentile(resampled, 2.5)),
                  ci_high=float(np.percentile(resampled, 97.5)))
    return result


def partition_agreement(codes_a: np.ndarray, codes_b: np.ndarray) -> dict:
    """(n,) codes of two columns -> {"ami": float, "cramers_v": float | None (one column has one
    value), "n_a": int, "n_b": int (their numbers of values), "n": int}."""
    from sklearn.metrics import adjusted_mutual_info_score

    _, a = np.unique(np.asarray(codes_a), return_inverse=True)
    _, b = np.unique(np.asarray(codes_b), return_inverse=True)
    table = np.zeros((a.max() + 1, b.max() + 1), dtype=np.float64)
    np.add.at(table, (a, b), 1.0)
    n = len(a)
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / n
    chi2 = float(((table - expected) ** 2 / expected).sum())
    smaller = min(table.shape) - 1
    return {"ami": float(adjusted_mutual_info_score(a, b)),
            "cramers_v": float(np.sqrt(chi2 / (n * smaller))) if smaller else None,
            "n_a": int(table.shape[0]), "n_b": int(table.shape[1]), "n": n}


def confounded(codes_a: np.ndarray, codes_b: np.ndarray, threshold: float = CONFOUND_THRESHOLD) -> bool:
    """Whether AMI or Cramér's V of the two columns is >= ``threshold``."""
    agreement = partition_agreement(codes_a, codes_b)
    return agreement["ami"] >= threshold or (agreement["cramers_v"] or 0.0) >= threshold


def confound_sentence(name_a: str, name_b: str, codes_a: np.ndarray, codes_b: np.ndarray,
                      threshold: float = CONFOUND_THRESHOLD) -> str:
    """A plain sentence on how far the two columns are one partition, with both measures and the
    numbers of values, e.g. "speaker and language are the same partition here (AMI 1.00, Cramér's
    V 1.00): 3 values of speaker, 3 of language"."""
    agreement = partition_agreement(codes_a, codes_b)
    ami, v = agreement["ami"], agreement["cramers_v"]
    if ami >= 0.995 and v is not None and v >= 0.995:
        verdict = "are the same partition here"
    elif ami >= threshold or (v or 0.0) >= threshold:
        verdict = "are confounded here"
    else:
        verdict = "are not confounded here"
    v_text = "n/a" if v is None else f"{v:.2f}"
    return (f"{name_a} and {name_b} {verdict} (AMI {ami:.2f}, Cramér's V {v_text}): "
            f"{agreement['n_a']} values of {name_a}, {agreement['n_b']} of {name_b}")


def _cka_centred(x: np.ndarray, y: np.ndarray, form: str = "auto") -> float:
    """Linear CKA of two column-centred float64 (n, d1), (n, d2) arrays; nan if either is constant."""
    if form == "auto":
        form = "gram" if len(x) < max(x.shape[1], y.shape[1]) else "feature"
    if form == "gram":
        k, l = x @ x.T, y @ y.T  # (n, n)
        cross, norm_x, norm_y = np.sum(k * l), np.linalg.norm(k), np.linalg.norm(l)
    else:
        cross = np.linalg.norm(y.T @ x) ** 2
        norm_x, norm_y = np.linalg.norm(x.T @ x), np.linalg.norm(y.T @ y)
    return float(cross / (norm_x * norm_y)) if norm_x > 0 and norm_y > 0 else float("nan")


def cka_rows(n: int, max_clips: int = MAX_CLIPS, seed: int = 0) -> slice | np.ndarray:
    """The rows CKA reads of n clips: all up to ``max_clips``, else that many, seeded, sorted.
    Taking them from each representation first gives the same CKA with only the sample in memory."""
    if n <= max_clips:
        return slice(None)
    return np.sort(np.random.default_rng(seed).choice(n, max_clips, replace=False))


def _sampled_centred(reps: list[np.ndarray], max_clips: int, seed: int) -> list[np.ndarray]:
    """The same seeded sample of at most max_clips rows from each (n, d) array, centred, float64."""
    n = len(reps[0])
    if any(len(r) != n for r in reps):
        raise ValueError("CKA needs the same clips in every representation")
    rows = cka_rows(n, max_clips, seed)
    out = [np.asarray(r, dtype=np.float64)[rows] for r in reps]
    return [r - r.mean(axis=0, keepdims=True) for r in out]


def linear_cka(x: np.ndarray, y: np.ndarray, max_clips: int = MAX_CLIPS, seed: int = 0,
               form: str = "auto") -> float:
    """Linear CKA in [0, 1] of (n, d1) ``x`` and (n, d2) ``y``, rows the same clips (see the module
    docstring); ``form`` "feature" or "gram" forces one of the two equal forms (default: the cheaper)."""
    cx, cy = _sampled_centred([x, y], max_clips, seed)
    return _cka_centred(cx, cy, form)


def cka_matrix(reps: list[np.ndarray], max_clips: int = MAX_CLIPS, seed: int = 0) -> np.ndarray:
    """m (n, d_i) representations of the same clips -> (m, m) float64 symmetric linear CKA."""
    centred = _sampled_centred(reps, max_clips, seed)
    m = len(centred)
    out = np.ones((m, m), dtype=np.float64)
    for i in range(m):
        for j in range(i, m):
            out[i, j] = out[j, i] = _cka_centred(centred[i], centred[j])
    return out


def jaccard_at_k(table_a: np.ndarray, table_b: np.ndarray, k: int) -> float:
    """Mean over clips of the Jaccard index of the first k entries of two (n, >=k) neighbour
    tables (rows without repeated entries)."""
    both = np.sort(np.concatenate([np.asarray(table_a)[:, :k], np.asarray(table_b)[:, :k]], axis=1), axis=1)
    shared = (both[:, 1:] == both[:, :-1]).sum(axis=1)  # (n,) |A ∩ B|
    return float(np.mean(shared / (2 * k - shared)))


def jaccard_consecutive(index_tables: list[np.ndarray], k: int) -> list[float]:
    """[(n, >=k) tables at depth 1..q] -> [Jaccard@k of table i vs table i+1], q-1 floats."""
    return [jaccard_at_k(a, b, k) for a, b in zip(index_tables[:-1], index_tables[1:])]

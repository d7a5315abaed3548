"""2D and 3D projections of one representation: PCA and t-SNE.

PCA: scikit-learn ``PCA(svd_solver="covariance_eigh")`` (exact; costs one (dim, dim)
covariance, so it stays fast and small at 100k clips). t-SNE: openTSNE on the full-dimensional
vectors with cosine affinities computed from the exact neighbour table (3 x perplexity
neighbours per clip, the table the precompute builds anyway, instead of openTSNE's approximate
Annoy index), perplexity min(30, n-1) as in the seed (lowered to (n-1)/3 when there are too few
clips, openTSNE's rule; the value used is recorded), PCA initialisation, seeded. Gradient: the
FFT interpolation (O(n)) for 2D from FFT_MIN_CLIPS clips up; Barnes-Hut (O(n log n)) below that,
where FFT's fixed grid cost dominates, and for 3D (openTSNE's FFT is 1D/2D only).
"""
from __future__ import annotations

import os

import numpy as np

from dacviz_app.embedding.neighbours import cosine_knn, cosine_knn_among

DEFAULT_PERPLEXITY = 30.0
MAX_PERPLEXITY = 500.0  # 1,500 neighbours a clip: the exact table's width stays bounded
FFT_MIN_CLIPS = 10_000
MAX_3D_POINTS = 20_000  # above this, 3D t-SNE is fitted on a seeded sample (``sample_3d``), the
# rest placed; the 3D views draw that same sample (the cache records it: arrays/sample_3d.npy)
PLACE_K = 10  # sample clips that place each other clip of a large 3D t-SNE


def pca(x: np.ndarray, n_components: int, seed: int = 42
        ) -> tuple[np.ndarray, list[float], dict[str, np.ndarray]]:
    """(n_clips, dim) -> ((n_clips, n_components) float32, explained variance ratio per axis,
    the basis {"mean": (dim,) float64, "components": (axes, dim) float64}: ``pca_place`` puts
    any new vector exactly where this PCA puts it)."""
    from sklearn.decomposition import PCA

    want = n_components
    n_components = min(n_components, x.shape[1], x.shape[0])
    model = PCA(n_components=n_components, svd_solver="covariance_eigh", random_state=seed)
    coords = model.fit_transform(np.asarray(x, dtype=np.float64)).astype(np.float32)
    basis = {"mean": np.asarray(model.mean_, np.float64),
             "components": np.asarray(model.components_, np.float64)}
    return _pad_columns(coords, want), [float(v) for v in model.explained_variance_ratio_], basis


def pca_place(vector: np.ndarray, basis: dict[str, np.ndarray], n_components: int) -> np.ndarray:
    """(dim,) -> (n_components,) float32: where the PCA of ``basis`` puts ``vector`` (its
    ``transform``: centred, projected on the axes; missing axes zero, as ``pca`` pads them)."""
    coords = (np.asarray(vector, np.float64) - basis["mean"]) @ basis["components"].T
    out = np.zeros(n_components, np.float32)
    out[:min(n_components, len(coords))] = coords[:n_components]
    return out


def place_among(coords: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """The inverse-distance-weighted mean of neighbours' map coordinates: how a clip that was
    not fitted (a large 3D t-SNE's rest, a query) is put on a t-SNE map.

    Args:
        coords: (..., k, d) the map coordinates of each point's k nearest fitted clips.
        distance: (..., k) their cosine distances (a distance of 0 puts the point on that clip).
    Returns:
        (..., d) float32.
    """
    weights = 1.0 / np.maximum(np.asarray(distance, np.float64), 1e-6)
    placed = np.einsum("...k,...kd->...d", weights, np.asarray(coords, np.float64))
    return (placed / weights.sum(axis=-1, keepdims=True)).astype(np.float32)


def _pad_columns(coords: np.ndarray, want: int) -> np.ndarray:
    """A 2-D representation asked for 3 PCA axes gets a zero third axis (shape contract)."""
    if coords.shape[1] >= want:
        return coords
    return np.hstack([coords, np.zeros((coords.shape[0], want - coords.shape[1]), np.float32)])


def effective_perplexity(n_clips: int, requested: float = DEFAULT_PERPLEXITY) -> float:
    """The seed's min(30, n-1), further capped at (n-1)/3 so that 3*perplexity neighbours
    exist (openTSNE's own rule)."""
    return float(min(requested, n_clips - 1, (n_clips - 1) / 3.0))


def tsne_neighbour_count(n_clips: int, perplexity: float = DEFAULT_PERPLEXITY) -> int:
    """How many nearest neighbours t-SNE's affinities use: 3 x the effective perplexity
    (openTSNE's rule), at most n_clips - 1."""
    return min(n_clips - 1, int(3 * effective_perplexity(n_clips, perplexity)))


def thread_count() -> int:
    """The threads t-SNE runs on by default: $OMP_NUM_THREADS when it is a positive number (the
    limit a shared machine, or a test worker per core, sets for every OpenMP library; openTSNE
    does not read it itself), else every core."""
    try:
        limit = int(os.environ.get("OMP_NUM_THREADS") or 0)
    except ValueError:
        limit = 0
    return limit if limit > 0 else os.cpu_count() or 1


def tsne(x: np.ndarray, n_components: int, seed: int = 42,
         perplexity: float = DEFAULT_PERPLEXITY, n_jobs: int | None = None,
         neighbours: tuple[np.ndarray, np.ndarray] | None = None,
         sample: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """(n_clips, dim) -> ((n_clips, n_components) float32, parameters used).

    Args:
        sample: 3D only: (n_sample,) sorted clip ids to fit on (``sample_3d``), the others
            placed by their nearest sample clips; None fits every clip.
        neighbours: the exact cosine neighbour table of ``x`` (``neighbours.cosine_knn``):
            ((n_clips, >= k) int32, (n_clips, >= k) float32) with k = tsne_neighbour_count;
            computed here when not given. The affinities use its first k columns, so t-SNE sees
            exactly the neighbours the app shows, with no approximate index in between.
    """
    n = x.shape[0]
    perp = effective_perplexity(n, perplexity)
    k = tsne_neighbour_count(n, perplexity)
    if neighbours is None:
        neighbours = cosine_knn(x, k)
    index, distance = neighbours[0][:, :k], neighbours[1][:, :k]
    method = "fft" if n_components <= 2 and n >= FFT_MIN_CLIPS else "bh"
    info = {"perplexity": perp, "metric": "cosine", "seed": seed, "gradient": method,
            "neighbours": f"exact, {k} per clip", "library": "openTSNE"}
    x = np.asarray(x, dtype=np.float32)
    n_jobs = n_jobs or thread_count()
    if n_components == 3 and sample is not None and len(sample) < n:
        return _tsne_sample_then_place(x, np.asarray(sample), index, distance, perp, seed, n_jobs,
                                       info)
    return _fit(x, index, distance, n_components, perp, seed, method, n_jobs), info


def _fit(x: np.ndarray, index: np.ndarray, distance: np.ndarray, n_components: int,
         perplexity: float, seed: int, method: str, n_jobs: int) -> np.ndarray:
    """openTSNE with affinities from a given (n, k) neighbour table, PCA initialisation as
    ``openTSNE.TSNE.fit`` does it; -> (n, n_components) float32."""
    from openTSNE import TSNE, initialization
    from openTSNE.affinity import PerplexityBasedNN
    from openTSNE.nearest_neighbors import PrecomputedNeighbors

    table = PrecomputedNeighbors(np.ascontiguousarray(index, dtype=np.int64),
                                 np.ascontiguousarray(distance, dtype=np.float64))
    affinities = PerplexityBasedNN(knn_index=table, perplexity=perplexity, n_jobs=n_jobs)
    start = initialization.pca(x, n_components, random_state=seed)
    model = TSNE(n_components=n_components, random_state=seed, negative_gradient_method=method,
                 n_jobs=n_jobs, verbose=False)
    return np.asarray(model.fit(affinities=affinities, initialization=start), dtype=np.float32)


def sample_3d(n_clips: int, seed: int) -> np.ndarray | None:
    """The one sampler of the 3D views: None up to MAX_3D_POINTS clips (all are fitted and
    drawn), else (MAX_3D_POINTS,) sorted clip ids drawn with ``seed``. The pipeline records it
    in the cache; the 3D t-SNE is fitted on it and the app draws it."""
    if n_clips <= MAX_3D_POINTS:
        return None
    return np.sort(np.random.default_rng(seed).choice(n_clips, MAX_3D_POINTS, replace=False))


def _tsne_sample_then_place(x: np.ndarray, sample: np.ndarray, index: np.ndarray,
                            distance: np.ndarray, perplexity: float, seed: int, n_jobs: int,
                            info: dict) -> tuple[np.ndarray, dict]:
    """3D t-SNE for many clips: Barnes-Hut on the ``sample`` clips (affinities from the exact
    neighbours within the sample); every other clip is placed at the inverse-distance-weighted
    mean of its PLACE_K nearest sample clips."""
    rest = np.setdiff1d(np.arange(len(x)), sample)
    fit_perplexity = min(perplexity, effective_perplexity(len(sample)))  # a small sample: fewer
    sample_table = cosine_knn(x[sample], min(index.shape[1], tsne_neighbour_count(len(sample))))
    coords = np.empty((len(x), 3), dtype=np.float32)
    coords[sample] = _fit(x[sample], *sample_table, 3, fit_perplexity, seed, "bh", n_jobs)
    near, near_distance = nearest_sample_clips(x, rest, sample, index[rest], distance[rest])
    coords[rest] = place_among(coords[sample][near], near_distance)
    return coords, {**info, "perplexity": fit_perplexity, "fit_sample": int(len(sample)),
                    "fit_sample_seed": seed,
                    "placed": f"other clips at the inverse-distance-weighted mean of their "
                              f"{PLACE_K} nearest sample clips (cosine, exact)"}


def nearest_sample_clips(x: np.ndarray, rest: np.ndarray, sample: np.ndarray, index: np.ndarray,
                         distance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The PLACE_K nearest ``sample`` clips of each ``rest`` clip, exactly.

    Read off each clip's own neighbour table ((n_rest, k) ``index``/``distance``, closest
    first) where at least PLACE_K of its neighbours are sample clips (then they are its nearest
    ones); searched among all sample clips for the few clips where not.
    Returns (n_rest, PLACE_K) positions in ``sample`` and (n_rest, PLACE_K) cosine distances.
    """
    position = np.full(len(x), -1, dtype=np.int64)
    position[sample] = np.arange(len(sample))
    hits = position[index]  # (n_rest, k): position in the sample, -1 if not a sample clip
    first = np.argsort(hits < 0, axis=1, kind="stable")[:, :PLACE_K]  # sample hits first, in order
    near = np.take_along_axis(hits, first, axis=1)
    near_distance = np.take_along_axis(np.asarray(distance), first, axis=1)
    short = np.flatnonzero((near < 0).any(axis=1))
    if len(short):
        near[short], near_distance[short] = cosine_knn_among(x, rest[short], sample, PLACE_K)
    return near, near_distance

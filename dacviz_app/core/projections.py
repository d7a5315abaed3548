"""2D and 3D projections of one representation: PCA and t-SNE.

PCA: scikit-learn ``PCA(svd_solver="covariance_eigh")`` (exact; costs one (dim, dim)
covariance, so it stays fast and small at 100k clips). t-SNE: openTSNE with cosine affinities
on the full-dimensional vectors, perplexity min(30, n-1) as in the seed (openTSNE lowers it to
(n-1)/3 when there are too few clips; the value used is recorded), seeded. Gradient: the FFT
interpolation (O(n)) for 2D from FFT_MIN_CLIPS clips up; Barnes-Hut (O(n log n)) below that,
where FFT's fixed grid cost dominates, and for 3D (openTSNE's FFT is 1D/2D only).
"""
from __future__ import annotations

import os

import numpy as np

DEFAULT_PERPLEXITY = 30.0
FFT_MIN_CLIPS = 10_000
TSNE3_FIT_MAX = 20_000  # above this, 3D t-SNE is fitted on a seeded sample and the rest placed


def pca(x: np.ndarray, n_components: int, seed: int = 42) -> tuple[np.ndarray, list[float]]:
    """(n_clips, dim) -> ((n_clips, n_components) float32, explained variance ratio per axis)."""
    from sklearn.decomposition import PCA

    n_components = min(n_components, x.shape[1], x.shape[0])
    model = PCA(n_components=n_components, svd_solver="covariance_eigh", random_state=seed)
    coords = model.fit_transform(np.asarray(x, dtype=np.float64)).astype(np.float32)
    return _pad_columns(coords, n_components), [float(v) for v in model.explained_variance_ratio_]


def _pad_columns(coords: np.ndarray, want: int) -> np.ndarray:
    """A 2-D representation asked for 3 PCA axes gets a zero third axis (shape contract)."""
    if coords.shape[1] >= want:
        return coords
    return np.hstack([coords, np.zeros((coords.shape[0], want - coords.shape[1]), np.float32)])


def effective_perplexity(n_clips: int, requested: float = DEFAULT_PERPLEXITY) -> float:
    """The seed's min(30, n-1), further capped at (n-1)/3 so that 3*perplexity neighbours
    exist (openTSNE's own rule)."""
    return float(min(requested, n_clips - 1, (n_clips - 1) / 3.0))


def tsne(x: np.ndarray, n_components: int, seed: int = 42,
         perplexity: float = DEFAULT_PERPLEXITY, n_jobs: int | None = None) -> tuple[np.ndarray, dict]:
    """(n_clips, dim) -> ((n_clips, n_components) float32, parameters used)."""
    from openTSNE import TSNE

    n = x.shape[0]
    perp = effective_perplexity(n, perplexity)
    method = "fft" if n_components <= 2 and n >= FFT_MIN_CLIPS else "bh"
    model = TSNE(n_components=n_components, perplexity=perp, metric="cosine",
                 random_state=seed, negative_gradient_method=method,
                 n_jobs=n_jobs or os.cpu_count() or 1, verbose=False)
    info = {"perplexity": perp, "metric": "cosine", "seed": seed, "gradient": method,
            "library": "openTSNE"}
    x = np.asarray(x, dtype=np.float32)
    if n_components == 3 and n > TSNE3_FIT_MAX:
        return _tsne_sample_then_place(model, x, seed, info)
    coords = np.asarray(model.fit(x), dtype=np.float32)
    return coords, info


def tsne3_sample(n_clips: int, seed: int) -> np.ndarray:
    """The sorted clip indices a large 3D t-SNE is fitted on (all clips up to TSNE3_FIT_MAX)."""
    if n_clips <= TSNE3_FIT_MAX:
        return np.arange(n_clips)
    return np.sort(np.random.default_rng(seed).choice(n_clips, TSNE3_FIT_MAX, replace=False))


def _tsne_sample_then_place(model, x: np.ndarray, seed: int, info: dict) -> tuple[np.ndarray, dict]:
    """3D t-SNE for many clips: Barnes-Hut on a seeded sample of TSNE3_FIT_MAX clips
    (``tsne3_sample``); every other clip is placed at the distance-weighted mean of its 10
    nearest sample clips' positions (openTSNE's ``prepare_partial(initialization="weighted")``,
    without further optimisation, which measured 5x the cost of the fit)."""
    sample = tsne3_sample(len(x), seed)
    rest = np.setdiff1d(np.arange(len(x)), sample)
    embedding = model.fit(x[sample])
    coords = np.empty((len(x), 3), dtype=np.float32)
    coords[sample] = np.asarray(embedding)
    for start in range(0, len(rest), 20_000):
        block = rest[start:start + 20_000]
        coords[block] = np.asarray(embedding.prepare_partial(x[block], initialization="weighted", k=10))
    return coords, {**info, "fit_sample": TSNE3_FIT_MAX, "fit_sample_seed": seed,
                    "placed": "other clips at the weighted mean of their 10 nearest sample clips"}

"""Query by voice, the web worker's half: where a new clip's vectors fall in a cache.

The encoder service (``query_service``, its own process: the web workers never import torch)
turns an uploaded clip into one vector per representation the cache holds, exactly as
precompute did (``query_encoder``). Here, in numpy alone, each vector is answered like a
clicked clip: its k nearest clips in the representation's full space (cosine, exact, over
every clip) and its place in every view:

- PCA views: exactly, with the PCA the cache stored (``projections.pca_place``); a cache made
  before the basis was stored places it as t-SNE views are, and says so.
- t-SNE views: at the inverse-distance-weighted mean of its PLACE_K nearest clips' map
  coordinates (``projections.place_among``, the rule that already places the unfitted clips of
  a large 3D t-SNE). ``bench/bench_query.py`` compares it with openTSNE's ``transform``.

Nothing is written into the cache. The limits every query obeys are here, once.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from dacviz_app.cache import Cache
from dacviz_app.embedding.neighbours import nearest_to
from dacviz_app.embedding.projections import PLACE_K, pca_place, place_among
from dacviz_app.embedding.spaces import VIEWS

def weights_problem(cache: Cache) -> str | None:
    """Why this server cannot encode queries for ``cache`` (DAC's weights file named in the
    manifest is not here), or None. Checked without reading the file; the encoder service
    also checks its sha256."""
    weights = cache.model.get("weights") or {}
    if weights.get("untrained"):
        return None
    path = weights.get("path")
    if not path or not Path(path).is_file():
        return (f"query by voice is off: the DAC weights this cache was made with are not on "
                f"this server ({path or 'no path recorded'})")
    return None


def representations_for_queries(cache: Cache) -> dict[str, str | None]:
    """{representation: None if a query can be encoded into it, else why not}."""
    out = {}
    for rep in cache.representations:
        encoder = cache.encoder(rep)
        if encoder in ("dac", "mfcc", "resemblyzer"):
            out[rep] = None
        else:
            out[rep] = (f"{rep} comes from a model folder the cache names but does not locate; "
                        f"queries are not encoded into it")
    return out


def clean_vectors(cache: Cache, vectors) -> dict[str, np.ndarray]:
    """Vectors from the encoder service or a page (maybe forged) -> {rep: (dim,) float32}:
    only the cache's representations, of their dimension, finite numbers."""
    out = {}
    if not isinstance(vectors, dict):
        return out
    for rep, values in vectors.items():
        if not cache.has_representation(rep) or not isinstance(values, list) \
                or len(values) != cache.dim(rep):
            continue
        try:
            vector = np.asarray(values, dtype=np.float32)
        except (TypeError, ValueError, OverflowError):
            continue
        if vector.ndim == 1 and np.all(np.isfinite(vector)):
            out[rep] = vector
    return out


@lru_cache(maxsize=64)
def _norms(cache: Cache, rep: str) -> np.ndarray:
    """(n_clips,) float32 L2 norms of ``rep``'s vectors, once per worker and representation."""
    return np.linalg.norm(np.asarray(cache.embedding(rep), np.float32), axis=1).astype(np.float32)


def _search(cache: Cache, rep: str, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(k,) clip ids and (k,) cosine distances nearest ``vector`` in ``rep``'s full space
    (exact, all clips), closest first."""
    return nearest_to(cache.embedding(rep), _norms(cache, rep), vector, min(k, cache.n_clips))


def _rows(cache: Cache, ids: np.ndarray, distance: np.ndarray) -> list[dict]:
    return [{"rank": r + 1, "id": int(i), "label": str(cache.clips["label"][i]),
             "speaker": str(cache.clips["speaker"][i]), "file": str(cache.clips["source"][i]),
             "distance": float(d)} for r, (i, d) in enumerate(zip(ids, distance))]


def nearest(cache: Cache, rep: str, vector: np.ndarray, k: int) -> list[dict]:
    """The k clips nearest ``vector`` in ``rep``'s full space (cosine, exact, all clips):
    [{"rank", "id", "label", "speaker", "file", "distance"}], closest first."""
    return _rows(cache, *_search(cache, rep, vector, k))


def place(cache: Cache, rep: str, vector: np.ndarray,
          near: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, dict]:
    """{view: {"xyz": [x, y(, z)], "placed": how}} for every view of ``rep``. ``near``: its
    PLACE_K nearest clips (``_search``) when the caller has them, else searched here if a view
    needs them."""
    out = {}
    for view in VIEWS:
        basis = cache.pca_basis(rep, view.name) if view.method == "pca" else None
        if basis is not None:
            xyz, how = pca_place(vector, basis, view.dim), "exact (the cache's PCA)"
        else:
            if near is None:
                near = _search(cache, rep, vector, PLACE_K)
            coords = np.asarray(cache.projection(rep, view.name))[near[0]]
            xyz = place_among(coords, near[1])
            how = (f"inverse-distance-weighted mean of its {len(near[0])} nearest clips (cosine)"
                   + ("; this cache has no PCA basis: rebuild it to place PCA exactly"
                      if view.method == "pca" else ""))
        out[view.name] = {"xyz": [round(float(v), 5) for v in xyz], "placed": how}
    return out


def nearest_and_place(cache: Cache, rep: str, vector: np.ndarray, k: int
                      ) -> tuple[list[dict], dict[str, dict]]:
    """``nearest`` and ``place`` from one search of the full space (its first k clips are the
    rows, its first PLACE_K the t-SNE placement's)."""
    ids, distance = _search(cache, rep, vector, max(k, PLACE_K))
    return _rows(cache, ids[:k], distance[:k]), place(cache, rep, vector, (ids[:PLACE_K], distance[:PLACE_K]))


def answer(cache: Cache, vectors: dict[str, np.ndarray], rep: str, k: int) -> dict:
    """The JSON answer to a query, for ``rep`` (one of ``vectors``): its nearest clips and its
    place in every view."""
    rows, views = nearest_and_place(cache, rep, vectors[rep], k)
    return {"representation": rep, "space": f"full {cache.dim(rep)}-D {rep}, cosine distance",
            "k": len(rows), "neighbours": rows, "views": views}

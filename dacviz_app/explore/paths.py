"""A clip as a path through the codec's space: its frames, placed in every view, and two paths
compared. Numpy alone (the web workers hold no torch).

A point of the maps is a clip averaged over time. DAC's own latent moves 50 times a second
(16 kHz, hop 320): ``embedding.frames.frame_latents`` rebuilds each frame's latent at any depth
from the codes and quantizer tables the cache keeps, so ``z`` (all codebooks) and every stored
depth ``z_q<q>`` have a path. The MFCC baseline has one too: its 40 MFCCs every 10 ms, computed on
demand by the encoder service (``viewer.path_route``: the web workers hold no torch) from the
cache's WAV copy; a frame is the point [its 40 MFCCs, the clip's 40 standard deviations] of the
``mfcc`` space, so that the frames' mean is the clip's own vector. Representations pooled over the
clip by their encoder (codes_concat, codes_mean, a speaker encoder) have none.

Where a frame goes in each view:

- PCA views: exactly, with the PCA the cache stored (``projections.pca_place``). PCA is linear,
  so the mean of all a clip's placed frames is the clip's own point.
- t-SNE views: a t-SNE map has no formula for a new point; a frame is placed as a query by
  voice is (``explore.nearest``): at the inverse-distance-weighted mean of the map points of its
  PLACE_K nearest clips (cosine, full space), searched among PLACEMENT_SAMPLE clips (all of them
  when the cache has no more; else a fixed seeded sample, said in the answer). A frame is not a
  clip average, so its nearest clips are farther than a clip's: how faithful this is, is
  measured in ``bench/bench_paths.py`` (docs/benchmarks.md, "Paths").

A path is drawn with at most MAX_PATH_POINTS points, and two paths are aligned on at most
MAX_DTW_FRAMES frames each: a longer clip's evenly spaced frames (``frames.decimate``; only those
are computed), and the answer says so.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from dacviz_app.cache import Cache
from dacviz_app.cache.representations import N_MFCC
from dacviz_app.embedding.frames import cosine_cost, decimate, dtw, frame_latents
from dacviz_app.embedding.neighbours import nearest_to_many, normalise_rows
from dacviz_app.embedding.projections import PLACE_K, pca_place, place_among
from dacviz_app.embedding.spaces import VIEWS

MAX_PATH_POINTS = 300      # points drawn of one path (30 s of 16 kHz DAC is 1,500 frames)
PLACEMENT_SAMPLE = 4096    # clips a frame's t-SNE neighbours are searched among
DTW_REFERENCES = 16        # clips the first of two compared clips is also aligned with (chance)
MAX_DTW_CELLS = 4_000_000  # frame pairs the references may cost together (~100 ms)
MAX_DTW_FRAMES = 600       # frames of one clip that are aligned (evenly spaced beyond: 12 s of DAC)


class NoPath(Exception):
    """Why a path cannot be drawn (one line, for the page)."""


def path_depths(cache: Cache) -> dict[str, int]:
    """{representation: codebook depth} of DAC's representations with a path from the cache:
    ``z`` and the stored depths ``z_q<q>``."""
    return {rep: q for q, rep in cache.depths()}


def path_problem(cache: Cache, rep: str) -> str | None:
    """Why clips of ``rep`` have no path in this cache, or None."""
    depths = path_depths(cache)
    if rep not in depths and cache.encoder(rep) != "mfcc":
        have = ", ".join([*depths, "mfcc"])
        return (f"{rep} has no path: it is pooled by its encoder over the whole clip; a path is "
                f"drawn for frame-level representations ({have})")
    if cache.synthetic:
        return "a synthetic cache has no frames: its clips are made-up vectors"
    if rep in depths and (cache.quantizer is None or cache.frame_codes(0) is None):
        return ("this cache keeps no frame codes or quantizer tables (made before them): rerun the "
                "precompute command that made it to add them (a cache from before dacviz kept frame "
                "codes asks for --overwrite)")
    return None


def from_service(cache: Cache, rep: str) -> bool:
    """Whether ``rep``'s frames come from the encoder service (MFCC) rather than the cache."""
    return cache.encoder(rep) == "mfcc"


def dac_frame_s(cache: Cache) -> float:
    """Seconds per DAC frame (hop_length / sample_rate: 20 ms at 16 kHz)."""
    return int(cache.model["hop_length"]) / int(cache.model["sample_rate"])


def clip_frames(cache: Cache, clip: int, rep: str, most: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Clip ``clip``'s DAC frame latents in ``rep`` (its depth's), at most ``most`` of them
    (evenly spaced, ``frames.decimate``: only those are computed): ((k, latent_dim) float32,
    (k,) their frame indices, the clip's frame count). NoPath when there are none."""
    problem = path_problem(cache, rep)
    if problem or rep not in path_depths(cache):
        raise NoPath(problem or f"{rep}'s frames come from the encoder service")
    codes = cache.frame_codes(clip)
    kept = decimate(len(codes), most)
    return frame_latents(cache.quantizer, codes[kept], path_depths(cache)[rep]), kept, len(codes)


def mfcc_vectors(cache: Cache, frames: np.ndarray, clip: int | None = None) -> np.ndarray:
    """(n_frames, 40) MFCC frames -> (n_frames, 80) float32 points of the ``mfcc`` space: each
    frame's 40 MFCCs beside the clip's 40 standard deviations (the stored vector's second half
    for a cached clip, the frames' own for a query), so that their mean is the clip's vector."""
    frames = np.asarray(frames, np.float32)
    spread = (np.asarray(cache.embedding("mfcc")[clip, frames.shape[1]:], np.float32) if clip is not None
              else frames.astype(np.float64).std(axis=0).astype(np.float32))
    return np.concatenate([frames, np.broadcast_to(spread, frames.shape)], axis=1)


def clean_frame_codes(cache: Cache, value, max_frames: int) -> np.ndarray | None:
    """Frame codes from the encoder service (a query's; maybe forged) -> (n_frames,
    n_codebooks) int16, or None unless a list of 1..max_frames rows of n_codebooks codes, each
    an entry of the cache's quantizer tables (None without them)."""
    if cache.quantizer is None:
        return None
    n_codebooks, size = cache.quantizer["codebooks"].shape[:2]
    if not isinstance(value, list) or not 1 <= len(value) <= max_frames:
        return None
    try:
        codes = np.asarray(value, np.int64)
    except (TypeError, ValueError, OverflowError):
        return None
    if codes.shape != (len(value), n_codebooks) or codes.min() < 0 or codes.max() >= size:
        return None
    return codes.astype(np.int16)


def clean_mfcc_frames(value, max_frames: int) -> np.ndarray | None:
    """MFCC frames from the encoder service -> (n_frames, N_MFCC) float32, or None unless a list
    of 1..max_frames rows of N_MFCC finite numbers (a query's, or a clip's as ``service_frames``
    checks them)."""
    if not isinstance(value, list) or not 1 <= len(value) <= max_frames:
        return None
    try:
        frames = np.asarray(value, np.float32)
    except (TypeError, ValueError, OverflowError):
        return None
    if frames.shape != (len(value), N_MFCC) or not np.all(np.isfinite(frames)):
        return None
    return frames


def query_path(cache: Cache, rep: str, codes: np.ndarray | None, mfcc: np.ndarray | None,
               mfcc_frame_s: float | None) -> dict | None:
    """``path_answer`` of a query in ``rep`` from its frame codes (DAC's representations) or its
    MFCC frames (``mfcc``), or None where ``rep`` has no path or the frames are missing."""
    depth = path_depths(cache).get(rep)
    if depth is not None and codes is not None and cache.quantizer is not None:
        kept = decimate(len(codes), MAX_PATH_POINTS)
        return path_answer(cache, rep, frame_latents(cache.quantizer, codes[kept], depth), kept, len(codes),
                           dac_frame_s(cache))
    if cache.encoder(rep) == "mfcc" and mfcc is not None and mfcc_frame_s:
        kept = decimate(len(mfcc), MAX_PATH_POINTS)
        return path_answer(cache, rep, mfcc_vectors(cache, mfcc)[kept], kept, len(mfcc), mfcc_frame_s)
    return None


def placement_ids(cache: Cache) -> np.ndarray:
    """The clips a frame is placed among on a t-SNE map: all, or PLACEMENT_SAMPLE of them
    drawn with the cache's seed (sorted ids). The one owner of this sample."""
    if cache.n_clips <= PLACEMENT_SAMPLE:
        return np.arange(cache.n_clips)
    rng = np.random.default_rng(cache.seed)
    return np.sort(rng.choice(cache.n_clips, PLACEMENT_SAMPLE, replace=False))


@lru_cache(maxsize=1)
def _blas():
    """This process's BLAS libraries (threadpoolctl), looked up once."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def one_blas_thread():
    """A context in which BLAS runs on one thread: a path's products are small (frames x a few
    thousand clips), and a second BLAS thread waiting for a busy core made one path 30 ms
    instead of 0.3 (measured on this 2-core machine under load)."""
    return _blas().limit(limits=1, user_api="blas")


@lru_cache(maxsize=8)
def _placement_rows(cache: Cache, rep: str) -> np.ndarray:
    """(n_sample, dim) float32 unit rows of ``rep`` for the placement sample, once per worker
    and representation (16 MB for 4,096 clips of 1,024-D; 8 representations: the demo's z, its
    four depths and mfcc fit)."""
    return normalise_rows(np.asarray(cache.embedding(rep))[placement_ids(cache)])


def place_frames(cache: Cache, rep: str, frames: np.ndarray, whole: bool) -> dict[str, dict]:
    """(n, dim) frames of ``rep`` -> {view: {"xyz": (n, view dim) rounded lists, "placed": how}};
    ``whole``: they are all the clip's frames (then PCA's mean is the clip's point)."""
    out: dict[str, dict] = {}
    near = None
    ids = placement_ids(cache)
    among = (f"of all {cache.n_clips:,} clips" if len(ids) == cache.n_clips
             else f"among {len(ids):,} of the {cache.n_clips:,} clips (a fixed sample)")
    for view in VIEWS:
        basis = cache.pca_basis(rep, view.name) if view.method == "pca" else None
        if basis is not None:
            xyz = np.stack([pca_place(frame, basis, view.dim) for frame in frames]) if len(frames) else \
                np.zeros((0, view.dim), np.float32)
            how = "exact (the cache's PCA)" + (": the path's mean is the clip's point" if whole else "")
        else:
            if near is None:
                near = nearest_to_many(_placement_rows(cache, rep), frames, min(PLACE_K, len(ids)))
            coords = np.asarray(cache.projection(rep, view.name))[ids[near[0]]]  # (n, k, d)
            xyz = place_among(coords, near[1])
            how = (f"each frame at the inverse-distance-weighted mean of its {near[0].shape[1]} "
                   f"nearest clips (cosine, full space) {among}")
        out[view.name] = {"xyz": np.round(np.asarray(xyz, np.float64), 5).tolist(), "placed": how}
    return out


def path_answer(cache: Cache, rep: str, frames: np.ndarray, kept: np.ndarray, n_frames: int,
                frame_s: float) -> dict:
    """The JSON of a path: ``frames`` (k, dim) the points of ``rep`` at the frame indices
    ``kept`` (k,) of a clip of ``n_frames`` frames, one per ``frame_s`` seconds; their places in
    every view."""
    with one_blas_thread():
        views = place_frames(cache, rep, frames, whole=len(kept) == n_frames)
    return {"rep": rep, "n_frames": int(n_frames), "frame_s": frame_s,
            "frames": np.asarray(kept).tolist(), "views": views,
            "decimated": (f"{len(kept)} of its {n_frames:,} frames drawn, evenly spaced"
                          if len(kept) < n_frames else None),
            "space": f"{rep}'s frames (full {frames.shape[1]}-D, one per {1000 * frame_s:g} ms)",
            "untrained": cache.untrained and cache.encoder(rep) == "dac"}


def clip_answer(cache: Cache, clip: int, answer: dict) -> dict:
    """``answer`` (``path_answer``) with the clip's id, label and speaker."""
    return {"clip": clip, "label": str(cache.clips["label"][clip]),
            "speaker": str(cache.clips["speaker"][clip]), **answer}


@lru_cache(maxsize=64)
def clip_path(cache: Cache, clip: int, rep: str) -> dict:
    """The path of clip ``clip`` (a valid id) in ``rep``, a DAC representation with frames;
    NoPath when there is none. Memoised per worker (64 answers of at most ~170 KB): both keys
    are bounded (the caller checks them)."""
    frames, kept, n_frames = clip_frames(cache, clip, rep, MAX_PATH_POINTS)
    return clip_answer(cache, clip, path_answer(cache, rep, frames, kept, n_frames, dac_frame_s(cache)))


def mfcc_clip_path(cache: Cache, clip: int, frames: np.ndarray, n_frames: int, frame_s: float) -> dict:
    """The path of clip ``clip`` in ``mfcc`` from its MFCC frames ((k, 40) from the encoder
    service, at the frame indices ``decimate(n_frames, MAX_PATH_POINTS)`` of its ``n_frames``)."""
    kept = decimate(n_frames, MAX_PATH_POINTS)
    return clip_answer(cache, clip, path_answer(cache, "mfcc", mfcc_vectors(cache, frames, clip), kept,
                                                n_frames, frame_s))


def reference_clips(cache: Cache, first: int, second: int, n_first: int, frame_s: float) -> list[int]:
    """Up to DTW_REFERENCES clips other than ``first`` and ``second``, drawn with the cache's
    seed and ``first``, while their frames (their durations over ``frame_s``, at most
    MAX_DTW_FRAMES) times ``n_first`` stay within MAX_DTW_CELLS."""
    others = np.setdiff1d(np.arange(cache.n_clips), [first, second])
    rng = np.random.default_rng([cache.seed, first])
    chosen, cells = [], 0
    for clip in rng.permutation(others)[:4 * DTW_REFERENCES].tolist():
        cost = min(n_first, MAX_DTW_FRAMES) * min(float(cache.clips["duration_s"][clip]) / frame_s + 1, MAX_DTW_FRAMES)
        if len(chosen) == DTW_REFERENCES or cells + cost > MAX_DTW_CELLS:
            break
        chosen.append(int(clip))
        cells += cost
    return chosen


def mean_aligned_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The mean cosine distance between aligned frames along DTW's best alignment."""
    total, cells = dtw(cosine_cost(a, b))
    return total / cells


def compare(cache: Cache, first: int, second: int, rep: str, frames: dict[int, np.ndarray],
            counts: dict[int, int], references: list[int]) -> dict:
    """Two clips' paths compared in ``rep``: the mean frame distance along their best time
    alignment (DTW), and for chance ``first``'s distance to each reference clip. ``frames``:
    {clip: (k, dim)} of ``first``, ``second`` and ``references``, each at most MAX_DTW_FRAMES
    evenly spaced frames of the clip's ``counts[clip]``."""
    a, b = frames[first], frames[second]
    with one_blas_thread():
        distance = mean_aligned_distance(a, b)
        to_references = [mean_aligned_distance(a, frames[other]) for other in references]
    thinned = [clip for clip in (first, second) if counts[clip] > len(frames[clip])]
    return {"first": first, "second": second, "rep": rep, "dtw": round(distance, 5),
            "frames": [counts[first], counts[second]],
            "thinned": (f"clip{'s' if len(thinned) > 1 else ''} {' and '.join(map(str, thinned))} aligned on "
                        f"{MAX_DTW_FRAMES} evenly spaced frames" if thinned else None),
            "frame_distance": f"cosine distance 1 - cos between frames (full {a.shape[1]}-D {rep})",
            "alignment": "dynamic time warping, steps (1,0) (0,1) (1,1); the total over the "
                         "best alignment divided by its length: the mean distance of aligned frames",
            "reference": {"clips": len(to_references),
                          "median": round(float(np.median(to_references)), 5) if to_references else None,
                          "closer": int(sum(r < distance for r in to_references)),
                          "how": f"clip {first}'s distance to {len(to_references)} other clips drawn at "
                                 f"random (seeded): how far an unrelated clip is"},
            "untrained": cache.untrained and cache.encoder(rep) == "dac"}


@lru_cache(maxsize=64)
def compare_paths(cache: Cache, first: int, second: int, rep: str) -> dict:
    """``compare`` for a DAC representation with frames (from the cache); NoPath otherwise."""
    frames, counts = {}, {}
    frames[first], _kept, counts[first] = clip_frames(cache, first, rep, MAX_DTW_FRAMES)
    references = reference_clips(cache, first, second, counts[first], dac_frame_s(cache))
    for clip in {second, *references} - {first}:
        frames[clip], _kept, counts[clip] = clip_frames(cache, clip, rep, MAX_DTW_FRAMES)
    return compare(cache, first, second, rep, frames, counts, references)

"""A large cache honestly labelled synthetic, for measuring dacviz at scale.

Embeddings come from a generator fitted to a real (small) cache: for every representation, each
label's clips are modelled as a Gaussian with that label's mean and the per-dimension standard
deviation pooled over labels (``noise`` scales it). Labels are drawn with the real label
frequencies, speakers and audio from a random real clip of the same label (its audio file is
copied once and shared). Projections, neighbours and metrics are then computed by the real
pipeline steps. The manifest says ``"synthetic": true`` and the app shows a banner.
"""
from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path
from typing import Callable

import numpy as np

from dacviz_app import cache as cache_format
from dacviz_app.cache import CachePaths
from dacviz_app.precompute.dac_encode import WeightsChoice
from dacviz_app.precompute.encoders import BUILT_IN, CORE, EncoderSpec
from dacviz_app.precompute.config import PrecomputeConfig
from dacviz_app.precompute.downstream import StoredEmbeddings, finish_cache
from dacviz_app.precompute.pipeline import locked
from dacviz_app.precompute.plan import prepare_out_dir


def fit_and_sample(x: np.ndarray, labels: np.ndarray, codes: np.ndarray, names: np.ndarray,
                   noise: float, rng: np.random.Generator) -> np.ndarray:
    """(n_real, dim) real vectors -> (n_new, dim) float32 drawn per label code in ``codes``."""
    means = np.stack([x[labels == name].mean(0) for name in names])
    std = np.sqrt(np.mean([x[labels == name].var(0) for name in names], axis=0)) * noise
    out = np.empty((len(codes), x.shape[1]), dtype=np.float32)
    for start in range(0, len(codes), 50_000):  # bounded temporaries
        block = codes[start:start + 50_000]
        out[start:start + len(block)] = means[block] + rng.standard_normal((len(block), x.shape[1])) * std
    return out


def build_synthetic_cache(source_dir: Path, out_dir: Path, n_clips: int, seed: int = 0,
                          noise: float = 1.0, overwrite: bool = False,
                          say: Callable[[str], None] = print,
                          depths: tuple[int, ...] | None = None, neighbours: str = "auto") -> dict:
    """Write a synthetic cache of ``n_clips`` fitted to the cache in ``source_dir``.

    ``depths``: the source's depth representations (z_q<q>) to carry over; None = all of them.
    Returns {"seconds": {step: float}} timings of the non-encoding steps.
    """
    real = cache_format.open_cache(source_dir)
    stored = tuple(q for q, rep in real.depths() if rep != "z")
    if depths is None:
        depths = stored
    elif set(depths) - set(stored):
        raise ValueError(f"{source_dir} has no depth(s) {sorted(set(depths) - set(stored))}; "
                         f"it has {list(stored)}")
    dropped = {rep for q, rep in real.depths() if rep != "z" and q not in depths}
    # encoders beside DAC: the built-in ones carry over (their entries are rebuilt from their
    # weights); a Hugging Face model's folder is not recorded, so its representation is left out
    beside = tuple(EncoderSpec(name) for name, _ in real.encoders() if name in BUILT_IN)
    dropped |= {rep for rep in real.representations
                if real.encoder(rep) not in (*CORE, *BUILT_IN)}
    kept = [rep for rep in real.representations if rep not in dropped]
    rng = np.random.default_rng(seed)
    labels = np.asarray(real.clips["label"])
    names, counts = np.unique(labels, return_counts=True)
    codes = rng.choice(len(names), size=n_clips, p=counts / counts.sum())
    donors = np.empty(n_clips, dtype=np.int64)  # the real clip whose audio/speaker each one reuses
    for code, name in enumerate(names):
        members = np.flatnonzero(labels == name)
        where = np.flatnonzero(codes == code)
        donors[where] = rng.choice(members, size=len(where))
    model = real.model
    config = PrecomputeConfig(out=Path(out_dir), model_type=model["type"],
                              depths=tuple(sorted(depths)), encoders=beside,
                              weights=WeightsChoice(**model["weights"]), seed=42,
                              name=f"synthetic {n_clips:,} (fitted to {real.name})",
                              source=str(Path(source_dir).resolve()), synthetic=True,
                              command=f"synthetic from {source_dir}: n={n_clips} seed={seed} noise={noise}",
                              overwrite=overwrite, neighbours=neighbours)
    plan_id = hashlib.sha256(f"{real.manifest['plan_id']}/{n_clips}/{seed}/{noise}/{sorted(depths)}"
                             .encode()).hexdigest()
    paths = CachePaths(Path(out_dir))
    plan = {"plan_id": plan_id, "synthetic_of": str(source_dir), "n_clips": n_clips}
    with locked(paths, config.command, say):
        if prepare_out_dir(paths, plan, overwrite):
            say(f"{out_dir} is already complete")
            return {"seconds": {}}
        started = time.perf_counter()
        for rep in kept:  # one in memory at a time; later steps read them back one at a time
            cache_format.write_embedding(paths, rep, fit_and_sample(
                np.asarray(real.embedding(rep), np.float64), labels, codes, names, noise, rng))
        embeddings = StoredEmbeddings(paths, kept)
        paths.audio_dir.mkdir(parents=True, exist_ok=True)
        for name in sorted({real.clips["audio"][d] for d in np.unique(donors)}):
            shutil.copyfile(real.paths.audio(name), paths.audio(name))
        computed = {"id": list(range(n_clips)), "label": [str(names[c]) for c in codes],
                    "source": [f"synthetic:{int(d)}" for d in donors]}
        computed.update({column: [real.clips[column][d] for d in donors]
                         for column in cache_format.COMPUTED_CLIP_COLUMNS if column not in computed})
        cache_format.write_clips(paths, computed)
        cache_format.write_skipped(paths, [])
        timings = {"generate": time.perf_counter() - started}
        timings.update(finish_cache(embeddings, computed, config, plan_id, 0, paths, say))
    return {"seconds": timings}

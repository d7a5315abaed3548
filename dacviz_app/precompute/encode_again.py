"""An encoder run again over a finished cache's own audio: a new encoder beside DAC, or DAC with
other weights or precision, for the clips the cache already holds, without reading the sources.

Every encoder reads the cache's playable copies (``audio/<name>.wav``), whose samples are the
very ones the first run encoded (``loading.prepare_clip`` reads its copy back), in the first
run's groups (one per chunk of the plan) and batches: the vectors equal those of a cache built
in one run with these settings. Each group is saved under ``work/update/<key>/`` as it is done,
so an interrupted run resumes.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

from dacviz_app import cache as cache_format
from dacviz_app.cache import CachePaths, atomic_save_npz
from dacviz_app.cache.representations import DAC_BASE
from dacviz_app.precompute.audio import read_copy
from dacviz_app.precompute.config import PrecomputeConfig, PrecomputeError
from dacviz_app.precompute.dac_encode import MODEL_CONFIGS
from dacviz_app.precompute.encode_run import (BatchLimit, _encode_batches, _n_codebooks, encode_beside,
                                              load_encoder, stacked_frame_codes)
from dacviz_app.precompute.encoders import make_encoder
from dacviz_app.precompute.inputs import digest
from dacviz_app.precompute.interrupt import raise_if_interrupted
from dacviz_app.precompute.loading import single_threaded
from dacviz_app.precompute.mfcc import mfcc_stats


def plan_indices(audio_names: list[str]) -> np.ndarray:
    """(n_clips,) int64 each clip's place in the plan, from its copy's name (``audio_name``)."""
    return np.asarray([int(Path(name).stem) for name in audio_names], np.int64)


def encode_again(representations: list[str], keys: dict[str, str], config: PrecomputeConfig,
                 paths: CachePaths, audio_names: list[str], progress: bool,
                 say: Callable[[str], None]) -> tuple[int, float]:
    """Compute ``representations`` (DAC's base ones, "mfcc", or encoders beside DAC) for every
    clip of the cache; write their embeddings (and with DAC its code counts and frame codes).
    ``keys``: {representation: key} (``inputs.encoder_keys``). Returns (clips, seconds).
    A clip an encoder cannot take now is an error: the cache's clips stay the same."""
    from tqdm import tqdm

    dac = any(rep in DAC_BASE for rep in representations)
    specs = [spec for spec in config.encoders if spec.name in representations]
    mfcc = "mfcc" in representations
    tag = digest({rep: keys[rep] for rep in sorted(representations)})
    rows = plan_indices(audio_names)
    groups = [np.flatnonzero(rows // config.chunk_size == c) for c in np.unique(rows // config.chunk_size)]
    sample_rate = MODEL_CONFIGS[config.model_type]["sample_rate"]
    model = load_encoder(config) if dac else None
    others = [make_encoder(spec, config.device) for spec in specs]
    limit = BatchLimit(samples=int(config.batch_seconds * sample_rate), clips=config.batch_size)
    what = ", ".join(["dac"] * dac + [s.name for s in specs] + ["mfcc"] * mfcc)
    say(f"encoding again from the cache's audio: {what} (the clips and every other result are kept)")
    started = time.perf_counter()
    with tqdm(total=len(rows), unit="clip", desc=f"encoding ({what})", disable=not progress,
              file=sys.stderr, dynamic_ncols=True) as bar:
        tell = bar.write if progress else say
        for number, group in enumerate(groups):
            target = paths.update_chunk(tag, number)
            if target.is_file():
                bar.update(len(group))
                continue
            audios = [read_copy(paths.audio(audio_names[i])) for i in group]
            arrays: dict[str, np.ndarray] = {}
            if others:
                vectors, refused = encode_beside(others, audios, sample_rate)
                _refuse(refused, group, audio_names, "an encoder beside DAC")
                arrays.update(vectors)
            if dac:
                pooled, counts, codes, failed = _encode_batches(model, audios, config, limit, tell,
                                                                bar.update)
                _refuse(failed, group, audio_names, "DAC")
                arrays.update(pooled, code_counts=counts, **stacked_frame_codes(codes, _n_codebooks(config)))
            else:
                bar.update(len(group))
            if mfcc:
                with single_threaded():
                    arrays["mfcc"] = np.asarray([mfcc_stats(a, sample_rate) for a in audios], np.float32)
            raise_if_interrupted()
            atomic_save_npz(target, **arrays)
    parts = [dict(np.load(paths.update_chunk(tag, n), allow_pickle=False)) for n in range(len(groups))]
    for rep in representations:
        cache_format.write_embedding(paths, rep, np.concatenate([p[rep] for p in parts]).astype(np.float32))
    if dac:
        cache_format.write_code_counts(paths, sum(p["code_counts"] for p in parts))
        count = np.concatenate([p["frame_count"] for p in parts])
        cache_format.write_frame_codes(paths, np.concatenate([p["frame_codes"] for p in parts]),
                                       np.concatenate([[0], np.cumsum(count)]).astype(np.int64))
    return len(rows), time.perf_counter() - started


def _refuse(failed: dict[int, str], group: np.ndarray, audio_names: list[str], who: str) -> None:
    if failed:
        row, reason = next(iter(failed.items()))
        raise PrecomputeError(
            f"{who} could not encode {len(failed)} clip(s) the cache holds (e.g. "
            f"{audio_names[int(group[row])]}: {reason}); a cache keeps the same clips in every "
            f"representation. Rebuild it with --overwrite to leave those clips out.")

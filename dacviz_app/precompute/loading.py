"""Preparing clips for the encoder in parallel workers, and grouping them into batches.

Everything a clip needs before the model (read, validate, mono, resample, the MFCC baseline,
the playable copy in the cache) is done by ``prepare_clip``, in ``torch.utils.data.DataLoader``
worker processes while the main process encodes. Workers return clips in plan order, and every
step runs single-threaded in whichever process runs it, so the cache is byte-identical for any
number of workers (0 = in the main process).

Batches are bounded by padded audio (clips x the longest clip's samples), not by a clip count:
a batch of 30 s clips holds fewer clips than a batch of 1 s clips.
"""
from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from dacviz_app.precompute.audio import ClipRejected, load_clip, read_wav_bytes, wav_bytes
from dacviz_app.cache import CachePaths, atomic_write_bytes
from dacviz_app.precompute.dac_encode import frame_count
from dacviz_app.precompute.interrupt import raise_if_interrupted
from dacviz_app.precompute.mfcc import mfcc_stats

LOADER_GROUP = 16  # clips a worker prepares per task (the loader's own "batch")
MAX_DEFAULT_WORKERS = 8


def default_workers(device: str) -> int:
    """Loader processes when none are asked for: none on the CPU (the encoder already uses every
    core), min(MAX_DEFAULT_WORKERS, cores - 1) beside a GPU."""
    if device != "cuda":
        return 0
    return max(1, min(MAX_DEFAULT_WORKERS, (os.cpu_count() or 2) - 1))


@dataclass
class PreparedClip:
    """One planned clip after ``prepare_clip``: either ``audio`` or a ``reason`` it was skipped.

    Attributes:
        plan_index: its position in the plan.
        audio: (n_samples,) float32 mono at the model's rate, or None when skipped.
        reason: why it was skipped ("" when not).
        mfcc: (80,) float32 MFCC means and stds (None when skipped).
    """

    plan_index: int
    audio: np.ndarray | None = None
    reason: str = ""
    mfcc: np.ndarray | None = None
    duration_s: float = 0.0
    original_rate: int = 0
    channels: int = 0


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """torch on one thread inside the block (restored after): a clip's resampling and MFCC then
    give the same bits in the main process and in a loader worker."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def prepare_clip(path: str, plan_index: int, sample_rate: int, max_seconds: float,
                 paths: CachePaths | None) -> PreparedClip:
    """Read, check and convert one source file; write its playable copy into the cache at
    ``paths`` (None: no copy). The audio returned is the copy's own 16-bit samples read back,
    so an encoder run later over the cache's copies (``update``) reads the same bits."""
    try:
        with single_threaded():
            clip = load_clip(path, sample_rate, max_seconds)
            playable = wav_bytes(clip.audio, sample_rate)
            audio = read_wav_bytes(playable)  # what every encoder reads: the copy's own samples
            mfcc = mfcc_stats(audio, sample_rate)
    except ClipRejected as err:
        return PreparedClip(plan_index=plan_index, reason=str(err))
    except (MemoryError, RuntimeError, ValueError) as err:  # e.g. a resampling kernel too large
        return PreparedClip(plan_index=plan_index, reason=f"cannot be converted ({type(err).__name__})")
    if paths is not None:
        atomic_write_bytes(paths.audio(paths.audio_name(plan_index)), playable)
    return PreparedClip(plan_index=plan_index, audio=audio, mfcc=mfcc,
                        duration_s=clip.duration_s, original_rate=clip.original_rate,
                        channels=clip.original_channels)


class PlannedClips:
    """A map-style dataset: item i -> the PreparedClip of plan index ``indices[i]``."""

    def __init__(self, sources: Sequence[str], indices: Sequence[int], sample_rate: int,
                 max_seconds: float, paths: CachePaths):
        self.sources, self.indices = list(sources), list(indices)
        self.sample_rate, self.max_seconds, self.paths = sample_rate, max_seconds, paths

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> PreparedClip:
        plan_index = self.indices[i]
        return prepare_clip(self.sources[plan_index], plan_index, self.sample_rate,
                            self.max_seconds, self.paths)


def _as_list(items: list) -> list:
    return items


def prepared_clips(sources: Sequence[str], indices: Sequence[int], sample_rate: int,
                   max_seconds: float, paths: CachePaths, workers: int,
                   ahead: int = 512) -> Iterator[PreparedClip]:
    """PreparedClip of every plan index in ``indices``, in that order, prepared by ``workers``
    processes (0: here, one by one) keeping about ``ahead`` clips ready beyond the one asked for."""
    dataset = PlannedClips(sources, indices, sample_rate, max_seconds, paths)
    if workers <= 0:
        for i in range(len(dataset)):
            clip = dataset[i]
            raise_if_interrupted()  # a Ctrl-C inside soundfile's read is otherwise lost
            yield clip
        return
    from torch.utils.data import DataLoader

    loader = DataLoader(dataset, batch_size=LOADER_GROUP, shuffle=False, num_workers=workers,
                        collate_fn=_as_list, prefetch_factor=max(2, math.ceil(ahead / (LOADER_GROUP * workers))))
    for group in loader:
        raise_if_interrupted()
        yield from group


def padded_batches(lengths: Sequence[int], max_samples: int, max_clips: int,
                   hop: int) -> list[list[int]]:
    """Group rows into encoder batches, shortest first.

    Rows are sorted by length (ties by row); a batch grows while (clips + 1) x the longest
    clip's length rounded up to ``hop`` stays within ``max_samples`` and the clips within
    ``max_clips``. A clip longer than ``max_samples`` alone makes a batch of one.
    Returns the batches as lists of rows."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    for row in order:
        padded = frame_count(lengths[row], hop) * hop  # the longest so far: rows are ascending
        if current and ((len(current) + 1) * padded > max_samples or len(current) >= max_clips):
            batches.append(current)
            current = []
        current.append(row)
    if current:
        batches.append(current)
    return batches

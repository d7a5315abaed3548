"""The MFCC baseline (``mfcc``, 80-D): mean and standard deviation over time of 40 MFCCs of the
clip at 16 kHz (cache/representations.py describes it). Needs no codec weights."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from dacviz_app.cache.representations import MFCC_HOP, MFCC_RATE, N_MFCC


@lru_cache(maxsize=1)
def _mfcc_transform():
    import torchaudio

    return torchaudio.transforms.MFCC(
        sample_rate=MFCC_RATE, n_mfcc=N_MFCC, log_mels=True,
        melkwargs=dict(n_fft=400, win_length=400, hop_length=MFCC_HOP, n_mels=64,
                       f_min=20.0, f_max=7600.0, center=True))


def mfcc_frames(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """(n_samples,) float32 mono at ``sample_rate`` -> (40, n_frames) float64: the clip's 40
    MFCCs every MFCC_HOP_S seconds (centred windows)."""
    import torch

    from dacviz_app.precompute.audio import resample

    audio16 = resample(audio, sample_rate, MFCC_RATE)
    with torch.inference_mode():
        mfcc = _mfcc_transform()(torch.from_numpy(np.ascontiguousarray(audio16)))  # (40, frames)
    return mfcc.numpy().astype(np.float64)


def frame_stats(mfcc: np.ndarray) -> np.ndarray:
    """(40, n_frames) float64 ``mfcc_frames`` -> (80,) float32: their 40 means, 40 stds."""
    return np.concatenate([mfcc.mean(axis=1), mfcc.std(axis=1)]).astype(np.float32)


def mfcc_stats(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """(n_samples,) float32 mono at ``sample_rate`` -> (80,) float32: 40 MFCC means, 40 stds."""
    return frame_stats(mfcc_frames(audio, sample_rate))

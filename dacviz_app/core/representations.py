"""The four per-clip representations dacviz compares.

For a clip whose DAC encode has T frames (T = ceil(n_samples / hop_length)):

- ``z`` (1024,): the quantized latent z (1024, T) averaged over the T frames. Exactly the
  seed notebook's vector.
- ``codes_concat`` (n_codebooks*8,): each codebook's 8-D projected latent (DAC's ``latents``,
  (n_codebooks*8, T)) averaged over time; 96-D for the 16 kHz model (12 codebooks).
- ``codes_mean`` (8,): ``codes_concat`` reshaped to (n_codebooks, 8) and averaged over
  codebooks (the seed's "codebook averaging").
- ``mfcc`` (80,): mean and standard deviation over time of 40 MFCCs of the clip at 16 kHz
  (25 ms Hann window, 10 ms hop, 64 mel bands, 20-7600 Hz, log-mel DCT-II ortho). Needs no
  codec weights, so the comparison always has a reference row.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

MFCC_RATE = 16000
N_MFCC = 40


def describe(n_codebooks: int, codebook_dim: int = 8) -> dict[str, dict]:
    """{name: {"dim": int, "title": str, "description": str}} for the manifest and the app."""
    concat = n_codebooks * codebook_dim
    return {
        "z": {"dim": 1024, "title": "z (1024-D latent)",
              "description": "quantized latent z, mean over time"},
        "codes_concat": {"dim": concat, "title": f"codes_concat ({concat}-D)",
                         "description": f"{n_codebooks} codebooks' {codebook_dim}-D projected "
                                        f"latents, concatenated, mean over time"},
        "codes_mean": {"dim": codebook_dim, "title": f"codes_mean ({codebook_dim}-D)",
                       "description": "projected latents averaged over codebooks and time"},
        "mfcc": {"dim": 2 * N_MFCC, "title": f"mfcc ({2 * N_MFCC}-D baseline)",
                 "description": f"mean and std over time of {N_MFCC} MFCCs (no codec)"},
    }


@lru_cache(maxsize=1)
def _mfcc_transform():
    import torchaudio

    return torchaudio.transforms.MFCC(
        sample_rate=MFCC_RATE, n_mfcc=N_MFCC, log_mels=True,
        melkwargs=dict(n_fft=400, win_length=400, hop_length=160, n_mels=64,
                       f_min=20.0, f_max=7600.0, center=True))


def mfcc_stats(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """(n_samples,) float32 mono at ``sample_rate`` -> (80,) float32: 40 MFCC means, 40 stds."""
    import torch

    from .audio import resample

    audio16 = resample(audio, sample_rate, MFCC_RATE)
    with torch.inference_mode():
        mfcc = _mfcc_transform()(torch.from_numpy(np.ascontiguousarray(audio16)))  # (40, frames)
    mfcc = mfcc.numpy().astype(np.float64)
    return np.concatenate([mfcc.mean(axis=1), mfcc.std(axis=1)]).astype(np.float32)

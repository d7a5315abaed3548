"""The arithmetic the encoder runs in: a scientific choice, so it is chosen and recorded.

- ``fp32``: IEEE float32 everywhere. On NVIDIA GPUs PyTorch's default lets cuDNN run
  convolutions in TF32 (10-bit mantissa); ``fp32`` turns that off for convolutions and matmuls.
- ``tf32``: NVIDIA GPUs only: float32 tensors, TF32 tensor-core convolutions and matmuls.
- ``bf16``: autocast to bfloat16 (8-bit mantissa) on the device (GPU or CPU).

``agreement`` measures what a faster mode costs against fp32 on the same clips: the largest
relative error of the pooled ``z`` and how many of each clip's 10 nearest neighbours stay.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np

PRECISIONS = ("fp32", "tf32", "bf16")
AGREEMENT_K = 10
AGREEMENT_MAX_CLIPS = 1000


class PrecisionError(ValueError):
    """A precision the device cannot run; the message says which one it can."""


def check_precision(precision: str, device: str) -> None:
    """Raise PrecisionError for an unknown precision or tf32 off an NVIDIA GPU."""
    if precision not in PRECISIONS:
        raise PrecisionError(f"unknown precision {precision!r}; one of {', '.join(PRECISIONS)}")
    if precision == "tf32" and device != "cuda":
        raise PrecisionError("--precision tf32 is a mode of NVIDIA GPUs (--device cuda); "
                             "on the CPU use fp32 (the default) or bf16")


@contextlib.contextmanager
def precision_mode(precision: str, device: str) -> Iterator[None]:
    """Run the block in ``precision`` on ``device`` (see the module doc); the TF32 switches
    are restored on exit. Only PyTorch's current TF32 API is used (``fp32_precision``):
    mixing it with the legacy ``allow_tf32`` flags is an error in torch 2.11."""
    import torch

    check_precision(precision, device)
    conv, matmul = torch.backends.cudnn.conv, torch.backends.cuda.matmul
    before = (conv.fp32_precision, matmul.fp32_precision)
    wanted = "tf32" if precision == "tf32" else "ieee"
    conv.fp32_precision, matmul.fp32_precision = wanted, wanted
    try:
        if precision == "bf16":
            with torch.autocast(device_type=device, dtype=torch.bfloat16):
                yield
        else:
            yield
    finally:
        conv.fp32_precision, matmul.fp32_precision = before


def device_name(device: str) -> str:
    """'NVIDIA H100 80GB HBM3' for cuda, the processor's name (or 'CPU') otherwise."""
    if device == "cuda":
        import torch

        return torch.cuda.get_device_name()
    import platform

    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "CPU"


def agreement_sample(n_clips: int, seed: int, max_clips: int = AGREEMENT_MAX_CLIPS) -> np.ndarray:
    """(m,) int64 ascending clip ids, m = min(n_clips, max_clips): the seeded sample re-encoded
    in fp32 to measure a faster precision."""
    if n_clips <= max_clips:
        return np.arange(n_clips, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_clips, size=max_clips, replace=False)).astype(np.int64)


def agreement(fast: np.ndarray, reference: np.ndarray, k: int = AGREEMENT_K) -> dict:
    """How far ``fast`` (m, dim) is from ``reference`` (m, dim), the same clips in fp32.

    Returns {"n": m, "k": k', "max_relative_error": max_i |fast_i - ref_i| / |ref_i|,
    "mean_relative_error": its mean, "knn_agreement": the mean over clips of the share of the
    k' nearest others (cosine, within the sample) that both agree on}, k' = min(k, m - 1)."""
    from dacviz_app.embedding.neighbours import cosine_knn

    fast = np.asarray(fast, np.float64)
    reference = np.asarray(reference, np.float64)
    norms = np.linalg.norm(reference, axis=1)
    relative = np.linalg.norm(fast - reference, axis=1) / np.where(norms > 0, norms, 1.0)
    m = len(reference)
    k = min(k, m - 1)
    fast_nn, _ = cosine_knn(fast.astype(np.float32), k)
    ref_nn, _ = cosine_knn(reference.astype(np.float32), k)
    shared = [len(np.intersect1d(a, b)) / k for a, b in zip(fast_nn, ref_nn)]
    return {"n": int(m), "k": int(k), "max_relative_error": float(relative.max()),
            "mean_relative_error": float(relative.mean()), "knn_agreement": float(np.mean(shared))}

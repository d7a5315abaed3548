"""A clip frame by frame: DAC's frame latents from the stored codes, and the distances between
two frame sequences (dynamic time warping). Numpy alone: the viewer computes these.

DAC emits one latent per ``hop_length`` samples (50 a second at 16 kHz). Its residual quantizer
maps each frame on its own: codebook i turns code c into ``out_weight[i] @ codebooks[i][c] +
out_bias[i]`` (a lookup and a 1x1 convolution), and the latent at depth q is the sum over the
first q codebooks (``quantizer.from_codes``). The cache keeps the codes and these tables
(``cache.write_quantizer``), so any clip's frames at any depth cost a few hundred thousand
multiply-adds, never the encoder.
"""
from __future__ import annotations

import numpy as np


def frame_latents(quantizer: dict[str, np.ndarray], codes: np.ndarray, depth: int) -> np.ndarray:
    """(n_frames, n_codebooks) int codes -> (n_frames, latent_dim) float32: each frame's
    quantized latent from its first ``depth`` codebooks (1 <= depth <= n_codebooks), as DAC's
    ``quantizer.from_codes(codes[:, :depth])`` gives it. Its mean over the frames is the clip's
    pooled ``z_q<depth>`` (``z`` at full depth)."""
    books, weight, bias = quantizer["codebooks"], quantizer["out_weight"], quantizer["out_bias"]
    if not 1 <= depth <= books.shape[0]:
        raise ValueError(f"depth {depth}: choose 1..{books.shape[0]}")
    codes = np.asarray(codes)
    out = np.zeros((codes.shape[0], weight.shape[1]), np.float32)
    for level in range(depth):
        entries = books[level][codes[:, level].astype(np.int64)]  # (n_frames, codebook_dim)
        out += entries @ weight[level].T + bias[level]
    return out


def cosine_cost(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, dim), (m, dim) -> (n, m) float64 cosine distances 1 - cos between every frame of
    ``a`` and every frame of ``b`` (a zero frame is at distance 1 from everything)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    na = np.linalg.norm(a, axis=1, keepdims=True)
    nb = np.linalg.norm(b, axis=1, keepdims=True)
    a = np.divide(a, na, out=np.zeros_like(a), where=na > 0)
    b = np.divide(b, nb, out=np.zeros_like(b), where=nb > 0)
    return np.clip(1.0 - a @ b.T, 0.0, 2.0)


def dtw(cost: np.ndarray) -> tuple[float, int]:
    """Dynamic time warping over an (n, m) cost matrix: the least total cost of a path from
    (0, 0) to (n-1, m-1) by steps (1, 0), (0, 1) and (1, 1), and the number of cells on that
    path (ties: the diagonal step, then (1, 0)). ``total / cells`` is the mean frame distance
    along the best alignment. Vectorised over anti-diagonals: n + m numpy steps."""
    cost = np.asarray(cost, np.float64)
    n, m = cost.shape
    if n == 0 or m == 0:
        raise ValueError("dtw of an empty sequence")
    total = np.full((n + 1, m + 1), np.inf)
    cells = np.zeros((n + 1, m + 1), np.int64)
    total[0, 0] = 0.0
    for diagonal in range(2, n + m + 1):  # cells (i, j), 1-based, with i + j == diagonal
        i = np.arange(max(1, diagonal - m), min(n, diagonal - 1) + 1)
        j = diagonal - i
        before = np.stack([total[i - 1, j - 1], total[i - 1, j], total[i, j - 1]])
        way = np.argmin(before, axis=0)
        from_i = i - (way != 2)
        from_j = j - (way != 1)
        total[i, j] = cost[i - 1, j - 1] + before[way, np.arange(len(i))]
        cells[i, j] = cells[from_i, from_j] + 1
    return float(total[n, m]), int(cells[n, m])


def dtw_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The mean cosine distance between aligned frames of ``a`` (n, dim) and ``b`` (m, dim)
    along their best alignment (``dtw``): 0 for the same sequence, ~1 for unrelated ones."""
    total, cells = dtw(cosine_cost(a, b))
    return total / cells


def decimate(n_frames: int, most: int) -> np.ndarray:
    """The frame indices to draw of a path of ``n_frames``: all when at most ``most``, else
    ``most`` evenly spaced ones, the first and the last always in."""
    if n_frames <= most:
        return np.arange(n_frames)
    return np.unique(np.round(np.linspace(0, n_frames - 1, most)).astype(np.int64))

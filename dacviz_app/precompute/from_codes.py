"""What the stored frame codes give without encoding the audio again: the pooled latent at any
codebook depth, and the audio decoded from the first q codebooks.

The cache keeps every clip's DAC codes (``arrays/frame_codes.npy``, (total_frames, n_codebooks)
int16, clip i's frames at rows ``frame_offsets[i]:frame_offsets[i+1]``). DAC's quantizer maps
each frame on its own (a codebook lookup and 1x1 convolutions: ``quantizer.from_codes``), so a
depth's latent is computed from the codes alone; the decoder turns that latent back into audio.
A new depth or a new decoded depth therefore never reads or encodes the audio again, and a
cache built in one run and one extended later compute both through these same functions, on
the same blocks of clips: the same bits.
"""
from __future__ import annotations

import shutil
import time
from typing import Callable, Iterator

import numpy as np
import torch

from dacviz_app.precompute.dac_encode import quantized_at_depth

BLOCK_FRAMES = 16_384  # frames per from_codes call: (1024 x 16k) float32 = 64 MB per depth


def clip_blocks(offsets: np.ndarray, block_frames: int = BLOCK_FRAMES) -> Iterator[tuple[int, int]]:
    """(first clip, end clip) ranges of whole clips with at most ``block_frames`` frames each
    (a longer clip is a block alone). ``offsets``: (n_clips + 1,) int64. A function of the codes
    alone, so every run cuts the same blocks."""
    n = len(offsets) - 1
    start = 0
    while start < n:
        end = start + 1
        while end < n and offsets[end + 1] - offsets[start] <= block_frames:
            end += 1
        yield start, end
        start = end


@torch.inference_mode()
def pooled_depths(model, frames: np.ndarray, offsets: np.ndarray, depths: list[int],
                  progress: Callable[[int], None] = lambda _: None) -> dict[int, np.ndarray]:
    """{q: (n_clips, latent_dim) float32} each clip's quantized latent at q codebooks averaged
    over its own frames (the mean taken in float64).

    Args:
        frames: (total_frames, n_codebooks) int16 codes (memory-mapped is fine).
        offsets: (n_clips + 1,) int64 each clip's first row in ``frames``.
        progress: called with the clips done after each block.
    """
    n_clips = len(offsets) - 1
    dim = int(model.latent_dim) if hasattr(model, "latent_dim") else 1024
    out = {q: np.zeros((n_clips, dim), np.float32) for q in depths}
    for start, end in clip_blocks(offsets):
        lo, hi = int(offsets[start]), int(offsets[end])
        codes = torch.from_numpy(np.asarray(frames[lo:hi], np.int64).T[None].copy())  # (1, n_cb, F)
        bounds = (offsets[start:end] - lo).astype(np.int64)
        counts = np.diff(offsets[start:end + 1]).astype(np.float64)[:, None]
        for q in depths:
            latent = quantized_at_depth(model, codes, q)[0].T.double().numpy()  # (F, dim)
            out[q][start:end] = (np.add.reduceat(latent, bounds, axis=0) / counts).astype(np.float32)
        progress(end)
    return out


DECODE_SECONDS = 2.0  # padded audio per decoder call (clips x the longest): the pipeline passes
# its --batch-seconds; on a CPU the decoder holds ~150 MB a second of it


def decode_groups(frame_counts: list[int], frames_per_second: float,
                  max_seconds: float = DECODE_SECONDS) -> list[list[int]]:
    """Consecutive positions in ``frame_counts`` grouped for one decoder call each: a group
    grows while (its clips x its longest) stays within ``max_seconds`` of audio. A function of
    the clips alone, so every run decodes the same groups (the same bits)."""
    groups: list[list[int]] = []
    longest = 0
    for i, count in enumerate(frame_counts):
        wider = max(longest, count)
        if groups and (len(groups[-1]) + 1) * wider <= max_seconds * frames_per_second:
            groups[-1].append(i)
            longest = wider
        else:
            groups.append([i])
            longest = count
    return groups


@torch.inference_mode()
def decode_clips(model, codes: list[np.ndarray], depth: int, n_samples: list[int]) -> list[np.ndarray]:
    """[(n_samples_i,) float32] each clip decoded from its first ``depth`` codebooks, in one
    decoder call (``codes``: [(T_i, n_codebooks) int16]). Shorter clips are padded with code 0
    to the longest and cut to their own length: a clip's last few milliseconds depend on what
    the decoder's receptive field saw past its end, so a clip's group is fixed
    (``decode_groups``) and the bits repeat run after run."""
    longest = max(len(c) for c in codes)
    batch = np.zeros((len(codes), codes[0].shape[1], longest), np.int64)
    for row, clip in enumerate(codes):
        batch[row, :, :len(clip)] = np.asarray(clip, np.int64).T
    audio = model.decode(quantized_at_depth(model, torch.from_numpy(batch), depth))  # (b, 1, T * hop)
    audio = audio[:, 0].float().numpy()
    return [np.ascontiguousarray(audio[row, :n]) for row, n in enumerate(n_samples)]


def quantizer_tables(model) -> dict[str, np.ndarray]:
    """DAC's residual quantizer as plain arrays (``cache.write_quantizer``'s arguments): every
    codebook's entries and output projection, from the loaded model (weight norm folded by
    ``load_dac``). With them a frame's latent at depth q is, in numpy alone, the sum over the
    first q codebooks of ``out_weight[i] @ codebooks[i][code_i] + out_bias[i]``:
    ``quantizer.from_codes`` (``embedding.frames.frame_latents``)."""
    rvq = model.quantizer
    books, weights, biases = [], [], []
    for level in rvq.quantizers:
        books.append(level.codebook.weight.detach().float().cpu().numpy())       # (size, cb_dim)
        weights.append(level.out_proj.weight.detach().float().cpu().numpy()[:, :, 0])  # (latent, cb_dim)
        biases.append(level.out_proj.bias.detach().float().cpu().numpy())        # (latent,)
    return {"codebooks": np.stack(books), "out_weight": np.stack(weights), "out_bias": np.stack(biases)}


# ----------------------------------------------------------------------------- the pipeline's steps
def quantizer_step(model, paths, steps, say: Callable[[str], None]) -> None:
    """Write the quantizer's tables (``quantizer_tables``) unless the record holds them for
    this DAC: what the viewer turns a clip's frame codes into frame latents with."""
    from dacviz_app import cache as cache_format

    if steps.fresh("quantizer", paths.quantizer):
        return
    tables = quantizer_tables(model)
    cache_format.write_quantizer(paths, **tables)
    steps.done("quantizer")
    size = paths.quantizer.stat().st_size
    say(f"  quantizer tables ({tables['codebooks'].shape[0]} codebooks, {size / 2**20:.1f} MiB)")


def depths_step(model, paths, depths: dict[str, int], steps, say: Callable[[str], None]) -> None:
    """Write the embedding of every depth representation (``depths``: {rep: q}) whose key is
    not recorded (``downstream.Steps``), from the cache's frame codes, in one pass over them."""
    from dacviz_app import cache as cache_format

    todo = {rep: q for rep, q in depths.items()
            if not steps.fresh(f"embedding:{rep}", paths.array(rep, "embedding"))}
    if not todo:
        return
    stored = cache_format.read_frame_codes(paths)
    if stored is None:
        raise FileNotFoundError(f"{paths.frame_codes}: the cache has no frame codes to compute depths from")
    frames, offsets = stored
    started = time.perf_counter()
    pooled = pooled_depths(model, frames, offsets, sorted(set(todo.values())))
    for rep, q in todo.items():
        cache_format.write_embedding(paths, rep, pooled[q])
        steps.done(f"embedding:{rep}")
    say(f"  {', '.join(todo)} from the stored codes of {len(offsets) - 1:,} clips "
        f"{time.perf_counter() - started:7.2f} s")


def decode_step(model, paths, depths: tuple[int, ...], clip_rows: list[int], audio_names: list[str],
                sample_rate: int, steps, say: Callable[[str], None],
                group_seconds: float = DECODE_SECONDS) -> None:
    """Decode the clips ``clip_rows`` (clip ids) from their stored codes at every depth in
    ``depths`` whose ``decode:<q>`` key is not recorded, in ``decode_groups``, one WAV each
    (``audio/q<q>/<name>``). A depth begun by an interrupted run with the same key keeps the
    WAVs it finished (``decode-begun:<q>``); one begun with other inputs is decoded again whole."""
    import soundfile as sf

    from dacviz_app import cache as cache_format
    from dacviz_app.precompute.audio import wav_bytes
    from dacviz_app.precompute.interrupt import raise_if_interrupted
    from dacviz_app.precompute.memory import trim

    todo = [q for q in depths if not steps.fresh(
        f"decode:{q}", *(paths.reconstruction(q, audio_names[row]) for row in clip_rows))]
    if not todo or not clip_rows:
        return
    stored = cache_format.read_frame_codes(paths)
    if stored is None:
        raise FileNotFoundError(f"{paths.frame_codes}: the cache has no frame codes to decode")
    frames, offsets = stored
    counts = [int(offsets[row + 1] - offsets[row]) for row in clip_rows]
    groups = decode_groups(counts, sample_rate / int(model.hop_length), group_seconds)
    for q in todo:
        key = steps.keys[f"decode:{q}"]
        if steps.record.keys.get(f"decode-begun:{q}") != key:
            shutil.rmtree(paths.reconstruction_dir(q), ignore_errors=True)
            steps.record.mark(f"decode-begun:{q}", key)
        started = time.perf_counter()
        for group in groups:
            rows = [clip_rows[i] for i in group]
            targets = [paths.reconstruction(q, audio_names[row]) for row in rows]
            if all(target.is_file() for target in targets):
                continue
            n_samples = [sf.info(str(paths.audio(audio_names[row]))).frames for row in rows]
            audios = decode_clips(model, [frames[offsets[row]:offsets[row + 1]] for row in rows], q, n_samples)
            trim()  # the group's activations, before the next group
            for target, audio in zip(targets, audios):
                data = wav_bytes(audio, sample_rate)
                raise_if_interrupted()
                cache_format.atomic_write_bytes(target, data)
        steps.done(f"decode:{q}")
        steps.record.forget([f"decode-begun:{q}"])
        say(f"  decoded {len(clip_rows):,} clips at {q} codebooks {time.perf_counter() - started:7.2f} s")

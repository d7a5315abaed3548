"""Encoding the plan in resumable chunks: padded batches bounded by audio length, out-of-memory
halving, the encoders beside DAC, each chunk written atomically under work/chunks; and the
precision check against fp32."""
from __future__ import annotations

import contextlib
import itertools
import math
import sys
import time
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np

from dacviz_app import cache as cache_format
from dacviz_app.cache import CachePaths, atomic_save_npz
from dacviz_app.cache.representations import describe
from dacviz_app.precompute.audio import resample
from dacviz_app.precompute.config import COMPILED_SHAPES, PrecomputeConfig
from dacviz_app.precompute.dac_encode import MODEL_CONFIGS, encode_batch, frame_count, load_dac
from dacviz_app.precompute.encoders import Encoder, describe_all, make_encoder
from dacviz_app.precompute.interrupt import raise_if_interrupted
from dacviz_app.precompute.memory import trim
from dacviz_app.precompute.loading import (PreparedClip, padded_batches, prepare_clip,
                                           prepared_clips)
from dacviz_app.precompute.precision import (agreement, agreement_sample, device_name,
                                             precision_mode)
from dacviz_app.precompute.sources import ClipSource




def reconstructed_plan_indices(n_planned: int, max_clips: int) -> np.ndarray:
    """The plan indices whose reconstructions are written: all up to ``max_clips``, else
    ``max_clips`` evenly spread over the plan order (a label with fewer plan entries than the
    stride may get none)."""
    if max_clips <= 0:
        return np.zeros(0, dtype=np.int64)
    if n_planned <= max_clips:
        return np.arange(n_planned)
    return np.unique(np.linspace(0, n_planned - 1, max_clips).round().astype(np.int64))


@dataclass
class BatchLimit:
    """How large an encoder batch may be: padded samples (clips x the longest, rounded up to
    the hop) and clips. One run's own: an out-of-memory error halves it for the rest of the run."""

    samples: int
    clips: int

    def halve(self, failed_clips: int, failed_samples: int) -> None:
        """After a batch of ``failed_clips`` clips and ``failed_samples`` padded samples ran out
        of memory: halve the padded samples (memory grows with them); the clip cap only when it
        was what limited that batch."""
        if failed_clips >= self.clips:
            self.clips = max(1, failed_clips // 2)
        self.samples = max(1, min(self.samples, failed_samples) // 2)


def encode_chunk(model, prepared: list[PreparedClip], n_planned: int, config: PrecomputeConfig,
                  paths: CachePaths, limit: BatchLimit, say: Callable[[str], None],
                  others: Sequence[Encoder] = (),
                  progress: Callable[[int], None] = lambda _: None) -> dict[str, np.ndarray]:
    """Encode one chunk's prepared clips (``loading.prepare_clip`` wrote their playable copies)
    with DAC and with ``others`` (each at its own rate, resampled from the prepared audio);
    returns the chunk arrays (DAC's frame codes among them: the depths and the decoded audio
    come from them later, ``from_codes``). A clip the device cannot hold even
    alone is skipped with that reason. ``progress`` is called with the clips of each batch
    DAC has encoded."""
    sample_rate = MODEL_CONFIGS[config.model_type]["sample_rate"]
    ready = [p for p in prepared if p.audio is not None]
    # the encoders beside DAC first: a clip one of them cannot take is skipped before DAC counts
    # its codes or decodes it, so every array of the cache holds the same clips
    beside, refused = encode_beside(others, [p.audio for p in ready], sample_rate)
    for i in refused:
        paths.audio(paths.audio_name(ready[i].plan_index)).unlink(missing_ok=True)
    taken = [i for i in range(len(ready)) if i not in refused]
    ok = [ready[i] for i in taken]
    pooled, counts, frame_codes, failed = _encode_batches(model, [p.audio for p in ok], config, limit, say,
                                                          progress)
    kept = [row for row in range(len(ok)) if row not in failed]
    for row in failed:
        paths.audio(paths.audio_name(ok[row].plan_index)).unlink(missing_ok=True)
    skipped = sorted([(p.plan_index, p.reason) for p in prepared if p.audio is None]
                     + [(ready[i].plan_index, reason) for i, reason in refused.items()]
                     + [(ok[row].plan_index, reason) for row, reason in failed.items()])
    beside = {name: values[[taken[row] for row in kept]] for name, values in beside.items()}
    chosen = [ok[row] for row in kept]
    mfcc_dim = _representation_dims(config)["mfcc"]
    return {"plan_index": np.asarray([p.plan_index for p in chosen], np.int64),
            **{rep: values[kept] for rep, values in pooled.items()}, **beside, "code_counts": counts,
            **stacked_frame_codes([frame_codes[row] for row in kept], _n_codebooks(config)),
            "mfcc": np.asarray([p.mfcc for p in chosen], np.float32).reshape(len(chosen), mfcc_dim),
            "duration_s": np.asarray([p.duration_s for p in chosen], np.float64),
            "original_rate": np.asarray([p.original_rate for p in chosen], np.int64),
            "channels": np.asarray([p.channels for p in chosen], np.int64),
            "skipped_index": np.asarray([i for i, _ in skipped], np.int64),
            "skipped_reason": np.asarray([r for _, r in skipped], dtype=str)}


def _n_codebooks(config: PrecomputeConfig) -> int:
    return int(MODEL_CONFIGS[config.model_type]["n_codebooks"])


def stacked_frame_codes(per_clip: list[np.ndarray], n_codebooks: int) -> dict[str, np.ndarray]:
    """A chunk's frame codes: {"frame_codes": (sum T_i, n_codebooks) int16, "frame_count": (n,)
    int64 T_i}, from each clip's (T_i, n_codebooks) int16."""
    return {"frame_codes": np.concatenate(per_clip).astype(np.int16) if per_clip
            else np.zeros((0, n_codebooks), np.int16),
            "frame_count": np.asarray([len(c) for c in per_clip], np.int64)}


def encode_beside(encoders: Sequence[Encoder], audios: list[np.ndarray], sample_rate: int
                  ) -> tuple[dict[str, np.ndarray], dict[int, str]]:
    """Each of ``encoders`` over ``audios`` -> ({name: (n, dim) float32}, {row: reason} of the
    clips one of them could not take). A batch that fails is tried again clip by clip, so one
    bad clip (a model error, out of memory) costs only itself."""
    vectors: dict[str, np.ndarray] = {}
    refused: dict[int, str] = {}
    for encoder in encoders:
        try:
            vectors[encoder.name] = encode_with(encoder, audios, sample_rate)
            continue
        except Exception:  # noqa: BLE001 - find the clip(s) at fault, one at a time
            pass
        rows = np.zeros((len(audios), encoder.dim), np.float32)
        for i, audio in enumerate(audios):
            try:
                rows[i] = encode_with(encoder, [audio], sample_rate)[0]
            except Exception as err:  # noqa: BLE001 - recorded as the clip's skip reason
                refused.setdefault(i, f"{encoder.name} could not encode it: {type(err).__name__}: "
                                      f"{str(err)[:200]}")
        vectors[encoder.name] = rows
    return vectors, refused


def encode_with(encoder: Encoder, audios: list[np.ndarray], sample_rate: int) -> np.ndarray:
    """``(n, encoder.dim) float32``: ``audios`` (mono at ``sample_rate``) through ``encoder``,
    resampled to its rate first (``audio.resample``, as every clip was)."""
    if not audios:
        return np.zeros((0, encoder.dim), np.float32)
    clips = [resample(a, sample_rate, encoder.sample_rate) for a in audios]
    return np.asarray(encoder.encode(clips), np.float32).reshape(len(clips), encoder.dim)


def _is_out_of_memory(err: BaseException) -> bool:
    import torch

    text = str(err).lower()
    return isinstance(err, torch.OutOfMemoryError) or any(
        sign in text for sign in ("out of memory", "can't allocate memory", "not enough memory",
                                  "alloc_failed"))


def _encode_batches(model, audios: list[np.ndarray], config: PrecomputeConfig, limit: BatchLimit,
                    say: Callable[[str], None], progress: Callable[[int], None] = lambda _: None
                    ) -> tuple[dict, np.ndarray, list, dict]:
    """Encode in batches of similar length (``loading.padded_batches`` under ``limit``).

    An out-of-memory error halves ``limit`` (said once per halving) and the rows not yet encoded
    are batched again; a clip that fails alone is left out. Returns ({rep: (n, dim)} DAC's base
    representations, rows in input order (zeros for failed rows), (n_codebooks, codebook_size)
    int64 code counts, [(T_i, n_codebooks) int16 or None] each row's frame codes, {row: reason}
    failed rows). ``progress(n)`` after each batch of n clips (a clip that fails alone too)."""
    import torch

    cfg = MODEL_CONFIGS[config.model_type]
    hop = int(model.hop_length)
    lengths = [len(a) for a in audios]
    dims = {name: int(d["dim"]) for name, d in describe(config.model_type).items()
            if d["encoder"] == "dac"}
    out = {name: np.zeros((len(audios), dim), np.float32) for name, dim in dims.items()}
    counts = np.zeros((cfg["n_codebooks"], cfg["codebook_size"]), np.int64)
    frame_codes: list = [None] * len(audios)
    failed: dict[int, str] = {}
    remaining = list(range(len(audios)))

    def batches_of(rows: list[int]) -> list[list[int]]:
        groups = padded_batches([lengths[r] for r in rows], limit.samples, limit.clips, hop)
        return [[rows[i] for i in group] for group in groups]

    queue = batches_of(remaining)
    while queue:
        rows = queue.pop(0)
        try:
            with precision_mode(config.precision, config.device):  # the model only, never the loading
                encoded = encode_batch(model, [audios[i] for i in rows], config.device)
        except (torch.OutOfMemoryError, RuntimeError) as err:
            if not _is_out_of_memory(err):
                raise
            encoded = None
        if encoded is None:  # out of memory: outside the except block, the batch's tensors are freed
            if config.device == "cuda":
                torch.cuda.empty_cache()
            padded = len(rows) * frame_count(max(lengths[r] for r in rows), hop) * hop
            if len(rows) == 1:
                failed[rows[0]] = (f"out of memory on {config.device} even alone "
                                   f"({lengths[rows[0]] / cfg['sample_rate']:.1f} s)")
                progress(1)
                continue
            limit.halve(len(rows), padded)
            say(f"out of memory on {config.device} at {len(rows)} clips x {padded // len(rows):,} "
                f"samples: batches are now at most {limit.clips} clips and "
                f"{limit.samples / cfg['sample_rate']:.1f} s of padded audio")
            queue = batches_of(sorted(rows + [r for batch in queue for r in batch]))
            continue
        for name in dims:
            out[name][rows] = encoded[name]
        counts += encoded["code_counts"]
        for i, row in enumerate(rows):
            frame_codes[row] = encoded["frame_codes"][i]
        del encoded
        trim()  # the batch's activations, before the next batch of another length
        progress(len(rows))
    return out, counts, frame_codes, failed


def _representation_dims(config: PrecomputeConfig) -> dict[str, int]:
    """{representation: dimension} of this run, as the manifest will state them."""
    return {name: int(d["dim"]) for name, d in representations_of(config).items()}


def representations_of(config: PrecomputeConfig) -> dict[str, dict]:
    """The manifest's "representations" of this run: DAC's and MFCC's (``describe``), then
    those of the encoders beside them (``encoders.describe_all``)."""
    return {**describe(config.model_type, config.depths, config.weights.untrained),
            **describe_all(config.encoders)}


def load_encoder(config: PrecomputeConfig):
    """DAC for this run on its device; with ``config.compile`` its encoder is compiled
    (``torch.compile``, dynamic shapes; torch's recompile limit raised to COMPILED_SHAPES)."""
    import torch

    model = load_dac(config.model_type, config.weights, config.device)
    if config.compile:
        # lengths never recompile it (encode.padding_masked); each new batch size may, once:
        # room for the sizes a run's batches take (torch's default of 8 would fall back to eager)
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, COMPILED_SHAPES)
        model.encoder = torch.compile(model.encoder, dynamic=True)
    return model


def encode_all(clips: list[ClipSource], config: PrecomputeConfig, paths: CachePaths,
               progress: bool = True, say: Callable[[str], None] = print, model=None) -> tuple[int, float]:
    """Encode every chunk not yet on disk, clips prepared by ``config.workers`` loader
    processes while the model encodes. Returns (planned clips of the chunks done now, skipped
    ones included; seconds from the first clip to the last chunk saved: the model's loading is
    not in it, a compiled encoder's compilation (on its first batches) is). ``model``: DAC as
    ``load_encoder`` gives it, when the caller has it (None: loaded here)."""
    from tqdm import tqdm

    n_chunks = math.ceil(len(clips) / config.chunk_size)
    todo = [c for c in range(n_chunks) if not paths.chunk(c).is_file()]
    if not todo:
        return 0, 0.0
    sizes = {c: min(config.chunk_size, len(clips) - c * config.chunk_size) for c in todo}
    done_clips = len(clips) - sum(sizes.values())
    model = model or load_encoder(config)
    others = [make_encoder(spec, config.device) for spec in config.encoders]
    cfg = MODEL_CONFIGS[config.model_type]
    limit = BatchLimit(samples=int(config.batch_seconds * cfg["sample_rate"]), clips=config.batch_size)
    indices = [i for c in todo for i in range(c * config.chunk_size, c * config.chunk_size + sizes[c])]
    started = time.perf_counter()
    encoded_now = 0
    with tqdm(total=len(clips), initial=done_clips, unit="clip", desc="encoding",
              disable=not progress, file=sys.stderr, dynamic_ncols=True) as bar, \
            contextlib.closing(prepared_clips([c.path for c in clips], indices, cfg["sample_rate"],
                                              config.max_seconds, paths, config.workers)) as stream:
        tell = bar.write if progress else say
        for chunk in todo:
            prepared = list(itertools.islice(stream, sizes[chunk]))
            moved = [0]

            def advance(n: int) -> None:  # the bar moves per batch, not per chunk
                moved[0] += n
                bar.update(n)

            arrays = encode_chunk(model, prepared, len(clips), config, paths, limit, tell, others,
                                  advance)
            raise_if_interrupted()  # before the chunk counts as done: its WAVs may be cut short
            atomic_save_npz(paths.chunk(chunk), **arrays)
            encoded_now += sizes[chunk]
            bar.update(sizes[chunk] - moved[0])  # the skipped clips of the chunk
    return encoded_now, time.perf_counter() - started


# ----------------------------------------------------------------------------- precision
def encode_record(config: PrecomputeConfig) -> dict:
    """The manifest's "encode": how the encoder ran (``cache`` module docstring)."""
    import torch

    try:
        name = device_name(config.device)
    except (RuntimeError, AssertionError):  # --ray: the workers' GPU, not on this driver
        name = "the Ray workers' GPUs"
    return {"device": config.device, "device_name": name,
            "precision": config.precision, "compile": config.compile, "torch": torch.__version__,
            "batch_size": config.batch_size, "batch_seconds": config.batch_seconds, "agreement": None}


def precision_check(clips: list[ClipSource], plan_index: np.ndarray, z: np.ndarray,
                    config: PrecomputeConfig, paths: CachePaths, say: Callable[[str], None]) -> dict | None:
    """Encode a seeded sample of the encoded clips again in plain fp32 (eager, same device),
    store it (``cache.write_precision_reference``) and compare ``z`` (n_clips, 1024) with it
    (``precision.agreement``). A sampled clip that cannot be read or encoded again is left out
    (said), never an error: the encode is finished. A stored reference of the same sample is
    reused on resume. None when fewer than 2 clips remain."""
    ids = agreement_sample(len(plan_index), config.seed)
    stored = cache_format.read_precision_reference(paths)
    if stored is not None and np.isin(stored[0], ids).all():  # this sample, minus clips left out
        ids, reference = stored
    else:
        say(f"precision check: {len(ids):,} clips again in fp32 to measure {config.precision}"
            + (" + compile" if config.compile else ""))
        sample_rate = MODEL_CONFIGS[config.model_type]["sample_rate"]
        prepared = [prepare_clip(clips[int(plan_index[i])].path, int(plan_index[i]), sample_rate,
                                 config.max_seconds, None) for i in ids]
        readable = [row for row, p in enumerate(prepared) if p.audio is not None]
        plain = replace(config, precision="fp32", compile=False, reconstruct=(), depths=())
        model = load_encoder(plain)
        limit = BatchLimit(samples=int(config.batch_seconds * sample_rate), clips=config.batch_size)
        pooled, _counts, _codes, failed = _encode_batches(
            model, [prepared[row].audio for row in readable], plain, limit, say)
        kept = [i for i in range(len(readable)) if i not in failed]
        if len(readable) < len(ids) or failed:  # changed on disk since, or too big in fp32
            say(f"precision check: {len(ids) - len(kept)} sampled clip(s) could not be encoded "
                f"again in fp32 and are left out of it")
        ids = ids[[readable[i] for i in kept]]
        reference = pooled["z"][kept]
        cache_format.write_precision_reference(paths, ids, reference)
    if len(ids) < 2:
        say("precision check: fewer than 2 clips could be encoded again in fp32; no agreement measured")
        return None
    result = {**agreement(np.asarray(z)[ids], reference), "seed": config.seed}
    say(f"precision check: {config.precision} against fp32 on {result['n']:,} clips: "
        f"{result['k']}-NN agreement {result['knn_agreement']:.3f}, z within "
        f"{100 * result['max_relative_error']:.2f} % (mean {100 * result['mean_relative_error']:.2f} %)")
    return result


# ----------------------------------------------------------------------------- assemble

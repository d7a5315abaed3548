"""The precompute pipeline: clips -> encoded chunks -> arrays, projections, neighbours, metrics.

Resumable at two levels. Encoding runs in fixed chunks of the clip plan (``chunk_size`` clips,
in plan order); each finished chunk is saved atomically under ``work/chunks`` and never redone.
Every later stage writes one file per result and skips a file that already exists. All
results are a deterministic function of the plan (clip list, model, weights, parameters), so
an interrupted run resumed with the same command ends with the same cache as a clean run.
The manifest is written last; then ``work/`` is removed.
"""
from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from . import cache as cache_format
from .audio import resample, wav_bytes
from .cache import CachePaths, atomic_save_npy, atomic_save_npz, atomic_write_bytes
from .encode import MODEL_CONFIGS, WeightsChoice, encode_batch, frame_count, load_dac, pick_device
from .loading import PreparedClip, padded_batches, prepare_clip, prepared_clips
from .analysis import TRUST_K, TRUST_SAMPLE, trust_scores
from .metrics import (KNN_ACCURACY_K, SILHOUETTE_SAMPLE, cluster_metrics, encode_labels,
                      euclidean_knn_index)
from .neighbours import MAX_K, cosine_knn
from .precision import agreement, agreement_sample, describe_settings, device_name, precision_mode
from .projections import pca, sample_3d, tsne, tsne_neighbour_count
from .representations import describe
from .encoders import Encoder, EncoderSpec, describe_all, make_encoder
from .sources import ClipSource
from .spaces import FULL_SPACE, VIEWS, View

MIN_CLIPS = 5
COMPILED_SHAPES = 64  # graphs a compiled encoder may build (one per batch size met)


class PrecomputeError(Exception):
    """A run that cannot start or finish; the message says why and what to do."""


@dataclass
class PrecomputeConfig:
    out: Path
    model_type: str
    weights: WeightsChoice
    device: str = "cpu"
    batch_size: int = 16  # clips per encoder call, at most
    batch_seconds: float = 16.0  # padded audio per encoder call, at most (clips x the longest)
    workers: int = 0  # loader processes preparing clips while the model encodes (0: in turn)
    precision: str = "fp32"  # precision.PRECISIONS
    compile: bool = False  # torch.compile the encoder
    chunk_size: int = 256
    max_seconds: float = 30.0
    seed: int = 42
    knn_k: int = MAX_K
    name: str = "collection"
    source: str = ""
    command: str = ""
    overwrite: bool = False
    synthetic: bool = False
    depths: tuple[int, ...] = ()  # z_q<q> representations (1..n_codebooks-1)
    reconstruct: tuple[int, ...] = ()  # codebook counts decoded back to audio
    reconstruct_max_clips: int = 0  # at most this many clips (evenly spread over the plan)
    encoders: tuple[EncoderSpec, ...] = ()  # beside DAC and MFCC (core.encoders)
    # where the encoding runs, not what it gives (never in the plan): a Ray cluster ("local",
    # "auto" or an address; None: this process) and its worker count (0: one per GPU, else CPU)
    ray: str | None = None
    ray_workers: int = 0


@dataclass
class RunSummary:
    cache_dir: str
    n_planned: int
    n_encoded: int
    n_skipped: int
    skipped_reasons: dict
    newly_encoded: int
    encode_seconds: float
    total_seconds: float
    device: str
    weights: str
    untrained: bool
    already_complete: bool
    metrics_rows: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    knn_accuracy_k: int | None = None
    encoder: str = ""  # precision.describe_settings of the cache's encode record

    @property
    def clips_per_second(self) -> float:
        return self.newly_encoded / self.encode_seconds if self.encode_seconds > 0 else float("nan")


# ----------------------------------------------------------------------------- plan
def source_fingerprint(path: str) -> list:
    """[size in bytes, modification time in ns] of a source file, [None, None] if it cannot be
    read: a file rewritten in place changes its plan entry, so the plan id changes."""
    try:
        st = os.stat(path)
    except OSError:
        return [None, None]
    return [st.st_size, st.st_mtime_ns]


def make_plan(clips: list[ClipSource], config: PrecomputeConfig) -> dict:
    """Everything the results depend on; its hash identifies the run for resuming.

    Each clip is [path, label, speaker, extra columns, size, mtime_ns]: a source file changed
    since the cache was made makes another plan."""
    body = {
        "clips": [[c.path, c.label, c.speaker, list(map(list, c.extra)), *source_fingerprint(c.path)]
                  for c in clips],
        "model_type": config.model_type,
        "weights": config.weights.as_dict(),
        "device": config.device, "chunk_size": config.chunk_size, "batch_size": config.batch_size,
        "batch_seconds": config.batch_seconds, "precision": config.precision, "compile": config.compile,
        "max_seconds": config.max_seconds, "seed": config.seed, "knn_k": config.knn_k,
        "format_version": cache_format.FORMAT_VERSION, "depths": list(config.depths),
        "reconstruct": list(config.reconstruct), "reconstruct_max_clips": config.reconstruct_max_clips,
    }
    if config.encoders:  # each one beside DAC, with the hash of its weights (absent: none, as
        # in the plans of caches made before encoders existed, which stay resumable)
        body["encoders"] = {name: {"spec": spec.as_dict(), "sha256": described["weights"]["sha256"]}
                            for spec in config.encoders
                            for name, described in describe_all((spec,)).items()}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return {"plan_id": digest, **body}


def plan_difference(old: dict, new: dict, shown: int = 3) -> str:
    """What differs between two plans, in words: changed settings, and source files added,
    removed or changed (size or modification time) since the old plan."""
    parts = []
    settings = [k for k in sorted(set(old) | set(new)) if k not in ("plan_id", "clips")
                and old.get(k) != new.get(k)]
    if settings:
        parts.append("settings changed: " + ", ".join(
            f"{k} {json.dumps(old.get(k))} -> {json.dumps(new.get(k))}" for k in settings))
    before = {c[0]: c for c in old.get("clips", []) if isinstance(c, list) and c}
    after = {c[0]: c for c in new.get("clips", [])}
    for what, paths in (("added", [p for p in after if p not in before]),
                        ("removed", [p for p in before if p not in after]),
                        ("changed on disk (size or modification time)",
                         [p for p in after if p in before and before[p][4:] != after[p][4:]]),
                        ("relabelled or with other metadata",
                         [p for p in after if p in before and before[p][1:4] != after[p][1:4]])):
        if paths:
            more = f" and {len(paths) - shown} more" if len(paths) > shown else ""
            parts.append(f"{len(paths)} source file(s) {what}: {', '.join(paths[:shown])}{more}")
    return "; ".join(parts) or "made by another version of dacviz"


def prepare_out_dir(paths: CachePaths, plan: dict, overwrite: bool) -> bool:
    """Check ``paths.root`` against the plan. Returns True when the cache is already complete.

    Call it holding the directory's lock (``cache.DirectoryLock``). Raises PrecomputeError when
    the directory holds something else (another run's cache, a cache of sources that changed
    since, or unrelated files) and ``overwrite`` is not set.
    """
    root = paths.root
    existing = None
    for path in (paths.plan, paths.legacy_plan, paths.manifest):
        if path.is_file():
            existing = cache_format.read_json(path)
            break
    existing_id = existing.get("plan_id") if isinstance(existing, dict) else None
    if existing_id == plan["plan_id"]:
        cache_format.remove_partial_files(root)  # a killed run's half-written files
        return paths.manifest.is_file()
    if existing_id is not None:
        if not overwrite:
            why = plan_difference(existing, plan) if "clips" in existing else \
                "made from different inputs or settings"
            raise PrecomputeError(
                f"{root} holds a cache made from other inputs ({why}). Pass --overwrite to "
                f"rebuild it, or use another --out.")
        _empty_directory(paths)
    elif root.exists() and any(p != paths.lock for p in root.iterdir()):
        raise _not_a_cache(root)
    root.mkdir(parents=True, exist_ok=True)
    cache_format.write_plan(paths, plan)
    return False


def refuse_foreign_directory(paths: CachePaths) -> None:
    """Before anything is written into ``paths.root`` (the lock file included): refuse a
    non-empty directory that holds no dacviz plan or manifest (only a lock left by a killed
    run is allowed)."""
    root = paths.root
    if not root.is_dir():
        return
    entries = [p for p in root.iterdir() if p != paths.lock]
    if entries and not any(p.is_file() for p in (paths.plan, paths.legacy_plan, paths.manifest)):
        raise _not_a_cache(root)


def _not_a_cache(root: Path) -> PrecomputeError:
    return PrecomputeError(f"{root} exists and is not a dacviz cache; refusing to write into it. "
                           f"Choose an empty or new --out directory.")


def _empty_directory(paths: CachePaths) -> None:
    """Remove everything in the cache directory but the lock this run holds."""
    for child in paths.root.iterdir():
        if child == paths.lock:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


# ----------------------------------------------------------------------------- encode
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


def _encode_chunk(model, prepared: list[PreparedClip], n_planned: int, config: PrecomputeConfig,
                  paths: CachePaths, limit: BatchLimit, say: Callable[[str], None],
                  others: Sequence[Encoder] = ()) -> dict[str, np.ndarray]:
    """Encode one chunk's prepared clips (``loading.prepare_clip`` wrote their playable copies)
    with DAC and with ``others`` (each at its own rate, resampled from the prepared audio);
    writes their reconstructions; returns the chunk arrays. A clip the device cannot hold even
    alone is skipped with that reason."""
    sample_rate = MODEL_CONFIGS[config.model_type]["sample_rate"]
    ready = [p for p in prepared if p.audio is not None]
    # the encoders beside DAC first: a clip one of them cannot take is skipped before DAC counts
    # its codes or decodes it, so every array of the cache holds the same clips
    beside, refused = encode_beside(others, [p.audio for p in ready], sample_rate)
    for i in refused:
        paths.audio(paths.audio_name(ready[i].plan_index)).unlink(missing_ok=True)
    taken = [i for i in range(len(ready)) if i not in refused]
    ok = [ready[i] for i in taken]
    wanted = set(reconstructed_plan_indices(n_planned, config.reconstruct_max_clips).tolist())
    decode = [row for row, p in enumerate(ok) if p.plan_index in wanted]
    pooled, counts, decoded, failed = _encode_batches(model, [p.audio for p in ok], config, decode,
                                                      limit, say)
    for depth, audios in decoded.items():
        for row, audio in audios.items():
            atomic_write_bytes(paths.reconstruction(depth, paths.audio_name(ok[row].plan_index)),
                               wav_bytes(audio, sample_rate))
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
            "mfcc": np.asarray([p.mfcc for p in chosen], np.float32).reshape(len(chosen), mfcc_dim),
            "duration_s": np.asarray([p.duration_s for p in chosen], np.float64),
            "original_rate": np.asarray([p.original_rate for p in chosen], np.int64),
            "channels": np.asarray([p.channels for p in chosen], np.int64),
            "skipped_index": np.asarray([i for i, _ in skipped], np.int64),
            "skipped_reason": np.asarray([r for _, r in skipped], dtype=str)}


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


def _encode_batches(model, audios: list[np.ndarray], config: PrecomputeConfig, decode: list[int],
                    limit: BatchLimit, say: Callable[[str], None]) -> tuple[dict, np.ndarray, dict, dict]:
    """Encode in batches of similar length (``loading.padded_batches`` under ``limit``).

    An out-of-memory error halves ``limit`` (said once per halving) and the rows not yet encoded
    are batched again; a clip that fails alone is left out. Returns ({rep: (n, dim)} rows in
    input order (zeros for failed rows), (n_codebooks, codebook_size) int64 code counts,
    {depth: {row: audio}} reconstructions of the rows in ``decode``, {row: reason} failed rows)."""
    import torch

    cfg = MODEL_CONFIGS[config.model_type]
    hop = int(model.hop_length)
    lengths = [len(a) for a in audios]
    dims = {name: int(d["dim"]) for name, d in describe(config.model_type, config.depths).items()
            if d["encoder"] == "dac"}
    out = {name: np.zeros((len(audios), dim), np.float32) for name, dim in dims.items()}
    counts = np.zeros((cfg["n_codebooks"], cfg["codebook_size"]), np.int64)
    decoded: dict[int, dict[int, np.ndarray]] = {depth: {} for depth in config.reconstruct}
    failed: dict[int, str] = {}
    to_decode = set(decode)
    remaining = list(range(len(audios)))

    def batches_of(rows: list[int]) -> list[list[int]]:
        groups = padded_batches([lengths[r] for r in rows], limit.samples, limit.clips, hop)
        return [[rows[i] for i in group] for group in groups]

    queue = batches_of(remaining)
    while queue:
        rows = queue.pop(0)
        local = tuple(i for i, row in enumerate(rows) if row in to_decode)
        try:
            with precision_mode(config.precision, config.device):  # the model only, never the loading
                encoded = encode_batch(model, [audios[i] for i in rows], config.device,
                                       depths=config.depths, reconstruct=config.reconstruct,
                                       reconstruct_rows=local)
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
        for depth, by_row in encoded["reconstructions"].items():
            decoded[depth].update({rows[i]: audio for i, audio in by_row.items()})
    return out, counts, decoded, failed


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
               progress: bool = True, say: Callable[[str], None] = print) -> tuple[int, float]:
    """Encode every chunk not yet on disk, clips prepared by ``config.workers`` loader
    processes while the model encodes. Returns (planned clips of the chunks done now, skipped
    ones included; seconds from the first clip to the last chunk saved: the model's loading is
    not in it, a compiled encoder's compilation (on its first batches) is)."""
    from tqdm import tqdm

    n_chunks = math.ceil(len(clips) / config.chunk_size)
    todo = [c for c in range(n_chunks) if not paths.chunk(c).is_file()]
    if not todo:
        return 0, 0.0
    sizes = {c: min(config.chunk_size, len(clips) - c * config.chunk_size) for c in todo}
    done_clips = len(clips) - sum(sizes.values())
    model = load_encoder(config)
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
            arrays = _encode_chunk(model, prepared, len(clips), config, paths, limit, tell, others)
            atomic_save_npz(paths.chunk(chunk), **arrays)
            encoded_now += sizes[chunk]
            bar.update(sizes[chunk])
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
        pooled, _counts, _decoded, failed = _encode_batches(
            model, [prepared[row].audio for row in readable], plain, [], limit, say)
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
def assemble(clips: list[ClipSource], config: PrecomputeConfig, paths: CachePaths) -> dict:
    """Merge the chunks into per-representation embeddings, clips.json and skipped.json.

    Returns {"embeddings": {rep: (n, dim) float32}, "columns": clips.json's columns,
    "skipped": {reason kind: count} (``cache.write_skipped``), "plan_index": (n,) int64 each
    clip's place in the plan}. The skipped clips stream from the chunks to skipped.json, never
    all in memory. A CSV column named like one the cache computes is kept apart
    (``cache.clip_columns``; ``column_notes`` says which).
    """
    n_chunks = math.ceil(len(clips) / config.chunk_size)
    skipped = cache_format.write_skipped(paths, skipped_clips(clips, n_chunks, paths))
    parts = []
    for c in range(n_chunks):
        with np.load(paths.chunk(c), allow_pickle=False) as chunk:
            parts.append({key: chunk[key] for key in chunk.files if key not in SKIPPED_KEYS})
    plan_index = np.concatenate([p["plan_index"] for p in parts])
    embeddings = {rep: np.concatenate([p[rep] for p in parts]).astype(np.float32)
                  for rep in _representation_dims(config)}
    cache_format.write_code_counts(paths, sum(p["code_counts"] for p in parts))
    durations = np.concatenate([p["duration_s"] for p in parts])
    rates = np.concatenate([p["original_rate"] for p in parts])
    channels = np.concatenate([p["channels"] for p in parts])
    chosen = [clips[i] for i in plan_index]
    computed: dict[str, list] = {
        "id": list(range(len(chosen))),
        "label": [c.label for c in chosen],
        "speaker": [c.speaker for c in chosen],
        "source": [_display_path(c.path, config.source) for c in chosen],
        "duration_s": [round(float(d), 4) for d in durations],
        "audio": [paths.audio_name(int(i)) for i in plan_index],
        "original_rate": [int(r) for r in rates],
        "channels": [int(c) for c in channels],
    }
    user = {name: [dict(c.extra).get(name, "") for c in chosen]
            for name in dict.fromkeys(k for c in clips for k, _ in c.extra)}
    columns, _ = cache_format.clip_columns(computed, user)
    cache_format.write_clips(paths, columns)
    for rep, values in embeddings.items():
        if not paths.array(rep, "embedding").is_file():
            cache_format.write_embedding(paths, rep, values)
    return {"embeddings": embeddings, "columns": columns, "skipped": skipped,
            "plan_index": plan_index}


SKIPPED_KEYS = ("skipped_index", "skipped_reason")  # a chunk's (m,) plan indices and reasons


def skipped_clips(clips: list[ClipSource], n_chunks: int, paths: CachePaths) -> Iterator[dict]:
    """{"source", "label", "reason"} of each clip the chunks skipped, in chunk order, one chunk
    in memory at a time (only its SKIPPED_KEYS are read)."""
    for c in range(n_chunks):
        with np.load(paths.chunk(c), allow_pickle=False) as chunk:
            index, reasons = chunk[SKIPPED_KEYS[0]].tolist(), chunk[SKIPPED_KEYS[1]].tolist()
        for i, reason in zip(index, reasons):
            yield {"source": clips[i].path, "label": clips[i].label, "reason": str(reason)}


def _display_path(path: str, source: str) -> str:
    """The clip's path relative to the source folder (or the CSV's folder) where possible."""
    root = Path(source) if Path(source).is_dir() else Path(source).parent
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return path


# ----------------------------------------------------------------------------- downstream
def project(x: np.ndarray, view: View, seed: int, table: tuple | None,
            sample: np.ndarray | None) -> tuple[np.ndarray, dict, dict | None]:
    """One view of one representation: ((n_clips, view.dim) float32, how it was made, the
    fitted PCA basis (``projections.pca``) or None for t-SNE).
    ``table``: the wider neighbour table for t-SNE (or None); ``sample``: the 3D sample."""
    if view.method == "pca":
        coords, ratio, basis = pca(x, view.dim, seed)
        return coords, {"method": "pca", "explained_variance_ratio": ratio,
                        "explained_variance": float(sum(ratio)), "seed": seed}, basis
    if view.method == "tsne":
        coords, info = tsne(x, view.dim, seed, neighbours=table,
                            sample=sample if view.dim == 3 else None)
        return coords, {"method": "tsne", **info}, None
    raise ValueError(f"no projector for method {view.method!r}")


def project_all(embeddings: dict[str, np.ndarray], config: PrecomputeConfig, paths: CachePaths,
                say: Callable[[str], None]) -> np.ndarray | None:
    """Every view of ``spaces.VIEWS`` for every representation; existing results are kept.
    t-SNE takes its affinities from the neighbour table ``neighbours_all`` left in work/.
    Above MAX_3D_POINTS clips the 3D sample is recorded first. Returns it (or None)."""
    n_clips = len(next(iter(embeddings.values())))
    sample = sample_3d(n_clips, config.seed)
    if sample is not None:
        cache_format.write_sample_3d(paths, sample)
    for rep, x in embeddings.items():
        table = _tsne_table(paths, rep)
        for view in VIEWS:
            if paths.array(rep, view.name).is_file() and paths.projection_info(rep, view.name).is_file():
                continue
            started = time.perf_counter()
            coords, info, basis = project(x, view, config.seed, table, sample)
            if basis is not None:  # before the view: the view's presence means it is done
                cache_format.write_pca_basis(paths, rep, view.name, basis)
            cache_format.write_projection(paths, rep, view.name, coords, info)
            say(f"  {rep:13s} {view.name:6s} {time.perf_counter() - started:7.2f} s")
    return sample


def _tsne_table(paths: CachePaths, rep: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The wider neighbour table of ``rep`` kept in work/ for t-SNE, or None (t-SNE then
    computes it itself: same numbers, more time)."""
    index, distance = paths.work_table(rep, "knn_index"), paths.work_table(rep, "knn_distance")
    if not (index.is_file() and distance.is_file()):
        return None
    return np.load(index, mmap_mode="r"), np.load(distance, mmap_mode="r")


def neighbours_all(embeddings: dict[str, np.ndarray], k: int, paths: CachePaths,
                   say: Callable[[str], None] = lambda _: None, device: str = "cpu") -> None:
    """The exact cosine k-NN table of every representation, on ``device`` in fp32; existing
    tables are kept.

    One search per representation serves both the cache's k-column table and t-SNE's wider
    one (tsne_neighbour_count columns, kept in work/ until the run ends)."""
    for rep, x in embeddings.items():
        done = paths.array(rep, "knn_index").is_file() and paths.array(rep, "knn_distance").is_file()
        tsne_done = all(paths.array(rep, p).is_file() for p in ("tsne2", "tsne3"))
        if done and (tsne_done or _tsne_table(paths, rep) is not None):
            continue
        started = time.perf_counter()
        with precision_mode("fp32", device):
            index, distance = cosine_knn(x, max(k, tsne_neighbour_count(len(x))), device=device)
        atomic_save_npy(paths.work_table(rep, "knn_distance"), distance)
        atomic_save_npy(paths.work_table(rep, "knn_index"), index)
        cache_format.write_neighbours(paths, rep, index[:, :k], distance[:, :k])
        say(f"  {rep:13s} {index.shape[1]}-NN  {time.perf_counter() - started:7.2f} s")


def metrics_all(embeddings: dict[str, np.ndarray], columns: dict[str, list], config: PrecomputeConfig,
                paths: CachePaths, sample_3d: np.ndarray | None = None) -> list[dict]:
    """metrics.json's rows, written and returned: for every categorical column
    (``metric_columns``, the label first), one row per (representation, space). Each row names
    its column. Also the trust of every view (``analysis.trust_scores``; a 3D view with a
    ``sample_3d`` on the clips it draws)."""
    k = min(KNN_ACCURACY_K, len(columns["label"]) - 1)
    scored = metric_columns(columns)
    rows = []
    for column in scored:
        codes = encode_labels(columns[column])
        for rep, x in embeddings.items():
            full_index = np.load(paths.array(rep, "knn_index"), mmap_mode="r")
            rows.append({"representation": rep, "space": FULL_SPACE, "column": column,
                         "dim": int(x.shape[1]),
                         **cluster_metrics(x, codes, np.asarray(full_index[:, :k]), config.seed)})
            for view in VIEWS:
                coords = np.load(paths.array(rep, view.name))
                rows.append({"representation": rep, "space": view.name, "column": column,
                             "dim": view.dim, **cluster_metrics(coords, codes,
                                                                euclidean_knn_index(coords, k),
                                                                config.seed)})
    trust = [{"representation": rep, "view": view.name,
              **trust_scores(x, np.load(paths.array(rep, view.name)), config.seed,
                             among=sample_3d if view.dim == 3 else None)}
             for rep, x in embeddings.items() for view in VIEWS]
    cache_format.write_metrics(paths, rows=rows, trust=trust, params={"silhouette": "sklearn silhouette_score, euclidean",
                   "silhouette_cosine": "sklearn silhouette_score, metric='cosine'",
                   "chance": "share of the most frequent value: the accuracy of always guessing it",
                   "silhouette_sample_above": SILHOUETTE_SAMPLE, "seed": config.seed,
                   "davies_bouldin": "sklearn davies_bouldin_score",
                   "knn_accuracy_k": k,
                   "knn_accuracy": "leave-one-out majority vote of the k nearest other clips; "
                                   "cosine in the full space, euclidean in projections; ties to "
                                   "the nearest tied label",
                   "columns": scored,
                   "trust": "sklearn trustworthiness of each view against its full space "
                            "(L2-normalised: cosine ranks), continuity the same with the roles "
                            "swapped", "trust_k": TRUST_K, "trust_sample_above": TRUST_SAMPLE})
    return rows


METRIC_COLUMN_MAX_VALUES = 200
NOT_METRIC_COLUMNS = ("id", "source", "audio", "duration_s")


def metric_columns(columns: dict[str, list]) -> list[str]:
    """The columns the metrics score: label first, then every other column with 2 to
    METRIC_COLUMN_MAX_VALUES distinct values, fewer than the clips (a category, not an id)."""
    n = len(columns["label"])
    out = ["label"]
    for name, values in columns.items():
        if name in out or name in NOT_METRIC_COLUMNS:
            continue
        distinct = len({str(v) for v in values})
        if 2 <= distinct <= min(METRIC_COLUMN_MAX_VALUES, n - 1):
            out.append(name)
    return out


def finish_cache(embeddings: dict[str, np.ndarray], columns: dict[str, list], config: PrecomputeConfig,
                 plan_id: str, n_skipped: int, paths: CachePaths,
                 say: Callable[[str], None], encode: dict | None = None) -> dict[str, float]:
    """Every step after encoding, in order: the neighbour tables (first: t-SNE reuses them),
    the projections, the metrics; then the manifest and the end of ``work/`` (``cache.finish``).
    ``embeddings``: {rep: (n_clips, dim) float32}; ``columns``: clips.json's columns;
    ``encode``: the manifest's record of how the encoder ran (None: not encoded here).
    Returns the seconds each step took."""
    n_clips = len(columns["label"])
    k = min(config.knn_k, n_clips - 1)
    timings: dict[str, float] = {}

    def step(name: str, run: Callable[[], object]):
        say(f"{name}:")
        started = time.perf_counter()
        result = run()
        timings[name] = time.perf_counter() - started
        return result

    # the driver's own device under --ray: the workers' GPU may not be here
    here = config.device if config.device == "cpu" or not config.ray else pick_device("auto")
    step("neighbours", lambda: neighbours_all(embeddings, k, paths, say, here))
    sample = step("projections", lambda: project_all(embeddings, config, paths, say))
    step("metrics", lambda: metrics_all(embeddings, columns, config, paths, sample))
    decoded = sum(1 for _ in paths.audio_dir.glob("q*/*.wav")) // max(len(config.reconstruct), 1)
    cache_format.finish(paths, cache_format.make_manifest(
        name=config.name, command=config.command, source=config.source,
        synthetic=config.synthetic, plan_id=plan_id, model_type=config.model_type,
        weights=config.weights.as_dict(), n_clips=n_clips, n_skipped=n_skipped, knn_k=k,
        seed=config.seed, sample_3d=None if sample is None else len(sample), depths=config.depths,
        representations=representations_of(config),
        reconstructions={"depths": list(config.reconstruct) if decoded else [], "n_clips": decoded,
                         "max_clips": config.reconstruct_max_clips}, encode=encode))
    return timings


@contextlib.contextmanager
def locked(paths: CachePaths, command: str, say: Callable[[str], None]) -> Iterator[None]:
    """Hold the cache directory's lock (``cache.DirectoryLock``) for a run that writes it;
    refuses a foreign directory first. Another live run -> PrecomputeError."""
    refuse_foreign_directory(paths)
    try:
        lock = cache_format.DirectoryLock(paths.root, command).acquire()
    except cache_format.CacheLocked as err:
        raise PrecomputeError(str(err)) from None
    if lock.warning:
        say(f"warning: {lock.warning}")
    try:
        yield
    finally:
        lock.release()


# ----------------------------------------------------------------------------- run
def run_precompute(clips: list[ClipSource], config: PrecomputeConfig,
                   say: Callable[[str], None] = print, progress: bool = True) -> RunSummary:
    """Build (or finish) the cache for ``clips`` under ``config.out``."""
    started = time.perf_counter()
    paths = CachePaths(Path(config.out))
    plan = make_plan(clips, config)
    refuse_missing_sources(plan, config.source)
    with locked(paths, config.command, say):
        complete = prepare_out_dir(paths, plan, config.overwrite)
        plan_id = plan["plan_id"]
        del plan  # its list of every clip (~200 MB for a million) is written; free it for the run
        newly, encode_seconds = 0, 0.0
        if not complete:
            if config.ray:
                from .distributed import ray_encode_all as encode_chunks
            else:
                encode_chunks = encode_all
            newly, encode_seconds = encode_chunks(clips, config, paths, progress, say)
            data = assemble(clips, config, paths)
            n = len(data["columns"]["label"])
            if n < MIN_CLIPS:
                raise PrecomputeError(f"only {n} clip(s) could be encoded "
                                      f"({skip_counts(data['skipped'])}; see {paths.skipped}); "
                                      f"at least {MIN_CLIPS} are needed.")
            encode = encode_record(config)
            if config.precision != "fp32" or config.compile:
                encode["agreement"] = precision_check(clips, data["plan_index"], data["embeddings"]["z"],
                                                      config, paths, say)
            finish_cache(data["embeddings"], data["columns"], config, plan_id,
                         sum(data["skipped"].values()), paths, say, encode)
    opened = cache_format.open_cache(paths.root)
    return RunSummary(cache_dir=str(paths.root), n_planned=len(clips), n_encoded=opened.n_clips,
                      n_skipped=opened.n_skipped, skipped_reasons=opened.skipped_reasons,
                      newly_encoded=newly,
                      encode_seconds=encode_seconds, total_seconds=time.perf_counter() - started,
                      device=config.device, weights=config.weights.describe(),
                      untrained=config.weights.untrained, already_complete=complete,
                      metrics_rows=opened.metrics["rows"], notes=column_notes(clips),
                      knn_accuracy_k=opened.metrics.get("params", {}).get("knn_accuracy_k"),
                      encoder=describe_settings(opened.encode_settings))


def skip_counts(reasons: dict[str, int]) -> str:
    """'1,000,000 skipped: 999,990 cannot open file, 10 too short' (``cache.skip_kind``'s kinds)."""
    kinds = sorted(reasons, key=lambda kind: (-reasons[kind], kind))
    return f"{sum(reasons.values()):,} skipped" + (": " if kinds else "") + ", ".join(
        f"{reasons[kind]:,} {kind}" for kind in kinds)


def refuse_missing_sources(plan: dict, source: str, shown: int = 3) -> None:
    """Before anything is loaded or written: PrecomputeError when fewer than MIN_CLIPS of the
    plan's files exist (its fingerprints, ``source_fingerprint``, are None for the others), so
    that a list of wrong paths ends in seconds, not after a skip reason for each."""
    missing = (entry[0] for entry in plan["clips"] if entry[4] is None)  # [path, ..., size, mtime]
    found = sum(1 for entry in plan["clips"] if entry[4] is not None)
    if found >= MIN_CLIPS:
        return
    n = len(plan["clips"])
    examples = list(itertools.islice(missing, shown))
    more = f" and {n - found - len(examples):,} more" if n - found > len(examples) else ""
    raise PrecomputeError(f"only {found} of the {n:,} files listed in {source or 'the source'} "
                          f"exist (not found: {', '.join(examples)}{more}); at least {MIN_CLIPS} "
                          f"clips are needed. Check the paths (a CSV's relative paths are "
                          f"relative to its folder).")


def column_notes(clips: list[ClipSource]) -> list[str]:
    """One line per CSV column stored under another name (it is named like a column the cache
    computes itself)."""
    user = {name: [] for name in dict.fromkeys(k for c in clips for k, _ in c.extra)}
    computed = {name: [] for name in cache_format.COMPUTED_CLIP_COLUMNS}
    _, renamed = cache_format.clip_columns(computed, user)
    return [f"CSV column {old!r} is stored as {new!r}: {old!r} is a column dacviz computes itself"
            for old, new in renamed.items()]

#!/usr/bin/env python
"""Encode throughput: the seed notebook's loop, dacviz end to end, and the model alone.

One run, one process, the same clips and device, four kinds of measurement:

  seed loop           the seed notebook's step 5: per file, read, encode alone, mean-pool z
                      (fp32 as dacviz means it: TF32 off);
  reading alone       ``loading.prepared_clips`` with --workers loader processes and no model:
                      read, resample, MFCC, write the playable copy into a temporary cache;
  model alone         ``encode.encode_batch`` on audio already in memory, in the batches precompute
                      makes (chunks of 256 clips, ``loading.padded_batches``), inside
                      ``precision.precision_mode``, at each --precisions (and with --compile,
                      again with a compiled encoder);
  dacviz end to end   ``pipeline.encode_all``, precompute's encode phase from the WAV files to the
                      saved chunks, into a new temporary cache for every run, at the same settings.
                      Its time is the one encode_all reports: loader start-up included, model
                      loading excluded.

Each configuration gets an untimed warm-up (for --compile, a full pass that compiles; its time is
told), then --repeats timed runs. Order: seed loop, reading alone, then per precision (eager ones
first, then compiled ones) model alone and end to end. Each row is told on stderr as soon as it is
measured (a run killed by a timeout keeps what it measured); the whole table follows on stdout.
A row gives the median clips/s (and seconds of audio per second), the ratio to the seed loop, and
the share of the model-alone rate at the same precision and compile setting (fp32 eager for the
seed loop): end to end near 1.00 means the model limits; well below, loading does (compare the
reading-alone row). On a CPU shared with other work the numbers move a lot between runs.

The clips are the demo set (120 espeak-ng words, about 0.5 s, 22.05 kHz WAV) cycled up to --clips;
--seconds S first loops each one to S seconds (written once into a temporary folder). The weights
are untrained (seeded random init): the same architecture and FLOPs, so the same speed.
--neighbours N also times the exact 50-NN search (``neighbours.cosine_knn``) on N random
1024-d rows.

  python bench/bench_encode.py --clips 16 --repeats 1          # a quick look on the CPU
  python bench/bench_encode.py --device cuda --clips 2048 --seconds 1 --compile --neighbours 100000
  python bench/bench_encode.py --device cuda --precisions bf16 --batch-size 64 --workers 4
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf
import torch

from dacviz_app.precompute.cli import BATCH_SECONDS
from dacviz_app.precompute.audio import load_clip
from dacviz_app.cache import CachePaths
from dacviz_app.precompute.demo import write_demo_set
from dacviz_app.precompute.dac_encode import (MODEL_CONFIGS, dac_encode, encode_batch, load_dac, pick_device,
                                    resolve_weights)
from dacviz_app.precompute.loading import padded_batches, prepared_clips
from dacviz_app.embedding.neighbours import cosine_knn
from dacviz_app.precompute.config import PrecomputeConfig
from dacviz_app.precompute.encode_run import encode_all
from dacviz_app.precompute.encode_run import load_encoder
from dacviz_app.precompute.precision import PrecisionError, check_precision, device_name, precision_mode
from dacviz_app.precompute.sources import ClipSource
from dacviz_app.precompute.loading import default_workers
from dacviz_testkit.bench import BenchRecord

MODEL_TYPE = "16khz"
MAX_SECONDS = 30.0  # precompute's default --max-seconds
RECOMPILE_LIMIT = 64  # one process here compiles for several precisions; precompute for one


@dataclass
class Measurement:
    """One table row: ``seconds`` of each timed run over ``n_clips`` clips, or the ``error``
    that stopped it. ``mode`` is (precision, compile) for rows measured at a precision."""

    name: str
    n_clips: int
    seconds: list[float]
    mode: tuple[str, bool] | None = None
    note: str = ""
    error: str = ""

    @property
    def rates(self) -> list[float]:
        return [self.n_clips / s for s in self.seconds]

    @property
    def median(self) -> float | None:
        return statistics.median(self.rates) if self.rates and not self.error else None


def say(text: str) -> None:
    """Progress, on stderr so that the table on stdout stays clean (a killed run still shows it)."""
    print(text, file=sys.stderr, flush=True)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def start(device: str) -> float:
    """A start time, once the device's queued work is done."""
    sync(device)
    return time.perf_counter()


def stop(started: float, device: str) -> float:
    """Seconds since ``started``, the device's queued work included."""
    sync(device)
    return time.perf_counter() - started


def mode_name(precision: str, compiled: bool) -> str:
    return precision + (" + compile" if compiled else "")


def compiled_graphs() -> int:
    """Graphs torch.compile has compiled in this process so far (dynamo's own counter)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


# ----------------------------------------------------------------------------- clips
def looped_copies(files: list[Path], seconds: float, folder: Path) -> list[Path]:
    """Each file looped (or cut) to ``seconds`` at its own sample rate, written under ``folder``
    as 16-bit WAV with the same <word>/<name> layout; returns the new paths in the same order."""
    out = []
    for path in files:
        samples, rate = sf.read(path, dtype="float32")
        n = int(round(seconds * rate))
        target = folder / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        sf.write(target, np.take(samples, np.arange(n) % len(samples), axis=0), rate, subtype="PCM_16")
        out.append(target)
    return out


def clip_files(demo_dir: str, n_clips: int, seconds: float | None, scratch: Path) -> list[Path]:
    """The demo set (written to ``demo_dir`` if missing), looped to ``seconds`` if given, cycled
    up to ``n_clips`` paths."""
    demo = sorted(write_demo_set(Path(demo_dir)))
    if seconds:
        demo = looped_copies(demo, seconds, scratch / "looped")
    return [demo[i % len(demo)] for i in range(n_clips)]


# ----------------------------------------------------------------------------- what is timed
# Each returns the seconds it took, the device's queued work included.
def notebook_model(weights, device: str):
    """DAC as the seed notebook has it: the same seeded weights as ``load_dac``, its weight norms
    computed at every call (``load_dac`` folds them once)."""
    import dac

    torch.manual_seed(weights.seed or 0)
    return dac.DAC(**MODEL_CONFIGS[MODEL_TYPE]).to(device).eval()


def seed_loop(model, files: list[Path], device: str) -> float:
    """The seed's step 5: for each file, read, encode alone, mean-pool z; in fp32."""
    started = start(device)
    with precision_mode("fp32", device):
        for path in files:
            audio = load_clip(path, model.sample_rate, MAX_SECONDS).audio
            x = model.preprocess(torch.from_numpy(audio)[None, None].to(device), model.sample_rate)
            with torch.inference_mode():
                z, _codes, _latents = dac_encode(model, x)
            z.mean(dim=2).squeeze(0).cpu().numpy()
    return stop(started, device)


def pipeline_batches(lengths: list[int], config: PrecomputeConfig, hop: int) -> list[list[int]]:
    """The encoder batches ``encode_all`` makes of clips of these lengths when none is skipped:
    each chunk of ``config.chunk_size`` clips cut by ``padded_batches`` under the batch limits."""
    max_samples = int(config.batch_seconds * MODEL_CONFIGS[config.model_type]["sample_rate"])
    batches = []
    for first in range(0, len(lengths), config.chunk_size):
        chunk = lengths[first:first + config.chunk_size]
        batches += [[first + i for i in group]
                    for group in padded_batches(chunk, max_samples, config.batch_size, hop)]
    return batches


def model_alone(model, audios: list[np.ndarray], batches: list[list[int]], config: PrecomputeConfig) -> float:
    """encode_batch over ``batches`` of in-memory ``audios``, at the config's precision."""
    started = start(config.device)
    for rows in batches:
        with precision_mode(config.precision, config.device):
            encode_batch(model, [audios[i] for i in rows], config.device)
    return stop(started, config.device)


def read_alone(files: list[Path], workers: int) -> float:
    """loading.prepared_clips over every file with ``workers`` loader processes, into a
    temporary cache, no model."""
    sources = [str(f) for f in files]
    rate = MODEL_CONFIGS[MODEL_TYPE]["sample_rate"]
    with tempfile.TemporaryDirectory(prefix="bench-read-") as out:
        started = start("cpu")
        with contextlib.closing(prepared_clips(sources, range(len(sources)), rate, MAX_SECONDS,
                                               CachePaths(Path(out)), workers)) as stream:
            for _ in stream:
                pass
        return stop(started, "cpu")


def end_to_end(clips: list[ClipSource], config: PrecomputeConfig) -> float:
    """pipeline.encode_all into a new temporary cache (it skips chunks already on disk); the
    seconds it reports (model loading excluded)."""
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as out:
        n, seconds = encode_all(clips, replace(config, out=Path(out)), CachePaths(Path(out)),
                                progress=False, say=say)
    if n != len(clips):
        raise RuntimeError(f"encode_all encoded {n} of {len(clips)} clips")
    return seconds


def neighbour_search(n: int, device: str, k: int = 50) -> float:
    """Seconds of cosine_knn(x, k) on (n, 1024) seeded random float32 rows in fp32 (as precompute
    runs it), after a warm-up on at most 2,048 of them; upload and the CPU-side ordering included."""
    x = np.random.default_rng(0).standard_normal((n, 1024), dtype=np.float32)
    few = min(n, 2048)
    with precision_mode("fp32", device):
        cosine_knn(x[:few], min(k, few - 1), device=device)
        started = start(device)
        cosine_knn(x, k, device=device)
        return stop(started, device)


# ----------------------------------------------------------------------------- measuring
def measure(name: str, n_clips: int, run: Callable[[], float], warm_up: Callable[[], float],
            repeats: int, mode: tuple[str, bool] | None = None) -> Measurement:
    """Warm up, then time ``run`` (which returns its own seconds) ``repeats`` times. An error
    becomes the row's ``error``, so one failing configuration does not lose the others. With a
    compiled encoder the warm-up's time is told, and graphs compiled while timed are noted."""
    row = Measurement(name, n_clips, [], mode)
    compiling = bool(mode and mode[1])
    try:
        warm_seconds = warm_up()
        if compiling:
            before = compiled_graphs()
            say(f"  {name}: warm-up (compiles) {warm_seconds:.1f} s, {before} graphs compiled so far")
        for _ in range(repeats):
            row.seconds.append(run())
        if compiling and compiled_graphs() > before:
            row.note = f"  ({compiled_graphs() - before} graph(s) compiled while timed)"
    except Exception as err:  # noqa: BLE001 - reported in the table, the run goes on
        row.error = f"{type(err).__name__}: {err}".splitlines()[0][:200]
    return row


def mode_rows(model, audios: list[np.ndarray], batches: list[list[int]], clips: list[ClipSource],
              config: PrecomputeConfig, repeats: int) -> list[Measurement]:
    """'model alone' then 'dacviz end to end' at the config's precision and compile setting.

    Model alone: warm-up on the first batch, or on every batch when compiling (the compiled
    encoder is built here by ``pipeline.load_encoder``, as precompute builds one per run).
    End to end: warm-up on one batch's worth of clips, or on all of them when compiling
    (encode_all builds its own encoder, which may compile again: the warm-up's time tells)."""
    mode = (config.precision, config.compile)
    encoder = load_encoder(config) if config.compile else model
    every = partial(model_alone, encoder, audios, batches, config)
    first = partial(model_alone, encoder, audios, batches[:1], config)
    alone = measure(f"model alone {mode_name(*mode)}", len(audios), every,
                    every if config.compile else first, repeats, mode)
    warm_clips = clips if config.compile else clips[:config.batch_size]
    whole = measure(f"dacviz end to end {mode_name(*mode)}", len(clips), partial(end_to_end, clips, config),
                    partial(end_to_end, warm_clips, config), repeats, mode)
    return [alone, whole]


# ----------------------------------------------------------------------------- report
class Table:
    """The measured rows, the seed loop first. Each row is told on stderr as soon as it is
    measured, with the ratios known by then (a run killed by a timeout still shows it);
    ``print`` writes them all on stdout at the end."""

    def __init__(self, mean_seconds: float):
        self.rows: list[Measurement] = []
        self.mean_seconds = mean_seconds

    def add(self, *rows: Measurement) -> None:
        for row in rows:
            self.rows.append(row)
            say(self.line(row))

    @property
    def failed(self) -> bool:
        return any(r.error for r in self.rows)

    def line(self, row: Measurement) -> str:
        """name, median clips/s, seconds of audio/s, x vs seed, share of the model-alone rate at
        the row's precision and compile setting ('-' where unknown or meaningless), each run."""
        if row.error:
            return f"{row.name:36s} FAILED: {row.error}"
        rate = row.median
        seed = self.rows[0].median
        alone = {r.mode: r.median for r in self.rows if r.name.startswith("model alone")}.get(row.mode)
        versus = f"x{rate / seed:6.2f} vs seed" if seed else "x     - vs seed"
        share = f"{rate / alone:5.2f} of model alone" if alone else "    - of model alone"
        return (f"{row.name:36s} {rate:8.1f} clips/s ({rate * self.mean_seconds:7.1f} s audio/s)  {versus}  "
                f"{share}   runs: {', '.join(f'{r:.1f}' for r in row.rates)}{row.note}")

    def print(self) -> None:
        for row in self.rows:
            print(self.line(row), flush=True)

    def record(self, record: BenchRecord) -> None:
        """Each row's rate per timed run, in clips/s and in seconds of audio per second, against
        the seed loop's (a failed row: no runs)."""
        seed = self.rows[0].name if self.rows else None
        for row in self.rows:
            rates = [] if row.error else row.rates
            against = seed if row.name != seed else None
            record.add(row.name, rates, "clips/s", baseline=against, better="higher")
            record.add(f"{row.name}: s audio/s", [r * self.mean_seconds for r in rates], "s audio/s",
                       baseline=f"{against}: s audio/s" if against else None, better="higher")


# ----------------------------------------------------------------------------- main
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="default %(default)s: cuda when there is one")
    parser.add_argument("--clips", type=int, default=120,
                        help="clips per timed run (the demo set, cycled; default %(default)s)")
    parser.add_argument("--seconds", type=float,
                        help="loop (or cut) each demo clip to this length first (default: as they are, ~0.5 s)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed runs per configuration (median shown; default %(default)s)")
    parser.add_argument("--precisions", nargs="+", metavar="P",
                        help="fp32, tf32 (cuda only), bf16 (default: fp32 bf16 on cpu; fp32 tf32 bf16 on cuda)")
    parser.add_argument("--compile", action="store_true",
                        help="also measure each precision with a torch.compile'd encoder")
    parser.add_argument("--workers", type=int,
                        help="loader processes (default: 0 on cpu, min(8, cores - 1) on cuda, as precompute)")
    parser.add_argument("--batch-size", type=int, help="clips per encoder call, at most (default: cpu 8, cuda 256)")
    parser.add_argument("--batch-seconds", type=float,
                        help="padded audio per encoder call, at most (default: precompute's, "
                             "cpu 4, cuda 256)")
    parser.add_argument("--neighbours", type=int, default=0, metavar="N",
                        help="also time the 50-NN search on N random 1024-d rows (default 0: skip)")
    parser.add_argument("--demo-dir", default="demo_data",
                        help="where the demo WAVs are (written there first if missing: needs espeakng-loader; "
                             "default %(default)s)")
    args = parser.parse_args()
    args.device = pick_device(args.device)
    cuda = args.device == "cuda"
    args.precisions = args.precisions or (["fp32", "tf32", "bf16"] if cuda else ["fp32", "bf16"])
    try:
        for precision in args.precisions:
            check_precision(precision, args.device)
    except PrecisionError as err:
        parser.error(str(err))
    args.workers = default_workers(args.device) if args.workers is None else args.workers
    args.batch_size = args.batch_size or (256 if cuda else 8)
    args.batch_seconds = args.batch_seconds or BATCH_SECONDS["cuda" if cuda else "cpu"]
    if args.clips < 1 or args.repeats < 1 or args.neighbours < 0 or args.workers < 0 \
            or (args.seconds is not None and args.seconds <= 0):
        parser.error("--clips and --repeats must be at least 1, --seconds above 0, "
                     "--workers and --neighbours 0 or more")
    return args


def main() -> int:
    args = parse_args()
    device = args.device
    if args.compile:
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
    weights = resolve_weights(MODEL_TYPE, None, True, 42)
    base = PrecomputeConfig(out=Path("unused"), model_type=MODEL_TYPE, weights=weights, device=device,
                            batch_size=args.batch_size, batch_seconds=args.batch_seconds,
                            workers=args.workers, depths=(), reconstruct=())
    modes = [(p, False) for p in args.precisions] + [(p, True) for p in args.precisions if args.compile]
    with tempfile.TemporaryDirectory(prefix="bench-clips-") as scratch:
        files = clip_files(args.demo_dir, args.clips, args.seconds, Path(scratch))
        clips = [ClipSource(path=str(f), label=f.parent.name) for f in files]
        model = load_dac(MODEL_TYPE, weights, device)
        rate = int(model.sample_rate)
        loaded = {f: load_clip(f, rate, MAX_SECONDS).audio for f in set(files)}
        audios = [loaded[f] for f in files]
        mean_seconds = float(np.mean([len(a) for a in audios])) / rate
        batches = pipeline_batches([len(a) for a in audios], base, int(model.hop_length))
        print(f"device={device} ({device_name(device)}) torch={torch.__version__} "
              f"threads={torch.get_num_threads()} clips={len(files)} mean clip {mean_seconds:.2f} s "
              f"workers={args.workers} batches <= {args.batch_size} clips / {args.batch_seconds:g} s "
              f"({len(batches)} batches) DAC {MODEL_TYPE}, untrained weights: same FLOPs", flush=True)
        table = Table(mean_seconds)
        seed_model = notebook_model(weights, device)  # the notebook's: its weight norms not folded
        table.add(measure("seed loop (1 clip/call, fp32)", len(files), partial(seed_loop, seed_model, files, device),
                          partial(seed_loop, seed_model, files[:4], device), args.repeats, ("fp32", False)))
        del seed_model
        table.add(measure(f"reading alone ({args.workers} workers)", len(files),
                          partial(read_alone, files, args.workers),
                          partial(read_alone, files[:16], args.workers), args.repeats))
        for precision, compiled in modes:
            config = replace(base, precision=precision, compile=compiled)
            table.add(*mode_rows(model, audios, batches, clips, config, args.repeats))
    say("")
    table.print()
    record = BenchRecord("bench_encode")
    table.record(record)
    failed = table.failed
    if args.neighbours:
        figure = f"neighbours: cosine_knn of {args.neighbours:,} x 1024, k=50"
        try:
            seconds = neighbour_search(args.neighbours, device)
            print(f"neighbours: cosine_knn of {args.neighbours:,} x 1024 float32, k=50, on {device}: "
                  f"{seconds:.2f} s (upload and CPU-side ordering included)", flush=True)
            record.add(figure, seconds, "s")
        except Exception as err:  # noqa: BLE001 - reported, like a failed row
            print(f"neighbours: FAILED {type(err).__name__}: {err}", flush=True)
            record.add(figure, [], "s")
            failed = True
    record.save()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

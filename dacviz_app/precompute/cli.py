"""Encode a labelled clip collection with DAC into a self-contained dacviz cache.

Examples:
  # the built-in demo (espeak-ng digits + yes/no, 10 voices), offline, untrained weights
  python precompute.py --demo --untrained --out cache/demo

  # Speech Commands, the seed notebook's selection, DAC 16 kHz weights from a file
  python precompute.py data/speech_commands_v0.02 --words zero one two yes no --per-word 10 \\
      --weights ~/weights_16khz.pth --out cache/sc5x10

  # any folder-per-label tree, or a CSV manifest (path,label[,speaker,...])
  python precompute.py my_clips/ --out cache/mine
  python precompute.py clips.csv --out cache/mine --device cuda --batch-size 64

  # on a GPU, faster than fp32: bf16 and a compiled encoder (the cost is measured and stored)
  python precompute.py my_clips/ --out cache/fast --device cuda --precision bf16 --compile

  # codebook depths 1, 2, 4 only; no decoded audio
  python precompute.py my_clips/ --out cache/mine --depths 1 2 4 --reconstruct

  # a trained reference beside DAC: the speaker encoder (the default when installed), and a
  # Hugging Face model you have on disk (never downloaded), pooled at its 6th hidden layer
  python precompute.py my_clips/ --out cache/mine --encoders resemblyzer wav2vec2 \\
      --encoder-path wav2vec2=models/wav2vec2-base --layer 6

  # on a Ray cluster (--out and the clips on a filesystem every node shares): the same cache
  python precompute.py my_clips/ --out /shared/cache/mine --ray auto
  python precompute.py --demo --untrained --out cache/demo --ray local --ray-workers 2

Rerun the same command after an interruption (Ctrl-C, kill, crash): it resumes.
"""
from __future__ import annotations

import importlib.util

import argparse
import math
import os
import shlex
import signal
import sys
from pathlib import Path

from dacviz_app.embedding.approximate import (AUTO_EXACT_UP_TO, METHODS, PROBE, RECALL_K, RECALL_SAMPLE,
                                              RECALL_TARGET)
from dacviz_app.cache.models import MODEL_CONFIGS
from dacviz_app.embedding.neighbours import MAX_K
from dacviz_app.embedding.projections import DEFAULT_PERPLEXITY, MAX_PERPLEXITY
from dacviz_app.precompute.interrupt import CtrlC
from dacviz_app.precompute.precision import AGREEMENT_MAX_CLIPS, PRECISIONS
from dacviz_app.precompute.summary import format_summary, untrained_banner

EXIT_USAGE, EXIT_INTERRUPTED = 2, 130
MAX_SEED = 2**32 - 1  # numpy's and scikit-learn's seeds are 32-bit
MAX_CLIP_SECONDS = 24 * 3600.0
# a first look: what the demo computes in a minute on 2 CPU cores (docs/precompute.md, "A first
# look"); every other depth, decoded clip or DNSMOS score is one rerun away, paid for alone
DEFAULT_DEPTHS = (1, 2, 4, 8, 16)  # those below the model's codebook count
RECONSTRUCT_MAX_CLIPS = {"cuda": 1_000, "cpu": 12}  # a CPU decodes ~0.2 s a clip and depth
DNSMOS_CLIPS = {"cuda": 8, "cpu": 0}  # DNSMOS runs on the CPU either way: ~0.7 s a clip and depth
BATCH_SECONDS = {"cuda": 256.0, "cpu": 2.0}  # padded audio per encoder call (and per decoder call)


def default_depths(model_type: str) -> tuple[int, ...]:
    """The powers of two below the model's codebook count: 1 2 4 8 at 16 kHz (each depth costs a
    representation's neighbours, projections, metrics and probes)."""
    n = MODEL_CONFIGS[model_type]["n_codebooks"]
    return tuple(q for q in DEFAULT_DEPTHS if q < n)


def default_reconstruct(model_type: str) -> tuple[int, ...]:
    """1, 2, 4, 8... below n_codebooks, and n_codebooks (16 kHz: 1 2 4 8 12)."""
    n = MODEL_CONFIGS[model_type]["n_codebooks"]
    return tuple(q for q in (1, 2, 4, 8, 16) if q < n) + (n,)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="\n".join(__doc__.split("\n")[2:]), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", nargs="?", help="Speech Commands or folder-per-label tree "
                        "(ROOT/<label>/<clip>), or a CSV manifest with path,label[,speaker,...]")
    parser.add_argument("--demo", action="store_true",
                        help="synthesise the offline demo set with espeak-ng and encode it")
    parser.add_argument("--demo-dir", default="demo_data",
                        help="where --demo writes its WAV files (default: ./demo_data)")
    parser.add_argument("--out", required=True, help="cache directory to write")
    parser.add_argument("--name", help="collection name shown in the app (default: from SOURCE)")
    parser.add_argument("--words", nargs="+", help="only these labels (folder names / label values)")
    parser.add_argument("--per-word", type=int, help="sample this many clips per label (seeded)")
    parser.add_argument("--seed", type=int, default=42,
                        help=f"seed for sampling, t-SNE and the untrained init, 0..{MAX_SEED} "
                             f"(default 42)")
    parser.add_argument("--model-type", default="16khz", choices=list(MODEL_CONFIGS),
                        help="DAC variant (default 16khz)")
    parser.add_argument("--weights", default="auto", metavar="PATH|auto",
                        help="DAC checkpoint (.pth). Default auto: the file in DAC's own download "
                             "cache (~/.cache/descript/dac), downloaded there with DAC's downloader "
                             "when it is missing (from $DACVIZ_DAC_WEIGHTS_URL, a mirror of DAC's "
                             "release files, when set)")
    parser.add_argument("--untrained", action="store_true",
                        help="use the DAC architecture with seeded RANDOM weights (tests, offline demos)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="where DAC runs (default auto: cuda when torch sees a GPU, else cpu)")
    parser.add_argument("--precision", default="fp32", choices=list(PRECISIONS),
                        help="the encoder's arithmetic, recorded in the cache (default fp32: "
                             "IEEE float32, TF32 off; tf32: NVIDIA GPUs; bf16: autocast). Anything "
                             "but fp32 also re-encodes a sample of up to "
                             f"{AGREEMENT_MAX_CLIPS:,} clips in fp32 and reports the difference")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the encoder (a warm-up of a minute or more; pays off "
                             "on a GPU and large collections; measured like a precision)")
    parser.add_argument("--batch-size", type=int,
                        help="clips per encoder call, at most (default: 8 on CPU, where larger "
                             "batches measured slower, 256 on CUDA)")
    parser.add_argument("--batch-seconds", type=float,
                        help="padded audio per encoder call (and per decoder call), at most: "
                             f"clips x the longest (default: {BATCH_SECONDS['cpu']:g} s on CPU, "
                             f"where memory grows ~100 MB a second of it and larger batches were "
                             f"not faster, {BATCH_SECONDS['cuda']:g} s on CUDA; an out-of-memory error "
                             "halves it and the run goes on)")
    parser.add_argument("--workers", type=int,
                        help="processes that read, resample and convert clips while the model "
                             "encodes (default: 0 on CPU, where the encoder uses every core; "
                             "min(8, cores - 1) with CUDA). The cache is the same for any number")
    parser.add_argument("--chunk-size", type=int, default=256,
                        help="clips per resumable unit of work (default 256)")
    parser.add_argument("--max-seconds", type=float, default=30.0,
                        help="skip clips longer than this (default 30)")
    parser.add_argument("--knn-k", type=int, default=MAX_K,
                        help=f"neighbours stored per clip (1..{MAX_K}, default {MAX_K})")
    parser.add_argument("--neighbours", choices=("auto", *METHODS), default="auto",
                        help=f"how the neighbour tables are searched: exact (every pair), approximate "
                             f"(an inverted file: each clip against the clips of the {PROBE} k-means lists "
                             f"nearest its own, of about sqrt(n), more until recall@{RECALL_K} reaches "
                             f"{RECALL_TARGET}; its recall@{RECALL_K} against exact search on "
                             f"{RECALL_SAMPLE:,} sampled clips is measured, kept and shown), or auto "
                             f"(default: exact up to {AUTO_EXACT_UP_TO:,} clips and on a GPU, else "
                             f"approximate)")
    parser.add_argument("--perplexity", type=float, default=DEFAULT_PERPLEXITY,
                        help=f"t-SNE's perplexity, about the neighbourhood size each clip keeps "
                             f"(default {DEFAULT_PERPLEXITY:g}, as in the seed notebook; capped at "
                             f"(clips - 1) / 3; a class with fewer clips than it is spread by it, "
                             f"the app says so). Changing it recomputes only the t-SNE views and "
                             f"their metrics")
    parser.add_argument("--depths", nargs="*", type=int, metavar="Q",
                        help="codebook depths q stored as representations z_q<q>: the latent of "
                             "the first q residual codebooks (default: 1 2 4 8, the powers of two "
                             "below the model's codebook count; the full count is z itself; no "
                             "value: none). Adding one later costs only that depth: it comes from "
                             "the stored codes")
    parser.add_argument("--reconstruct", nargs="*", type=int, metavar="Q",
                        help="decode clips back to audio from their first q codebooks, for each "
                             "q (default for 16khz: 1 2 4 8 12; no value: none)")
    parser.add_argument("--reconstruct-max-clips", type=int, metavar="N",
                        help="decode at most N clips, evenly spread over the collection; their "
                             "fidelity is measured, the others show none (default "
                             f"{RECONSTRUCT_MAX_CLIPS['cuda']:,} on a GPU, "
                             f"{RECONSTRUCT_MAX_CLIPS['cpu']} on a CPU, where DAC's decoder takes "
                             "0.5 to 2 s a clip for the five default depths: 2 idle cores, 1 busy one)")
    parser.add_argument("--dnsmos-clips", type=int, metavar="N",
                        help="score DNSMOS (a trained, reference-free quality model; ~0.7 s a "
                             "clip and depth, on the CPU) for at most N of the decoded clips, evenly "
                             "spread; SI-SDR, log-mel distance, STOI and PESQ score every decoded "
                             f"clip (default {DNSMOS_CLIPS['cuda']} with a GPU, "
                             f"{DNSMOS_CLIPS['cpu']} on a CPU, where 8 cost ~35 s, half a first look; "
                             "0: no DNSMOS)")
    parser.add_argument("--no-pesq", action="store_true",
                        help="leave wide-band PESQ out of the fidelity (its reference code may not be "
                             "used commercially: README.md, licences); the other measures stay")
    parser.add_argument("--encoders", nargs="+", metavar="NAME",
                        help="encoders beside DAC and MFCC (always there), one representation "
                             "each: resemblyzer (a trained speaker encoder, shipped in its wheel) "
                             "and the names given --encoder-path (default: every built-in one "
                             "installed, and every --encoder-path)")
    parser.add_argument("--encoder-path", action="append", default=[], metavar="NAME=PATH",
                        help="a Hugging Face transformers audio model (Wav2Vec2, HuBERT, WavLM, "
                             "Whisper) from a local folder, as representation NAME (repeatable)")
    parser.add_argument("--layer", type=int, metavar="N",
                        help="pool hidden layer N of the --encoder-path models (default: the last "
                             "hidden state)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a cache in --out that was made from other inputs")
    parser.add_argument("--ray", metavar="local|auto|ADDRESS",
                        help="encode the chunks on a Ray cluster: 'local' starts one on this machine, "
                             "'auto' joins the one `ray start` runs here, or its ADDRESS (host:port). "
                             "--out and the clips must be on a filesystem every node shares. The "
                             "cache is the one this machine would make. Needs Ray "
                             "(pip install -e '.[ray]')")
    parser.add_argument("--ray-workers", type=int, default=0, metavar="N",
                        help="Ray workers, one model each (default: one per GPU of the cluster, "
                             "else one per CPU; with --ray local also the CPUs it starts)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if bool(args.source) == bool(args.demo):
        parser.error("give exactly one of SOURCE or --demo")
    if args.per_word is not None and args.per_word < 1:
        parser.error("--per-word must be >= 1")
    if not (math.isfinite(args.perplexity) and 1 <= args.perplexity <= MAX_PERPLEXITY):
        parser.error(f"--perplexity must be between 1 and {MAX_PERPLEXITY:g}")
    if not 1 <= args.knn_k <= MAX_K:
        parser.error(f"--knn-k must be between 1 and {MAX_K}")
    if (args.batch_size is not None and args.batch_size < 1) or args.chunk_size < 1:
        parser.error("--batch-size and --chunk-size must be >= 1")
    if args.batch_seconds is not None and not (math.isfinite(args.batch_seconds) and args.batch_seconds > 0):
        parser.error("--batch-seconds must be a positive number of seconds")
    if not 0 <= args.ray_workers <= 4096:
        parser.error("--ray-workers must be between 0 and 4096")
    if args.ray_workers and not args.ray:
        parser.error("--ray-workers needs --ray")
    if args.ray and (args.precision != "fp32" or args.compile):
        parser.error("--ray encodes in fp32 for now: its precision check would re-encode on the "
                     "driver, which may not have the workers' GPU (drop --precision/--compile)")
    if args.workers is not None and not 0 <= args.workers <= 64:
        parser.error("--workers must be between 0 and 64")
    if not 0 <= args.seed <= MAX_SEED:
        parser.error(f"--seed must be between 0 and {MAX_SEED}")
    n_codebooks = MODEL_CONFIGS[args.model_type]["n_codebooks"]
    for option, values in (("--depths", args.depths), ("--reconstruct", args.reconstruct)):
        if values and not all(1 <= q <= n_codebooks for q in values):
            parser.error(f"{option}: each q must be between 1 and {n_codebooks} (the "
                         f"{args.model_type} model has {n_codebooks} codebooks)")
    if args.layer is not None and args.layer < 0:
        parser.error("--layer must be >= 0")
    if args.dnsmos_clips is not None and args.dnsmos_clips < 0:
        parser.error("--dnsmos-clips must be >= 0")
    if not args.no_pesq and importlib.util.find_spec("pesq") is None:
        parser.error("the pesq package is not installed: install it (requirements.txt) or pass --no-pesq")
    if args.reconstruct_max_clips is not None and args.reconstruct_max_clips < 0:
        parser.error("--reconstruct-max-clips must be >= 0")
    if not (math.isfinite(args.max_seconds) and 0 < args.max_seconds <= MAX_CLIP_SECONDS):
        parser.error(f"--max-seconds must be a positive number of seconds, at most "
                     f"{MAX_CLIP_SECONDS:g} (got {args.max_seconds:g})")
    return args


def config_from(args: argparse.Namespace, argv: list[str] | None, source: Path, weights, device: str,
                others: tuple):
    """The run's PrecomputeConfig: the arguments, with each default the device gives resolved."""
    from dacviz_app.precompute.config import PrecomputeConfig
    from dacviz_app.precompute.loading import default_workers

    kind = "cuda" if device == "cuda" else "cpu"
    depths = default_depths(args.model_type) if args.depths is None else \
        tuple(sorted({q for q in args.depths if q < MODEL_CONFIGS[args.model_type]["n_codebooks"]}))
    reconstruct = default_reconstruct(args.model_type) if args.reconstruct is None else \
        tuple(sorted(set(args.reconstruct)))
    return PrecomputeConfig(
        depths=depths, reconstruct=reconstruct,
        reconstruct_max_clips=RECONSTRUCT_MAX_CLIPS[kind] if args.reconstruct_max_clips is None
        else args.reconstruct_max_clips,
        dnsmos_clips=DNSMOS_CLIPS[kind] if args.dnsmos_clips is None else args.dnsmos_clips,
        pesq=not args.no_pesq, encoders=others,
        out=Path(args.out).resolve() if args.ray else Path(args.out), model_type=args.model_type,
        weights=weights, device=device,
        batch_size=args.batch_size or (256 if device == "cuda" else 8),
        batch_seconds=args.batch_seconds or BATCH_SECONDS[kind],
        workers=default_workers(device) if args.workers is None else args.workers,
        precision=args.precision, compile=args.compile,
        chunk_size=args.chunk_size, max_seconds=args.max_seconds,
        seed=args.seed, knn_k=args.knn_k, perplexity=args.perplexity, neighbours=args.neighbours,
        name=args.name or ("demo" if args.demo else source.stem),
        source=str(source.resolve()), overwrite=args.overwrite, ray=args.ray, ray_workers=args.ray_workers,
        command=" ".join(shlex.quote(a) for a in [os.path.basename(sys.argv[0])] + (argv or sys.argv[1:])))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    CtrlC().install()
    from dacviz_app.cache import CacheError
    from dacviz_app.precompute.dac_encode import WeightsNotFound, pick_device, resolve_weights
    from dacviz_app.precompute.encoders import EncoderError, describe_all, parse_specs
    from dacviz_app.precompute.config import PrecomputeError
    from dacviz_app.precompute.pipeline import run_precompute
    from dacviz_app.precompute.precision import check_precision
    from dacviz_app.precompute.sources import SourceError, select_clips
    from dacviz_app.precompute.ray_encode import RayUnavailable

    say = lambda text: print(text, flush=True)  # noqa: E731
    try:
        weights = resolve_weights(args.model_type, args.weights, args.untrained, args.seed, say)
        if args.ray:  # the cluster's devices, not this machine's
            from dacviz_app.precompute.ray_encode import connect, device_for

            device = device_for(args.device, connect(args.ray, args.ray_workers or None))
        else:
            device = pick_device(args.device)
        check_precision(args.precision, device)
        if args.demo:
            from dacviz_app.precompute.demo import write_demo_set

            write_demo_set(Path(args.demo_dir))
            source = Path(args.demo_dir)
        else:
            source = Path(args.source)
        clips = select_clips(source, args.words, args.per_word, args.seed, exclude=(Path(args.out),))
        others = parse_specs(args.encoders, args.encoder_path, args.layer)
        beside = describe_all(others)  # loads each once: a bad folder fails here, not mid-run
    except (WeightsNotFound, SourceError, EncoderError, RuntimeError, ValueError, RayUnavailable) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    if weights.untrained:
        say(untrained_banner())
    say(f"{len(clips)} clips selected from {source} · model DAC {args.model_type} · device {device} "
        f"· weights {weights.describe()}")
    say("encoders: " + ", ".join([f"dac ({'UNTRAINED' if weights.untrained else 'trained'})", "mfcc (no weights)"]
                                 + [f"{name} ({entry['dim']}-D, trained)" for name, entry in beside.items()]))
    config = config_from(args, argv, source, weights, device, others)
    try:
        summary = run_precompute(clips, config, say=say, progress=not args.no_progress)
    except (PrecomputeError, RayUnavailable, CacheError) as err:  # CacheError: --out's cache is damaged
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as err:
        print(f"error: cannot write the cache in {args.out}: {err}\n"
              f"Free disk space or fix the directory, then rerun the same command: finished work "
              f"is kept, and no incomplete cache looks complete (manifest.json is written last).",
              file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print(f"\ninterrupted. Finished work is saved in {args.out}; rerun the same command to "
              f"resume.", file=sys.stderr)
        return EXIT_INTERRUPTED
    say(format_summary(summary))
    return 0


def run(argv: list[str] | None = None) -> int:
    """main(), with a Ctrl-C that comes before the run starts (imports, clip scan) answered by
    one line too."""
    try:
        return main(argv)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("\ninterrupted before any work was done.", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(run())

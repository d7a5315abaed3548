#!/usr/bin/env python
"""What the codec lens costs: codebook depths and decoded audio, against a plain encode, in the
same run, on the same clips.

Encode side (medians of --repeats, seconds per clip): DAC's encode alone (z, codes_concat,
codes_mean); plus the pooled latent at every depth 1..n-1 (``quantizer.from_codes``); plus
decoding every clip back to audio at the default depths (1 2 4 8 12). Downstream, per depth (a
1024-D representation like z): the exact neighbour table, PCA 2D/3D, t-SNE 2D/3D and the label
metrics on the same N clips. Each is warmed up first, untimed (the encodes on one clip, the
downstream steps on 8), so that one-off first-call costs count in none of them. Disk per depth
and per decoded depth, from the dtypes (arrays) and the cache (WAV files).

  python bench/bench_codec_lens.py --cache cache/demo --clips 120 --repeats 3
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from dacviz_app.precompute.audio import load_clip
from dacviz_app.cache import open_cache
from dacviz_app.precompute.dac_encode import encode_batch, load_dac, resolve_weights
from dacviz_app.precompute.from_codes import decode_clips, decode_groups, pooled_depths
from dacviz_app.embedding.metrics import cluster_metrics, encode_labels
from dacviz_app.cache.models import MODEL_CONFIGS
from dacviz_app.embedding.neighbours import MAX_K, cosine_knn
from dacviz_app.embedding.projections import pca, tsne, tsne_neighbour_count
from dacviz_testkit.bench import BenchRecord


def encode_seconds(model, clips, batch: int, depths: tuple[int, ...] = (),
                   reconstruct: tuple[int, ...] = ()) -> float:
    """Seconds to encode ``clips`` in batches of ``batch`` (shortest first), then pool
    ``depths`` from the frame codes and decode every clip at each of ``reconstruct``, as
    precompute does (``from_codes``)."""
    started = time.perf_counter()
    order = sorted(range(len(clips)), key=lambda i: len(clips[i]))
    codes, lengths = [], []
    for start in range(0, len(order), batch):
        rows = order[start:start + batch]
        codes += encode_batch(model, [clips[i] for i in rows], "cpu")["frame_codes"]
        lengths += [len(clips[i]) for i in rows]
    offsets = np.concatenate([[0], np.cumsum([len(c) for c in codes])]).astype(np.int64)
    if depths:
        pooled_depths(model, np.concatenate(codes), offsets, list(depths))
    groups = decode_groups([len(c) for c in codes], model.sample_rate / model.hop_length)
    for q in reconstruct:
        for group in groups:
            decode_clips(model, [codes[i] for i in group], q, [lengths[i] for i in group])
    return time.perf_counter() - started


def downstream_seconds(x: np.ndarray, labels: list[str], seed: int = 42) -> dict[str, float]:
    out = {}
    started = time.perf_counter()
    index, distance = cosine_knn(x, max(min(MAX_K, len(x) - 1), tsne_neighbour_count(len(x))))
    out["neighbours"] = time.perf_counter() - started
    started = time.perf_counter()
    pca(x, 2, seed), pca(x, 3, seed)
    out["pca"] = time.perf_counter() - started
    started = time.perf_counter()
    tsne(x, 2, seed, neighbours=(index, distance)), tsne(x, 3, seed, neighbours=(index, distance))
    out["tsne"] = time.perf_counter() - started
    started = time.perf_counter()
    cluster_metrics(x, encode_labels(labels), index[:, :5], seed)
    out["metrics"] = time.perf_counter() - started
    return out


def depth_bytes(n_clips: int, dim: int = 1024, k: int = MAX_K) -> int:
    """Bytes one depth adds to a cache of n_clips: embedding float32, 4 projections (2+3+2+3
    float32 columns), the k-NN index int32 and distance float32."""
    return n_clips * (dim * 4 + (2 + 3 + 2 + 3) * 4 + k * 8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default="cache/demo",
                        help="a demo cache: its clips and labels (default %(default)s)")
    parser.add_argument("--clips", type=int, default=120,
                        help="its first clips encoded and projected (default %(default)s)")
    parser.add_argument("--batch", type=int, default=8, help="clips per encoder call (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each encode (default %(default)s)")
    args = parser.parse_args()
    if args.clips < 2 or args.batch < 1 or args.repeats < 1:
        parser.error("--clips must be at least 2, --batch and --repeats at least 1")
    record = BenchRecord("bench_codec_lens")
    cache = open_cache(args.cache)
    model_type = cache.model["type"]
    n_codebooks = MODEL_CONFIGS[model_type]["n_codebooks"]
    ids = list(range(min(args.clips, cache.n_clips)))
    clips = [load_clip(cache.audio_path(i), cache.model["sample_rate"], 30).audio for i in ids]
    seconds = sum(len(c) for c in clips) / cache.model["sample_rate"]
    model = load_dac(model_type, resolve_weights(model_type, None, True, cache.seed), "cpu")
    decoded = tuple(sorted({q for q in (1, 2, 4, 8) if q < n_codebooks} | {n_codebooks}))
    ways = {"encode (z, codes)": {},
            f"+ depths 1..{n_codebooks - 1}": {"depths": tuple(range(1, n_codebooks))},
            f"+ decode at {' '.join(map(str, decoded))}": {"depths": tuple(range(1, n_codebooks)),
                                                            "reconstruct": decoded}}
    times = {name: [] for name in ways}
    for kwargs in ways.values():  # untimed: the first call's one-off costs are no way's
        encode_seconds(model, clips[:1], args.batch, **kwargs)
    for _ in range(args.repeats):
        for name, kwargs in ways.items():
            times[name].append(encode_seconds(model, clips, args.batch, **kwargs))
    print(f"{len(clips)} demo clips ({seconds:.1f} s of audio), batch {args.batch}, CPU, "
          f"medians of {args.repeats}:")
    base = statistics.median(times["encode (z, codes)"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:28s} {median:7.2f} s  {1000 * median / len(clips):7.1f} ms/clip  x{median / base:.2f}")
    for name, values in times.items():  # each against the plain encode, the first
        against = None if name == "encode (z, codes)" else "encode (z, codes)"
        record.add(name, values, "s", baseline=against)
        record.add(f"{name}: ms/clip", [1000 * v / len(clips) for v in values], "ms",
                   baseline=f"{against}: ms/clip" if against else None)
    x = np.asarray(cache.embedding("z"))[ids]
    labels = [cache.clips["label"][i] for i in ids]
    downstream_seconds(x[:8], labels[:8], cache.seed)  # untimed: imports, thread pools, first-call costs
    steps = downstream_seconds(x, labels, cache.seed)
    print(f"downstream of one depth (1024-D) at {len(ids)} clips: " +
          ", ".join(f"{k} {v:.2f} s" for k, v in steps.items()) + f"; total {sum(steps.values()):.2f} s")
    for step, value in steps.items():
        record.add(f"downstream of one depth: {step}", value, "s")
    record.add("downstream of one depth: total", sum(steps.values()), "s")
    per_depth = depth_bytes(cache.n_clips)
    wavs = {q: sum(p.stat().st_size for p in (cache.paths.audio_dir / f"q{q}").glob("*.wav"))
            for q in cache.reconstruction_depths}
    print(f"disk per depth: {per_depth / 1e6:.2f} MB at {cache.n_clips} clips "
          f"({depth_bytes(100_000) / 1e6:.0f} MB at 100,000); decoded audio per depth: " +
          ", ".join(f"q{q} {b / 1e6:.2f} MB" for q, b in wavs.items()))
    record.add("disk per depth", per_depth / 1e6, "MB")  # at the cache's clips, from the dtypes
    for q, b in wavs.items():
        record.add(f"decoded audio per depth: q{q}", b / 1e6, "MB")
    record.save()


if __name__ == "__main__":
    main()

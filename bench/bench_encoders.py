#!/usr/bin/env python
"""How well each representation of a cache separates speakers (and words): the leave-one-out
k-NN accuracy (cosine, k=5 by default) and the cosine silhouette, by speaker and by label,
recomputed here with scikit-learn from the cache's arrays, with the chance level (the most
frequent value's share). Also the encoders' time per clip, from the cache's manifest when
given --time (it encodes the cache's own audio copies again with each built-in encoder).

  python bench/bench_encoders.py --cache cache/demo
  python bench/bench_encoders.py --cache cache/fsdd --k 5
"""
from __future__ import annotations

import argparse
import time
from collections import Counter

import numpy as np

from dacviz_testkit.bench import BenchRecord

CHANCE = "chance (most frequent value)"


def loo_knn_accuracy(x: np.ndarray, y: np.ndarray, k: int) -> float:
    """Leave-one-out k-NN accuracy, cosine distance, majority vote (ties: the nearest's value
    among the tied ones, as scikit-learn's KNeighborsClassifier resolves them: the first class in
    sorted order)."""
    from sklearn.model_selection import LeaveOneOut, cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier

    predicted = cross_val_predict(KNeighborsClassifier(k, metric="cosine"), x, y, cv=LeaveOneOut())
    return float((predicted == y).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default="cache/demo", help="cache directory (default %(default)s)")
    parser.add_argument("--k", type=int, default=5, help="neighbours of the vote (default 5)")
    parser.add_argument("--time", action="store_true",
                        help="also time each built-in encoder per clip (default: off)")
    args = parser.parse_args()
    if args.k < 1:
        parser.error("--k must be at least 1")
    record = BenchRecord("bench_encoders")
    from sklearn.metrics import silhouette_score

    from dacviz_app.cache import open_cache

    cache = open_cache(args.cache)
    columns = {c: np.asarray([str(v) for v in cache.clips[c]]) for c in ("speaker", "label")}
    print(f"{cache.name}: {cache.n_clips} clips, {len(set(columns['speaker']))} speakers, "
          f"{len(set(columns['label']))} labels; leave-one-out {args.k}-NN (cosine), silhouette (cosine)")
    chance = {c: Counter(v).most_common(1)[0][1] / len(v) for c, v in columns.items()}
    for column in ("speaker", "label"):  # what each accuracy is against
        record.add(f"{CHANCE}: {column} acc", chance[column], "share", better="higher")
    print(f"{'representation':32s} {'weights':10s} {'speaker acc':>11s} {'speaker sil':>11s} "
          f"{'label acc':>9s} {'label sil':>9s}")
    for rep in cache.representations:
        if cache.kbps(rep) is not None and rep != "z":
            continue  # the depths: z's own rows say enough here
        x = np.asarray(cache.embedding(rep), dtype=np.float64)
        weights = "none" if cache.encoder(rep) == "mfcc" else "trained" if cache.trained(rep) else "UNTRAINED"
        cells = []
        for column in ("speaker", "label"):
            cells += [loo_knn_accuracy(x, columns[column], args.k),
                      float(silhouette_score(x, columns[column], metric="cosine"))]
        print(f"{rep:32s} {weights:10s} {cells[0]:11.3f} {cells[1]:11.3f} {cells[2]:9.3f} {cells[3]:9.3f}")
        for (column, cell), value in zip([(c, m) for c in ("speaker", "label") for m in ("acc", "sil")], cells):
            record.add(f"{rep}: {column} {cell}", value, "share" if cell == "acc" else "cosine",
                       baseline=f"{CHANCE}: {column} acc" if cell == "acc" else None, better="higher")
    print(f"{CHANCE:43s} {chance['speaker']:11.3f} {'':11s} {chance['label']:9.3f}")
    if args.time:
        import soundfile as sf

        from dacviz_app.precompute.encoders import EncoderSpec, available_built_in, make_encoder
        from dacviz_app.precompute.encode_run import encode_with

        audios = [sf.read(str(cache.audio_path(i)), dtype="float32")[0] for i in range(min(cache.n_clips, 64))]
        rate = int(cache.manifest["audio"]["sample_rate"])
        for name in ["mfcc", *available_built_in()]:
            encoder = make_encoder(EncoderSpec(name))
            runs = []
            for _ in range(3):
                started = time.perf_counter()
                encode_with(encoder, audios, rate)
                runs.append((time.perf_counter() - started) / len(audios))
            print(f"{name}: {1000 * float(np.median(runs)):.1f} ms per clip (median of 3, {len(audios)} clips)")
            record.add(f"{name}: ms per clip", [1000 * r for r in runs], "ms")
    record.save()


if __name__ == "__main__":
    main()

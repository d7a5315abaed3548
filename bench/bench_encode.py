#!/usr/bin/env python
"""Encode throughput: the seed notebook's one-clip-at-a-time loop vs dacviz's batched encode.

Both run in the same process on the same clips with the same model; each configuration is
timed REPEATS times and the median clips/s is printed, with the ratio against the seed loop.

  python bench/bench_encode.py                       # demo clips, CPU, untrained 16 kHz DAC
  python bench/bench_encode.py --device cuda --clips 2048 --batch-sizes 64 256
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from dacviz_app.core.audio import load_clip  # noqa: E402
from dacviz_app.core.demo import write_demo_set  # noqa: E402
from dacviz_app.core.encode import dac_encode, encode_batch, load_dac, pick_device, resolve_weights  # noqa: E402


def seed_loop(model, files, device) -> None:
    """The seed's step 5: for each file, read, encode alone, mean-pool z."""
    for path in files:
        audio = load_clip(path, model.sample_rate, 30).audio
        x = model.preprocess(torch.from_numpy(audio)[None, None].to(device), model.sample_rate)
        with torch.inference_mode():
            z, _codes, _latents = dac_encode(model, x)
        z.mean(dim=2).squeeze(0).cpu().numpy()


def batched(model, files, device, batch_size) -> None:
    """dacviz: read all, sort by length, encode in padded, masked batches."""
    audios = sorted((load_clip(p, model.sample_rate, 30).audio for p in files), key=len)
    for start in range(0, len(audios), batch_size):
        encode_batch(model, audios[start:start + batch_size], device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--clips", type=int, default=120, help="clips per timed run (demo set, repeated)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--demo-dir", default="demo_data")
    args = parser.parse_args()
    device = pick_device(args.device)
    demo = sorted(write_demo_set(Path(args.demo_dir)))
    files = [demo[i % len(demo)] for i in range(args.clips)]
    model = load_dac("16khz", resolve_weights("16khz", None, True, 42), device)
    seconds = np.mean([load_clip(f, 16000, 30).duration_s for f in files])
    print(f"device={device} torch={torch.__version__} threads={torch.get_num_threads()} "
          f"clips={len(files)} mean clip {seconds:.2f} s, DAC 16 kHz (untrained weights: same FLOPs)")
    batched(model, files[:8], device, 8)  # warm-up
    runs = {"seed loop (1 clip/call)": lambda: seed_loop(model, files, device)}
    for size in args.batch_sizes:
        runs[f"batched, batch {size}"] = lambda size=size: batched(model, files, device, size)
    base = None
    for name, run in runs.items():
        rates = []
        for _ in range(args.repeats):
            if device == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
            run()
            if device == "cuda":
                torch.cuda.synchronize()
            rates.append(len(files) / (time.perf_counter() - started))
        median = statistics.median(rates)
        base = base or median
        print(f"{name:28s} median {median:8.1f} clips/s  ({median * seconds:7.1f} s audio/s)  "
              f"x{median / base:5.2f} vs seed   runs: {', '.join(f'{r:.1f}' for r in rates)}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python
"""Build a large synthetic cache fitted to a real one (see dacviz_app/precompute/synthetic.py) and
print the time of each non-encoding step and the peak memory.

  python bench/make_synthetic_cache.py --source cache/demo --n 100000 --out cache/synth100k
  python bench/make_synthetic_cache.py --source cache/demo --n 100000 --depths 1 2 4 8 --out cache/synth100k-depths
"""
from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

from dacviz_app.precompute.synthetic import build_synthetic_cache  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="cache/demo")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", type=float, default=1.0)
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--depths", type=int, nargs="*", default=None,
                        help="the source's depths (z_q<q>) to carry over (default: all it has; "
                             "none: --depths with no value)")
    args = parser.parse_args()
    started = time.perf_counter()
    result = build_synthetic_cache(Path(args.source), Path(args.out), args.n, args.seed, args.noise,
                                   args.overwrite, say=lambda text: print(text, flush=True),
                                   depths=None if args.depths is None else tuple(args.depths))
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"N={args.n}: total {time.perf_counter() - started:.1f} s, peak RSS {peak_gb:.2f} GB; "
          + ", ".join(f"{k} {v:.1f} s" for k, v in result["seconds"].items()))


if __name__ == "__main__":
    main()

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
from dacviz_testkit.bench import BenchRecord  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="cache/demo", help="the real cache fitted (default %(default)s)")
    parser.add_argument("--n", type=int, default=100_000, help="synthetic clips (default %(default)s)")
    parser.add_argument("--out", required=True, help="the synthetic cache's directory")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    parser.add_argument("--noise", type=float, default=1.0,
                        help="scale of each label's spread (default %(default)s: the source's)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace --out if it holds another cache (default: stop there; the same cache "
                             "is kept if complete, resumed if not)")
    parser.add_argument("--depths", type=int, nargs="*", default=None,
                        help="the source's depths (z_q<q>) to carry over (default: all it has; "
                             "none: --depths with no value)")
    parser.add_argument("--neighbours", choices=("auto", "exact", "approximate"), default="auto",
                        help="how the neighbour tables are searched, as precompute's --neighbours "
                             "(default auto: exact up to 200,000 clips)")
    args = parser.parse_args()
    started = time.perf_counter()
    result = build_synthetic_cache(Path(args.source), Path(args.out), args.n, args.seed, args.noise,
                                   args.overwrite, say=lambda text: print(text, flush=True),
                                   depths=None if args.depths is None else tuple(args.depths),
                                   neighbours=args.neighbours)
    total = time.perf_counter() - started
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"N={args.n}: total {total:.1f} s, peak RSS {peak_gb:.2f} GB; "
          + ", ".join(f"{k} {v:.1f} s" for k, v in result["seconds"].items()))
    record = BenchRecord("make_synthetic_cache")
    record.add("total", total, "s")
    record.add("peak RSS", peak_gb, "GB")
    for step, seconds in result["seconds"].items():  # none when --out was already complete
        record.add(step, seconds, "s")
    record.save()


if __name__ == "__main__":
    main()

"""What a bench script leaves behind besides its printed table: its figures as JSON.

Each figure is a name, a unit, the median, min and max of its runs (``n`` of them), whether lower or
higher is better, and the name of the figure of the same run it is compared with (its baseline),
if any. ``bench/run_all.py`` sets $DACVIZ_BENCH_RECORD to a file per script, adds the machine and
the commit, and writes one JSON and one markdown table per run; run alone, a script writes nothing.

    record = BenchRecord("bench_analysis")
    record.add("confusion of the k-NN vote", [0.21, 0.19, 0.20], "s")
    record.add("plain Dash page ready", samples, "s")
    record.add("dacviz page ready", samples, "s", baseline="plain Dash page ready")
    record.save()
"""
from __future__ import annotations

import json
import math
import os
import statistics
from pathlib import Path

RECORD_ENV = "DACVIZ_BENCH_RECORD"


class BenchRecord:
    """The figures of one bench script's run, in the order they were measured."""

    def __init__(self, script: str):
        self.script = script
        self.figures: list[dict] = []

    def add(self, name: str, samples, unit: str, baseline: str | None = None,
            better: str = "lower") -> float:
        """Record a figure from its runs (a number, or a list of one per run); returns the median.
        ``baseline``: the name of a figure recorded earlier in this run that it is compared with."""
        values = [float(v) for v in (samples if isinstance(samples, (list, tuple)) else [samples])]
        finite = [v for v in values if math.isfinite(v)]
        if baseline is not None and baseline not in {f["name"] for f in self.figures}:
            raise ValueError(f"baseline {baseline!r} is not a figure recorded before {name!r}")
        if better not in ("lower", "higher"):
            raise ValueError("better is 'lower' or 'higher'")
        median = statistics.median(finite) if finite else math.nan
        self.figures.append({"name": name, "unit": unit, "median": median,
                             "min": min(finite) if finite else math.nan,
                             "max": max(finite) if finite else math.nan,
                             "n": len(values), "baseline": baseline, "better": better})
        return median

    def save(self) -> Path | None:
        """Write the figures where $DACVIZ_BENCH_RECORD says (nothing when it is unset)."""
        target = os.environ.get(RECORD_ENV)
        if not target:
            return None
        path = Path(target)
        path.write_text(json.dumps({"script": self.script, "figures": self.figures}, indent=1,
                                   allow_nan=True))
        return path

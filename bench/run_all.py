#!/usr/bin/env python
"""Every bench script, in order, at one size; one JSON and one markdown table per run.

Sizes:
  smoke  tiny arguments that still reach every branch a user can (caches with and without
         codebook depths, with and without the speaker encoder, the plain-Dash baseline, every
         representation switch, each precision this machine has); what the test tier runs
         (tests/bench); minutes.
  demo   the demo set as the README builds it (120 clips): the figures of docs/benchmarks.md that
         are measured on the demo cache.
  100k   100,000 synthetic clips fitted to the demo cache, one cache with codebook depths and
         one without: the app at scale, the analysis, the scaling and precompute figures.

Each script runs in a fresh interpreter as a user would run it; its printed table is kept, checked
for its columns, and its figures (``dacviz_testkit.bench.BenchRecord``) gathered. A run's JSON holds
the commit, the machine (CPU model, cores, GPU, load average at the start), each script's command,
exit status, seconds and figures (median, min, max, the same-run baseline); it goes under --out
(default bench/results, which git ignores), with a markdown table beside it.

  bash scripts/bench.sh                          # --size smoke
  bash scripts/bench.sh --size 100k --only bench_app_scale
  bash scripts/bench.sh --compare bench/results/A.json bench/results/B.json
"""
from __future__ import annotations

import argparse
import datetime
import functools
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from dacviz_app.cache import CachePaths
from dacviz_testkit.bench import RECORD_ENV

ROOT = Path(__file__).resolve().parents[1]
SIZES = ("smoke", "demo", "100k")


class Caches:
    """The inputs of one size, each built on first use under ``work/caches`` (and reused by later
    runs): the demo WAVs, a real cache (depths, speaker encoder, decoded clips), a real one with
    none of those (smoke only; else the real one), a synthetic one without depths and one with
    them. ``real``/``wavs``: a demo cache and its WAVs built earlier (the test tier passes the
    run's own), used instead of building one. A run of some scripts (``--only``) builds only
    the caches they use."""

    def __init__(self, size: str, work: Path, say, real: Path | None = None, wavs: Path | None = None):
        self.size, self.dir, self.say = size, work / "caches", say
        self.dir.mkdir(parents=True, exist_ok=True)
        self._real, self._wavs = real, wavs

    def _demo(self, *args: str) -> list[str]:
        return [sys.executable, str(ROOT / "precompute.py"), "--demo", "--demo-dir", str(self.wavs_dir),
                "--untrained", "--no-progress", *args]

    @property
    def wavs_dir(self) -> Path:
        return self._wavs or self.dir / "demo_wavs"

    @functools.cached_property
    def wavs(self) -> Path:
        if self._wavs is None:
            self.real  # precompute --demo writes the WAVs while it builds the real cache
        return self.wavs_dir

    @functools.cached_property
    def real(self) -> Path:
        if self._real is not None:
            return self._real
        out = self.dir / f"demo-{self.size}"
        smoke = ["--per-word", "3", "--dnsmos-clips", "2"] if self.size == "smoke" else []
        return built(out, self._demo("--out", str(out), *smoke), self.say)

    @functools.cached_property
    def plain(self) -> Path:
        if self.size != "smoke":
            return self.real
        out = self.dir / "plain-smoke"  # DAC and MFCC only: no speaker encoder, no depths, nothing decoded
        return built(out, self._demo("--per-word", "2", "--encoders", "mfcc", "--depths", "--reconstruct",
                                     "--out", str(out)), self.say)

    def _synthetic(self, name: str, depths: list[str]) -> Path:
        n = {"smoke": 400, "demo": 5000, "100k": 100_000}[self.size]
        out = self.dir / f"{name}-{n}"
        return built(out, [sys.executable, str(ROOT / "bench" / "make_synthetic_cache.py"), "--source",
                           str(self.real), "--n", str(n), "--out", str(out), "--overwrite", *depths], self.say)

    @functools.cached_property
    def synthetic(self) -> Path:
        return self._synthetic("synthetic", ["--depths"])

    @functools.cached_property
    def synthetic_depths(self) -> Path:
        # two depths are enough for the slider and the switch, and cost a seventh of eleven (at
        # 100k every depth is a representation's t-SNE: eleven would take over an hour here)
        return self._synthetic("synthetic_depths", ["--depths", "2", "4"] if self.size != "demo" else [])


@dataclass
class Bench:
    """One run of one script: its arguments at each size (a size it lacks: not run at that size)
    and the columns its table must print."""

    script: str
    args: dict = field(default_factory=dict)  # size -> callable(Caches, work dir) -> list[str]
    columns: tuple[str, ...] = ()
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or self.script


SUITE = [
    Bench("bench_sound_memo.py", {"smoke": lambda c, w: ["--entries", "300", "--writes", "10"],
                                  "demo": lambda c, w: [], "100k": lambda c, w: []},
          ("write below the bound", "write past the bound", "SharedFileMemo (now)")),
    Bench("bench_encode.py", {
        "smoke": lambda c, w: ["--clips", "4", "--repeats", "1", "--precisions", "fp32", "bf16",
                               "--neighbours", "500", "--demo-dir", str(c.wavs)],
        "demo": lambda c, w: ["--clips", "120", "--repeats", "3", "--demo-dir", str(c.wavs)],
        "100k": lambda c, w: ["--clips", "120", "--repeats", "3", "--demo-dir", str(c.wavs),
                              "--neighbours", "100000"]},
        ("clips/s", "seed loop", "reading alone", "model alone fp32", "dacviz end to end fp32",
         "model alone bf16", "neighbours: cosine_knn")),
    Bench("bench_codec_lens.py", {
        "smoke": lambda c, w: ["--cache", str(c.real), "--clips", "3", "--repeats", "1"],
        "demo": lambda c, w: ["--cache", str(c.real)], "100k": lambda c, w: ["--cache", str(c.real)]}),
    Bench("bench_measures.py", {
        "smoke": lambda c, w: ["--cache", str(c.real), "--clips", "3", "--repeats", "1"],
        "demo": lambda c, w: ["--cache", str(c.real)], "100k": lambda c, w: ["--cache", str(c.real)]}),
    Bench("bench_encoders.py", {size: (lambda c, w: ["--cache", str(c.real), "--time"]) for size in SIZES}),
    Bench("bench_query.py", {
        "smoke": lambda c, w: ["--cache", str(c.real), "--queries", "3", "--browser", "1"],
        "demo": lambda c, w: ["--cache", str(c.real), "--browser", "3"],
        "100k": lambda c, w: ["--cache", str(c.real), "--browser", "3"]}),
    Bench("bench_query.py", {"smoke": lambda c, w: ["--cache", str(c.plain), "--queries", "3"]},
          name="bench_query.py (no speaker encoder, no depths)"),
    Bench("bench_paths.py", {
        "smoke": lambda c, w: ["--cache", str(c.real), "--clips", "4", "--scale-cache", str(c.synthetic)],
        "demo": lambda c, w: ["--cache", str(c.real), "--browser", "5"],
        "100k": lambda c, w: ["--cache", str(c.real), "--scale-cache", str(c.synthetic), "--browser", "5"]},
        ("frame codes", "one clip's path", "two paths compared", "kept (a frame's", "openTSNE transform")),
    Bench("bench_ray.py", {
        "smoke": lambda c, w: ["--per-word", "1", "--chunk-size", "6", "--dnsmos-clips", "0", "--depths", "2",
                                   "--no-warm-up"],
        "demo": lambda c, w: [], "100k": lambda c, w: []}),
    Bench("load_test.py", {
        "smoke": lambda c, w: ["--cache", str(c.real), "--workers", "1", "--clients", "2", "--requests", "60",
                               "--seconds", "5", "--queries", "0", "1", "--slow-clients", "2"],
        "demo": lambda c, w: ["--cache", str(c.real)], "100k": lambda c, w: ["--cache", str(c.synthetic)]},
        ("class", "workers", "queries", "req/s", "p50 ms", "p99 ms", "click p99", "5xx", "errors", "wrong",
         "median ms by kind")),
    Bench("bench_attacks.py", {
        "smoke": lambda c, w: ["--cache", str(c.real), "--seconds", "2"],
        "demo": lambda c, w: ["--cache", str(c.real)], "100k": lambda c, w: ["--cache", str(c.real)]},
        ("worker RSS MB before", "honest clicks", "click ms median", "forged-keys", "huge-link", "slow-uploads")),
    Bench("bench_choices.py", {
        "smoke": lambda c, w: ["--cache", str(c.real), "--sizes", "300", "--jobs", "1"],
        "demo": lambda c, w: ["--cache", str(c.real)], "100k": lambda c, w: ["--cache", str(c.real)]},
        ("full-space cosine 10-NN label agreement", "sklearn TSNE 2D (BH, cosine; the seed)",
         "openTSNE 2D (FFT, cosine)", "openTSNE 3D (BH, cosine)", "k-NN table k=50", "blockwise, torch (dacviz)",
         "faiss IndexFlatIP", "sklearn brute cosine")),
    Bench("bench_precompute_scale.py", {
        "smoke": lambda c, w: ["--source", str(c.real), "--n", "200", "--reps", "z", "mfcc"],
        "demo": lambda c, w: ["--source", str(c.real)], "100k": lambda c, w: ["--source", str(c.real)]},
        ("dacviz", "peak RSS so far", "seed's scikit-learn way", "faster")),
    Bench("bench_scaling.py", {
        "smoke": lambda c, w: ["--source", str(c.real), "--n", "300", "600"],
        "demo": lambda c, w: ["--source", str(c.real), "--n", "2000", "4000"],
        "100k": lambda c, w: ["--source", str(c.real)]},
        ("neighbours", "pca2+pca3", "tsne2", "tsne3", "metrics", "peak RSS", "exponent b", "1M clips", "10M clips")),
    Bench("bench_analysis.py", {
        "smoke": lambda c, w: ["--cache", str(c.synthetic), "--repeats", "1"],
        "demo": lambda c, w: ["--cache", str(c.real)], "100k": lambda c, w: ["--cache", str(c.synthetic)]},
        ("confusion of the k-NN vote (one column)", "Jaccard agreement", "trust + continuity of one view",
         "filter mask (one value)", "CSV of 1,000 clips", "offline HTML report", "report size")),
    Bench("bench_app_scale.py", {
        "smoke": lambda c, w: ["--cache", str(c.synthetic), "--repeats", "1", "--screenshots", str(w / "shots")],
        "demo": lambda c, w: ["--cache", str(c.real), "--screenshots", str(w / "shots")],
        "100k": lambda c, w: ["--cache", str(c.synthetic), "--screenshots", str(w / "shots")]},
        ("page ready", "click->highlight in 4 views", "click->audio playing", "switch", "worker RSS",
         "ratio plain/dacviz"), name="bench_app_scale.py (no depths)"),
    Bench("bench_app_scale.py", {
        "smoke": lambda c, w: ["--cache", str(c.synthetic_depths), "--repeats", "1",
                               "--screenshots", str(w / "shots-depths")],
        "100k": lambda c, w: ["--cache", str(c.synthetic_depths), "--screenshots", str(w / "shots-depths")]},
        ("page ready", "click->highlight in 4 views", "switch", "slider", "ratio plain/dacviz"),
        name="bench_app_scale.py (depths)"),
    # the page on a busy machine (issue 29): CPU-bound loops beside the browser, the demo cache
    Bench("bench_app_scale.py", {
        "smoke": lambda c, w: ["--cache", str(c.real), "--pages", "dacviz", "--load", "1", "--repeats", "1",
                               "--screenshots", str(w / "shots-loaded")],
        "demo": lambda c, w: ["--cache", str(c.real), "--pages", "dacviz", "--load", "2", "--repeats", "5",
                              "--screenshots", str(w / "shots-loaded")]},
        ("page ready", "click->highlight in 4 views", "click->audio playing", "later clicks", "switch", "slider",
         "colouring"),
        name="bench_app_scale.py (busy machine)"),
    # the steps after encoding with the approximate neighbour table (issue 31): its growth and recall
    Bench("bench_scaling.py", {
        "smoke": lambda c, w: ["--source", str(c.real), "--n", "300", "600", "--neighbours", "approximate"],
        "demo": lambda c, w: ["--source", str(c.real), "--n", "2000", "4000", "--neighbours", "approximate"],
        "100k": lambda c, w: ["--source", str(c.real), "--neighbours", "approximate"]},
        ("neighbours", "recall@10", "exponent b", "1M clips", "10M clips"),
        name="bench_scaling.py (approximate neighbours)"),
    # the inverted file's trade-off (issue 31): lists searched, pairs compared, recall, two spreads
    Bench("bench_neighbours.py", {
        "smoke": lambda c, w: ["--source", str(c.real), "--n", "600", "--spread", "diagonal", "covariance",
                               "--balanced", "--whole-up-to", "600"],
        "demo": lambda c, w: ["--source", str(c.real), "--n", "20000", "--spread", "diagonal", "covariance",
                              "--balanced", "--whole-up-to", "20000"],
        "100k": lambda c, w: ["--source", str(c.real), "--n", "50000", "100000", "200000", "--spread", "diagonal",
                              "covariance", "--balanced", "--whole-up-to", "100000"]},
        ("lists searched", "pairs compared", "recall@10", "whole table: exact search", "inverted file")),
]
# not in the suite, with the reason (the test tier checks every bench/ file is one or the other)
NOT_RUN = {"make_synthetic_cache.py": "run first, by this runner, to make the synthetic caches",
           "gpu_check.sh": "the GPU checks: needs an NVIDIA GPU (bash bench/gpu_check.sh on one)",
           "run_all.py": "this runner"}


def machine() -> dict:
    """What the figures were measured on."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = ""
    if shutil.which("nvidia-smi"):
        proc = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                              capture_output=True, text=True)
        gpu = proc.stdout.strip().replace("\n", ", ")
    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": gpu or "none", "load_average": os.getloadavg(),
            "python": platform.python_version(), "system": platform.platform()}


def commit() -> dict:
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def built(out: Path, argv: list[str], say) -> Path:
    """The cache ``out``, made by ``argv`` unless a complete one is there (its manifest is written
    last); a builder that fails ends the run with its error."""
    if not CachePaths(out).manifest.is_file():
        say("$ " + " ".join(argv))
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{out.name} could not be built:\n{proc.stderr}")
    return out


def selected(size: str, only: list[str] | None, skip: list[str]) -> list[Bench]:
    """The benches of SUITE that run at ``size``, ``only`` these scripts, none of ``skip``
    (names with or without .py); a name that is no script of the suite is refused."""
    def named(scripts):
        return {name.removesuffix(".py") for name in scripts}
    unknown = (named(only or []) | named(skip)) - named(b.script for b in SUITE)
    if unknown:
        raise SystemExit(f"not a script of the suite: {', '.join(sorted(unknown))} "
                         f"(the suite: {', '.join(sorted(named(b.script for b in SUITE)))})")
    return [b for b in SUITE if size in b.args and (not only or b.script.removesuffix(".py") in named(only))
            and b.script.removesuffix(".py") not in named(skip)]


def run_bench(bench: Bench, argv: list[str], work: Path, say) -> dict:
    """One script run as ``argv``: its command, status, seconds, output, missing columns, figures."""
    record = work / f"record-{bench.label.replace(' ', '_').replace('(', '').replace(')', '')}.json"
    record.unlink(missing_ok=True)
    say(f"\n== {bench.label}\n$ {' '.join(argv)}")
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env={**os.environ, RECORD_ENV: str(record)})
    seconds = time.perf_counter() - started
    say(proc.stdout.rstrip())
    if proc.returncode != 0:
        say(proc.stderr.rstrip()[-4000:])
    figures = json.loads(record.read_text())["figures"] if record.is_file() else []
    missing = [c for c in bench.columns if c not in proc.stdout]
    say(f"-- {bench.label}: exit {proc.returncode}, {seconds:.1f} s, {len(figures)} figures"
        + (f", missing columns {missing}" if missing else ""))
    return {"script": bench.script, "label": bench.label, "argv": argv[1:], "returncode": proc.returncode,
            "seconds": round(seconds, 2), "missing_columns": missing, "figures": figures,
            "stdout": proc.stdout, "stderr_tail": proc.stderr[-4000:] if proc.returncode else ""}


def markdown(run: dict) -> str:
    m = run["machine"]
    lines = [f"# bench {run['size']} · {run['started']} · commit {run['commit']['commit'][:10]}"
             + (" (dirty)" if run["commit"]["dirty"] else ""),
             f"{m['cpu']} · {m['cores']} cores · GPU {m['gpu']} · load average at the start "
             f"{', '.join(f'{x:.2f}' for x in m['load_average'])}", "",
             "| script | figure | median | min | max | n | vs baseline |", "|---|---|---|---|---|---|---|"]
    for result in run["results"]:
        status = "" if result["returncode"] == 0 else f" **exit {result['returncode']}**"
        by_name = {f["name"]: f for f in result["figures"]}
        for f in result["figures"] or [{"name": "(no figures)", "unit": "", "median": math.nan,
                                        "min": math.nan, "max": math.nan, "n": 0, "baseline": None}]:
            base = by_name.get(f.get("baseline") or "")
            ratio = f"×{f['median'] / base['median']:.2f} of {base['name']}" if base and base["median"] else ""
            lines.append(f"| {result['label']}{status} | {f['name']} | {fmt(f['median'])} {f['unit']} | "
                         f"{fmt(f['min'])} | {fmt(f['max'])} | {f['n']} | {ratio} |")
    return "\n".join(lines) + "\n"


def fmt(x) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.4g}"


def compare(a_path: Path, b_path: Path) -> str:
    """Two runs' figures side by side: A, B and B/A for every figure both have."""
    a, b = (json.loads(Path(p).read_text()) for p in (a_path, b_path))
    lines = [f"A: {a_path} ({a['commit']['commit'][:10]}, {a['size']}, {a['started']}, load "
             f"{a['machine']['load_average'][0]:.2f})",
             f"B: {b_path} ({b['commit']['commit'][:10]}, {b['size']}, {b['started']}, load "
             f"{b['machine']['load_average'][0]:.2f})", "",
             "| script | figure | A median | B median | B / A |", "|---|---|---|---|---|"]
    figures_b = {(r["label"], f["name"]): f for r in b["results"] for f in r["figures"]}
    for result in a["results"]:
        for f in result["figures"]:
            other = figures_b.get((result["label"], f["name"]))
            if other is None:
                continue
            ratio = other["median"] / f["median"] if f["median"] else (1.0 if other["median"] == f["median"] else math.nan)
            lines.append(f"| {result['label']} | {f['name']} | {fmt(f['median'])} {f['unit']} | "
                         f"{fmt(other['median'])} {other['unit']} | ×{fmt(ratio)} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=SIZES, default="smoke", help="default: smoke")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"),
                        help="where the run's JSON and table go, and the caches it builds "
                             "(default bench/results, ignored by git)")
    parser.add_argument("--only", nargs="+", metavar="SCRIPT", help="only these scripts (e.g. bench_analysis)")
    parser.add_argument("--skip", nargs="+", metavar="SCRIPT", default=[],
                        help="all but these scripts (e.g. bench_ray bench_app_scale)")
    parser.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"), help="print two runs side by side")
    parser.add_argument("--quiet", action="store_true", help="print only each script's last line")
    parser.add_argument("--cache", help="a demo cache built earlier, used as the real cache (default: "
                                        "build one under --out: the whole demo set, or 3 clips a word for smoke)")
    parser.add_argument("--demo-dir", help="the demo WAVs of --cache (default: under --out)")
    args = parser.parse_args(argv)
    if args.compare:
        print(compare(*args.compare))
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    say = (lambda text: None) if args.quiet else (lambda text: print(text, flush=True))
    run = {"size": args.size, "started": datetime.datetime.now().isoformat(timespec="seconds"),
           "machine": machine(), "commit": commit(), "not_run": NOT_RUN, "results": []}
    caches = Caches(args.size, out, say, args.cache and Path(args.cache), args.demo_dir and Path(args.demo_dir))
    benches = selected(args.size, args.only, args.skip)
    # every command first: the caches they read are built (or fail) before any script runs
    commands = [[sys.executable, str(ROOT / "bench" / b.script), *b.args[args.size](caches, out)] for b in benches]
    for bench, argv in zip(benches, commands):
        result = run_bench(bench, argv, out, say)
        run["results"].append(result)
        if args.quiet:
            print(f"{bench.label}: exit {result['returncode']}, {result['seconds']} s, "
                  f"{len(result['figures'])} figures", flush=True)
    stamp = f"{run['started'].replace(':', '')}-{run['commit']['commit'][:10]}-{args.size}"
    (out / f"{stamp}.json").write_text(json.dumps(run, indent=1))
    (out / f"{stamp}.md").write_text(markdown(run))
    print(f"\n{markdown(run)}\nwritten: {out / (stamp + '.json')} and .md")
    return 0 if all(r["returncode"] == 0 and not r["missing_columns"] for r in run["results"]) else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Query by voice: how fast, and how a query is put on a t-SNE map.

1. Placement on t-SNE maps (no server): a seeded tenth of the clips is held out, openTSNE is
   fitted on the rest (cosine, exact neighbours, seeded), and each held-out clip is placed
   (a) as dacviz does it: the inverse-distance-weighted mean of its 10 nearest fitted clips
   (``projections.place_among``), and (b) by openTSNE's own ``TSNEEmbedding.transform``, one
   clip at a time as queries come. "kept" is the share of a placed clip's 10 nearest fitted
   clips in the full space (cosine) that are also its 10 nearest on the map: higher is closer.
2. The HTTP API: ``python -m dacviz_app`` (gunicorn + the encoder service), POST /query with
   --queries clips of the cache one after the other; median and p90 of the answer time.
3. The page (with --browser): headless Chromium's fake microphone says a clip of the cache
   into the record button; median time from "stop" to the query drawn in all four views.

  python bench/bench_query.py --cache cache/demo
  python bench/bench_query.py --cache cache/demo --browser 5 --reps z mfcc
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
from dacviz_app.cache import open_cache  # noqa: E402
from dacviz_app.embedding.neighbours import cosine_knn_among  # noqa: E402
from dacviz_app.embedding.projections import PLACE_K, place_among  # noqa: E402
from dacviz_testkit import chromium_options, free_port, multipart  # noqa: E402
from dacviz_testkit.bench import BenchRecord  # noqa: E402

KEPT_K = 10


def map_neighbours_kept(x: np.ndarray, fitted: np.ndarray, held: np.ndarray, fitted_xy: np.ndarray,
                        placed_xy: np.ndarray) -> float:
    """Mean share of each held clip's KEPT_K nearest fitted clips (cosine, full space) that are
    its KEPT_K nearest fitted clips on the map (Euclidean)."""
    full, _ = cosine_knn_among(x, held, fitted, KEPT_K)
    shares = []
    for row, xy in enumerate(placed_xy):
        on_map = np.argsort(((fitted_xy - xy) ** 2).sum(axis=1), kind="stable")[:KEPT_K]
        shares.append(len(set(on_map.tolist()) & set(full[row].tolist())) / KEPT_K)
    return float(np.mean(shares))


def placement(cache, rep: str, seed: int = 42) -> dict:
    from openTSNE import TSNE

    x = np.asarray(cache.embedding(rep), np.float32)
    rng = np.random.default_rng(seed)
    held = np.sort(rng.choice(len(x), max(2, len(x) // 10), replace=False))
    fitted = np.setdiff1d(np.arange(len(x)), held)
    perplexity = min(30.0, (len(fitted) - 1) / 3.0)
    embedding = TSNE(n_components=2, perplexity=perplexity, metric="cosine", neighbors="exact",
                     random_state=seed, n_jobs=1, verbose=False).fit(x[fitted])
    fitted_xy = np.asarray(embedding)
    near, distance = cosine_knn_among(x, held, fitted, PLACE_K)
    ours, theirs, ours_s, theirs_s = [], [], [], []
    for row, clip in enumerate(held):
        started = time.perf_counter()
        ours.append(place_among(fitted_xy[near[row]], distance[row]))
        ours_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        theirs.append(np.asarray(embedding.transform(x[clip:clip + 1]))[0])
        theirs_s.append(time.perf_counter() - started)
    return {"rep": rep, "held": len(held), "fitted": len(fitted),
            "ours_kept": map_neighbours_kept(x, fitted, held, fitted_xy, np.asarray(ours)),
            "theirs_kept": map_neighbours_kept(x, fitted, held, fitted_xy, np.asarray(theirs)),
            "ours_ms": 1000 * statistics.median(ours_s), "theirs_ms": 1000 * statistics.median(theirs_s),
            "ours_each_ms": [1000 * t for t in ours_s], "theirs_each_ms": [1000 * t for t in theirs_s]}


def request(port: int, method: str, path: str, body: bytes | None = None, kind: str | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": kind} if kind else {})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def serve(cache_dir: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "dacviz_app", "--cache", cache_dir, "--port", str(port),
                               "--workers", "1"], cwd=ROOT, stdout=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if request(port, "GET", "/query")[1]["state"] != "starting":
                return server, port
        except OSError:
            pass
        time.sleep(0.3)
    server.kill()
    raise SystemExit("the server did not start")


def api_latency(cache, port: int, n: int) -> dict:
    times, right = [], 0
    for clip in np.linspace(0, cache.n_clips - 1, n).round().astype(int):
        body, kind = multipart({"rep": "z"}, cache.audio_path(int(clip)).read_bytes())
        started = time.perf_counter()
        status, answer = request(port, "POST", "/query", body, kind)
        times.append(time.perf_counter() - started)
        right += status == 200 and answer["neighbours"][0]["id"] == int(clip)
    times = sorted(times)
    return {"n": n, "each_ms": [1000 * t for t in times], "median_ms": 1000 * statistics.median(times),
            "p90_ms": 1000 * times[min(len(times) - 1, int(0.9 * len(times)))], "first_is_itself": right}


def browser_latency(cache, port: int, runs: int) -> list[float]:
    from selenium import webdriver
    from selenium.webdriver.common.by import By

    out = []
    for run in range(runs):
        clip = (17 * run + 5) % cache.n_clips
        options = chromium_options(1600, 1100)
        for flag in ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                     f"--use-file-for-fake-audio-capture={cache.audio_path(clip)}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options)
        try:
            driver.get(f"http://127.0.0.1:{port}/?rep=mfcc")
            deadline = time.time() + 60
            while not driver.execute_script("return ['pca2','pca3','tsne2','tsne3'].every(v => "
                                            "document.querySelector('#view-' + v + ' .js-plotly-plot canvas'))"):
                if time.time() > deadline:
                    raise SystemExit("the page did not draw")
                time.sleep(0.2)
            time.sleep(1.0)
            button = driver.find_element(By.ID, "query-record")
            button.click()
            time.sleep(float(cache.clips["duration_s"][clip]) + 0.3)
            button.click()
            deadline = time.time() + 60
            while not driver.execute_script("return window.dacvizQuery.timings.length"):
                if time.time() > deadline:
                    raise SystemExit("the query was not drawn: " + driver.find_element(By.ID, "query-status").text)
                time.sleep(0.1)
            out.append(float(driver.execute_script("return window.dacvizQuery.timings[0]")))
        finally:
            driver.quit()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default="cache/demo", help="cache directory (default cache/demo)")
    parser.add_argument("--reps", nargs="+", default=None,
                        help="representations for the placement comparison (default: z, mfcc and "
                             "every encoder beside them)")
    parser.add_argument("--queries", type=int, default=20, help="POST /query calls timed (default 20)")
    parser.add_argument("--browser", type=int, default=0,
                        help="record-stop-to-drawn runs in headless Chromium (default 0: skip)")
    args = parser.parse_args()
    if args.queries < 1 or args.browser < 0:
        parser.error("--queries must be at least 1, --browser 0 or more")
    record = BenchRecord("bench_query")
    cache = open_cache(args.cache)
    reps = args.reps or [r for r in cache.representations
                         if r in ("z", "mfcc") or cache.encoder(r) not in ("dac", "mfcc")]
    print(f"cache {args.cache}: {cache.n_clips} clips · {os.cpu_count()} cores"
          + (" · DAC UNTRAINED" if cache.untrained else ""))
    print(f"\n1. t-SNE 2D placement of held-out clips (kept: share of their {KEPT_K} nearest fitted clips, "
          f"cosine, that are their {KEPT_K} nearest on the map)")
    print(f"{'rep':>12} {'held':>5} {'kept: ours':>11} {'openTSNE':>9} {'ms: ours':>9} {'openTSNE':>9}")
    for rep in reps:
        r = placement(cache, rep)
        print(f"{rep:>12} {r['held']:>5} {r['ours_kept']:>11.3f} {r['theirs_kept']:>9.3f} "
              f"{r['ours_ms']:>9.3f} {r['theirs_ms']:>9.1f}", flush=True)
        # openTSNE's own transform is the baseline dacviz's placement is compared with
        record.add(f"{rep}: kept, openTSNE", r["theirs_kept"], "share", better="higher")
        record.add(f"{rep}: kept, ours", r["ours_kept"], "share", baseline=f"{rep}: kept, openTSNE",
                   better="higher")
        record.add(f"{rep}: ms, openTSNE", r["theirs_each_ms"], "ms")
        record.add(f"{rep}: ms, ours", r["ours_each_ms"], "ms", baseline=f"{rep}: ms, openTSNE")
    server, port = serve(args.cache)
    try:
        print(f"\n2. POST /query (rep z, gunicorn 1 worker + the encoder service), {args.queries} clips of the cache")
        r = api_latency(cache, port, args.queries)
        print(f"   median {r['median_ms']:.0f} ms · p90 {r['p90_ms']:.0f} ms · "
              f"first neighbour is the posted clip: {r['first_is_itself']}/{r['n']}")
        record.add("POST /query", r["each_ms"], "ms")
        record.add("POST /query: p90", r["p90_ms"], "ms")
        record.add("POST /query: first neighbour is the posted clip", r["first_is_itself"] / r["n"], "share",
                   better="higher")
        if args.browser:
            times = browser_latency(cache, port, args.browser)
            print(f"\n3. the page: record, stop, query drawn in all four views ({len(times)} runs, fake microphone)")
            print(f"   median {statistics.median(times):.0f} ms · each: {', '.join(f'{t:.0f}' for t in times)} ms")
            record.add("the page: record, stop, query drawn", times, "ms")
    finally:
        server.terminate()
        server.wait(30)
    record.save()


if __name__ == "__main__":
    main()

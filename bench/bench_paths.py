#!/usr/bin/env python
"""A clip as a path: what it costs, and how faithful its place on a t-SNE map is.

1. Disk: the frame codes (2 bytes per codebook and frame) and the quantizer tables the cache
   keeps for paths, per second of audio and in all.
2. Latency, no server: a clip's path in every view (``explore.paths.clip_path``: frame latents
   from the codes, PCA exact, t-SNE placed), two paths compared (DTW and its 16 references); an
   MFCC path through the real encoder service (frames computed on demand in its process); and
   with --scale-cache, one path placed in a large cache's maps (the frames of --cache's clips put
   in the large cache's space: the t-SNE search is among ``paths.PLACEMENT_SAMPLE`` clips).
3. Faithfulness of the t-SNE placement for frames (as bench_query.py measures it for queries):
   openTSNE is fitted on every clip (cosine, exact neighbours, seeded); each frame of --clips
   clips is placed (a) as dacviz does it, the inverse-distance-weighted mean of its 10 nearest
   clips' map points, and (b) by openTSNE's ``TSNEEmbedding.transform``; "kept" is the share of a
   frame's 10 nearest clips in the full space (cosine) that are its 10 nearest on the map. The
   clips themselves, held out a tenth at a time, are the reference a frame is compared with.
   Also: how far the mean of a clip's placed frames falls from the clip's own point, in units of
   the map's median nearest-neighbour distance (PCA: 0 by construction).
4. With --browser N: the page (gunicorn, headless Chromium): N clicks, the time from the click
   to the path drawn in all four views; and whether the marker moves while the audio plays.

  python bench/bench_paths.py --cache cache/demo
  python bench/bench_paths.py --cache cache/demo --scale-cache bench/results/caches/synthetic-100000 --browser 5
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
from dacviz_app.cache import open_cache  # noqa: E402
from dacviz_app.embedding.frames import frame_latents  # noqa: E402
from dacviz_app.embedding.neighbours import cosine_knn_among, nearest_to_many, normalise_rows  # noqa: E402
from dacviz_app.embedding.projections import PLACE_K, place_among  # noqa: E402
from dacviz_app.explore import paths  # noqa: E402
from dacviz_testkit.bench import BenchRecord  # noqa: E402

KEPT_K = 10


def disk(cache, record: BenchRecord) -> None:
    codes_bytes = cache.paths.frame_codes.stat().st_size
    offsets = np.load(cache.paths.frame_offsets)
    seconds = float(np.sum(cache.clips["duration_s"]))
    per_second = codes_bytes / seconds
    tables = cache.paths.quantizer.stat().st_size
    print(f"disk: frame codes {codes_bytes / 2**20:.2f} MiB for {offsets[-1]:,} frames of {cache.n_clips} clips "
          f"({seconds:.0f} s of audio): {per_second:.0f} bytes per second of audio; quantizer tables "
          f"{tables / 2**20:.2f} MiB once per cache")
    record.add("frame codes per second of audio", per_second, "bytes")
    record.add("quantizer tables", tables / 2**20, "MiB")


def timed(run, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        out.append(1000 * (time.perf_counter() - started))
    return out


def latency(cache, record: BenchRecord, clips: list[int], rep: str) -> None:
    def path_of(clip):
        paths.clip_path.cache_clear()
        return paths.clip_path(cache, clip, rep)

    path_of(clips[0])  # the placement sample's rows, once per worker
    ms = [timed(lambda c=c: path_of(c), 1)[0] for c in clips]
    frames = [paths.clip_path(cache, c, rep)["n_frames"] for c in clips]
    print(f"latency: one clip's path ({rep}, {statistics.median(frames):.0f} frames, {cache.n_clips:,} clips): "
          f"median {statistics.median(ms):.1f} ms over {len(ms)} clips (max {max(ms):.1f})")
    record.add(f"path of one clip ({cache.n_clips} clips)", ms, "ms")
    pairs = list(zip(clips, clips[1:] + clips[:1]))

    def compare(a, b):
        paths.compare_paths.cache_clear()
        return paths.compare_paths(cache, a, b, rep)

    ms = [timed(lambda p=p: compare(*p), 1)[0] for p in pairs]
    print(f"latency: two paths compared (DTW + {paths.DTW_REFERENCES} references): median "
          f"{statistics.median(ms):.1f} ms")
    record.add("two paths compared", ms, "ms")


def mfcc_latency(cache_dir: Path, record: BenchRecord, clips: list[int]) -> None:
    """``GET /path/<clip>?rep=mfcc`` through the real encoder service (its own process, which
    computes MFCC frames on demand): the web worker's whole answer, one clip after the other."""
    import os

    from dacviz_app import query_service
    from dacviz_app.viewer.app import create_app

    before = os.environ.get(query_service.SOCKET_ENV)
    process = query_service.start(str(cache_dir))
    try:
        state = query_service.wait_ready()
        if state.get("state") != "ready":
            print(f"mfcc paths: the encoder service is {state.get('state')}: {state.get('reason')}")
            return
        client = create_app(cache_dir).server.test_client()
        client.get(f"/path/{clips[0]}?rep=mfcc")  # the placement sample's rows, once
        ms = []
        for clip in clips:
            started = time.perf_counter()
            answer = client.get(f"/path/{clip}?rep=mfcc")
            ms.append(1000 * (time.perf_counter() - started))
            assert answer.status_code == 200, answer.json
        print(f"latency: one clip's MFCC path through the encoder service (frames computed on demand, "
              f"{len(clips)} clips): median {statistics.median(ms):.1f} ms (max {max(ms):.1f})")
        record.add("MFCC path through the encoder service", ms, "ms")
    finally:
        query_service.stop(process)
        if before is None:
            os.environ.pop(query_service.SOCKET_ENV, None)
        else:
            os.environ[query_service.SOCKET_ENV] = before


def at_scale(cache, big, record: BenchRecord, clips: list[int], rep: str) -> None:
    """One path of ``cache``'s clips placed in ``big``'s maps (its space, its PCA, its t-SNE)."""
    paths._placement_rows.cache_clear()
    started = time.perf_counter()
    paths._placement_rows(big, rep)
    first = 1000 * (time.perf_counter() - started)
    ms = []
    for clip in clips:
        frames, kept, n_frames = paths.clip_frames(cache, clip, rep, paths.MAX_PATH_POINTS)
        ms.append(timed(lambda f=frames, k=kept, n=n_frames: paths.path_answer(
            big, rep, f, k, n, paths.dac_frame_s(cache)), 1)[0])
    print(f"latency at {big.n_clips:,} clips: one path placed median {statistics.median(ms):.1f} ms "
          f"(t-SNE among {len(paths.placement_ids(big)):,} clips); the worker's first path also reads "
          f"the sample's rows: {first:.0f} ms once")
    record.add(f"path placed at {big.n_clips} clips", ms, "ms")
    record.add("placement sample rows, once per worker", first, "ms")


def faithfulness(cache, record: BenchRecord, clips: list[int], rep: str, seed: int = 42) -> None:
    from openTSNE import TSNE

    x = np.asarray(cache.embedding(rep), np.float32)
    everyone = np.arange(len(x))
    fitted = TSNE(n_components=2, perplexity=min(30, (len(x) - 1) / 3), metric="cosine",
                  neighbors="exact", random_state=seed, n_jobs=1, verbose=False).fit(x)
    fitted_xy = np.asarray(fitted)
    unit = normalise_rows(x)
    depth = paths.path_depths(cache)[rep]
    kept_ours, kept_theirs, kept_anchored, ms_ours, ms_theirs, gaps = [], [], [], [], [], []
    nn = np.sort(((fitted_xy[:, None] - fitted_xy[None]) ** 2).sum(-1), axis=1)[:, 1] ** 0.5
    scale = float(np.median(nn))
    for clip in clips:
        frames = frame_latents(cache.quantizer, cache.frame_codes(clip), depth)
        started = time.perf_counter()
        near, distance = nearest_to_many(unit, frames, PLACE_K)
        ours = place_among(fitted_xy[near], distance)
        ms_ours.append(1000 * (time.perf_counter() - started) / len(frames))
        started = time.perf_counter()
        theirs = np.asarray(fitted.transform(frames.astype(np.float64)))
        ms_theirs.append(1000 * (time.perf_counter() - started) / len(frames))
        full = near if PLACE_K == KEPT_K else nearest_to_many(unit, frames, KEPT_K)[0]
        anchored = ours - ours.mean(axis=0) + fitted_xy[clip]  # the path moved onto its clip's point
        for placed, into in ((ours, kept_ours), (theirs, kept_theirs), (anchored, kept_anchored)):
            for row, xy in enumerate(placed):
                on_map = np.argsort(((fitted_xy - xy) ** 2).sum(axis=1), kind="stable")[:KEPT_K]
                into.append(len(set(on_map.tolist()) & set(full[row].tolist())) / KEPT_K)
        gaps.append(float(np.linalg.norm(ours.mean(axis=0) - fitted_xy[clip])) / scale)
    # the reference: clips held out a tenth at a time and placed by the same rule
    rng = np.random.default_rng(seed)
    held = np.sort(rng.choice(len(x), max(2, len(x) // 10), replace=False))
    rest = np.setdiff1d(everyone, held)
    near, distance = cosine_knn_among(x, held, rest, PLACE_K)
    placed = place_among(fitted_xy[rest][near], distance)
    kept_clips = []
    for row, xy in enumerate(placed):
        on_map = np.argsort(((fitted_xy[rest] - xy) ** 2).sum(axis=1), kind="stable")[:KEPT_K]
        kept_clips.append(len(set(on_map.tolist()) & set(near[row].tolist())) / KEPT_K)
    print(f"faithfulness ({rep}, t-SNE 2D fitted by openTSNE on all {len(x)} clips; frames of {len(clips)} clips):")
    print(f"  kept (a frame's {KEPT_K} nearest clips, full space vs map): dacviz {np.mean(kept_ours):.3f}, "
          f"openTSNE transform {np.mean(kept_theirs):.3f}, dacviz's moved onto the clip's point "
          f"{np.mean(kept_anchored):.3f}; a held-out clip by dacviz's rule {np.mean(kept_clips):.3f}")
    print(f"  ms per frame: dacviz {statistics.median(ms_ours):.3f}, openTSNE transform {statistics.median(ms_theirs):.2f}")
    print(f"  mean of a clip's placed frames to the clip's own point: median {statistics.median(gaps):.2f} "
          f"x the map's median nearest-neighbour distance ({scale:.3f})")
    record.add("kept: frames, dacviz", float(np.mean(kept_ours)), "share", better="higher")
    record.add("kept: frames, openTSNE transform", float(np.mean(kept_theirs)), "share", better="higher")
    record.add("kept: frames, dacviz moved onto the clip", float(np.mean(kept_anchored)), "share", better="higher")
    record.add("kept: held-out clips, dacviz", float(np.mean(kept_clips)), "share", better="higher")
    record.add("path mean to clip point", gaps, "x median NN distance")


POINT_JS = """
const gd = document.querySelector('#view-tsne2 .js-plotly-plot');
gd.scrollIntoView({block: 'center', behavior: 'instant'});
const r = gd.getBoundingClientRect(), xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
const t = gd._fullData[arguments[0] % gd._fullData.length], i = arguments[1] % t.x.length;
return [r.left + xa._offset + xa.c2p(t.x[i]), r.top + ya._offset + ya.c2p(t.y[i])];
"""
DRAWN_JS = """
const d = window.dacviz.drawnPaths || {}, v = ['pca2', 'pca3', 'tsne2', 'tsne3'], s = window.dacviz.pathState;
const drawn = v.every(k => d[k] && d[k].at > arguments[0] && d[k].paths.length);
const h = window.dacviz.drawn || {};
return drawn && s.first && s.first.drawnAt && window.__earlyAt > window.__clickAt
  ? [window.__clickAt, s.first.drawnAt, window.__earlyAt] : null;
"""
CLICK_STAMP_JS = """
window.__clickAt = 0;
window.__earlyAt = 0;
document.addEventListener('pointerdown', () => { window.__clickAt = performance.now(); }, true);
const early = window.dacviz.drawEarly;  // the click's early highlight (assets/1c), stamped when drawn
window.dacviz.drawEarly = function (payload) { const out = early(payload); window.__earlyAt = performance.now(); return out; };
"""


def browser(cache_dir: Path, clicks: int, record: BenchRecord) -> None:
    """The page under the real server (``python -m dacviz_app``: gunicorn, one worker): a real
    click on a t-SNE point, then the time until the path is drawn in all four views."""
    import subprocess

    from selenium import webdriver
    from selenium.webdriver.common.action_chains import ActionChains

    from dacviz_testkit import chromium_options, free_port

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "dacviz_app", "--cache", str(cache_dir), "--port", str(port),
                               "--workers", "1"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    driver = webdriver.Chrome(options=chromium_options(1400, 900))
    try:
        deadline = time.time() + 120
        while True:
            try:
                driver.get(f"http://127.0.0.1:{port}/")
                break
            except Exception:  # noqa: BLE001 - the server is still starting
                if time.time() > deadline:
                    raise
                time.sleep(1)
        while time.time() < deadline and not driver.execute_script(
                "return ['pca2','pca3','tsne2','tsne3'].every(v => document.querySelector("
                "'#view-' + v + ' .js-plotly-plot canvas'))"):
            time.sleep(0.2)
        time.sleep(2)
        driver.execute_script(CLICK_STAMP_JS)
        ms, highlight_ms, added, moved = [], [], [], []
        for n in range(clicks):
            # Escape first: a press on a drawn path plays its frame (the path is on top), and this
            # measures clicks on clips
            driver.find_element("tag name", "body").send_keys("\ue00c")
            time.sleep(0.5)
            x, y = driver.execute_script(POINT_JS, n, 3 * n + 1)
            before = driver.execute_script("return performance.now()")
            actions = ActionChains(driver)
            actions.w3c_actions.pointer_action.move_to_location(int(round(x)), int(round(y)))
            actions.w3c_actions.pointer_action.click()
            actions.perform()
            drawn, until = None, time.time() + 20
            while drawn is None and time.time() < until:
                drawn = driver.execute_script(DRAWN_JS, before)
                time.sleep(0.005)
            if drawn is not None:
                clicked, path_at, early_at = drawn
                ms.append(path_at - clicked)
                highlight_ms.append(early_at - clicked)
                added.append(path_at - early_at)
            driver.execute_script("const p = document.getElementById('player'); p.currentTime = 0; p.play();")
            time.sleep(0.15)
            a = driver.execute_script("return (window.dacviz.drawnPaths.pca2 || {}).marker")
            time.sleep(0.15)
            b = driver.execute_script("return (window.dacviz.drawnPaths.pca2 || {}).marker")
            moved.append(bool(a and b and a != b))
            time.sleep(0.5)
    finally:
        driver.quit()
        server.terminate()
        server.wait(30)
    print(f"page ({len(ms)} clicks; from the press, the page's own pointerdown): the click's neighbours drawn "
          f"in all four views (the early highlight) median {statistics.median(highlight_ms):.0f} ms; its path in "
          f"all four views median {statistics.median(ms):.0f} ms (max {max(ms):.0f}): the path adds median "
          f"{statistics.median(added):.0f} ms (max {max(added):.0f}); the marker moved while playing in "
          f"{sum(moved)}/{len(moved)}")
    record.add("click -> highlight in 4 views", highlight_ms, "ms")
    record.add("click -> path in 4 views", ms, "ms")
    record.add("path after the highlight", added, "ms")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", required=True, help="a cache with frame codes (precompute.py)")
    parser.add_argument("--rep", default="z", help="the representation (default: z)")
    parser.add_argument("--clips", type=int, default=12, help="clips measured (default: 12)")
    parser.add_argument("--scale-cache", default=None, help="a large (synthetic) cache to place paths in")
    parser.add_argument("--browser", type=int, default=0, help="clicks in headless Chromium (default: 0)")
    args = parser.parse_args(argv)
    cache = open_cache(args.cache)
    problem = paths.path_problem(cache, args.rep)
    if problem:
        print(f"bench_paths: {problem}")
        return 2
    record = BenchRecord("bench_paths.py")
    clips = np.linspace(0, cache.n_clips - 1, min(args.clips, cache.n_clips)).round().astype(int).tolist()
    disk(cache, record)
    latency(cache, record, clips, args.rep)
    if cache.has_representation("mfcc"):
        mfcc_latency(Path(args.cache), record, clips)
    if args.scale_cache:
        at_scale(cache, open_cache(args.scale_cache), record, clips, args.rep)
    faithfulness(cache, record, clips, args.rep)
    if args.browser:
        browser(Path(args.cache), args.browser, record)
    record.save()
    return 0


if __name__ == "__main__":
    sys.exit(main())

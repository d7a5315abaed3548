#!/usr/bin/env python
"""The app in a real browser at scale: page ready, click -> audio + highlight, representation
switch, worker memory. dacviz against the plain way (every view a full Plotly WebGL figure of all
clips, a click patches a highlight trace into each), in the same run, on the same cache.

Both are served by gunicorn (1 worker) on loopback and driven by headless Chromium (software
WebGL). Times are measured inside the page with performance.now():
- page ready: navigation start -> all four views have drawn their figures;
- bytes to page ready: what the server sent until then (Resource Timing's transferSize of the
  document and every response that ended before it: the payload of the first paint);
- click: a real mouse click on a point of the t-SNE 2D view (the pointer moved onto it first, as
  a mouse user's is) -> the highlight is drawn in the last of the four views (dacviz: its canvas
  layer; plain: Plotly's afterplot after the patch), and -> the audio element's "playing" event;
  the first click after the page loaded (it also starts the browser's audio output), then the
  median of clicks on three other points (LATER_PLACES), 2.5 s apart;
- switch: choosing another representation -> all four views redrawn (dacviz: and the clicked
  clip's highlight drawn again in each);
- slider (dacviz, caches with codebook depths): a click on the codebook slider's middle mark
  -> all four views redrawn from that depth and the clicked clip's highlight drawn again;
- colouring (dacviz): choosing another "Colour by" column -> all four views redrawn in its
  colours and the clicked clip's highlight drawn again.
Medians over --repeats. --load N runs N CPU-bound processes (a Python busy loop each, nice 0)
beside the browser for the whole measurement: the page on a busy machine.

  python bench/bench_app_scale.py --cache cache/synth100k --repeats 5
  python bench/bench_app_scale.py --cache cache/demo --pages dacviz --load 2   # a loaded machine
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from dacviz_testkit import chromium_options, free_port
from dacviz_testkit.bench import BenchRecord

ROOT = Path(__file__).resolve().parents[1]
LATER_PLACES = (0.1, 0.9, 0.3)  # the clicks after the first on each page load: points along the first trace
# how the figures name each page (the plain one is the baseline), and each step's key, name, unit
LABELS = {"plain": "plain Dash", "dacviz": "dacviz"}
STEPS = (("ready_s", "page ready", "s"), ("first_paint_kb", "bytes to page ready", "KB"),
         ("click_ms", "click->highlight in 4 views", "ms"),
         ("audio_ms", "click->audio playing", "ms"),
         ("later_click_ms", "later clicks->highlight in 4 views", "ms"),
         ("later_audio_ms", "later clicks->audio playing", "ms"),
         ("switch_s", "switch", "s"), ("slider_s", "slider", "s"),
         ("colour_s", "colouring", "s"),
         ("rss_mb", "worker RSS", "MB"))

PLAIN_APP = textwrap.dedent('''
    """The plain way, for comparison: full figures of all clips, a Patch per click."""
    import os
    import numpy as np
    from dash import Dash, Input, Output, Patch, dcc, html
    from dacviz_app.cache import open_cache
    from dacviz_app.explore.groups import colour_groups, neighbour_rows
    from dacviz_app.embedding.spaces import VIEW_NAMES as VIEWS
    from dacviz_app.viewer.figures import typed

    cache = open_cache(os.environ["DACVIZ_CACHE"])
    groups = colour_groups(cache, "label")

    def figure(rep, view):
        coords = cache.projection(rep, view)
        kind = "scattergl" if view.endswith("2") else "scatter3d"
        def trace(ids, **style):
            t = {"type": kind, "mode": "markers", "x": typed(coords[ids, 0]), "y": typed(coords[ids, 1]), **style}
            if kind == "scatter3d":
                t["z"] = typed(coords[ids, 2])
            return t
        data = [trace(m, name=n, marker={"size": 3, "color": c}) for n, m, c in
                zip(groups.names, groups.members, groups.colours)]
        data.append(trace(np.zeros(0, np.int64), name="highlight", marker={"size": 9, "color": "black"}))
        return {"data": data, "layout": {"uirevision": rep, "margin": {"l": 8, "r": 8, "t": 30, "b": 8},
                                         "showlegend": False, "clickmode": "event"}}

    app = Dash(__name__)
    app.layout = html.Div([dcc.Dropdown(id="rep", value="z", options=cache.representations, clearable=False),
                           html.Audio(id="player", autoPlay=True),
                           *[dcc.Graph(id=f"view-{v}", style={"height": "40vh", "width": "49%",
                                                              "display": "inline-block"}) for v in VIEWS]])

    @app.callback(*[Output(f"view-{v}", "figure") for v in VIEWS], Input("rep", "value"))
    def full(rep):
        return [figure(rep, v) for v in VIEWS]

    @app.callback(*[Output(f"view-{v}", "figure", allow_duplicate=True) for v in VIEWS],
                  Output("player", "src"), Input("view-tsne2", "clickData"), Input("rep", "value"),
                  prevent_initial_call=True)
    def click(data, rep):
        point = data["points"][0]
        clip = int(groups.members[point["curveNumber"]][point["pointNumber"]])
        ids = [clip] + [r["id"] for r in neighbour_rows(cache, rep, clip, 10)]
        out = []
        for v in VIEWS:
            coords = cache.projection(rep, v)[ids]
            p = Patch()
            p["data"][len(groups.names)]["x"] = typed(coords[:, 0])
            p["data"][len(groups.names)]["y"] = typed(coords[:, 1])
            if v.endswith("3"):
                p["data"][len(groups.names)]["z"] = typed(coords[:, 2])
            p["data"][len(groups.names)]["customdata"] = ids
            out.append(p)
        return *out, f"/audio/{clip}"

    @app.server.route("/audio/<int:clip>")
    def audio(clip):
        from flask import send_file
        return send_file(cache.audio_path(clip), mimetype="audio/wav", conditional=True)

    server = app.server
''')

HOOKS_JS = """
window.__t = {afterplot: {}};
// pointerdown: the codebook slider (Radix) cancels the mouse events that follow it
['pointerdown', 'mousedown'].forEach(type => document.addEventListener(type, () => {
  if (!window.__t.down) { window.__t.click = performance.now(); }
  window.__t.down = true; }, true));
document.addEventListener('pointerup', () => { window.__t.down = false; }, true);
document.addEventListener('mouseup', () => { window.__t.down = false; }, true);
const p = document.getElementById('player');
if (p) { p.addEventListener('playing', () => { window.__t.playing = performance.now(); }); }
['pca2', 'pca3', 'tsne2', 'tsne3'].forEach(v => {
  const gd = document.querySelector('#view-' + v + ' .js-plotly-plot');
  gd.on('plotly_afterplot', () => { window.__t.afterplot[v] = performance.now(); });
});
"""
FIRST_PAINT_JS = """
// bytes on the wire (headers and bodies, as sent: compressed where the server compresses) of every
// response that ended by the page's ready time: the document, scripts, styles, Dash's layout and
// callback answers (the figures)
const ready = arguments[0];
return performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))
  .filter(e => e.responseEnd <= ready).reduce((sum, e) => sum + (e.transferSize || 0), 0);
"""
READY_JS = """
const views = ['pca2', 'pca3', 'tsne2', 'tsne3'].map(v => document.querySelector('#view-' + v + ' .js-plotly-plot'));
if (views.some(gd => !gd || !gd._fullLayout || !gd.data || gd.data.length < 2 || !gd._fullData)) { return null; }
return performance.now();
"""


def serve(app_module: str, cache: str, cwd: Path, extra_path: str = "") -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {**os.environ, "DACVIZ_CACHE": cache, "PYTHONPATH": f"{ROOT}:{extra_path}"}
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--workers", "1", "--timeout", "300",
                             "--bind", f"127.0.0.1:{port}", app_module], cwd=cwd, env=env,
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


def browser(profile: Path):
    from selenium import webdriver

    return webdriver.Chrome(options=chromium_options(user_data_dir=profile))


def wait(driver, script, timeout=120, *args):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = driver.execute_script(script, *args)
        if value:
            return value
        time.sleep(0.02)
    raise TimeoutError(script[:80])


def click_point(driver, place: float = 0.5) -> None:
    """A real mouse click on the point at ``place`` (0..1) along the first trace of the t-SNE 2D view."""
    from selenium.webdriver.common.action_chains import ActionChains

    x, y = driver.execute_script("""
      const gd = document.querySelector('#view-tsne2 .js-plotly-plot');
      gd.scrollIntoView({block: 'center', behavior: 'instant'});  // the views grow with the window: it may start below
      const r = gd.getBoundingClientRect();
      const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, t = gd._fullData[0];
      const i = Math.min(t.x.length - 1, Math.floor(t.x.length * arguments[0]));
      return [r.left + xa._offset + xa.c2p(t.x[i]), r.top + ya._offset + ya.c2p(t.y[i])];""", place)
    actions = ActionChains(driver)
    actions.w3c_actions.pointer_action.move_to_location(int(round(x)), int(round(y)))
    actions.w3c_actions.pointer_action.click()
    actions.perform()


def timed_click(driver, kind: str, place: float) -> tuple[float, float]:
    """Click the point at ``place`` -> (ms to the highlight in all four views, ms to "playing")."""
    driver.execute_script(HOOKS_JS)
    click_point(driver, place)
    if kind == "dacviz":
        done = wait(driver, """const d = window.dacviz.drawn, t = window.__t;
          const vs = ['pca2','pca3','tsne2','tsne3'].map(v => d[v]);
          if (vs.some(x => !x || !x.selected.length || x.at < t.click)) { return null; }
          return Math.max(...vs.map(x => x.at));""")
    else:
        done = wait(driver, """const t = window.__t, a = t.afterplot;
          const vs = ['pca2','pca3','tsne2','tsne3'].map(v => a[v]);
          if (vs.some(x => !x || x < t.click)) { return null; }
          return Math.max(...vs);""")
    playing = wait(driver, "return window.__t.playing || null;", 30)
    click = driver.execute_script("return window.__t.click;")
    return done - click, playing - click


def measure(url: str, kind: str, rep_to: str, shots: Path | None) -> dict:
    profile = Path(tempfile.mkdtemp(prefix="chromium-"))  # a fresh browser each time, removed after
    driver = browser(profile)
    try:
        driver.get(url)
        ready = wait(driver, READY_JS)
        first_paint_kb = driver.execute_script(FIRST_PAINT_JS, ready) / 1024
        time.sleep(1.0)  # let WebGL settle before the click
        click_ms, audio_ms = timed_click(driver, kind, 0.5)
        if shots:
            driver.save_screenshot(str(shots / f"{kind}-clicked.png"))
        later = []
        for place in LATER_PLACES:
            time.sleep(2.5)  # the last clip has ended
            later.append(timed_click(driver, kind, place))
        result = {"ready_s": ready / 1000, "first_paint_kb": first_paint_kb, "click_ms": click_ms, "audio_ms": audio_ms,
                  "later_click_ms": statistics.median(c for c, _ in later),
                  "later_audio_ms": statistics.median(a for _, a in later)}
        if kind == "dacviz" and has_depth_slider(driver):
            result["slider_s"] = slide(driver)
        if kind == "dacviz":
            result["colour_s"] = recolour(driver, "speaker")
        # representation switch (the same dropdown on both pages)
        driver.execute_script("window.__t.afterplot = {}; window.__t.switch = performance.now();")
        choose_representation(driver, rep_to)
        result["switch_s"] = (redrawn(driver, kind, "switch") - driver.execute_script("return window.__t.switch;")) / 1000
        return result
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def click_control(driver, element, block: str = "center") -> None:
    """Click a control after scrolling it into view: the click on the t-SNE view scrolled the page
    (the dropdown may be above the window) and a WebDriver click does not always scroll back."""
    driver.execute_script("arguments[0].scrollIntoView({block: arguments[1], behavior: 'instant'});",
                          element, block)
    element.click()


def choose_representation(driver, rep: str) -> None:
    """Open the representation dropdown (#rep) and pick ``rep``, as a user does."""
    from selenium.webdriver.support.ui import WebDriverWait

    click_control(driver, driver.find_element("css selector", "#rep"))
    option = WebDriverWait(driver, 30).until(lambda d: d.find_element(
        "xpath", f"//*[contains(@class,'dash-dropdown-option')][contains(., '{rep}')]"))
    click_control(driver, option, "nearest")  # the open menu: no scroll unless it is cut off


def recolour(driver, column: str) -> float:
    """Choose ``column`` in "Colour by" as a user does -> seconds until all four views are redrawn
    and the clicked clip's highlight drawn again in each."""
    from selenium.webdriver.support.ui import WebDriverWait

    click_control(driver, driver.find_element("css selector", "#colour"))
    option = WebDriverWait(driver, 30).until(lambda d: d.find_element(
        "xpath", f"//*[contains(@class,'dash-dropdown-option')][normalize-space(.)='{column}']"))
    driver.execute_script("window.__t.afterplot = {}; window.__t.colour = performance.now();")
    click_control(driver, option, "nearest")
    return (redrawn(driver, "dacviz", "colour") - driver.execute_script("return window.__t.colour;")) / 1000


def busy_loops(n: int) -> list[subprocess.Popen]:
    """``n`` CPU-bound processes (a Python busy loop each): the load beside the browser."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
            for _ in range(n)]


def has_depth_slider(driver) -> bool:
    return bool(driver.execute_script(
        "const b = document.getElementById('depth-box'); return b && !b.hidden && "
        "document.querySelectorAll('#depth .dash-slider-mark').length > 1;"))


def slide(driver) -> float:
    """Move the codebook slider from the full depth to the middle of its marks (4 of 1 2 4 8 12)
    with a real click on the track -> seconds until all four views are redrawn from that depth
    and the clicked clip's highlight is drawn again in each (dacviz only: the plain page has none)."""
    from selenium.webdriver.common.action_chains import ActionChains

    x, y = driver.execute_script("""
      document.getElementById('depth').scrollIntoView({block: 'center', behavior: 'instant'});
      const marks = [...document.querySelectorAll('#depth .dash-slider-mark')];
      const mark = marks[Math.floor((marks.length - 1) / 2)].getBoundingClientRect();
      const thumb = document.querySelector('#depth [role=slider]').getBoundingClientRect();
      window.__t.afterplot = {};
      return [mark.x + mark.width / 2, thumb.y + thumb.height / 2];""")
    actions = ActionChains(driver)
    actions.w3c_actions.pointer_action.move_to_location(int(round(x)), int(round(y)))
    actions.w3c_actions.pointer_action.click()
    actions.perform()
    return (redrawn(driver, "dacviz", "click") - driver.execute_script("return window.__t.click;")) / 1000


def redrawn(driver, kind: str, since: str) -> float:
    """performance.now() when all four views have been redrawn after window.__t[since] and (dacviz)
    the selected clip's highlight drawn again in each: what a user waits for after a switch."""
    return wait(driver, """const t = window.__t, a = t.afterplot, start = t[arguments[0]];
      const d = arguments[1] === 'dacviz' ? window.dacviz.drawn : null;
      const vs = ['pca2','pca3','tsne2','tsne3'];
      if (vs.some(v => !a[v] || a[v] < start || (d && (!d[v] || !d[v].selected.length || d[v].at < start)))) { return null; }
      return Math.max(...vs.map(v => d ? Math.max(a[v], d[v].at) : a[v]));""", 120, since, kind)


def rss_mb(proc: subprocess.Popen) -> float:
    import psutil

    return sum(c.memory_info().rss for c in psutil.Process(proc.pid).children()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default="cache/demo", help="the cache served (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="page loads per app, each in a fresh browser (default %(default)s)")
    parser.add_argument("--switch-to", default="mfcc",
                        help="the representation the switch picks (default %(default)s)")
    parser.add_argument("--pages", nargs="+", choices=tuple(LABELS), default=list(LABELS),
                        help="the pages measured (default: both; the plain one is the baseline)")
    parser.add_argument("--load", type=int, default=0,
                        help="CPU-bound processes run beside the browser (default %(default)s: none)")
    parser.add_argument("--screenshots", default="artifacts/bench",
                        help="where each page is saved after the first click (default %(default)s)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if not 0 <= args.load <= 64:
        parser.error("--load must be 0..64")
    from dacviz_app.cache import open_cache

    n = open_cache(args.cache).n_clips
    shots = Path(args.screenshots)
    shots.mkdir(parents=True, exist_ok=True)
    plain_dir = Path(tempfile.mkdtemp(prefix="plain-app-"))
    (plain_dir / "plain_app.py").write_text(PLAIN_APP)
    cache = str(Path(args.cache).resolve())
    print(f"{n:,} clips, headless Chromium (software WebGL), gunicorn 1 worker, {os.cpu_count()} cores, "
          f"medians of {args.repeats}, {args.load} CPU-bound process(es) beside it")
    results, samples = {}, {}
    load = busy_loops(args.load)
    try:
        for kind, module, cwd, path in (("dacviz", "dacviz_app.viewer.wsgi:server", ROOT, ""),
                                        ("plain", "plain_app:server", plain_dir, str(plain_dir))):
            if kind not in args.pages:
                continue
            proc, port = serve(module, cache, cwd, path)
            try:
                runs = [measure(f"http://127.0.0.1:{port}/", kind, args.switch_to, shots if r == 0 else None)
                        for r in range(args.repeats)]
                rss = rss_mb(proc)
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
            samples[kind] = {k: [r[k] for r in runs] for k in runs[0]}
            samples[kind]["rss_mb"] = [rss]
            results[kind] = {k: statistics.median(v) for k, v in samples[kind].items()}
            r = results[kind]
            slider = f"   slider {r['slider_s']:6.2f} s" if "slider_s" in r else ""
            slider += f"   colouring {r['colour_s']:6.2f} s" if "colour_s" in r else ""
            print(f"{kind:7s} page ready {r['ready_s']:6.2f} s ({r['first_paint_kb']:,.0f} KB)   click->highlight in 4 views {r['click_ms']:8.1f} ms   "
                  f"click->audio playing {r['audio_ms']:7.1f} ms   later clicks: highlight "
                  f"{r['later_click_ms']:6.1f} ms, audio {r['later_audio_ms']:6.1f} ms   switch {r['switch_s']:6.2f} s{slider}   "
                  f"worker RSS {rss:7.1f} MB")
    finally:
        shutil.rmtree(plain_dir, ignore_errors=True)
        for proc in load:
            proc.kill()
    record = BenchRecord("bench_app_scale")
    for kind in ("plain", "dacviz"):  # the plain page first: each dacviz figure's baseline
        for key, step, unit in STEPS:
            if key in samples.get(kind, {}):
                baseline = (f"{LABELS['plain']} {step}" if kind == "dacviz" and key in samples.get("plain", {})
                            else None)
                record.add(f"{LABELS[kind]} {step}", samples[kind][key], unit, baseline=baseline)
    record.save()
    if len(results) < 2:
        return
    d, p = results["dacviz"], results["plain"]
    print(f"ratio plain/dacviz: page ready x{p['ready_s'] / d['ready_s']:.2f}, click x{p['click_ms'] / d['click_ms']:.2f}, "
          f"switch x{p['switch_s'] / d['switch_s']:.2f}")

if __name__ == "__main__":
    main()

"""Real-browser tests in headless Chromium (Debian's chromium + chromium-driver, dash[testing]).

Screenshots of each state are saved under artifacts/screenshots/.
"""
from __future__ import annotations

import json
import time

import numpy as np
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from conftest import ROOT
from dacviz_app.cache import open_cache
from dacviz_app.embedding.spaces import VIEW_NAMES as VIEWS
from dacviz_app.explore.groups import colour_groups
from dacviz_app.viewer.app import create_app

SHOTS = ROOT / "artifacts" / "screenshots"

POINTS_JS = """
const gd = document.querySelector('#view-' + arguments[0] + ' .js-plotly-plot');
const r = gd.getBoundingClientRect(), xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
const out = [];
const nGroups = gd.data.length;
for (let c = 0; c < nGroups; c++) {
  const t = gd._fullData[c];
  for (let i = 0; i < t.x.length; i++) {
    out.push([c, i, r.left + xa._offset + xa.c2p(t.x[i]), r.top + ya._offset + ya.c2p(t.y[i])]);
  }
}
return out;
"""
VIEW_DATA_JS = """
return ['pca2', 'pca3', 'tsne2', 'tsne3'].map(v => {
  const gd = document.querySelector('#view-' + v + ' .js-plotly-plot');
  if (!gd || !gd.data || gd.data.length < 2 || !gd._fullLayout) { return null; }
  const layer = (window.dacviz.drawn || {})[v] || {selected: [], neighbours: []};
  return {n: gd.data.length, selected: Array.from(layer.selected), neighbours: Array.from(layer.neighbours),
          visible: gd.data.map(t => t.visible !== false), names: gd.data.map(t => t.name),
          drawn: gd.querySelectorAll('canvas').length > 0,
          layer: gd.querySelectorAll('canvas.dacviz-layer').length};
});
"""


def shot(dash_duo, name: str) -> None:
    shot_driver(dash_duo.driver, name)


def shot_driver(driver, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"{name}.png"))



def wait_for(predicate, timeout=20, what="condition"):
    """``predicate()``'s first true value within ``timeout`` s. An element Dash replaced while it
    was read (stale) counts as not yet: the page is still rendering."""
    from selenium.common.exceptions import StaleElementReferenceException

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            value = predicate()
        except StaleElementReferenceException:
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


# counts the page's Dash requests that carry a view's new clickData (the selection's round trip)
COUNT_CLICK_ROUND_TRIPS_JS = """
window.__clickRoundTrips = 0;
if (!window.__countingClicks) {
  window.__countingClicks = true;
  const send = window.fetch;
  window.fetch = function (url, options) {
    const body = options && typeof options.body === 'string' ? options.body : '';
    if (String(url).indexOf('_dash-update-component') >= 0 && /"changedPropIds":\\[[^\\]]*view-[a-z0-9]+\\.clickData/.test(body)) {
      window.__clickRoundTrips += 1;
    }
    return send.apply(this, arguments);
  };
}
"""


def views(dash_duo):
    return dash_duo.driver.execute_script(VIEW_DATA_JS)


def click_at(driver, x: float, y: float) -> None:
    actions = ActionChains(driver)
    actions.w3c_actions.pointer_action.move_to_location(int(round(x)), int(round(y)))
    actions.w3c_actions.pointer_action.click()
    actions.perform()


def visible_points(driver, view: str):
    """POINTS_JS of ``view`` after scrolling it into the middle of the window (the views grow
    with the window, so the second row may start below it)."""
    driver.execute_script("document.getElementById('view-' + arguments[0]).scrollIntoView({block: 'center', behavior: 'instant'})", view)
    time.sleep(0.3)
    return driver.execute_script(POINTS_JS, view)


def choose(dash_duo, selector: str, value: str) -> None:
    """Pick ``value`` in a dcc.Dropdown, scrolled into view first (the page may be scrolled
    down to a view of the second row)."""
    dash_duo.driver.execute_script(
        "document.querySelector(arguments[0]).scrollIntoView({block: 'center', behavior: 'instant'})", selector)
    time.sleep(0.2)
    dash_duo.select_dcc_dropdown(selector, value=value)


def isolated_point(points, keep=None) -> tuple[int, int, float, float]:
    """The drawn point farthest (in pixels) from every other one: a click lands on it. ``keep``
    (a point -> bool): the farthest among those it keeps (still from every other point)."""
    xy = np.array([[p[2], p[3]] for p in points])
    dist = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(dist, np.inf)
    nearest = dist.min(axis=1)
    if keep is not None:
        nearest[[not keep(p) for p in points]] = -np.inf
    best = int(nearest.argmax())
    assert np.isfinite(nearest[best]), "no drawn point is one the test can use"
    return tuple(points[best])


def test_page_click_listen_neighbours_switch_and_legend(page, demo_cache):
    driver = page.driver
    cache = open_cache(demo_cache[0])
    groups = colour_groups(cache, "label")
    # 1. four views drawn, titles, the untrained banner
    state = views(page)
    assert [v["n"] for v in state] == [len(groups.names)] * 4
    assert "UNTRAINED" in page.find_element("#untrained-banner").text
    assert "variance" in page.find_element("#view-pca2").text
    shot(page, "1-loaded")

    # 2. a real click on a point of the t-SNE 2D view
    curve, index, x, y = isolated_point(visible_points(driver, "tsne2"))
    clip = int(groups.members[curve][index])
    driver.execute_script(COUNT_CLICK_ROUND_TRIPS_JS)
    click_at(driver, x, y)
    wait_for(lambda: page.find_element("#selected-clip").text == f"clip {clip}", 15, "selection")
    src, played = wait_for(lambda: driver.execute_script(
        "const p = document.getElementById('player');"
        "return p.played.length > 0 || !p.paused ? [p.currentSrc, true] : null;"), 15, "audio to play")
    assert src.endswith(f"/audio/{clip}?v={cache.identity}")  # the URL names the cache
    index_z, _ = cache.neighbours("z")
    expected = [int(i) for i in index_z[clip, :10]]
    state = wait_for(lambda: (lambda s: s if all(v["selected"] == [clip] for v in s) else None)(views(page)),
                     15, "highlight in all views")
    assert all(v["neighbours"] == expected for v in state)
    assert all(v["layer"] == 1 for v in state)  # drawn on the layer over each view
    listed = [int(li.get_attribute("data-clip")) for li in driver.find_elements(By.CSS_SELECTOR, "#neighbour-items li")]
    assert listed == expected
    assert f"clip={clip}" in driver.current_url
    time.sleep(1.0)  # the page's own hand-over would come by now (HAND_OVER_MS) if it doubled Plotly's
    assert driver.execute_script("return window.__clickRoundTrips;") == 1  # one selection, not two
    shot(page, "2-clicked")

    # 3. switching the representation changes the neighbours, in every view
    choose(page, "#rep", "mfcc (80-D baseline)")
    index_mfcc, _ = cache.neighbours("mfcc")
    expected_mfcc = [int(i) for i in index_mfcc[clip, :10]]
    assert expected_mfcc != expected
    wait_for(lambda: all(v["neighbours"] == expected_mfcc for v in views(page)), 20, "mfcc neighbours")
    assert "rep=mfcc" in driver.current_url
    shot(page, "3-mfcc")

    # 4. the shared legend hides a label in all four views
    hide = groups.names[0]
    box = driver.find_element(By.CSS_SELECTOR, "#legend input[value='%s']" % hide)
    box.click()
    wait_for(lambda: all(not v["visible"][0] and all(v["visible"][1:]) for v in views(page)), 15, "hidden label")
    assert all(v["names"][0] == hide for v in views(page))
    shot(page, "4-legend-hidden")

    # 5. Escape clears the selection everywhere
    driver.find_element(By.TAG_NAME, "body").send_keys("\ue00c")
    wait_for(lambda: all(v["selected"] == [] and v["neighbours"] == [] for v in views(page)), 15, "cleared")


def test_views_keep_zoom_and_camera_through_highlights(page, demo_cache):
    driver = page.driver
    driver.execute_script("""
      Plotly.relayout(document.querySelector('#view-pca3 .js-plotly-plot'),
                      {'scene.camera.eye': {x: 2.2, y: 0.3, z: 0.4}});
      const gd = document.querySelector('#view-pca2 .js-plotly-plot');
      Plotly.relayout(gd, {'xaxis.range': [gd._fullLayout.xaxis.range[0] * 0.5, gd._fullLayout.xaxis.range[1] * 0.5]});
    """)
    time.sleep(0.5)
    before = driver.execute_script("""
      const gd = document.querySelector('#view-pca2 .js-plotly-plot');
      return [gd._fullLayout.xaxis.range.slice(), document.querySelector('#view-pca3 .js-plotly-plot')._fullLayout.scene.camera.eye.x];""")
    curve, index, x, y = isolated_point(visible_points(driver, "tsne2"))
    click_at(driver, x, y)
    wait_for(lambda: all(v["selected"] for v in views(page)), 15, "highlight")
    page.driver.find_element(By.TAG_NAME, "body").send_keys("n")  # next neighbour
    wait_for(lambda: "playing neighbour #1" in page.find_element("#clip-info").text, 10, "next neighbour")
    after = driver.execute_script("""
      const gd = document.querySelector('#view-pca2 .js-plotly-plot');
      return [gd._fullLayout.xaxis.range.slice(), document.querySelector('#view-pca3 .js-plotly-plot')._fullLayout.scene.camera.eye.x];""")
    assert after[0] == pytest.approx(before[0]) and after[1] == pytest.approx(2.2)
    shot(page, "5-zoom-kept")


def test_a_link_opens_the_same_clip_and_representation(dash_duo, demo_cache):
    dash_duo.start_server(create_app(demo_cache[0]))
    cache = open_cache(demo_cache[0])
    hidden = colour_groups(cache, "speaker").names[1]
    dash_duo.driver.get(dash_duo.server_url + f"/?rep=codes_concat&k=5&clip=42&colour=speaker&hide={hidden}")
    expected = [int(i) for i in cache.neighbours("codes_concat")[0][42, :5]]
    speaker_of = {i: cache.clips["speaker"][i] for i in expected}
    wait_for(lambda: (lambda s: s and all(v and v["selected"] == [42] and v["neighbours"] ==
                                          [i for i in expected if speaker_of[i] != hidden]
                                          for v in s))(views(dash_duo)), 30, "linked state")
    assert dash_duo.find_element("#selected-clip").text == "clip 42"
    # the link's hidden group stays hidden; the restored clip's audio is armed: `r` plays it
    assert all(v["visible"][1] is False and v["names"][1] == hidden for v in views(dash_duo))
    assert "press r" in dash_duo.find_element("#clip-info").text
    assert f"hide={hidden}" in dash_duo.driver.current_url
    player = "return document.getElementById('player')"
    wait_for(lambda: "/audio/42" in (dash_duo.driver.execute_script(player + ".getAttribute('src')") or ""),
             10, "armed")
    dash_duo.driver.find_element(By.TAG_NAME, "body").send_keys("r")
    wait_for(lambda: dash_duo.driver.execute_script(player + ".played.length > 0 || !" + player[7:] + ".paused"),
             10, "r plays the restored clip")
    shot(dash_duo, "6-linked")


LAYER_JS = "return ['pca2', 'pca3', 'tsne2', 'tsne3'].map(v => (window.dacviz.drawn || {})[v] || null);"


def test_a_hostile_collection_is_shown_as_text_and_fits(dash_duo, hostile_cache):
    """Five clips with labels that are markup, a template, empty, "(none)" and 3,000 characters,
    a collection name that closes <title> and opens <script>: no script runs, no label is
    read as markup, the page never scrolls sideways, the legend names are distinct, and the
    selected clip and its neighbours (all five clips) are inside every view, 3D included."""
    cache = open_cache(hostile_cache[0])
    dash_duo.start_server(create_app(hostile_cache[0]))
    driver = dash_duo.driver
    driver.get(dash_duo.server_url + f"/?k={cache.knn_k}&clip=0")
    layers = wait_for(lambda: (lambda s: s if all(v and len(v.get("pixels", [])) == cache.n_clips
                                                    for v in s) else None)(driver.execute_script(LAYER_JS)),
                      30, "the clip and its neighbours in all four views")
    assert driver.execute_script("return window.__pwned === undefined")
    assert driver.title.startswith("dacviz · </title><script>")  # shown as text
    for view, layer in zip(VIEWS, layers):
        left, top, width, height = layer["rect"]
        for x, y in layer["pixels"]:
            assert left <= x <= left + width and top <= y <= top + height, (view, x, y, layer["rect"])
    widths = driver.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], widths
    names = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#legend label")]
    assert len(names) == len(set(names)) == 4 and "(none)" in names and "(none) 2" in names
    assert driver.execute_script("return document.querySelectorAll('#page b, #page img').length") == 0
    shot(dash_duo, "7-hostile-collection")


SCRIPT_TIMERS_JS = """
// count the frames and timeouts that assets/1a-1e-dacviz-*.js ask for (Plotly's 3D scenes run their own
// requestAnimationFrame loop: only calls made from our script count)
window.__dacvizTimers = 0;
for (const name of ['requestAnimationFrame', 'setTimeout', 'setInterval']) {
  const original = window[name];
  window[name] = function () {
    if (/1[a-e]-dacviz-[a-z]+[.]js/.test(new Error().stack || '')) { window.__dacvizTimers++; }
    return original.apply(window, arguments);
  };
}
"""
RELAYOUT_JS = """
const [view, update, done] = arguments;
const gd = document.querySelector('#view-' + view + ' .js-plotly-plot');
const at = window.dacviz.drawn[view].at;
Plotly.relayout(gd, update).then(() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r))))
  .then(() => done([window.dacviz.drawn[view], window.dacviz.drawn[view].at > at]));
"""
COUNT_REDRAWS_JS = """
// count the layer's redraws of one view (window.dacviz.drawn[view] is set on each)
const drawn = window.dacviz.drawn, view = arguments[0];
let record = drawn[view];
window.__redraws = 0;
Object.defineProperty(drawn, view, {configurable: true, enumerable: true, get: () => record,
                                    set: value => { record = value; window.__redraws++; }});
"""
AXES_JS = """
const L = document.querySelector('#view-' + arguments[0] + ' .js-plotly-plot')._fullLayout;
return [L.xaxis.range.slice(), L.yaxis.range.slice()];
"""


def relayout(driver, view: str, update: dict) -> dict:
    """Plotly.relayout a view, wait two frames; the view's layer record, which must be new."""
    record, redrawn = driver.execute_async_script(RELAYOUT_JS, view, update)
    assert redrawn, f"the layer of {view} was not redrawn after {update}"
    return record


def close(a, b, tol=1.0) -> bool:
    return len(a) == len(b) and all(abs(p - q) <= tol for u, v in zip(a, b) for p, q in zip(u, v))


def zoom_on_selected(driver, view: str, record: dict) -> tuple[dict, dict]:
    """Zoom a 2D view x2 around the selected clip (its layer ``record`` as drawn now): the clip
    must go to the middle of the plot area and every neighbour twice as far from it. Returns the
    new record and the zoomed ranges {"x": (centre, half width), "y": ...}."""
    left, top, width, height = record["rect"]
    (x0, x1), (y0, y1) = driver.execute_script(AXES_JS, view)
    sx, sy = record["pixels"][0]
    cx, cy = x0 + (sx - left) / width * (x1 - x0), y1 - (sy - top) / height * (y1 - y0)
    hw, hh = (x1 - x0) / 4, (y1 - y0) / 4
    zoomed = relayout(driver, view, {"xaxis.range": [cx - hw, cx + hw], "yaxis.range": [cy - hh, cy + hh]})
    mid = (left + width / 2, top + height / 2)
    expected = [(mid[0] + 2 * (px - sx), mid[1] + 2 * (py - sy)) for px, py in record["pixels"]]
    assert close(zoomed["pixels"], expected), (view, zoomed["pixels"], expected)
    return zoomed, {"x": (cx, hw), "y": (cy, hh)}


def drag(driver, view: str, steps: int = 12) -> None:
    """A real mouse drag from the middle of a view (for a 3D view: its drag mode, pan or rotate)."""
    x, y = driver.execute_script("const r = document.querySelector('#view-' + arguments[0] + "
                                 "' .js-plotly-plot').getBoundingClientRect(); "
                                 "return [r.left + r.width / 2, r.top + r.height / 2];", view)
    actions = ActionChains(driver)
    pointer = actions.w3c_actions.pointer_action
    pointer.move_to_location(int(x), int(y))
    pointer.pointer_down()
    for i in range(1, steps + 1):
        pointer.move_to_location(int(x) - 7 * i, int(y) + 3 * i)
        pointer.pause(0.02)
    pointer.pointer_up()
    actions.perform()


def drag_by(driver, view: str, dx: int, dy: int) -> None:
    """A real mouse drag of (dx, dy) px from a third into ``view``'s plot area, the view scrolled
    to the middle of the window first: a box zoom in 2D, a turn in 3D."""
    x, y = driver.execute_script("""
      const gd = document.querySelector('#view-' + arguments[0] + ' .js-plotly-plot');
      gd.scrollIntoView({block: 'center', behavior: 'instant'});
      const r = gd.getBoundingClientRect(), s = gd._fullLayout._size;
      return [r.left + s.l + s.w * 0.3, r.top + s.t + s.h * 0.35];""", view)
    actions = ActionChains(driver)
    pointer = actions.w3c_actions.pointer_action
    pointer.move_to_location(int(x), int(y))
    pointer.pointer_down()
    for step in (0.3, 0.7, 1.0):
        pointer.move_to_location(int(x + dx * step), int(y + dy * step))
    pointer.pointer_up()
    actions.perform()


def test_the_layer_reads_only_plotly_fields_that_exist(page):
    """The private plotly.js fields the layer reads (named in one place at the top of
    assets/1a-dacviz-views.js) are all there in every view of the page's own view table: a Plotly
    upgrade that renames one fails here, by name."""
    driver = page.driver
    missing = driver.execute_script("return window.dacviz.plotlyMissing()")
    version = driver.execute_script("return Plotly.version")
    assert sorted(missing) == sorted(VIEWS), missing  # the views come from #page's data-views
    assert all(m == [] for m in missing.values()), f"plotly.js {version}: {missing}"


def test_the_layer_follows_zoom_pan_and_the_camera_on_events_and_idles(page):
    """After a click, the highlight layer is redrawn when a 2D view is zoomed and panned and when a
    3D camera turns or is dragged, to where Plotly now draws the points; on an idle page our script
    asks for no frame and no timeout (no polling) and redraws nothing."""
    driver = page.driver
    driver.execute_script(SCRIPT_TIMERS_JS)
    curve, index, x, y = isolated_point(visible_points(driver, "tsne2"))
    click_at(driver, x, y)
    wait_for(lambda: all(v and v["selected"] for v in driver.execute_script(LAYER_JS)), 15, "highlight")
    time.sleep(1.0)  # the click's callbacks settle
    before = driver.execute_script(LAYER_JS)
    driver.execute_script("window.__dacvizTimers = 0;")
    time.sleep(1.0)
    assert driver.execute_script("return window.__dacvizTimers") == 0, "the page script polls while idle"
    assert [v["at"] for v in driver.execute_script(LAYER_JS)] == [v["at"] for v in before]

    # 2D: zoom x2 around the selected clip: it moves to the middle of the plot area and every
    # neighbour twice as far from it; a pan moves them all; autorange puts them back
    start = before[VIEWS.index("pca2")]
    zoomed, ranges = zoom_on_selected(driver, "pca2", start)
    (cx, hw), width = ranges["x"], start["rect"][2]
    panned = relayout(driver, "pca2", {"xaxis.range": [cx - hw / 2, cx + 3 * hw / 2]})
    assert close(panned["pixels"], [(px - width / 4, py) for px, py in zoomed["pixels"]])
    back = relayout(driver, "pca2", {"xaxis.autorange": True, "yaxis.autorange": True})
    assert close(back["pixels"], start["pixels"])

    # 3D: camera A, camera B, a real mouse drag, camera A again
    camera_a = {"eye": {"x": 1.6, "y": 1.2, "z": 0.8}, "up": {"x": 0, "y": 0, "z": 1}, "center": {"x": 0, "y": 0, "z": 0}}
    camera_b = {"eye": {"x": -0.4, "y": 2.0, "z": 0.6}, "up": {"x": 0, "y": 0, "z": 1}, "center": {"x": 0, "y": 0, "z": 0}}
    driver.execute_script("document.getElementById('view-pca3').scrollIntoView({block: 'center', behavior: 'instant'})")
    time.sleep(0.5)
    at_a = relayout(driver, "pca3", {"scene.camera": camera_a})
    at_b = relayout(driver, "pca3", {"scene.camera": camera_b})
    assert not close(at_b["pixels"], at_a["pixels"], tol=5)
    driver.execute_script("window.__dacvizTimers = 0;")
    driver.execute_script(COUNT_REDRAWS_JS, "pca3")
    drag(driver, "pca3")
    dragged = wait_for(lambda: (lambda r: r if r["at"] > at_b["at"] and not close(r["pixels"], at_b["pixels"], 5)
                                else None)(driver.execute_script("return window.dacviz.drawn.pca3")),
                       10, "the 3D layer to follow the drag")
    assert driver.execute_script("return window.__dacvizTimers") <= 40  # a frame per event, no loop
    assert driver.execute_script("return window.__redraws") >= 4, "the layer did not follow during the drag"
    time.sleep(0.5)
    dragged = driver.execute_script("return window.dacviz.drawn.pca3")
    saved = driver.execute_script("return document.querySelector('#view-pca3 .js-plotly-plot')"
                                  "._fullLayout.scene.camera")  # where the drag left the camera
    relayout(driver, "pca3", {"scene.camera": camera_b})
    # a 3D scene computes its camera on its own render loop: on a loaded machine the layer's
    # last redraw may come a frame or two after relayout's promise; it must end where it was
    layer_3d = lambda: driver.execute_script("return window.dacviz.drawn.pca3")["pixels"]  # noqa: E731
    relayout(driver, "pca3", {"scene.camera": saved})
    wait_for(lambda: close(layer_3d(), dragged["pixels"]), 10, "the layer where the drag left it")
    relayout(driver, "pca3", {"scene.camera": camera_a})
    wait_for(lambda: close(layer_3d(), at_a["pixels"]), 10, "the layer back at camera A")
    shot(page, "8-layer-follows")

    # Plotly.purge and a new plot give the div a new event emitter; Plotly.newPlot on a drawn div
    # drops every listener: either way the layer is bound again and follows the view
    for reset in ("Plotly.purge(gd); ", ""):
        redrawn_before = driver.execute_script("return window.dacviz.drawn.tsne2.at")
        driver.execute_async_script("""
          const done = arguments[arguments.length - 1];
          const gd = document.querySelector('#view-tsne2 .js-plotly-plot'), data = gd.data, layout = gd.layout;
          %s Plotly.newPlot(gd, data, layout).then(() => done());""" % reset)
        record = wait_for(lambda: (lambda r: r if r["at"] > redrawn_before else None)(
            driver.execute_script("return window.dacviz.drawn.tsne2")), 10, "the layer after a new plot")
        assert driver.execute_script("return document.querySelectorAll('#view-tsne2 canvas.dacviz-layer').length") == 1
        zoom_on_selected(driver, "tsne2", record)
        relayout(driver, "tsne2", {"xaxis.autorange": True, "yaxis.autorange": True})


SOUND_JS = """
const c = document.getElementById(arguments[0]);
return c && c.dataset.drawn && !c.hidden ? JSON.parse(c.dataset.drawn) : null;
"""
UIREVISIONS_JS = """
return ['pca2', 'pca3', 'tsne2', 'tsne3'].map(v => {
  const gd = document.querySelector('#view-' + v + ' .js-plotly-plot');
  return gd && gd.layout ? gd.layout.uirevision : null;
});
"""


def test_the_codec_lens_slider_decoded_audio_and_the_sound(page, demo_cache):
    driver = page.driver
    cache = open_cache(demo_cache[0])
    groups = colour_groups(cache, "label")
    decoded = lambda p: cache.reconstruction_path(int(groups.members[p[0]][p[1]]), 12) is not None  # noqa: E731
    curve, index, x, y = isolated_point(visible_points(driver, "tsne2"), keep=decoded)
    clip = int(groups.members[curve][index])
    driver.execute_script(COUNT_CLICK_ROUND_TRIPS_JS)
    click_at(driver, x, y)
    wait_for(lambda: page.find_element("#selected-clip").text == f"clip {clip}", 15, "selection")
    # the clicked clip's waveform + spectrogram, and the decoded one under it (a decoded clip:
    # on a CPU the demo decodes 12 of its 120)
    drawn = wait_for(lambda: driver.execute_script(SOUND_JS, "sound-canvas"), 15, "the sound drawn")
    assert drawn["blocks"] == 2 and drawn["captions"][0] == f"clip {clip} · original"
    assert drawn["captions"][1] == "decoded from 12 codebooks" and min(drawn["frames"]) > 5

    # the slider to 4 codebooks: all four views, the neighbour list and the URL follow
    driver.execute_script("document.getElementById('depth').scrollIntoView({block: 'center', behavior: 'instant'})")
    time.sleep(0.3)
    marks = {m.text: m for m in driver.find_elements(By.CSS_SELECTOR, "#depth .dash-slider-mark")}
    assert sorted(marks, key=int) == [str(q) for q, _ in open_cache(demo_cache[0]).depths()]
    mark, thumb = (driver.execute_script("return arguments[0].getBoundingClientRect().toJSON()", e)
                   for e in (marks["4"], driver.find_element(By.CSS_SELECTOR, "#depth [role=slider]")))
    click_at(driver, mark["x"] + mark["width"] / 2, thumb["y"] + thumb["height"] / 2)  # on the track
    wait_for(lambda: page.find_element("#depth-label").text == "4 codebooks · 2.0 kbps", 10, "depth label")
    index_q4, _ = cache.neighbours("z_q4")
    expected = [int(i) for i in index_q4[clip, :10]]
    assert expected != [int(i) for i in cache.neighbours("z")[0][clip, :10]]
    wait_for(lambda: all(v["neighbours"] == expected and v["selected"] == [clip] for v in views(page)),
             20, "z_q4 neighbours in all views")
    assert driver.execute_script(UIREVISIONS_JS) == ["z_q4"] * 4  # every view redrawn from z_q4
    listed = [int(li.get_attribute("data-clip")) for li in driver.find_elements(By.CSS_SELECTOR, "#neighbour-items li")]
    assert listed == expected and "q=4" in driver.current_url
    drawn = wait_for(lambda: (lambda d: d if d and d["captions"][-1] == "decoded from 4 codebooks" else None)(
        driver.execute_script(SOUND_JS, "sound-canvas")), 10, "the comparison follows the slider")
    shot(page, "5-four-codebooks")

    # A/B: play the decoded clip, then the key "a" back to the original
    driver.find_element(By.CSS_SELECTOR, "#ab input[value='4']").click()
    wait_for(lambda: driver.execute_script(
        "const p = document.getElementById('player');"
        "return p.currentSrc.endsWith('q=4') && (p.played.length > 0 || !p.paused);"), 15, "decoded playing")
    driver.find_element(By.TAG_NAME, "body").send_keys("a")
    wait_for(lambda: driver.execute_script(
        "const p = document.getElementById('player'); return /q=0$/.test(p.currentSrc) && !p.paused;"),
        15, "the original again")
    assert "noise" in page.find_element("#ab-untrained").text  # untrained: said beside the player

    # hovering a neighbour draws its spectrogram
    row = driver.find_element(By.CSS_SELECTOR, "#neighbour-items li:nth-child(2)")
    ActionChains(driver).move_to_element(row).perform()
    hover = wait_for(lambda: driver.execute_script(SOUND_JS, "hover-canvas"), 10, "the neighbour's sound")
    assert hover["captions"] == [f"neighbour #2 · clip {expected[1]}"]
    # the chart of metrics against q marks the slider's depth
    driver.execute_script("document.getElementById('codec-panel').scrollIntoView({behavior: 'instant'})")
    wait_for(lambda: driver.execute_script(
        "const gd = document.querySelector('#depth-chart .js-plotly-plot');"
        "return gd && gd.data.length === 4 && gd.layout.shapes.length === 3"
        " && gd.layout.shapes.every(s => s.x0 === 4) && !gd.layout.yaxis.overlaying"
        " && gd.data.some(t => t.name === 'chance');"), 10, "the depth chart: three panels, q=4 marked")
    shot(page, "6-codec-lens")


HEATMAP_CELL_JS = """
const gd = document.querySelector('#confusion .js-plotly-plot');
if (!gd || !gd._fullLayout || !gd._fullLayout.xaxis) { return null; }
const r = gd.getBoundingClientRect(), xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
const n = arguments[2];  // drawn for this column: n rows, and the axis spans them
if (gd.data[0].y.length !== n || Math.abs(ya.range[0] - ya.range[1]) !== n ||
    Math.abs(gd._fullLayout.height - arguments[3]) > 1) { return null; }
const i = arguments[0], j = arguments[1];
return [r.left + xa._offset + xa.c2p(j), r.top + ya._offset + ya.c2p(i), gd.data[0].y[i], gd.data[0].x[j]];
"""


def test_analysis_by_any_column_heatmap_lasso_csv_and_report(page, demo_cache, tmp_path):
    """Colour by speaker: the metrics and the heatmap follow with the chance level; a heatmap
    cell selects its clips in all views; a box selection keeps the clips' colours and exports a
    CSV of exactly those clips; the HTML report opens offline with its four views."""
    import csv

    from dacviz_app.explore import analysis
    from dacviz_app.explore.groups import ViewGroups

    driver = page.driver
    cache = open_cache(demo_cache[0])
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    choose(page, "#colour", "speaker")
    wait_for(lambda: page.find_element("#metrics-column").text.startswith("Scored by speaker"), 15, "metrics")
    assert "chance" in page.find_element("#metrics-table").text
    wait_for(lambda: "k-NN vote by speaker" in page.find_element("#confusion").text, 15, "heatmap")
    conf = analysis.confusion(cache, "z", "speaker")
    assert f"chance {conf['chance']:.3f}" in page.find_element("#confusion-summary").text
    driver.execute_script("document.getElementById('analysis-panel').scrollIntoView({behavior: 'instant'})")
    time.sleep(0.3)
    shot(page, "12-1-speaker-heatmap")

    # a heatmap cell: its clips are selected in all four views
    i = int(np.argmax(np.diag(conf["counts"])))
    n = len(conf["names"])
    wait_for(lambda: driver.execute_script(HEATMAP_CELL_JS, i, i, n, max(260, min(640, 60 + 22 * n))), 15,
             "heatmap of the speakers")
    time.sleep(0.5)
    x, y, true_value, voted = driver.execute_script(HEATMAP_CELL_JS, i, i, n, max(260, min(640, 60 + 22 * n)))
    click_at(driver, x, y)
    cell = analysis.confusion_cell(cache, "z", "speaker", true_value, voted)
    assert cell and true_value == voted == conf["names"][i]
    selected_in = lambda: {v: sorted(driver.execute_script(f"return window.dacviz.drawn['{v}'].lassoIds || []"))
                           for v in VIEWS}  # noqa: E731
    try:
        wait_for(lambda: all(ids == cell for ids in selected_in().values()), 15, "cell selected in all views")
    except AssertionError:
        raise AssertionError(f"cell {true_value}/{voted} {cell}: drawn {selected_in()}, "
                             f"list {page.find_element('#lasso-list').text[:200]!r}")
    assert f"{len(cell)} clips selected" in page.find_element("#lasso-count").text
    assert "speaker: " in page.find_element("#lasso-list").text
    driver.execute_script("window.scrollTo({top: 0, behavior: 'instant'})")
    shot(page, "12-2-cell-selected")

    # a box selection on the PCA 2D view keeps each clip's colour
    gd = page.find_element("#view-pca2 .js-plotly-plot")
    ActionChains(driver).move_to_element(gd).perform()
    page.find_element("#view-pca2 .modebar-btn[data-val='select']").click()
    r = driver.execute_script("const g = arguments[0], L = g._fullLayout, b = g.getBoundingClientRect();"
                              "return [b.left + L._size.l, b.top + L._size.t, L._size.w, L._size.h];", gd)
    actions = ActionChains(driver)
    actions.w3c_actions.pointer_action.move_to_location(int(r[0] + 0.05 * r[2]), int(r[1] + 0.05 * r[3]))
    actions.w3c_actions.pointer_action.pointer_down()
    actions.w3c_actions.pointer_action.move_to_location(int(r[0] + 0.6 * r[2]), int(r[1] + 0.95 * r[3]))
    actions.w3c_actions.pointer_action.pointer_up()
    actions.perform()
    boxed = wait_for(lambda: (lambda ids: ids if ids and sorted(ids) != cell else None)(
        driver.execute_script("return window.dacviz.drawn['pca2'].lassoIds || []")), 15, "box selection")
    colours = driver.execute_script("return window.dacviz.drawn['pca2'].lassoColours")
    groups = ViewGroups(cache).all("speaker")
    group_of = groups.group_of()
    assert colours == [groups.colours[group_of[c]] for c in boxed]  # class colours, not black
    assert "sel=" in driver.current_url
    shot(page, "12-3-box-keeps-colours")

    # a row of the selection list plays on click and selects on double-click
    row = page.find_element("#lasso-list .lasso-row")
    first = int(row.get_attribute("data-clip"))
    driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", row)
    time.sleep(0.3)
    row.click()
    wait_for(lambda: f"/audio/{first}" in (driver.execute_script(
        "return document.getElementById('player').getAttribute('src')") or ""), 10, "row plays")
    # a double-click is two clicks within the system's interval: on a loaded 2-core machine the
    # driver's two clicks may land too far apart to be one, so it is given up to three tries
    for attempt in range(3):
        ActionChains(driver).double_click(page.find_element("#lasso-list .lasso-row")).perform()
        try:
            wait_for(lambda: driver.execute_script(
                "const e = document.getElementById('selected-clip'); return e ? e.textContent : null")
                == f"clip {first}", 5, "row selects")
            break
        except AssertionError:
            if attempt == 2:
                raise
    assert sorted(driver.execute_script("return window.dacviz.drawn['pca2'].lassoIds")) == sorted(boxed)

    # the CSV export holds exactly the selected clips (the export row unfolds first)
    driver.execute_script("window.scrollTo({top: 0, behavior: 'instant'})")
    time.sleep(0.3)
    page.find_element("#more-toggle").click()
    wait_for(lambda: page.find_element("#export-csv").is_displayed(), 10, "the export row")
    time.sleep(0.5)  # the fold's transition
    page.find_element("#export-csv").click()
    path = wait_for(lambda: next(iter(tmp_path.glob("*.csv")), None), 20, "CSV download")
    time.sleep(0.3)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(int(r["id"]) for r in rows) == sorted(boxed)
    assert all(r["speaker"] == cache.clips["speaker"][int(r["id"])] for r in rows)

    # Esc clears the selection and the drawn box outline
    driver.find_element(By.TAG_NAME, "body").send_keys("\ue00c")
    wait_for(lambda: driver.execute_script(
        "const L = document.querySelector('#view-pca2 .js-plotly-plot')._fullLayout;"
        "return (!L.selections || L.selections.length === 0) && (window.dacviz.drawn['pca2'].lasso || 0) === 0;"),
        15, "outline removed")

    # the offline report: four views drawn from the file alone
    driver.execute_script("window.scrollTo({top: 0, behavior: 'instant'})")
    time.sleep(0.3)
    page.find_element("#export-report").click()
    report = wait_for(lambda: next(iter(tmp_path.glob("*.html")), None), 30, "report download")
    time.sleep(0.5)
    text = report.read_text()
    assert "<script src" not in text and "<link" not in text
    driver.get(report.as_uri())
    wait_for(lambda: driver.execute_script(
        "return document.querySelectorAll('.js-plotly-plot').length === 4 && "
        "Array.from(document.querySelectorAll('.js-plotly-plot')).every(g => g.data && g.data.length > 1)"),
        30, "report views")
    shot(page, "12-4-report")


def test_the_maps_grow_with_the_window_and_nothing_reaches_off_the_machine(page, demo_cache):
    """Each view's height follows the window; no modebar button or link leaves the machine; a
    hover names the clip; a 3D drag rotates (orbit)."""
    driver = page.driver
    heights = {}
    for width, height in ((1000, 700), (1920, 1080)):
        driver.set_window_size(width, height)
        time.sleep(1.0)
        driver.execute_script("window.scrollTo(0, 0)")
        heights[height], bottom, inner = driver.execute_script(
            "return [['pca2', 'pca3', 'tsne2', 'tsne3'].map(v => document.getElementById('view-' + v)"
            ".getBoundingClientRect().height), document.querySelector('.views-grid').getBoundingClientRect().bottom,"
            " window.innerHeight]")
        # the two rows share the height under the header (the grid ends at the window's bottom),
        # or, in a window too short for that, keep 260 px each and the page scrolls to them
        assert all(h >= 259 for h in heights[height]), (height, heights[height])
        assert all(h <= 261 for h in heights[height]) or abs(bottom - inner) < 60, (height, bottom, inner)
    assert all(b > a + 40 for a, b in zip(heights[700], heights[1080])), heights
    titles = driver.execute_script(
        "return Array.from(document.querySelectorAll('.modebar-btn')).map(b => (b.getAttribute('data-title') || '') +"
        " ' ' + (b.getAttribute('href') || ''))")
    assert titles and not [t for t in titles if "http" in t or "Cloud" in t or "Chart Studio" in t or "Share" in t]
    links = driver.execute_script("return Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
    assert all(h.startswith(page.server_url) or h.startswith("javascript") for h in links), links
    cache = open_cache(demo_cache[0])
    text = driver.execute_script("return document.querySelector('#view-tsne2 .js-plotly-plot').data[0].text[0]")
    first = colour_groups(cache, "label").members[0][0]
    assert text.startswith(f"clip {first} · ") and cache.clips["speaker"][first] in text
    assert driver.execute_script(
        "return document.querySelector('#view-tsne3 .js-plotly-plot')._fullLayout.scene.dragmode") == "orbit"
    shot(page, "13-1-1920")

    # a view's button fills the window with it, and back; the link keeps it
    inner = driver.execute_script("return window.innerHeight")
    driver.execute_script("document.querySelector('#box-tsne2 .maximise').click()")
    wait_for(lambda: driver.execute_script(
        "return document.getElementById('view-tsne2').getBoundingClientRect().height") > 0.9 * inner, 10, "maximised")
    assert driver.execute_script("return ['pca2', 'pca3', 'tsne3'].every(v => "
                                 "document.getElementById('view-' + v).offsetParent === null)")
    assert "max=tsne2" in driver.current_url
    wait_for(lambda: driver.execute_script(
        "const gd = document.querySelector('#view-tsne2 .js-plotly-plot');"
        "return gd._fullLayout.height > 0.85 * window.innerHeight"), 10, "the figure fits its new size")
    shot(page, "13-2-maximised")
    driver.execute_script("document.querySelector('#box-tsne2 .maximise').click()")
    wait_for(lambda: driver.execute_script(
        "return ['pca2', 'pca3', 'tsne3'].every(v => document.getElementById('view-' + v).offsetParent !== null)"),
        10, "all four again")
    assert "max=" not in driver.current_url

    # a zoom (2D) and a camera (3D) stay when the colouring changes
    state = ("const gd = document.querySelector('#view-' + arguments[0] + ' .js-plotly-plot'), L = gd._fullLayout;"
             "return [L.meta && L.meta.groups, L.xaxis ? L.xaxis.range.slice() : JSON.stringify(L.scene.camera.eye)];")
    full = driver.execute_script(state, "pca2")[1]
    drag_by(driver, "pca2", 130, 100)
    zoomed = wait_for(lambda: (r := driver.execute_script(state, "pca2")[1]) != full and r, 10, "zoomed")
    eye = driver.execute_script(state, "tsne3")[1]
    drag_by(driver, "tsne3", 120, 0)
    turned = wait_for(lambda: (e := driver.execute_script(state, "tsne3")[1]) != eye and e, 10, "turned")
    time.sleep(0.5)
    before = driver.execute_script(state, "pca2")[0]
    choose(page, "#colour", "speaker")
    wait_for(lambda: driver.execute_script(state, "pca2")[0] != before, 15, "recoloured")
    time.sleep(0.5)
    assert driver.execute_script(state, "pca2")[1] == pytest.approx(zoomed, rel=1e-6), "the zoom stays"
    assert json.loads(driver.execute_script(state, "tsne3")[1]) == pytest.approx(json.loads(turned), rel=1e-6), \
        "the camera stays"

    # a link with max= opens with that view filling the window; another control keeps it in the link
    driver.get(page.server_url + "/?max=pca3&colour=speaker")
    wait_for(lambda: driver.execute_script(
        "const b = document.getElementById('box-pca3'); return b && b.classList.contains('max') &&"
        " document.getElementById('view-pca3').getBoundingClientRect().height > 0.9 * window.innerHeight"),
        20, "max= restored")
    wait_for(lambda: "colour=speaker" in driver.current_url and "max=pca3" in driver.current_url, 10, "link keeps max")


def test_query_by_voice_with_the_fake_microphone_lands_among_its_own_recording(demo_cache, tmp_path):
    """Chromium's fake microphone says one of the demo clips (looped) into the record button of
    the real server (python -m dacviz_app: gunicorn and the encoder service): with MFCC, its
    nearest clip is that same recording; the query is drawn in all four views, its neighbours
    are listed, and another representation places it again."""
    import subprocess
    import sys

    from selenium import webdriver

    from dacviz_testkit import chromium_options, free_port

    cache = open_cache(demo_cache[0])
    clip = 31
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "dacviz_app", "--cache", str(demo_cache[0]),
                               "--port", str(port), "--workers", "1"], cwd=ROOT)
    options = chromium_options(1600, 1100, tmp_path / "profile")
    for flag in ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-audio-capture={cache.audio_path(clip)}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(base + "/query") in ("ready",), 90, "the encoder service")
        driver.get(base + "/?rep=mfcc")
        wait_for(lambda: driver.execute_script(
            "return ['pca2','pca3','tsne2','tsne3'].every(v => document.querySelector("
            "'#view-' + v + ' .js-plotly-plot canvas'))"), 30, "four views")
        record = driver.find_element(By.ID, "query-record")
        record.click()
        wait_for(lambda: "Stop" in record.text, 10, "recording")
        time.sleep(2 * float(cache.clips["duration_s"][clip]))  # the file twice (it loops)
        level = float(driver.find_element(By.ID, "query-level").get_attribute("data-level") or 0)
        record.click()
        wait_for(lambda: driver.execute_script(
            "const d = window.dacviz.drawn; return ['pca2','pca3','tsne2','tsne3'].every(v => d[v] && d[v].query)"),
            30, "the query drawn in all four views")
        status = driver.find_element(By.ID, "query-status").text
        rows = driver.find_elements(By.CSS_SELECTOR, "#neighbour-items .neighbour")
        assert int(rows[0].get_attribute("data-clip")) == clip, status
        assert "encoded in" in status and "nearest in" not in status, status  # it would go stale
        assert f"nearest in mfcc is clip {clip} " in driver.find_element(By.ID, "query-nearest").text
        assert float(rows[0].find_element(By.CLASS_NAME, "nb-dist").text) < 0.02, status
        assert len(rows) == 10 and level > 0.05  # k rows; the meter moved
        assert driver.find_element(By.ID, "selected-clip").text == "query"
        # the recording as the encoder heard it, drawn as a figure on the query card
        heard = json.loads(wait_for(lambda: driver.execute_script(
            "return document.getElementById('query-sound').dataset.drawn"), 10, "the query's spectrogram"))
        assert heard["captions"][0].endswith("· as encoded") and "1k" in heard["freqTicks"], heard
        shot_driver(driver, "query_by_voice")
        # another representation: the same query placed again, from the vectors the page holds
        driver.execute_script("window.dash_clientside.set_props('rep', {value: 'z'})")
        wait_for(lambda: "z (1024-D," in driver.find_element(By.ID, "neighbour-list").text, 20, "z's neighbours")
        first_z = driver.find_element(By.CSS_SELECTOR, "#neighbour-items .neighbour").get_attribute("data-clip")
        wait_for(lambda: f"nearest in z is clip {first_z} " in driver.find_element(By.ID, "query-nearest").text,
                 10, "the head follows the representation")
        assert driver.find_element(By.ID, "selected-clip").text == "query"
        timings = driver.execute_script("return window.dacvizQuery.timings")
        assert len(timings) == 1 and timings[0] > 0
        # said again with z shown: the query's frames are a path in all four views, its marker
        # follows the query's own player
        record.click()
        wait_for(lambda: "Stop" in record.text, 10, "recording again")
        time.sleep(2 * float(cache.clips["duration_s"][clip]))
        record.click()
        drawn = wait_for(lambda: driver.execute_script(
            "const d = window.dacviz.drawnPaths || {}; return ['pca2','pca3','tsne2','tsne3'].every("
            "v => d[v] && d[v].paths.some(p => p.name === 'query' && p.points > 10)) ? d : null"),
            30, "the query's path in all four views")
        assert "query path" in driver.find_element(By.ID, "path-info").text
        assert all(drawn[v]["markerOf"] == "query" for v in ("pca2", "tsne2"))
    finally:
        driver.quit()
        server.terminate()
        server.wait(30)


def _answers(url: str) -> str | None:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())["state"]
    except OSError:
        return None



FIGURE_DATA_JS = """
const gd = document.querySelector(arguments[0] + ' .js-plotly-plot');
return gd && gd.data ? gd.data.map(t => ({name: t.name, x: t.x, y: t.y, xaxis: t.xaxis || 'x'})) : null;
"""


def test_what_the_codec_keeps_fidelity_colour_control_for_speaker_and_the_probe_chart(page, demo_cache):
    """Colour the maps by STOI at 4 codebooks (quarters, worst first, as the cache says); choose
    "control for speaker": the probe chart holds speaker out (its numbers and chance are
    probes.json's), the confusion's voters are other speakers' clips with their own chance; the
    clicked clip's fidelity at 4 cb is the cache's; the untrained warning is said."""
    from dacviz_app.explore import analysis, measures
    from dacviz_app.explore.groups import ViewGroups

    driver = page.driver
    cache = open_cache(demo_cache[0])
    assert cache.fidelity is not None and cache.probes is not None
    colour = f"{measures.FIDELITY_COLOUR}:stoi:4"
    choose(page, "#colour", "fidelity: STOI at 4 cb")
    expected = ViewGroups(cache).drawn(colour, "pca2").names
    wait_for(lambda: [t["name"] for t in driver.execute_script(FIGURE_DATA_JS, "#view-pca2") or []]
             == list(expected), 20, "the maps coloured by STOI quarters")
    assert expected[0].startswith("worst quarter") and "colour=%40fidelity%3Astoi%3A4" in driver.current_url

    choose(page, "#control", "speaker")
    wait_for(lambda: "GroupKFold by speaker" in page.find_element("#probe-note").text, 20, "the probe note")
    traces = wait_for(lambda: driver.execute_script(FIGURE_DATA_JS, "#probe-chart"), 20, "the probe chart")
    label_probe = next(t for t in traces if t["name"] == "linear probe" and t["xaxis"] == "x")
    series = measures.probe_series(cache, "label", "speaker")
    assert label_probe["y"] == pytest.approx([s["probe"]["accuracy"] for s in series])
    chance = next(t for t in traces if t["name"] == "chance (probe)" and t["xaxis"] == "x")
    assert chance["y"] == pytest.approx([s["probe"]["chance"] for s in series])
    assert "UNTRAINED" in page.find_element("#probe-note").text

    conf = analysis.confusion(cache, "z", "label", "speaker")
    wait_for(lambda: "another speaker" in page.find_element("#confusion-summary").text, 20, "controlled confusion")
    assert f"chance {conf['chance']:.3f}" in page.find_element("#confusion-summary").text

    fidelity = wait_for(lambda: driver.execute_script(FIGURE_DATA_JS, "#fidelity-chart"), 20, "fidelity chart")
    scored = open_cache(demo_cache[0]).fidelity.params["dnsmos_clips"]  # none on a CPU by default
    assert any(t["name"] == "original's DNSMOS" for t in fidelity) == bool(scored)
    for size, name in (((1000, 700), "13-measures-1000"), ((1920, 1080), "13-measures-1920")):
        driver.set_window_size(*size)
        driver.execute_script("document.getElementById('measures-panel').scrollIntoView({behavior: 'instant'})")
        time.sleep(1.0)
        shot(page, name)

    clip = int(cache.fidelity.clip_ids[3])
    driver.get(page.server_url + f"/?clip={clip}")
    wait_for(lambda: all(v and v["drawn"] for v in (views(page) or [None])), 30, "four views again")
    radio = wait_for(lambda: [e for e in driver.find_elements("css selector", "#ab input") if e.get_attribute("value") == "4"],
                     15, "the A/B choice")
    driver.execute_script("arguments[0].click()", radio[0])
    line = wait_for(lambda: page.find_element("#clip-fidelity").text, 15, "the clip's fidelity")
    stoi = cache.fidelity.of_clip(clip, 4)["stoi"]
    assert line.startswith("At 4 cb:") and ("n/a" if stoi != stoi else f"STOI {stoi:.2f}") in line

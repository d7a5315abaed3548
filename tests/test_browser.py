"""Real-browser tests in headless Chromium (Debian's chromium + chromium-driver, dash[testing]).

Screenshots of each state are saved under artifacts/screenshots/.
"""
from __future__ import annotations

import time

import numpy as np
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from conftest import ROOT
from dacviz_app.core.cache import open_cache
from dacviz_app.core.views import colour_groups
from dacviz_app.ui.app import create_app
from dacviz_app.ui.figures import VIEWS

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
    SHOTS.mkdir(parents=True, exist_ok=True)
    dash_duo.driver.save_screenshot(str(SHOTS / f"{name}.png"))


def wait_for(predicate, timeout=20, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def views(dash_duo):
    return dash_duo.driver.execute_script(VIEW_DATA_JS)


def click_at(driver, x: float, y: float) -> None:
    actions = ActionChains(driver)
    actions.w3c_actions.pointer_action.move_to_location(int(round(x)), int(round(y)))
    actions.w3c_actions.pointer_action.click()
    actions.perform()


def isolated_point(points) -> tuple[int, int, float, float]:
    """The drawn point farthest (in pixels) from every other one: a click lands on it."""
    xy = np.array([[p[2], p[3]] for p in points])
    dist = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(dist, np.inf)
    best = int(dist.min(axis=1).argmax())
    return tuple(points[best])


@pytest.fixture
def page(dash_duo, demo_cache):
    app = create_app(demo_cache[0])
    dash_duo.start_server(app)
    wait_for(lambda: all(v and v["drawn"] for v in (views(dash_duo) or [None])), 30, "four views")
    return dash_duo


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
    curve, index, x, y = isolated_point(driver.execute_script(POINTS_JS, "tsne2"))
    clip = int(groups.members[curve][index])
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
    shot(page, "2-clicked")

    # 3. switching the representation changes the neighbours, in every view
    page.select_dcc_dropdown("#rep", value="mfcc (80-D baseline)")
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
    curve, index, x, y = isolated_point(driver.execute_script(POINTS_JS, "tsne2"))
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
    dash_duo.driver.get(dash_duo.server_url + "/?rep=codes_concat&k=5&clip=42")
    cache = open_cache(demo_cache[0])
    expected = [int(i) for i in cache.neighbours("codes_concat")[0][42, :5]]
    wait_for(lambda: (lambda s: s and all(v and v["selected"] == [42] and v["neighbours"] == expected
                                          for v in s))(views(dash_duo)), 30, "linked state")
    assert dash_duo.find_element("#selected-clip").text == "clip 42"
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

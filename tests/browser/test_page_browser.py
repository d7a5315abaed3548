"""The page as a researcher works it, in headless Chromium on the demo cache, the page itself
sized as a screen (``set_viewport``): the codebook sweep in one screen at 1920x1080 (maps,
the lens's depth chart and the clicked clip's neighbours, before and after a slider move), the
spectrogram as a figure (Hz and time axes, a dBFS colour bar), "+N more", Find by label, a zoom
and a camera restored from a link, presentation at 1000x700 with both rows of maps in the
window, a maximised view with its legend, the player's clock for a clip under a second.
Screenshots: artifacts/screenshots/page-*.png."""
from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlparse

import pytest
from selenium.webdriver.common.by import By

from dacviz_app.cache import open_cache
from dacviz_app.explore.groups import colour_groups
from dacviz_testkit import set_viewport
from test_browser import POINTS_JS, choose, click_at, drag_by, isolated_point, shot, views, wait_for

INSIDE_JS = """
// each element (a selector, or the first match's nth children) wholly inside the window, and not
// hidden under a scrolled panel: its centre is the topmost element there (or inside it)
const inside = el => { const r = el.getBoundingClientRect();
  if (r.width <= 0 || r.height <= 0 || r.top < 0 || r.left < 0 || r.bottom > innerHeight || r.right > innerWidth) return false;
  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  return !!hit && (el === hit || el.contains(hit) || hit.contains(el)); };
return arguments[0].map(s => Array.from(document.querySelectorAll(s)).map(inside));
"""


def pointer_to(driver, x: float, y: float) -> None:
    """The pointer moved to the page position (x, y), no button pressed: what a hover is."""
    from selenium.webdriver.common.action_chains import ActionChains

    actions = ActionChains(driver)
    actions.w3c_actions.pointer_action.move_to_location(int(round(x)), int(round(y)))
    actions.perform()


def pointer_away(driver) -> None:
    """The pointer to the page's corner: no hover label left over a view in a screenshot."""
    pointer_to(driver, 2, 2)


def drawn_at_1920(page, demo_cache):
    """The page at 1920x1080 with its four views drawn, and an isolated point of the t-SNE 2D view
    -> (cache, curve, index, x, y, clip): the point's trace and place in it, its page position
    and its clip."""
    driver = page.driver
    cache = open_cache(demo_cache[0])
    set_viewport(driver, 1920, 1080)
    driver.get(page.server_url)
    wait_for(lambda: all(v and v["drawn"] for v in (views(page) or [None])), 30, "four views")
    time.sleep(0.5)
    curve, index, x, y = isolated_point(driver.execute_script(POINTS_JS, "tsne2"))  # no scroll
    return cache, curve, index, x, y, int(colour_groups(cache, "label").members[curve][index])


def slider_to(page, q: int) -> None:
    """A real click on the codebook slider's mark ``q`` (on the track), where it is now."""
    driver = page.driver
    marks = {m.text: m for m in driver.find_elements(By.CSS_SELECTOR, "#depth .dash-slider-mark")}
    mark, thumb = (driver.execute_script("return arguments[0].getBoundingClientRect().toJSON()", e)
                   for e in (marks[str(q)], driver.find_element(By.CSS_SELECTOR, "#depth [role=slider]")))
    click_at(driver, mark["x"] + mark["width"] / 2, thumb["y"] + thumb["height"] / 2)


def test_the_codebook_sweep_is_watched_in_one_screen(page, demo_cache):
    driver = page.driver
    cache, curve, index, x, y, clip = drawn_at_1920(page, demo_cache)
    click_at(driver, x, y)
    wait_for(lambda: page.find_element("#selected-clip").text == f"clip {clip}", 15, "selection")
    rows = wait_for(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#neighbour-items li")), 15, "rows")
    assert rows == 10 and driver.execute_script("return window.scrollY") == 0
    seen = driver.execute_script(INSIDE_JS, ["#neighbour-items li", "#depth-chart", "#depth",
                                             "#view-pca2", "#view-tsne3"])
    assert all(seen[0]) and len(seen[0]) == 10, seen  # every neighbour row, no panel scrolled
    assert all(seen[1]) and all(seen[2]) and all(seen[3]) and all(seen[4]), seen
    pointer_away(driver)
    shot(page, "page-sweep-1920-clicked")

    slider_to(page, 4)
    wait_for(lambda: page.find_element("#depth-label").text.startswith("4 codebooks"), 10, "depth 4")
    expected = [int(i) for i in cache.neighbours("z_q4")[0][clip, :10]]
    wait_for(lambda: [int(li.get_attribute("data-clip")) for li in
                      driver.find_elements(By.CSS_SELECTOR, "#neighbour-items li")] == expected, 20, "q=4 rows")
    wait_for(lambda: driver.execute_script(
        "const gd = document.querySelector('#depth-chart .js-plotly-plot');"
        "return gd && gd.layout.shapes.length === 3 && gd.layout.shapes.every(s => s.x0 === 4);"), 10, "q=4 marked")
    seen = driver.execute_script(INSIDE_JS, ["#neighbour-items li", "#depth-chart", "#depth"])
    assert all(seen[0]) and len(seen[0]) == 10 and all(seen[1]) and all(seen[2]), seen
    assert driver.execute_script("return window.scrollY") == 0
    pointer_away(driver)
    shot(page, "page-sweep-1920-q4")

    # the spectrogram is a figure: Hz and time axes, a colour bar in dBFS, its caption above it
    drawn = wait_for(lambda: driver.execute_script(
        "const c = document.getElementById('sound-canvas'); return c.dataset.drawn ? JSON.parse(c.dataset.drawn) : null"),
        15, "the sound")
    assert {"1k", "4k"} <= set(drawn["freqTicks"]) and len(drawn["freqTicks"]) >= 4, drawn
    assert drawn["timeTicks"][0] == "0" and len(drawn["timeTicks"]) >= 3, drawn
    assert drawn["colourbar"][0] == 0 and drawn["colourbar"][-1] == -100, drawn
    assert drawn["spectrogram"][0] >= 250 and drawn["spectrogram"][1] >= 140, drawn  # px of each block
    assert drawn["captions"][0] == f"clip {clip} · original"
    # the player says the length of a clip under a second (the browser's own clock reads 0:00)
    length = float(cache.clips["duration_s"][clip])
    wait_for(lambda: page.find_element("#player-time").text.endswith(f" / {length:.2f} s"), 10, "the clock")
    driver.execute_script("document.getElementById('sound-canvas').scrollIntoView({block: 'center', behavior: 'instant'})")
    time.sleep(0.3)
    shot(page, "page-spectrogram-1920")


def test_find_a_label_and_the_summary_says_what_it_left_out(page, demo_cache):
    driver = page.driver
    cache = open_cache(demo_cache[0])
    driver.find_element(By.ID, "more-toggle").click()
    box = wait_for(lambda: (e := driver.find_element(By.ID, "find")).is_displayed() and e, 10, "the find box")
    box.send_keys("SEVEN")
    driver.find_element(By.ID, "find-go").click()
    sevens = sum(str(v) == "seven" for v in cache.clips["label"])
    note = wait_for(lambda: page.find_element("#find-note").text, 15, "the find note")
    assert f"{sevens} found" in note and f"label 'SEVEN' ({sevens})" in note, note
    wait_for(lambda: page.find_element("#lasso-count").text.startswith(f"{sevens} clips selected"), 10, "selected")
    # ten sevens by ten voices: the speaker line shows 6 and says +4 more
    speakers = len({str(s) for s, v in zip(cache.clips["speaker"], cache.clips["label"]) if str(v) == "seven"})
    summary = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".lasso-summary")]
    line = next(t for t in summary if t.startswith("speaker:"))
    assert speakers > 6 and line.endswith(f"+{speakers - 6} more"), summary
    # the filter: the heatmap and the agreement say they score every clip
    choose(page, "#filter", "speaker=us-m1")
    note = wait_for(lambda: page.find_element("#filter-not-applied").text, 15, "the filter said")
    assert f"of {cache.n_clips} clips" in note
    wait_for(lambda: "the filter does not apply" in driver.execute_script(
        "return document.querySelector('#confusion .js-plotly-plot').layout.title.text"), 10, "the heatmap's title")


def test_a_zoom_and_a_camera_come_back_from_the_link(page, demo_cache):
    driver = page.driver

    ranges = "const L = document.querySelector('#view-pca2 .js-plotly-plot')._fullLayout; return [L.xaxis.range, L.yaxis.range];"
    eye = "return document.querySelector('#view-tsne3 .js-plotly-plot')._fullLayout.scene.camera.eye;"
    drag_by(driver, "pca2", 140, 100)
    drag_by(driver, "tsne3", 120, 30)
    wait_for(lambda: "view=pca2" in driver.current_url and "view=tsne3" in driver.current_url, 10, "view= in the link")
    zoomed, turned = driver.execute_script(ranges), driver.execute_script(eye)
    link = driver.current_url
    fields = parse_qs(urlparse(link).query)["view"]
    assert len(fields) == 2 and all(len(f) < 200 for f in fields), fields
    driver.get(link)
    wait_for(lambda: all(v and v["drawn"] for v in (views(page) or [None])), 30, "four views again")
    wait_for(lambda: driver.execute_script("return window.dacviz.viewsRestoredAt"), 15, "the link's views set")
    time.sleep(0.3)
    back, eye_back = driver.execute_script(ranges), driver.execute_script(eye)
    assert back[0] == pytest.approx(zoomed[0], rel=1e-4) and back[1] == pytest.approx(zoomed[1], rel=1e-4)
    assert [eye_back[a] for a in "xyz"] == pytest.approx([turned[a] for a in "xyz"], rel=1e-4)
    # a forged view= is dropped: the page opens on the whole cloud
    driver.get(page.server_url + "/?view=pca2:0,1e300,0,1&view=pca2:" + ",".join(["1"] * 500))
    wait_for(lambda: all(v and v["drawn"] for v in (views(page) or [None])), 30, "four views, forged link")
    assert "view=" not in driver.current_url


def test_presentation_fits_1000x700_and_a_maximised_view_keeps_its_legend(page, demo_cache):
    driver = page.driver
    set_viewport(driver, 1000, 700)
    driver.get(page.server_url + "/?present=1")
    wait_for(lambda: all(v and v["drawn"] for v in (views(page) or [None])), 30, "four views")
    time.sleep(1.0)
    box = ("return ['pca2','pca3','tsne2','tsne3'].map(v => { const r = document.getElementById('view-' + v)"
           ".getBoundingClientRect(); return [r.top, r.bottom, r.height]; }).concat([[innerHeight, scrollY, 0]]);")
    wait_for(lambda: all(b[1] <= 700 for b in driver.execute_script(box)[:4]), 10, "both rows inside 700 px")
    rows = driver.execute_script(box)
    assert rows[-1][:2] == [700, 0] and all(r[2] >= 150 for r in rows[:4]), rows
    shot(page, "page-presentation-1000x700")
    # the representation's name is whole at 1000x700 (normal mode)
    driver.get(page.server_url)
    wait_for(lambda: all(v and v["drawn"] for v in (views(page) or [None])), 30, "four views")
    cut = driver.execute_script(
        "const el = document.querySelector('#rep'); const v = Array.from(el.querySelectorAll('*'))"
        ".filter(e => e.children.length === 0 && e.textContent.includes('1024-D'))[0];"
        "return v ? [v.scrollWidth, v.clientWidth, v.textContent] : null;")
    assert cut and cut[0] <= cut[1] + 1, cut
    # a maximised view keeps the legend in the window
    driver.execute_script("document.querySelector('#box-tsne2 .maximise').click()")
    wait_for(lambda: driver.execute_script(
        "return document.getElementById('view-tsne2').getBoundingClientRect().height") > 0.7 * 700, 10, "maximised")
    time.sleep(0.5)
    seen = driver.execute_script(INSIDE_JS, ["#legend", "#view-tsne2"])
    assert seen == [[True], [True]], seen
    shot(page, "page-maximised-1000x700")
    assert json.loads(driver.execute_script("return JSON.stringify(window.dacviz.maximised())")) == "tsne2"


def test_a_click_sounds_and_lights_up_before_the_side_panel(page, demo_cache):
    """A click in a 2D view is the page's own: the point the pointer rested on was fetched while
    it rested (its /clip-at answer and its audio), so the release plays the clip and draws its
    neighbours without asking the server again, and Dash's selection follows."""
    driver = page.driver
    cache, curve, index, x, y, clip = drawn_at_1920(page, demo_cache)
    requests = "return performance.getEntriesByType('resource').map(e => e.name).filter(n => n.includes(arguments[0]))"
    pointer_to(driver, x, y)
    wait_for(lambda: driver.execute_script(requests, f"/audio/{clip}?"), 10, "the rested-on clip fetched")
    asked = driver.execute_script(requests, "/clip-at/tsne2/")
    assert len(asked) == 1 and f"/clip-at/tsne2/{curve}/{index}?" in asked[0], asked

    click_at(driver, x, y)
    index_z, _ = cache.neighbours("z")
    expected = [int(i) for i in index_z[clip, :10]]
    wait_for(lambda: all(v["selected"] == [clip] and v["neighbours"] == expected for v in views(page)), 10,
             "the highlight in all four views")
    wait_for(lambda: driver.execute_script(
        "const p = document.getElementById('player'); return p.played.length > 0 || !p.paused;"), 10, "the sound")
    assert driver.execute_script(requests, "/clip-at/tsne2/") == asked  # answered from what the rest fetched
    # and Dash's selection for the same click fills the side panel, once
    wait_for(lambda: page.find_element("#selected-clip").text == f"clip {clip}", 15, "the side panel")
    assert f"clip={clip}" in driver.current_url
    listed = [int(li.get_attribute("data-clip")) for li in driver.find_elements(By.CSS_SELECTOR, "#neighbour-items li")]
    assert listed == expected

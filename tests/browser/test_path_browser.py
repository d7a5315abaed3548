"""A clip as a path, in headless Chromium on the demo cache: a real click draws the clip's path
in all four views, a marker runs along it while the audio plays, a press on a frame of the path
plays from that frame (and selects nothing), a shift-click draws a second clip's path with the
two paths' distance, and a representation without frames says so. Screenshots at 1000x700 and
1920x1080 (artifacts/screenshots/path-*.png)."""
from __future__ import annotations

import time

import numpy as np
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from dacviz_app.cache import open_cache
from dacviz_app.explore.groups import colour_groups
from test_browser import click_at, isolated_point, shot, visible_points, wait_for

DRAWN_JS = "return ['pca2', 'pca3', 'tsne2', 'tsne3'].map(v => (window.dacviz.drawnPaths || {})[v] || null);"
PATH_PIXELS_JS = """
const [view, name] = arguments;
const gd = window.dacviz.graphDiv(view), geo = window.dacviz.geometry(gd, window.dacviz.dimOf(view));
const s = window.dacviz.pathState, path = name === 'A' ? s.first : s.second, r = gd.getBoundingClientRect();
return path.answer.views[view].xyz.map(p => { const q = geo.toPixel(p); return [r.left + q[0], r.top + q[1]]; });
"""
PLAYER_JS = "const p = document.getElementById('player'); return [p.currentTime, p.paused, p.getAttribute('src')];"


def test_a_clicked_clip_is_a_path_heard_as_it_moves_and_two_paths_compare(page, demo_cache):
    driver = page.driver
    cache = open_cache(demo_cache[0])
    groups = colour_groups(cache, "label")
    # 1. a real click: the clip's path in all four views, one point per frame
    curve, index, x, y = isolated_point(visible_points(driver, "tsne2"))
    clip = int(groups.members[curve][index])
    n_frames = len(cache.frame_codes(clip))
    click_at(driver, x, y)
    drawn = wait_for(lambda: (lambda d: d if all(v and [p["name"] for p in v["paths"]] == ["A"] for v in d)
                              else None)(driver.execute_script(DRAWN_JS)), 20, "the path in four views")
    assert all(v["paths"][0]["clip"] == clip and v["paths"][0]["points"] == n_frames for v in drawn)
    info = page.find_element("#path-info").text
    assert f"clip {clip}" in info and f"{n_frames} frames" in info and "UNTRAINED" in info
    # 2. the marker runs along the path while the audio plays, in every view (played at a
    # quarter of its speed: the demo's clips last under a second)
    driver.execute_script("const p = document.getElementById('player'); p.pause(); p.currentTime = 0;"
                          "p.playbackRate = 0.25; p.play();")
    first = wait_for(lambda: (lambda d: d if all(v["marker"] for v in d) and d[0]["time"] > 0.05 else None)(
        driver.execute_script(DRAWN_JS)), 15, "the marker while playing")
    later = wait_for(lambda: (lambda d: d if d[0]["time"] > first[0]["time"] + 0.1 else None)(
        driver.execute_script(DRAWN_JS)), 15, "the marker later")
    assert all(a["marker"] != b["marker"] for a, b in zip(first, later))
    shot(page, "path-1-playing")
    # 3. frames vary more than clip averages: PCA leaves most of the path outside the map, said,
    # until "fit the views to the paths" zooms out to hold it
    assert "outside PCA 2D" in page.find_element("#path-outside").text
    page.find_element("#path-fit").click()
    try:
        wait_for(lambda: all(v["outside"] == 0 for v in driver.execute_script(DRAWN_JS)), 10, "the views fitted")
    except AssertionError:
        raise AssertionError([(v["outside"], v["total"]) for v in driver.execute_script(DRAWN_JS)])
    assert page.find_element("#path-outside").text == ""
    # 4. a press on a frame of the path plays from that frame, and selects nothing
    # paused, and slowed down so that a press near the clip's end is still playing when looked at
    driver.execute_script("const p = document.getElementById('player'); p.pause(); p.playbackRate = 0.1;")
    frames = driver.execute_script("return window.dacviz.pathState.first.answer.frames")
    frame_s = cache.model["hop_length"] / cache.model["sample_rate"]
    played = None
    for _attempt in range(2):  # the page may still be settling after the fit: the pixels are read again
        driver.execute_script("document.getElementById('view-pca2').scrollIntoView({block: 'center', behavior: 'instant'})")
        time.sleep(0.5)
        pixels = np.array(driver.execute_script(PATH_PIXELS_JS, "pca2", "A"))
        apart = np.sqrt(((pixels[:, None] - pixels[None]) ** 2).sum(-1)) + np.eye(len(pixels)) * 1e9
        middle = np.abs(np.arange(len(pixels)) - len(pixels) / 2) <= len(pixels) / 4  # away from the ends
        target = int(np.argmax(np.where(middle, apart.min(axis=1), -1)))  # silent frames share one place
        assert apart[target].min() > 3
        click_at(driver, *pixels[target])
        try:
            played = wait_for(lambda: (lambda p: p if not p[1] else None)(driver.execute_script(PLAYER_JS)),
                              5, "the press to play")
            break
        except AssertionError:
            diagnosis = (pixels[target].tolist(), driver.execute_script(PLAYER_JS),
                         driver.execute_script("return window.dacviz.drawnPaths.pca2"))
    assert played, diagnosis
    at, paused, src = played
    assert f"/audio/{clip}?" in src
    assert frames[target] * frame_s - 0.01 <= at <= frames[target] * frame_s + 0.6, (at, frames[target] * frame_s)
    time.sleep(0.5)
    assert page.find_element("#selected-clip").text == f"clip {clip}"
    # 5. shift-click another clip of the same word: both paths, and their distance with its chance
    word = cache.clips["label"][clip]
    others = [int(i) for i in groups.members[curve] if int(i) != clip]
    points = visible_points(driver, "tsne2")
    c2, i2, x2, y2 = isolated_point(points, keep=lambda p: p[0] == curve and int(groups.members[p[0]][p[1]]) != clip)
    second = int(groups.members[c2][i2])
    assert second in others
    ActionChains(driver).key_down(Keys.SHIFT).perform()
    click_at(driver, x2, y2)
    ActionChains(driver).key_up(Keys.SHIFT).perform()
    drawn = wait_for(lambda: (lambda d: d if all(v and [p["name"] for p in v["paths"]] == ["A", "B"] for v in d)
                              else None)(driver.execute_script(DRAWN_JS)), 20, "two paths in four views")
    assert all(v["paths"][1]["clip"] == second for v in drawn)
    info = wait_for(lambda: (lambda t: t if "A↔B distance" in t else None)(page.find_element("#path-info").text),
                    20, "the distance")
    assert f"clip {second} · {word}" in info and "DTW" in info and "closer than B" in info
    assert page.find_element("#selected-clip").text == f"clip {clip}"  # the shift-click selected nothing
    for width, height in ((1000, 700), (1920, 1080)):
        driver.set_window_size(width, height)
        time.sleep(1.5)
        driver.execute_script("document.getElementById('view-tsne2').scrollIntoView({block: 'center', behavior: 'instant'})")
        time.sleep(0.5)
        shot(page, f"path-2-compared-{width}x{height}")
    # 6. a representation pooled over the clip has no path, and says so
    driver.execute_script("window.dash_clientside.set_props('rep', {value: 'codes_concat'})")
    wait_for(lambda: "no path" in page.find_element("#path-info").text, 20, "no path for codes_concat")
    assert all(not v["paths"] for v in driver.execute_script(DRAWN_JS))

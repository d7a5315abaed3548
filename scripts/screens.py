#!/usr/bin/env python
"""The page's screenshots of docs/screens: a cache served by the real server (gunicorn and the
encoder service, ``python -m dacviz_app``), headless Chromium at each screen size (the page
itself, the window's frame added around it), normal and presentation, after a click on a clip
of the t-SNE 2D view (its neighbours lit and listed).

  python scripts/screens.py                          # the demo cache (cache/demo) -> docs/screens
  python scripts/screens.py --cache /tmp/c --sizes 1000x700 --out /tmp/shots
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from dacviz_testkit import chromium_options, free_port, set_viewport

ROOT = Path(__file__).resolve().parents[1]
SIZES = ("1000x700", "1600x1000", "1920x1080")
READY_JS = ("return ['pca2','pca3','tsne2','tsne3'].every(v => { const gd = document.querySelector("
            "'#view-' + v + ' .js-plotly-plot'); return gd && gd.data && gd.data.length > 1 && gd._fullLayout; })")
POINT_JS = """
const gd = document.querySelector('#view-tsne2 .js-plotly-plot');
gd.scrollIntoView({block: 'center', behavior: 'instant'});  // a short window: the second row is below
const r = gd.getBoundingClientRect(), xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
const t = gd._fullData[0], i = Math.floor(t.x.length / 2);
return [r.left + xa._offset + xa.c2p(t.x[i]), r.top + ya._offset + ya.c2p(t.y[i])];
"""


def wait(predicate, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def serve(cache: Path, port: int) -> subprocess.Popen:
    server = subprocess.Popen([sys.executable, "-m", "dacviz_app", "--cache", str(cache), "--port", str(port),
                               "--workers", "1"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def up():
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).status == 200
        except OSError:
            return False
    wait(up, 120, "the server")
    return server


def shoot(driver, base: str, size: str, presentation: bool, out: Path) -> Path:
    from selenium.webdriver.common.action_chains import ActionChains

    width, height = (int(v) for v in size.split("x"))
    set_viewport(driver, width, height)
    driver.get(base + ("/?present=1" if presentation else "/"))
    wait(lambda: driver.execute_script(READY_JS), 60, "four views")
    time.sleep(1.0)
    x, y = driver.execute_script(POINT_JS)
    actions = ActionChains(driver)
    actions.w3c_actions.pointer_action.move_to_location(int(round(x)), int(round(y)))
    actions.w3c_actions.pointer_action.click()
    actions.perform()
    wait(lambda: driver.execute_script("return document.querySelectorAll('#neighbour-items li').length > 0"),
         30, "the neighbours")
    time.sleep(1.5)  # the sound and the path drawn
    away = ActionChains(driver)  # no hover label left over a view
    away.w3c_actions.pointer_action.move_to_location(2, 2)
    away.perform()
    driver.execute_script("window.scrollTo(0, 0)")
    time.sleep(0.3)
    path = out / f"{size}{'-presentation' if presentation else ''}.png"
    driver.save_screenshot(str(path))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default="cache/demo", help="the cache served (default %(default)s)")
    parser.add_argument("--out", default="docs/screens", help="where the PNGs go (default %(default)s)")
    parser.add_argument("--sizes", nargs="+", default=list(SIZES),
                        help="WIDTHxHEIGHT of the page (default: %(default)s)")
    args = parser.parse_args()
    for size in args.sizes:
        parts = size.split("x")
        if len(parts) != 2 or not all(p.isdigit() and 300 <= int(p) <= 4000 for p in parts):
            parser.error(f"--sizes: {size!r} is not WIDTHxHEIGHT (300..4000 each)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from selenium import webdriver

    port = free_port()
    server = serve(Path(args.cache).resolve(), port)
    profile = Path(tempfile.mkdtemp(prefix="chromium-"))
    driver = webdriver.Chrome(options=chromium_options(user_data_dir=profile))
    try:
        for size in args.sizes:
            for presentation in (False, True):
                print(shoot(driver, f"http://127.0.0.1:{port}", size, presentation, out))
    finally:
        driver.quit()
        server.terminate()
        server.wait(30)
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Helpers shared by the tests (tests/) and the benchmarks (bench/), one copy of each.

A package of its own under tests/testkit, installed editable by ``bash scripts/setup.sh --test``:
pytest puts tests/ on sys.path and ``python bench/x.py`` puts bench/, but neither sees the other,
and test code does not belong in the app's package. The app never imports it (a rule of
tests/unit/test_import_rules.py); selenium (a test-only dependency, from dash[testing]) is imported
only when ``chromium_options`` is called.
"""
from __future__ import annotations

import json
import socket
import tempfile
from pathlib import Path

# Headless Chromium as root (the container), with no traffic to the outside.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium_options(width: int = 1600, height: int = 1100, user_data_dir: str | Path | None = None):
    """selenium ChromeOptions with CHROMIUM_FLAGS, the window size and a fresh profile directory
    (a new temporary one unless ``user_data_dir`` is given)."""
    from selenium.webdriver.chrome.options import Options

    options = Options()
    profile = user_data_dir or tempfile.mkdtemp(prefix="chromium-")
    for flag in (*CHROMIUM_FLAGS, f"--window-size={width},{height}", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return options


def set_viewport(driver, width: int, height: int) -> None:
    """Size the browser window so that the page itself (window.innerWidth x innerHeight) is
    ``width`` x ``height`` CSS px: what a screen of that size shows, without the window's frame."""
    driver.set_window_size(width, height)
    inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    driver.set_window_size(width + width - inner[0], height + height - inner[1])


def multipart(fields: dict, audio: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body as a browser's FormData sends it, with the text ``fields`` and
    the file field ``audio`` (a WAV), and its Content-Type: what ``POST /query`` takes."""
    boundary = "dacvizboundary7MA4YWxkTrZu0gW"
    body = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                    for k, v in fields.items())
    body += (f'--{boundary}\r\nContent-Disposition: form-data; name="audio"; filename="clip.wav"\r\n'
             f"Content-Type: audio/wav\r\n\r\n").encode() + audio + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def cache_files(out: Path) -> dict[str, bytes]:
    """Every file of a cache by relative path, the manifest without its run-specific fields
    (created, command): two runs that made the same cache compare equal."""
    files = {}
    for path in sorted(Path(out).rglob("*")):
        if path.is_file():
            rel = str(path.relative_to(out))
            data = path.read_bytes()
            if rel == "manifest.json":
                manifest = json.loads(data)
                for field in ("created", "command"):
                    manifest.pop(field)
                data = json.dumps(manifest, sort_keys=True).encode()
            files[rel] = data
    return files

#!/usr/bin/env python
"""What one unauthenticated client can do to a shared server: issue 24's attacks against
gunicorn started as the Procfile says, each while an honest user clicks.

For each attack: worker RSS (psutil, the web workers only, not the encoder) before and after,
and the latency of honest clicks (``/clip-at``, the request a click makes first) sent back to
back from another thread during the attack: median and worst. The slow-upload attack also
counts the honest queries by voice refused while it runs (it should be 0).

  forged-keys   30 highlight callbacks, each with a different 15 MB groups-key starting with '{'
  huge-link     4 concurrent URL callbacks whose url.search is "a=1&" x 3.9 million (15.6 MB)
  slow-uploads  5 POST /query that send 100 body bytes, then one byte every 3 s, for --seconds;
                an honest query every 2 s meanwhile

  python bench/bench_attacks.py --cache cache/demo                    # all three, 1 worker
  python bench/bench_attacks.py --cache cache/demo --attacks huge-link --workers 2
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from dacviz_app.cache import open_cache
from dacviz_testkit import free_port, multipart
from dacviz_testkit.bench import BenchRecord
from load_test import callback_body

ROOT = Path(__file__).resolve().parents[1]
CALLBACK = "/_dash-update-component"
MB = 2**20


def fetch(url: str, data: bytes | None = None, headers: dict | None = None, timeout: float = 120):
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def start_server(cache: str, workers: int) -> tuple[subprocess.Popen, str]:
    web = (ROOT / "Procfile").read_text().split("web:", 1)[1].strip()
    port = free_port()
    env = {**os.environ, "PORT": str(port), "DACVIZ_CACHE": cache, "WEB_CONCURRENCY": str(workers),
           "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}  # this venv's gunicorn
    proc = subprocess.Popen(["bash", "-c", f"exec {web}"], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            fetch(base + "/", timeout=5)
            state = json.loads(fetch(base + "/query", timeout=5)[1])
            if state["state"] != "starting":
                return proc, base
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit("the server did not start")


def worker_rss_mb(proc: subprocess.Popen) -> list[float]:
    """RSS of each web worker (the gunicorn master's children but the encoder service), MB."""
    children = psutil.Process(proc.pid).children()
    return sorted(round(c.memory_info().rss / MB) for c in children
                  if "dacviz_app.query_service" not in " ".join(c.cmdline()))


class Clicker(threading.Thread):
    """An honest user clicking (``/clip-at``) back to back; latencies in ms."""

    def __init__(self, base: str):
        super().__init__(daemon=True)
        self.base, self.stop, self.ms = base, threading.Event(), []
        self.clicking = threading.Event()  # set once its first click is under way

    def run(self):
        self.clicking.set()
        while not self.stop.is_set():
            started = time.perf_counter()
            status, _ = fetch(self.base + "/clip-at/pca2/0/0?colour=label")
            self.ms.append(1000 * (time.perf_counter() - started) if status == 200 else float("inf"))
            time.sleep(0.05)


def forged_keys(base: str, deps: list, n: int = 30) -> None:
    for i in range(n):
        key = '{"colour": "label", "pad": "' + chr(97 + i % 26) * (15 * MB) + str(i) + '"}'
        body = callback_body(deps, "highlight.data", {("groups-key", "data"): key,
                                                      ("selection", "data"): {"clip": 3}}, "groups-key.data")
        fetch(base + CALLBACK, json.dumps(body).encode(), {"Content-Type": "application/json"})


def huge_link(base: str, deps: list, n: int = 4) -> None:
    search = "?" + "a=1&" * 3_900_000
    body = json.dumps(callback_body(deps, "rep.value", {("url", "search"): search}, "url.search")).encode()
    threads = [threading.Thread(target=fetch, args=(base + CALLBACK, body, {"Content-Type": "application/json"}))
               for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def slow_uploads(base: str, cache_dir: str, seconds: float, n: int = 5) -> dict:
    cache = open_cache(cache_dir)
    body, kind = multipart({"rep": "z", "k": "3"}, cache.audio_path(7).read_bytes())
    host, port = base.split("//")[1].split(":")
    socks = []
    for _ in range(n):
        s = socket.create_connection((host, int(port)), timeout=120)
        s.sendall((f"POST /query HTTP/1.1\r\nHost: x\r\nContent-Type: {kind}\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body[:100])
        socks.append(s)
    honest, refused, statuses, position, started = 0, 0, [], 100, time.time()
    next_byte = started
    while time.time() - started < seconds:
        if time.time() >= next_byte:
            for s in socks:
                try:
                    s.sendall(body[position:position + 1])
                except OSError:
                    pass  # cut by the server at its deadline
            position, next_byte = position + 1, next_byte + 3.0
        status, answer = fetch(base + "/query", body, {"Content-Type": kind})
        state = json.loads(fetch(base + "/query")[1])
        honest += 1
        refused += status != 200
        statuses.append((status, state.get("queued")))
        time.sleep(2.0)
    for s in socks:
        s.close()
    return {"honest queries": honest, "refused": refused,
            "statuses (answer, queued)": sorted(set(statuses), key=str)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default="cache/demo", help="the cache served (default %(default)s)")
    parser.add_argument("--workers", type=int, default=1, help="web workers (default %(default)s)")
    parser.add_argument("--attacks", nargs="+", default=["forged-keys", "huge-link", "slow-uploads"],
                        choices=["forged-keys", "huge-link", "slow-uploads"],
                        help="the attacks, in order (default: all three)")
    parser.add_argument("--seconds", type=float, default=40.0,
                        help="how long the slow uploads last (default %(default)s)")
    args = parser.parse_args()
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    record = BenchRecord("bench_attacks")
    proc, base = start_server(args.cache, args.workers)
    try:
        deps = json.loads(fetch(base + "/_dash-dependencies")[1])
        print(f"gunicorn (Procfile), {args.workers} web worker(s), {open_cache(args.cache).n_clips} clips; "
              f"load average {os.getloadavg()[0]:.1f}\n")
        print("| attack | worker RSS MB before → after | honest clicks | click ms median | worst | other |")
        print("|---|---|---|---|---|---|")
        for attack in args.attacks:
            before = worker_rss_mb(proc)
            clicker = Clicker(base)
            clicker.start()
            clicker.clicking.wait(10)  # a short attack (huge-link) could end before a thread starts
            started = time.perf_counter()
            other, uploads = "", None
            if attack == "forged-keys":
                forged_keys(base, deps)
            elif attack == "huge-link":
                huge_link(base, deps)
            else:
                uploads = slow_uploads(base, args.cache, args.seconds)
                other = json.dumps(uploads)
            took = time.perf_counter() - started
            clicker.stop.set()
            clicker.join()
            time.sleep(1.0)
            after = worker_rss_mb(proc)
            ms = clicker.ms or [float("nan")]
            print(f"| {attack} ({took:.1f} s) | {before} → {after} | {len(clicker.ms)} | "
                  f"{statistics.median(ms):.0f} | {max(ms):.0f} | {other} |", flush=True)
            # the row's cells (no baseline: the old code's figures come from a run on its commit)
            record.add(f"{attack}: duration", took, "s")
            record.add(f"{attack}: worker RSS MB before", before, "MB")
            record.add(f"{attack}: worker RSS MB after", after, "MB")
            if clicker.ms:
                record.add(f"{attack}: honest clicks", len(clicker.ms), "clicks", better="higher")
            if any(map(math.isfinite, clicker.ms)):  # a refused click is inf (as printed): not a time
                record.add(f"{attack}: click ms median (max: worst)", ms, "ms")
            if uploads:
                record.add(f"{attack}: honest queries answered", uploads["honest queries"] - uploads["refused"],
                           "queries", better="higher")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    record.save()


if __name__ == "__main__":
    main()

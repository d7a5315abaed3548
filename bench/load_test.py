#!/usr/bin/env python
"""Load test: gunicorn started as the Procfile says, many concurrent clients on loopback.

Each client loops over a mix of requests, bounded by --requests per run and --seconds:
page loads (/, /_dash-layout), click callbacks (the answer must be the clicked clip), neighbour
panels (the listed neighbours must be the cache's), representation switches (four full
figures) and audio range requests (bytes must match the file). Prints requests/s, p50/p99
latency, 5xx, other errors and wrong answers, and every worker's RSS at start and end, for
each worker count.

  python bench/load_test.py --cache cache/demo --workers 1 2 4 --clients 8 --requests 2000
  # the same load while 50 slow clients dribble half-sent requests (a slowloris), against the
  # Procfile's worker class and against gunicorn's default sync workers, in one run:
  python bench/load_test.py --workers 2 --slow-clients 50 --worker-class gevent sync
  # clicks without and with a client posting queries by voice back to back (p99 of clicks):
  python bench/load_test.py --workers 2 --queries 0 1 --seconds 30 --requests 100000
"""
from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from dacviz_app.cache import open_cache  # noqa: E402
from dacviz_app.explore.groups import ViewGroups  # noqa: E402
from dacviz_app.viewer.layout import representation_choices  # noqa: E402
from dacviz_testkit import free_port, multipart  # noqa: E402
from dacviz_testkit.bench import BenchRecord  # noqa: E402
from dacviz_app.embedding.spaces import VIEW_NAMES as VIEWS  # noqa: E402

CALLBACK = "/_dash-update-component"


def callback_body(deps: list[dict], first_output: str, values: dict, changed: str) -> dict:
    """A callback request as the page sends it, built from /_dash-dependencies (so it follows
    the callbacks' signatures): the callback whose outputs start with ``first_output``, each
    input and state valued from ``values`` ({(id, property): value}, None when absent;
    pattern-matching inputs get no components)."""
    spec = next(d for d in deps if d["output"].strip(".").startswith(first_output))
    names = [o for o in spec["output"].strip(".").split("...")]
    outputs = [{"id": o.split(".")[0], "property": o.split(".", 1)[1]} for o in names]

    def item(x):
        if x["id"].startswith("{"):
            return []
        return {"id": x["id"], "property": x["property"], "value": values.get((x["id"], x["property"]))}

    return {"output": spec["output"], "outputs": outputs if len(outputs) > 1 else outputs[0],
            "inputs": [item(x) for x in spec["inputs"]], "state": [item(x) for x in spec["state"]],
            "changedPropIds": [changed]}


def click_body(deps: list[dict], view: str, curve: int, point: int) -> dict:
    return callback_body(deps, "selection.data", {
        (f"view-{view}", "clickData"): {"points": [{"curveNumber": curve, "pointNumber": point}]},
        ("groups-key", "data"): "label", ("rep", "value"): "z", ("k", "value"): 10},
        f"view-{view}.clickData")


def details_body(deps: list[dict], clip: int, rep: str, k: int) -> dict:
    return callback_body(deps, "clip-info.children", {
        ("selection", "data"): {"clip": clip, "cursor": -1, "play": clip, "nonce": 1},
        ("rep", "value"): rep, ("k", "value"): k}, "selection.data")


def switch_body(deps: list[dict], rep: str) -> dict:
    return callback_body(deps, "view-pca2.figure", {
        ("rep", "value"): rep, ("colour", "value"): "label", ("presentation", "value"): [],
        ("restored-hide", "data"): [], ("view-state", "data"): {}}, "rep.value")


def figure_traces(answer: dict) -> list[int]:
    """The number of traces of each view's figure in a switch answer (VIEWS order)."""
    return [len(answer["response"][f"view-{v}"]["figure"]["data"]) for v in VIEWS]


def neighbour_ids(answer: dict) -> list[int]:
    """The data-clip ids of the neighbour list in a details callback answer."""
    panel = answer["response"]["neighbour-list"]["children"]
    items = next(p for p in panel if p["props"].get("id") == "neighbour-items")["props"]["children"]
    return [item["props"]["data-clip"] for item in items]


class Client(threading.Thread):
    def __init__(self, port, cache, groups, budget, deadline, seed, results, deps):
        super().__init__(daemon=True)
        self.port, self.cache, self.groups, self.deps = port, cache, groups, deps
        self.choices = representation_choices(cache)  # the menu's (a depth is the slider's)
        self.budget, self.deadline, self.rng, self.results = budget, deadline, random.Random(seed), results

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        start = time.perf_counter()
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            data = response.read()
            return response.status, data, time.perf_counter() - start
        finally:
            conn.close()

    def post(self, body):
        return self.request("POST", CALLBACK, json.dumps(body).encode(), {"Content-Type": "application/json"})

    def one(self):
        kind = self.rng.choices(["page", "click", "details", "switch", "audio"], [2, 4, 4, 1, 3])[0]
        cache, rng = self.cache, self.rng
        wrong = False
        if kind == "page":
            status, _, seconds = self.request("GET", rng.choice(["/", "/_dash-layout"]))
        elif kind == "click":
            view = rng.choice(VIEWS)
            drawn = self.groups[view]  # a 3D view of a large cache draws a sample
            curve = rng.randrange(len(drawn.names))
            point = rng.randrange(len(drawn.members[curve]))
            status, data, seconds = self.post(click_body(self.deps, view, curve, point))
            if status == 200:
                got = json.loads(data)["response"]["selection"]["data"]["clip"]
                wrong = got != drawn.clip_at(curve, point)
        elif kind == "details":
            clip, rep, k = rng.randrange(cache.n_clips), rng.choice(self.choices), rng.randint(1, cache.knn_k)
            status, data, seconds = self.post(details_body(self.deps, clip, rep, k))
            if status == 200:
                wrong = neighbour_ids(json.loads(data)) != [int(i) for i in cache.neighbours(rep)[0][clip, :k]]
        elif kind == "switch":
            status, data, seconds = self.post(switch_body(self.deps, rng.choice(self.choices)))
            if status == 200:
                wrong = figure_traces(json.loads(data)) != [len(self.groups[v].names) for v in VIEWS]
        else:
            clip = rng.randrange(cache.n_clips)
            status, data, seconds = self.request("GET", f"/audio/{clip}", headers={"Range": "bytes=0-1023"})
            if status == 206:
                wrong = data != cache.audio_path(clip).read_bytes()[:1024]
        self.results.append((kind, status, seconds, wrong))

    def run(self):
        while time.time() < self.deadline and self.budget > 0:
            self.budget -= 1
            try:
                self.one()
            except OSError as err:
                self.results.append(("error", 0, 0.0, False))
                print(f"  client error: {err}", file=sys.stderr)


class QueryClient(threading.Thread):
    """Queries by voice back to back (POST /query with clips of the cache, as a presenter
    would, one at a time): their answers must name the posted clip first."""

    def __init__(self, port, cache, deadline, stop, results):
        super().__init__(daemon=True)
        self.port, self.cache, self.deadline, self.stop, self.results = port, cache, deadline, stop, results

    def run(self):
        rng = random.Random(7)
        while time.time() < self.deadline and not self.stop.is_set():
            clip = rng.randrange(self.cache.n_clips)
            body, kind = multipart({"rep": "z"}, self.cache.audio_path(clip).read_bytes())
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            start = time.perf_counter()
            try:
                conn.request("POST", "/query", body=body,
                             headers={"Content-Type": kind})
                response = conn.getresponse()
                data = response.read()
                seconds = time.perf_counter() - start
                wrong = response.status == 200 and json.loads(data)["neighbours"][0]["id"] != clip
                self.results.append(("query", response.status, seconds, wrong))
            except OSError:
                self.results.append(("query", 0, 0.0, False))
            finally:
                conn.close()


def worker_rss(master_pid: int) -> list[tuple[float, float]]:
    """Each worker's RSS in MB as (total, private): private = RSS less the file-backed pages it
    shares (the memory-mapped cache arrays, served from the page cache to every worker)."""
    import psutil

    out = []
    for child in psutil.Process(master_pid).children():
        if "dacviz_app.query_service" in " ".join(child.cmdline()):
            continue  # the query encoder: not a web worker (its RSS is said apart)
        info = child.memory_info()
        out.append((info.rss / 2**20, (info.rss - info.shared) / 2**20))
    return out


def rss_text(rss: list[tuple[float, float]]) -> list[str]:
    """'total/private' of each worker, as the table prints them."""
    return [f"{total:.0f}/{private:.0f}" for total, private in rss]


class SlowClients(threading.Thread):
    """``n`` connections that send half a request and then one more header line every
    ``interval`` s, never finishing it (a slowloris), until ``stop`` is set."""

    def __init__(self, port: int, n: int, interval: float = 8.0):
        super().__init__(daemon=True)
        self.port, self.n, self.interval = port, n, interval
        self.stop = threading.Event()
        self.socks: list[socket.socket] = []

    def open(self) -> None:
        for _ in range(self.n):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
            self.socks.append(s)

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            for s in self.socks:
                try:
                    s.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    pass

    def close(self) -> None:
        self.stop.set()
        for s in self.socks:
            s.close()


def procfile_command(worker_class: str | None) -> str:
    """The Procfile's web command, with another gunicorn worker class if one is given."""
    web = (ROOT / "Procfile").read_text().split("web:", 1)[1].strip()
    if worker_class is None:
        return web
    parts = web.split()
    if "--worker-class" in parts:
        at = parts.index("--worker-class")
        del parts[at:at + 2]
    if "--worker-connections" in parts and worker_class != "gevent":
        at = parts.index("--worker-connections")
        del parts[at:at + 2]
    return " ".join([parts[0], "--worker-class", worker_class, *parts[1:]])


def run_once(cache_dir: str, workers: int, clients: int, requests: int, seconds: float,
             slow_clients: int = 0, worker_class: str | None = None, queries: int = 0) -> dict:
    cache = open_cache(cache_dir)
    view_groups = ViewGroups(cache)
    groups = {view: view_groups.drawn("label", view) for view in VIEWS}
    port = free_port()
    web = procfile_command(worker_class)
    env = {**os.environ, "PORT": str(port), "DACVIZ_CACHE": str(cache_dir), "WEB_CONCURRENCY": str(workers),
           "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}"}
    server = subprocess.Popen(["bash", "-c", f"exec {web}"], cwd=ROOT, env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", "/_dash-dependencies")
        deps = json.loads(conn.getresponse().read())
        conn.close()
        for _ in range(600 if queries else 0):  # the encoder service loads its models
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("GET", "/query")
            state = json.loads(conn.getresponse().read())["state"]
            conn.close()
            if state != "starting":
                break
            time.sleep(0.2)
        warm = Client(port, cache, groups, 20, time.time() + 60, 0, [], deps)
        warm.run()  # every worker imports and maps the cache before the clock starts
        slow = SlowClients(port, slow_clients)
        slow.open()
        slow.start()
        rss_start = worker_rss(server.pid)
        results: list = []
        per_client = max(1, requests // clients)
        deadline = time.time() + seconds
        threads = [Client(port, cache, groups, per_client, deadline, seed + 1, results, deps)
                   for seed in range(clients)]
        query_results: list = []
        stop = threading.Event()
        askers = [QueryClient(port, cache, deadline, stop, query_results) for _ in range(queries)]
        started = time.perf_counter()
        for t in threads + askers:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        stop.set()
        for t in askers:
            t.join()
        rss_end = worker_rss(server.pid)
        slow.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    def pct(p, kinds=None, rows=results):
        latencies = sorted(r[2] for r in rows if r[1] and (kinds is None or r[0] in kinds))
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan")
    answered = [r[2] * 1000 for r in results if r[1]]
    return {"workers": workers, "requests": len(results), "rps": len(results) / elapsed,
            "latencies_ms": answered, "query_latencies_ms": [r[2] * 1000 for r in query_results if r[1]],
            "rss_start": rss_start, "rss_end": rss_end,
            "kind_ms": {k: [r[2] * 1000 for r in results if r[0] == k] for k in {r[0] for r in results if r[1]}},
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "click_p99_ms": pct(0.99, ("click", "details")),
            "queries": sum(1 for r in query_results if r[1] == 200),
            "query_p50_ms": pct(0.50, ("query",), query_results),
            "query_refused": sum(1 for r in query_results if r[1] != 200),
            "query_wrong": sum(1 for r in query_results if r[3]),
            "5xx": sum(1 for r in results if r[1] >= 500),
            "errors": sum(1 for r in results if r[1] == 0 or 400 <= r[1] < 500),
            "wrong": sum(1 for r in results if r[3]),
            "wrong_kinds": sorted({r[0] for r in results if r[3]}),
            "rss_start_mb": rss_text(rss_start), "rss_end_mb": rss_text(rss_end),
            "by_kind": {k: round(statistics.median([r[2] for r in results if r[0] == k]) * 1000, 1)
                        for k in {r[0] for r in results if r[1]}}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", default="cache/demo", help="the cache served (default %(default)s)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4],
                        help="web worker counts, one run each (default %(default)s)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default %(default)s)")
    parser.add_argument("--requests", type=int, default=2000,
                        help="requests per worker count (bound; default %(default)s)")
    parser.add_argument("--seconds", type=float, default=60,
                        help="time bound per worker count (default %(default)s)")
    parser.add_argument("--slow-clients", type=int, default=0,
                        help="half-sent requests kept open during the run, one header line every "
                             "8 s (a slowloris; default 0)")
    parser.add_argument("--queries", type=int, nargs="+", default=[0],
                        help="clients posting queries by voice back to back during the run, one "
                             "figure per value (default 0; '0 1' compares clicks without and with)")
    parser.add_argument("--worker-class", nargs="+", default=[None],
                        help="gunicorn worker classes to compare (default: the Procfile's)")
    args = parser.parse_args()
    if min(args.workers) < 1 or args.clients < 1 or args.requests < 1 or min(args.queries) < 0:
        parser.error("--workers, --clients and --requests must be at least 1, --queries at least 0")
    record = BenchRecord("load_test")
    print(f"cache {args.cache}: {open_cache(args.cache).n_clips} clips · {args.clients} concurrent clients · "
          f"{args.slow_clients} slow clients · mix page 2 : click 4 : neighbours 4 : switch 1 : audio 3 · "
          f"{os.cpu_count()} cores")
    print(f"{'class':>7} {'workers':>7} {'queries':>7} {'requests':>8} {'req/s':>7} {'p50 ms':>7} "
          f"{'p99 ms':>7} {'click p99':>9} {'5xx':>4} {'errors':>6} {'wrong':>5}  "
          f"{'answered queries (p50 ms, refused, wrong)':>42}  worker RSS MB total/private, start -> end   "
          f"median ms by kind")
    for worker_class in args.worker_class:
        for workers in args.workers:
            for queries in args.queries:
                r = run_once(args.cache, workers, args.clients, args.requests, args.seconds,
                             args.slow_clients, worker_class, queries)
                asked = (f"{r['queries']} ({r['query_p50_ms']:.0f} ms, {r['query_refused']}, "
                         f"{r['query_wrong']})" if queries else "-")
                print(f"{worker_class or 'Procfile':>7} {r['workers']:>7} {queries:>7} {r['requests']:>8} "
                      f"{r['rps']:>7.1f} {r['p50_ms']:>7.1f} {r['p99_ms']:>7.1f} {r['click_p99_ms']:>9.1f} "
                      f"{r['5xx']:>4} {r['errors']:>6} {r['wrong']:>5}{' ' + ','.join(r['wrong_kinds']) if r['wrong'] else ''}  {asked:>42}  "
                      f"{r['rss_start_mb']} -> {r['rss_end_mb']}   {r['by_kind']}", flush=True)
                # against the same run without queries, else against the first worker class
                if queries:
                    base = run_label(worker_class, workers, 0)
                elif worker_class != args.worker_class[0]:
                    base = run_label(args.worker_class[0], workers, queries)
                else:
                    base = None
                record_run(record, run_label(worker_class, workers, queries), base, r)
    record.save()


def run_label(worker_class: str | None, workers: int, queries: int) -> str:
    """How the figures of one row of the table are named: its first three columns."""
    return f"class {worker_class or 'Procfile'}, workers {workers}, queries {queries}"


def record_run(record: BenchRecord, label: str, base: str | None, r: dict) -> None:
    """One row's measured cells as figures; each against the same cell of row ``base`` where
    that row was measured. Latencies keep every request (median = the p50 column); the
    percentiles and the rate are one number per run."""
    def add(cell, samples, unit, better="lower"):
        if (isinstance(samples, list) and not samples) or (isinstance(samples, float) and math.isnan(samples)):
            return  # none measured (no queries asked; no request answered)
        recorded = {f["name"] for f in record.figures}
        record.add(f"{label}: {cell}", samples, unit, better=better,
                   baseline=f"{base}: {cell}" if base and f"{base}: {cell}" in recorded else None)

    add("req/s", r["rps"], "req/s", better="higher")
    add("p50 ms", r["latencies_ms"], "ms")
    add("p99 ms", r["p99_ms"], "ms")
    add("click p99", r["click_p99_ms"], "ms")
    add("answered queries p50 ms", r["query_latencies_ms"], "ms")
    for moment in ("start", "end"):
        add(f"worker RSS MB total, {moment}", [total for total, _ in r[f"rss_{moment}"]], "MB")
        add(f"worker RSS MB private, {moment}", [private for _, private in r[f"rss_{moment}"]], "MB")
    for kind in sorted(r["kind_ms"]):
        add(f"median ms by kind, {kind}", r["kind_ms"][kind], "ms")


if __name__ == "__main__":
    main()

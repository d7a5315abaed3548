"""The app under a real gunicorn, started exactly as the Procfile says, with two workers."""
from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request

import numpy as np
import pytest
import soundfile as sf

from conftest import ROOT
from dacviz_app.cache import open_cache
from dacviz_testkit import free_port, multipart


def fetch(url: str, data: bytes | None = None, headers: dict | None = None):
    request = urllib.request.Request(url, data=data, headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, dict(response.headers), response.read()


@pytest.fixture
def gunicorn(demo_cache, request):
    """The Procfile's server on the demo cache: 2 workers, or ``request.param`` (indirect)."""
    web = (ROOT / "Procfile").read_text().split("web:", 1)[1].strip()
    port = free_port()
    workers = str(getattr(request, "param", 2))
    env = {**os.environ, "PORT": str(port), "DACVIZ_CACHE": str(demo_cache[0]), "WEB_CONCURRENCY": workers,
           "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}"}
    proc = subprocess.Popen(["bash", "-c", f"exec {web}"], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            fetch(base + "/")
            break
        except OSError:
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.3)
    yield base, proc
    os.killpg(proc.pid, signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert "Traceback" not in out, out


def wait_for_the_encoder(base: str, timeout: float = 90) -> None:
    """Until GET /query no longer says the encoder is starting (its model loads)."""
    deadline = time.time() + timeout
    while json.loads(fetch(base + "/query")[2])["state"] == "starting" and time.time() < deadline:
        time.sleep(0.3)


def test_gunicorn_serves_page_layout_callback_and_audio(gunicorn, demo_cache):
    base, proc = gunicorn
    status, _, page = fetch(base + "/")
    assert status == 200 and b"dacviz" in page
    status, _, layout = fetch(base + "/_dash-layout")
    assert status == 200 and b"UNTRAINED CODEC WEIGHTS" in layout
    body = {"output": "metrics-table.children", "outputs": {"id": "metrics-table", "property": "children"},
            "inputs": [{"id": "maps-drawn", "property": "data", "value": {"signature": "x", "at": 1}},
                       {"id": "control", "property": "value", "value": "none"}],
            "state": [{"id": "rep", "property": "value", "value": "mfcc"},
                      {"id": "depth", "property": "value", "value": None},
                      {"id": "colour", "property": "value", "value": "speaker"},
                      {"id": "filter", "property": "value", "value": []}],
            "changedPropIds": ["maps-drawn.data"]}
    for _ in range(4):  # several requests: both workers answer the same
        status, _, answer = fetch(base + "/_dash-update-component", json.dumps(body).encode(),
                                  {"Content-Type": "application/json"})
        assert status == 200
        text = answer.decode()
        assert "Cluster" not in text and "mfcc" in text and "current" in text
        assert "Scored by speaker" in text
    cache = open_cache(demo_cache[0])
    status, headers, data = fetch(base + "/audio/5", headers={"Range": "bytes=0-43"})
    assert status == 206 and data == cache.audio_path(5).read_bytes()[:44] and data[:4] == b"RIFF"
    assert headers["Content-Type"] == "audio/wav"
    children = subprocess.run(["pgrep", "-a", "-P", str(proc.pid)], capture_output=True,
                              text=True).stdout.splitlines()
    encoders = [c for c in children if "dacviz_app.query_service.server" in c]
    assert len(children) - len(encoders) == 2 and len(encoders) == 1, children  # 2 workers, 1 encoder


@pytest.mark.parametrize("gunicorn", [1], indirect=True)
def test_a_query_under_the_procfile_and_clicks_answered_while_it_encodes(gunicorn, demo_cache):
    """The Procfile's gunicorn starts the encoder service: a clip of the cache posted to /query
    comes back first; while a long query encodes, clicks (/clip-at) are answered by the one
    web worker that waits for the query (gevent) before the query is."""
    base, _ = gunicorn
    cache = open_cache(demo_cache[0])
    wait_for_the_encoder(base)
    body, kind = multipart({"rep": "mfcc", "k": "3"}, cache.audio_path(9).read_bytes())
    status, _, answer = fetch(base + "/query", body, {"Content-Type": kind})
    answer = json.loads(answer)
    assert status == 200 and answer["neighbours"][0]["id"] == 9 and answer["neighbours"][0]["distance"] < 1e-4
    t = np.arange(int(9.5 * 16000)) / 16000
    buffer = io.BytesIO()
    sf.write(buffer, (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 16000, format="WAV")
    body, kind = multipart({"rep": "z"}, buffer.getvalue())
    finished = {}

    def long_query():
        finished["status"] = fetch(base + "/query", body, {"Content-Type": kind})[0]
        finished["at"] = time.perf_counter()

    thread = threading.Thread(target=long_query)
    thread.start()
    deadline = time.time() + 30
    while not json.loads(fetch(base + "/query")[2]).get("encoding") and time.time() < deadline:
        time.sleep(0.02)  # until the encoder works on it
    assert "at" not in finished, "the query was answered before the clicks were sent: too short"
    answered = []
    for _ in range(5):
        status, _, data = fetch(base + "/clip-at/pca2/0/0?colour=label")
        answered.append((status, time.perf_counter()))
    thread.join(60)
    assert finished.get("status") == 200
    assert all(status == 200 for status, _ in answered)
    assert max(at for _, at in answered) < finished["at"], "clicks waited for the query"


def slow_clients(base: str, n: int) -> list[socket.socket]:
    """``n`` connections that each send half a request and then nothing (a slowloris)."""
    host, port = base.split("//")[1].split(":")
    socks = []
    for _ in range(n):
        s = socket.create_connection((host, int(port)), timeout=5)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n")
        socks.append(s)
    return socks


def test_half_sent_requests_do_not_stall_other_users(gunicorn):
    """Slow clients (more of them than workers) hold no worker: a normal page load and a
    callback are answered at once while they dribble their headers."""
    base, _ = gunicorn
    socks = slow_clients(base, 16)
    try:
        for _ in range(3):
            started = time.perf_counter()
            status, _, _ = fetch(base + "/_dash-layout")
            assert status == 200 and time.perf_counter() - started < 2.0
            for s in socks:
                s.sendall(b"X-More: 1\r\n")  # still sending, never finishing
            time.sleep(0.5)
    finally:
        for s in socks:
            s.close()


def slow_uploads(base: str, n: int, body: bytes, kind: str) -> list[socket.socket]:
    """``n`` POST /query connections that send their headers and the first 100 bytes of
    ``body``, then one byte at a time (``trickle``): a slow-upload attack."""
    host, port = base.split("//")[1].split(":")
    socks = []
    for _ in range(n):
        s = socket.create_connection((host, int(port)), timeout=60)
        s.sendall((f"POST /query HTTP/1.1\r\nHost: x\r\nContent-Type: {kind}\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body[:100])
        socks.append(s)
    return socks


@pytest.mark.parametrize("gunicorn", [1], indirect=True)
def test_slow_uploads_hold_no_place_in_the_query_queue(gunicorn, demo_cache):
    """Five uploads that dribble one byte every second (more than the encoder's queue) once
    made every honest query a 503 "busy" while GET /query said 0 waiting. Now the upload is read
    before the encoder admits it: honest queries are answered, the status agrees, and a slow
    upload is cut at the deadline with a 408."""
    from dacviz_app.viewer.query_route import UPLOAD_DEADLINE_S

    base, _ = gunicorn
    cache = open_cache(demo_cache[0])
    wait_for_the_encoder(base)
    body, kind = multipart({"rep": "z", "k": "3"}, cache.audio_path(7).read_bytes())
    started = time.time()
    socks = slow_uploads(base, 5, body, kind)
    try:
        for position in range(100, 103):
            for s in socks:
                s.sendall(body[position:position + 1])
            state = json.loads(fetch(base + "/query")[2])
            assert state["queued"] == 0 and not state["encoding"], state
            status, _, answer = fetch(base + "/query", body, {"Content-Type": kind})
            assert status == 200 and json.loads(answer)["neighbours"][0]["id"] == 7
            time.sleep(1.0)
        socks[0].settimeout(UPLOAD_DEADLINE_S + 30)
        reply = b""  # the server ends it at the deadline; headers and body may come apart
        while b"did not arrive within" not in reply:
            chunk = socks[0].recv(4096)
            if not chunk:
                break
            reply += chunk
        assert reply.startswith(b"HTTP/1.1 408") and b"did not arrive within" in reply, reply[:300]
        assert time.time() - started < UPLOAD_DEADLINE_S + 20
    finally:
        for s in socks:
            s.close()

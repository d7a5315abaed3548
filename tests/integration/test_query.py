"""Query by voice: POST /query through the real encoder service process, hostile uploads, a
server without its weights, and the placement against what the cache holds."""
from __future__ import annotations

import io
import json
import os
import shutil
import signal
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from dacviz_app import query_service
from dacviz_app.cache import open_cache
from dacviz_app.embedding.neighbours import nearest_to
from dacviz_app.embedding.projections import pca_place
from dacviz_app.query_service.protocol import MAX_SECONDS, MAX_UPLOAD_BYTES, PER_CLIENT, QUEUE_SIZE
from dacviz_app.embedding.spaces import VIEWS
from dacviz_app.viewer.app import create_app


def wav(audio: np.ndarray, rate: int = 16000, subtype: str = "PCM_16", fmt: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def speech_like(seconds: float, rate: int = 16000, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    noise = np.random.default_rng(seed).normal(0, 0.02, len(t))
    return (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2 + noise).astype(np.float32)


@pytest.fixture(scope="module")
def served(demo_cache):
    """The demo cache's app, the cache and its encoder service (a real separate process), ready."""
    before = os.environ.get(query_service.SOCKET_ENV)
    process = query_service.start(str(demo_cache[0]))
    try:
        state = query_service.wait_ready()
        assert state["state"] == "ready", state
        yield create_app(demo_cache[0]).server, open_cache(demo_cache[0]), process
    finally:
        query_service.stop(process)
        if before is None:
            os.environ.pop(query_service.SOCKET_ENV, None)
        else:
            os.environ[query_service.SOCKET_ENV] = before


def post(server, data: bytes | None, address: str = "127.0.0.1", **fields):
    form = {key: str(value) for key, value in fields.items()}
    if data is not None:
        form["audio"] = (io.BytesIO(data), "clip.wav")
    return server.test_client().post("/query", data=form, content_type="multipart/form-data",
                                     environ_base={"REMOTE_ADDR": address})


def find_component(tree, wanted: str):
    """The props of the component with id ``wanted`` in a /_dash-layout tree, or None."""
    if isinstance(tree, dict):
        props = tree.get("props", {})
        if props.get("id") == wanted:
            return props
        for value in props.values() if "props" in tree else tree.values():
            found = find_component(value, wanted)
            if found is not None:
                return found
    elif isinstance(tree, list):
        for item in tree:
            found = find_component(item, wanted)
            if found is not None:
                return found
    return None


def test_a_cached_clip_comes_back_first_at_distance_zero_in_every_representation(served):
    server, cache, _ = served
    for clip in (3, 58):
        data = cache.audio_path(clip).read_bytes()  # what /audio serves: 16-bit WAV of the clip
        for rep in cache.representations:
            answer = post(server, data, rep=rep, k=5)
            assert answer.status_code == 200, answer.json
            body = answer.json
            first = body["neighbours"][0]
            assert (first["id"], body["representation"], body["k"]) == (clip, rep, 5), (rep, body)
            assert first["distance"] < 1e-4, (rep, first)
            assert first["file"] == cache.clips["source"][clip]
            for view in VIEWS:  # placed where the clip itself is, in every view
                placed = np.asarray(body["views"][view.name]["xyz"])
                spread = np.ptp(np.asarray(cache.projection(rep, view.name)), axis=0).max()
                assert np.abs(placed - cache.projection(rep, view.name)[clip]).max() < 1e-3 * spread, \
                    (rep, view.name)
            assert body["views"]["pca2"]["placed"].startswith("exact")
            if rep in ("z", "z_q2", "mfcc"):  # its frames as a path, centred on its own point
                path = body["path"]
                frames = len(cache.frame_codes(clip)) if rep != "mfcc" else \
                    round(cache.clips["duration_s"][clip] / path["frame_s"]) + 1
                assert abs(path["n_frames"] - frames) <= 1 and path["rep"] == rep
                np.testing.assert_allclose(np.mean(path["views"]["pca2"]["xyz"], axis=0),
                                           cache.projection(rep, "pca2")[clip], atol=2e-2)
            elif rep in ("codes_concat", "resemblyzer"):
                assert body["path"] is None
    other = cache.audio_path(3).read_bytes()
    body = post(server, other, rep="mfcc", vectors=1).json
    assert set(body["vectors"]) == set(cache.representations) and len(body["vectors"]["mfcc"]) == 80


def test_an_mfcc_path_comes_from_the_encoder_service_and_averages_to_the_clip(served):
    """MFCC frames are computed by the encoder process (the web worker holds no torch): the
    clip's path in mfcc, one frame per 10 ms, centred on its point in PCA; two compared."""
    server, cache, _ = served
    client = server.test_client()
    body = client.get("/path/7?rep=mfcc").json
    assert body["frame_s"] == 0.01 and abs(body["n_frames"] - (round(cache.clips["duration_s"][7] / 0.01) + 1)) <= 1
    for view in ("pca2", "pca3"):
        np.testing.assert_allclose(np.mean(body["views"][view]["xyz"], axis=0), cache.projection("mfcc", view)[7],
                                   atol=1e-3 * np.ptp(cache.projection("mfcc", view)))
    compared = client.get("/paths/7/7?rep=mfcc").json
    assert compared["dtw"] == pytest.approx(0.0, abs=1e-6) and compared["reference"]["clips"] >= 8
    assert client.get("/path/7?rep=mfcc", environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code == 200


def test_a_long_query_is_drawn_with_evenly_spaced_frames_and_says_so(served):
    """9 s said into the query: 450 of DAC's frames (900 of MFCC's), a path of 300 points, the
    first and the last among them, and the answer says it was thinned."""
    server, cache, _ = served
    data = wav(speech_like(9.0))
    for rep, frames in (("z", 450), ("mfcc", 901)):
        path = post(server, data, rep=rep).json["path"]
        assert abs(path["n_frames"] - frames) <= 1 and len(path["frames"]) == 300
        assert path["frames"][0] == 0 and path["frames"][-1] == path["n_frames"] - 1
        assert all(len(v["xyz"]) == 300 for v in path["views"].values())
        assert "300 of its" in path["decimated"] and "mean is the clip" not in path["views"]["pca2"]["placed"]


def test_pca_placement_and_the_neighbour_search_agree_with_the_cache(demo_cache):
    cache = open_cache(demo_cache[0])
    for rep in ("z", "mfcc"):
        x = np.asarray(cache.embedding(rep))
        for view in (v for v in VIEWS if v.method == "pca"):
            basis = cache.pca_basis(rep, view.name)
            placed = np.stack([pca_place(v, basis, view.dim) for v in x])
            assert np.allclose(placed, cache.projection(rep, view.name), atol=1e-4)
        norms = np.linalg.norm(x, axis=1)
        index, distance = cache.neighbours(rep)
        for clip in (0, 17, 99):  # the cache's table lists other clips; the query finds itself first
            ids, dist = nearest_to(x, norms, x[clip], cache.knn_k + 1)
            assert ids[0] == clip and dist[0] < 1e-6
            assert list(ids[1:]) == list(index[clip]) or np.allclose(dist[1:], distance[clip], atol=1e-6)


def test_hostile_uploads_get_a_clear_4xx_and_nothing_breaks(served):
    server, cache, _ = served
    rate = 16000
    cases = [
        (None, 400, "field 'audio'"),
        (b"", 400, "empty"),
        (b"this is not audio at all" * 10, 422, "not readable as audio"),
        (wav(np.zeros(rate, np.float32)), 422, "silent"),
        (wav(speech_like(MAX_SECONDS + 1)), 422, "too long"),
        (wav(speech_like(0.05)), 422, "too short"),
        (wav(np.full(rate, np.nan, np.float32), subtype="FLOAT"), 422, "non-finite"),
        (b"RIFF" + os.urandom(MAX_UPLOAD_BYTES), 413, "larger than"),
    ]
    for data, status, words in cases:
        answer = post(server, data)
        assert answer.status_code == status and words in answer.json["error"], (status, answer.json)
    assert post(server, wav(speech_like(1)), rep="../../etc/passwd").status_code == 400
    plain = server.test_client().post("/query", data=b"x" * 100, content_type="text/plain")
    assert plain.status_code == 400 and "error" in plain.json
    ok = post(server, wav(speech_like(1.5)), rep="z", k="junk")  # a junk k is the default
    assert ok.status_code == 200 and ok.json["k"] == 10
    flac = post(server, wav(speech_like(1.5, 44100), 44100, fmt="FLAC"))  # FLAC at another rate
    assert flac.status_code == 200 and flac.json["duration_s"] == pytest.approx(1.5, abs=0.01)
    assert server.test_client().get("/query").json["state"] == "ready"


def test_too_many_queries_at_once_are_refused_per_client_and_when_the_queue_is_full(served):
    server, _cache, _ = served
    long_clip = wav(speech_like(MAX_SECONDS - 0.5))
    answers: list = []

    def send(address):
        answer = post(server, long_clip, address=address)
        answers.append((address, answer.status_code, answer.json.get("error", "")))

    threads = [threading.Thread(target=send, args=("10.0.0.1",)) for _ in range(PER_CLIENT + 2)]
    threads += [threading.Thread(target=send, args=(f"10.0.1.{i}",)) for i in range(QUEUE_SIZE + 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    same = [a for a in answers if a[0] == "10.0.0.1"]
    assert sum(s == 200 for _, s, _ in same) <= PER_CLIENT
    assert any(s == 429 and "one query at a time" in e for _, s, e in same), same
    assert any(s == 503 and "busy" in e for _, s, e in answers), answers
    assert all(s in (200, 429, 503) for _, s, _ in answers), answers
    assert post(server, long_clip, address="10.0.0.1").status_code == 200  # the share is given back


def test_the_encoder_comes_back_after_it_is_killed(served):
    server, cache, service = served
    restarts = service.restarts
    old = service.process.pid
    os.kill(old, signal.SIGKILL)
    deadline = time.time() + 60
    while (service.process.pid == old or query_service.status().get("state") != "ready") \
            and time.time() < deadline:
        time.sleep(0.2)
    answer = post(server, cache.audio_path(4).read_bytes(), rep="z")
    assert answer.status_code == 200 and answer.json["neighbours"][0]["id"] == 4
    assert service.restarts == restarts + 1


def test_a_stopped_encoder_gets_fast_503s_and_is_killed_and_restarted(served):
    """kill -STOP once left every POST /query waiting 65 s for a 503, for ever."""
    server, cache, service = served
    restarts, old = service.restarts, service.process.pid
    os.kill(old, signal.SIGSTOP)
    try:
        started = time.perf_counter()
        answer = post(server, cache.audio_path(4).read_bytes(), rep="z")
        waited = time.perf_counter() - started
        assert answer.status_code == 503 and "not answering" in answer.json["error"], answer.json
        assert waited < 2 * query_service.ANSWER_TIMEOUT_S + 2, waited
        deadline = time.time() + query_service.HEALTH_FAILURES * (
            query_service.HEALTH_EVERY_S + query_service.ANSWER_TIMEOUT_S) + 90
        while (service.process.pid == old or query_service.status().get("state") != "ready") \
                and time.time() < deadline:
            time.sleep(0.5)
    finally:
        try:
            os.kill(old, signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert service.restarts == restarts + 1
    answer = post(server, cache.audio_path(4).read_bytes(), rep="z")
    assert answer.status_code == 200 and answer.json["neighbours"][0]["id"] == 4


def test_a_form_of_many_fields_and_a_full_temp_folder_are_said_as_such(served, monkeypatch):
    server, cache, _ = served
    fields = "".join(f'--b\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\nx\r\n' for i in range(5000))
    many = server.test_client().post("/query", data=(fields + "--b--\r\n").encode(),
                                     content_type="multipart/form-data; boundary=b")
    assert many.status_code == 413 and "too many fields" in many.json["error"], many.json
    assert "larger than" not in many.json["error"]
    import errno
    import tempfile as tempfile_module

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tempfile_module, "TemporaryFile", full)  # where werkzeug's spool rolls over
    big = wav(speech_like(8.0, 44100), 44100)  # 700 KB: spooled to the temp folder by werkzeug
    answer = post(server, big)
    assert answer.status_code == 507 and "No space left on device" in answer.json["error"], answer.json
    assert "not answering" not in answer.json["error"]


def test_a_killed_servers_socket_folder_is_removed_by_the_next_start(demo_cache, tmp_path):
    """``kill -9`` of the server left its encoder's empty folder in the temp dir for ever."""
    import subprocess
    import sys

    env = {**os.environ, "TMPDIR": str(tmp_path)}
    script = ("import os, time; from dacviz_app import query_service as e; "
              f"s = e.start({str(demo_cache[0])!r}); print(s.folder, flush=True); time.sleep(600)")
    killed = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
    folder = killed.stdout.readline().strip()
    killed.kill()
    killed.wait()
    assert os.path.isdir(folder)  # what kill -9 leaves
    mine = tmp_path / f"{query_service.FOLDER_PREFIX}{os.getpid()}-alive"
    mine.mkdir()  # a running server's folder: never removed
    removed = query_service.remove_stale_folders(str(tmp_path))
    assert [str(f) for f in removed] == [folder] and not os.path.exists(folder) and mine.is_dir()


def test_an_unusual_sample_rate_is_refused_before_any_work(served):
    server, _, _ = served  # a 0.2 s file at 16001 Hz: exact resampling would need a 2 GB filter
    answer = post(server, wav(speech_like(0.2, 16001), 16001))
    assert answer.status_code == 422 and "unusual sample rate 16001 Hz" in answer.json["error"]


def test_a_server_without_the_weights_says_why_on_the_button_and_the_api(demo_cache, tmp_path):
    copy = tmp_path / "cache"
    shutil.copytree(demo_cache[0], copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["model"]["weights"] = {"untrained": False, "path": str(tmp_path / "gone.pth"),
                                    "sha256": "0" * 64, "seed": None}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    server = create_app(copy).server
    answer = post(server, wav(speech_like(1)))
    assert answer.status_code == 503 and "gone.pth" in answer.json["error"]
    assert "not on this server" in answer.json["error"]
    button = find_component(server.test_client().get("/_dash-layout").json, "query-record")
    assert button["disabled"] is True and "not on this server" in button["title"]
    state = server.test_client().get("/query").json
    assert state["state"] == "off" and "gone.pth" in state["reason"]


def test_a_web_worker_answers_a_query_without_importing_torch(demo_cache):
    """The web side of a query (the route, the neighbours, the placement, the callbacks' side
    panel and highlight) in a fresh interpreter: torch is never imported."""
    import subprocess
    import sys

    script = f"""
import sys
from dacviz_app.viewer.app import create_app
from dacviz_app.viewer import page_state, panels
from dacviz_app.cache import open_cache
from dacviz_app.explore.nearest import answer
from dacviz_app.explore.groups import ViewGroups
cache = open_cache({str(demo_cache[0])!r})
server = create_app({str(demo_cache[0])!r}).server
assert server.test_client().get("/_dash-layout").status_code == 200
vectors = {{rep: cache.embedding(rep)[5].tolist() for rep in cache.representations}}
query = {{"nonce": 7, "vectors": vectors, "duration_s": 1.0}}
selection = {{"clip": None, "cursor": -1, "play": None, "nonce": 3, "query": 7}}
payload = page_state.highlight_update(cache, ViewGroups(cache).all("label"), "z", selection, 5, [], set(),
                                     False, query)
assert payload["active"] and payload["views"]["tsne2"]["query"]["xyz"], payload
assert payload["views"]["pca2"]["neighbours"]["ids"][0] == 5
panel = panels.render_neighbours(cache, page_state.clean_selection(cache, selection), "mfcc", 5,
                                    ["label"], "z", query)
assert "mfcc" in str(panel)
assert answer(cache, page_state.clean_vectors(cache, vectors), "z", 3)["neighbours"][0]["id"] == 5
print("torch" in sys.modules)
"""
    env = {k: v for k, v in os.environ.items() if k != query_service.SOCKET_ENV}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"

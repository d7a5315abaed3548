"""Shared fixtures: small real WAV sets and one demo cache built with the real CLI."""
from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from filelock import FileLock

ROOT = Path(__file__).resolve().parents[1]

if os.environ.get("PYTEST_XDIST_WORKER"):
    # one xdist worker per core: each worker and what it starts computes on one thread. Two
    # workers of two threads each on two cores spin-wait in OpenMP (the run took 14 more CPU
    # minutes that way); torch, numpy's BLAS and onnxruntime read these before they start.
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[variable] = "1"

LONG_LABEL = "a" * 3000
TEMPLATE_LABEL = "%{x}<b>b</b>"
INJECTED_NAME = "</title><script>window.__pwned = 1</script>"


# What a test's cache leaves out unless the test names the option itself: DNSMOS (~1 s a clip and
# depth here; checked against speechmos in tests/unit/test_fidelity.py and by the demo cache), and
# all but one codebook depth and four decoded clips (decoding every clip at five depths is ~85 % of
# a small run's encoding on these cores; the demo cache, built as the README says, has every depth
# and the default decoded clips (48 on a CPU), and tests/integration/test_precompute.py checks them). The paths stay exercised: one depth's
# latent, its projections and metrics, decoded audio and its fidelity are still written.
LEAN_DEFAULTS = {"--dnsmos-clips": ("--dnsmos-clips", "0"),
                 "--depths": ("--depths", "2"),
                 "--reconstruct": ("--reconstruct", "2", "--reconstruct-max-clips", "4")}


def precompute_argv(*args: str, readme: bool = False) -> list[str]:
    """``python precompute.py ARGS`` as a list. Unless ``readme`` (the README's own command, run
    as written), every LEAN_DEFAULTS option the test does not name is added."""
    lean = () if readme else tuple(word for flag, words in LEAN_DEFAULTS.items()
                                   if flag not in args for word in words)
    return [sys.executable, str(ROOT / "precompute.py"), *args, *lean]


def run_precompute(*args: str, timeout: float = 600, readme: bool = False,
                   **kwargs) -> subprocess.CompletedProcess:
    """Run ``python precompute.py ARGS`` as a user would (``precompute_argv``); returns the
    finished process."""
    return subprocess.run(precompute_argv("--no-progress", *args, readme=readme),
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT, **kwargs)


def shared_root(tmp_path_factory) -> Path:
    """The folder every pytest-xdist worker of this run shares (the run's own base temp folder
    without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def built_once(tmp_path_factory, name: str, build) -> object:
    """``build(folder)`` run once per test run, whichever worker asks first (the others wait on a
    file lock and read its JSON answer): a session fixture shared by every xdist worker."""
    root = shared_root(tmp_path_factory)
    answer = root / f"{name}.json"
    with FileLock(str(root / f"{name}.lock")):
        if not answer.is_file():
            answer.write_text(json.dumps(build(root / name)))
    return json.loads(answer.read_text())


def write_demo_wavs(folder: Path) -> str:
    from dacviz_app.precompute.demo import write_demo_set

    write_demo_set(folder)
    return str(folder)


@pytest.fixture(scope="session")
def demo_wavs(tmp_path_factory) -> Path:
    """The full espeak demo set (12 words x 10 voices) as WAV files (one copy per run)."""
    return Path(built_once(tmp_path_factory, "demo_wavs", write_demo_wavs))


def copy_subset(demo_wavs: Path, dest: Path, words=("zero", "one", "yes"), speakers=4) -> Path:
    """A small folder-per-label tree copied from the demo set."""
    for word in words:
        files = sorted((demo_wavs / word).glob("*.wav"))[:speakers]
        (dest / word).mkdir(parents=True, exist_ok=True)
        for f in files:
            (dest / word / f.name).write_bytes(f.read_bytes())
    return dest


def start_demo_cache(tmp_path_factory, demo_wavs: Path) -> Path:
    """Start building the demo cache in the background, once per run (the README's command as
    written), so that the tests that do not read it run meanwhile; returns its folder, where
    ``stdout``, ``stderr`` and ``returncode`` appear beside ``cache`` when it is done."""
    def start(folder: Path) -> str:
        folder.mkdir()
        argv = precompute_argv("--no-progress", "--demo", "--demo-dir", str(demo_wavs), "--untrained",
                               "--out", str(folder / "cache"), readme=True)
        script = ("import subprocess, sys; p = subprocess.run(sys.argv[2:], capture_output=True, text=True); "
                  "d = sys.argv[1]; open(d + '/stdout', 'w').write(p.stdout); "
                  "open(d + '/stderr', 'w').write(p.stderr); open(d + '/returncode', 'w').write(str(p.returncode))")
        build = subprocess.Popen([sys.executable, "-c", script, str(folder), *argv], cwd=ROOT,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        (folder / "pid").write_text(str(build.pid))  # its own process group: pytest_sessionfinish
        return str(folder)

    return Path(built_once(tmp_path_factory, "demo_cache", start))


@pytest.fixture(scope="session", autouse=True)
def demo_cache_in_the_background(request, tmp_path_factory):
    """At the start of a run whose tests read the demo cache, its build starts (``start_demo_cache``)."""
    if os.environ.get("DACVIZ_TEST_DEMO_CACHE") or not any(
            "demo_cache" in item.fixturenames for item in request.session.items):
        return
    start_demo_cache(tmp_path_factory, request.getfixturevalue("demo_wavs"))


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory, demo_wavs) -> tuple[Path, str]:
    """A cache of the whole demo set, built by the CLI exactly as the README does, and
    precompute's stdout. $DACVIZ_TEST_DEMO_CACHE names one built earlier by that command, for a
    quick loop while editing (then its stdout is not known: ""); CI never sets it."""
    prebuilt = os.environ.get("DACVIZ_TEST_DEMO_CACHE")
    if prebuilt:
        return Path(prebuilt), ""
    folder = start_demo_cache(tmp_path_factory, demo_wavs)
    deadline = time.time() + 1200
    while not (folder / "returncode").is_file():
        assert time.time() < deadline, "the demo cache was not built in 20 minutes"
        time.sleep(0.5)
    assert (folder / "returncode").read_text() == "0", (folder / "stderr").read_text()
    return folder / "cache", (folder / "stdout").read_text()


@pytest.fixture(scope="session")
def hostile_cache(demo_wavs, tmp_path_factory):
    out, stdout, peak = built_once(tmp_path_factory, "hostile", lambda base: build_hostile_cache(demo_wavs, base))
    return Path(out), stdout, peak


def build_hostile_cache(demo_wavs: Path, base: Path) -> tuple[str, str, int]:
    """A cache made from a CSV that has it all: columns named like the cache's own, labels that
    are a template, markup, empty, "(none)" and 3,000 characters (five clips: the smallest
    cache, whose t-SNE is nearly flat), a FIFO, /dev/zero and a 3 GB
    stray file among the clips, and a collection name that closes <title> and opens <script>.
    Returns (cache dir, precompute's stdout, peak RSS of the precompute process in MB)."""
    base.mkdir()
    wavs = sorted((demo_wavs / "three").glob("*.wav"))[:5]
    labels = [LONG_LABEL, LONG_LABEL, TEMPLATE_LABEL, "", "(none)"]
    os.mkfifo(base / "a.fifo")
    with open(base / "stray.wav", "wb") as handle:  # 3 GB of zeros, sparse on disk
        handle.truncate(3 * 2**30)
    rows = [["path", "label", "speaker", "duration_s", "audio", "id", "source"]]
    for i, (wav, label) in enumerate(zip(wavs, labels)):
        rows.append([str(wav), label, "<img src=x onerror=window.__pwned=2>", "12.5",
                     "../../etc/passwd", f"x{i}", "evil"])
    for path in (base / "a.fifo", "/dev/zero", base / "stray.wav"):
        rows.append([str(path), "junk", "", "", "", "", ""])
    with open(base / "clips.csv", "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    out = base / "cache"
    measure = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:]); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024, file=sys.stderr); "
               "sys.exit(p.returncode)")
    proc = subprocess.run([sys.executable, "-c", measure, *precompute_argv(
                           "--no-progress", str(base / "clips.csv"), "--untrained", "--name", INJECTED_NAME,
                           "--out", str(out))], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return str(out), proc.stdout, int(proc.stderr.strip().splitlines()[-1])


def tone(seconds: float, rate: int, freq: float = 220.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * freq * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def write_bad_files(folder: Path) -> dict[str, str]:
    """Write one file of each bad kind into ``folder``; returns {file name: expected outcome}
    where the outcome is 'encoded' or a word expected in the skip reason."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(40)))
    (folder / "empty.wav").write_bytes(b"")
    (folder / "notes.txt").write_text("not audio at all\n")
    sf.write(folder / "silent.wav", np.zeros(16000), 16000, subtype="PCM_16")
    sf.write(folder / "stereo.wav", tone(0.6, 16000, channels=2), 16000, subtype="PCM_16")
    sf.write(folder / "eightbit.wav", tone(0.6, 16000, 330), 16000, subtype="PCM_U8")
    sf.write(folder / "odd_rate.wav", tone(0.6, 11025, 440), 11025, subtype="PCM_16")
    sf.write(folder / "cd_rate.flac", tone(0.6, 44100, 550), 44100, subtype="PCM_16")
    sf.write(folder / "short.wav", tone(0.05, 16000), 16000, subtype="PCM_16")
    sf.write(folder / "long.wav", tone(4.0, 16000), 16000, subtype="PCM_16")
    nan = tone(0.5, 16000).astype(np.float32)
    nan[100] = np.nan
    sf.write(folder / "nan.wav", nan, 16000, subtype="FLOAT")
    return {"corrupt.wav": "not readable", "empty.wav": "empty", "notes.txt": "not readable",
            "silent.wav": "silent", "stereo.wav": "encoded", "eightbit.wav": "encoded",
            "odd_rate.wav": "encoded", "cd_rate.flac": "encoded", "short.wav": "too short",
            "long.wav": "too long", "nan.wav": "non-finite"}


@pytest.hookimpl(optionalhook=True)  # dash[testing]'s hook: absent where dash is not installed
def pytest_setup_options():
    """Chromium options for dash[testing]'s browser: headless as root, no outside traffic."""
    from dacviz_testkit import chromium_options

    return chromium_options()


def pytest_sessionfinish(session):
    """A demo cache build still running when the whole run ends (no test waited for it, or the
    run was interrupted) is stopped; workers leave it to the run's controller."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    folder = session.config._tmp_path_factory.getbasetemp() / "demo_cache"
    if (folder / "pid").is_file() and not (folder / "returncode").is_file():
        with contextlib.suppress(OSError):
            os.killpg(int((folder / "pid").read_text()), signal.SIGTERM)


TIERS = ("unit", "integration", "browser", "bench")


def pytest_collection_modifyitems(items):
    """Each test is marked by its tier, the folder it lives in (``-m unit``: the fast tier). The
    files none of whose tests read the demo cache come first (it is built in the background
    meanwhile: ``demo_cache_in_the_background``; an xdist worker takes a whole file), each
    group in the collection's order."""
    readers = {item.path for item in items if "demo_cache" in item.fixturenames}
    items.sort(key=lambda item: item.path in readers)
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture
def page(dash_duo, demo_cache):
    """The browser tests' page: the demo cache served by dash[testing], open in headless Chromium
    with its four views drawn."""
    from dacviz_app.viewer.app import create_app
    from test_browser import views, wait_for  # tests/browser, on the path of the tests that ask

    dash_duo.start_server(create_app(demo_cache[0]))
    wait_for(lambda: all(v and v["drawn"] for v in (views(dash_duo) or [None])), 30, "four views")
    return dash_duo

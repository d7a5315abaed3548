"""Shared fixtures: small real WAV sets and one demo cache built with the real CLI."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]

LONG_LABEL = "a" * 3000
TEMPLATE_LABEL = "%{x}<b>b</b>"
INJECTED_NAME = "</title><script>window.__pwned = 1</script>"


# What a test's cache leaves out unless the test names the option itself: DNSMOS (~1 s a clip and
# depth here; checked against speechmos in tests/unit/test_fidelity.py and by the demo cache), and
# all but one codebook depth and four decoded clips (decoding every clip at five depths is ~85 % of
# a small run's encoding on these cores; the demo cache, built as the README says, has them all and
# tests/integration/test_precompute.py checks every one). The paths stay exercised: one depth's
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


@pytest.fixture(scope="session")
def demo_wavs(tmp_path_factory) -> Path:
    """The full espeak demo set (12 words x 10 voices) as WAV files."""
    from dacviz_app.precompute.demo import write_demo_set

    out = tmp_path_factory.mktemp("demo_wavs")
    write_demo_set(out)
    return out


def copy_subset(demo_wavs: Path, dest: Path, words=("zero", "one", "yes"), speakers=4) -> Path:
    """A small folder-per-label tree copied from the demo set."""
    for word in words:
        files = sorted((demo_wavs / word).glob("*.wav"))[:speakers]
        (dest / word).mkdir(parents=True, exist_ok=True)
        for f in files:
            (dest / word / f.name).write_bytes(f.read_bytes())
    return dest


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory, demo_wavs) -> tuple[Path, str]:
    """A cache of the whole demo set, built by the CLI exactly as the README does.
    $DACVIZ_TEST_DEMO_CACHE names one built earlier by that command, for a quick loop while
    editing (then its stdout is not known: ""); CI never sets it."""
    prebuilt = os.environ.get("DACVIZ_TEST_DEMO_CACHE")
    if prebuilt:
        return Path(prebuilt), ""
    out = tmp_path_factory.mktemp("cache") / "demo"
    proc = run_precompute("--demo", "--demo-dir", str(demo_wavs), "--untrained", "--out", str(out),
                          readme=True)
    assert proc.returncode == 0, proc.stderr
    return out, proc.stdout


@pytest.fixture(scope="session")
def hostile_cache(demo_wavs, tmp_path_factory):
    """A cache made from a CSV that has it all: columns named like the cache's own, labels that
    are a template, markup, empty, "(none)" and 3,000 characters (five clips: the smallest
    cache, whose t-SNE is nearly flat), a FIFO, /dev/zero and a 3 GB
    stray file among the clips, and a collection name that closes <title> and opens <script>.
    Returns (cache dir, precompute's stdout, peak RSS of the precompute process in MB)."""
    base = tmp_path_factory.mktemp("hostile")
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
    return out, proc.stdout, int(proc.stderr.strip().splitlines()[-1])


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


TIERS = ("unit", "integration", "browser")


def pytest_collection_modifyitems(items):
    """Each test is marked by its tier, the folder it lives in (``-m unit``: the fast tier)."""
    for item in items:
        tier = Path(str(item.fspath)).parent.name
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))

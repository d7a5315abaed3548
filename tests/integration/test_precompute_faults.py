"""precompute's faults, none of which needs the demo cache (so these run while it is built): bad
files skipped with their reasons, an interrupted run resumed to the same cache, twenty kill -9s in a
row, an unwritable --out and a full disk."""
from __future__ import annotations

import os
import random
import re
import resource
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import ROOT, copy_subset, precompute_argv, run_precompute, write_bad_files
from dacviz_app.cache import CacheError, open_cache
from dacviz_testkit import cache_files


def test_bad_files_are_skipped_with_reasons_and_good_ones_kept(demo_wavs, tmp_path):
    src = copy_subset(demo_wavs, tmp_path / "src", words=("zero", "one"), speakers=3)
    expected = write_bad_files(src / "odd")
    out = tmp_path / "cache"
    proc = run_precompute(str(src), "--untrained", "--out", str(out), "--max-seconds", "3",
                          "--chunk-size", "4")
    assert proc.returncode == 0, proc.stderr
    cache = open_cache(out)
    skipped = {Path(s["source"]).name: s["reason"] for s in cache.skipped}
    kept = {Path(p).name for p in cache.clips["source"]}
    for name, outcome in expected.items():
        if outcome == "encoded":
            assert name in kept, (name, skipped.get(name))
        else:
            assert outcome in skipped[name], (name, skipped.get(name))
    assert cache.n_clips == 6 + 4
    assert f"clips skipped : {len(expected) - 4}" in proc.stdout
    rates = dict(zip([Path(p).name for p in cache.clips["source"]], cache.clips["original_rate"]))
    assert rates["odd_rate.wav"] == 11025 and rates["cd_rate.flac"] == 44100
    channels = dict(zip([Path(p).name for p in cache.clips["source"]], cache.clips["channels"]))
    assert channels["stereo.wav"] == 2


def _wait_for_chunks(out: Path, count: int, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        chunks = out / "work" / "chunks"
        if chunks.is_dir() and len(list(chunks.glob("chunk_*.npz"))) >= count:
            return
        assert proc.poll() is None, "precompute finished before it could be interrupted"
        time.sleep(0.05)
    raise AssertionError("no chunk appeared in time")


def test_interrupted_runs_resume_to_the_same_cache(demo_wavs, tmp_path):
    src = copy_subset(demo_wavs, tmp_path / "src", words=("two", "yes", "no"), speakers=4)
    write_bad_files(src / "odd")
    args = [str(src), "--untrained", "--chunk-size", "3", "--batch-size", "2", "--max-seconds", "3"]
    clean = tmp_path / "clean"
    assert run_precompute(*args, "--out", str(clean)).returncode == 0

    out = tmp_path / "interrupted"
    cmd = precompute_argv("--no-progress", *args, "--out", str(out))
    # 1: Ctrl-C after the first chunk
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_chunks(out, 1, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "rerun the same command" in err, (proc.returncode, err[-2000:])
    assert not (out / "manifest.json").exists()
    with pytest.raises(CacheError, match="interrupted"):
        open_cache(out)
    # 2: kill -9 a little later
    done = len(list((out / "work" / "chunks").glob("*.npz")))
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for_chunks(out, done + 2, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert not (out / "manifest.json").exists()
    # 3: the same command again finishes the job
    final = run_precompute(*args, "--out", str(out))
    assert final.returncode == 0, final.stderr
    assert "encoded in this run" in final.stdout
    resumed = int(re.search(r"\((\d+) encoded in this run\)", final.stdout).group(1))
    assert 0 < resumed < 12 + 11
    assert cache_files(out) == cache_files(clean)
    # and once more: nothing left to do
    again = run_precompute(*args, "--out", str(out))
    assert again.returncode == 0 and "already complete" in again.stdout


def test_unwritable_out_and_a_full_disk_give_clear_errors_and_no_complete_looking_cache(demo_wavs, tmp_path):
    src = copy_subset(demo_wavs, tmp_path / "src", words=("one", "two"), speakers=3)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    proc = run_precompute(str(src), "--untrained", "--out", str(blocker / "cache"))
    assert proc.returncode == 2 and "cannot write" in proc.stderr and "Traceback" not in proc.stderr

    def small_disk():  # files larger than 8 KiB cannot be written: what a full disk does
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (8 * 1024, 8 * 1024))

    out = tmp_path / "cache"
    proc = run_precompute(str(src), "--untrained", "--out", str(out), preexec_fn=small_disk)
    assert proc.returncode == 2, proc.stderr
    assert "cannot write" in proc.stderr and "File too large" in proc.stderr and "Traceback" not in proc.stderr
    assert not (out / "manifest.json").exists()
    leftovers = [p for p in out.rglob("*") if p.is_file() and p.name.startswith(".")]
    assert not leftovers, leftovers  # no temporary files left behind
    again = run_precompute(str(src), "--untrained", "--out", str(out))
    assert again.returncode == 0 and open_cache(out).n_clips == 6


def test_twenty_kill9s_in_a_row_end_in_the_clean_cache(demo_wavs, tmp_path):
    src = copy_subset(demo_wavs, tmp_path / "src", words=("four", "five", "six", "seven", "eight", "nine"),
                      speakers=10)
    args = [str(src), "--untrained", "--chunk-size", "1", "--batch-size", "1"]
    clean = tmp_path / "clean"
    assert run_precompute(*args, "--out", str(clean)).returncode == 0
    out = tmp_path / "killed"
    cmd = precompute_argv("--no-progress", *args, "--out", str(out))
    rng = random.Random(20)
    chunks = out / "work" / "chunks"
    done = lambda: len(list(chunks.glob("*.npz"))) if chunks.is_dir() else 0  # noqa: E731
    killed_running, attempts = 0, 0
    while killed_running < 20 and attempts < 40:
        attempts += 1
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # a random moment: after 0.5-4 s, or sooner once 0-3 more chunks are saved (encoding is
        # fast enough that a plain delay let the whole run finish in a handful of attempts)
        deadline, enough = time.time() + rng.uniform(0.5, 4.0), done() + rng.randint(0, 3)
        while time.time() < deadline and proc.poll() is None and not (done() >= enough and done() < 60):
            time.sleep(0.02)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            killed_running += 1
        proc.wait()
        assert proc.returncode in (0, -signal.SIGKILL)
        assert proc.returncode != 0 or (out / "manifest.json").is_file()
    final = run_precompute(*args, "--out", str(out))
    assert final.returncode == 0, final.stderr
    assert cache_files(out) == cache_files(clean)
    assert killed_running == 20

"""What a careless or hostile user gives precompute (hardening round two): bad clips in any
order, metadata that collides with the cache's own columns, pipes and huge stray files,
changed sources, an --out inside the source, two runs on one --out, bad arguments, Ctrl-C twice.
Each test failed before its fix."""
from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import ROOT, copy_subset, precompute_argv, run_precompute
from dacviz_app.cache import CacheError, open_cache
from dacviz_app.viewer.app import create_app

def clip_count(out: Path) -> int:
    return open_cache(out).n_clips


# ----------------------------------------------------------------------------- 1. empty chunks
def test_chunks_whose_clips_are_all_unusable_do_not_end_the_run(demo_wavs, tmp_path):
    src = copy_subset(demo_wavs, tmp_path / "src", words=("one", "two"), speakers=3)
    junk = src / "aaa_first"  # sorts first: its whole chunk is junk
    junk.mkdir()
    for i in range(4):
        (junk / f"notes_{i}.txt").write_text("not audio\n")
    proc = run_precompute(str(src), "--untrained", "--chunk-size", "2", "--out", str(tmp_path / "c"))
    assert proc.returncode == 0, proc.stderr
    assert clip_count(tmp_path / "c") == 6 and "clips skipped : 4" in proc.stdout
    # one clip per chunk, a bad clip among them
    (src / "two" / "broken.wav").write_bytes(b"RIFF....WAVE")
    proc = run_precompute(str(src), "--untrained", "--chunk-size", "1", "--out", str(tmp_path / "c1"))
    assert proc.returncode == 0, proc.stderr
    assert clip_count(tmp_path / "c1") == 6


# ----------------------------------------------------------------------------- 3, 7, 8: a hostile CSV (conftest.hostile_cache)
def test_pipes_devices_and_huge_stray_files_are_skipped_at_once(hostile_cache):
    out, stdout, peak_mb = hostile_cache
    reasons = {Path(s["source"]).name: s["reason"] for s in open_cache(out).skipped}
    assert reasons["a.fifo"] == "not a regular file (a pipe)"
    assert reasons["zero"] == "not a regular file (a device)"
    assert reasons["stray.wav"].startswith("not readable as audio")
    assert peak_mb < 2600, f"precompute peaked at {peak_mb} MB for a 3 GB stray file"


def test_csv_columns_named_like_the_caches_own_are_kept_apart(hostile_cache):
    out, stdout, _ = hostile_cache
    cache = open_cache(out)
    columns = cache.clips
    assert columns["csv_duration_s"] == ["12.5"] * 5 and columns["csv_audio"][0] == "../../etc/passwd"
    assert sorted(columns["csv_id"]) == [f"x{i}" for i in range(5)] and columns["csv_source"] == ["evil"] * 5
    assert columns["id"] == list(range(5)) and all(d < 2 for d in columns["duration_s"])
    assert "CSV column 'duration_s' is stored as 'csv_duration_s'" in stdout
    client = create_app(out).server.test_client()  # every clip plays, every click answers
    for clip in range(cache.n_clips):
        answer = client.get(f"/audio/{clip}")
        assert answer.status_code == 200 and answer.data == cache.audio_path(clip).read_bytes()


def test_cache_files_are_readable_by_other_users(hostile_cache):
    out, _, _ = hostile_cache
    modes = {p.relative_to(out): stat.S_IMODE(p.stat().st_mode) for p in out.rglob("*") if p.is_file()}
    umask = os.umask(0)
    os.umask(umask)
    assert modes and all(mode == 0o666 & ~umask for mode in modes.values()), modes


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to act as another user")
def test_a_cache_someone_else_may_not_read_says_so(hostile_cache, tmp_path):
    """Another user (nobody) serves a cache built by root: it works; a file it may not read
    is named as a permission problem with the fix, not as a damaged cache."""
    shared = Path(tempfile.mkdtemp(dir="/tmp"))
    shared.chmod(0o755)
    try:
        copy = shared / "cache"
        shutil.copytree(hostile_cache[0], copy)
        assert open_as_nobody(copy) == "ok"
        (copy / "metrics.json").chmod(0o600)
        message = open_as_nobody(copy)
        assert "metrics.json: permission denied" in message and f"chmod -R a+rX {copy}`" in message
        assert "not valid JSON" not in message and "Rebuild" not in message
        (copy / "metrics.json").chmod(0o644)
        (copy / "arrays").chmod(0o700)  # a folder it may not enter (a umask of 077 does this)
        message = open_as_nobody(copy)
        assert "permission denied" in message and "unexpected" not in message, message
    finally:
        shutil.rmtree(shared)


def open_as_nobody(cache_dir: Path) -> str:
    """open_cache(cache_dir) in a forked child running as uid/gid 65534: 'ok' or the error."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: no exec, the interpreter is already loaded
        os.close(read)
        try:
            os.setgid(65534)
            os.setuid(65534)
            open_cache(cache_dir)
            answer = "ok"
        except CacheError as err:
            answer = str(err)
        except BaseException as err:  # noqa: BLE001 - report anything to the parent
            answer = f"unexpected {type(err).__name__}: {err}"
        os.write(write, answer.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as handle:
        answer = handle.read().decode()
    os.waitpid(pid, 0)
    return answer


# ----------------------------------------------------------------------------- 9, 10, 11
def test_a_changed_source_is_noticed(demo_wavs, tmp_path):
    src = copy_subset(demo_wavs, tmp_path / "src", words=("five", "six"), speakers=3)
    out = tmp_path / "c"
    assert run_precompute(str(src), "--untrained", "--out", str(out)).returncode == 0
    changed = sorted((src / "five").glob("*.wav"))[0]
    audio, rate = sf.read(changed)
    sf.write(changed, np.ascontiguousarray(audio[::-1]), rate)  # same length, other sound
    proc = run_precompute(str(src), "--untrained", "--out", str(out))
    assert proc.returncode == 2 and "already complete" not in proc.stdout
    assert "1 source file(s) changed on disk" in proc.stderr and changed.name in proc.stderr
    assert "--overwrite" in proc.stderr
    before = np.load(out / "arrays" / "mfcc" / "embedding.npy")
    proc = run_precompute(str(src), "--untrained", "--overwrite", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    after = np.load(out / "arrays" / "mfcc" / "embedding.npy")
    assert not np.array_equal(before, after)  # re-encoded


def test_an_out_inside_the_source_is_not_read_as_clips(demo_wavs, tmp_path):
    src = copy_subset(demo_wavs, tmp_path / "src", words=("seven", "eight"), speakers=3)
    for out in (src / "cache", src / "seven" / "cache"):
        first = run_precompute(str(src), "--untrained", "--out", str(out))
        assert first.returncode == 0, first.stderr
        again = run_precompute(str(src), "--untrained", "--out", str(out))
        assert again.returncode == 0 and "already complete" in again.stdout, again.stderr
        assert clip_count(out) == 6 and set(open_cache(out).clips["label"]) == {"seven", "eight"}
        shutil.rmtree(out)


def test_two_runs_on_one_out_directory(demo_wavs, tmp_path):
    src = copy_subset(demo_wavs, tmp_path / "src", words=("nine", "yes"), speakers=5)
    out = tmp_path / "c"
    cmd = precompute_argv("--no-progress", str(src), "--untrained",
                          "--chunk-size", "1", "--batch-size", "1", "--out", str(out))
    first = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "work" / "chunks").is_dir():
        assert time.time() < deadline and first.poll() is None, first.communicate()
        time.sleep(0.05)
    second = run_precompute(str(src), "--untrained", "--overwrite", "--out", str(out))
    assert second.returncode == 2 and "being written by another run" in second.stderr
    assert f"pid {first.pid}" in second.stderr and "Traceback" not in second.stderr
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert clip_count(out) == 10 and len(list((out / "audio").glob("*.wav"))) == 10
    assert not (out / ".lock").exists() and not (out / "work").exists()
    third = run_precompute(*cmd[3:])  # the same command: the lock was released
    assert third.returncode == 0 and "already complete" in third.stdout


# ----------------------------------------------------------------------------- 12: small things
@pytest.mark.parametrize("args, says", [
    (["--seed", "-1"], "--seed must be between 0 and 4294967295"),
    (["--seed", "4294967296"], "--seed must be between 0 and 4294967295"),
    (["--max-seconds", "nan"], "--max-seconds must be a positive number"),
    (["--max-seconds", "-1"], "--max-seconds must be a positive number"),
    (["--max-seconds", "inf"], "--max-seconds must be a positive number"),
])
def test_bad_arguments_are_refused_before_any_work(tmp_path, args, says):
    proc = run_precompute("--demo", "--demo-dir", str(tmp_path / "d"), "--untrained", *args,
                          "--out", str(tmp_path / "c"), timeout=60)
    assert proc.returncode == 2 and says in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "d").exists() and not (tmp_path / "c").exists()


def test_a_csv_with_a_huge_field_is_a_clear_error(tmp_path):
    (tmp_path / "m.csv").write_text("path,label\n" + "x" * 200_000 + ",a\n")
    proc = run_precompute(str(tmp_path / "m.csv"), "--untrained", "--out", str(tmp_path / "c"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "m.csv, line 2: not readable as CSV" in proc.stderr


def test_ctrl_c_twice_says_one_thing(demo_wavs, tmp_path):
    src = copy_subset(demo_wavs, tmp_path / "src", words=("two", "no"), speakers=6)
    out = tmp_path / "c"
    cmd = precompute_argv(str(src), "--untrained", "--chunk-size", "2",
                          "--batch-size", "1", "--out", str(out))  # with the progress bar
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not list((out / "work" / "chunks").glob("*.npz")) if (out / "work").is_dir() else True:
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Exception ignored" not in err and "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "rerun the same command to resume" in err
    assert not (out / ".lock").exists()


def test_a_file_name_that_is_not_utf8_is_read(demo_wavs, tmp_path):
    from dacviz_app.precompute.audio import load_clip

    wav = sorted((demo_wavs / "yes").glob("*.wav"))[0]
    odd = Path(os.fsdecode(bytes(tmp_path) + b"/caf\xe9.wav"))
    shutil.copyfile(wav, odd)
    assert load_clip(odd, 16000, 30.0).duration_s > 0.1


def test_the_lock_never_writes_through_a_symlink_or_into_a_foreign_folder(demo_wavs, tmp_path):
    src = copy_subset(demo_wavs, tmp_path / "src", words=("one", "two"), speakers=3)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "c"
    out.mkdir()
    (out / ".lock").symlink_to(victim)
    proc = run_precompute(str(src), "--untrained", "--out", str(out))
    assert proc.returncode == 2 and "symbolic link" in proc.stderr and victim.read_text() == "precious"
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / ".lock").write_text("someone else's")
    (foreign / "notes.txt").write_text("mine")
    proc = run_precompute(str(src), "--untrained", "--out", str(foreign))
    assert proc.returncode == 2 and "not a dacviz cache" in proc.stderr
    assert (foreign / ".lock").read_text() == "someone else's"


# ----------------------------------------------------------------------------- issue 24: CSV mistakes said as they are
def run_measured(*args: str, timeout: float = 600) -> tuple[subprocess.CompletedProcess, int]:
    """``run_precompute(*args)`` with its peak RSS in MB (a child's ru_maxrss)."""
    measure = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:]); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024, file=sys.stderr); "
               "sys.exit(p.returncode)")
    proc = subprocess.run([sys.executable, "-c", measure, *precompute_argv("--no-progress", *args)],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    *lines, peak = proc.stderr.strip().splitlines()
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout, "\n".join(lines)), int(peak)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    return proc.stderr.strip()


def write_tones(folder: Path, n: int) -> list[Path]:
    """``n`` distinct one-second WAV files (tones of different pitch)."""
    from conftest import tone

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"tone_{i}.wav" for i in range(n)]
    for i, path in enumerate(paths):
        sf.write(path, tone(1.0, 16000, 200.0 + 60 * i), 16000, subtype="PCM_16")
    return paths


def test_a_csv_column_named_twice_is_refused(tmp_path):
    """Before: the last 'path' column was used silently ('only 0 clip(s) could be encoded')."""
    csv_path = tmp_path / "clips.csv"
    csv_path.write_text("path,label,path\na.wav,x,b.wav\n")
    line = one_line_error(run_precompute(str(csv_path), "--untrained", "--out", str(tmp_path / "c")))
    assert line == (f"error: duplicate column 'path' in {csv_path} (columns 1 and 3 of its header); "
                    f"name each column once.")
    assert not (tmp_path / "c").exists()


def test_a_file_listed_on_several_rows_is_refused_with_its_lines(tmp_path):
    """Before: encoded 5 times (5 clips at distance 0 from each other); relabelled, the next run
    said the cache was 'made by another version of dacviz'."""
    first, *others = write_tones(tmp_path / "wavs", 4)
    csv_path = tmp_path / "clips.csv"
    csv_path.write_text("path,label\n" + f"{first},a\n" * 5 + "".join(f"{p},b\n" for p in others))
    line = one_line_error(run_precompute(str(csv_path), "--untrained", "--out", str(tmp_path / "c")))
    assert line == (f"error: {csv_path} lists 1 file(s) on more than one row (duplicate rows): {first} "
                    f"(5 times, lines 2, 3, 4, 5, 6). A file is one clip with one label: list it once.")
    assert not (tmp_path / "c").exists()


def test_a_csv_of_a_hundred_thousand_missing_files_ends_at_once(tmp_path):
    """Before: 100,000 rows naming no file went through the model, chunk by chunk, to 'only 0
    clip(s) could be encoded', leaving a 9 MB plan.json, a 13 MB skipped.json and 56 MB of
    chunks (a million rows: 5 min, 3.2 GB, 88 + 130 + 565 MB). Now refused after one stat of
    each, before anything is written."""
    csv_path = tmp_path / "clips.csv"
    with open(csv_path, "w") as handle:
        handle.write("path,label\n")
        handle.writelines(f"missing/{i:06d}.wav,{'ab'[i % 2]}\n" for i in range(100_000))
    started = time.perf_counter()
    proc, peak_mb = run_measured(str(csv_path), "--untrained", "--out", str(tmp_path / "c"))
    seconds = time.perf_counter() - started
    line = one_line_error(proc)
    assert line.startswith(f"error: only 0 of the 100,000 files listed in {csv_path} exist (not found: "
                           f"{tmp_path / 'missing' / '000000.wav'}, "), line
    assert "and 99,997 more); at least 5 clips are needed" in line
    assert not (tmp_path / "c").exists()
    assert seconds < 60 and peak_mb < 1500, (seconds, peak_mb)


def test_many_skipped_clips_leave_a_small_skipped_json(tmp_path):
    """5 clips and 3,000 rows naming no file: the run finishes; skipped.json groups the 3,000
    by reason (before: a 400 KB list), every one of them is in skipped_all.jsonl.gz, and the
    summary counts them."""
    import gzip
    import json

    good = write_tones(tmp_path / "wavs", 5)
    csv_path = tmp_path / "clips.csv"
    with open(csv_path, "w") as handle:
        handle.write("path,label\n")
        handle.writelines(f"{path},{'ab'[i % 2]}\n" for i, path in enumerate(good))
        handle.writelines(f"missing/{i:05d}.wav,c\n" for i in range(3_000))
    out = tmp_path / "c"
    proc = run_precompute(str(csv_path), "--untrained", "--depths", "--reconstruct", "--encoders",
                          "mfcc", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "clips skipped : 3000  (cannot open file: 3000; see skipped.json)" in proc.stdout
    skipped = json.loads((out / "skipped.json").read_text())
    assert (out / "skipped.json").stat().st_size < 5_000
    assert skipped["n_skipped"] == 3_000 and skipped["all"] == "skipped_all.jsonl.gz"
    [group] = skipped["reasons"]
    assert group["reason"] == "cannot open file" and group["count"] == 3_000
    assert group["examples"][0] == {"source": str(tmp_path / "missing" / "00000.wav"), "label": "c",
                                    "reason": "cannot open file: No such file or directory"}
    with gzip.open(out / "skipped_all.jsonl.gz", "rt") as lines:
        assert sum(1 for _ in lines) == 3_000
    cache = open_cache(out)
    assert cache.n_clips == 5 and cache.n_skipped == 3_000
    assert cache.skipped_reasons == {"cannot open file": 3_000}

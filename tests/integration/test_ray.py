"""precompute on a Ray cluster (``--ray local``, two workers): the cache is byte for byte the
single-process one, through a worker killed mid-chunk and through an interrupted run resumed; an
address where nothing listens and a cluster whose CPUs other work holds are refused in seconds."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace

import pytest

from conftest import ROOT, precompute_argv, run_precompute
from dacviz_app.cache import CachePaths
from dacviz_testkit import cache_files

# 3 voices of each word, in chunks of 9 clips (four chunks: both workers get some), fewer
# decoded clips
CLIPS, CHUNK = 36, 9
COMMAND = ["--untrained", "--device", "cpu", "--per-word", str(CLIPS // 12), "--chunk-size", str(CHUNK), "--reconstruct", "4",
           "--reconstruct-max-clips", "8", "--dnsmos-clips", "0"]  # DNSMOS: tests/unit/test_fidelity.py
RAY = ["--ray", "local", "--ray-workers", "2"]


@pytest.fixture(scope="module")
def single(demo_wavs, tmp_path_factory):
    """The single-process cache of COMMAND on the demo set (the reference)."""
    out = tmp_path_factory.mktemp("single") / "cache"
    proc = run_precompute("--demo", "--demo-dir", str(demo_wavs), *COMMAND, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def ray_precompute(demo_wavs, out, *extra) -> subprocess.Popen:
    return subprocess.Popen(precompute_argv("--no-progress", "--demo", "--demo-dir", str(demo_wavs), *COMMAND,
                                            *RAY, "--out", str(out), *extra),
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_chunks(out, n: int, proc: subprocess.Popen, timeout: float = 240) -> None:
    chunks = CachePaths(out).work_dir / "chunks"
    deadline = time.time() + timeout
    while len(list(chunks.glob("chunk_*.npz"))) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "no chunk written"
        time.sleep(0.1)


def encoder_pids(driver: int) -> list[int]:
    """The Ray actor processes of ``driver``'s local cluster encoding a chunk now (Ray titles
    them after the running method)."""
    import psutil

    found = []
    for child in psutil.Process(driver).children(recursive=True):
        try:
            if "ray::ChunkEncoder.encode_chunk" in " ".join(child.cmdline()):
                found.append(child.pid)
        except psutil.Error:
            continue
    return found


def test_two_ray_workers_make_the_single_process_cache_byte_for_byte(single, demo_wavs, tmp_path):
    out = tmp_path / "ray"
    proc = ray_precompute(demo_wavs, out)
    stdout, stderr = proc.communicate(timeout=900)
    assert proc.returncode == 0, stderr
    assert "Ray cluster local: 1 node, 2 CPUs" in stdout
    shares = stdout.split("ray: 4 chunks on 2 workers (")[1].split(")")[0]
    counts = [int(n) for n in shares.split(", ")]
    assert len(counts) == 2 and sum(counts) == 4 and min(counts) >= 1, shares  # both encoded
    assert cache_files(out) == cache_files(single)


def test_a_worker_killed_mid_chunk_is_redone_and_the_cache_is_the_same(single, demo_wavs, tmp_path):
    out = tmp_path / "ray"
    proc = ray_precompute(demo_wavs, out)
    wait_for_chunks(out, 1, proc)
    deadline = time.time() + 120
    while not encoder_pids(proc.pid):  # a worker busy with the next chunks
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.05)
    victim = encoder_pids(proc.pid)[0]
    subprocess.run(["kill", "-9", str(victim)])
    stdout, stderr = proc.communicate(timeout=900)
    assert proc.returncode == 0, stderr
    assert f"Worker PID: {victim}" in stdout + stderr and "will be retried" in stdout + stderr
    assert cache_files(out) == cache_files(single)


def test_an_interrupted_ray_run_resumes_from_its_chunks(single, demo_wavs, tmp_path):
    out = tmp_path / "ray"
    proc = ray_precompute(demo_wavs, out)
    wait_for_chunks(out, 1, proc)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "rerun the same command to resume" in stderr
    done = len(list((CachePaths(out).work_dir / "chunks").glob("chunk_*.npz")))
    assert 1 <= done < 4
    again = ray_precompute(demo_wavs, out)
    stdout, stderr = again.communicate(timeout=900)
    assert again.returncode == 0, stderr
    assert f"({CLIPS - CHUNK * done} encoded in this run)" in stdout
    assert cache_files(out) == cache_files(single)


def test_ray_without_ray_installed_says_how_to_install_it(tmp_path):
    script = ("import sys; sys.modules['ray'] = None\n"
              "from dacviz_app.precompute.cli import run\n"
              f"sys.exit(run(['--demo', '--demo-dir', {str(tmp_path / 'wavs')!r}, '--untrained', "
              f"'--out', {str(tmp_path / 'out')!r}, '--ray', 'local']))")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert proc.returncode == 2 and "pip install 'ray==2.60.0'" in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


def test_the_worker_count_never_exceeds_what_the_cluster_can_place():
    """An actor the cluster cannot place would wait forever (and its chunks with it): refused."""
    from dacviz_app.precompute.ray_encode import Cluster, RayUnavailable, device_for, worker_count

    cpus = Cluster("local", cpus=8, gpus=0, nodes=1, free_cpus=8, free_gpus=0)
    gpus = Cluster("auto", cpus=64, gpus=4, nodes=2, free_cpus=64, free_gpus=4)
    assert worker_count(cpus, "cpu", 0, threads=2) == 4 and worker_count(cpus, "cpu", 8, 2) == 8
    assert worker_count(gpus, "cuda", 0, threads=32) == 4
    with pytest.raises(RayUnavailable, match="room for 4"):
        worker_count(gpus, "cuda", 5, threads=1)
    with pytest.raises(RayUnavailable, match="room for 8"):
        worker_count(cpus, "cpu", 9, threads=1)
    assert device_for("auto", gpus) == "cuda" and device_for("auto", cpus) == "cpu"
    with pytest.raises(RayUnavailable, match="no GPU"):
        device_for("cuda", cpus)
    # what other work holds is not room: free CPUs (GPUs, and a CPU beside each GPU) are counted
    assert worker_count(replace(cpus, free_cpus=3), "cpu", 0, threads=2) == 1
    with pytest.raises(RayUnavailable, match="room for 3 now"):
        worker_count(replace(cpus, free_cpus=3), "cpu", 4, threads=1)
    with pytest.raises(RayUnavailable, match="no free CPU for a worker: 0.5 of its 8 CPUs free"):
        worker_count(replace(cpus, free_cpus=0.5), "cpu", 0, threads=1)
    with pytest.raises(RayUnavailable, match="no free GPU for a worker .each takes a GPU and a CPU.: 0 of"):
        worker_count(replace(gpus, free_gpus=0), "cuda", 0, threads=1)
    assert worker_count(replace(gpus, free_cpus=2), "cuda", 0, threads=1) == 2


def test_ray_at_an_address_where_nothing_listens_says_so_within_seconds(tmp_path):
    """Ray itself retries such an address for minutes, logging "Failed to get cluster ID" every
    ~40 s: one line instead, from a plain TCP connect."""
    with socket.socket() as bound:  # bound, never listening: nothing can answer on this port
        bound.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{bound.getsockname()[1]}"
        started = time.monotonic()
        proc = run_precompute("--demo", "--demo-dir", str(tmp_path / "wavs"), "--untrained",
                              "--out", str(tmp_path / "out"), "--ray", address, timeout=60)
        seconds = time.monotonic() - started
    assert proc.returncode == 2 and seconds < 30, (seconds, proc.stderr)
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: --ray {address}: no Ray cluster there (nothing answers at ")
    assert "`ray start --head`" in error and "--ray local" in error
    assert "Traceback" not in proc.stderr and "Failed to" not in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


# a local cluster of one CPU, held by an actor of another driver until stdin closes
HOLDER = """
import sys, time, ray
context = ray.init(num_cpus=1, include_dashboard=False, configure_logging=False)

@ray.remote(num_cpus=1)
class Holder:
    def ready(self):
        return True

holder = Holder.remote()
ray.get(holder.ready.remote())
while ray.available_resources().get("CPU", 0) >= 1:  # until the cluster's view has it taken
    time.sleep(0.1)
print(context.address_info["gcs_address"], flush=True)
sys.stdin.read()
"""
# a cluster ray.init started has token authentication: its other drivers must use it too
TOKEN = {**os.environ, "RAY_AUTH_MODE": "token"}


@pytest.fixture(scope="module")
def busy_cluster():
    """The address of a one-CPU Ray cluster whose CPU another driver's actor holds."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=ROOT, env=TOKEN)
    try:
        address = holder.stdout.readline().strip()
        assert address, "the holding driver did not start its cluster"
        yield address
    finally:
        holder.stdin.close()  # its driver ends, and ray.shutdown stops the cluster it started
        try:
            holder.wait(timeout=60)
        except subprocess.TimeoutExpired:
            holder.kill()


def test_a_ray_cluster_whose_cpus_are_all_taken_is_refused_not_waited_on(busy_cluster, demo_wavs,
                                                                          tmp_path):
    """Total resources fine, available not: no worker could be placed ("1 worker", then silence
    until killed, before): one line naming what is missing and what to do."""
    started = time.monotonic()
    proc = run_precompute("--demo", "--demo-dir", str(demo_wavs), *COMMAND, "--ray", busy_cluster,
                          "--out", str(tmp_path / "out"), timeout=150, env=TOKEN)
    seconds = time.monotonic() - started
    assert proc.returncode == 2 and seconds < 120, (seconds, proc.stderr)
    assert "worker, one model each" not in proc.stdout
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: the Ray cluster has no free CPU for a worker: 0 of its 1 CPUs free, other work "
        "holds the rest. Wait for the cluster's other work to finish, add nodes, ask for fewer "
        "--ray-workers, or use --ray local."), proc.stderr
    assert "Traceback" not in proc.stderr


def test_workers_the_cluster_does_not_place_in_time_are_given_up(busy_cluster):
    """The CPUs counted free may be taken before the workers are placed: their reservation has a
    deadline (PLACE_TIMEOUT_S; 2 s here), then one clear error, and the reservation is removed."""
    script = ("import sys, ray\n"
              "from dacviz_app.precompute.ray_encode import RayUnavailable, connect, reserve\n"
              "connect(sys.argv[1])\n"
              "try:\n    reserve(ray, 1, 'cpu', timeout=2)\n"
              "except RayUnavailable as err:\n    print(err)\n"
              "    print(len([g for g in ray.util.placement_group_table().values()\n"
              "               if g['state'] != 'REMOVED']))\n")
    proc = subprocess.run([sys.executable, "-c", script, busy_cluster], capture_output=True,
                          text=True, cwd=ROOT, env=TOKEN, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "the Ray cluster did not give 1 worker a free CPU each within 2 s: other work holds them. "
        "Wait for the cluster's other work to finish, add nodes, ask for fewer --ray-workers, or "
        "use --ray local.", "0"], proc.stdout

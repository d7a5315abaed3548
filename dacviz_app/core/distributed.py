"""Precompute's encoding on a Ray cluster (``precompute.py ... --ray local|auto|ADDRESS``).

The unit of work is the plan's encode chunk, as on one machine (``pipeline.encode_all``): each
Ray worker is an actor holding one DAC model (one GPU each where the cluster has GPUs) that
prepares its chunk's clips, encodes them with ``pipeline._encode_chunk`` and writes the chunk
atomically into ``--out``'s ``work/chunks/``, which every node must see (a shared filesystem:
NFS, Lustre, GPFS...; checked at start on every node, a clear error if one cannot). The driver
only hands out chunks, shows clips/s across the cluster, and then assembles the chunks and runs
the downstream steps exactly as on one machine.

Same guarantees as one machine: a re-run skips the chunks on disk; a worker that dies mid-chunk
(killed, out of memory) is restarted by Ray and its chunk is encoded again (``max_restarts``,
``max_task_retries``), and since a chunk file appears only by an atomic rename, no half chunk
survives (the half-written files of a killed worker are removed when the workers are done).
Each actor runs torch with the driver's thread count: DAC's float rounding depends on it
(1 against 2 threads moved z by up to 2.4e-7 here), so on the driver's machine the cache is
byte-identical to the single-process one; nodes with other processors may round differently.

Ray is optional (the ``ray`` extra, requirements-test.txt): without it ``--ray`` says how to
install it.
"""
from __future__ import annotations

import math
import os
import sys
import time
import uuid
from dataclasses import dataclass, replace
from typing import Callable

from .cache import CachePaths, atomic_save_npz, atomic_write_bytes, remove_partial_files
from .sources import ClipSource

RAY_PIN = "ray==2.60.0"
RESTARTS = 3  # a worker that dies is restarted (its chunk retried) up to this many times in all
CHECK_TIMEOUT_S = 120.0


class RayUnavailable(Exception):
    """--ray without Ray installed, or a cluster that cannot run the job; the message says what to do."""


@dataclass(frozen=True)
class Cluster:
    """What the driver found: where it connected, its CPUs, GPUs and alive nodes."""

    address: str
    cpus: float
    gpus: float
    nodes: int

    def describe(self) -> str:
        return (f"Ray cluster {self.address}: {self.nodes} node{'s' if self.nodes != 1 else ''}, "
                f"{self.cpus:g} CPUs, {self.gpus:g} GPUs")


def import_ray():
    try:
        import ray
    except ImportError:
        raise RayUnavailable(f"--ray needs Ray, which is not installed here: "
                             f"pip install '{RAY_PIN}'  (or pip install -e '.[ray]'), on every node")
    return ray


def connect(address: str, workers: int | None = None) -> Cluster:
    """Start a local cluster (``local``: ``workers`` CPUs, default all) or join one (``auto``:
    the one ``ray start`` started on this node; else its ``ADDRESS``)."""
    ray = import_ray()
    if not ray.is_initialized():
        options = {"include_dashboard": False, "log_to_driver": True, "configure_logging": False}
        if address == "local":
            ray.init(num_cpus=workers or os.cpu_count() or 1, **options)
        else:
            try:
                ray.init(address=address, **options)
            except ConnectionError as err:
                raise RayUnavailable(f"--ray {address}: no Ray cluster there ({err}). Start one with "
                                     f"`ray start --head` (and `ray start --address=HEAD:6379` on the "
                                     f"other nodes), or use --ray local.")
    resources = ray.cluster_resources()
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    return Cluster(address=address, cpus=float(resources.get("CPU", 0)),
                   gpus=float(resources.get("GPU", 0)), nodes=len(nodes))


def worker_count(cluster: Cluster, device: str, requested: int, threads: int) -> int:
    """How many actors: ``requested`` (0: one per GPU on a GPU run, else one per ``threads``
    CPUs), never more than the cluster can place (each takes a GPU, or a CPU): an actor that
    cannot be placed would wait forever, and its chunks with it."""
    room = int(cluster.gpus if device == "cuda" else cluster.cpus)
    if room < 1:
        raise RayUnavailable(f"the Ray cluster has no free {'GPU' if device == 'cuda' else 'CPU'} "
                             f"for a worker")
    wanted = requested or (room if device == "cuda" else max(1, room // max(1, threads)))
    if wanted > room:
        raise RayUnavailable(f"--ray-workers {wanted}: the cluster has room for {room} "
                             f"({'one GPU' if device == 'cuda' else 'one CPU'} each)")
    return wanted


def device_for(requested: str, cluster: Cluster) -> str:
    """--device on a cluster: auto -> cuda where the cluster has GPUs; cuda without any -> error."""
    if requested == "cuda" and cluster.gpus < 1:
        raise RayUnavailable("--device cuda was asked for, but the Ray cluster has no GPU.")
    if requested == "auto":
        return "cuda" if cluster.gpus >= 1 else "cpu"
    return requested


# ----------------------------------------------------------------------------- on the workers
class ChunkEncoder:
    """One Ray worker: one model, and the chunks it is handed (made a Ray actor by ``_actor``)."""

    def __init__(self, config, sources: list[str], n_planned: int, threads: int):
        import torch

        from .encoders import make_encoder
        from .models import MODEL_CONFIGS
        from .pipeline import BatchLimit, load_encoder

        torch.set_num_threads(threads)  # DAC's float rounding depends on it: the driver's count
        if not config.weights.untrained:  # the very file the driver chose, on this node too
            from .encode import sha256_file

            if sha256_file(config.weights.path) != config.weights.sha256:
                raise RuntimeError(f"{config.weights.path} on this node is not the driver's weights "
                                   f"file (sha256 differs)")
        self.config, self.sources, self.n_planned = config, sources, n_planned
        self.paths = CachePaths(config.out)
        self.sample_rate = MODEL_CONFIGS[config.model_type]["sample_rate"]
        self.model = load_encoder(config)
        self.others = [make_encoder(spec, config.device) for spec in config.encoders]
        self.limit = BatchLimit(samples=int(config.batch_seconds * self.sample_rate),
                                clips=config.batch_size)

    def encode_chunk(self, chunk: int, indices: list[int]) -> tuple[int, int, float]:
        """Encode the plan's clips ``indices`` (chunk ``chunk``) and write the chunk atomically.
        Returns (chunk, clips, seconds)."""
        import contextlib
        import itertools

        from .loading import prepared_clips
        from .pipeline import _encode_chunk

        started = time.perf_counter()
        if self.paths.chunk(chunk).is_file():  # a retry after the chunk was written
            return chunk, len(indices), 0.0
        with contextlib.closing(prepared_clips(self.sources, indices, self.sample_rate,
                                               self.config.max_seconds, self.paths,
                                               self.config.workers)) as stream:
            prepared = list(itertools.islice(stream, len(indices)))
        arrays = _encode_chunk(self.model, prepared, self.n_planned, self.config, self.paths,
                               self.limit, lambda text: print(text, flush=True), self.others)
        atomic_save_npz(self.paths.chunk(chunk), **arrays)
        return chunk, len(indices), time.perf_counter() - started

    def pid(self) -> int:
        return os.getpid()


def _sees(path: str, token: str | None) -> tuple[str, bool]:
    """On a node: (its host name, whether it reads ``token`` in ``path`` and can write beside
    it; None: whether it can read ``path`` at all)."""
    import socket

    host = socket.gethostname()
    try:
        with open(path, "rb") as handle:
            if token is not None and handle.read() != token.encode():
                return host, False
        if token is not None:
            beside = f"{path}-{host}-{os.getpid()}"
            with open(beside, "wb") as handle:
                handle.write(b"ok")
            os.unlink(beside)
        return host, True
    except OSError:
        return host, False


def check_shared(paths: CachePaths, sources: list[str]) -> None:
    """Every alive node must see --out (a token the driver writes there) and the first clip;
    else RayUnavailable naming the nodes that cannot (rather than a hang or a worker's error)."""
    ray = import_ray()
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    token = uuid.uuid4().hex
    probe = paths.work_dir / f"ray-probe-{token}"
    atomic_write_bytes(probe, token.encode())
    sees = ray.remote(num_cpus=0)(_sees)
    nodes = [node["NodeID"] for node in ray.nodes() if node.get("Alive")]

    def on_every_node(path: str, expected: str | None) -> list[str]:
        checks = [sees.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False))
                  .remote(path, expected) for node in nodes]
        answered, silent = ray.wait(checks, num_returns=len(checks), timeout=CHECK_TIMEOUT_S)
        if silent:
            raise RayUnavailable(f"{len(silent)} of {len(checks)} Ray node(s) did not answer within "
                                 f"{CHECK_TIMEOUT_S:g} s (is dacviz installed there, with this Python?)")
        try:
            return sorted({host for host, ok in ray.get(answered) if not ok})
        except ray.exceptions.RayError as err:
            raise RayUnavailable(f"a Ray node could not run dacviz's check: {str(err).splitlines()[0]}")

    try:
        blind = on_every_node(str(probe), token)
    finally:
        probe.unlink(missing_ok=True)
    if blind:
        raise RayUnavailable(f"node(s) {', '.join(blind)} cannot read and write {paths.root}: --out must "
                             f"be on a filesystem every node shares (NFS, Lustre, GPFS...), at the same "
                             f"path, writable by the Ray workers.")
    blind = on_every_node(sources[0], None) if sources else []
    if blind:
        raise RayUnavailable(f"node(s) {', '.join(blind)} cannot read {sources[0]}: the clips must be "
                             f"on a filesystem every node shares, at the same path.")


def _actor(ray, device: str):
    """ChunkEncoder as a Ray actor: one GPU each on a GPU run, else one CPU; restarted (and its
    chunk retried) when its process dies."""
    return ray.remote(num_cpus=1, num_gpus=1 if device == "cuda" else 0, max_restarts=RESTARTS,
                      max_task_retries=RESTARTS)(ChunkEncoder)


def ray_encode_all(clips: list[ClipSource], config, paths: CachePaths, progress: bool = True,
                   say: Callable[[str], None] = print) -> tuple[int, float]:
    """``pipeline.encode_all`` on the Ray cluster ``config.ray`` names: every chunk not yet on
    disk, one actor per worker. Returns (planned clips of the chunks done now, seconds from the
    first chunk handed out, the workers' model loading included).

    However it ends (done, Ctrl-C, a chunk that failed for good), every worker is killed and the
    half-written files of a killed one removed before it returns, so nothing writes into --out
    once the run has let go of its lock."""
    import torch

    n_chunks = math.ceil(len(clips) / config.chunk_size)
    todo = [c for c in range(n_chunks) if not paths.chunk(c).is_file()]
    if not todo:
        return 0, 0.0
    ray = import_ray()
    cluster = connect(config.ray, config.ray_workers or None)
    sources = [c.path for c in clips]
    check_shared(paths, sources)
    threads = torch.get_num_threads()
    n_workers = min(len(todo), worker_count(cluster, config.device, config.ray_workers, threads))
    say(f"{cluster.describe()} · {n_workers} worker{'s' if n_workers != 1 else ''}, one model each")
    actor = _actor(ray, config.device)
    remote_config = replace(config, ray=None)
    workers = [actor.remote(remote_config, sources, len(clips), threads) for _ in range(n_workers)]
    try:
        return _hand_out(ray, workers, todo, clips, config, progress, say)
    finally:
        for worker in workers:
            ray.kill(worker, no_restart=True)
        _wait_dead(ray, workers)
        remove_partial_files(paths.root)


def _hand_out(ray, workers: list, todo: list[int], clips: list, config, progress: bool,
              say: Callable[[str], None]) -> tuple[int, float]:
    """Give each worker a chunk, and the next one as it finishes; a bar of clips/s."""
    from tqdm import tqdm

    chunk_indices = {c: list(range(c * config.chunk_size, min(len(clips), (c + 1) * config.chunk_size)))
                     for c in todo}
    done_clips = len(clips) - sum(len(v) for v in chunk_indices.values())
    pending, queue = {}, list(todo)
    chunks_by_worker = [0] * len(workers)
    encoded_now = 0
    started = time.perf_counter()
    with tqdm(total=len(clips), initial=done_clips, unit="clip", desc="encoding (ray)",
              disable=not progress, file=sys.stderr, dynamic_ncols=True) as bar:
        def hand_out(number: int) -> None:
            if queue:
                chunk = queue.pop(0)
                pending[workers[number].encode_chunk.remote(chunk, chunk_indices[chunk])] = (number, chunk)

        for number in range(len(workers)):
            hand_out(number)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            number, chunk = pending.pop(ready[0])
            try:
                _chunk, n, _seconds = ray.get(ready[0])
            except ray.exceptions.RayError as err:
                raise RayUnavailable(f"chunk {chunk} failed on the Ray cluster after {RESTARTS} "
                                     f"restarts of its worker: {str(err).splitlines()[0][:300]}. "
                                     f"Finished chunks are kept: rerun the same command to resume.")
            chunks_by_worker[number] += 1
            encoded_now += n
            bar.update(n)
            hand_out(number)
    seconds = time.perf_counter() - started
    say(f"ray: {len(todo)} chunk{'s' if len(todo) != 1 else ''} on {len(workers)} worker"
        f"{'s' if len(workers) != 1 else ''} ({', '.join(map(str, chunks_by_worker))}), "
        f"{encoded_now / seconds if seconds > 0 else 0:.1f} clips/s across the cluster "
        f"(the workers' model loading included)")
    return encoded_now, seconds


def _wait_dead(ray, workers: list, timeout: float = 30.0) -> None:
    """Until every killed worker is gone (its pending call answers with an error)."""
    probes = [worker.pid.remote() for worker in workers]
    deadline = time.monotonic() + timeout
    for probe in probes:
        try:
            ray.get(probe, timeout=max(0.1, deadline - time.monotonic()))
        except Exception:  # noqa: BLE001 - dead (what we wait for) or not answering in time
            pass

"""Precompute's encoding on a Ray cluster (``precompute.py ... --ray local|auto|ADDRESS``).

The unit of work is the plan's encode chunk, as on one machine (``pipeline.encode_all``): each
Ray worker is an actor holding one DAC model (one GPU each where the cluster has GPUs) that
prepares its chunk's clips, encodes them with ``pipeline.encode_chunk`` and writes the chunk
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

Never left waiting: an address where nothing listens is refused within ``CONNECT_TIMEOUT_S``
(Ray itself would retry for minutes), the worker count is what the cluster has FREE (another job's
CPUs and GPUs are not), and the workers' CPUs (GPUs) are reserved within ``PLACE_TIMEOUT_S`` (a
placement group) or the run stops, saying so, before any model is loaded.

Ray is optional (the ``ray`` extra, requirements-test.txt): without it ``--ray`` says how to
install it.
"""
from __future__ import annotations

import math
import os
import socket
import sys
import time
import uuid
from dataclasses import dataclass, replace
from typing import Callable

from dacviz_app.cache import CachePaths, atomic_save_npz, atomic_write_bytes, remove_partial_files
from dacviz_app.precompute.sources import ClipSource

RAY_PIN = "ray==2.60.0"
RESTARTS = 3  # a worker that dies is restarted (its chunk retried) up to this many times in all
CHECK_TIMEOUT_S = 120.0
CONNECT_TIMEOUT_S = 5.0  # a cluster's address must accept a TCP connection within this
PLACE_TIMEOUT_S = 60.0  # the workers' CPUs (GPUs) must be reserved on the cluster within this
NO_CLUSTER_HELP = ("Start one with `ray start --head` (and `ray start --address=HEAD:6379` on the "
                   "other nodes), or use --ray local.")
BUSY_HELP = ("Wait for the cluster's other work to finish, add nodes, ask for fewer --ray-workers, "
             "or use --ray local.")


class RayUnavailable(Exception):
    """--ray without Ray installed, or a cluster that cannot run the job; the message says what to do."""


@dataclass(frozen=True)
class Cluster:
    """What the driver found: where it connected, its CPUs and GPUs (all of them, and those no
    other work holds now) and alive nodes."""

    address: str
    cpus: float
    gpus: float
    nodes: int
    free_cpus: float
    free_gpus: float

    def describe(self) -> str:
        def count(total: float, free: float, kind: str) -> str:
            return f"{total:g} {kind}s" + (f" ({free:g} free)" if free < total else "")

        return (f"Ray cluster {self.address}: {self.nodes} node{'s' if self.nodes != 1 else ''}, "
                f"{count(self.cpus, self.free_cpus, 'CPU')}, {count(self.gpus, self.free_gpus, 'GPU')}")


def import_ray():
    try:
        import ray
    except ImportError:
        raise RayUnavailable(f"--ray needs Ray, which is not installed here: "
                             f"pip install '{RAY_PIN}'  (or pip install -e '.[ray]'), on every node")
    return ray


def connect(address: str, workers: int | None = None) -> Cluster:
    """Start a local cluster (``local``: ``workers`` CPUs, default all) or join one (``auto``:
    the one ``ray start`` started on this node; else its ``ADDRESS``): RayUnavailable, within
    ``CONNECT_TIMEOUT_S``, where nothing listens there."""
    ray = import_ray()
    if not ray.is_initialized():
        options = {"include_dashboard": False, "log_to_driver": True, "configure_logging": False}
        if address == "local":
            ray.init(num_cpus=workers or os.cpu_count() or 1, **options)
        else:
            try:
                _listening(address)
                ray.init(address=address, **options)
            except ConnectionError as err:
                raise RayUnavailable(f"--ray {address}: no Ray cluster there ({err}). {NO_CLUSTER_HELP}")
    resources, free = ray.cluster_resources(), ray.available_resources()
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    return Cluster(address=address, cpus=float(resources.get("CPU", 0)),
                   gpus=float(resources.get("GPU", 0)), nodes=len(nodes),
                   free_cpus=float(free.get("CPU", 0)), free_gpus=float(free.get("GPU", 0)))


def _listening(address: str) -> None:
    """ConnectionError unless something accepts a TCP connection, within ``CONNECT_TIMEOUT_S``, at
    the host:port ``ray.init(address=address)`` dials (Ray's own reading of ``auto`` and of this
    host's names: 127.0.0.1 becomes this host's address). Ray itself retries such an address for
    minutes, logging every ~40 s; a Ray Client address (``ray://``) is left to Ray."""
    if address.startswith("ray://"):
        return
    from ray._private.services import canonicalize_bootstrap_address

    dialled = canonicalize_bootstrap_address(address)  # ConnectionError: no cluster found for auto
    host, _, port = dialled.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except TimeoutError:
        raise ConnectionError(f"nothing answers at {dialled} within {CONNECT_TIMEOUT_S:g} s")
    except OSError as err:
        raise ConnectionError(f"nothing answers at {dialled}: {err.strerror or err}")


def worker_count(cluster: Cluster, device: str, requested: int, threads: int) -> int:
    """How many actors: ``requested`` (0: one per free GPU on a GPU run, else one per ``threads``
    free CPUs), never more than the cluster can place now (each takes a CPU, and a GPU on a GPU
    run, that no other work holds): an actor that cannot be placed would wait, and its chunks
    with it."""
    gpu = device == "cuda"
    room = int(min(cluster.free_gpus, cluster.free_cpus) if gpu else cluster.free_cpus)
    if room < 1:
        raise RayUnavailable(_no_room(cluster, gpu))
    wanted = requested or (room if gpu else max(1, room // max(1, threads)))
    if wanted > room:
        raise RayUnavailable(f"--ray-workers {wanted}: the cluster has room for {room} now "
                             f"({'one GPU and one CPU' if gpu else 'one CPU'} each, free: "
                             f"{cluster.free_cpus:g} of {cluster.cpus:g} CPUs, {cluster.free_gpus:g} "
                             f"of {cluster.gpus:g} GPUs)")
    return wanted


def _no_room(cluster: Cluster, gpu: bool) -> str:
    """Why not even one worker fits: the cluster has no such device, or other work holds them."""
    kind, total, free = ("GPU", cluster.gpus, cluster.free_gpus) if gpu and cluster.free_gpus < 1 \
        else ("CPU", cluster.cpus, cluster.free_cpus)
    if total < 1:
        return f"the Ray cluster has no {kind} for a worker"
    each = " (each takes a GPU and a CPU)" if gpu else ""
    return (f"the Ray cluster has no free {kind} for a worker{each}: {free:g} of its {total:g} "
            f"{kind}s free, other work holds the rest. {BUSY_HELP}")


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

        from dacviz_app.precompute.encoders import make_encoder
        from dacviz_app.cache.models import MODEL_CONFIGS
        from dacviz_app.precompute.encode_run import BatchLimit, load_encoder

        torch.set_num_threads(threads)  # DAC's float rounding depends on it: the driver's count
        if not config.weights.untrained:  # the very file the driver chose, on this node too
            from dacviz_app.precompute.dac_encode import sha256_file

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

        from dacviz_app.precompute.loading import prepared_clips
        from dacviz_app.precompute.encode_run import encode_chunk

        started = time.perf_counter()
        if self.paths.chunk(chunk).is_file():  # a retry after the chunk was written
            return chunk, len(indices), 0.0
        with contextlib.closing(prepared_clips(self.sources, indices, self.sample_rate,
                                               self.config.max_seconds, self.paths,
                                               self.config.workers)) as stream:
            prepared = list(itertools.islice(stream, len(indices)))
        arrays = encode_chunk(self.model, prepared, self.n_planned, self.config, self.paths,
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


def _takes(device: str) -> dict[str, int]:
    """What one worker takes on the cluster: a CPU, and a GPU on a GPU run."""
    return {"CPU": 1, "GPU": 1} if device == "cuda" else {"CPU": 1}


def _actor(ray, device: str):
    """ChunkEncoder as a Ray actor taking ``_takes(device)``; restarted (and its chunk retried)
    when its process dies."""
    takes = _takes(device)
    return ray.remote(num_cpus=takes["CPU"], num_gpus=takes.get("GPU", 0), max_restarts=RESTARTS,
                      max_task_retries=RESTARTS)(ChunkEncoder)


def reserve(ray, n_workers: int, device: str, timeout: float = PLACE_TIMEOUT_S):
    """A placement group of ``n_workers`` bundles of ``_takes(device)``, spread over the nodes,
    once the cluster has placed it; RayUnavailable (the group removed) if it has not within
    ``timeout`` s: the free resources counted a moment ago were taken since, and the workers
    would wait for them, silently."""
    from ray.util.placement_group import placement_group, remove_placement_group

    group = placement_group([_takes(device)] * n_workers, strategy="SPREAD")
    if not group.wait(timeout_seconds=timeout):
        remove_placement_group(group)
        what = "a free GPU and CPU" if device == "cuda" else "a free CPU"
        raise RayUnavailable(f"the Ray cluster did not give {n_workers} worker"
                             f"{'s' if n_workers != 1 else ''} {what} each within {timeout:g} s: "
                             f"other work holds them. {BUSY_HELP}")
    return group


def ray_encode_all(clips: list[ClipSource], config, paths: CachePaths, progress: bool = True,
                   say: Callable[[str], None] = print) -> tuple[int, float]:
    """``pipeline.encode_all`` on the Ray cluster ``config.ray`` names: every chunk not yet on
    disk, one actor per worker, each in its bundle of a placement group (``reserve``). Returns
    (planned clips of the chunks done now, seconds from the first chunk handed out, the workers'
    model loading included).

    However it ends (done, Ctrl-C, a chunk that failed for good), every worker is killed, the
    reservation given back and the half-written files of a killed one removed before it returns,
    so nothing writes into --out once the run has let go of its lock."""
    import torch

    n_chunks = math.ceil(len(clips) / config.chunk_size)
    todo = [c for c in range(n_chunks) if not paths.chunk(c).is_file()]
    if not todo:
        return 0, 0.0
    ray = import_ray()
    from ray.util.placement_group import remove_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    cluster = connect(config.ray, config.ray_workers or None)
    sources = [c.path for c in clips]
    check_shared(paths, sources)
    threads = torch.get_num_threads()
    n_workers = min(len(todo), worker_count(cluster, config.device, config.ray_workers, threads))
    group = reserve(ray, n_workers, config.device)
    say(f"{cluster.describe()} · {n_workers} worker{'s' if n_workers != 1 else ''}, one model each")
    actor = _actor(ray, config.device)
    remote_config = replace(config, ray=None)
    workers = []
    try:
        for bundle in range(n_workers):
            placed = PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=bundle)
            workers.append(actor.options(scheduling_strategy=placed)
                           .remote(remote_config, sources, len(clips), threads))
        return _hand_out(ray, workers, todo, clips, config, progress, say)
    finally:
        for worker in workers:
            ray.kill(worker, no_restart=True)
        _wait_dead(ray, workers)
        remove_placement_group(group)
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

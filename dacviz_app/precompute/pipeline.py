"""The precompute pipeline: clips -> encoded chunks -> arrays, projections, neighbours, metrics.

Resumable at two levels. Encoding runs in fixed chunks of the clip plan (``chunk_size`` clips,
in plan order); each finished chunk is saved atomically under ``work/chunks`` and never redone.
Every later stage writes one file per result and skips a file that already exists. All
results are a deterministic function of the plan (clip list, model, weights, parameters), so
an interrupted run resumed with the same command ends with the same cache as a clean run.
The manifest is written last; then ``work/`` is removed.
"""
from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Callable, Iterator

from dacviz_app import cache as cache_format
from dacviz_app.cache import CachePaths
from dacviz_app.precompute.config import MIN_CLIPS, PrecomputeConfig, PrecomputeError, RunSummary
from dacviz_app.precompute.downstream import assemble, finish_cache
from dacviz_app.precompute.encode_run import encode_all, encode_record, precision_check
from dacviz_app.precompute.interrupt import raise_if_interrupted
from dacviz_app.precompute.plan import (column_notes, make_plan, prepare_out_dir,
                                        refuse_foreign_directory, refuse_missing_sources,
                                        skip_counts)
from dacviz_app.cache.encode_record import describe_settings
from dacviz_app.precompute.sources import ClipSource
from dacviz_app.precompute.summary import measures_tables




@contextlib.contextmanager
def locked(paths: CachePaths, command: str, say: Callable[[str], None]) -> Iterator[None]:
    """Hold the cache directory's lock (``cache.DirectoryLock``) for a run that writes it;
    refuses a foreign directory first. Another live run -> PrecomputeError."""
    refuse_foreign_directory(paths)
    try:
        lock = cache_format.DirectoryLock(paths.root, command).acquire()
    except cache_format.CacheLocked as err:
        raise PrecomputeError(str(err)) from None
    if lock.warning:
        say(f"warning: {lock.warning}")
    try:
        yield
    finally:
        lock.release()


# ----------------------------------------------------------------------------- run
def run_precompute(clips: list[ClipSource], config: PrecomputeConfig,
                   say: Callable[[str], None] = print, progress: bool = True) -> RunSummary:
    """Build (or finish) the cache for ``clips`` under ``config.out``."""
    started = time.perf_counter()
    paths = CachePaths(Path(config.out))
    plan = make_plan(clips, config)
    refuse_missing_sources(plan, config.source)
    with locked(paths, config.command, say):
        complete = prepare_out_dir(paths, plan, config.overwrite)
        plan_id = plan["plan_id"]
        del plan  # its list of every clip (~200 MB for a million) is written; free it for the run
        newly, encode_seconds = 0, 0.0
        if not complete:
            if config.ray:
                from dacviz_app.precompute.ray_encode import ray_encode_all as encode_chunks
            else:
                encode_chunks = encode_all
            newly, encode_seconds = encode_chunks(clips, config, paths, progress, say)
            raise_if_interrupted()
            data = assemble(clips, config, paths)
            n = len(data["columns"]["label"])
            if n < MIN_CLIPS:
                raise PrecomputeError(f"only {n} clip(s) could be encoded "
                                      f"({skip_counts(data['skipped'])}; see {paths.skipped}); "
                                      f"at least {MIN_CLIPS} are needed.")
            encode = encode_record(config)
            if config.precision != "fp32" or config.compile:
                encode["agreement"] = precision_check(clips, data["plan_index"], data["embeddings"]["z"],
                                                      config, paths, say)
            raise_if_interrupted()
            finish_cache(data["embeddings"], data["columns"], config, plan_id,
                         sum(data["skipped"].values()), paths, say, encode)
    opened = cache_format.open_cache(paths.root)
    return RunSummary(cache_dir=str(paths.root), n_planned=len(clips), n_encoded=opened.n_clips,
                      n_skipped=opened.n_skipped, skipped_reasons=opened.skipped_reasons,
                      newly_encoded=newly,
                      encode_seconds=encode_seconds, total_seconds=time.perf_counter() - started,
                      device=config.device, weights=config.weights.describe(),
                      untrained=config.weights.untrained, already_complete=complete,
                      metrics_rows=opened.metrics["rows"], notes=column_notes(clips),
                      knn_accuracy_k=opened.metrics.get("params", {}).get("knn_accuracy_k"),
                      encoder=describe_settings(opened.encode_settings),
                      measures=measures_tables(opened))



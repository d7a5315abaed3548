"""The precompute pipeline: clips -> encoded chunks -> arrays; depths and decoded audio from the
stored codes; neighbours, projections, metrics, probes, fidelity; the manifest.

Every result has a key, the hash of what it is made from (``inputs``), recorded in inputs.json
once it is written. A run computes each result whose recorded key is not the one its settings
give and keeps the others: so an interrupted run resumes where it stopped, and a rerun with other
settings of the same clips (depths, perplexity, encoders, decoded depths, weights) computes only
what they change (encoding again, when it must, from the cache's own audio: ``encode_again``).
Encoding a new collection runs in fixed chunks of the plan (``chunk_size`` clips, in plan order),
each saved atomically under ``work/chunks`` and never redone. The manifest is written last; then
``work/`` and the results of settings no longer asked for are removed.
"""
from __future__ import annotations

import contextlib
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator

from dacviz_app import cache as cache_format
from dacviz_app.cache import CachePaths
from dacviz_app.precompute.config import MIN_CLIPS, PrecomputeConfig, PrecomputeError, RunSummary
import numpy as np

from dacviz_app.cache.representations import DAC_BASE, depth_name
from dacviz_app.precompute.dac_encode import MODEL_CONFIGS, driver_device, load_dac
from dacviz_app.precompute.downstream import (StoredEmbeddings, Steps, assemble, encoded_representations,
                                              finish_cache, neighbour_search)
from dacviz_app.precompute.encode_again import encode_again, plan_indices
from dacviz_app.precompute.encode_run import (encode_all, encode_record, load_encoder, precision_check,
                                              reconstructed_plan_indices, representations_of)
from dacviz_app.precompute.from_codes import decode_step, depths_step, quantizer_step
from dacviz_app.precompute.inputs import (Record, clips_key, dac_key, decode_keys, digest, downstream_keys,
                                          encoder_keys)
from dacviz_app.precompute.memory import give_back
from dacviz_app.precompute.precision import precision_mode
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
    """Build, finish or update the cache for ``clips`` under ``config.out``: compute every
    result whose inputs (``inputs``) are not those recorded, keep the others."""
    started = time.perf_counter()
    paths = CachePaths(Path(config.out))
    plan = make_plan(clips, config)
    refuse_missing_sources(plan, config.source)
    representations = representations_of(config)
    embedding_keys = encoder_keys(plan, representations)
    decoding = decode_keys(plan, config.reconstruct, config.reconstruct_max_clips)
    root, dac = clips_key(plan), dac_key(plan)
    n_planned = len(plan["clips"])
    with locked(paths, config.command, say):
        complete = prepare_out_dir(paths, plan, config.overwrite)
        if complete and not Record(paths).holds("quantizer", dac):
            complete = False  # made before the quantizer tables: this run adds them, keeps the rest
        plan_id = plan["plan_id"]
        del plan  # its list of every clip (~200 MB for a million) is written; free it for the run
        newly, encode_seconds, computed, model = 0, 0.0, [], None
        if not complete:
            record = Record(paths)
            keys = {"clips": root, "quantizer": dac, **{f"embedding:{rep}": key for rep, key in embedding_keys.items()},
                    **{f"decode:{q}": key for q, key in decoding.items()}}
            direct = encoded_representations(config)
            steps = Steps(keys, record)
            stale = [rep for rep in direct if not steps.fresh(f"embedding:{rep}", paths.array(rep, "embedding"))]
            encode = previous_encode_record(paths)
            newly, encode_seconds, model = encode_what_changed(clips, config, paths, steps, stale,
                                                               embedding_keys, progress, say)
            columns = cache_format.read_clip_columns(paths)
            if any(rep in stale for rep in DAC_BASE) or encode is None:
                encode = encode_record(config)
                if config.precision != "fp32" or config.compile:
                    z = np.load(paths.array("z", "embedding"))
                    encode["agreement"] = precision_check(clips, plan_indices(columns["audio"]), z,
                                                          config, paths, say)
            for rep in stale:
                steps.done(f"embedding:{rep}")
            raise_if_interrupted()
            give_back()  # the encoders' batches, before DAC's decoder
            from_codes_steps(config, paths, columns, n_planned, steps, say, model)
            model = None
            give_back()  # DAC itself and the decoder's groups, before the downstream steps
            raise_if_interrupted()
            downstream = downstream_keys(
                embedding_keys, knn_k=min(config.knn_k, len(columns["label"]) - 1), seed=config.seed,
                perplexity=config.perplexity, depth_reps=depth_representations(representations),
                decode=decoding, fidelity_params={"dnsmos_clips": config.dnsmos_clips, "pesq": config.pesq},
                search=neighbour_search(config, len(columns["label"])))
            computed = steps.computed
            finish_cache(StoredEmbeddings(paths, list(representations)), columns, config, plan_id,
                         skipped_total(paths), paths, say, encode, {**keys, **downstream}, record, computed)
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
                      measures=measures_tables(opened), computed=computed)


def encode_what_changed(clips: list[ClipSource], config: PrecomputeConfig, paths: CachePaths, steps: Steps,
                        stale: list[str], embedding_keys: dict[str, str], progress: bool,
                        say: Callable[[str], None]) -> tuple[int, float, object]:
    """Encode what the record does not hold: a new collection (or its unfinished chunks) from the
    sources, chunk by chunk, then assembled; else only the ``stale`` representations, again over
    the cache's own audio (``encode_again``). Returns (clips encoded, seconds, DAC when this run
    loaded it eagerly for the chunks, for the codes' steps to reuse; else None)."""
    if steps.fresh("clips", paths.clips):
        if not stale:
            return 0, 0.0, None
        here = driver_device(config.device, config.ray)
        columns = cache_format.read_clip_columns(paths)
        newly, seconds = encode_again(stale, embedding_keys, replace(config, device=here), paths,
                                      columns["audio"], progress, say)
        return newly, seconds, None
    drop_stale_chunks(paths, digest({rep: embedding_keys[rep] for rep in encoded_representations(config)}))
    model = None
    if config.ray:
        from dacviz_app.precompute.ray_encode import ray_encode_all

        newly, seconds = ray_encode_all(clips, config, paths, progress, say)
    else:  # one DAC for the encoding and, when it is not compiled, the codes' steps
        model = load_encoder(config)
        newly, seconds = encode_all(clips, config, paths, progress, say, model)
        model = None if config.compile else model
    raise_if_interrupted()
    data = assemble(clips, config, paths)
    n = len(data["columns"]["label"])
    if n < MIN_CLIPS:
        raise PrecomputeError(f"only {n} clip(s) could be encoded ({skip_counts(data['skipped'])}; "
                              f"see {paths.skipped}); at least {MIN_CLIPS} are needed.")
    steps.done("clips")
    return newly, seconds, model


def depth_representations(representations: dict[str, dict]) -> list[str]:
    """DAC's representations by depth, z_q1 ... z (the full depth last)."""
    return [r for r, e in sorted(representations.items(), key=lambda item: item[1].get("depth") or 0)
            if e.get("depth")]


def from_codes_steps(config: PrecomputeConfig, paths: CachePaths, columns: dict, n_planned: int,
                     steps: Steps, say: Callable[[str], None], model=None) -> None:
    """The depths' embeddings and the decoded clips, from the stored frame codes
    (``from_codes``), each only where its key is not recorded. ``model``: DAC when the run has
    it loaded already; else it is loaded only when there is something to do."""
    depths = {depth_name(q): q for q in config.depths}
    names = columns["audio"]
    wanted = set(reconstructed_plan_indices(n_planned, config.reconstruct_max_clips).tolist())
    rows = [row for row, index in enumerate(plan_indices(names).tolist()) if index in wanted]
    to_decode = [q for q in config.reconstruct if not steps.fresh(
        f"decode:{q}", *(paths.reconstruction(q, names[row]) for row in rows))] if rows else []
    to_pool = [rep for rep in depths if not steps.fresh(f"embedding:{rep}", paths.array(rep, "embedding"))]
    to_table = not steps.fresh("quantizer", paths.quantizer)
    if not to_decode and not to_pool and not to_table:
        return
    # under --ray, this driver's own device: the workers' GPU may not be here
    here = driver_device(config.device, config.ray)
    model = model or load_dac(config.model_type, config.weights, here)
    say("depths and decoding, from the stored codes:")
    with precision_mode(config.precision, here):
        quantizer_step(model, paths, steps, say)
        depths_step(model, paths, depths, steps, say)
        decode_step(model, paths, tuple(to_decode), rows, names,
                    MODEL_CONFIGS[config.model_type]["sample_rate"], steps, say, config.batch_seconds)


def drop_stale_chunks(paths: CachePaths, key: str) -> None:
    """Keep the encoded chunks in work/ only when they were made with ``key`` (the clips' and
    encoders' keys); record it for the chunks to come."""
    recorded = cache_format.read_json(paths.chunk_inputs) if paths.chunk_inputs.is_file() else None
    if recorded != {"key": key}:
        shutil.rmtree(paths.chunk(0).parent, ignore_errors=True)
        paths.work_dir.mkdir(parents=True, exist_ok=True)
        cache_format.atomic_write_json(paths.chunk_inputs, {"key": key})


def previous_encode_record(paths: CachePaths) -> dict | None:
    """The manifest's "encode" of the cache on disk (how DAC ran), None without one."""
    if not paths.manifest.is_file():
        return None
    manifest = cache_format.read_json(paths.manifest)
    return manifest.get("encode") if isinstance(manifest, dict) else None


def skipped_total(paths: CachePaths) -> int:
    """How many planned clips skipped.json says were skipped."""
    data = cache_format.read_json(paths.skipped)
    return len(data) if isinstance(data, list) else sum(int(g["count"]) for g in data["reasons"])

"""The plan: every clip with its size and mtime, the model, weights and settings (its hash is
the cache's ``plan_id``), what changed since the last run, and the output folder's policy
(resume, refuse a foreign folder, --overwrite)."""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
from pathlib import Path

from dacviz_app import cache as cache_format
from dacviz_app.cache import CachePaths
from dacviz_app.precompute.config import MIN_CLIPS, PrecomputeConfig, PrecomputeError
from dacviz_app.precompute.encoders import describe_all
from dacviz_app.precompute.inputs import CLIPS_FIELDS, clips_key
from dacviz_app.precompute.sources import ClipSource




def source_fingerprint(path: str) -> list:
    """[size in bytes, modification time in ns] of a source file, [None, None] if it cannot be
    read: a file rewritten in place changes its plan entry, so the plan id changes."""
    try:
        st = os.stat(path)
    except OSError:
        return [None, None]
    return [st.st_size, st.st_mtime_ns]


def make_plan(clips: list[ClipSource], config: PrecomputeConfig) -> dict:
    """Everything the results depend on; its hash identifies the run for resuming.

    Each clip is [path, label, speaker, extra columns, size, mtime_ns]: a source file changed
    since the cache was made makes another plan."""
    body = {
        "clips": [[c.path, c.label, c.speaker, list(map(list, c.extra)), *source_fingerprint(c.path)]
                  for c in clips],
        "model_type": config.model_type,
        "weights": config.weights.as_dict(),
        "device": config.device, "chunk_size": config.chunk_size, "batch_size": config.batch_size,
        "batch_seconds": config.batch_seconds, "precision": config.precision, "compile": config.compile,
        "max_seconds": config.max_seconds, "seed": config.seed, "knn_k": config.knn_k,
        "format_version": cache_format.FORMAT_VERSION, "depths": list(config.depths),
        "reconstruct": list(config.reconstruct), "reconstruct_max_clips": config.reconstruct_max_clips,
        "perplexity": config.perplexity,
    }
    if config.dnsmos_clips:  # absent when 0, as in the plans of caches made before fidelity
        body["dnsmos_clips"] = config.dnsmos_clips
    if not config.pesq:
        body["pesq"] = False
    if config.encoders:  # each one beside DAC, with the hash of its weights (absent: none, as
        # in the plans of caches made before encoders existed, which stay resumable)
        body["encoders"] = {name: {"spec": spec.as_dict(), "sha256": described["weights"]["sha256"]}
                            for spec in config.encoders
                            for name, described in describe_all((spec,)).items()}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return {"plan_id": digest, **body}


def plan_difference(old: dict, new: dict, shown: int = 3) -> str:
    """What differs between two plans, in words: changed settings, and source files added,
    removed or changed (size or modification time) since the old plan."""
    parts = []
    settings = [k for k in sorted(set(old) | set(new)) if k not in ("plan_id", "clips")
                and old.get(k) != new.get(k)]
    if settings:
        parts.append("settings changed: " + ", ".join(
            f"{k} {json.dumps(old.get(k))} -> {json.dumps(new.get(k))}" for k in settings))
    before = {c[0]: c for c in old.get("clips", []) if isinstance(c, list) and c}
    after = {c[0]: c for c in new.get("clips", [])}
    for what, paths in (("added", [p for p in after if p not in before]),
                        ("removed", [p for p in before if p not in after]),
                        ("changed on disk (size or modification time)",
                         [p for p in after if p in before and before[p][4:] != after[p][4:]]),
                        ("relabelled or with other metadata",
                         [p for p in after if p in before and before[p][1:4] != after[p][1:4]])):
        if paths:
            more = f" and {len(paths) - shown} more" if len(paths) > shown else ""
            parts.append(f"{len(paths)} source file(s) {what}: {', '.join(paths[:shown])}{more}")
    return "; ".join(parts) or "made by another version of dacviz"


def prepare_out_dir(paths: CachePaths, plan: dict, overwrite: bool) -> bool:
    """Check ``paths.root`` against the plan. Returns True when the cache is already complete
    with this very plan.

    Call it holding the directory's lock (``cache.DirectoryLock``). A cache of the same clips
    made with other settings is kept: the run computes what the new settings change
    (``inputs``), and plan.json becomes this run's (the manifest keeps the old plan's id until
    the run ends). Raises PrecomputeError when the directory holds something else (a cache of
    other clips, or of sources that changed since; unrelated files) and ``overwrite`` is not set.
    """
    root = paths.root
    existing = None
    for path in (paths.plan, paths.legacy_plan, paths.manifest):
        if path.is_file():
            existing = cache_format.read_json(path)
            break
    existing_id = existing.get("plan_id") if isinstance(existing, dict) else None
    finished_id = cache_format.read_json(paths.manifest).get("plan_id") if paths.manifest.is_file() else None
    if existing_id == plan["plan_id"]:
        cache_format.remove_partial_files(root)  # a killed run's half-written files
        return finished_id == plan["plan_id"]
    if existing_id is not None:
        same_clips = "clips" in existing and clips_key(existing) == clips_key(plan)
        recorded = paths.inputs.is_file() or finished_id is None  # an unfinished run: its chunks say
        if same_clips and recorded and not overwrite:
            cache_format.remove_partial_files(root)
            cache_format.write_plan(paths, plan)
            return False
        if not overwrite:
            if same_clips:
                why = ("made before dacviz recorded what each of its results is made from, so "
                       "it cannot be updated in place")
            elif "clips" in existing:
                why = plan_difference({k: existing.get(k) for k in CLIPS_FIELDS},
                                      {k: plan.get(k) for k in CLIPS_FIELDS})
            else:
                why = "made from different inputs or settings"
            raise PrecomputeError(
                f"{root} holds a cache of other clips ({why}). Pass --overwrite to rebuild it, "
                f"or use another --out. (Other settings of the same clips need no --overwrite: "
                f"only what they change is computed.)")
        _empty_directory(paths)
    elif root.exists() and any(p != paths.lock for p in root.iterdir()):
        raise _not_a_cache(root)
    root.mkdir(parents=True, exist_ok=True)
    cache_format.write_plan(paths, plan)
    return False


def refuse_foreign_directory(paths: CachePaths) -> None:
    """Before anything is written into ``paths.root`` (the lock file included): refuse a
    non-empty directory that holds no dacviz plan or manifest (only a lock left by a killed
    run is allowed)."""
    root = paths.root
    if not root.is_dir():
        return
    entries = [p for p in root.iterdir() if p != paths.lock]
    if entries and not any(p.is_file() for p in (paths.plan, paths.legacy_plan, paths.manifest)):
        raise _not_a_cache(root)


def _not_a_cache(root: Path) -> PrecomputeError:
    return PrecomputeError(f"{root} exists and is not a dacviz cache; refusing to write into it. "
                           f"Choose an empty or new --out directory.")


def _empty_directory(paths: CachePaths) -> None:
    """Remove everything in the cache directory but the lock this run holds."""
    for child in paths.root.iterdir():
        if child == paths.lock:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


# ----------------------------------------------------------------------------- encode
def skip_counts(reasons: dict[str, int]) -> str:
    """'1,000,000 skipped: 999,990 cannot open file, 10 too short' (``cache.skip_kind``'s kinds)."""
    kinds = sorted(reasons, key=lambda kind: (-reasons[kind], kind))
    return f"{sum(reasons.values()):,} skipped" + (": " if kinds else "") + ", ".join(
        f"{reasons[kind]:,} {kind}" for kind in kinds)


def refuse_missing_sources(plan: dict, source: str, shown: int = 3) -> None:
    """Before anything is loaded or written: PrecomputeError when fewer than MIN_CLIPS of the
    plan's files exist (its fingerprints, ``source_fingerprint``, are None for the others), so
    that a list of wrong paths ends in seconds, not after a skip reason for each."""
    missing = (entry[0] for entry in plan["clips"] if entry[4] is None)  # [path, ..., size, mtime]
    found = sum(1 for entry in plan["clips"] if entry[4] is not None)
    if found >= MIN_CLIPS:
        return
    n = len(plan["clips"])
    examples = list(itertools.islice(missing, shown))
    more = f" and {n - found - len(examples):,} more" if n - found > len(examples) else ""
    raise PrecomputeError(f"only {found} of the {n:,} files listed in {source or 'the source'} "
                          f"exist (not found: {', '.join(examples)}{more}); at least {MIN_CLIPS} "
                          f"clips are needed. Check the paths (a CSV's relative paths are "
                          f"relative to its folder).")


def column_notes(clips: list[ClipSource]) -> list[str]:
    """One line per CSV column stored under another name (it is named like a column the cache
    computes itself)."""
    user = {name: [] for name in dict.fromkeys(k for c in clips for k, _ in c.extra)}
    computed = {name: [] for name in cache_format.COMPUTED_CLIP_COLUMNS}
    _, renamed = cache_format.clip_columns(computed, user)
    return [f"CSV column {old!r} is stored as {new!r}: {old!r} is a column dacviz computes itself"
            for old, new in renamed.items()]

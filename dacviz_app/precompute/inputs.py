"""What each stored result is made from, so that a rerun with other settings computes only the
results whose inputs changed.

Every result of a cache (an encoder's vectors, a depth, a decoded depth, a representation's
neighbours, each of its views, its metrics, the probes, each depth's fidelity) has a key: the
sha256 of the settings of its own step and the keys of the results it is computed from. The
keys form a tree rooted in the clips (their paths, sizes, modification times, labels and
columns, the model's sample rate, the length limit):

    clips ─┬─ dac (weights' sha256, precision, device, batches) ─┬─ z, codes_concat, codes_mean
           │                                                     ├─ z_q<q>  (+ q; from the codes)
           │                                                     └─ decode q (+ q, clips decoded)
           ├─ mfcc
           └─ <encoder> (its spec, its weights' sha256)
    each representation ─ neighbours (+ k) ─ views (+ seed; t-SNE + perplexity) ─ metrics
    the depths and z ─ probes;   decode q ─ fidelity q (+ DNSMOS clips, PESQ)

``inputs.json`` (``Record``) holds the key of every result on disk, written just after the
result. A run computes a result when its recorded key differs from the one its settings give
(or is missing): a new perplexity changes the views' keys and the metrics', not the
neighbours'; a new depth adds one representation; a new encoder one more; new clips change
the root, and only then is ``--overwrite`` asked for.
"""
from __future__ import annotations

import hashlib
import json
from typing import Iterable, Mapping

from dacviz_app import cache as cache_format
from dacviz_app.cache import CachePaths
from dacviz_app.cache.representations import DAC_BASE
from dacviz_app.embedding.approximate import search_key
from dacviz_app.embedding.spaces import VIEWS


def digest(value) -> str:
    """The key of ``value`` (anything JSON can write): 16 hex digits of its sha256."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


CLIPS_FIELDS = ("clips", "model_type", "max_seconds", "format_version")  # the plan's, for the root
DAC_FIELDS = ("weights", "device", "precision", "compile", "batch_size", "batch_seconds")


def clips_key(plan: Mapping) -> str:
    """The root key: the plan's clips (each with its size and modification time) and what
    turns a file into the clip every encoder reads (the model's rate, the length limit)."""
    return digest({field: plan.get(field) for field in CLIPS_FIELDS})


def dac_key(plan: Mapping) -> str:
    """DAC's encode: the clips, the model and its weights, how it ran."""
    return digest({"clips": clips_key(plan), **{f: plan.get(f) for f in ("model_type",) + DAC_FIELDS}})


def encoder_keys(plan: Mapping, representations: Mapping[str, dict]) -> dict[str, str]:
    """{representation: key} of every representation the plan's encoders give: DAC's base
    ones have DAC's key and their name, a depth DAC's key and its q, MFCC has only the clips, an encoder beside DAC
    its spec and weights (``plan["encoders"]``)."""
    root, dac = clips_key(plan), dac_key(plan)
    beside = plan.get("encoders") or {}
    keys = {}
    for rep, entry in representations.items():
        if entry.get("encoder") == "mfcc":
            keys[rep] = digest({"clips": root, "representation": rep})
        elif entry.get("encoder") == "dac":
            keys[rep] = digest({"dac": dac, "representation": rep} if rep in DAC_BASE
                               else {"dac": dac, "depth": entry.get("depth")})
        else:
            keys[rep] = digest({"clips": root, "representation": rep, "encoder": beside.get(rep, rep)})
    return keys


def downstream_keys(embedding_keys: Mapping[str, str], *, knn_k: int, seed: int, perplexity: float,
                    depth_reps: Iterable[str], decode: Mapping[int, str] = (),
                    fidelity_params: Mapping | None = None, search: str = "exact") -> dict[str, str]:
    """Every key after the embeddings: per representation ``knn:<rep>``, ``view:<rep>:<view>``,
    ``metrics:<rep>`` and ``probes:<rep>``; ``geometry`` (CKA of every pair, Jaccard of the depths); per decoded depth ``fidelity:<q>`` and
    ``fidelity:original`` (DNSMOS of the originals)."""
    keys: dict[str, str] = {}
    searched = search_key(search, seed)  # {} for exact search: such keys are as before it existed
    for rep, emb in embedding_keys.items():
        keys[f"knn:{rep}"] = digest({"embedding": emb, "k": knn_k, **searched})
        views = {}
        for view in VIEWS:
            params = {"embedding": emb, "view": view.name, "seed": seed}
            if view.method == "tsne":  # its affinities come from the neighbour table
                params.update(perplexity=perplexity, **searched)
            views[view.name] = keys[f"view:{rep}:{view.name}"] = digest(params)
        keys[f"metrics:{rep}"] = digest({"embedding": emb, "views": views, "k": knn_k, "seed": seed, **searched})
        keys[f"probes:{rep}"] = digest({"embedding": emb, "k": knn_k, "seed": seed, **searched})
    keys["geometry"] = digest({"representations": dict(embedding_keys), "depths": list(depth_reps),
                               "k": knn_k, "seed": seed, **searched})
    params = dict(fidelity_params or {})
    for q, decoded in dict(decode).items():
        keys[f"fidelity:{q}"] = digest({"decode": decoded, **params})
    if decode:
        keys["fidelity:original"] = digest({"decoded": sorted(dict(decode).values()), **params})
    return keys


def decode_keys(plan: Mapping, depths: Iterable[int], max_clips: int) -> dict[int, str]:
    """{q: key} of each decoded depth: DAC's key, q, and which clips are decoded."""
    dac = dac_key(plan)
    return {int(q): digest({"dac": dac, "decode": int(q), "max_clips": int(max_clips)}) for q in depths}


class Record:
    """``inputs.json``: {result: key} of the results on disk (``module docstring``). Updated
    (atomically) right after each result is written, so an interrupted run resumes with it."""

    def __init__(self, paths: CachePaths):
        self.paths = paths
        data = cache_format.read_json(paths.inputs) if paths.inputs.is_file() else {}
        self.keys: dict[str, str] = dict(data.get("keys", {})) if isinstance(data, dict) else {}

    def holds(self, result: str, key: str) -> bool:
        """Whether ``result`` on disk was made from ``key``."""
        return self.keys.get(result) == key

    def mark(self, result: str, key: str) -> None:
        """``result`` was just written from ``key``."""
        self.keys[result] = key
        self._save()

    def forget(self, results: Iterable[str]) -> None:
        """These results are gone (or about to be rewritten)."""
        for result in list(results):
            self.keys.pop(result, None)
        self._save()

    def keep_only(self, results: Iterable[str]) -> None:
        """Forget every result but these (the ones this run's settings have)."""
        wanted = set(results)
        self.forget([r for r in self.keys if r not in wanted])

    def _save(self) -> None:
        cache_format.atomic_write_json(self.paths.inputs, {"keys": dict(sorted(self.keys.items()))})

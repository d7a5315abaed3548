"""What a cache's files must hold, checked at open: the manifest's keys and types, the JSON
sidecars' shapes, the arrays' dtypes and ranges. Each check returns a problem in words or None."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from dacviz_app.cache.models import MODEL_CONFIGS


# ----------------------------------------------------------------------------- shapes
@dataclass(frozen=True)
class Kind:
    """What one JSON value must be: ``test`` says whether a value is one, ``said`` names it in
    a message; ``optional``: the key may be absent."""

    test: Callable[[Any], bool]
    said: str
    optional: bool = False


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """An int, or a float that is not NaN or infinite (JSON's NaN reads as one)."""
    return _is_whole(value) or (isinstance(value, float) and math.isfinite(value))


def whole(least: int) -> Kind:
    """An int (not a bool) of at least ``least``."""
    return Kind(lambda v: _is_whole(v) and v >= least, f"a whole number >= {least}")


def maybe(kind: Kind) -> Kind:
    """``kind``, or the key absent."""
    return Kind(kind.test, kind.said, optional=True)


def or_null(kind: Kind) -> Kind:
    """``kind``, or null."""
    return Kind(lambda v: v is None or kind.test(v), f"null or {kind.said}", kind.optional)


def list_of(kind: Kind) -> Kind:
    """A list whose every item is ``kind``."""
    return Kind(lambda v: isinstance(v, list) and all(kind.test(x) for x in v),
                f"a list, each {kind.said}")


TEXT = Kind(lambda v: isinstance(v, str), "a string")
NUMBER = Kind(_is_number, "a finite number")
FLAG = Kind(lambda v: isinstance(v, bool), "true or false")
OBJECT = Kind(lambda v: isinstance(v, dict), "an object")
REPRESENTATION_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")  # one safe file name

# every key of a manifest the code reads, with what it must be (the module docstring has all)
MANIFEST_FIELDS = {
    "n_clips": whole(1), "knn_k": whole(1), "seed": whole(0), "plan_id": TEXT, "name": maybe(TEXT),
    "synthetic": maybe(FLAG), "model": OBJECT,
    "representations": Kind(lambda v: isinstance(v, dict) and len(v) > 0, "a non-empty object"),
    "sample_3d": maybe(or_null(OBJECT)), "reconstructions": maybe(or_null(OBJECT)),
    "encode": maybe(or_null(OBJECT))}
MODEL_FIELDS = {"type": Kind(lambda v: v in MODEL_CONFIGS, " or ".join(map(repr, MODEL_CONFIGS))),
                "sample_rate": whole(1), "n_codebooks": whole(1), "codebook_size": maybe(whole(1)),
                "weights": OBJECT}
WEIGHTS_FIELDS = {"untrained": maybe(or_null(FLAG)), "path": maybe(or_null(TEXT)),
                  "sha256": maybe(or_null(TEXT))}
REPRESENTATION_FIELDS = {"dim": whole(1), "title": TEXT, "description": maybe(TEXT),
                         "encoder": maybe(or_null(TEXT)), "trained": maybe(FLAG),
                         "depth": maybe(or_null(whole(1))), "kbps": maybe(or_null(NUMBER)),
                         "weights": maybe(or_null(OBJECT))}
SAMPLE_3D_FIELDS = {"n": whole(1)}
RECONSTRUCTIONS_FIELDS = {"depths": maybe(or_null(list_of(whole(1)))),
                          "n_clips": maybe(or_null(whole(0)))}
AGREEMENT_FIELDS = {"n": maybe(whole(0)), "k": maybe(whole(0)), "knn_agreement": maybe(NUMBER),
                    "max_relative_error": maybe(NUMBER)}
METRICS_FIELDS = {"rows": list_of(OBJECT), "params": maybe(OBJECT),
                  "trust": maybe(or_null(list_of(OBJECT)))}
METRICS_PARAMS_FIELDS = {"knn_accuracy_k": maybe(or_null(whole(1))), "columns": maybe(list_of(TEXT))}
METRIC_ROW_FIELDS = {"representation": TEXT, "space": TEXT, "dim": whole(1),
                     "column": maybe(TEXT), "silhouette": or_null(NUMBER),
                     "davies_bouldin": or_null(NUMBER), "knn_accuracy": or_null(NUMBER),
                     "silhouette_cosine": maybe(or_null(NUMBER)), "chance": maybe(or_null(NUMBER))}
TRUST_ROW_FIELDS = {"trustworthiness": maybe(or_null(NUMBER)),
                    "continuity": maybe(or_null(NUMBER)), "k": maybe(or_null(whole(1)))}
PROJECTION_INFO_FIELDS = {"pca": {"explained_variance": NUMBER},  # by the view's method
                          "tsne": {"perplexity": NUMBER}}
NEIGHBOUR_INFO_FIELDS = {"exact": {}, "approximate": {"index": TEXT, "recall_at_k": NUMBER, "k": whole(1),
                                                     "sample": whole(1), "low": NUMBER, "high": NUMBER}}
SKIPPED_FIELDS = {"source": TEXT, "label": TEXT, "reason": TEXT}
SKIPPED_GROUP_FIELDS = {"reason": TEXT, "count": whole(1), "examples": list_of(OBJECT)}


def described(value: Any) -> str:
    """A JSON value in a few words, for a message: 'the text "120"', 'a list of 3', 'null'."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return repr(value)[:40]
    if isinstance(value, str):
        return f"the text {json.dumps(value[:40])}{'...' if len(value) > 40 else ''}"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return "an object"


def shape_problem(value: Any, fields: dict[str, Kind], where: str = "") -> str | None:
    """The first of ``fields`` that ``value`` (a JSON object) lacks or holds as something else,
    in words ('"knn_k" is missing (expected a whole number >= 1)'); None when all are right.
    ``where``: the place of ``value`` in its file, said before the key ('model.')."""
    if not isinstance(value, dict):
        place = f'"{where.rstrip(".")}"' if where else "the file"
        return f"{place} is {described(value)}, expected an object"
    for key, kind in fields.items():
        if key not in value:
            if not kind.optional:
                return f'"{where}{key}" is missing (expected {kind.said})'
        elif not kind.test(value[key]):
            return f'"{where}{key}" is {described(value[key])}, expected {kind.said}'
    return None


def manifest_problem(manifest: dict) -> str | None:
    """What is wrong with the shape of a manifest of this format version, in words (the first
    thing found), or None: every key the code reads, nested ones included, has its type."""
    problem = shape_problem(manifest, MANIFEST_FIELDS)
    if problem:
        return problem
    model = manifest["model"]
    checks = [(model, MODEL_FIELDS, "model."), (model.get("weights"), WEIGHTS_FIELDS, "model.weights.")]
    for name, entry in manifest["representations"].items():
        if not REPRESENTATION_NAME.fullmatch(name) or name in (".", ".."):
            return f'"representations" has the name {json.dumps(name[:40])}, expected a plain file name'
        checks.append((entry, REPRESENTATION_FIELDS, f"representations.{name}."))
    for key, fields in (("sample_3d", SAMPLE_3D_FIELDS), ("reconstructions", RECONSTRUCTIONS_FIELDS)):
        if manifest.get(key) is not None:
            checks.append((manifest[key], fields, f"{key}."))
    agreement = (manifest.get("encode") or {}).get("agreement")
    if agreement is not None:
        checks.append((agreement, AGREEMENT_FIELDS, "encode.agreement."))
    return next(filter(None, (shape_problem(value, fields, where) for value, fields, where in checks)), None)


def metrics_problem(metrics: Any) -> str | None:
    """What is wrong with the shape of metrics.json (module docstring), or None."""
    problem = shape_problem(metrics, METRICS_FIELDS)
    if problem:
        return problem
    checks = [(metrics.get("params", {}), METRICS_PARAMS_FIELDS, "params.")]
    checks += [(row, METRIC_ROW_FIELDS, f"rows[{i}].") for i, row in enumerate(metrics["rows"])]
    checks += [(row, TRUST_ROW_FIELDS, f"trust[{i}].") for i, row in enumerate(metrics.get("trust") or [])]
    return next(filter(None, (shape_problem(value, fields, where) for value, fields, where in checks)), None)


def skipped_problem(skipped: Any) -> str | None:
    """What is wrong with the shape of skipped.json (a list, or the grouped form), or None."""
    if isinstance(skipped, list):
        entries = enumerate(skipped)
        return next(filter(None, (shape_problem(e, SKIPPED_FIELDS, f"[{i}].") for i, e in entries)), None)
    problem = shape_problem(skipped, {"n_skipped": whole(0), "reasons": list_of(OBJECT)})
    if problem:
        return problem
    for i, group in enumerate(skipped["reasons"]):
        problem = shape_problem(group, SKIPPED_GROUP_FIELDS, f"reasons[{i}].") or next(filter(None, (
            shape_problem(e, SKIPPED_FIELDS, f"reasons[{i}].examples[{j}].")
            for j, e in enumerate(group["examples"]))), None)
        if problem:
            return problem
    return None


ARRAY_DISTANCE_MAX = 2.0 + 1e-3  # a cosine distance 1 - cos is at most 2 (float rounding aside)


def array_problem(path: Path, kind: str, n_clips: int) -> str | None:
    """What is wrong with the dtype or the values of the array of ``kind`` at ``path`` (its shape
    is checked already), or None: "knn_index" clip ids in 0..n_clips-1, an integer dtype;
    "knn_distance" in 0..2; views finite; every other array a float dtype (an embedding's
    values are not read: it is the largest file). Values come from min and max of a memory
    map opened here and closed on return, so the caller's map stays unread."""
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    if kind == "knn_index":
        if array.dtype.kind not in "iu":
            return f"dtype {array.dtype}, expected int32 clip ids"
        low, high = int(array.min()), int(array.max())
        if low < 0 or high >= n_clips:
            return f"clip ids from {low} to {high}, expected 0 to {n_clips - 1} ({n_clips} clips)"
        return None
    if array.dtype.kind != "f":
        return f"dtype {array.dtype}, expected float32"
    if kind == "embedding":
        return None
    low, high = float(array.min()), float(array.max())
    if not (np.isfinite(low) and np.isfinite(high)):
        return "values that are not finite (NaN or infinity)"
    if kind == "knn_distance" and (low < 0 or high > ARRAY_DISTANCE_MAX):
        return f"cosine distances from {low:g} to {high:g}, expected 0 to 2"
    return None




def neighbour_info_problem(value: Any) -> str | None:
    """What is wrong with a neighbour table's sidecar (``paths.neighbour_info``), or None."""
    method = value.get("method") if isinstance(value, dict) else None
    if method not in NEIGHBOUR_INFO_FIELDS:
        return f'"method" is {described(method)}, expected "exact" or "approximate"'
    return shape_problem(value, NEIGHBOUR_INFO_FIELDS[method])

"""What the codec keeps, as the page shows it: probe accuracy against depth (plain or with a
column controlled for), confounds said as sentences, the geometry of the levels (CKA), the
decoder's fidelity per depth (median and quartiles, per group), and a clip's own numbers.
Everything is read from the cache (probes.json, fidelity.json + arrays/fidelity.npz): no
computation here that precompute did not store, only summaries of it. numpy only.
"""
from __future__ import annotations

import math

import numpy as np

from dacviz_app.cache import Cache
from dacviz_app.cache.models import bitrate_kbps

FIDELITY_COLOUR = "@fidelity"  # "Colour by" value prefix: "@fidelity:<measure>:<q>"
FIDELITY_BIN_NAMES = ("worst quarter", "second quarter", "third quarter", "best quarter")
FIDELITY_BIN_COLOURS = ("#d7191c", "#f4a259", "#a6d96a", "#1a9641")
NOT_DECODED = "(no value: not decoded, or undefined)"
NOT_DECODED_COLOUR = "#cccccc"
FIDELITY_GROUP_LINES = 6  # the fidelity chart draws one line per colour group up to this many


# ----------------------------------------------------------------------------- probes
def probed_columns(cache: Cache) -> list[str]:
    """The columns precompute probed (label first); [] for a cache without probes.json."""
    return list((cache.probes or {}).get("params", {}).get("probed_columns") or [])


def valid_control(cache: Cache, control) -> str | None:
    """``control`` if it is a probed column, else None (no control)."""
    return control if isinstance(control, str) and control in probed_columns(cache) else None


def probe_row(cache: Cache, rep: str, column: str, control: str | None) -> dict | None:
    """probes.json's row of ``rep`` scored by ``column`` with ``control`` held out (None)."""
    for row in (cache.probes or {}).get("rows", []):
        if row["representation"] == rep and row["column"] == column and row["control"] == control:
            return row
    return None


def probe_series(cache: Cache, column: str, control: str | None) -> list[dict]:
    """``column``'s probe and k-NN accuracy at every depth of z (q ascending, z itself last):
    [{"q", "kbps", "representation", "probe": {...}, "knn": {...}, "control"}]. ``control``
    equal to ``column`` (meaningless) is read as None."""
    control = None if control == column else control
    out = []
    for q, rep in cache.depths() or ([(cache.manifest["model"]["n_codebooks"], "z")]
                                     if cache.has_representation("z") else []):
        row = probe_row(cache, rep, column, control)
        if row is not None:
            out.append({"q": q, "kbps": cache.kbps(rep), "representation": rep, "probe": row["probe"],
                        "knn": row["knn"], "control": control})
    return out


def controlled_knn(cache: Cache, column: str, control: str | None) -> dict[str, float | None]:
    """{representation: k-NN accuracy of ``column`` in its full space with ``control`` held out
    (probes.json)}; {} without a control or without probes."""
    if control is None:
        return {}
    return {row["representation"]: row["knn"]["accuracy"] for row in (cache.probes or {}).get("rows", [])
            if row["column"] == column and row["control"] == control}


def confound_rows(cache: Cache) -> list[dict]:
    """probes.json's confounded pairs: [{"a", "b", "ami", "cramers_v", "sentence"}]."""
    return [r for r in (cache.probes or {}).get("confounds", []) if r.get("confounded")]


def confound_note(cache: Cache, column: str) -> str | None:
    """The sentence(s) saying which scored columns ``column`` is (nearly) the same partition as,
    None when it is confounded with none."""
    said = [r["sentence"] for r in confound_rows(cache) if column in (r["a"], r["b"])]
    return " ".join(s.rstrip(".") + "." for s in said) or None


# ----------------------------------------------------------------------------- geometry
def cka_table(cache: Cache) -> dict | None:
    """{"representations", "matrix" (m, m) list, "n", "seed"} of linear CKA, or None."""
    geometry = (cache.probes or {}).get("geometry") or {}
    return geometry.get("cka")


def depth_jaccard(cache: Cache) -> dict | None:
    """{"representations", "k", "values"}: mean Jaccard@k of consecutive depths' neighbours."""
    geometry = (cache.probes or {}).get("geometry") or {}
    return geometry.get("depth_jaccard")


# ----------------------------------------------------------------------------- fidelity
def quartiles(values: np.ndarray) -> dict:
    """{"median", "q25", "q75", "n"} of the finite ``values`` (NaN-free; n may be 0)."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return {"median": None, "q25": None, "q75": None, "n": 0}
    q25, median, q75 = np.percentile(finite, [25, 50, 75])
    return {"median": float(median), "q25": float(q25), "q75": float(q75), "n": int(len(finite))}


def fidelity_summary(cache: Cache, groups: dict[str, np.ndarray] | None = None) -> dict | None:
    """Per measure, per decoded depth: quartiles over the decoded clips, and over each group's
    (``groups``: {name: (m,) clip ids}, at most FIDELITY_GROUP_LINES, else ignored).
    -> {"depths", "kbps", "measures": [...], "all": {measure: [quartiles per depth]},
        "groups": {name: {measure: [...]}}, "dnsmos_original": quartiles, "n_clips"} or None."""
    fid = cache.fidelity
    if fid is None:
        return None
    by_group = {}
    if groups and len(groups) <= FIDELITY_GROUP_LINES:
        for name, members in groups.items():
            rows = np.flatnonzero(np.isin(fid.clip_ids, members))
            by_group[name] = {m: [quartiles(v[rows, j]) for j in range(len(fid.depths))]
                              for m, v in fid.values.items()}
    kbps = [bitrate_kbps(cache.manifest["model"]["type"], q) for q in fid.depths]
    return {"depths": list(fid.depths), "kbps": kbps, "measures": list(fid.measures),
            "all": {m: [quartiles(v[:, j]) for j in range(len(fid.depths))] for m, v in fid.values.items()},
            "groups": by_group, "dnsmos_original": quartiles(fid.dnsmos_original),
            "n_clips": len(fid.clip_ids), "params": fid.params}


def fidelity_colours(cache: Cache) -> list[dict]:
    """The "Colour by" options of the decoder's fidelity: one per measure and decoded depth,
    [{"label", "value"}] ("@fidelity:<measure>:<q>"); [] without fidelity."""
    fid = cache.fidelity
    if fid is None:
        return []
    return [{"label": f"fidelity: {m['title']} at {q} cb", "value": f"{FIDELITY_COLOUR}:{m['name']}:{q}"}
            for m in fid.measures for q in fid.depths]


def parse_fidelity_colour(cache: Cache, colour) -> tuple[dict, int] | None:
    """("@fidelity:<measure>:<q>") -> (the measure's description, q), None for anything else."""
    fid = cache.fidelity
    if fid is None or not isinstance(colour, str) or len(colour) > 64 \
            or not colour.startswith(FIDELITY_COLOUR + ":"):
        return None
    parts = colour.split(":")
    if len(parts) != 3 or not parts[2].isdigit() or int(parts[2]) not in fid.depths:
        return None
    measure = fid.measure(parts[1])
    return (measure, int(parts[2])) if measure else None


def fidelity_bins(cache: Cache, measure: dict, depth: int) -> tuple[list[str], list[np.ndarray], list[str]]:
    """The clips in quarters of ``measure`` at ``depth``, worst first (NOT_DECODED last: the
    clips without reconstructions, or whose value is undefined) -> (names with their ranges,
    (n,) int32 members each, colours)."""
    fid = cache.fidelity
    values = fid.values[measure["name"]][:, fid.depths.index(depth)].astype(np.float64)
    finite = np.isfinite(values)
    signed = values if measure["higher_is_better"] else -values  # higher is better from here
    names, members, colours = [], [], []
    if finite.any():
        edges = np.percentile(signed[finite], [25, 50, 75])
        quarter = np.searchsorted(edges, signed, side="right")
        for b, name in enumerate(FIDELITY_BIN_NAMES):
            chosen = finite & (quarter == b)
            shown = values[chosen]
            unit = f" {measure['unit']}" if measure["unit"] else ""
            span = f" ({shown.min():.2f}–{shown.max():.2f}{unit})" if len(shown) else ""
            names.append(name + span)
            members.append(np.sort(fid.clip_ids[chosen]).astype(np.int32))
            colours.append(FIDELITY_BIN_COLOURS[b])
    rest = np.setdiff1d(np.arange(cache.n_clips), fid.clip_ids[finite]).astype(np.int32)
    if len(rest):
        names.append(NOT_DECODED)
        members.append(rest)
        colours.append(NOT_DECODED_COLOUR)
    return names, members, colours


def clip_fidelity_line(cache: Cache, clip: int, depth: int) -> str | None:
    """The clip's fidelity at ``depth`` in one line ("SI-SDR 3.1 dB · log-mel distance 0.81 · …"),
    None when it was not decoded at that depth."""
    fid = cache.fidelity
    values = None if fid is None else fid.of_clip(clip, depth)
    if values is None:
        return None
    parts = []
    for m in fid.measures:
        v = values[m["name"]]
        text = "n/a" if not math.isfinite(v) else f"{v:.2f}" + (f" {m['unit']}" if m["unit"] else "")
        parts.append(f"{m['title']} {text}")
    row = fid.row_of(clip)
    original = float(fid.dnsmos_original[row])
    if math.isfinite(original):
        parts.append(f"(original's DNSMOS {original:.2f})")
    return " · ".join(parts)

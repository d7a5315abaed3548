"""The reader of the decoder's fidelity (fidelity.json + arrays/fidelity.npz, written by
``writers.write_fidelity`` from ``precompute/fidelity.py``; the format in docs/cache-format.md)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dacviz_app.cache.atomic import read_json
from dacviz_app.cache.paths import CachePaths


@dataclass(frozen=True)
class Fidelity:
    """Every decoded clip's fidelity at every decoded depth.

    Attributes:
        clip_ids: (m,) int64 the decoded clips (ascending).
        depths: the decoded depths, ascending.
        values: {measure: (m, len(depths)) float32} (NaN: undefined for that clip).
        dnsmos_original: (m,) float32 DNSMOS OVRL of the original clips.
        measures: [{"name", "title", "unit", "higher_is_better", "definition"}] in order.
        params: how they were computed (fidelity.json's "params").
    """

    clip_ids: np.ndarray
    depths: tuple[int, ...]
    values: dict
    dnsmos_original: np.ndarray
    measures: tuple[dict, ...]
    params: dict

    def measure(self, name: str) -> dict | None:
        """The description of measure ``name``, None for any other string."""
        return next((m for m in self.measures if m["name"] == name), None)

    def row_of(self, clip_id: int) -> int | None:
        """The row of ``clip_id`` in the arrays, None when it was not decoded."""
        row = int(np.searchsorted(self.clip_ids, clip_id))
        return row if row < len(self.clip_ids) and int(self.clip_ids[row]) == clip_id else None

    def of_clip(self, clip_id: int, depth: int) -> dict[str, float] | None:
        """{measure: value} of one clip at one decoded depth, None when not stored."""
        row = self.row_of(clip_id)
        if row is None or depth not in self.depths:
            return None
        col = self.depths.index(depth)
        return {name: float(v[row, col]) for name, v in self.values.items()}


def read_fidelity(paths: CachePaths) -> Fidelity | None:
    """The cache's Fidelity, None when it holds none (no reconstructions, or made before it).
    Raises ValueError with what is wrong when the files disagree with each other."""
    if not paths.fidelity_info.is_file():
        return None
    info = read_json(paths.fidelity_info)
    measures = info.get("params", {}).get("measures") if isinstance(info, dict) else None
    if not isinstance(measures, list) or not all(isinstance(m, dict) and "name" in m for m in measures):
        raise ValueError("fidelity.json lacks its measures")
    with np.load(paths.fidelity, allow_pickle=False) as data:
        clip_ids, depths = data["clip_ids"].astype(np.int64), tuple(int(q) for q in data["depths"])
        values = {m["name"]: data[m["name"]].astype(np.float32) for m in measures}
        original = data["dnsmos_original"].astype(np.float32)
    m = len(clip_ids)
    if any(v.shape != (m, len(depths)) for v in values.values()) or original.shape != (m,) \
            or list(depths) != list(info.get("depths", [])) or np.any(np.diff(clip_ids) <= 0):
        raise ValueError("arrays/fidelity.npz does not match fidelity.json")
    return Fidelity(clip_ids, depths, values, original, tuple(measures), dict(info["params"]))

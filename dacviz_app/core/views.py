"""What the viewer needs from a cache, computed without Dash: colour groups, the mapping from a
plotted point back to its clip, neighbour rows, and the metrics table.

The app draws one trace per colour group; a point is addressed by (trace number, index in
trace), so these functions are the single place that knows which clip that is.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .cache import Cache
from .spaces import FULL_SPACE
from .spaces import view as view_row

MAX_GROUPS = 24
OTHER = "(other)"
PALETTE = ("#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A", "#19D3F3", "#FF6692",
           "#B6E880", "#FF97FF", "#FECB52", "#1F77B4", "#8C564B", "#E377C2", "#7F7F7F",
           "#BCBD22", "#17BECF", "#393B79", "#637939", "#8C6D31", "#843C39", "#7B4173",
           "#3182BD", "#E6550D", "#31A354")
NOT_COLOUR_COLUMNS = ("id", "source", "audio", "duration_s")


@dataclass(frozen=True)
class ColourGroups:
    """Clips split by the values of one metadata column.

    Attributes:
        column: the metadata column.
        names: group names, most frequent first (at most MAX_GROUPS; the rest is OTHER).
        members: one (n_in_group,) int32 array of clip ids per group, ascending.
        colours: one CSS colour per group.
    """

    column: str
    names: tuple[str, ...]
    members: tuple[np.ndarray, ...]
    colours: tuple[str, ...]

    def clip_at(self, group: int, position: int) -> int:
        """The clip id drawn at ``position`` in trace ``group``; raises IndexError."""
        if not 0 <= group < len(self.members):
            raise IndexError(group)
        return int(self.members[group][position])

    def group_of(self) -> np.ndarray:
        """(n_clips,) int32: the group number of every clip (-1 for clips not in any group)."""
        size = max((int(m.max()) + 1 for m in self.members if len(m)), default=0)
        out = np.full(size, -1, dtype=np.int32)
        for number, member in enumerate(self.members):
            out[member] = number
        return out

    def subset(self, keep: np.ndarray) -> "ColourGroups":
        """The same groups restricted to the clips where ``keep`` ((n_clips,) bool) is True."""
        members = tuple(m[keep[m]] for m in self.members)
        return ColourGroups(self.column, self.names, members, self.colours)


def colour_columns(cache: Cache) -> list[str]:
    """Metadata columns that can colour the maps: label first, then speaker, then the rest."""
    rest = [c for c in cache.clips if c not in NOT_COLOUR_COLUMNS + ("label", "speaker")]
    return ["label", "speaker"] + rest


def colour_groups(cache: Cache, column: str) -> ColourGroups:
    """Group the clips by ``column`` (unknown column -> ValueError)."""
    if column not in cache.clips or column in NOT_COLOUR_COLUMNS:
        raise ValueError(f"cannot colour by {column!r}")
    values = np.asarray([str(v) for v in cache.clips[column]], dtype=object)
    names, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    order = sorted(range(len(names)), key=lambda g: (-counts[g], str(names[g])))
    if column == "label":  # labels read best in their natural order
        order = sorted(range(len(names)), key=lambda g: str(names[g]))
        order = _label_order(names, order)
    keep = order[:MAX_GROUPS] if len(order) <= MAX_GROUPS else order[:MAX_GROUPS - 1]
    members = [np.flatnonzero(inverse == g).astype(np.int32) for g in keep]
    if len(keep) < len(order):
        members.append(np.flatnonzero(~np.isin(inverse, keep)).astype(np.int32))
    group_names = display_names([str(names[g]) for g in keep], len(keep) < len(order),
                                taken={str(v) for v in names})
    colours = [PALETTE[i % len(PALETTE)] for i in range(len(members))]
    return ColourGroups(column, tuple(group_names), tuple(members), tuple(colours))


def display_names(values: list[str], has_rest: bool, taken: set[str]) -> list[str]:
    """Group names as the legend shows them, all distinct: the empty value reads "(none)" and
    the rest bucket OTHER, each with a number added when a real value (``taken``) already
    has that name. ``values``: the kept groups' values; ``has_rest``: an OTHER group follows."""
    out: list[str] = []

    def free(name: str) -> str:
        candidate, n = name, 1
        while candidate in taken or candidate in out:
            n += 1
            candidate = f"{name} {n}"
        return candidate

    for value in values:
        out.append(value if value != "" else free("(none)"))
    if has_rest:
        out.append(free(OTHER))
    return out


def valid_colour(cache: Cache, column) -> str:
    """``column`` if it can colour the maps, else 'label'."""
    return column if isinstance(column, str) and column in colour_columns(cache) else "label"


class ViewGroups:
    """The colour groups of one cache, as each view draws them, memoised in this process (a
    few arrays per column: nothing to share between workers or to pickle).

    2D views draw every clip; 3D views draw ``cache.sample_3d()`` (the clips the 3D t-SNE was
    fitted on) when the cache records one. Unknown columns fall back to 'label'.
    """

    def __init__(self, cache: Cache):
        self.cache = cache
        self._all = lru_cache(maxsize=64)(lambda column: colour_groups(cache, column))
        self._drawn = lru_cache(maxsize=256)(self._drawn_groups)

    def all(self, column) -> ColourGroups:
        """Every clip, grouped by ``column``."""
        return self._all(valid_colour(self.cache, column))

    def drawn(self, column, view: str) -> ColourGroups:
        """The clips ``view`` draws, grouped by ``column``; a point's (trace, index) in that
        view is ``drawn(...).clip_at(trace, index)``."""
        return self._drawn(valid_colour(self.cache, column), view)

    def _drawn_groups(self, column: str, view: str) -> ColourGroups:
        groups = self._all(column)
        sample = self.cache.sample_3d()
        if view_row(view).dim == 3 and sample is not None:
            keep = np.zeros(self.cache.n_clips, dtype=bool)
            keep[sample] = True
            return groups.subset(keep)
        return groups


def _label_order(names: np.ndarray, order: list[int]) -> list[int]:
    """Spoken digits in counting order, other labels alphabetically after them."""
    digits = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    rank = {w: i for i, w in enumerate(digits)}
    return sorted(order, key=lambda g: (rank.get(str(names[g]), len(digits)), str(names[g])))


def neighbour_rows(cache: Cache, representation: str, clip: int, k: int) -> list[dict]:
    """The k nearest clips of ``clip`` in the full space of ``representation``:
    [{"rank", "id", "label", "speaker", "distance"}], closest first."""
    index, distance = cache.neighbours(representation)
    k = cache.clamp_k(k, default=index.shape[1])
    return [{"rank": r + 1, "id": int(j), "label": str(cache.clips["label"][j]),
             "speaker": str(cache.clips["speaker"][j]), "distance": float(distance[clip, r])}
            for r, j in enumerate(index[clip, :k])]


def valid_clip_ids(n_clips: int, values: list) -> list[int]:
    """Clip ids from an untrusted list -> the valid ones (integers in 0..n_clips-1), sorted and
    unique. Costs O(len(values)) once, then O(n_clips): the answer never exceeds the cache."""
    try:
        ints = np.asarray(values, dtype=np.int64)  # a plain list of ids: one C loop
        if ints.ndim != 1:
            raise ValueError("not a flat list")
    except (TypeError, ValueError, OverflowError):
        ints = np.asarray([v for v in values if type(v) is int and 0 <= v < n_clips], np.int64)
    keep = np.zeros(n_clips, dtype=bool)
    keep[ints[(ints >= 0) & (ints < n_clips)]] = True
    return np.flatnonzero(keep).tolist()


def clip_details(cache: Cache, clip: int) -> dict:
    """Label, speaker, file name, duration and other metadata of one clip."""
    return {name: cache.clips[name][clip] for name in cache.clips if name != "audio"}


def depth_metrics(cache: Cache, column: str) -> list[dict]:
    """The full-space metrics of z at every stored depth for ``column``, by q ascending:
    [{"q", "representation", "kbps", "silhouette", "davies_bouldin", "knn_accuracy"}]; [] when
    the cache has no depths or did not score ``column``."""
    rows = {r["representation"]: r for r in cache.metrics_rows
            if r["space"] == FULL_SPACE and r.get("column", "label") == column}
    return [{"q": q, "representation": rep, "kbps": cache.kbps(rep),
             **{m: rows[rep][m] for m in ("silhouette", "davies_bouldin", "knn_accuracy")}}
            for q, rep in cache.depths() if rep in rows]


def scored_columns(cache: Cache) -> list[str]:
    """The columns metrics.json scores (label first); ['label'] for older caches."""
    return list(cache.metrics_params.get("columns") or ["label"])


def active_representation(cache: Cache, family: str, depth) -> str:
    """The representation the views show: ``family`` ('z', 'mfcc'...), or for 'z' the one of
    ``depth`` codebooks when the cache stores it (z itself at the full count, for an unknown
    depth, or a cache without depths)."""
    if family != "z":
        return family
    stored = dict(cache.depths())
    try:
        depth = int(depth)
    except (TypeError, ValueError, OverflowError):
        return "z"
    return stored.get(depth, "z")

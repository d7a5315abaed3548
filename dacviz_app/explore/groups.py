"""What the viewer needs from a cache, computed without Dash: colour groups, the mapping from a
plotted point back to its clip, neighbour rows, and the metrics table.

The app draws one trace per colour group; a point is addressed by (trace number, index in
trace), so these functions are the single place that knows which clip that is.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from dacviz_app.explore import analysis, measures
from dacviz_app.cache import Cache
from dacviz_app.embedding.spaces import FULL_SPACE
from dacviz_app.embedding.spaces import view as view_row

MAX_GROUPS = 24
OTHER = "(other)"
PALETTE = ("#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A", "#19D3F3", "#FF6692",
           "#B6E880", "#FF97FF", "#FECB52", "#1F77B4", "#8C564B", "#E377C2", "#7F7F7F",
           "#BCBD22", "#17BECF", "#393B79", "#637939", "#8C6D31", "#843C39", "#7B4173",
           "#3182BD", "#E6550D", "#31A354")
NOT_COLOUR_COLUMNS = ("id", "source", "audio", "duration_s")
AGREEMENT = "@agreement"  # "Colour by" the k-NN agreement of two representations (not a column)
AGREEMENT_COLOURS = ("#d7191c", "#f07c4a", "#e3b505", "#7fbf5a", "#1a9641")  # low (red) .. high


@dataclass(frozen=True)
class ColourGroups:
    """Clips split by the values of one metadata column.

    Attributes:
        column: the metadata column.
        names: group names, most frequent first (at most MAX_GROUPS; the rest is OTHER).
        members: one (n_in_group,) int32 array of clip ids per group, ascending.
        colours: one CSS colour per group.
        n_clips: the cache's clip count (``group_of``'s length).
    """

    column: str
    names: tuple[str, ...]
    members: tuple[np.ndarray, ...]
    colours: tuple[str, ...]
    n_clips: int = 0

    def clip_at(self, group: int, position: int) -> int:
        """The clip id drawn at ``position`` in trace ``group``; raises IndexError for any
        other number, however large (numpy would raise OverflowError past 2**63)."""
        if not 0 <= group < len(self.members) or not 0 <= position < len(self.members[group]):
            raise IndexError((group, position))
        return int(self.members[group][position])

    def group_of(self) -> np.ndarray:
        """(n_clips,) int32: the group number of every clip (-1 for clips not in any group)."""
        size = max([int(m.max()) + 1 for m in self.members if len(m)] + [self.n_clips])
        out = np.full(size, -1, dtype=np.int32)
        for number, member in enumerate(self.members):
            out[member] = number
        return out

    def subset(self, keep: np.ndarray) -> "ColourGroups":
        """The same groups restricted to the clips where ``keep`` ((n_clips,) bool) is True."""
        members = tuple(m[keep[m]] for m in self.members)
        return ColourGroups(self.column, self.names, members, self.colours, len(keep))


def colour_columns(cache: Cache) -> list[str]:
    """Metadata columns that can colour the maps: label first, then speaker, then the rest that
    have at least two values (a constant column such as ``channels`` colours nothing)."""
    rest = [c for c in cache.clips if c not in NOT_COLOUR_COLUMNS + ("label", "speaker")
            and len({str(v) for v in cache.clips[c]}) >= 2]
    return ["label", "speaker"] + rest


def colour_groups(cache: Cache, column: str) -> ColourGroups:
    """Group the clips by ``column`` (unknown column -> ValueError)."""
    if column not in cache.clips or column in NOT_COLOUR_COLUMNS:
        raise ValueError(f"cannot colour by {column!r}")
    values = np.asarray([str(v) for v in cache.clips[column]], dtype=object)
    names, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    order = sorted(range(len(names)), key=lambda g: (-counts[g], str(names[g])))
    keep = order[:MAX_GROUPS] if len(order) <= MAX_GROUPS else order[:MAX_GROUPS - 1]
    keep = sorted(keep, key=lambda g: natural_key(str(names[g])))  # the most frequent, in reading order
    members = [np.flatnonzero(inverse == g).astype(np.int32) for g in keep]
    if len(keep) < len(order):
        members.append(np.flatnonzero(~np.isin(inverse, keep)).astype(np.int32))
    group_names = display_names([str(names[g]) for g in keep], len(keep) < len(order),
                                taken={str(v) for v in names})
    colours = [PALETTE[i % len(PALETTE)] for i in range(len(members))]
    return ColourGroups(column, tuple(group_names), tuple(members), tuple(colours), cache.n_clips)


def agreement_groups(cache: Cache, rep_a: str, rep_b: str) -> ColourGroups:
    """The clips grouped by the Jaccard agreement of their k nearest neighbours in two
    representations (``analysis.agreement``, k = ``analysis.AGREEMENT_K``), in bins low first."""
    bins = analysis.agreement_bins(analysis.agreement(cache, rep_a, rep_b))
    names = analysis.agreement_bin_names()
    members = tuple(np.flatnonzero(bins == b).astype(np.int32) for b in range(len(names)))
    return ColourGroups(AGREEMENT, tuple(names), members, AGREEMENT_COLOURS[:len(names)], cache.n_clips)


@dataclass(frozen=True)
class GroupsKey:
    """Everything the drawn groups depend on: the colour (a column or AGREEMENT), the two
    representations AGREEMENT compares (else None) and the filter ('column=value', sorted).
    ``text`` is its canonical JSON: the value the page keeps and sends back."""

    colour: str
    compare: tuple[str, str] | None
    filters: tuple[str, ...]

    @property
    def text(self) -> str:
        return json.dumps({"colour": self.colour, "compare": list(self.compare or []) or None,
                           "filter": list(self.filters)}, sort_keys=True)


MAX_KEY_CHARS = 20_000  # a groups key text longer than this (forged) is read as 'label'
KEY_MEMO_ENTRIES = 256  # parsed keys memoised per worker: at most 256 x MAX_KEY_CHARS = 5 MB of text


def groups_key(cache: Cache, colour, shown_rep=None, compare=None, filters=None,
               choices: frozenset[str] | None = None) -> GroupsKey:
    """A valid GroupsKey from untrusted parts: an unknown colour -> 'label'; AGREEMENT needs two
    different stored representations (else 'label'); filter items that are not one of the
    filter's 'column=value' choices (``choices``, computed when not given) are dropped."""
    pair = None
    if colour == AGREEMENT and cache.has_representation(shown_rep) \
            and cache.has_representation(compare) and shown_rep != compare:
        pair = (shown_rep, compare)
    colour = AGREEMENT if pair else valid_colour(cache, colour)
    if choices is None:
        choices = frozenset(analysis.filter_choices(cache, filter_columns(cache)))
    items = sorted({f for f in (filters if isinstance(filters, list) else [])[:1000]
                    if isinstance(f, str) and f in choices})
    return GroupsKey(colour, pair, tuple(items))


def parse_groups_key(cache: Cache, key, choices: frozenset[str] | None = None) -> GroupsKey:
    """A GroupsKey, its JSON text (as the page sends it back, maybe forged) or a plain colour
    column -> a valid GroupsKey (``choices`` as in ``groups_key``)."""
    if isinstance(key, GroupsKey):
        return key
    if isinstance(key, str) and key.startswith("{"):
        try:
            data = json.loads(key) if len(key) <= MAX_KEY_CHARS else {}
        except (ValueError, RecursionError):
            data = {}
        data = data if isinstance(data, dict) else {}
        compare = data.get("compare") if isinstance(data.get("compare"), list) else [None, None]
        compare = (compare + [None, None])[:2]
        return groups_key(cache, data.get("colour"), compare[0], compare[1], data.get("filter"),
                          choices)
    return groups_key(cache, key, choices=choices)


def filter_columns(cache: Cache) -> list[str]:
    """The columns the filter offers: the colour columns with 2 to MAX_FILTER_VALUES values."""
    out = []
    for column in colour_columns(cache):
        distinct = len({str(v) for v in cache.clips[column]})
        if 2 <= distinct <= MAX_FILTER_VALUES:
            out.append(column)
    return out


MAX_FILTER_VALUES = 200


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
    """``column`` if it can colour the maps (a column, or the decoder's fidelity at a depth:
    ``measures.fidelity_colours``), else 'label'."""
    if measures.parse_fidelity_colour(cache, column) is not None:
        return column
    return column if isinstance(column, str) and column in colour_columns(cache) else "label"


def fidelity_groups(cache: Cache, colour: str) -> ColourGroups:
    """The clips in quarters of a fidelity measure at a depth (``measures.fidelity_bins``)."""
    measure, depth = measures.parse_fidelity_colour(cache, colour)
    names, members, colours = measures.fidelity_bins(cache, measure, depth)
    return ColourGroups(colour, tuple(names), tuple(members), tuple(colours), cache.n_clips)


class ViewGroups:
    """The colour groups of one cache, as each view draws them, memoised in this process (a
    few arrays per column: nothing to share between workers or to pickle).

    2D views draw every clip; 3D views draw ``cache.sample_3d()`` (the clips the 3D t-SNE was
    fitted on) when the cache records one. Unknown columns fall back to 'label'.
    """

    def __init__(self, cache: Cache):
        self.cache = cache
        self._all = lru_cache(maxsize=64)(self._all_groups)
        self._drawn = lru_cache(maxsize=256)(self._drawn_groups)
        self.filter_columns = filter_columns(cache)
        self.filter_choices = frozenset(analysis.filter_choices(cache, self.filter_columns))
        self._parsed = lru_cache(maxsize=KEY_MEMO_ENTRIES)(
            lambda text: parse_groups_key(cache, text, self.filter_choices))

    def key(self, key) -> GroupsKey:
        """``key`` (a GroupsKey, its text from the page, or a colour column) as a valid GroupsKey.
        Only a text of at most MAX_KEY_CHARS is memoised: a longer one (forged: the page never
        sends one) is read as 'label' before it reaches the memo, so a client can make the
        memo hold at most KEY_MEMO_ENTRIES x MAX_KEY_CHARS characters."""
        if isinstance(key, GroupsKey):
            return key
        if isinstance(key, str):
            return self._parsed(key if len(key) <= MAX_KEY_CHARS else "label")
        return parse_groups_key(self.cache, key, self.filter_choices)

    def make_key(self, colour, shown_rep=None, compare=None, filters=None) -> GroupsKey:
        """``groups_key`` with this cache's filter choices (computed once, here)."""
        return groups_key(self.cache, colour, shown_rep, compare, filters, self.filter_choices)

    def kept(self, key) -> np.ndarray | None:
        """(n_clips,) bool: the clips ``key``'s filter keeps; None without a filter."""
        chosen = analysis.parse_filters(self.cache, self.filter_columns, list(self.key(key).filters))
        return analysis.filter_mask(self.cache, chosen)

    def all(self, key) -> ColourGroups:
        """Every clip the filter keeps, grouped as ``key`` says (a ``GroupsKey``, its text, or a
        colour column)."""
        return self._all(self.key(key))

    def drawn(self, key, view: str) -> ColourGroups:
        """The clips ``view`` draws, grouped as ``key`` says; a point's (trace, index) in that
        view is ``drawn(...).clip_at(trace, index)``."""
        return self._drawn(self.key(key), view)

    def _all_groups(self, key: GroupsKey) -> ColourGroups:
        if key.colour == AGREEMENT:
            groups = agreement_groups(self.cache, *key.compare)
        elif key.colour.startswith(measures.FIDELITY_COLOUR):
            groups = fidelity_groups(self.cache, key.colour)
        else:
            groups = colour_groups(self.cache, key.colour)
        keep = self.kept(key)
        return groups if keep is None else groups.subset(keep)

    def _drawn_groups(self, key: GroupsKey, view: str) -> ColourGroups:
        groups = self._all(key)
        sample = self.cache.sample_3d()
        if view_row(view).dim == 3 and sample is not None:
            keep = np.zeros(self.cache.n_clips, dtype=bool)
            keep[sample] = True
            return groups.subset(keep)
        return groups


SPOKEN_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def natural_key(name: str) -> tuple:
    """How a legend orders values: spoken digits in counting order, then numbers by value
    ('2' before '10'), then text case-insensitively."""
    if name in SPOKEN_DIGITS:
        return (0, SPOKEN_DIGITS.index(name), "")
    try:
        number = float(name)
    except ValueError:
        number = math.nan
    if math.isfinite(number):
        return (1, number, name)
    return (2, 0.0, name.casefold())


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


HOVER_TEXT_MAX_CLIPS = 20_000  # above this the hover names the group only (the figures stay small)


def hover_texts(cache: Cache) -> list[str] | None:
    """What hovering a point says, per clip: 'clip 12 · five · rp-f1 · five/rp-f1_0.wav' (raw
    text: the figure escapes it); None above HOVER_TEXT_MAX_CLIPS clips."""
    if cache.n_clips > HOVER_TEXT_MAX_CLIPS:
        return None
    return [f"clip {i} · {label} · {speaker} · {source}" for i, (label, speaker, source) in
            enumerate(zip(cache.clips["label"], cache.clips["speaker"], cache.clips["source"]))]


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

"""What the measures panel shows for the page's controls, as plain functions the callbacks call
(the figures in ``measures_view``, the numbers from ``explore/measures``)."""
from __future__ import annotations

import numpy as np

from dacviz_app.cache import Cache
from dacviz_app.explore import measures
from dacviz_app.explore.groups import colour_groups, valid_colour
from dacviz_app.viewer import measures_view


def probe_panels(cache: Cache, control, presentation: bool) -> tuple[dict, list[str]]:
    """(the probe figure, its note's sentences) with ``control`` (a probed column or "none")."""
    control = measures.valid_control(cache, control)
    columns = measures.probed_columns(cache)
    panels = [(c, measures.probe_series(cache, c, control)) for c in columns]
    figure = measures_view.probe_figure(panels, control, presentation)
    return figure, probe_note(cache, control)


def probe_note(cache: Cache, control: str | None) -> list[str]:
    """What the probe chart shows: the vector, the probe, the interval, the k-NN, chance, and
    the confounds (said, not scored)."""
    if not cache.probes:
        return ["This cache was made before probes: rebuild it to measure them."]
    params = cache.probes["params"]
    first = next(iter(cache.probes["rows"]), None)
    n = first["probe"]["n"] if first else cache.n_clips
    sample = first["probe"].get("sample") if first else None
    out = [f"Each clip is z averaged over its frames (1024-D) at q codebooks. Linear probe: "
           f"standardised logistic regression (C=1), {params['folds']}-fold cross-validated "
           + ("GroupKFold by " + control + " in the panels marked held out (each fold's " + control +
              " values never seen in training: below chance is possible), StratifiedKFold in the "
              "others" if control else "StratifiedKFold") +
           f", on {n:,} clips" + (f" (a stratified sample of {sample:,})" if sample else "") +
           f"; band: {params['interval']}. k-NN vote: the k={params['knn_k']} nearest other clips, "
           f"cosine, full space" + (f", only among clips of another {control}" if control else "") +
           ". Chance: the share of the most frequent value (dashed)"
           + ("; with a control, the k-NN's own chance: the most frequent value among the clips of "
              "other " + control + " values (dotted)." if control else ".")]
    for row in measures.confound_rows(cache):
        out.append("Confound: " + row["sentence"] + ". Their scores are one finding, not two.")
    if cache.untrained:
        out.append("UNTRAINED weights: z is a random network's output; scores near chance are expected.")
    return out


def fidelity_groups_for(cache: Cache, colour) -> dict[str, np.ndarray] | None:
    """{group name: clip ids} of "Colour by"'s column when it has at most
    measures.FIDELITY_GROUP_LINES values (a plain column only), else None."""
    colour = valid_colour(cache, colour)
    if colour.startswith("@"):
        return None
    groups = colour_groups(cache, colour)
    if len(groups.names) > measures.FIDELITY_GROUP_LINES:
        return None
    return dict(zip(groups.names, groups.members))


def fidelity_panel(cache: Cache, colour, presentation: bool) -> tuple[dict, list[str]]:
    """(the fidelity figure, its note) grouped by "Colour by" when it has few values."""
    summary = measures.fidelity_summary(cache, fidelity_groups_for(cache, colour))
    figure = measures_view.fidelity_figure(summary, cache.untrained, presentation)
    if summary is None:
        return figure, []
    params = summary["params"]
    lines = [f"{summary['n_clips']:,} decoded clips (audio/q<q>/) against the clip as the codec heard it; "
             + ("one median line per " + valid_colour(cache, colour) + " value; " if summary["groups"] else
                "median and interquartile band; ")
             + f"DNSMOS on {params.get('dnsmos_clips', 0):,} of them ({params.get('dnsmos_sample', '')})."]
    lines += [f"{m['title']}: {m['definition']}." for m in summary["measures"]]
    lines.append("Packages: " + ", ".join(f"{k} {v}" for k, v in params.get("packages", {}).items()) + ".")
    return figure, lines


def cka_panel(cache: Cache, presentation: bool) -> tuple[dict, list[str]]:
    """(the CKA heatmap, its note with the Jaccard between consecutive depths)."""
    table = measures.cka_table(cache)
    figure = measures_view.cka_figure(table, presentation)
    if not table:
        return figure, []
    lines = [f"Linear CKA (Kornblith et al. 2019) of the clip vectors, centred, on {table['n']:,} clips "
             f"(seed {table['seed']}): 1 = the same geometry up to rotation and scale. It is biased "
             "upwards when the dimension is large against the clips: read small values as none."]
    jac = measures.depth_jaccard(cache)
    if jac and jac["values"]:
        steps = ", ".join(f"{a}→{b} {v:.2f}" for a, b, v in
                          zip(jac["representations"], jac["representations"][1:], jac["values"]))
        lines.append(f"Neighbours kept from one depth to the next (mean Jaccard of the {jac['k']} nearest, "
                     f"cosine): {steps}. Where it reaches ~1, one more codebook stops changing the "
                     "neighbourhoods.")
    return figure, lines


def clip_fidelity_text(cache: Cache, clip, depth) -> str:
    """The clicked clip's fidelity at the A/B choice's depth, for the line under the player."""
    if cache.fidelity is None:
        return ""
    if clip is None:
        return ""
    if not depth:
        return ""  # the original plays: a depth (cb) chosen says this clip's fidelity there
    line = measures.clip_fidelity_line(cache, int(clip), int(depth))
    if line is None:
        return f"This clip was not decoded at {depth} cb."
    return f"At {depth} cb: {line}" + (" (untrained: noise)" if cache.untrained else "")

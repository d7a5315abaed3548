"""Analysis by any column on the demo cache, recomputed independently with numpy/scikit-learn:
the k-NN vote's confusion, the agreement of two representations, trust in each view, filters,
search, selections in the link, the CSV export and the offline report."""
from __future__ import annotations

import csv
import io
import json
import time

import numpy as np
import pytest
from sklearn.manifold import trustworthiness

from dacviz_app.explore import analysis
from dacviz_app.cache import open_cache
from dacviz_app.embedding.spaces import FULL_SPACE, VIEW_NAMES
from dacviz_app.explore.groups import AGREEMENT, ViewGroups, groups_key
from dacviz_app.viewer import page_state, panels
from dacviz_app.viewer.app import create_app


@pytest.fixture(scope="module")
def cache(demo_cache):
    return open_cache(demo_cache[0])


def test_the_confusion_is_the_metrics_vote_cell_by_cell(cache):
    """Its trace is the metrics table's k-NN accuracy; each cell recounted with a plain loop."""
    for column in ("label", "speaker"):
        for rep in ("z", "mfcc"):
            conf = analysis.confusion(cache, rep, column)
            row = next(r for r in cache.metrics_rows if r["representation"] == rep
                       and r["space"] == FULL_SPACE and r["column"] == column)
            assert conf["accuracy"] == pytest.approx(row["knn_accuracy"])
            assert conf["chance"] == pytest.approx(row["chance"])
            index = cache.neighbours(rep)[0][:, :conf["k"]]
            values = [str(v) for v in cache.clips[column]]
            counts = np.zeros_like(conf["counts"])
            for clip in range(cache.n_clips):  # the vote, written out: most votes, then the nearest
                votes = [values[j] for j in index[clip]]
                best = max(votes, key=lambda v: (votes.count(v), -votes.index(v)))
                counts[conf["names"].index(values[clip]), conf["names"].index(best)] += 1
            np.testing.assert_array_equal(conf["counts"], counts)
            true_value, voted = conf["names"][0], conf["names"][int(np.argmax(counts[0]))]
            cell = analysis.confusion_cell(cache, rep, column, true_value, voted)
            assert len(cell) == counts[0].max() and all(values[c] == true_value for c in cell)
    assert analysis.confusion_cell(cache, "z", "label", "no such word", "zero") == []


def test_agreement_is_the_jaccard_of_the_two_neighbour_sets(cache):
    k = analysis.AGREEMENT_K
    values = analysis.agreement(cache, "z", "mfcc")
    a, b = cache.neighbours("z")[0], cache.neighbours("mfcc")[0]
    for clip in range(cache.n_clips):
        sa, sb = set(a[clip, :k].tolist()), set(b[clip, :k].tolist())
        assert values[clip] == pytest.approx(len(sa & sb) / len(sa | sb))
    assert np.all(analysis.agreement(cache, "mfcc", "mfcc") == 1.0)
    bins = analysis.agreement_bins(np.array([0.0, 0.19, 0.2, 0.5, 0.81, 1.0]))
    assert bins.tolist() == [0, 0, 1, 2, 4, 4]
    groups = ViewGroups(cache).all(groups_key(cache, AGREEMENT, "z", "mfcc").text)
    assert groups.names == tuple(analysis.agreement_bin_names())
    assert sum(len(m) for m in groups.members) == cache.n_clips


def test_trust_of_every_view_is_sklearns(cache):
    """Stored for every representation and view; recomputed with sklearn's trustworthiness on
    cosine ranks (unit rows); continuity with the roles swapped."""
    assert cache.metrics_params["trust_k"] == analysis.TRUST_K
    for rep in cache.representations:
        x = np.asarray(cache.embedding(rep), dtype=np.float64)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        for view in VIEW_NAMES:
            row = cache.trust(rep, view)
            y = np.asarray(cache.projection(rep, view), dtype=np.float64)
            assert row["n"] == cache.n_clips and row["k"] == analysis.TRUST_K
            assert row["trustworthiness"] == pytest.approx(trustworthiness(x, y, n_neighbors=10))
            assert row["continuity"] == pytest.approx(trustworthiness(y, x, n_neighbors=10))
            assert 0.0 <= row["continuity"] <= 1.0
    layout = page_state.figures_update(cache, {v: ViewGroups(cache).drawn("label", v) for v in VIEW_NAMES},
                               "mfcc", False, set(), False)[0]["layout"]
    under = [a["text"] for a in layout["annotations"] if a["y"] == 1]  # the line under the title
    assert f"trust {cache.trust('mfcc', 'pca2')['trustworthiness']:.2f}" in under[0]
    assert layout["title"]["text"].startswith("PCA 2D · ")
    assert analysis.trust_sample(20_000, 42).size == analysis.TRUST_SAMPLE  # stated sample above 5,000


def test_a_filter_hides_the_other_clips_in_every_view_and_clicks_still_map(cache):
    speaker = str(cache.clips["speaker"][0])
    key = groups_key(cache, "label", filters=[f"speaker={speaker}", "speaker=nobody", "x=1", 5])
    assert key.filters == (f"speaker={speaker}",)
    groups = ViewGroups(cache)
    kept = [i for i in range(cache.n_clips) if str(cache.clips["speaker"][i]) == speaker]
    for view in VIEW_NAMES:
        drawn = groups.drawn(key.text, view)
        ids = sorted(int(i) for m in drawn.members for i in m)
        assert ids == kept
        assert all(cache.clips["speaker"][drawn.clip_at(g, 0)] == speaker
                   for g, m in enumerate(drawn.members) if len(m))
    other = next(i for i in range(cache.n_clips) if i not in kept)
    payload = page_state.highlight_update(cache, groups.all(key.text), "z",
                                  {"clip": 0, "cursor": -1, "play": 0, "nonce": 1}, 10, [other], set(), False)
    assert payload["views"]["pca2"]["lasso"]["ids"] == []  # a filtered-out clip is not drawn
    assert set(payload["views"]["pca2"]["neighbours"]["ids"]) <= set(kept)


def test_find_by_id_file_speaker_label_or_any_column_says_which_matched(cache):
    labels = [str(v) for v in cache.clips["label"]]
    seven = [i for i, v in enumerate(labels) if v == labels[7]]
    found = analysis.find_clips(cache, "7")
    assert found.clips == [7] and found.matched == [("id", "7", 1)]
    # a label is reachable whatever the ids: the label's own text finds every clip of it
    found = analysis.find_clips(cache, labels[7].upper())
    assert found.clips == seven and ("label", repr(labels[7].upper()), len(seven)) in found.matched
    assert f"label {labels[7].upper()!r} ({len(seven)})" in found.summary()
    speaker = str(cache.clips["speaker"][3])
    assert analysis.find_clips(cache, speaker.upper()).clips == \
        [i for i in range(cache.n_clips) if cache.clips["speaker"][i] == speaker]
    name = str(cache.clips["source"][5])
    assert 5 in analysis.find_clips(cache, name[-12:]).clips
    part = analysis.find_clips(cache, name[-12:])
    assert part.matched == [("source", f"contains {name[-12:]!r}", part.total)] and part.total >= 1
    # a column the collection brought is searched; column=value narrows to one column
    assert analysis.find_columns(cache)[:3] == ["label", "speaker", "source"]
    assert "channels" not in analysis.find_columns(cache)  # dacviz's own, not the collection's
    assert analysis.find_clips(cache, "id=7").clips == [7]
    assert analysis.find_clips(cache, f"label:{labels[7]}").clips == seven
    assert analysis.find_clips(cache, "").clips == [] and analysis.find_clips(cache, "zzz-no-such").total == 0
    assert "nothing found" in analysis.find_clips(cache, "zzz-no-such").summary()
    assert analysis.find_clips(cache, "99999999").clips == []
    capped = analysis.find_clips(cache, labels[7], 2)
    assert capped.clips == seven[:2] and capped.total == len(seven) and "the first 2 shown" in capped.summary()
    # the page: the filter's hidden clips are said and left out
    kept = np.ones(cache.n_clips, dtype=bool)
    kept[seven[0]] = False
    clips, note = page_state.find_selection(cache, labels[7], kept)
    assert clips == seven[1:] and "1 hidden by the filter" in note and "label" in note


def test_a_selection_goes_into_the_link_and_back(cache):
    ids = [0, 1, 2, 3, 7, 9, 10, 11]
    assert page_state.encode_id_ranges(ids) == "0-3,7,9-11"
    assert page_state.decode_id_ranges(cache, "0-3,7,9-11") == ids
    assert page_state.decode_id_ranges(cache, "5-999999999999,-3,x,2-1") == list(range(5, cache.n_clips))
    assert page_state.parse_query(cache, "?sel=1-2,5")["lasso"] == [1, 2, 5]
    assert page_state.link_selection(list(range(0, 4000, 2))) is None  # too long: said in the panel
    summary = {column: (counts, more) for column, counts, more in
               analysis.selection_summary(cache, ids, ["label", "speaker"])}
    assert sum(n for _v, n in summary["label"][0]) <= len(ids)
    panel = str(panels.render_lasso(cache, ids, ["label", "speaker"]))
    assert "label: " in panel and "speaker: " in panel and "×" in panel and "8 clips selected" in panel
    # a column with more values than the summary shows says how many it left out
    every = list(range(cache.n_clips))
    counts, more = {c: (v, m) for c, v, m in analysis.selection_summary(cache, every, ["label"], top=3)}["label"]
    assert len(counts) == 3 and more == len(set(map(str, cache.clips["label"]))) - 3 > 0
    shown = {c: m for c, _v, m in analysis.selection_summary(cache, every, ["label"])}["label"]
    assert shown > 0 and f"+{shown} more" in str(panels.render_lasso(cache, every, ["label"]))


def test_the_csv_export_matches_the_selection_and_defuses_formulas(cache, tmp_path):
    clips = [3, 4, 40]
    text = analysis.export_csv(cache, clips, "mfcc", 3, VIEW_NAMES)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["id"]) for r in rows] == clips
    assert [r["source"] for r in rows] == [cache.clips["source"][c] for c in clips]
    x = cache.embedding("mfcc")
    for r, c in zip(rows, clips):
        assert float(r["mfcc_tsne3_z"]) == pytest.approx(float(cache.projection("mfcc", "tsne3")[c, 2]), rel=1e-5)
        cos = 1 - x[c] @ x[3] / (np.linalg.norm(x[c]) * np.linalg.norm(x[3]))
        assert float(r["cosine_distance_to_clip_3"]) == pytest.approx(cos, abs=1e-5)
    assert float(rows[0]["cosine_distance_to_clip_3"]) == pytest.approx(0, abs=1e-6)
    assert analysis._cell("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")" and analysis._cell("-3") == "'-3"
    assert analysis._cell(-3.5) == "-3.5"  # a number stays a number
    clips, name = panels.exported_clips(cache, {"clip": 5}, [], "z", 4, None)
    assert clips[0] == 5 and len(clips) == 5 and name == "clip5-neighbours"


def test_the_report_is_one_offline_file_of_the_four_views(cache):
    groups = ViewGroups(cache)
    figures = page_state.figures_update(cache, {v: groups.drawn("speaker", v) for v in VIEW_NAMES}, "z",
                                False, set(), False)
    highlight = page_state.highlight_update(cache, groups.all("speaker"), "z",
                                    {"clip": 2, "cursor": -1, "play": 2, "nonce": 1}, 5, [7, 8], set(), False)
    from dacviz_app.viewer.report import report_html

    text = report_html(cache, "z", figures, highlight, page_state.column_rows(cache, "z", "speaker"),
                       "speaker", groups.all("speaker"))
    assert "<script src" not in text and "<link" not in text and 'src="http' not in text
    assert text.count('class="view"') == 4 and "UNTRAINED" in text and "Scored" not in text
    assert "Cluster quality, scored by speaker" in text and "clicked clip 2" in text
    data = json.loads(text.split("var figures = ")[1].split(";\nvar names")[0].replace("<\\/", "</"))
    assert len(data) == 4 and any(t.get("name") == "clicked clip" for t in data[0]["data"])


def test_export_and_analysis_callbacks_over_http(demo_cache):
    """The Dash callbacks answer the page's requests: the confusion figure, a heatmap cell
    click that selects, and the CSV download."""
    client = create_app(demo_cache[0]).server.test_client()
    cache = open_cache(demo_cache[0])
    body = {"output": "..confusion.figure...analysis-note.children..",
            "outputs": [{"id": "confusion", "property": "figure"}, {"id": "analysis-note", "property": "children"}],
            # it follows the maps being drawn (maps-drawn), the controls are its state
            "inputs": [{"id": "maps-drawn", "property": "data", "value": {"signature": "x", "at": 1}},
                       {"id": "control", "property": "value", "value": "none"},
                       {"id": "compare", "property": "value", "value": "z"}],
            "state": [{"id": "rep", "property": "value", "value": "mfcc"},
                      {"id": "depth", "property": "value", "value": None},
                      {"id": "colour", "property": "value", "value": "speaker"},
                      {"id": "presentation", "property": "value", "value": []},
                      {"id": "filter", "property": "value", "value": []}],
            "changedPropIds": ["maps-drawn.data"]}
    answer = client.post("/_dash-update-component", json=body)
    assert answer.status_code == 200
    text = answer.get_data(as_text=True)
    assert "k-NN vote by speaker" in text and "Agreement mfcc vs z" in text
    conf = analysis.confusion(cache, "mfcc", "speaker")
    name = conf["names"][0]
    clips = page_state.confusion_cell_clips(cache, "mfcc", "speaker", {"points": [{"x": name, "y": name}]})
    assert clips == analysis.confusion_cell(cache, "mfcc", "speaker", name, name) and clips
    assert page_state.confusion_cell_clips(cache, "mfcc", "speaker", {"points": [{"x": 1, "y": None}]}) == []


def test_the_filtered_clips_are_scored_among_themselves(cache):
    """On request: the kept clips' own metrics, recomputed with scikit-learn on those clips."""
    from sklearn.metrics import silhouette_score

    speakers = sorted(set(cache.clips["speaker"]))[:3]
    keep = np.asarray([s in speakers for s in cache.clips["speaker"]])
    result = analysis.subset_metrics(cache, "mfcc", "speaker", keep, VIEW_NAMES)
    ids = np.flatnonzero(keep)
    codes = np.unique([cache.clips["speaker"][i] for i in ids], return_inverse=True)[1]
    full = result["rows"][0]
    assert result["n"] == len(ids) and not result["sampled"] and full["space"] == "full"
    x = np.asarray(cache.embedding("mfcc")[ids], dtype=np.float64)
    assert full["silhouette_cosine"] == pytest.approx(silhouette_score(x, codes, metric="cosine"), abs=1e-5)
    assert full["chance"] == pytest.approx(1 / 3)
    assert [r["space"] for r in result["rows"][1:]] == list(VIEW_NAMES)
    y = np.asarray(cache.projection("mfcc", "pca2")[ids], dtype=np.float64)
    assert result["rows"][1]["silhouette"] == pytest.approx(silhouette_score(y, codes), abs=1e-6)


def test_forged_keys_links_and_filters_cost_what_the_cache_costs(cache, demo_cache):
    """A groups key nested 100,000 deep, a link of huge ranges, '=' in names: valid answers."""
    groups = ViewGroups(cache)
    deep = '{"colour": ' + "[" * 100_000
    assert groups.key(deep).colour == "label" and groups.key("{" * 30).colour == "label"
    assert groups.key('{"colour": "speaker", "filter": [5, {"a": 1}, "speaker=nobody"]}').filters == ()
    started = time.perf_counter()
    ids = page_state.decode_id_ranges(cache, ",".join(["0-999999999999"] * 500))
    assert ids == list(range(cache.n_clips)) and time.perf_counter() - started < 1
    assert page_state.parse_query(cache, ["not", "a", "string"])["rep"] == "z"
    assert analysis.parse_filters(cache, ["a", "a=b"], ["a=b=c", "a=x", "b=1"]) == {"a=b": {"c"}, "a": {"x"}}
    # a filter also holds for what find, a heatmap cell or a link select; /clip-at reads the figure's key
    speaker = str(cache.clips["speaker"][0])
    key = groups_key(cache, "label", filters=[f"speaker={speaker}"])
    client = create_app(demo_cache[0]).server.test_client()
    drawn = groups.drawn(key.text, "tsne2")
    curve = next(g for g, m in enumerate(drawn.members) if len(m))
    answer = client.get(f"/clip-at/tsne2/{curve}/0", query_string={"key": key.text}).get_json()
    assert answer == {"clip": drawn.clip_at(curve, 0)}
    figure = page_state.figures_update(cache, {v: groups.drawn(key.text, v) for v in VIEW_NAMES}, "z", False,
                               set(), False, key=key.text, filtered=True)[0]["layout"]
    assert figure["meta"] == {"groups": key.text, "rep": "z"}
    assert "(the filter)" in figure["annotations"][0]["text"]

"""The app's callbacks and audio route, called directly on the demo cache (no browser)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import soundfile as sf
from dash import Patch

from dacviz_app.embedding import projections
from dacviz_app.cache import CachePaths, atomic_save_npy, open_cache
from dacviz_app.embedding.spaces import VIEW_NAMES as VIEWS
from dacviz_app.precompute.synthetic import build_synthetic_cache
from dacviz_app.explore.groups import ViewGroups, colour_groups, neighbour_rows
from dacviz_app.viewer import analysis_view, page_state
from dacviz_app.viewer.app import create_app


@pytest.fixture(scope="module")
def cache(demo_cache):
    return open_cache(demo_cache[0])


@pytest.fixture(scope="module")
def groups(cache):
    return colour_groups(cache, "label")


@pytest.fixture(scope="module")
def sampled_cache(demo_cache, tmp_path_factory):
    """A cache whose 3D views draw a sample: 200 synthetic clips, 3D sample of 50."""
    patch = pytest.MonkeyPatch()
    patch.setattr(projections, "MAX_3D_POINTS", 50)
    out = tmp_path_factory.mktemp("sampled") / "cache"
    try:
        build_synthetic_cache(demo_cache[0], out, 200, say=lambda _: None, depths=())
    finally:
        patch.undo()
    return out


def test_a_click_on_any_trace_selects_the_clip_drawn_there(cache, groups):
    for group in (0, 5, len(groups.names) - 1):
        for position in (0, len(groups.members[group]) - 1):
            clip = int(groups.members[group][position])
            click = {"points": [{"curveNumber": group, "pointNumber": position}]}
            sel = page_state.next_selection(cache, groups, "view-tsne3", None, "z", 10, click=click)
            assert sel["clip"] == clip and sel["play"] == clip and sel["cursor"] == -1
            assert cache.clips["label"][clip] == groups.names[group]
    # a trace number past the groups (there are no overlay traces) selects nothing
    click = {"points": [{"curveNumber": len(groups.names), "pointNumber": 0, "customdata": 17}]}
    assert page_state.next_selection(cache, groups, "view-pca2", None, "z", 10, click=click)["clip"] is None
    # junk points change nothing
    before = {"clip": 3, "cursor": -1, "play": 3, "nonce": 4}
    for point in ({}, {"curveNumber": 99, "pointNumber": 0}, {"curveNumber": 0, "pointNumber": 10**6},
                  {"curveNumber": "x", "pointNumber": None}):
        assert page_state.next_selection(cache, groups, "view-pca2", before, "z", 10,
                                 click={"points": [point]})["clip"] == 3


def test_keys_step_through_neighbours_and_clear_ends_the_selection(cache, groups):
    rows = neighbour_rows(cache, "z", 7, 3)
    sel = {"clip": 7, "cursor": -1, "play": 7, "nonce": 1}
    sel = page_state.next_selection(cache, groups, "key-next", sel, "z", 3)
    assert (sel["cursor"], sel["play"]) == (0, rows[0]["id"])
    for _ in range(5):
        sel = page_state.next_selection(cache, groups, "key-next", sel, "z", 3)
    assert (sel["cursor"], sel["play"]) == (2, rows[2]["id"])  # stops at the last
    sel = page_state.next_selection(cache, groups, "key-prev", {**sel, "cursor": 0}, "z", 3)
    assert (sel["cursor"], sel["play"]) == (-1, 7)
    sel = page_state.next_selection(cache, groups, {"type": "play-neighbour"}, sel, "z", 3,
                            neighbour=rows[1]["id"])
    assert (sel["clip"], sel["cursor"], sel["play"]) == (7, 1, rows[1]["id"])
    assert page_state.next_selection(cache, groups, "clear", sel, "z", 3)["clip"] is None


def test_url_round_trip_and_bad_values(cache):
    assert page_state.parse_query(cache, "?rep=mfcc&colour=speaker&k=7&clip=12&present=1&cmp=z") == {
        "rep": "mfcc", "colour": "speaker", "k": 7, "clip": 12, "presentation": True, "depth": 12,
        "compare": "z", "filter": [], "hide": [], "lasso": [], "views": {}}
    assert page_state.parse_query(cache, "?rep=../../etc&colour=x&k=-1&clip=99999999999&cmp=x&sel=a") == {
        "rep": "z", "colour": "label", "k": 1, "clip": None, "presentation": False, "depth": 12,
        "compare": "mfcc", "filter": [], "hide": [], "lasso": [], "views": {}}
    assert page_state.parse_query(cache, "?k=1e9")["k"] == 10


def test_full_build_and_the_legend_patch(cache, groups):
    by_view = {v: groups for v in VIEWS}
    figures = page_state.figures_update(cache, by_view, "z", False, set(), legend_only=False)
    for view, fig in zip(VIEWS, figures):
        assert len(fig["data"]) == len(groups.names)
        assert fig["data"][0]["x"]["dtype"] == "f4"  # typed arrays, not JSON lists
        assert fig["data"][0]["type"] == ("scattergl" if view in ("pca2", "tsne2") else "scatter3d")
        assert ("variance" if view.startswith("pca") else "perplexity") in fig["layout"]["title"]["text"]
        assert sum(len(np.frombuffer(__import__("base64").b64decode(t["x"]["bdata"]), "<f4"))
                   for t in fig["data"]) == cache.n_clips
    patches = page_state.figures_update(cache, by_view, "z", False, {"yes"}, legend_only=True)
    for patch in patches:
        assert isinstance(patch, Patch)
        ops = patch.to_plotly_json()["operations"]
        assert all(op["location"][2:] == ["visible"] for op in ops)  # nothing else is resent
        hidden = [op["location"][1] for op in ops if op["params"]["value"] is False]
        assert hidden == [groups.names.index("yes")]


def test_a_selection_is_a_small_payload_for_all_four_views(cache, groups):
    sel = {"clip": 11, "cursor": -1, "play": 11, "nonce": 1}
    payload = page_state.highlight_update(cache, groups, "z", sel, 10, [], set(), False)
    rows = neighbour_rows(cache, "z", 11, 10)
    assert payload["active"]
    for view in VIEWS:
        entry = payload["views"][view]
        assert entry["selected"]["ids"] == [11]
        assert entry["neighbours"]["ids"] == [r["id"] for r in rows]
        coords = cache.projection("z", view)
        np.testing.assert_allclose(entry["neighbours"]["xyz"], coords[[r["id"] for r in rows]], atol=1e-4)
        assert len(entry["selected"]["xyz"][0]) == (3 if view.endswith("3") else 2)
    # another representation, another k, a hidden label and a lasso
    yes = {int(i) for i in groups.members[groups.names.index("yes")]}
    payload = page_state.highlight_update(cache, groups, "mfcc", sel, 5, [1, 2, 10**9], {"yes"}, False)
    mfcc = [r["id"] for r in neighbour_rows(cache, "mfcc", 11, 5)]
    assert mfcc != [r["id"] for r in rows[:5]]
    for view in VIEWS:
        assert payload["views"][view]["neighbours"]["ids"] == [i for i in mfcc if i not in yes]
        assert payload["views"][view]["lasso"]["ids"] == [i for i in (1, 2) if i not in yes]
    assert not page_state.highlight_update(cache, groups, "z", None, 10, [], set(), False)["active"]


def test_3d_views_draw_exactly_the_sample_the_3d_tsne_was_fitted_on(sampled_cache):
    cache = open_cache(sampled_cache)
    sample = cache.sample_3d()
    assert len(sample) == 50 and cache.manifest["sample_3d"] == {"n": 50, "seed": cache.seed}
    assert cache.projection_info["z"]["tsne3"]["fit_sample"] == 50
    view_groups = ViewGroups(cache)
    drawn3 = view_groups.drawn("label", "tsne3")
    assert np.array_equal(np.sort(np.concatenate(drawn3.members)), sample)
    assert view_groups.drawn("label", "tsne2") is view_groups.all("label")
    figures = page_state.figures_update(cache, {v: view_groups.drawn("label", v) for v in VIEWS}, "z",
                                False, set(), legend_only=False)
    notes = [" ".join(a["text"] for a in f["layout"]["annotations"] if a["y"] == 0) for f in figures]
    assert notes == ["", "50 of 200 drawn (seeded sample)", "", "50 of 200 drawn (seeded sample)"]
    assert cache.trust("z", "tsne3")["n"] == 50 and cache.trust("z", "tsne2")["n"] == 200  # what each draws
    group = next(g for g, m in enumerate(drawn3.members) if len(m))
    click = {"points": [{"curveNumber": group, "pointNumber": 0}]}
    sel = page_state.next_selection(cache, drawn3, "view-tsne3", None, "z", 10, click=click)
    assert sel["clip"] == int(drawn3.members[group][0])


def test_the_app_draws_the_recorded_sample_not_one_it_draws_again(sampled_cache, tmp_path):
    import shutil
    copy = tmp_path / "cache"
    shutil.copytree(sampled_cache, copy)
    other = np.arange(100, 150)  # not what any seed would draw
    atomic_save_npy(CachePaths(copy).sample_3d, other)
    drawn = ViewGroups(open_cache(copy)).drawn("speaker", "pca3")
    assert np.array_equal(np.sort(np.concatenate(drawn.members)), other)
    atomic_save_npy(CachePaths(copy).sample_3d, np.arange(49))  # not the recorded size
    with pytest.raises(Exception, match="sorted, distinct clip ids"):
        open_cache(copy)


def test_lasso_points_map_to_clips(cache, groups):
    data = {"points": [{"curveNumber": 0, "pointNumber": 0}, {"curveNumber": 1, "pointIndex": 2},
                       {"curveNumber": 0, "pointNumber": 0}, {"bogus": True}]}
    assert page_state.points_to_clips(cache, groups, data) == sorted(
        {int(groups.members[0][0]), int(groups.members[1][2])})
    assert page_state.points_to_clips(cache, groups, None) == []


def test_metrics_table_marks_the_current_representation(cache):
    table = analysis_view.metrics_table(page_state.column_rows(cache, "codes_mean"), "codes_mean", cache.metrics_params)
    rows = table.children[1].children[1].children
    # the four representations and the speaker encoder x five spaces, scored by the label
    assert len(rows) == 25
    assert {r.children[0].children for r in rows if r.className == "current"} == {"codes_mean"}
    table = analysis_view.metrics_table(page_state.column_rows(cache, "z_q4"), "z_q4", cache.metrics_params)
    rows = table.children[1].children[1].children  # the slider's depth joins the table
    assert len(rows) == 30 and {r.children[0].children for r in rows if r.className == "current"} == {"z_q4"}
    # with the weights notes: each representation says whether its encoder is trained
    notes = analysis_view.weights_notes(cache)
    assert notes["z"] == "untrained" and notes["mfcc"] == "no weights" and notes["resemblyzer"] == "trained"
    table = analysis_view.metrics_table(page_state.column_rows(cache, "z"), "z", cache.metrics_params, notes=notes)
    names = {r.children[0].children[0]: r.children[0].children[1].children
             for r in table.children[1].children[1].children}
    assert names == {"z": " untrained", "codes_concat": " untrained", "codes_mean": " untrained",
                     "mfcc": " no weights", "resemblyzer": " trained"}


def test_the_metrics_follow_colour_by_with_their_chance_level(cache):
    assert page_state.metrics_column(cache, "speaker") == "speaker"
    assert page_state.metrics_column(cache, "duration_s") == "label"  # not a category: the label's
    column = page_state.metrics_column(cache, "speaker")
    table = analysis_view.metrics_table(page_state.column_rows(cache, "z", column), "z", cache.metrics_params, column, "speaker")
    assert "Scored by speaker" in json.dumps(table.to_plotly_json(), default=str)
    rows = table.children[1].children[1].children
    assert len(rows) == 25
    speakers = np.asarray(cache.clips["speaker"])
    chance = max(np.mean(speakers == s) for s in set(speakers))
    assert {r.children[7].children for r in rows} == {f"{chance:.3f}"}  # the same in every space
    other = analysis_view.metrics_table(page_state.column_rows(cache, "z", "label"), "z", cache.metrics_params, "label",
                             "duration_s")
    assert "'duration_s' is not a scored column" in json.dumps(other.to_plotly_json(), default=str)


def test_audio_route_serves_only_the_cache_clips(demo_cache, tmp_path):
    app = create_app(demo_cache[0])
    client = app.server.test_client()
    cache = open_cache(demo_cache[0])
    ok = client.get(f"/audio/0?v={cache.identity}")  # the page's URL: names the cache
    assert ok.status_code == 200 and ok.mimetype == "audio/wav"
    assert ok.data == cache.audio_path(0).read_bytes()
    assert "max-age=86400" in ok.headers["Cache-Control"] and ok.headers.get("ETag")
    part = client.get("/audio/0", headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.data == ok.data[10:20]
    bare = client.get("/audio/0")  # no cache named: the browser must revalidate
    assert bare.data == ok.data and "no-cache" in bare.headers["Cache-Control"]
    assert "max-age" not in bare.headers["Cache-Control"]
    assert client.get("/audio/0", headers={"If-None-Match": bare.headers["ETag"]}).status_code == 304
    for bad in ("/audio/-1", f"/audio/{cache.n_clips}", "/audio/99999999999999999999",
                "/audio/abc", "/audio/..%2f..%2fmanifest.json", "/audio/../manifest.json",
                "/audio/0%00", "/audio//etc/passwd", "/audio/1.5"):
        assert client.get(bad).status_code == 404, bad


def test_clip_at_names_the_clip_drawn_at_a_point_and_nothing_else(sampled_cache):
    client = create_app(sampled_cache).server.test_client()  # 3D views draw a sample: clicks map through it
    cache = open_cache(sampled_cache)
    for colour in ("label", "speaker"):
        full = colour_groups(cache, colour)
        for view in VIEWS:
            drawn = ViewGroups(cache).drawn(colour, view)
            curve = next(g for g, m in enumerate(drawn.members) if len(m) > 1)
            for point in (0, len(drawn.members[curve]) - 1):
                answer = client.get(f"/clip-at/{view}/{curve}/{point}?colour={colour}")
                assert answer.status_code == 200
                assert answer.get_json() == {"clip": drawn.clip_at(curve, point)}
    assert client.get("/clip-at/tsne2/0/0?colour=nonsense").get_json() == \
        {"clip": colour_groups(cache, "label").clip_at(0, 0)}  # unknown colour: label, as the page
    speaker = str(cache.clips["speaker"][7])  # the link's filter: the drawn points are the kept ones
    kept = ViewGroups(cache).drawn(f'{{"colour": "label", "filter": ["speaker={speaker}"]}}', "pca2")
    curve = next(g for g, m in enumerate(kept.members) if len(m))
    answer = client.get(f"/clip-at/pca2/{curve}/0?colour=label&filter=speaker%3D{speaker}").get_json()
    assert answer == {"clip": kept.clip_at(curve, 0)} and cache.clips["speaker"][answer["clip"]] == speaker
    for bad in ("/clip-at/pca4/0/0", "/clip-at/tsne2/-1/0", "/clip-at/tsne2/0/-1",
                f"/clip-at/tsne2/{len(full.names) + 5}/0", "/clip-at/tsne2/0/99999999999999999999",
                "/clip-at/tsne2/0/1.5", "/clip-at/..%2f..%2fmanifest.json/0/0", "/clip-at/tsne2/0"):
        answer = client.get(bad)
        assert answer.status_code == 404 and b"Traceback" not in answer.data, bad


def test_clip_at_draws_the_clicked_clips_neighbours_as_the_dash_path_will(sampled_cache):
    """The early highlight a click gets from /clip-at is the payload the Dash round trip sends
    after it (same neighbours, k, hidden groups, coordinates in every view)."""
    from dacviz_app.viewer.page_state import highlight_update

    client = create_app(sampled_cache).server.test_client()
    cache = open_cache(sampled_cache)
    groups = ViewGroups(cache)
    key = groups.make_key("speaker", "mfcc")
    drawn = groups.drawn(key, "tsne2")
    hidden = groups.all(key).names[1]
    answer = client.get("/clip-at/tsne2/0/1", query_string={
        "key": key.text, "rep": "mfcc", "k": "7", "hide": hidden, "highlight": "1"}).get_json()
    clip = drawn.clip_at(0, 1)
    expected = highlight_update(cache, groups.all(key), "mfcc", {"clip": clip, "play": clip}, 7, [],
                                {hidden}, False)
    assert answer["clip"] == clip and answer["highlight"] == expected
    neighbours = answer["highlight"]["views"]["pca3"]["neighbours"]["ids"]
    assert 0 < len(neighbours) <= 7 and not any(cache.clips["speaker"][i] == hidden for i in neighbours)
    # a representation it does not hold, a huge k, hostile hides: the clip, and no error
    assert client.get("/clip-at/tsne2/0/1", query_string={"key": key.text, "rep": "../x", "highlight": "1"}
                      ).get_json() == {"clip": clip}
    big = client.get("/clip-at/tsne2/0/1", query_string={
        "key": key.text, "rep": "z", "k": "10" * 30, "hide": ["<x>"] * 500, "highlight": "1"})
    assert big.status_code == 200
    assert len(big.get_json()["highlight"]["views"]["pca2"]["neighbours"]["ids"]) <= cache.knn_k


def test_a_symlink_out_of_the_cache_is_not_served(demo_cache, tmp_path):
    import shutil
    copy = tmp_path / "cache"
    shutil.copytree(demo_cache[0], copy)
    secret = tmp_path / "secret.wav"
    secret.write_bytes(b"RIFF secret")
    target = copy / "audio" / open_cache(copy).clips["audio"][0]
    target.unlink()
    os.symlink(secret, target)
    client = create_app(copy).server.test_client()
    assert client.get("/audio/0").status_code == 404
    assert client.get("/audio/1").status_code == 200


def test_the_page_is_served_without_any_outside_link(demo_cache):
    client = create_app(demo_cache[0]).server.test_client()
    page = client.get("/").get_data(as_text=True)
    assert "UNTRAINED" not in page  # the banner is in the layout, checked below
    layout = client.get("/_dash-layout").get_data(as_text=True)
    assert "UNTRAINED CODEC WEIGHTS" in layout
    for text in (page, layout):
        assert "https://" not in text and "http://" not in text.replace("http://www.w3.org", "")
    css = client.get("/assets/0-bootstrap.min.css")
    assert css.status_code == 200 and b"Bootstrap" in css.data[:200]


def test_the_cache_is_the_one_judge_of_clip_ids_and_k(cache):
    n = cache.n_clips
    assert [cache.clip_or_none(v) for v in (0, "7", n - 1, n, -1, "x", None, True, 10**30, [1])] == \
        [0, 7, n - 1, None, None, None, None, None, None, None]
    assert [cache.clamp_k(v, 10) for v in (5, "3", 0, -4, 10**9, "many", None)] == \
        [5, 3, 1, 1, cache.knn_k, 10, 10]
    assert cache.dim("z") == 1024 and cache.dim("mfcc") == 80 and cache.seed == 42
    assert cache.has_representation("z") and not cache.has_representation("../z")


def test_decoded_audio_and_sound_are_served_under_the_audio_rules(demo_cache):
    import json

    cache = open_cache(demo_cache[0])
    client = create_app(demo_cache[0]).server.test_client()
    v = cache.identity
    clip = next(i for i in range(1, cache.n_clips) if cache.reconstruction_path(i, 4) is not None)
    for q in cache.reconstruction_depths:
        answer = client.get(f"/audio/{clip}?v={v}&q={q}")
        assert answer.status_code == 200 and answer.data == cache.reconstruction_path(clip, q).read_bytes()
        assert answer.data != cache.audio_path(clip).read_bytes()
    sound = client.get(f"/sound/{clip}?v={v}&q=4")
    summary = json.loads(sound.data)
    assert sound.status_code == 200 and summary["n_mels"] == 64 and len(sound.data) < 16_000
    assert client.get(f"/sound/{clip}?v={v}").get_json()["duration_s"] == \
        pytest.approx(cache.clips["duration_s"][clip], abs=1e-3)
    for bad in (f"/audio/3?v={v}&q=3", f"/audio/3?v={v}&q=-1", f"/audio/3?v={v}&q=1e3",
                f"/audio/3?v={v}&q=../../manifest.json", "/audio/3?v=other&q=4",
                f"/sound/{cache.n_clips}?v={v}", f"/sound/3?v={v}&q=5", "/sound/x", "/sound/3/4"):
        answer = client.get(bad)
        assert answer.status_code == 404 and b"Traceback" not in answer.data, bad


def test_the_codec_lens_controls_and_charts(cache):
    from dacviz_app.embedding.metrics import codebook_usage
    from dacviz_app.explore.groups import active_representation, depth_metrics

    assert page_state.parse_query(cache, "?q=4")["depth"] == 4
    assert page_state.parse_query(cache, "?q=99")["depth"] == 12 and page_state.parse_query(cache, "?q=x")["depth"] == 12
    assert active_representation(cache, "z", 4) == "z_q4" and active_representation(cache, "z", 12) == "z"
    assert active_representation(cache, "mfcc", 4) == "mfcc"  # the slider applies to z
    assert page_state.valid_rep(cache, "z_q4") == "z"  # depths are reached by the slider, not the dropdown
    rows = depth_metrics(cache, "speaker")
    assert [r["q"] for r in rows] == [q for q, _ in cache.depths()] and rows[-1]["representation"] == "z"
    depth_fig, usage_fig, note = page_state.codec_charts(cache, "speaker", 4, False)
    accuracy = next(t for t in depth_fig["data"] if t["name"].startswith("k-NN"))
    assert accuracy["y"] == [r["knn_accuracy"] for r in rows] and depth_fig["layout"]["shapes"][0]["x0"] == 4
    usage = codebook_usage(cache.code_counts())
    assert usage_fig["data"][0]["y"] == usage["used"] and all(1 <= u <= 1024 for u in usage["used"])
    assert "'speaker'" in note and "UNTRAINED" in note
    _, _, note = page_state.codec_charts(cache, "original_rate", 4, False)  # not scored: the label is
    assert "scored by 'label'" in note


def test_codebook_usage_counts_entries_and_their_perplexity():
    from dacviz_app.embedding.metrics import codebook_usage

    counts = np.zeros((2, 8), np.int64)
    counts[0, :4] = 5  # four entries used equally: perplexity 4
    counts[1, 0] = 7  # one entry: perplexity 1
    usage = codebook_usage(counts)
    assert usage["used"] == [4, 1] and usage["codebook_size"] == 8
    assert usage["perplexity"] == pytest.approx([4.0, 1.0])


def test_a_cache_from_before_the_codec_lens_opens_with_its_controls_hidden(demo_cache, tmp_path):
    """Made before depths, reconstructions and code counts existed: the page still works, the
    slider, the A/B choice and the charts are hidden with a one-line note."""
    import json
    import shutil

    copy = tmp_path / "old"
    shutil.copytree(demo_cache[0], copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    for key in ("depths", "reconstructions", "sample_3d"):
        manifest.pop(key)
    manifest["representations"] = {name: {k: v for k, v in d.items() if k not in ("depth", "kbps")}
                                   for name, d in manifest["representations"].items()
                                   if not name.startswith("z_q")}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    (copy / "arrays" / "code_counts.npy").unlink()
    shutil.rmtree(copy / "audio" / "q4")
    old = open_cache(copy)
    assert old.depths() == [] and old.reconstruction_depths == [] and old.code_counts() is None
    app = create_app(copy)
    client = app.server.test_client()
    layout = client.get("/_dash-layout").get_json()

    def find(node, wanted):
        if isinstance(node, dict):
            if node.get("props", {}).get("id") == wanted:
                return node
            return next((f for f in map(lambda c: find(c, wanted), node.values()) if f), None)
        if isinstance(node, list):
            return next((f for f in map(lambda c: find(c, wanted), node) if f), None)
        return None

    for hidden in ("depth-box", "ab-box", "codec-panel"):
        assert find(layout, hidden)["props"]["hidden"] is True, hidden
    assert "no codebook depths" in json.dumps(find(layout, "depth-box"))
    assert page_state.parse_query(old, "?q=4")["depth"] is None and page_state.shown_rep(old, "z", 4) == "z"
    assert client.get(f"/audio/3?v={old.identity}&q=4").status_code == 404
    figures = page_state.figures_update(old, {v: ViewGroups(old).drawn("label", v) for v in VIEWS}, "z",
                                False, set(), legend_only=False)
    assert len(figures) == 4 and all(f["layout"]["uirevision"] == "z" for f in figures)


def test_the_sound_memo_never_reads_a_folder_another_user_could_have_planted(tmp_path, monkeypatch):
    import tempfile

    from dacviz_app.viewer.memo import private_folder

    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    mine = private_folder("memo")
    assert mine.parent == tmp_path and (mine.stat().st_mode & 0o777) == 0o700
    assert private_folder("memo") == mine  # shared by the server's workers
    planted = tmp_path / f"planted-uid{os.getuid()}"
    planted.mkdir(mode=0o777)
    planted.chmod(0o777)  # writable by anyone: not ours to trust
    other = private_folder("planted")
    assert other != planted and (other.stat().st_mode & 0o777) == 0o700


def test_the_sound_memo_is_bounded_in_bytes_and_old_memos_are_removed(tmp_path, monkeypatch):
    import tempfile
    import time

    from dacviz_app.explore import sound
    from dacviz_app.viewer.memo import private_folder, remove_stale_private_folders

    tone = tmp_path / "tone.wav"
    rate = 16000
    for seconds in (1.0, 60.0):  # the bound holds for the shortest and the longest drawn clip
        t = np.arange(int(seconds * rate)) / rate
        sf.write(tone, 0.5 * np.sin(2 * np.pi * 440 * t), rate, subtype="PCM_16")
        size = len(json.dumps(sound.sound_summary(tone)))
        assert size <= sound.summary_bytes(seconds) < 1.2 * size + 2048, (seconds, size)
        assert sound.memo_entries(seconds) * size <= sound.MEMO_BYTES
    assert sound.memo_entries(0.5) == 20_000 and sound.memo_entries(600.0) == sound.memo_entries(60.0)

    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    old, fresh = private_folder("dacviz-sound-old"), private_folder("dacviz-sound-fresh")
    other = private_folder("something-else")
    week_ago = time.time() - 8 * 86400
    for folder in (old, other):
        os.utime(folder, (week_ago, week_ago))
    assert remove_stale_private_folders("dacviz-sound-") == [old]
    assert not old.exists() and fresh.exists() and other.exists()


def test_odd_depths_in_urls_are_refused_not_crashed_on(cache):
    client = create_app(cache.root).server.test_client()
    for q in ("²", "٤", "4.0", "0004", " 4"):
        assert client.get(f"/audio/3?v={cache.identity}&q={q}").status_code == 404, q
        assert client.get(f"/sound/3?v={cache.identity}&q={q}").status_code == 404, q
        assert page_state.parse_query(cache, f"?q={q}")["depth"] == 12, q

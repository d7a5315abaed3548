"""What the codec keeps, as the demo cache stores it: every number recomputes with numpy,
scikit-learn and the reference packages from the cache's own files."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from dacviz_app.cache import open_cache


def codes_of(values) -> np.ndarray:
    _, codes = np.unique(np.asarray([str(v) for v in values]), return_inverse=True)
    return codes


def test_fidelity_recomputes_from_the_wavs_with_the_reference_packages(demo_cache):
    from pesq import pesq
    from pystoi import stoi

    cache = open_cache(demo_cache[0])
    fid = cache.fidelity
    assert fid is not None and list(fid.depths) == cache.reconstruction_depths
    assert len(fid.clip_ids) == cache.reconstructed_clips
    for row in (0, len(fid.clip_ids) // 2, len(fid.clip_ids) - 1):
        clip = int(fid.clip_ids[row])
        ref, rate = sf.read(str(cache.paths.audio(cache.clips["audio"][clip])))
        for col, q in enumerate(fid.depths):
            deg, _ = sf.read(str(cache.reconstruction_path(clip, q)))
            n = min(len(ref), len(deg))
            s, s_hat = ref[:n] - ref[:n].mean(), deg[:n] - deg[:n].mean()
            target = np.dot(s_hat, s) / np.dot(s, s) * s
            si_sdr = 10 * np.log10(np.sum(target ** 2) / np.sum((s_hat - target) ** 2))
            assert fid.values["si_sdr"][row, col] == pytest.approx(si_sdr, abs=1e-3)
            stored_stoi = fid.values["stoi"][row, col]
            if np.isfinite(stored_stoi):
                assert stored_stoi == pytest.approx(stoi(ref[:n], deg[:n], rate), abs=1e-5)
            stored_pesq = fid.values["pesq"][row, col]
            if np.isfinite(stored_pesq):
                assert stored_pesq == pytest.approx(pesq(rate, ref[:n], deg[:n], "wb"), abs=1e-4)
    scored = np.isfinite(fid.dnsmos_original)
    # as many clips scored as the run asked for (none on a CPU by default; tests/unit/test_fidelity.py
    # checks DNSMOS against speechmos, and test_cache_format_doc.py stores it through fidelity_all)
    assert scored.sum() == json.loads(cache.paths.fidelity_info.read_text())["params"]["dnsmos_clips"]


def test_confounds_probes_and_cka_recompute_with_scikit_learn(demo_cache):
    from sklearn.metrics import adjusted_mutual_info_score

    cache = open_cache(demo_cache[0])
    probes = cache.probes
    label, speaker = codes_of(cache.clips["label"]), codes_of(cache.clips["speaker"])
    pair = next(r for r in probes["confounds"] if {r["a"], r["b"]} == {"label", "speaker"})
    assert pair["ami"] == pytest.approx(adjusted_mutual_info_score(label, speaker))
    assert not pair["confounded"]  # the demo crosses 12 words with 10 voices
    # the plain k-NN of every row is the metrics table's own k-NN accuracy
    for row in probes["rows"]:
        if row["control"] is None:
            metric = next(m for m in cache.metrics_rows if m["representation"] == row["representation"]
                          and m["space"] == "full" and m["column"] == row["column"])
            assert row["knn"]["accuracy"] == pytest.approx(metric["knn_accuracy"])
    # controlled k-NN from the exact cosine neighbours (the whole table suffices at 120 clips)
    from dacviz_app.embedding.probes import controlled_knn_accuracy_exact

    x = np.load(cache.paths.array("mfcc", "embedding"))
    row = next(r for r in probes["rows"] if r["representation"] == "mfcc" and r["column"] == "label"
               and r["control"] == "speaker")
    exact = controlled_knn_accuracy_exact(x, label, speaker, 5)
    assert row["knn"]["accuracy"] == pytest.approx(exact["accuracy"])
    # CKA: the stored matrix's mfcc-z cell from the formula
    table = probes["geometry"]["cka"]
    names = table["representations"]
    a, b = x - x.mean(0), np.load(cache.paths.array("z", "embedding")).astype(np.float64)
    b = b - b.mean(0)
    cka = np.linalg.norm(b.T @ a) ** 2 / (np.linalg.norm(a.T @ a) * np.linalg.norm(b.T @ b))
    assert table["matrix"][names.index("mfcc")][names.index("z")] == pytest.approx(cka, abs=1e-5)
    # every probe says its chance, interval and folds
    probe = row["probe"]
    assert probe["chance"] == pytest.approx(np.bincount(label).max() / len(label))
    assert probe["ci_low"] <= probe["accuracy"] <= probe["ci_high"] and probe["cv"] == "GroupKFold by control"


def test_a_linear_probe_recomputes_with_its_own_folds(demo_cache):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cache = open_cache(demo_cache[0])
    label = codes_of(cache.clips["label"])
    x = np.load(cache.paths.array("mfcc", "embedding"))
    row = next(r for r in cache.probes["rows"] if r["representation"] == "mfcc" and r["column"] == "label"
               and r["control"] is None)
    seed = cache.probes["params"]["seed"]
    folds = StratifiedKFold(n_splits=row["probe"]["n_splits"], shuffle=True, random_state=seed)
    predicted = np.empty_like(label)
    for train, test in folds.split(x, label):  # plain lbfgs, no span rotation: the same predictions
        model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
        predicted[test] = model.fit(x[train], label[train]).predict(x[test])
    assert row["probe"]["accuracy"] == pytest.approx(np.mean(predicted == label), abs=1.5 / len(label))


def test_the_metrics_table_and_the_confusion_follow_control_for(demo_cache):
    """"Control for speaker" over HTTP: the metrics table adds the held-out k-NN column with
    probes.json's numbers; the confusion's summary names the controlled voters and their chance."""
    from dacviz_app.explore import analysis
    from dacviz_app.viewer.app import create_app

    client = create_app(demo_cache[0]).server.test_client()
    cache = open_cache(demo_cache[0])
    body = {"output": "metrics-table.children", "outputs": {"id": "metrics-table", "property": "children"},
            "inputs": [{"id": "maps-drawn", "property": "data", "value": {"signature": "x", "at": 1}},
                       {"id": "control", "property": "value", "value": "speaker"}],
            "state": [{"id": "rep", "property": "value", "value": "mfcc"},
                      {"id": "depth", "property": "value", "value": None},
                      {"id": "colour", "property": "value", "value": "label"},
                      {"id": "filter", "property": "value", "value": []}],
            "changedPropIds": ["control.value"]}
    answer = client.post("/_dash-update-component", json=body)
    assert answer.status_code == 200
    text = answer.get_data(as_text=True)
    row = next(r for r in cache.probes["rows"] if r["representation"] == "mfcc" and r["column"] == "label"
               and r["control"] == "speaker")
    assert "k-NN acc, speaker held out" in text and f"{row['knn']['accuracy']:.3f}" in text
    conf = analysis.confusion(cache, "mfcc", "label", "speaker")
    assert conf["accuracy"] == pytest.approx(row["knn"]["accuracy"])  # the same votes, two owners agree
    body["changedPropIds"] = ["control.value"]
    body["inputs"][1]["value"] = "<script>"  # not a probed column: no control
    answer = client.post("/_dash-update-component", json=body)
    assert answer.status_code == 200 and "held out" not in answer.get_data(as_text=True)

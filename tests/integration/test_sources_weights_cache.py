"""Clip selection, the weights choice and the cache's refusal of what it cannot read."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import copy_subset, run_precompute
from dacviz_app.cache import CacheError, open_cache
from dacviz_app.precompute.dac_encode import (WeightsNotFound, encode_batch, load_dac, resolve_weights,
                                    masked_time_mean)
from dacviz_app.precompute.sources import SourceError, select_clips


def test_speech_commands_tree_words_per_word_and_speakers(tmp_path, demo_wavs):
    src = copy_subset(demo_wavs, tmp_path / "sc", words=("zero", "one", "yes"), speakers=6)
    (src / "_background_noise_").mkdir()
    (src / "_background_noise_" / "noise.wav").write_bytes(b"x")
    clips = select_clips(src, ["yes", "zero"], per_word=3, seed=7)
    assert [c.label for c in clips] == ["yes"] * 3 + ["zero"] * 3
    assert clips == select_clips(src, ["yes", "zero"], per_word=3, seed=7)  # deterministic
    assert all(c.speaker and c.speaker in c.path for c in clips)
    assert len(select_clips(src)) == 18  # _background_noise_ ignored
    with pytest.raises(SourceError, match="unknown word.*seven.*available: one, yes, zero"):
        select_clips(src, ["seven"])
    with pytest.raises(SourceError, match="no such file"):
        select_clips(tmp_path / "nope")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(SourceError, match="empty"):
        select_clips(tmp_path / "empty")


def test_csv_manifest_keeps_extra_columns(tmp_path, demo_wavs):
    src = copy_subset(demo_wavs, tmp_path / "clips", words=("two", "no"), speakers=3)
    rows = ["path,label,speaker,session"]
    for i, f in enumerate(sorted(src.rglob("*.wav"))):
        rows.append(f"{f.relative_to(tmp_path)},{f.parent.name},spk{i % 2},s{i}")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    clips = select_clips(tmp_path / "m.csv")
    assert len(clips) == 6 and {c.speaker for c in clips} == {"spk0", "spk1"}
    assert dict(clips[0].extra)["session"].startswith("s")
    (tmp_path / "bad.csv").write_text("file,word\na.wav,x\n")
    with pytest.raises(SourceError, match="'path' and 'label'"):
        select_clips(tmp_path / "bad.csv")


def test_cli_errors_are_clear(tmp_path):
    proc = run_precompute(str(tmp_path / "missing"), "--untrained", "--out", str(tmp_path / "c"))
    assert proc.returncode == 2 and "no such file or directory" in proc.stderr
    proc = run_precompute("--demo", "--demo-dir", str(tmp_path / "d"), "--out", str(tmp_path / "c"),
                          env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2
    assert "--weights" in proc.stderr and ".cache/descript/dac/weights_16khz_8kbps_0.0.5.pth" in proc.stderr
    assert "--untrained" in proc.stderr


def test_weights_file_is_loaded_through_dac_and_hashed(tmp_path):
    untrained = load_dac("16khz", resolve_weights("16khz", None, True, seed=3), "cpu")
    path = tmp_path / "weights_16khz.pth"
    untrained.save(str(path), package=False)
    choice = resolve_weights("16khz", str(path), untrained=False)
    assert not choice.untrained and len(choice.sha256) == 64
    loaded = load_dac("16khz", choice, "cpu")
    clip = [np.sin(np.arange(8000, dtype=np.float32) / 9)]
    np.testing.assert_array_equal(encode_batch(untrained, clip, "cpu")["z"],
                                  encode_batch(loaded, clip, "cpu")["z"])
    with pytest.raises(WeightsNotFound, match="no such file"):
        resolve_weights("16khz", str(tmp_path / "nope.pth"), untrained=False)


def test_masked_time_mean_ignores_padding():
    import torch

    x = torch.tensor([[[1.0, 2.0, 3.0, 100.0]], [[4.0, 4.0, 4.0, 4.0]]])
    out = masked_time_mean(x, torch.tensor([3, 4]))
    assert out[:, 0].tolist() == [2.0, 4.0]


def test_cache_refuses_other_versions_and_damage(demo_cache, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(demo_cache[0], copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(CacheError, match="format version 99.*reads version 1"):
        open_cache(copy)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    data = (copy / "arrays/z/tsne2.npy").read_bytes()
    (copy / "arrays/z/tsne2.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(CacheError, match="tsne2.npy.*truncated"):
        open_cache(copy)
    (copy / "arrays/z/tsne2.npy").write_bytes(data)
    np.save(copy / "arrays/mfcc/knn_index.npy", np.zeros((3, 50), np.int32))
    with pytest.raises(CacheError, match="knn_index.npy: shape"):
        open_cache(copy)


def test_out_dir_of_another_run_is_not_overwritten(demo_cache, tmp_path, demo_wavs):
    src = copy_subset(demo_wavs, tmp_path / "src", words=("one", "two"), speakers=3)
    copy = tmp_path / "copy"
    shutil.copytree(demo_cache[0], copy)
    proc = run_precompute(str(src), "--untrained", "--out", str(copy))
    assert proc.returncode == 2 and "--overwrite" in proc.stderr
    assert open_cache(copy).n_clips == 120  # untouched
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "thesis.tex").write_text("precious")
    proc = run_precompute(str(src), "--untrained", "--out", str(tmp_path / "stuff"))
    assert proc.returncode == 2 and "not a dacviz cache" in proc.stderr

"""Clip selection, the weights choice and the cache's refusal of what it cannot read."""
from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import os
import shutil
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from conftest import copy_subset, run_precompute
from dacviz_app.cache import CacheError, open_cache
from dacviz_app.precompute.dac_encode import (WEIGHTS_MIRROR_ENV, WeightsNotFound, encode_batch, load_dac,
                                             masked_time_mean, resolve_weights)
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
    offline = f"http://127.0.0.1:{_closed_port()}/"  # no weights here and nothing to fetch them from
    proc = run_precompute("--demo", "--demo-dir", str(tmp_path / "d"), "--out", str(tmp_path / "c"),
                          env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", WEIGHTS_MIRROR_ENV: offline})
    assert proc.returncode == 2
    error = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and f"{offline}weights_16khz.pth" in error[0], proc.stderr
    assert "--weights" in proc.stderr and ".cache/descript/dac/weights_16khz_8kbps_0.0.5.pth" in proc.stderr
    assert "--untrained" in proc.stderr
    assert not (tmp_path / ".cache/descript/dac/weights_16khz_8kbps_0.0.5.pth").exists()


def _checkpoint(seed: int):
    """DAC 16 kHz with seeded random weights as DAC itself builds it (weight norms unfolded, as a
    released checkpoint holds them; ``load_dac`` folds them after loading)."""
    import dac
    import torch

    from dacviz_app.cache.models import MODEL_CONFIGS

    torch.manual_seed(seed)
    return dac.DAC(**MODEL_CONFIGS["16khz"]).eval()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _serving(folder: Path):
    """A local HTTP server of ``folder`` (never the network): yields its URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_weights_auto_downloads_with_dacs_downloader_hashes_and_records(demo_wavs, tmp_path):
    served = tmp_path / "release"
    served.mkdir()
    _checkpoint(5).save(str(served / "weights_16khz.pth"), package=False)  # DAC's own checkpoint format
    (served / "weights_24khz.pth").write_bytes(b"not a checkpoint")
    digest = hashlib.sha256((served / "weights_16khz.pth").read_bytes()).hexdigest()
    src = copy_subset(demo_wavs, tmp_path / "src", words=("zero", "one"), speakers=3)
    home = tmp_path / "home"
    target = home / ".cache/descript/dac/weights_16khz_8kbps_0.0.5.pth"
    with _serving(served) as url:
        env = {**os.environ, "HOME": str(home), WEIGHTS_MIRROR_ENV: url}
        proc = run_precompute(str(src), "--encoders", "mfcc", "--out", str(tmp_path / "c"), env=env)
        assert proc.returncode == 0, proc.stderr
        assert f"downloading {url}weights_16khz.pth with DAC's downloader" in proc.stdout
        assert f"weights: saved at {target} (sha256 {digest})" in proc.stdout
        assert hashlib.sha256(target.read_bytes()).hexdigest() == digest
        cache = open_cache(tmp_path / "c")
        assert not cache.untrained
        assert cache.model["weights"]["sha256"] == digest and cache.model["weights"]["path"] == str(target)
        again = run_precompute(str(src), "--encoders", "mfcc", "--out", str(tmp_path / "c2"), env=env)
        assert again.returncode == 0 and "downloading" not in again.stdout  # found in DAC's cache now
        # a file that is not DAC's weights is refused and removed, never trusted on the next run
        wrong = run_precompute(str(src), "--model-type", "24khz", "--encoders", "mfcc",
                               "--out", str(tmp_path / "c3"), env=env)
        assert wrong.returncode == 2 and "is not DAC 24khz weights" in wrong.stderr, wrong.stderr
        assert not (home / ".cache/descript/dac/weights_24khz_8kbps_0.0.4.pth").exists()
        # a release file the server does not have: one line with the URL
        missing = run_precompute(str(src), "--model-type", "44khz", "--encoders", "mfcc",
                                 "--out", str(tmp_path / "c4"), env=env)
        assert missing.returncode == 2 and f"{url}weights.pth" in missing.stderr and "404" in missing.stderr


def test_weights_file_is_loaded_through_dac_and_hashed(tmp_path):
    untrained = load_dac("16khz", resolve_weights("16khz", None, True, seed=3), "cpu")
    path = tmp_path / "weights_16khz.pth"
    _checkpoint(3).save(str(path), package=False)  # DAC's own format: its weight norms unfolded
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

"""The clip's sound as the page draws it: a known tone shows at its frequency and level."""
from __future__ import annotations

import base64

import numpy as np
import pytest
import soundfile

from dacviz_app.explore import sound


@pytest.mark.parametrize("freq, amplitude", [(1000.0, 0.5), (300.0, 1.0), (4000.0, 0.1)])
def test_a_tone_shows_at_its_frequency_and_level(freq, amplitude):
    rate = 16000
    t = np.arange(rate) / rate
    db = sound.log_mel_dbfs(amplitude * np.sin(2 * np.pi * freq * t), rate)
    _, centres = sound.mel_filters(rate, 512)
    middle = db[:, 10:-10]  # away from the edges
    band = int(np.median(middle.argmax(axis=0)))
    spacing = np.diff(centres)[max(band - 1, 0)]
    assert abs(centres[band] - freq) <= spacing, (centres[band], freq)
    assert abs(float(np.median(middle[band])) - 20 * np.log10(amplitude)) <= 3.0
    far = np.abs(centres - freq) > 4 * spacing
    assert middle[far].max() < 20 * np.log10(amplitude) - 30  # nothing leaks far away


def test_silence_is_the_floor_and_the_summary_is_small(tmp_path):
    rate = 16000
    audio = np.zeros(rate // 2, np.float32)
    audio[4000:4100] = 0.8
    path = tmp_path / "clip.wav"
    soundfile.write(path, audio, rate, subtype="PCM_16")
    summary = sound.sound_summary(path)
    spec = np.frombuffer(base64.b64decode(summary["spectrogram"]), np.uint8)
    assert spec.size == summary["n_mels"] * summary["n_frames"] == 64 * (1 + len(audio) // 160)
    assert spec.min() == 0 and spec.max() > 100
    assert len(summary["spectrogram"]) < 8000  # a few KB
    low, high = np.frombuffer(base64.b64decode(summary["envelope"]), np.int8).reshape(2, -1) / 127
    assert low.shape == (summary["envelope_columns"],)
    assert high.max() == pytest.approx(0.8, abs=0.01) and low.min() == pytest.approx(0.0, abs=0.01)
    assert summary["duration_s"] == pytest.approx(0.5)


def test_a_clip_too_long_to_draw_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "long.wav"
    soundfile.write(path, np.zeros(int(16000 * (sound.MAX_SECONDS + 1)), np.float32), 16000, subtype="PCM_16")
    with pytest.raises(sound.TooLong):
        sound.sound_summary(path)


def test_the_shared_memo_keeps_its_bound_by_listing_one_shard(tmp_path, monkeypatch):
    """flask-caching's FileSystemCache scanned and sorted its whole folder on every write past
    its threshold (700-870 ms at 20,000 entries); a write here lists only its key's shard."""
    import os

    from dacviz_app.viewer.memo import SHARDS, SharedFileMemo

    memo = SharedFileMemo(tmp_path / "memo", 2 * SHARDS)
    for i in range(6 * SHARDS):
        assert memo.set(f"/cache/audio/{i}.wav", {"i": i, "spectrogram": "x" * 50})
    assert len(memo) <= 2 * SHARDS + SHARDS - 1
    assert all(len(list(shard.iterdir())) <= memo.per_shard for shard in (tmp_path / "memo").iterdir())
    assert memo.get(f"/cache/audio/{6 * SHARDS - 1}.wav") == {"i": 6 * SHARDS - 1, "spectrogram": "x" * 50}
    listed = []
    real_scandir = os.scandir
    monkeypatch.setattr(os, "scandir", lambda path: listed.append(str(path)) or real_scandir(path))
    memo.set("one more", [1, 2])
    assert listed == [str(memo._path("one more").parent)]  # one shard, not the memo
    assert memo.get("one more") == [1, 2] and memo.get("never set") is None

"""A query's sound summary crosses a process boundary (the encoder service -> the web worker ->
the page): ``clean_summary`` passes what ``summary_of`` makes and nothing shaped otherwise."""
from __future__ import annotations

import numpy as np

from dacviz_app.explore.sound import N_MELS, clean_summary, summary_of


def test_a_recordings_summary_passes_and_a_tampered_one_does_not():
    rate = 16000
    t = np.arange(int(1.5 * rate)) / rate
    summary = summary_of((0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate)
    assert clean_summary(summary, 10.0) is summary
    assert summary["n_mels"] == N_MELS and len(summary["mel_hz"]) == N_MELS and summary["n_frames"] > 100
    assert clean_summary(summary, 1.0) is None  # longer than the query may be
    for key, value in (("n_frames", summary["n_frames"] + 1), ("n_mels", 128), ("spectrogram", "AAAA"),
                       ("mel_hz", summary["mel_hz"][:10]), ("envelope_columns", 10**6), ("sample_rate", "16k"),
                       ("duration_s", True), ("mel_hz", ["x"] * N_MELS), ("duration_s", 1e300),
                       ("duration_s", float("nan")), ("db_floor", -1e9), ("hop_s", 1e-9),
                       ("mel_hz", [float("nan")] * N_MELS), ("mel_hz", list(reversed(summary["mel_hz"]))),
                       ("spectrogram", "!" * len(summary["spectrogram"]))):
        assert clean_summary({**summary, key: value}, 10.0) is None, key
    assert clean_summary({**summary, "extra": 1}, 10.0) is None
    assert clean_summary({k: v for k, v in summary.items() if k != "envelope"}, 10.0) is None
    assert clean_summary("not a summary", 10.0) is None and clean_summary(None, 10.0) is None

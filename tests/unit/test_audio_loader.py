"""The audio loader against random bytes and odd WAV headers (hypothesis): every input is either
read into finite mono float32 in [-1, 1] or rejected with a reason; nothing else escapes."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dacviz_app.precompute.audio import ClipRejected, load_clip


def wav_with_header(channels: int, rate: int, bits: int, frames: int, declared: int | None) -> bytes:
    """A RIFF/WAVE file with arbitrary header fields (declared = the data chunk's claimed size)."""
    import struct
    block = max(channels * bits // 8, 0)
    data = bytes(random.Random(frames).getrandbits(8) for _ in range(max(frames * block, 0) % 4096))
    size = len(data) if declared is None else declared
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block & 0xFFFFFFFF, block & 0xFFFF, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", size & 0xFFFFFFFF) + data
    return b"RIFF" + struct.pack("<I", len(body) & 0xFFFFFFFF) + body


def _check(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "clip.wav"
    path.write_bytes(data)
    try:
        clip = load_clip(path, 16000, 30.0)
    except ClipRejected as err:
        assert str(err)
        return
    assert clip.audio.dtype == np.float32 and clip.audio.ndim == 1 and len(clip.audio) > 0
    assert np.isfinite(clip.audio).all() and np.abs(clip.audio).max() <= 1.0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=3000))
def test_random_bytes_are_rejected_with_a_reason_or_read(tmp_path, data):
    _check(tmp_path, data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(channels=st.integers(0, 65535), rate=st.integers(0, 2**32 - 1),
       bits=st.sampled_from([0, 1, 7, 8, 12, 16, 24, 32, 64, 65535]),
       frames=st.integers(0, 50000), declared=st.one_of(st.none(), st.integers(0, 2**32 - 1)))
def test_odd_wav_headers_are_rejected_with_a_reason_or_read(tmp_path, channels, rate, bits, frames, declared):
    _check(tmp_path, wav_with_header(channels, rate, bits, frames, declared))



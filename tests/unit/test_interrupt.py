"""Ctrl-C during precompute: soundfile reads a clip through cffi callbacks, which print and drop
an exception raised inside them. A Ctrl-C that lands there must still stop the run, and must not
turn a good clip into a 'not readable' skip (CI once saw the run go on to the end)."""
from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import soundfile as sf

from dacviz_app.precompute import audio
from dacviz_app.precompute.interrupt import CtrlC, raise_if_interrupted
from dacviz_app.precompute.loading import prepared_clips

RATE = 16000


@pytest.fixture
def ctrl_c():
    """A CtrlC installed as this process's SIGINT handler for the test, the old one restored."""
    previous = signal.getsignal(signal.SIGINT)
    handler = CtrlC().install()
    yield handler
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
def two_clips(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(2):
        path = tmp_path / f"clip{i}.wav"
        sf.write(path, 0.1 * rng.standard_normal(RATE).astype(np.float32), RATE)
        paths.append(str(path))
    return paths


def ctrl_c_on_first_read(monkeypatch):
    """Make the first read of an audio file send this process a SIGINT, from inside soundfile's
    read callback (where a terminal's Ctrl-C can land)."""
    real_fdopen = os.fdopen
    sent = []

    class Interrupting:
        def __init__(self, handle):
            self._handle = handle

        def readinto(self, buffer):
            if not sent:
                sent.append(True)
                os.kill(os.getpid(), signal.SIGINT)
            return self._handle.readinto(buffer)

        def __getattr__(self, name):
            return getattr(self._handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._handle.close()

    monkeypatch.setattr(audio.os, "fdopen", lambda *a, **k: Interrupting(real_fdopen(*a, **k)))
    return sent


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # cffi's print of it
def test_a_ctrl_c_inside_soundfiles_read_stops_the_run_and_skips_no_clip(ctrl_c, two_clips, monkeypatch):
    sent = ctrl_c_on_first_read(monkeypatch)
    got = []
    with pytest.raises(KeyboardInterrupt):
        for clip in prepared_clips(two_clips, [0, 1], RATE, 3.0, None, workers=0):
            got.append(clip)
    assert sent and ctrl_c.requested
    assert got == []  # the clip being read is neither yielded nor reported unreadable


def test_the_same_clips_load_when_no_ctrl_c_comes(two_clips):
    clips = list(prepared_clips(two_clips, [0, 1], RATE, 3.0, None, workers=0))
    assert [c.reason for c in clips] == ["", ""]
    raise_if_interrupted()  # no CtrlC installed here: a no-op


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_ctrl_c_inside_soundfiles_write_stops_the_run_not_a_traceback(ctrl_c, monkeypatch):
    """A playable copy or a decoded clip is written through soundfile's write callback: a Ctrl-C
    dropped there ends as KeyboardInterrupt (the 'interrupted' line), never a failed assert."""
    import io

    class Interrupting(io.BytesIO):
        sent = False

        def write(self, data):
            if not Interrupting.sent:
                Interrupting.sent = True
                os.kill(os.getpid(), signal.SIGINT)
            return super().write(data)

    monkeypatch.setattr(audio.io, "BytesIO", Interrupting)
    with pytest.raises(KeyboardInterrupt):
        audio.wav_bytes(np.zeros(RATE, np.float32), RATE)
    assert Interrupting.sent and ctrl_c.requested


def test_junk_is_still_rejected_with_a_ctrl_c_handler_installed(ctrl_c, tmp_path):
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF not really a wav file at all" * 10)
    clips = list(prepared_clips([str(junk)], [0], RATE, 3.0, None, workers=0))
    assert clips[0].reason.startswith("not readable as audio") and not ctrl_c.requested

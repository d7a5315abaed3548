"""The built-in demo collection: spoken digits and yes/no, synthesised offline by espeak-ng.

libespeak-ng and its voices come from the PyPI package ``espeakng-loader``; it is driven with
ctypes in synchronous mode (no audio device). Each (word, speaker) pair becomes one real WAV
file (16-bit PCM, 22050 Hz, espeak's own rate, so the pipeline's resampling is exercised)
in ``DIR/<word>/<speaker>_nohash_0.wav``, the Speech Commands layout.
"""
from __future__ import annotations

import ctypes
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEMO_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
              "yes", "no")

AUDIO_OUTPUT_SYNCHRONOUS = 2
POS_CHARACTER = 1
ESPEAK_RATE, ESPEAK_PITCH, ESPEAK_RANGE = 1, 3, 4


@dataclass(frozen=True)
class DemoSpeaker:
    """One synthetic speaker: an espeak voice+variant and prosody settings."""

    name: str
    voice: str
    rate: int   # words per minute
    pitch: int  # 0-100
    range: int  # 0-100


DEMO_SPEAKERS = (
    DemoSpeaker("us-m1", "en-us+m1", 150, 45, 50),
    DemoSpeaker("us-f2", "en-us+f2", 165, 60, 60),
    DemoSpeaker("gb-m3", "en+m3", 140, 40, 40),
    DemoSpeaker("gb-f3", "en+f3", 155, 65, 70),
    DemoSpeaker("scot-m4", "en-gb-scotland+m4", 145, 35, 45),
    DemoSpeaker("carib-f4", "en-029+f4", 170, 55, 55),
    DemoSpeaker("us-m7", "en-us+m7", 130, 30, 35),
    DemoSpeaker("rp-f1", "en-gb-x-rp+f1", 160, 70, 60),
    DemoSpeaker("us-klatt", "en-us+klatt", 150, 50, 50),
    DemoSpeaker("gb-f5", "en+f5", 175, 62, 80),
)

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.c_void_p)


class Espeak:
    """A synchronous libespeak-ng session. Synthesis returns int16 samples at ``sample_rate``."""

    def __init__(self):
        import espeakng_loader

        self.lib = ctypes.cdll.LoadLibrary(espeakng_loader.get_library_path())
        data_parent = str(Path(espeakng_loader.get_data_path()).parent).encode()
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.sample_rate = self.lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data_parent, 0)
        if self.sample_rate <= 0:
            raise RuntimeError("espeak-ng failed to initialise (espeakng-loader data missing?)")
        self._chunks: list[np.ndarray] = []
        self._callback = _CALLBACK(self._collect)  # keep a reference: C holds the pointer
        self.lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav, n_samples, _events) -> int:
        if n_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n_samples,)).copy())
        return 0

    def synth(self, text: str, speaker: DemoSpeaker) -> np.ndarray:
        """text -> (n_samples,) int16 at ``self.sample_rate``."""
        if self.lib.espeak_SetVoiceByName(speaker.voice.encode()) != 0:
            raise RuntimeError(f"espeak-ng has no voice {speaker.voice!r}")
        for parameter, value in ((ESPEAK_RATE, speaker.rate), (ESPEAK_PITCH, speaker.pitch),
                                 (ESPEAK_RANGE, speaker.range)):
            self.lib.espeak_SetParameter(parameter, value, 0)
        self._chunks = []
        encoded = text.encode("utf-8") + b"\0"
        self.lib.espeak_Synth(encoded, len(encoded), 0, POS_CHARACTER, 0, 0, None, None)
        self.lib.espeak_Synchronize()
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)


def trim_silence(samples: np.ndarray, threshold: int = 200, margin: int = 1100) -> np.ndarray:
    """Cut leading/trailing samples quieter than ``threshold``, keeping ``margin`` around."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > threshold)
    if loud.size == 0:
        return samples
    return samples[max(loud[0] - margin, 0): loud[-1] + margin]


def write_demo_set(out_dir: Path, words=DEMO_WORDS, speakers=DEMO_SPEAKERS,
                   seed: int = 0) -> list[Path]:
    """Synthesise every (word, speaker) pair into ``out_dir/<word>/<speaker>_nohash_0.wav``.

    Existing files are kept (the set is deterministic), so a second call is free. Seeded
    noise at about -60 dBFS is added, as a microphone would, so no clip is digitally silent
    between phonemes.
    """
    from dacviz_app.precompute.audio import wav_bytes
    from dacviz_app.cache import atomic_write_bytes

    out_dir = Path(out_dir)
    engine = None
    written = []
    for word in words:
        for speaker in speakers:
            path = out_dir / word / f"{speaker.name}_nohash_0.wav"
            written.append(path)
            if path.is_file():
                continue
            engine = engine or Espeak()
            samples = trim_silence(engine.synth(word, speaker)).astype(np.float32) / 32768.0
            noise = np.random.default_rng([seed, stable_hash(f"{word}/{speaker.name}")])
            samples += 1e-3 * noise.standard_normal(len(samples)).astype(np.float32)
            atomic_write_bytes(path, wav_bytes(np.clip(samples, -1, 1), engine.sample_rate))
    return written


def stable_hash(text: str) -> int:
    """A small hash that, unlike ``hash``, is the same in every process."""
    return sum((i + 1) * ord(c) for i, c in enumerate(text))

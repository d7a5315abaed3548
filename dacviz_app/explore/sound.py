"""The sound of one clip as the page draws it: a waveform envelope and a log-mel spectrogram.

numpy and soundfile only (the web workers never import torch). Levels are dB relative to full
scale: the STFT is scaled so that a sine of amplitude A shows at 20*log10(A) dBFS in the mel
band at its frequency (a full-scale sine at 0 dBFS), with triangular mel filters of peak 1
(HTK mel scale; neighbouring filters sum to 1, so a tone between two centres loses at most 6 dB
in each of them and shows within 3 dB in the nearer one). The spectrogram is sent as uint8:
0 = DB_FLOOR dBFS or below, 255 = 0 dBFS.

Shapes: a clip of n samples at rate r gives a (N_MELS, n_frames) spectrogram, n_frames =
1 + n // HOP, one frame every HOP / r seconds, and an envelope of (2, n_columns) min/max.
"""
from __future__ import annotations

import base64
import math
from functools import lru_cache
from pathlib import Path

import numpy as np

SUMMARY_VERSION = 2  # bump when sound_summary's output changes: memos key on it
N_MELS = 64
FRAME_MS = 25.0
HOP_MS = 10.0
DB_FLOOR = -100.0
ENVELOPE_COLUMNS = 400
MAX_SECONDS = 60.0  # longer clips are not drawn: the work and the answer grow with the length


MEMO_BYTES = 256 * 2**20  # what a server's memo of summaries may hold on disk, at most
F_MIN = 20.0


class TooLong(ValueError):
    """A clip longer than MAX_SECONDS."""


def summary_bytes(seconds: float) -> int:
    """An upper bound of the size of ``sound_summary`` for a clip of ``seconds`` (at most
    MAX_SECONDS): the base64 spectrogram (N_MELS bytes per HOP_MS) dominates."""
    frames = 1 + int(min(seconds, MAX_SECONDS) * 1000 / HOP_MS)
    return 4 * (N_MELS * frames + 2 * ENVELOPE_COLUMNS) // 3 + 12 * N_MELS + 1024


def memo_entries(longest_seconds: float, budget: int = MEMO_BYTES) -> int:
    """How many summaries a memo may keep so that it stays under ``budget`` bytes when every
    entry is as long as the longest clip (16 at least, 20,000 at most)."""
    return int(min(20_000, max(16, budget // summary_bytes(longest_seconds))))


def hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


@lru_cache(maxsize=8)
def mel_filters(sample_rate: int, n_fft: int, n_mels: int = N_MELS) -> tuple[np.ndarray, np.ndarray]:
    """((n_mels, n_fft // 2 + 1) triangular filters of peak 1, (n_mels,) centre frequencies in Hz)."""
    edges = mel_to_hz(np.linspace(hz_to_mel(F_MIN), hz_to_mel(sample_rate / 2), n_mels + 2))
    bins = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    low, centre, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - low) / (centre - low)
    falling = (high - bins[None, :]) / (high - centre)
    return np.clip(np.minimum(rising, falling), 0.0, None), edges[1:-1]


def log_mel_dbfs(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """(n_samples,) float in [-1, 1] -> (N_MELS, n_frames) float32 dBFS (see the module doc)."""
    frame = int(round(sample_rate * FRAME_MS / 1000))
    hop = int(round(sample_rate * HOP_MS / 1000))
    n_fft = 1 << (frame - 1).bit_length()
    padded = np.pad(np.asarray(audio, dtype=np.float64), (frame // 2, frame // 2 + hop))
    n_frames = 1 + len(audio) // hop
    starts = np.arange(n_frames) * hop
    window = np.hanning(frame + 1)[:-1]  # periodic Hann
    frames = padded[starts[:, None] + np.arange(frame)[None, :]] * window
    # a sine of amplitude A peaks at A * sum(window) / 2 in |rfft|: scale so that it reads A
    amplitude = np.abs(np.fft.rfft(frames, n=n_fft, axis=1)) * (2.0 / window.sum())
    filters, _ = mel_filters(sample_rate, n_fft)
    power = (amplitude ** 2) @ filters.T  # (n_frames, n_mels): a tone's power A^2 in its band
    return (10.0 * np.log10(np.maximum(power, 10 ** (DB_FLOOR / 10)))).T.astype(np.float32)


def to_uint8(db: np.ndarray) -> np.ndarray:
    """dBFS -> 0..255 over DB_FLOOR..0 dBFS."""
    return np.round(np.clip((db - DB_FLOOR) / -DB_FLOOR, 0.0, 1.0) * 255).astype(np.uint8)


def envelope(audio: np.ndarray, columns: int = ENVELOPE_COLUMNS) -> np.ndarray:
    """(2, columns) float32: the min and max sample of each of ``columns`` equal slices."""
    audio = np.asarray(audio, dtype=np.float32)
    columns = max(1, min(columns, len(audio)))
    edges = np.linspace(0, len(audio), columns + 1).astype(np.int64)
    lows = np.minimum.reduceat(audio, edges[:-1])
    highs = np.maximum.reduceat(audio, edges[:-1])
    return np.stack([lows, highs]).astype(np.float32)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """A cache's own WAV file -> ((n_samples,) float32 mono, sample rate)."""
    import soundfile

    audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return audio.mean(axis=1), int(rate)


def sound_summary(path: Path) -> dict:
    """What the page draws for one audio file (about 8 KB per second of audio; TooLong above
    MAX_SECONDS): {"sample_rate", "duration_s", "hop_s",
    "n_mels", "db_floor", "mel_hz": [centres], "spectrogram": base64 (N_MELS x n_frames) uint8
    row-major (lowest band first), "n_frames", "envelope": base64 (2 x envelope_columns) int8,
    row 0 the minima, row 1 the maxima, in 1/127 of full scale, "envelope_columns"}."""
    import soundfile

    info = soundfile.info(str(path))
    if info.frames > MAX_SECONDS * info.samplerate:
        raise TooLong(f"{info.frames / info.samplerate:.0f} s: longer than {MAX_SECONDS:g} s")
    return summary_of(*read_wav(path))


def summary_of(audio: np.ndarray, rate: int) -> dict:
    """``sound_summary`` of (n_samples,) float32 mono samples at ``rate`` Hz (a query's
    recording, as the encoder service heard it)."""
    db = log_mel_dbfs(audio, rate)
    _, centres = mel_filters(rate, 1 << (int(round(rate * FRAME_MS / 1000)) - 1).bit_length())
    return {"sample_rate": rate, "duration_s": len(audio) / rate, "hop_s": HOP_MS / 1000,
            "n_mels": N_MELS, "db_floor": DB_FLOOR, "n_frames": int(db.shape[1]),
            "mel_hz": [round(float(c), 1) for c in centres],
            "spectrogram": base64.b64encode(to_uint8(db).tobytes()).decode("ascii"),
            "envelope": base64.b64encode(to_int8(envelope(audio)).tobytes()).decode("ascii"),
            "envelope_columns": int(min(ENVELOPE_COLUMNS, len(audio)))}


def to_int8(values: np.ndarray) -> np.ndarray:
    """Samples in [-1, 1] -> int8 in -127..127."""
    return np.round(np.clip(values, -1.0, 1.0) * 127).astype(np.int8)


SUMMARY_KEYS = {"sample_rate": int, "duration_s": float, "hop_s": float, "n_mels": int, "db_floor": float,
                "n_frames": int, "mel_hz": list, "spectrogram": str, "envelope": str, "envelope_columns": int}


def clean_summary(summary, longest_s: float) -> dict | None:
    """A summary from another process (the encoder service) -> itself when it has the shape
    ``summary_of`` gives for a clip of at most ``longest_s`` seconds, else None."""
    if not isinstance(summary, dict) or set(summary) != set(SUMMARY_KEYS):
        return None
    for key, kind in SUMMARY_KEYS.items():
        value = summary[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            continue
        if not isinstance(value, kind) or isinstance(value, bool):
            return None
    frames = int(longest_s * 1000 / HOP_MS) + 2
    centres = summary["mel_hz"]
    if summary["n_mels"] != N_MELS or not 0 < summary["n_frames"] <= frames \
            or not 0 < summary["duration_s"] <= longest_s + 1 or summary["db_floor"] != DB_FLOOR \
            or summary["hop_s"] != HOP_MS / 1000 or not 0 < summary["sample_rate"] <= 384_000 \
            or len(centres) != N_MELS or not all(isinstance(f, (int, float)) and not isinstance(f, bool)
                                                 and math.isfinite(f) for f in centres) \
            or any(b <= a for a, b in zip(centres, centres[1:])) \
            or len(summary["spectrogram"]) != 4 * -(-N_MELS * summary["n_frames"] // 3) \
            or not 0 < summary["envelope_columns"] <= ENVELOPE_COLUMNS \
            or len(summary["envelope"]) != 4 * -(-2 * summary["envelope_columns"] // 3):
        return None
    try:  # what the page's atob reads
        base64.b64decode(summary["spectrogram"], validate=True)
        base64.b64decode(summary["envelope"], validate=True)
    except ValueError:
        return None
    return summary

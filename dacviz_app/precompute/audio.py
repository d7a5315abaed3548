"""Reading clips: soundfile in, mono float32 at the model's sample rate out, or a reason why not.

``torchaudio.load`` needs FFmpeg/TorchCodec, so reading goes through soundfile (WAV, FLAC, OGG,
MP3). Resampling uses ``torchaudio.functional.resample`` (windowed sinc, exact rational ratio).
"""
from __future__ import annotations

import io
import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from dacviz_app.precompute.interrupt import raise_if_interrupted

MIN_SECONDS = 0.1
SILENCE_PEAK = 1e-4
MAX_READ_SAMPLES = 64 * 2**20  # 256 MB of float32: ~30 s of 8-channel 192 kHz audio
MAX_RESAMPLING_STEPS = 2000  # every common rate to every model rate is under 1000 (``resampling_steps``)


@dataclass
class LoadedClip:
    """One clip ready to encode.

    Attributes:
        audio: (n_samples,) float32 mono in [-1, 1] at ``sample_rate``.
        sample_rate: the model's sample rate.
        original_rate: the file's own sample rate.
        original_channels: channel count in the file (mixed to mono).
    """

    audio: np.ndarray
    sample_rate: int
    original_rate: int
    original_channels: int

    @property
    def duration_s(self) -> float:
        return len(self.audio) / self.sample_rate


class ClipRejected(Exception):
    """A clip that cannot be encoded; ``str(err)`` is the reason shown to the user."""


def resampling_steps(from_rate: int, to_rate: int) -> int:
    """The larger side of the reduced ratio from_rate : to_rate. torchaudio's exact resampling
    builds a float64 kernel of about (to/g) x (from/g) taps (g their gcd): 441 for 44.1 -> 16 kHz,
    16001 for a 16001 Hz file (about 2 GB)."""
    common = math.gcd(int(from_rate), int(to_rate))
    return max(int(from_rate), int(to_rate)) // common


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """(n,) float32 at ``from_rate`` -> (m,) float32 at ``to_rate``."""
    if from_rate == to_rate:
        return audio.astype(np.float32, copy=False)
    import torch
    import torchaudio.functional as AF

    tensor = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    return AF.resample(tensor, from_rate, to_rate).numpy()


def load_clip(path: Path | str, sample_rate: int, max_seconds: float) -> LoadedClip:
    """Read, mix to mono, validate and resample one file; raises ClipRejected with a reason.

    Accepted and converted: any channel count (mean of channels), any integer or float
    sample format soundfile reads (8-bit included), any sample rate (resampled).
    Rejected: anything but a regular file (pipes and devices are never opened or read),
    unreadable/non-audio/empty files, clips shorter than MIN_SECONDS or longer than
    ``max_seconds``, non-finite samples, silence (peak below SILENCE_PEAK), a sample rate whose
    exact conversion would need a huge filter (``resampling_steps``). Only the header is
    read before the length is checked, and at most ``max_seconds`` of samples are ever read,
    whatever the header says, so a huge stray file costs neither time nor memory.
    """
    path = Path(path)
    try:
        _require_regular(os.stat(path))  # a pipe or a device is never opened
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # nor waited for, if swapped in since
    except OSError as err:
        raise ClipRejected(f"cannot open file: {err.strerror or err}")
    with os.fdopen(fd, "rb") as handle:
        return _load_open_clip(handle, os.fstat(fd), sample_rate, max_seconds)


def _require_regular(st: os.stat_result) -> None:
    """Raise ClipRejected unless ``st`` is a regular file's."""
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a pipe" if stat.S_ISFIFO(st.st_mode) \
            else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "a socket"
        raise ClipRejected(f"not a regular file ({kind})")


def _load_open_clip(handle, st: os.stat_result, sample_rate: int, max_seconds: float) -> LoadedClip:
    """load_clip on an open file whose ``os.fstat`` is ``st``."""
    _require_regular(st)
    return _decode(handle, st.st_size, sample_rate, max_seconds)


def load_clip_bytes(data: bytes, sample_rate: int, max_seconds: float) -> LoadedClip:
    """``load_clip`` on a file's bytes (an upload): the same checks and conversion, so a cached
    clip's own file gives the samples precompute encoded; raises ClipRejected with a reason."""
    return _decode(io.BytesIO(data), len(data), sample_rate, max_seconds, "the limit")


def _decode(handle, size: int, sample_rate: int, max_seconds: float,
            limit_name: str = "--max-seconds") -> LoadedClip:
    """Read, mix to mono, validate and resample the ``size``-byte audio file open as ``handle``."""
    if size == 0:
        raise ClipRejected("empty file (0 bytes)")
    try:  # soundfile reads the header only; the samples are read below, bounded
        with sf.SoundFile(handle) as sound:
            rate, channels, frames = sound.samplerate, sound.channels, sound.frames
            if rate <= 0 or channels <= 0:
                raise ClipRejected(f"invalid header: {rate} Hz, {channels} channels")
            if resampling_steps(rate, sample_rate) > MAX_RESAMPLING_STEPS:
                raise ClipRejected(f"unusual sample rate {rate} Hz: resampling it to {sample_rate} Hz "
                                   f"exactly would need a filter of gigabytes")
            if frames > 0 and frames / rate > max_seconds:
                raise ClipRejected(f"too long: {frames / rate:.1f} s > {limit_name} {max_seconds:g} s")
            if 0 < frames and frames / rate < MIN_SECONDS:
                raise ClipRejected(f"too short: {frames / rate:.3f} s < {MIN_SECONDS} s")
            limit = int(min(max_seconds * rate, 2**62)) + 1  # a header may understate the length
            to_read = limit if frames <= 0 else min(frames, limit)
            if to_read * channels > MAX_READ_SAMPLES:
                raise ClipRejected(f"too large to read: {to_read:,} frames x {channels} channels "
                                   f"at {rate} Hz")
            samples = sound.read(frames=to_read, dtype="float32", always_2d=True)
    except ClipRejected:
        raise
    except MemoryError:
        raise ClipRejected("not readable as audio (its header asks for more memory than there is)")
    except Exception as err:  # soundfile raises several types for junk input
        raise_if_interrupted()  # or a Ctrl-C swallowed in soundfile's read callback: not junk
        detail = getattr(err, "error_string", None) or str(err)  # no object reprs: stable text
        raise ClipRejected(f"not readable as audio ({detail})")
    if samples.shape[0] == 0:
        raise ClipRejected("no audio samples")
    mono = samples.mean(axis=1, dtype=np.float32)
    duration = len(mono) / rate
    if duration < MIN_SECONDS:
        raise ClipRejected(f"too short: {duration:.3f} s < {MIN_SECONDS} s")
    if duration > max_seconds:
        raise ClipRejected(f"too long: {duration:.1f} s > {limit_name} {max_seconds:g} s")
    if not np.all(np.isfinite(mono)):
        raise ClipRejected("non-finite samples (NaN or Inf)")
    peak = float(np.max(np.abs(mono)))
    if peak < SILENCE_PEAK:
        raise ClipRejected(f"silent: peak amplitude {peak:.2e} < {SILENCE_PEAK:g}")
    audio = np.clip(resample(mono, rate, sample_rate), -1.0, 1.0)
    return LoadedClip(audio=audio, sample_rate=sample_rate, original_rate=rate,
                      original_channels=samples.shape[1])


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """(n,) float32 -> bytes of a mono 16-bit PCM WAV file (plays in every browser)."""
    buffer = io.BytesIO()
    try:
        sf.write(buffer, audio, sample_rate, format="WAV", subtype="PCM_16")
    except Exception:  # a Ctrl-C dropped in soundfile's write callback ends as a failed assert
        raise_if_interrupted()
        raise
    raise_if_interrupted()  # or as a WAV cut short: never keep it
    return buffer.getvalue()


def read_wav_bytes(data: bytes) -> np.ndarray:
    """(n,) float32 the samples of a mono WAV file's bytes (``wav_bytes``'s), as soundfile
    reads them from the cache's copy on disk."""
    audio, _rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
    return np.ascontiguousarray(audio, np.float32)


def read_copy(path) -> np.ndarray:
    """(n,) float32 the samples of a cache's playable copy (``read_wav_bytes`` of its file)."""
    audio, _rate = sf.read(str(path), dtype="float32", always_2d=False)
    return np.ascontiguousarray(audio, np.float32)

"""How faithful DAC's decoder is, per clip and per stored depth: each reconstruction
(``audio/q<q>/<name>.wav``) against the clip as the codec heard it (``audio/<name>.wav``), both
read back from the cache, so every stored number recomputes from the cache's own files.

The measures (``FIDELITY_METRICS``, the one table of them: name, unit, direction, definition):

- ``si_sdr``: scale-invariant signal-to-distortion ratio in dB (Le Roux et al. 2019), both signals
  made zero-mean, the estimate projected on the reference: 10 log10(|a s|^2 / |a s - s_hat|^2)
  with a = <s_hat, s> / |s|^2; capped at SI_SDR_CAP_DB (a perfect copy has no finite value).
- ``mel_distance``: the mean absolute difference of log10 mel power spectrograms: 80 mel bands
  (0 Hz to half the rate, librosa's Slaney filters), a 64 ms Hann window, 16 ms hop, log10 of
  max(power, 1e-5); L1, averaged over bands and frames. 0 for a perfect copy.
- ``stoi``: short-time objective intelligibility (Taal et al. 2011), ``pystoi.stoi`` (classic,
  not extended), 0-1; pystoi resamples to 10 kHz itself.
- ``pesq``: wide-band PESQ (ITU-T P.862.2), ``pesq.pesq(16000, ref, deg, "wb")``, -0.5-4.64;
  at another model rate both signals are resampled to 16 kHz first (scipy's polyphase
  ``resample_poly``). A clip PESQ refuses (no speech found, too short) is NaN.
- ``dnsmos``: DNSMOS P.835 overall quality (OVRL, 1-5), Microsoft's reference-free trained model
  (``speechmos.dnsmos``, its ONNX models from the wheel, run by onnxruntime, at 16 kHz as above);
  for the reconstruction, and once for the original (``dnsmos_original``): the codec's loss is
  the difference. speechmos repeats a clip shorter than 9.01 s to that length, as DNSMOS does.

With untrained weights the decoder makes noise, and every one of these numbers measures noise: the
app says so wherever it shows them.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import soundfile as sf

from dacviz_app import cache as cache_format
from dacviz_app.cache import CachePaths

SI_SDR_CAP_DB = 100.0
MEL_BANDS, MEL_WINDOW_S, MEL_HOP_S, MEL_FLOOR = 80, 0.064, 0.016, 1e-5
PESQ_RATE = DNSMOS_RATE = 16_000


@dataclass(frozen=True)
class Measure:
    """One fidelity measure: its key in the cache, how the page names it, its unit, and whether
    a higher value is better."""

    name: str
    title: str
    unit: str
    higher_is_better: bool
    definition: str


FIDELITY_METRICS = (
    Measure("si_sdr", "SI-SDR", "dB", True,
            f"scale-invariant SDR (zero-mean, Le Roux et al. 2019), capped at {SI_SDR_CAP_DB:g} dB"),
    Measure("mel_distance", "log-mel distance", "", False,
            f"mean |log10 mel power difference|: {MEL_BANDS} bands, {MEL_WINDOW_S * 1000:g} ms Hann "
            f"window, {MEL_HOP_S * 1000:g} ms hop, floor {MEL_FLOOR:g} (L1)"),
    Measure("stoi", "STOI", "", True, "pystoi.stoi, classic (not extended), 0-1; NaN for a clip with "
                                      "under 384 ms of speech (pystoi's 30 frames)"),
    Measure("pesq", "PESQ (wide-band)", "", True,
            f"pesq.pesq(16000, ref, deg, 'wb'), ITU-T P.862.2; resampled to {PESQ_RATE} Hz when the "
            "model's rate differs; NaN where PESQ refuses the clip"),
    Measure("dnsmos", "DNSMOS OVRL", "", True,
            "speechmos.dnsmos overall quality (P.835 OVRL, 1-5), reference-free, at 16 kHz, on a "
            "sample of the decoded clips (--dnsmos-clips)"),
)


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """SI-SDR in dB of ``estimate`` against ``reference`` ((n,) float each; the shorter length
    is used), capped at SI_SDR_CAP_DB; -inf never: a silent reference gives NaN."""
    n = min(len(reference), len(estimate))
    s = np.asarray(reference[:n], np.float64) - np.mean(reference[:n])
    s_hat = np.asarray(estimate[:n], np.float64) - np.mean(estimate[:n])
    energy = float(np.dot(s, s))
    if energy == 0.0:
        return math.nan
    target = (np.dot(s_hat, s) / energy) * s
    noise = float(np.sum((s_hat - target) ** 2))
    signal = float(np.dot(target, target))
    if noise == 0.0:
        return SI_SDR_CAP_DB
    if signal == 0.0:
        return -SI_SDR_CAP_DB
    return float(np.clip(10.0 * np.log10(signal / noise), -SI_SDR_CAP_DB, SI_SDR_CAP_DB))


def log_mel(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """(MEL_BANDS, frames) float64: log10 of the mel power spectrogram as defined above."""
    import librosa

    n_fft = int(round(MEL_WINDOW_S * sample_rate))
    power = librosa.feature.melspectrogram(y=np.asarray(audio, np.float64), sr=sample_rate, n_fft=n_fft,
                                           hop_length=int(round(MEL_HOP_S * sample_rate)),
                                           win_length=n_fft, window="hann", n_mels=MEL_BANDS, power=2.0)
    return np.log10(np.maximum(power, MEL_FLOOR))


def mel_distance(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
    """The log-mel distance (module docstring) over the shorter length."""
    n = min(len(reference), len(estimate))
    return float(np.mean(np.abs(log_mel(reference[:n], sample_rate) - log_mel(estimate[:n], sample_rate))))


def to_rate(audio: np.ndarray, sample_rate: int, target: int) -> np.ndarray:
    """``audio`` at ``target`` Hz (scipy's polyphase resampling; unchanged when equal)."""
    if sample_rate == target:
        return np.asarray(audio, np.float64)
    from scipy.signal import resample_poly

    g = math.gcd(sample_rate, target)
    return resample_poly(np.asarray(audio, np.float64), target // g, sample_rate // g)


def stoi(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
    """Classic STOI (pystoi) over the shorter length; NaN for a clip too short for it (pystoi
    needs 30 frames of 25.6 ms of speech, 384 ms, after dropping silent ones: below, it warns
    and returns 1e-5, which is not a score)."""
    import warnings

    from pystoi import stoi as reference_stoi

    n = min(len(reference), len(estimate))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(reference_stoi(reference[:n], estimate[:n], sample_rate, extended=False))
    too_short = any("Not enough STFT frames" in str(w.message) for w in caught)
    return math.nan if too_short else value


def pesq_wb(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
    """Wide-band PESQ at 16 kHz; NaN where PESQ refuses the clip."""
    from pesq import PesqError, pesq

    n = min(len(reference), len(estimate))
    ref = to_rate(reference[:n], sample_rate, PESQ_RATE)
    deg = to_rate(estimate[:n], sample_rate, PESQ_RATE)
    score = pesq(PESQ_RATE, ref, deg, "wb", on_error=PesqError.RETURN_VALUES)
    return float(score) if score >= -0.5 else math.nan  # PesqError codes are negative integers


def dnsmos(audio: np.ndarray, sample_rate: int) -> float:
    """DNSMOS overall quality (OVRL) of ``audio``, reference-free, at 16 kHz."""
    from speechmos import dnsmos as reference_dnsmos

    x = np.clip(to_rate(audio, sample_rate, DNSMOS_RATE), -1.0, 1.0)
    return float(reference_dnsmos.run(x, sr=DNSMOS_RATE)["ovrl_mos"])


def clip_fidelity(reference: np.ndarray, estimate: np.ndarray, sample_rate: int,
                  with_dnsmos: bool = True, with_pesq: bool = True) -> dict[str, float]:
    """Every measure of FIDELITY_METRICS for one reconstruction -> {name: value} (DNSMOS NaN
    unless ``with_dnsmos``, PESQ NaN unless ``with_pesq``). A measure that cannot take the clip
    (a few ms of audio, all silence) is NaN for it: one clip never stops a run."""
    return {"si_sdr": undefined_as_nan(si_sdr, reference, estimate),
            "mel_distance": undefined_as_nan(mel_distance, reference, estimate, sample_rate),
            "stoi": undefined_as_nan(stoi, reference, estimate, sample_rate),
            "pesq": undefined_as_nan(pesq_wb, reference, estimate, sample_rate) if with_pesq else math.nan,
            "dnsmos": undefined_as_nan(dnsmos, estimate, sample_rate) if with_dnsmos else math.nan}


def undefined_as_nan(measure: Callable[..., float], *args) -> float:
    """``measure(*args)``, NaN where the reference implementation refuses the signal (raises)."""
    try:
        return float(measure(*args))
    except Exception:  # noqa: BLE001 - pystoi/pesq/librosa raise various errors on degenerate audio
        return math.nan


def read_mono(path) -> tuple[np.ndarray, int]:
    """A cache WAV -> ((n,) float64 in [-1, 1], its rate)."""
    audio, rate = sf.read(str(path), dtype="float64", always_2d=False)
    return audio, int(rate)


def dnsmos_rows(n_decoded: int, max_clips: int) -> np.ndarray:
    """The rows (of the decoded clips) DNSMOS scores: all up to ``max_clips``, else that many
    evenly spread (DNSMOS costs ~0.5 s a call on a CPU: the other measures ~0.1 s)."""
    if max_clips <= 0:
        return np.zeros(0, np.int64)
    if n_decoded <= max_clips:
        return np.arange(n_decoded)
    return np.unique(np.linspace(0, n_decoded - 1, max_clips).round().astype(np.int64))


def fidelity_all(paths: CachePaths, audio_names: list[str], depths: list[int], dnsmos_clips: int,
                 say: Callable[[str], None] = print, with_pesq: bool = True, steps=None) -> dict | None:
    """Measure every clip that has reconstructions (``audio_names``: clips.json's ``audio``,
    row = clip id) at every decoded depth in ``depths`` (DNSMOS: on ``dnsmos_rows``, NaN on
    the others), and write ``fidelity.json`` + ``arrays/fidelity.npz``
    (``cache.write_fidelity``). None (nothing written) when no clip was decoded. Returns what
    was written. With ``steps`` (``downstream.Steps``), a depth whose ``fidelity:<q>`` key is
    recorded (and the originals' DNSMOS, ``fidelity:original``) keeps its values from the
    fidelity on disk: only new or changed depths are measured."""
    clip_ids = [i for i, name in enumerate(audio_names)
                if depths and all(paths.reconstruction(q, name).is_file() for q in depths)]
    if not clip_ids:
        return None
    previous = _previous(paths, clip_ids) if steps is not None else None
    fresh = (lambda r: previous is not None and steps.fresh(r, paths.fidelity_info)) if steps is not None \
        else (lambda _: False)
    if all(fresh(f"fidelity:{q}") for q in depths) and fresh("fidelity:original") \
            and list(previous.depths) == list(depths):
        return None
    values = {m.name: np.full((len(clip_ids), len(depths)), np.nan, np.float32) for m in FIDELITY_METRICS}
    original = np.full(len(clip_ids), np.nan, np.float32)
    scored = set(dnsmos_rows(len(clip_ids), dnsmos_clips).tolist())
    todo = []
    for col, q in enumerate(depths):
        if fresh(f"fidelity:{q}") and q in previous.depths:
            for name in values:
                values[name][:, col] = previous.values[name][:, previous.depths.index(q)]
        else:
            todo.append((col, q))
    keep_original = fresh("fidelity:original")
    if keep_original:
        original[:] = previous.dnsmos_original
    started, last = time.perf_counter(), time.perf_counter()
    for row, clip in enumerate(clip_ids):
        if not todo and keep_original:
            break
        reference, rate = read_mono(paths.audio(audio_names[clip]))
        if row in scored and not keep_original:
            original[row] = undefined_as_nan(dnsmos, reference, rate)
        for col, q in todo:
            estimate, _ = read_mono(paths.reconstruction(q, audio_names[clip]))
            for name, value in clip_fidelity(reference, estimate, rate, with_dnsmos=row in scored,
                                             with_pesq=with_pesq).items():
                values[name][row, col] = value
        if time.perf_counter() - last > 10 or row == len(clip_ids) - 1:
            last = time.perf_counter()
            say(f"  fidelity {row + 1:,}/{len(clip_ids):,} clips x {len(todo)} depths "
                f"{last - started:7.2f} s")
    params = {"measures": [{"name": m.name, "title": m.title, "unit": m.unit,
                            "higher_is_better": m.higher_is_better, "definition": m.definition}
                           for m in FIDELITY_METRICS],
              "reference": "audio/<name>.wav (the clip as the codec heard it, at the model's rate)",
              "packages": package_versions(), "si_sdr_cap_db": SI_SDR_CAP_DB,
              "dnsmos_clips": len(scored), "dnsmos_sample": "evenly spread over the decoded clips",
              "pesq": "measured" if with_pesq else "left out (--no-pesq)"}
    cache_format.write_fidelity(paths, np.asarray(clip_ids, np.int64), list(depths), values, original, params)
    if steps is not None:
        for result in [f"fidelity:{q}" for _, q in todo] + ([] if keep_original else ["fidelity:original"]):
            steps.done(result)
    return {"clip_ids": clip_ids, "depths": list(depths), "values": values, "dnsmos_original": original}


def _previous(paths: CachePaths, clip_ids: list[int]):
    """The cache's fidelity on disk when it is of these very clips (else None)."""
    from dacviz_app.cache.fidelity import read_fidelity

    try:
        previous = read_fidelity(paths)
    except (ValueError, OSError, KeyError):
        return None
    if previous is None or previous.clip_ids.tolist() != list(clip_ids):
        return None
    return previous


def package_versions() -> dict[str, str]:
    """The version of every reference package the measures ran with."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("pesq", "pystoi", "speechmos", "onnxruntime", "librosa", "scipy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "missing"
    return out

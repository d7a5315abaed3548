"""The decoder's fidelity measures on signals whose answer is known, and the stored numbers
recomputed from a cache's WAVs with the reference packages (pesq, pystoi, speechmos)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf

from dacviz_app.cache import CachePaths
from dacviz_app.precompute import fidelity as fid

RATE = 16_000


def speech_like(seconds: float = 1.5, seed: int = 0) -> np.ndarray:
    """A voiced, syllabic test signal: harmonics of a gliding 120-180 Hz pitch under a 4 Hz
    envelope, with a little noise (PESQ and STOI need something speech-like to measure)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    pitch = 120 + 60 * t / seconds
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    voice = sum(np.sin(h * phase) / h for h in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 0.5
    return (0.3 * voice * envelope / 2 + 0.003 * rng.standard_normal(len(t))).astype(np.float64)


def test_a_clip_against_itself_is_perfect():
    s = speech_like()
    assert fid.si_sdr(s, s) == fid.SI_SDR_CAP_DB
    assert fid.mel_distance(s, s, RATE) == 0.0
    assert fid.stoi(s, s, RATE) > 0.99
    assert fid.pesq_wb(s, s, RATE) > 4.4


def test_white_noise_scores_low_on_every_measure():
    s = speech_like()
    noise = 0.1 * np.random.default_rng(1).standard_normal(len(s))
    assert fid.si_sdr(s, noise) < -20
    assert fid.mel_distance(s, noise, RATE) > 0.5
    assert fid.stoi(s, noise, RATE) < fid.stoi(s, s + 0.1 * noise, RATE) - 0.2 < 0.6
    assert fid.pesq_wb(s, noise, RATE) < 1.5
    assert fid.dnsmos(noise, RATE) < fid.dnsmos(s, RATE)


def test_si_sdr_is_scale_invariant_and_knows_its_noise_level():
    s = speech_like()
    noise = np.random.default_rng(2).standard_normal(len(s))
    noise *= np.linalg.norm(s - s.mean()) / np.linalg.norm(noise) / 10  # 20 dB below the signal
    for scale in (0.1, 1.0, 7.0):
        assert fid.si_sdr(s, scale * (s + noise)) == pytest.approx(20.0, abs=0.3)
    assert fid.si_sdr(s, s[:-100]) == fid.SI_SDR_CAP_DB  # the shorter length is compared
    assert math.isnan(fid.si_sdr(np.zeros(100), s[:100]))  # a silent reference has no SI-SDR


def test_a_rate_other_than_16k_is_resampled_for_pesq_and_dnsmos():
    s = speech_like()
    at_24k = fid.to_rate(s, RATE, 24_000)
    assert len(at_24k) == len(s) * 3 // 2
    assert fid.pesq_wb(at_24k, at_24k, 24_000) > 4.4


def test_pesq_refusing_a_silent_clip_gives_nan_not_an_error():
    assert math.isnan(fid.pesq_wb(np.zeros(RATE), np.zeros(RATE), RATE))


def write_wav(path, audio):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, RATE, subtype="PCM_16")


def test_stored_numbers_recompute_from_the_wavs_with_the_reference_packages(tmp_path):
    """fidelity_all reads the cache's own WAVs; each stored value equals pesq / pystoi /
    speechmos run directly on those files."""
    from pesq import pesq
    from pystoi import stoi
    from speechmos import dnsmos

    paths = CachePaths(tmp_path)
    names = [paths.audio_name(i) for i in range(3)]
    rng = np.random.default_rng(3)
    for i, name in enumerate(names[:2]):  # the third clip was not decoded
        clean = speech_like(seed=i)
        write_wav(paths.audio(name), clean)
        for q, level in ((1, 0.2), (4, 0.02)):
            write_wav(paths.reconstruction(q, name), clean + level * rng.standard_normal(len(clean)))
    write_wav(paths.audio(names[2]), speech_like(seed=9))
    out = fid.fidelity_all(paths, names, [1, 4], 8, say=lambda _: None)
    stored = open_fidelity(paths)
    assert list(stored.clip_ids) == [0, 1] and stored.depths == (1, 4)
    for row, name in enumerate(names[:2]):
        ref, _ = sf.read(str(paths.audio(name)))
        assert stored.dnsmos_original[row] == pytest.approx(dnsmos.run(ref, sr=RATE)["ovrl_mos"], abs=1e-4)
        for col, q in enumerate((1, 4)):
            deg, _ = sf.read(str(paths.reconstruction(q, name)))
            assert stored.values["pesq"][row, col] == pytest.approx(pesq(RATE, ref, deg, "wb"), abs=1e-4)
            assert stored.values["stoi"][row, col] == pytest.approx(stoi(ref, deg, RATE), abs=1e-5)
            assert stored.values["dnsmos"][row, col] == pytest.approx(dnsmos.run(deg, sr=RATE)["ovrl_mos"], abs=1e-4)
    better = stored.values  # 4 codebooks' stand-in has 10x less noise: every measure says so
    assert np.all(better["si_sdr"][:, 1] > better["si_sdr"][:, 0] + 15)
    assert np.all(better["mel_distance"][:, 1] < better["mel_distance"][:, 0])
    assert np.all(better["stoi"][:, 1] > better["stoi"][:, 0])
    assert out["depths"] == [1, 4]


def open_fidelity(paths):
    from dacviz_app.cache.fidelity import read_fidelity

    return read_fidelity(paths)


def test_a_clip_too_short_for_stoi_is_nan_not_pystois_placeholder():
    s = speech_like(seconds=0.25)
    assert math.isnan(fid.stoi(s, s, RATE))


def test_a_few_milliseconds_of_silence_is_nan_everywhere_not_a_crash():
    values = fid.clip_fidelity(np.zeros(160), np.zeros(160), RATE)
    assert set(values) == {m.name for m in fid.FIDELITY_METRICS}
    assert math.isnan(values["si_sdr"]) and math.isnan(values["stoi"]) and math.isnan(values["pesq"])

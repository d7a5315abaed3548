"""Query by voice, the encoder's half (torch; runs only in the encoder service's process).

``QueryEncoder(cache)`` rebuilds the models a cache was made with from its manifest (DAC's
weights file, checked against the recorded sha256, or the same untrained seed; the encoders
beside DAC, checked the same way) and turns one uploaded audio file into one vector per
representation, through the very functions precompute used: ``audio.load_clip_bytes`` (read,
mono, resample), ``mfcc.mfcc_stats`` (single-threaded, as in the loader), DAC's
``encode.encode_batch`` and ``pipeline.encode_with``. A clip that is in the cache therefore
gets its own vectors back (up to the 16-bit rounding of the cache's WAV copy).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from dacviz_app.cache import Cache
from dacviz_app.cache.representations import MFCC_HOP_S
from dacviz_app.precompute.mfcc import frame_stats, mfcc_frames
from dacviz_app.explore.nearest import representations_for_queries, weights_problem
from dacviz_app.explore.sound import summary_of
from dacviz_app.precompute.audio import ClipRejected, load_clip_bytes
from dacviz_app.precompute.dac_encode import WeightsChoice, encode_batch, load_dac, sha256_file
from dacviz_app.precompute.encoders import EncoderError, EncoderSpec, make_encoder
from dacviz_app.precompute.loading import single_threaded
from dacviz_app.query_service.protocol import MAX_SECONDS, QueryRefused


def dac_weights(cache: Cache) -> WeightsChoice:
    """The manifest's DAC weights as a WeightsChoice; QueryRefused(503) when the file is not
    here or is not the one the cache was made with."""
    weights = cache.model.get("weights") or {}
    if weights.get("untrained"):
        return WeightsChoice(untrained=True, seed=weights.get("seed"))
    problem = weights_problem(cache)
    if problem:
        raise QueryRefused(503, problem)
    path = weights["path"]
    if sha256_file(Path(path)) != weights.get("sha256"):
        raise QueryRefused(503, f"query by voice is off: {path} is not the weights file this cache "
                                f"was made with (its sha256 differs)")
    return WeightsChoice(untrained=False, path=path, sha256=weights.get("sha256"))


class QueryEncoder:
    """The cache's models, loaded once; ``encode(data)`` -> {representation: (dim,) float32}.

    Attributes:
        unavailable: {representation: why a query is not encoded into it}.
    """

    def __init__(self, cache: Cache, device: str = "cpu"):
        self.cache = cache
        self.device = device
        self.sample_rate = int(cache.model["sample_rate"])
        self.model = load_dac(cache.model["type"], dac_weights(cache), device)
        self.depths = tuple(q for q, rep in cache.depths() if rep != "z")
        self.unavailable = {rep: why for rep, why in representations_for_queries(cache).items() if why}
        self.beside = {}
        for rep in cache.representations:
            if cache.encoder(rep) in ("dac", "mfcc") or rep in self.unavailable:
                continue
            self._load_beside(rep)

    def _load_beside(self, rep: str) -> None:
        recorded = (self.cache.manifest["representations"][rep].get("weights") or {}).get("sha256")
        try:
            encoder = make_encoder(EncoderSpec(self.cache.encoder(rep)), self.device)
        except (EncoderError, OSError, ImportError) as err:
            self.unavailable[rep] = f"{rep}: its encoder cannot be loaded here ({err})"
            return
        if encoder.weights_record().get("sha256") != recorded:
            self.unavailable[rep] = f"{rep}: this server's weights are not the ones the cache was made with"
            return
        self.beside[rep] = encoder

    def encode(self, data: bytes) -> tuple[dict[str, np.ndarray], dict]:
        """One audio file's bytes -> ({representation: (dim,) float32}, {"duration_s",
        "encode_ms", "frame_codes": (n_frames, n_codebooks) and "mfcc_frames": (n_mfcc_frames,
        40) as lists, "mfcc_frame_s": its paths, "sound": its waveform and spectrogram as
        ``explore.sound.summary_of`` draws them}); QueryRefused(422) with the reason for a clip precompute would skip."""
        from dacviz_app.precompute.encode_run import encode_with

        started = time.perf_counter()
        try:
            with single_threaded():  # as prepare_clip: the same bits as the loader's
                clip = load_clip_bytes(data, self.sample_rate, MAX_SECONDS)
                frames = mfcc_frames(clip.audio, self.sample_rate)  # (40, n_frames) float64
                mfcc = frame_stats(frames)
        except ClipRejected as err:
            raise QueryRefused(422, f"not used: {err}")
        except (MemoryError, RuntimeError, ValueError) as err:
            raise QueryRefused(422, f"not used: cannot be converted ({type(err).__name__})")
        encoded = encode_batch(self.model, [clip.audio], self.device, depths=self.depths)
        vectors = {"mfcc": mfcc}
        for rep in self.cache.representations:
            if rep in encoded:
                vectors[rep] = np.asarray(encoded[rep][0], np.float32)
        for rep, encoder in self.beside.items():
            vectors[rep] = encode_with(encoder, [clip.audio], self.sample_rate)[0]
        vectors = {rep: v for rep, v in vectors.items() if self.cache.has_representation(rep)}
        return vectors, {"duration_s": round(clip.duration_s, 3),
                         "encode_ms": round(1000 * (time.perf_counter() - started), 1),
                         "frame_codes": encoded["frame_codes"][0].tolist(),
                         "mfcc_frames": np.asarray(frames.T, np.float32).tolist(), "mfcc_frame_s": MFCC_HOP_S,
                         "sound": summary_of(clip.audio, self.sample_rate)}

    mfcc_frame_s = MFCC_HOP_S

    def clip_mfcc_frames(self, clip: int, most: int) -> dict:
        """Clip ``clip`` of the cache (its WAV copy, as precompute's MFCC read it) -> {"n_frames":
        its MFCC frame count, "frames": at most ``most`` of them, evenly spaced
        (``frames.decimate``), (k, 40) as lists rounded to 1e-4}, one frame per ``mfcc_frame_s``.
        QueryRefused(404) for a clip the cache does not have."""
        from dacviz_app.embedding.frames import decimate
        from dacviz_app.precompute.audio import read_copy

        try:
            path = self.cache.audio_path(int(clip))
        except (IndexError, TypeError, ValueError):
            raise QueryRefused(404, "no such clip")
        with single_threaded():  # as prepare_clip: the same bits as the loader's
            frames = mfcc_frames(read_copy(path), self.sample_rate).T  # (n_frames, 40)
        kept = frames[decimate(len(frames), most)]
        return {"n_frames": int(len(frames)), "frames": np.round(kept, 4).tolist()}

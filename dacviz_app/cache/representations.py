"""The four per-clip representations dacviz compares.

For a clip whose DAC encode has T frames (T = ceil(n_samples / hop_length)):

- ``z`` (1024,): the quantized latent z (1024, T) averaged over the T frames. Exactly the
  seed notebook's vector.
- ``codes_concat`` (n_codebooks*8,): each codebook's 8-D projected latent (DAC's ``latents``,
  (n_codebooks*8, T)) averaged over time; 96-D for the 16 kHz model (12 codebooks).
- ``codes_mean`` (8,): ``codes_concat`` reshaped to (n_codebooks, 8) and averaged over
  codebooks (the seed's "codebook averaging").
- ``z_q<q>`` (1024,), q = 1..n_codebooks-1 (``--depths``): the quantized latent of the first q
  residual codebooks, ``quantizer.from_codes(codes[:, :q])``, averaged over the T frames: what
  the codec keeps at q x 0.5 kbps (16 kHz). Depth n_codebooks is ``z`` itself.
- ``mfcc`` (80,): mean and standard deviation over time of 40 MFCCs of the clip at 16 kHz
  (25 ms Hann window, 10 ms hop, 64 mel bands, 20-7600 Hz, log-mel DCT-II ortho). Needs no
  codec weights, so the comparison always has a reference row.
"""
from __future__ import annotations



MFCC_RATE = 16000
N_MFCC = 40
MFCC_HOP = 160  # samples at MFCC_RATE: one MFCC frame every 10 ms
MFCC_HOP_S = MFCC_HOP / MFCC_RATE


DAC_BASE = ("z", "codes_concat", "codes_mean")  # what DAC's encode gives directly (not the depths)
BASE = DAC_BASE + ("mfcc",)
DEPTH_PREFIX = "z_q"


def depth_name(depth: int) -> str:
    """The representation holding the quantized latent at ``depth`` codebooks: 'z_q4'."""
    return f"{DEPTH_PREFIX}{depth}"


def describe(model_type: str, depths: tuple[int, ...] = (), untrained: bool | None = None
             ) -> dict[str, dict]:
    """{name: {"dim", "title", "description", "encoder"(, "trained", "depth", "kbps")}} for the
    manifest and the app: the four base representations, then ``z_q<q>`` for each q in
    ``depths`` (z has depth n_codebooks). "encoder" is "dac" or "mfcc"; "trained" says whether
    the encoder's weights were trained (DAC's: not ``untrained``; left out when unknown; MFCC
    has none: False)."""
    from dacviz_app.cache.models import MODEL_CONFIGS, bitrate_kbps

    cfg = MODEL_CONFIGS[model_type]
    n_codebooks, codebook_dim = cfg["n_codebooks"], cfg["codebook_dim"]
    concat = n_codebooks * codebook_dim
    described = {
        "z": {"dim": 1024, "title": f"z (1024-D latent, {n_codebooks} codebooks)",
              "description": "quantized latent z, mean over time", "depth": n_codebooks,
              "kbps": bitrate_kbps(model_type, n_codebooks)},
        "codes_concat": {"dim": concat, "title": f"codes_concat ({concat}-D)",
                         "description": f"{n_codebooks} codebooks' {codebook_dim}-D projected "
                                        f"latents, concatenated, mean over time"},
        "codes_mean": {"dim": codebook_dim, "title": f"codes_mean ({codebook_dim}-D)",
                       "description": "projected latents averaged over codebooks and time"},
        "mfcc": {"dim": 2 * N_MFCC, "title": f"mfcc ({2 * N_MFCC}-D baseline)",
                 "description": f"mean and std over time of {N_MFCC} MFCCs (no codec)"},
    }
    for q in sorted(set(depths)):
        if not 1 <= q < n_codebooks:
            raise ValueError(f"depth {q}: choose 1..{n_codebooks - 1} (depth {n_codebooks} is z)")
        kbps = bitrate_kbps(model_type, q)
        described[depth_name(q)] = {
            "dim": 1024, "depth": q, "kbps": kbps,
            "title": f"z at {q} codebook{'s' if q > 1 else ''} ({kbps:g} kbps)",
            "description": f"quantized latent of the first {q} of {n_codebooks} residual "
                           f"codebooks, mean over time"}
    for name, entry in described.items():
        entry["encoder"] = "mfcc" if name == "mfcc" else "dac"
        if name == "mfcc":
            entry["trained"] = False
        elif untrained is not None:
            entry["trained"] = not untrained
    return described

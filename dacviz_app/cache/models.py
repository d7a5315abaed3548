"""The DAC model variants dacviz knows, without importing torch (the CLI's --help and argument
checks read them)."""
from __future__ import annotations

# The DAC 1.0.0 configurations (dac/model/dac.py defaults and the released weights' metadata).
MODEL_CONFIGS = {
    "16khz": dict(encoder_dim=64, encoder_rates=[2, 4, 5, 8], decoder_dim=1536,
                  decoder_rates=[8, 5, 4, 2], n_codebooks=12, codebook_size=1024,
                  codebook_dim=8, sample_rate=16000),
    "24khz": dict(encoder_dim=64, encoder_rates=[2, 4, 5, 8], decoder_dim=1536,
                  decoder_rates=[8, 5, 4, 2], n_codebooks=32, codebook_size=1024,
                  codebook_dim=8, sample_rate=24000),
    "44khz": dict(encoder_dim=64, encoder_rates=[2, 4, 8, 8], decoder_dim=1536,
                  decoder_rates=[8, 8, 4, 2], n_codebooks=9, codebook_size=1024,
                  codebook_dim=8, sample_rate=44100),
}
# Tags of the 8 kbps weights that dac.utils.download fetches as "latest".
WEIGHT_TAGS = {"16khz": "0.0.5", "24khz": "0.0.4", "44khz": "0.0.1"}


def hop_length(model_type: str) -> int:
    """Samples per DAC frame: the product of the encoder's strides (320 at 16 kHz)."""
    hop = 1
    for rate in MODEL_CONFIGS[model_type]["encoder_rates"]:
        hop *= rate
    return hop


def bitrate_kbps(model_type: str, n_codebooks: int) -> float:
    """The bitrate of the first ``n_codebooks`` codebooks: each frame carries log2(codebook_size)
    bits per codebook, at sample_rate / hop_length frames a second (16 kHz: 10 bits x 50 Hz =
    0.5 kbps per codebook)."""
    cfg = MODEL_CONFIGS[model_type]
    bits = (cfg["codebook_size"] - 1).bit_length()
    return n_codebooks * bits * cfg["sample_rate"] / hop_length(model_type) / 1000.0

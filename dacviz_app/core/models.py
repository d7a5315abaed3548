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

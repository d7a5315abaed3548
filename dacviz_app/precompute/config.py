"""What a precompute run is given (``PrecomputeConfig``), what it says at the end
(``RunSummary``), and its one error (``PrecomputeError``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dacviz_app.embedding.neighbours import MAX_K
from dacviz_app.embedding.projections import DEFAULT_PERPLEXITY
from dacviz_app.precompute.dac_encode import WeightsChoice
from dacviz_app.precompute.encoders import EncoderSpec



MIN_CLIPS = 5
COMPILED_SHAPES = 64  # graphs a compiled encoder may build (one per batch size met)


class PrecomputeError(Exception):
    """A run that cannot start or finish; the message says why and what to do."""


@dataclass
class PrecomputeConfig:
    out: Path
    model_type: str
    weights: WeightsChoice
    device: str = "cpu"
    batch_size: int = 16  # clips per encoder call, at most
    batch_seconds: float = 2.0  # padded audio per encoder (and decoder) call, at most (clips x the longest)
    workers: int = 0  # loader processes preparing clips while the model encodes (0: in turn)
    precision: str = "fp32"  # precision.PRECISIONS
    compile: bool = False  # torch.compile the encoder
    chunk_size: int = 256
    max_seconds: float = 30.0
    seed: int = 42
    knn_k: int = MAX_K
    neighbours: str = "auto"  # exact | approximate | auto (embedding.approximate.choose_method)
    perplexity: float = DEFAULT_PERPLEXITY  # t-SNE's (``projections.effective_perplexity`` caps it)
    name: str = "collection"
    source: str = ""
    command: str = ""
    overwrite: bool = False
    synthetic: bool = False
    depths: tuple[int, ...] = ()  # z_q<q> representations (1..n_codebooks-1)
    reconstruct: tuple[int, ...] = ()  # codebook counts decoded back to audio
    reconstruct_max_clips: int = 0  # at most this many clips (evenly spread over the plan)
    dnsmos_clips: int = 0  # DNSMOS (~0.5 s a call on a CPU) on at most this many decoded clips
    pesq: bool = True  # wide-band PESQ in the fidelity (--no-pesq: its licence, README.md)
    encoders: tuple[EncoderSpec, ...] = ()  # beside DAC and MFCC (core.encoders)
    # where the encoding runs, not what it gives (never in the plan): a Ray cluster ("local",
    # "auto" or an address; None: this process) and its worker count (0: one per GPU, else CPU)
    ray: str | None = None
    ray_workers: int = 0


@dataclass
class RunSummary:
    cache_dir: str
    n_planned: int
    n_encoded: int
    n_skipped: int
    skipped_reasons: dict
    newly_encoded: int
    encode_seconds: float
    total_seconds: float
    device: str
    weights: str
    untrained: bool
    already_complete: bool
    metrics_rows: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    knn_accuracy_k: int | None = None
    encoder: str = ""  # precision.describe_settings of the cache's encode record
    measures: str = ""  # summary.measures_tables: fidelity and probes against depth
    computed: list = field(default_factory=list)  # the results this run computed (``inputs``)

    @property
    def clips_per_second(self) -> float:
        return self.newly_encoded / self.encode_seconds if self.encode_seconds > 0 else float("nan")


# ----------------------------------------------------------------------------- plan

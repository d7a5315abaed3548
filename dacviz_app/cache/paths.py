"""Where each file of a cache lives (``CachePaths``: every file name, once), the format's
version and the clip columns it computes. The format itself is documented in docs/cache-format.md
(the only copy; ``tests/unit/test_cache_format_doc.py`` keeps it true)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path



FORMAT_VERSION = 1
REQUIRED_CLIP_COLUMNS = ("id", "label", "speaker", "source", "duration_s", "audio")
COMPUTED_CLIP_COLUMNS = REQUIRED_CLIP_COLUMNS + ("original_rate", "channels")
USER_COLUMN_PREFIX = "csv_"
SKIPPED_LISTED = 1_000  # skipped.json lists the skipped clips one by one up to this many
SKIPPED_EXAMPLES = 5  # above, it groups them by reason, with this many examples of each
SKIPPED_ALL = "skipped_all.jsonl.gz"  # then every skipped clip is in this file


class CacheError(Exception):
    """A cache that cannot be used; the message names the file and the fix."""


# ----------------------------------------------------------------------------- layout
@dataclass(frozen=True)
class CachePaths:
    """File names inside one cache directory; nothing outside this module builds them."""

    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def clips(self) -> Path:
        return self.root / "clips.json"

    @property
    def skipped(self) -> Path:
        return self.root / "skipped.json"

    @property
    def skipped_all(self) -> Path:
        return self.root / SKIPPED_ALL

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def probes(self) -> Path:
        """What the codec keeps, measured: probes, confounds, geometry (``write_probes``)."""
        return self.root / "probes.json"

    @property
    def fidelity_info(self) -> Path:
        """How the fidelity measures were computed (``write_fidelity``)."""
        return self.root / "fidelity.json"

    @property
    def fidelity(self) -> Path:
        """The fidelity of every decoded clip at every decoded depth (``write_fidelity``)."""
        return self.root / "arrays" / "fidelity.npz"

    @property
    def audio_dir(self) -> Path:
        return self.root / "audio"

    @property
    def work_dir(self) -> Path:
        return self.root / "work"

    @property
    def plan(self) -> Path:
        return self.root / "plan.json"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    @property
    def legacy_plan(self) -> Path:
        """Where caches made before 2026-11-27 kept the plan of an unfinished run."""
        return self.work_dir / "plan.json"

    def work_table(self, representation: str, kind: str) -> Path:
        """t-SNE's wider neighbour table ('knn_index' or 'knn_distance'), kept until the run ends."""
        return self.work_dir / "tsne_neighbours" / representation / f"{kind}.npy"

    def chunk(self, index: int) -> Path:
        return self.work_dir / "chunks" / f"chunk_{index:06d}.npz"

    def audio_name(self, plan_index: int) -> str:
        return f"{plan_index:07d}.wav"

    def audio(self, name: str) -> Path:
        return self.audio_dir / name

    @property
    def code_counts(self) -> Path:
        return self.root / "arrays" / "code_counts.npy"

    def reconstruction(self, depth: int, name: str) -> Path:
        """The clip ``name`` decoded from its first ``depth`` codebooks."""
        return self.reconstruction_dir(depth) / name

    @property
    def frame_codes(self) -> Path:
        """Every clip's DAC codes, frame by frame (``write_frame_codes``)."""
        return self.root / "arrays" / "frame_codes.npy"

    @property
    def frame_offsets(self) -> Path:
        """Where each clip's frames start in ``frame_codes`` (``write_frame_codes``)."""
        return self.root / "arrays" / "frame_offsets.npy"

    @property
    def quantizer(self) -> Path:
        """DAC's quantizer as tables: each frame's latent from its codes (``write_quantizer``)."""
        return self.root / "arrays" / "quantizer.npz"

    @property
    def inputs(self) -> Path:
        """What each stored result was made from (``precompute/inputs.py``)."""
        return self.root / "inputs.json"

    @property
    def arrays_dir(self) -> Path:
        return self.root / "arrays"

    def representation_dir(self, representation: str) -> Path:
        """Every file of one representation (its embedding, views, neighbours)."""
        return self.arrays_dir / representation

    def reconstruction_dir(self, depth: int) -> Path:
        """Every clip decoded from its first ``depth`` codebooks."""
        return self.audio_dir / f"q{int(depth)}"

    def update_chunk(self, artifact: str, index: int) -> Path:
        """One chunk of an encoder run again over the cache's own audio (``precompute/encode_again.py``)."""
        return self.work_dir / "update" / artifact / f"chunk_{index:06d}.npz"

    @property
    def chunk_inputs(self) -> Path:
        """What the chunks in work/chunks were encoded with (they are kept only while it holds)."""
        return self.work_dir / "chunks.json"

    @property
    def sample_3d(self) -> Path:
        return self.root / "arrays" / "sample_3d.npy"

    @property
    def precision_reference(self) -> Path:
        return self.root / "arrays" / "precision_reference.npz"

    def array(self, representation: str, kind: str) -> Path:
        """kind: 'embedding', a view name (``spaces.VIEW_NAMES``), 'knn_index' or 'knn_distance'."""
        return self.representation_dir(representation) / f"{kind}.npy"

    def neighbour_info(self, representation: str) -> Path:
        """The JSON sidecar saying how the neighbour table of ``representation`` was searched."""
        return self.root / "arrays" / representation / "knn.json"

    def projection_info(self, representation: str, view: str) -> Path:
        """The JSON sidecar saying how ``view`` of ``representation`` was made."""
        return self.root / "arrays" / representation / f"{view}.json"

    def pca_basis(self, representation: str, view: str) -> Path:
        """The fitted PCA of a PCA ``view`` of ``representation`` (``write_pca_basis``)."""
        return self.root / "arrays" / representation / f"{view}_basis.npz"



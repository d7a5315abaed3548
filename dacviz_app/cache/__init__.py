"""The cache: the one contract between precompute and the viewer (docs/cache-format.md is its
only description). Every file name, writer and reader lives in this package; others ask it,
through the names below, and never restate a file name.

- ``paths``: where each file lives, the format version, the computed clip columns;
- ``atomic``: atomic writes; ``lock``: one writer per directory;
- ``writers``: one writer per file, the manifest last;
- ``checks``: what each file must hold; ``reader``: ``open_cache`` and ``Cache``;
- ``models`` (DAC's configurations) and ``representations`` (names and descriptions).

No torch here: the viewer imports this package.
"""
from dacviz_app.cache.paths import (FORMAT_VERSION, REQUIRED_CLIP_COLUMNS, COMPUTED_CLIP_COLUMNS,
                                    USER_COLUMN_PREFIX, CacheError, CachePaths)
from dacviz_app.cache.atomic import (TEMPORARY_SUFFIX, atomic_write, remove_partial_files,
                                     atomic_write_bytes, atomic_write_json, atomic_save_npy,
                                     atomic_save_npz, read_json)
from dacviz_app.cache.writers import (write_embedding, write_projection, write_pca_basis,
                                      write_neighbours, write_code_counts,
                                      write_frame_codes, read_frame_codes,
                                      write_quantizer, read_quantizer,
                                      write_precision_reference, read_precision_reference,
                                      write_sample_3d, write_clips, read_clip_columns, SKIPPED_LISTED,
                                      SKIPPED_EXAMPLES, SKIPPED_ALL, skip_kind, write_skipped,
                                      write_plan, write_metrics, write_fidelity, write_probes, make_manifest, finish,
                                      clip_columns)
from dacviz_app.cache.lock import (CacheLocked, DirectoryLock)
from dacviz_app.cache.reader import (unreadable_message, Cache, damaged, open_cache)

__all__ = [
    'FORMAT_VERSION', 'REQUIRED_CLIP_COLUMNS', 'COMPUTED_CLIP_COLUMNS', 'USER_COLUMN_PREFIX',
    'CacheError', 'CachePaths', 'TEMPORARY_SUFFIX', 'atomic_write', 'remove_partial_files',
    'atomic_write_bytes', 'atomic_write_json', 'atomic_save_npy', 'atomic_save_npz', 'read_json',
    'write_embedding', 'write_projection', 'write_pca_basis', 'write_neighbours',
    'write_code_counts', 'write_frame_codes', 'read_frame_codes', 'write_quantizer', 'read_quantizer', 'write_precision_reference', 'read_precision_reference', 'write_sample_3d',
    'write_clips', 'read_clip_columns', 'SKIPPED_LISTED', 'SKIPPED_EXAMPLES', 'SKIPPED_ALL', 'skip_kind',
    'write_skipped', 'write_plan', 'write_metrics', 'write_fidelity', 'write_probes', 'make_manifest', 'finish', 'clip_columns',
    'CacheLocked', 'DirectoryLock', 'unreadable_message', 'Cache', 'damaged', 'open_cache'
]

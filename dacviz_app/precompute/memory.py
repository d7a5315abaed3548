"""Keeping a run's resident memory near what it uses.

A step's large temporaries (an encoder batch's activations, a decoder group's, a t-SNE) are freed
when it ends, but glibc keeps much of the freed heap mapped: its mmap threshold grows with every
large block freed (up to 32 MB), so the activations of the next batches, each of another padded
length, come from the heap and fragment it, and resident memory climbs batch after batch (the
demo's encode went from 0.9 to 1.9 GB over 12 batches of 4 s). ``bounded_heap`` fixes the
threshold at 64 kB (``mallopt(M_MMAP_THRESHOLD)``, which also stops its growth): every block above
it is its own mapping, returned to the system when freed (the same encode stayed at 1.0 GB).
``give_back`` collects Python's garbage and returns the heap's free pages (``malloc_trim(0)``)
between steps. Both do nothing where the C library is not glibc.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import functools


@functools.cache
def _libc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
MMAP_THRESHOLD_BYTES = 64 * 1024


def bounded_heap() -> None:
    """Every allocation above MMAP_THRESHOLD_BYTES gets its own mapping from now on (glibc);
    call it once, early in the process."""
    libc = _libc()
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


def give_back() -> None:
    """Free what is unreachable and return free heap pages to the system (glibc only)."""
    gc.collect()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)

"""Keeping a run's resident memory near what it uses.

A batch's large temporaries (an encoder batch's activations, a decoder group's, a t-SNE's) are freed
when it ends, but glibc keeps the freed heap mapped: its mmap threshold grows with every large
block freed (up to 32 MB), so the activations of the next batches, each of another padded length,
come from the heap and fragment it, and resident memory climbs batch after batch (the demo's encode
went from 0.9 to 1.9 GB over 12 batches). ``trim`` returns the heap's free pages to the system
(glibc's ``malloc_trim(0)``): called after every encoder batch and decoder group it keeps the
encode at 1.1-1.3 GB for 10-12 s (fixing the threshold at 64 kB instead kept it at 1.1 GB but took
18 s: every large tensor became its own mapping, its pages faulted in again at each allocation).
``give_back`` also collects Python's garbage, between steps. Both do nothing but collect where the C
library is not glibc.
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


def trim() -> None:
    """Return the heap's free pages to the system (glibc only; a few ms)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def give_back() -> None:
    """Free what is unreachable and return free heap pages to the system (glibc only)."""
    gc.collect()
    trim()

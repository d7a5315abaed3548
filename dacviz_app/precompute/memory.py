"""Giving freed memory back between the steps of a run.

A step's large temporaries (an encoder batch's activations, a decoder group's, a t-SNE) are freed
when it ends, but glibc keeps much of the freed heap mapped, so the process's resident memory
stays at the step's peak and the next step adds its own on top. ``give_back`` collects Python's
garbage and asks glibc to return the free pages (``malloc_trim(0)``); elsewhere it only collects.
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


def give_back() -> None:
    """Free what is unreachable and return free heap pages to the system (glibc only)."""
    gc.collect()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)

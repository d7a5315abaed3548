"""Ctrl-C for precompute: a SIGINT handler that raises KeyboardInterrupt *and* remembers it.

Raising alone is not enough: soundfile reads a clip through cffi callbacks, and an exception
raised inside one is printed and dropped, so a Ctrl-C that lands there would be lost and the run
would go on to the end (seen once in CI). The handler therefore also records the request, and the
run asks ``raise_if_interrupted`` after every clip and every chunk. The state lives in the
installed handler itself (``signal.getsignal``), not in a module global.
"""
from __future__ import annotations

import signal
import time


class CtrlC:
    """The SIGINT handler: the first Ctrl-C stops the run; the ones that follow within
    ``burst_s`` are ignored (they would interrupt the progress bar's cleanup and print Python's
    'Exception ignored' noise); one after that stops it again."""

    def __init__(self, burst_s: float = 3.0):
        self.burst_s = burst_s
        self.requested = False
        self._last = -1e9

    def __call__(self, _signum, _frame) -> None:
        now = time.monotonic()
        if now - self._last < self.burst_s:
            return
        self._last = now
        self.requested = True
        raise KeyboardInterrupt

    def install(self) -> "CtrlC":
        signal.signal(signal.SIGINT, self)
        return self


def raise_if_interrupted() -> None:
    """Raise KeyboardInterrupt if a Ctrl-C was asked for (by the installed ``CtrlC``) but its
    exception was swallowed on the way (once asked, every call raises). A no-op in a process
    that installed no ``CtrlC`` (the app's server reading an upload, a Ray actor, a test's own
    process); a forked loader worker inherits its parent's and stops with it."""
    handler = signal.getsignal(signal.SIGINT)
    if isinstance(handler, CtrlC) and handler.requested:
        raise KeyboardInterrupt

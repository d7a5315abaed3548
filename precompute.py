#!/usr/bin/env python
"""precompute.py: encode a labelled clip collection into a dacviz cache (``--help`` for more).

The command lives in ``dacviz_app.precompute.cli`` (installed as ``dacviz-precompute``); this
file runs it from a checkout.
"""
import sys

from dacviz_app.precompute.cli import run

if __name__ == "__main__":
    sys.exit(run())

"""The code as a maintainer meets it: pyflakes finds nothing; the package is installed, not
reached through sys.path edits."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def test_pyflakes_reports_nothing():
    proc = subprocess.run([sys.executable, "-m", "pyflakes", "dacviz_app", "bench", "tests", "precompute.py"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_the_package_is_installed_with_its_commands(tmp_path):
    import dacviz_app

    assert Path(dacviz_app.__file__).parent == ROOT / "dacviz_app"  # editable: this checkout
    bin_dir = Path(sys.executable).parent
    for command in ("dacviz-precompute", "dacviz-serve"):
        proc = subprocess.run([str(bin_dir / command), "--help"], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0 and f"usage: {command}" in proc.stdout, proc.stderr
    edits = [p for p in ROOT.glob("*/*.py") if "sys.path" + ".insert" in p.read_text()]
    assert not edits, edits

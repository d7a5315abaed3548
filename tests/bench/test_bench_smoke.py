"""Every bench script at its smoke size, in a fresh interpreter as a user runs it
(``bench/run_all.py --size smoke``, which ``bash scripts/bench.sh`` calls): each exits 0, prints its
table with its columns and records its figures. A script neither in the runner's suite nor in its
list of those it does not run (with the reason) fails here, so a new script cannot be forgotten.
This file runs the scripts that neither serve the app nor read a synthetic cache;
``test_bench_smoke_serving.py`` the others, on another worker at the same time."""
from __future__ import annotations

import subprocess
import sys

import pytest

from bench_smoke import BENCH_FILES, SERVING, check_record, check_script, smoke_run
from conftest import ROOT


@pytest.fixture(scope="module")
def smoke(demo_cache, demo_wavs, tmp_path_factory) -> dict:
    return smoke_run(tmp_path_factory.mktemp("bench"), demo_cache[0], demo_wavs, "--skip", *SERVING)


@pytest.mark.parametrize("script", [f for f in BENCH_FILES if f not in SERVING])
def test_every_bench_script_runs_at_its_smoke_size(smoke, script):
    check_script(smoke["run"], script)


def test_the_run_records_its_machine_and_commit_and_a_table(smoke):
    check_record(smoke)


def test_compare_puts_two_runs_side_by_side(smoke):
    path = str(smoke["path"])
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run_all.py"), "--compare", path, path],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ") and "B / A" not in line]
    figures = sum(len(r["figures"]) for r in smoke["run"]["results"])
    assert len(rows) == figures and all(row.endswith("| ×1 |") for row in rows), proc.stdout

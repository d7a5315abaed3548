"""Every bench script at its smoke size, in a fresh interpreter as a user runs it
(``bench/run_all.py --size smoke``, which ``bash scripts/bench.sh`` calls): each exits 0, prints its
table with its columns and records its figures. A script neither in the runner's suite nor in its
list of those it does not run (with the reason) fails here, so a new script cannot be forgotten."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from conftest import ROOT

BENCH_FILES = sorted(p.name for p in (ROOT / "bench").iterdir() if p.suffix in (".py", ".sh"))


@pytest.fixture(scope="module")
def smoke_run(demo_cache, demo_wavs, tmp_path_factory) -> dict:
    """One smoke run of the whole suite, on the test run's demo cache."""
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run_all.py"), "--size", "smoke", "--quiet",
                           "--out", str(out), "--cache", str(demo_cache[0]), "--demo-dir", str(demo_wavs)],
                          cwd=ROOT, capture_output=True, text=True, timeout=1500)
    runs = sorted(out.glob("*-smoke.json"))
    assert runs, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {"run": json.loads(runs[-1].read_text()), "path": runs[-1], "returncode": proc.returncode,
            "stdout": proc.stdout,
            "table": runs[-1].with_suffix(".md").read_text()}


@pytest.mark.parametrize("script", BENCH_FILES)
def test_every_bench_script_runs_at_its_smoke_size(smoke_run, script):
    run = smoke_run["run"]
    results = [r for r in run["results"] if r["script"] == script]
    if script in run["not_run"]:
        assert not results and run["not_run"][script]
        return
    assert results, f"{script} is neither in bench/run_all.py's SUITE nor in its NOT_RUN"
    for result in results:
        said = f"{result['label']}: {' '.join(result['argv'])}\n{result['stderr_tail']}"
        assert result["returncode"] == 0, said
        assert not result["missing_columns"], (result["missing_columns"], result["stdout"][-2000:])
        assert result["figures"], f"{result['label']} recorded no figure"
        for figure in result["figures"]:
            assert figure["n"] >= 1 and figure["unit"] is not None, figure
            assert math.isfinite(figure["median"]) and figure["min"] <= figure["median"] <= figure["max"], figure


def test_the_run_records_its_machine_and_commit_and_a_table(smoke_run):
    run = smoke_run["run"]
    assert len(run["commit"]["commit"]) == 40
    assert run["machine"]["cores"] >= 1 and run["machine"]["cpu"] and len(run["machine"]["load_average"]) == 3
    assert smoke_run["returncode"] == 0, smoke_run["stdout"][-3000:]
    for result in run["results"]:
        assert result["label"] in smoke_run["table"]


def test_compare_puts_two_runs_side_by_side(smoke_run):
    path = str(smoke_run["path"])
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run_all.py"), "--compare", path, path],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ") and "B / A" not in line]
    figures = sum(len(r["figures"]) for r in smoke_run["run"]["results"])
    assert len(rows) == figures and all(row.endswith("| ×1 |") for row in rows), proc.stdout

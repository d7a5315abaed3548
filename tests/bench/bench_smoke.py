"""What both halves of the bench tier share: one smoke run of some of the bench scripts
(``bench/run_all.py --size smoke``, as ``bash scripts/bench.sh`` runs it) and the checks every
script's result must pass. The tier is two test files so that the two halves run on two
pytest-xdist workers at once (``--dist loadfile``); the servers and browsers half is named here."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

BENCH_FILES = sorted(p.name for p in (ROOT / "bench").iterdir() if p.suffix in (".py", ".sh"))
# the scripts that serve the app, drive a browser or read the synthetic caches
SERVING = ("bench_query.py", "load_test.py", "bench_attacks.py", "bench_choices.py", "bench_precompute_scale.py",
           "bench_scaling.py", "bench_analysis.py", "bench_app_scale.py", "bench_paths.py")


def smoke_run(out: Path, demo_cache: Path, demo_wavs: Path, *selection: str) -> dict:
    """``run_all.py --size smoke --quiet SELECTION`` on the test run's demo cache -> its JSON
    ("run"), the JSON's path, exit status, stdout and markdown table."""
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "run_all.py"), "--size", "smoke", "--quiet",
                           "--out", str(out), "--cache", str(demo_cache), "--demo-dir", str(demo_wavs), *selection],
                          cwd=ROOT, capture_output=True, text=True, timeout=1500)
    runs = sorted(out.glob("*-smoke.json"))
    assert runs, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {"run": json.loads(runs[-1].read_text()), "path": runs[-1], "returncode": proc.returncode,
            "stdout": proc.stdout, "table": runs[-1].with_suffix(".md").read_text()}


def check_script(run: dict, script: str) -> None:
    """``script`` ran at its smoke size in ``run``: exit 0, its table's columns, finite figures
    (or it is one the runner does not run, with the reason)."""
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


def check_record(smoke: dict) -> None:
    """The run's JSON names its commit and machine, exits 0 and its table has every result."""
    run = smoke["run"]
    assert len(run["commit"]["commit"]) == 40
    assert run["machine"]["cores"] >= 1 and run["machine"]["cpu"] and len(run["machine"]["load_average"]) == 3
    assert smoke["returncode"] == 0, smoke["stdout"][-3000:]
    for result in run["results"]:
        assert result["label"] in smoke["table"]

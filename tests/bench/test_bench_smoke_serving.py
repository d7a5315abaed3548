"""The bench scripts that serve the app (gunicorn, a browser, the plain-Dash baseline) or read
the synthetic caches, at their smoke size (``bench_smoke.SERVING``); the checks are those of
``test_bench_smoke.py``, which runs the others on another worker at the same time."""
from __future__ import annotations

import pytest

from bench_smoke import SERVING, check_record, check_script, smoke_run


@pytest.fixture(scope="module")
def smoke(demo_cache, demo_wavs, tmp_path_factory) -> dict:
    return smoke_run(tmp_path_factory.mktemp("bench-serving"), demo_cache[0], demo_wavs, "--only", *SERVING)


@pytest.mark.parametrize("script", SERVING)
def test_every_serving_bench_script_runs_at_its_smoke_size(smoke, script):
    check_script(smoke["run"], script)


def test_the_run_records_its_machine_and_commit_and_a_table(smoke):
    check_record(smoke)

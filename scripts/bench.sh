#!/usr/bin/env bash
# Every bench script in order, at one size; one JSON and one markdown table per run under
# bench/results (ignored by git). Sets up what the benchmarks need first (scripts/setup.sh --test:
# the browser, Ray, the test helpers).
#   bash scripts/bench.sh                      # --size smoke: a few minutes, every branch
#   bash scripts/bench.sh --size demo          # the demo set's figures (docs/benchmarks.md)
#   bash scripts/bench.sh --size 100k          # 100,000 synthetic clips, with and without depths
#   bash scripts/bench.sh --size 100k --only bench_app_scale bench_analysis
#   bash scripts/bench.sh --compare bench/results/A.json bench/results/B.json
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test >&2
exec .venv/bin/python bench/run_all.py "$@"

#!/usr/bin/env bash
# Set up everything the tests need on a fresh machine, then run them all.
#   bash scripts/test.sh          every tier: unit, integration (real DAC caches), browser, bench
#   bash scripts/test.sh --fast   the unit tier only (no DAC, no cache built; about a minute)
# Both run one pytest-xdist worker per core, a test file per worker at a time (--dist loadfile),
# in the order tests/conftest.py sorts them (--no-loadscope-reorder: xdist would put the files
# with most tests first): the files that never read the demo cache run while it is built.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--fast" ]; then
  shift
  bash scripts/setup.sh --test
  exec .venv/bin/python -m pytest tests/unit -q -n auto --dist loadfile --no-loadscope-reorder "$@"
fi
bash scripts/setup.sh --test
exec .venv/bin/python -m pytest tests -q --headless -n auto --dist loadfile --no-loadscope-reorder "$@"

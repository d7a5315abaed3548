#!/usr/bin/env bash
# Fresh machine -> the demo collection encoded and the app serving it.
# Usage: bash scripts/demo.sh   (PORT=8050 by default; HOST=0.0.0.0 to reach it from the network)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Untrained weights: DAC's weights cannot be downloaded here. With weights, replace --untrained
# by --weights PATH (or put them in DAC's cache) and use another --out. --overwrite: a demo cache
# made by an older dacviz (or from other demo files) is rebuilt; one made by this command is kept.
.venv/bin/python precompute.py --demo --untrained --overwrite --out cache/demo
exec .venv/bin/python -m dacviz_app --cache cache/demo --port "${PORT:-8050}" --host "${HOST:-127.0.0.1}"

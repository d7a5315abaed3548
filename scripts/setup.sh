#!/usr/bin/env bash
# Create .venv and install the pinned requirements (idempotent: skips what is already done).
# Usage: bash scripts/setup.sh [--test]   (--test adds pytest, dash[testing] and Chromium)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=run; [ "${1:-}" = "--test" ] && mode=test
[ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
stamp=.venv/.dacviz-installed
hash=$(cat requirements.txt requirements-test.txt pyproject.toml tests/testkit/pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if ! grep -qx -e "$hash-$mode" -e "$hash-test" "$stamp" 2>/dev/null; then
  echo "installing Python packages into .venv (first time: a few minutes, torch is large)"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r requirements.txt
  # Resemblyzer's trained speaker encoder: its wheel holds the weights (pretrained.pt, 17 MB);
  # dacviz runs its network itself (precompute/encoders.py), so not its librosa/webrtcvad dependencies
  .venv/bin/pip install -q --no-deps resemblyzer==0.1.4
  # dacviz itself, editable: console scripts dacviz-precompute and dacviz-serve, no sys.path edits
  .venv/bin/pip install -q --no-deps -e .
  if [ "$mode" = test ]; then
    .venv/bin/pip install -q -r requirements-test.txt
    # the helpers the tests and benchmarks share (tests/testkit), a package of their own
    .venv/bin/pip install -q --no-deps -e tests/testkit
    # its own call: combined with the other pins the resolver backtracks for minutes
    .venv/bin/pip install -q "dash[testing]==4.4.1"
  fi
  echo "$hash-$mode" >> "$stamp"
fi
if [ "$mode" = test ] && ! { command -v chromium && command -v chromedriver; } >/dev/null; then
  echo "installing Debian's chromium and chromium-driver for the browser tests"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi

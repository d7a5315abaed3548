#!/usr/bin/env bash
# gpu_check.sh: dacviz's GPU checks in one command, for a machine with an NVIDIA GPU, torch
# (CUDA build) installed and no internet. Run it from anywhere: it works in the checkout it is in.
#
#   bash bench/gpu_check.sh
#   OUT=/some/dir WHEELS=/path/to/wheels PYTHON=.venv/bin/python bash bench/gpu_check.sh
#
# What it does, each step under `timeout`, all of them within 8 minutes; a failing step does not
# stop the next ones:
#   0. installs, offline, the project's dependencies that are not importable yet, from the wheel
#      files in $WHEELS (default bench/wheels): pip install --no-index --find-links --no-deps;
#      then the project itself (pip install --no-deps -e ., or PYTHONPATH=<checkout> if that
#      fails); checks that every module the steps import is there; prints nvidia-smi's summary
#      and the torch / CUDA versions.
#   a. bench/bench_encode.py on cuda: the seed loop, dacviz end to end and the model alone in
#      fp32, tf32 and bf16, eager and compiled, on 2,048 one-second clips; and the exact 50-NN
#      search on 100,000 random 1024-d rows.
#   b. the tests in tests/test_gpu_pace.py whose name contains "gpu": the GPU against the CPU in
#      fp32 (they skip without CUDA; -rs says why).
#   c. precompute.py --demo --untrained on cuda in bf16, into a fresh $OUT/gpu-demo; then prints
#      the manifest's "encode" block.
# The wheel folder, made on a machine with PyPI for the lent machine's Python (3.12 there, 2026-11;
# its image already holds torch, numpy, scipy, scikit-learn, pytest, rich, tensorboard, einops):
#   pip wheel --no-deps -w bench/wheels descript-audio-codec==1.0.0 descript-audiotools==0.7.2 \
#       argbind julius ffmpy flatten-dict randomname fire termcolor importlib_resources \
#       docstring_parser pycparser pyloudnorm future dill
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#       -d bench/wheels soundfile cffi openTSNE espeakng-loader
# (16 MB in all; measured with it on an H200: every step passes in about 6 minutes.)
# Everything it prints also goes to $OUT/gpu_check.log (OUT default /tmp). Exit status 0 when
# every step passed, 1 otherwise (the failed steps are listed at the end).
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
OUT=${OUT:-/tmp}
WHEELS=${WHEELS:-bench/wheels}
PYTHON=${PYTHON:-$(command -v python || command -v python3 || echo python)}
LOG="$OUT/gpu_check.log"
TOTAL_SECONDS=470  # every step together, installs included: under 8 minutes
export PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
# A lent machine's system Python may be "externally managed" (PEP 668); these wheels go into it.
export PIP_BREAK_SYSTEM_PACKAGES=1

# The distributions `import dac` and the pipeline need beyond torch, as DIST:MODULE.
REQUIRED=(descript-audio-codec:dac descript-audiotools:audiotools argbind:argbind julius:julius
          ffmpy:ffmpy flatten-dict:flatten_dict randomname:randomname fire:fire termcolor:termcolor
          importlib-resources:importlib_resources docstring-parser:docstring_parser
          soundfile:soundfile cffi:cffi pycparser:pycparser pyloudnorm:pyloudnorm future:future
          openTSNE:openTSNE)
# Also imported by `import dac` (dac.nn, audiotools.ml) and by step b; installed only when missing,
# from a wheel in $WHEELS if there is one (the import check below says what is still missing).
ALSO=(einops:einops rich:rich markdown-it-py:markdown_it mdurl:mdurl pygments:pygments
      tensorboard:tensorboard absl-py:absl pytest:pytest iniconfig:iniconfig pluggy:pluggy
      dill:dill espeakng-loader:espeakng_loader)  # the last: step b's demo clips are spoken by espeak-ng
GPU_TEST_FILE=tests/test_gpu_pace.py
# What the steps import; the check names any that is missing.
MODULES=(torch torchaudio numpy scipy sklearn tqdm soundfile einops rich tensorboard dac openTSNE
         pytest dacviz_app.precompute.pipeline dacviz_app.precompute.cli)

FAILED=()
DEADLINE=$((SECONDS + TOTAL_SECONDS))

fail() {  # fail NAME WHY: record a failed step
    echo "=== $1: FAILED ($2)"
    FAILED+=("$1")
}

step() {  # step NAME SECONDS COMMAND...: run COMMAND under timeout (cut to the time left)
    local name=$1 limit=$2 left=$((DEADLINE - SECONDS)) started=$SECONDS rc
    shift 2
    echo
    if [ "$left" -lt 10 ]; then
        fail "$name" "not run: the ${TOTAL_SECONDS} s for all steps are spent"
        return
    fi
    [ "$limit" -le "$left" ] || limit=$left
    echo "=== $name (at most ${limit} s): $*"
    timeout --kill-after=10 "$limit" "$@"
    rc=$?
    if [ "$rc" -eq 0 ]; then
        echo "=== $name: ok ($((SECONDS - started)) s)"
    elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        fail "$name" "timed out after $((SECONDS - started)) s"
    else
        fail "$name" "exit $rc after $((SECONDS - started)) s"
    fi
}

importable() {  # importable MODULE: found on the path (not imported)
    "$PYTHON" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$1') is None)" 2>/dev/null
}

pip_offline() {  # pip_offline DIST...: install from the wheel folder only, no dependencies
    timeout 60 "$PYTHON" -m pip install --quiet --no-index --find-links "$WHEELS" --no-deps "$@"
}

install_missing() {  # install_missing DIST:MODULE...: those whose module is not importable
    local pair dist missing=() rc=0
    for pair in "$@"; do
        importable "${pair#*:}" || missing+=("${pair%%:*}")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        echo "  all importable already"
        return 0
    fi
    echo "  installing from $WHEELS: ${missing[*]}"
    pip_offline "${missing[@]}" && return 0
    echo "  together they failed; one at a time:"
    for dist in "${missing[@]}"; do
        pip_offline "$dist" || { echo "  could not install $dist (no wheel in $WHEELS?)"; rc=1; }
    done
    return "$rc"
}

install_project() {  # the checkout's dacviz_app importable from anywhere
    if ! "$PYTHON" -m pip install --quiet --no-index --no-build-isolation --no-deps -e . >/dev/null 2>&1; then
        echo "  pip install -e . failed: using PYTHONPATH=$ROOT"
    fi
    local found
    found=$(cd / && "$PYTHON" -c "import dacviz_app, os; print(os.path.dirname(os.path.dirname(os.path.abspath(dacviz_app.__file__))))" 2>/dev/null)
    if [ "$found" != "$ROOT" ]; then
        export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
    fi
    echo "  dacviz_app from $ROOT"
}

check_imports() {  # every module in MODULES imports; names the missing ones
    "$PYTHON" - "${MODULES[@]}" <<'PY'
import importlib, sys
missing = []
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except Exception as err:  # a module missing below it, or a broken install
        missing.append(f"{name} ({type(err).__name__}: {getattr(err, 'name', None) or err})")
print("  imports: " + ("all ok" if not missing else "MISSING " + "; ".join(missing)))
sys.exit(1 if missing else 0)
PY
}

gpu_test_ids() {  # the tests of GPU_TEST_FILE whose own name contains "gpu", as node ids
    # (not `pytest -k gpu`: -k also matches the file's name, so it would select every test in it)
    timeout 60 "$PYTHON" -m pytest --collect-only -q -p no:cacheprovider "$GPU_TEST_FILE" 2>/dev/null \
        | grep -E '::[^ ]*gpu'
}

setup() {
    echo "=== setup: dependencies from $WHEELS"
    install_missing "${REQUIRED[@]}" || fail "install" "some required wheels did not install"
    install_missing "${ALSO[@]}" || echo "  (not fatal by itself: the import check decides)"
    if [ ! -d demo_data ]; then  # the demo clips are written by espeak-ng when absent
        install_missing espeakng-loader:espeakng_loader || echo "  no demo_data/ and no espeakng-loader: steps a and c will fail"
    fi
    install_project
    check_imports || fail "imports" "see the missing modules above"
    echo "=== machine"
    echo "  $(nproc) cores; python $("$PYTHON" -c 'import sys; print(sys.version.split()[0])') at $PYTHON"
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,utilization.gpu,temperature.gpu \
            --format=csv,noheader 2>&1 | sed 's/^/  nvidia-smi: /'
    else
        echo "  nvidia-smi: not found"
    fi
    "$PYTHON" -c "import torch; print('  torch', torch.__version__, 'cuda', torch.version.cuda,
        'cudnn', torch.backends.cudnn.version(), 'available', torch.cuda.is_available(),
        torch.cuda.get_device_name() if torch.cuda.is_available() else '')" 2>&1 | grep -v Warning
}

main() {
    echo "gpu_check.sh: dacviz GPU checks in $ROOT, $(date -u +%Y-%m-%dT%H:%M:%SZ); log in $LOG"
    echo "steps: setup (offline wheels, imports, versions); a. encode bench fp32/tf32/bf16 +"
    echo "compile and 100k neighbour search; b. GPU-vs-CPU fp32 test; c. demo precompute on cuda"
    echo "in bf16 and its manifest's encode block. Each under timeout, ${TOTAL_SECONDS} s in all."
    setup
    step "a. encode bench" 260 "$PYTHON" bench/bench_encode.py --device cuda --clips 2048 --seconds 1 \
        --precisions fp32 tf32 bf16 --compile --repeats 3 --neighbours 100000
    local gpu_tests=()
    mapfile -t gpu_tests < <(gpu_test_ids)
    if [ "${#gpu_tests[@]}" -eq 0 ]; then
        echo
        fail "b. GPU vs CPU test" "no test named *gpu* collected from $GPU_TEST_FILE"
    else
        step "b. GPU vs CPU test" 70 "$PYTHON" -m pytest -q -rs -p no:cacheprovider "${gpu_tests[@]}"
    fi
    rm -rf "$OUT/gpu-demo"  # a fresh cache, so the encode is done and timed again
    step "c. demo precompute" 75 "$PYTHON" precompute.py --demo --untrained --out "$OUT/gpu-demo" \
        --device cuda --precision bf16 --no-progress
    step "c. manifest encode block" 15 "$PYTHON" -c \
        'import json, sys; print(json.dumps(json.load(open(sys.argv[1]))["encode"], indent=1))' \
        "$OUT/gpu-demo/manifest.json"
    echo
    if [ "${#FAILED[@]}" -eq 0 ]; then
        echo "gpu_check.sh: every step passed ($SECONDS s)"
        return 0
    fi
    echo "gpu_check.sh: FAILED: ${FAILED[*]} ($SECONDS s)"
    return 1
}

mkdir -p "$OUT" || exit 1
main 2>&1 | tee "$LOG"
exit "${PIPESTATUS[0]}"

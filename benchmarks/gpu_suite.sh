#!/usr/bin/env bash
# The one command a lent GPU runs (see benchmarks/gpu_suite.py for the steps), from the
# repository root, results under $OUT (the device tool's output folder):
#
#   bash benchmarks/gpu_suite.sh                  # on the GPU machine
#   OUT=/tmp/suite bash benchmarks/gpu_suite.sh --device cpu --quick   # the dry run here
#
# The GPU image has no soundfile: carry its wheel in .whl/ (the device tool's README says
# how); it is installed into /tmp/site first. Under 8 minutes on an H200 is the budget.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu_suite_out}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python
if ! "$PY" -c "import soundfile" 2>/dev/null; then
    if ls .whl/*.whl >/dev/null 2>&1; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/site .whl/*.whl
        export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
    else
        echo "gpu_suite.sh: soundfile is missing and no wheel in .whl/ to install" >&2
        exit 2
    fi
fi
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
exec "$PY" benchmarks/gpu_suite.py --out "$OUT" "$@"

#!/usr/bin/env bash
# Every GPU test and GPU benchmark of this checkout in one prepared run, for a session that is
# lent a GPU machine (15 device-minutes, all tries together): run it once, read $OUT, fix, rerun.
#
#   bash scripts/gpu_check.sh            # from the repository root; output in $OUT or runs/gpu_check
#
# Steps, each under its own time limit so the whole run ends inside one 10-minute command:
#   gpu       nvidia-smi and what torch sees
#   tests     the tests marked gpu (TensorRT engines, mamba-ssm kernels); each skips with its reason
#             when what it needs is missing
#   model     bench/model.py --device cuda: the 7B preset (random bf16) and the hybrid at the 56B's
#             widths, prefill / decode / batching, with and without mamba-ssm kernels
#   engines   bench/engines.py --device cuda: TensorRT vs torch (only where tensorrt imports)
# Every step's full output is $OUT/<step>.log; $OUT/summary.txt holds each step's exit status,
# time and last lines. The machine reaches no package registry: packages it lacks (tensorrt,
# mamba-ssm, ...) travel as wheels in .whl/ (git-ignored; see the device tool's notes) and are
# installed into /tmp/site first. The package itself runs from the checkout (PYTHONPATH), so
# nothing needs building there. Without a GPU every step still runs and says why it skipped.
set -uo pipefail
OUT=${OUT:-runs/gpu_check}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
: > "$OUT/summary.txt"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MUJOCO_GL=${MUJOCO_GL:-egl}

note() { echo "== $*" | tee -a "$OUT/summary.txt"; }

step() {  # NAME LIMIT_S COMMAND...
    local name=$1 limit=$2 start rc
    shift 2
    note "$name: $*"
    start=$(date +%s)
    timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
    rc=$?
    note "$name: exit $rc after $(($(date +%s) - start)) s$([ $rc -eq 124 ] && echo " (stopped at its ${limit} s limit)")"
    tail -n 4 "$OUT/$name.log" | sed 's/^/   /' | tee -a "$OUT/summary.txt"
}

if compgen -G ".whl/*.whl" >/dev/null; then
    step wheels 120 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
    export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi

step gpu 30 bash -c "nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; \
    $PY -c 'import torch; print(\"torch\", torch.__version__, \"cuda\", torch.cuda.is_available(), \
    torch.cuda.get_device_name(0) if torch.cuda.is_available() else \"(no GPU)\")'"
step tests 150 "$PY" -m pytest -q -rs -m gpu -p no:cacheprovider tests/engine/test_tensorrt.py \
    tests/model/test_mamba_kernels.py
step model 240 "$PY" bench/model.py --device cuda --new-tokens 32
if "$PY" -c "import tensorrt" 2>/dev/null; then
    step engines 150 "$PY" bench/engines.py --device cuda --no-accuracy --repeats 2
else
    note "engines: skipped, the tensorrt package does not import here (carry its wheels in .whl/)"
fi
note "done; logs in $OUT"

#!/usr/bin/env bash
# Every GPU test and GPU benchmark of this checkout in one prepared run, for a session that is
# lent a GPU machine (15 device-minutes, all tries together): run it once, read $OUT, fix, rerun.
#
#   bash scripts/gpu_check.sh            # from the repository root; output in $OUT or runs/gpu_check
#   bash scripts/gpu_check.sh --dry-run  # on any machine: checks every step's files, runs nothing
#
# Steps, each under its own time limit so the whole run ends inside one 10-minute command:
#   gpu       nvidia-smi and what torch sees
#   tests     the tests marked gpu (TensorRT engines, mamba-ssm kernels); each skips with its reason
#             when what it needs is missing
#   model     bench/model.py --device cuda: the 7B preset (random bf16) and the hybrid at the 56B's
#             widths, prefill / decode / batching, with and without mamba-ssm kernels
#   engines   bench/engines.py --device cuda: TensorRT vs torch (only where tensorrt imports)
#   vllm      scripts/vllm_roundtrip.py: vLLM (CUDA) serving a Cosmos-Reason1-7B-shaped random
#             checkpoint written here, one engine:=openai round trip (only where vLLM imports:
#             $COSMOS_ROS_VLLM_PYTHON, else $PYTHON)
# The whole run keeps to $BUDGET seconds (default 470, under 8 minutes): a step gets its own limit
# or what is left, whichever is less, and is skipped (said so) when under 20 s are left. Every
# step's full output is $OUT/<step>.log; $OUT/summary.txt holds each step's exit status, time and
# last lines, and $OUT/summary.json the same with each benchmark's metrics. The machine reaches no package registry: packages it lacks (tensorrt,
# mamba-ssm, ...) travel as wheels in .whl/ (git-ignored; see the device tool's notes) and are
# installed into /tmp/site first. The package itself runs from the checkout (PYTHONPATH), so
# nothing needs building there. Without a GPU every step still runs and says why it skipped.
set -uo pipefail
DRY=0
[ "${1:-}" = "--dry-run" ] && DRY=1
OUT=${OUT:-runs/gpu_check}
PY=${PYTHON:-python3}
VLLM_PY=${COSMOS_ROS_VLLM_PYTHON:-$PY}
BUDGET=${BUDGET:-470}
STARTED=$(date +%s)
mkdir -p "$OUT"
: > "$OUT/summary.txt"
: > "$OUT/steps.tsv"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MUJOCO_GL=${MUJOCO_GL:-egl}

note() { echo "== $*" | tee -a "$OUT/summary.txt"; }

dry_check() {  # COMMAND...: its files exist, its tests collect, its script takes each --option given
    local arg script="" rc=0 help
    for arg in "$@"; do
        case "$arg" in
            *.py) script=${script:-$arg} ;&
            *.sh|tests/*) [ -e "$arg" ] || { echo "missing: $arg"; rc=2; } ;;
        esac
    done
    if [ "${2:-}" = "-m" ] && [ "${3:-}" = "pytest" ]; then
        "$@" --collect-only -q | tail -n 3 || rc=2
    elif [ -n "$script" ] && [ "$rc" = 0 ]; then
        help=$("$PY" "$script" --help 2>&1) || { echo "$help" | tail -n 5; rc=2; }
        for arg in "$@"; do
            case "$arg" in --*) grep -q -e "$arg" <<<"$help" || { echo "$script takes no $arg"; rc=2; } ;; esac
        done
    fi
    echo "dry run: checked, not run (exit $rc)"
    return $rc
}

step() {  # NAME LIMIT_S COMMAND...
    local name=$1 limit=$2 start rc left arg
    shift 2
    left=$((BUDGET - ($(date +%s) - STARTED)))
    [ "$left" -lt "$limit" ] && limit=$left
    if [ "$limit" -lt 20 ]; then
        note "$name: skipped, $left s of the $BUDGET s budget left"
        printf '%s\t%s\t%s\t%s\n' "$name" skipped 0 "$limit" >>"$OUT/steps.tsv"
        return
    fi
    note "$name: $*"
    start=$(date +%s)
    if [ "$DRY" = 1 ]; then
        dry_check "$@" >"$OUT/$name.log" 2>&1
        rc=$?
    else
        timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
        rc=$?
    fi
    note "$name: exit $rc after $(($(date +%s) - start)) s$([ $rc -eq 124 ] && echo " (stopped at its ${limit} s limit)")"
    tail -n 4 "$OUT/$name.log" | sed 's/^/   /' | tee -a "$OUT/summary.txt"
    printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$(($(date +%s) - start))" "$limit" >>"$OUT/steps.tsv"
}

if compgen -G ".whl/*.whl" >/dev/null; then
    step wheels 120 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
    export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi

step gpu 30 bash -c "nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; \
    $PY -c 'import torch; print(\"torch\", torch.__version__, \"cuda\", torch.cuda.is_available(), \
    torch.cuda.get_device_name(0) if torch.cuda.is_available() else \"(no GPU)\")'"
step tests 120 "$PY" -m pytest -q -rs -m gpu -p no:cacheprovider tests/engine/test_tensorrt.py \
    tests/model/test_mamba_kernels.py
step model 150 "$PY" bench/model.py --device cuda --new-tokens 32
if [ "$DRY" = 1 ] || "$PY" -c "import tensorrt" 2>/dev/null; then
    step engines 120 "$PY" bench/engines.py --device cuda --no-accuracy --repeats 2
else
    note "engines: skipped, the tensorrt package does not import here (carry its wheels in .whl/)"
fi
if [ "$DRY" = 1 ] || "$VLLM_PY" -c "import vllm" 2>/dev/null; then
    step vllm 240 "$PY" scripts/vllm_roundtrip.py --device cuda --vllm-python "$VLLM_PY" --out "$OUT/vllm.json"
else
    note "vllm: skipped, vLLM does not import with $VLLM_PY (set COSMOS_ROS_VLLM_PYTHON to a Python that has it)"
fi

"$PY" - "$OUT" "$DRY" <<'PY'
import json, sys
from pathlib import Path

out, dry = Path(sys.argv[1]), sys.argv[2] == "1"
steps = []
for line in (out / "steps.tsv").read_text().splitlines():
    name, rc, seconds, limit = line.split("\t")
    log = out / f"{name}.log"
    text = log.read_text(errors="replace") if log.is_file() else ""
    metrics = [json.loads(l) for l in text.splitlines() if l.startswith("{") and l.rstrip().endswith("}")]
    steps.append({"step": name, "exit": None if rc == "skipped" else int(rc), "seconds": int(seconds),
                  "limit_s": int(limit), "tail": text.splitlines()[-4:], "json": metrics})
summary = {"dry_run": dry, "ok": all(s["exit"] in (0, None) for s in steps), "steps": steps}
(out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
PY
note "done in $(($(date +%s) - STARTED)) s; logs in $OUT, summary in $OUT/summary.json"

#!/usr/bin/env bash
# Reproduce model/cosmos-reason1-tiny: sim data -> SFT from random init -> GRPO -> held-out eval.
#   training/reproduce.sh [ROOT]     (default runs/tiny; about 35 min on 2 CPU cores)
set -euo pipefail
ROOT=${1:-runs/tiny}
DATA="[$ROOT/data/sim56,$ROOT/data/puzzle84]"
export MUJOCO_GL=${MUJOCO_GL:-egl}

# 1. data: 300 clips per task; 56x56 for the ball tasks (16 video tokens per 2 s at 4 fps),
#    84x84 for the puzzle so the 2x2 seams fall inside merged tokens (design.md).
cosmos-ros gen-data --tasks object_permanence,arrow_of_time --n 300 --width 56 --height 56 --no-usd \
    --workers 2 --out "$ROOT/data/sim56"
cosmos-ros gen-data --tasks spatial_puzzle --n 300 --width 84 --height 84 --no-usd --workers 2 \
    --out "$ROOT/data/puzzle84"

# 2. SFT from random init (resumable: re-run the script after an interruption).
cosmos-ros train sft --config training/sft_tiny.yaml --data.data_dirs "$DATA" \
    --trainer.default_root_dir "$ROOT/sft" --resume auto

# 3. GRPO from the SFT export.
cosmos-ros train grpo --config training/grpo_tiny.yaml --data.data_dirs "$DATA" \
    --model.model "$ROOT/sft/export" --trainer.default_root_dir "$ROOT/grpo" --resume auto

# 4. held-out accuracy by category: random guessing vs SFT vs GRPO (table.md + chart.png).
cosmos-ros eval --model "$ROOT/sft/export" --name sft --model "$ROOT/grpo/export" --name grpo \
    --data "$ROOT/data/sim56" --data "$ROOT/data/puzzle84" --split test --out "$ROOT/eval"

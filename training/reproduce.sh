#!/usr/bin/env bash
# Reproduce model/cosmos-reason1-tiny: sim data -> SFT from random init -> GRPO -> held-out eval.
#   training/reproduce.sh [ROOT]     (default runs/tiny; about 55 min on 2 CPU cores)
set -euo pipefail
ROOT=${1:-runs/tiny}
DATA="[$ROOT/data/easy56,$ROOT/data/puzzle84]"
export MUJOCO_GL=${MUJOCO_GL:-egl}

# 1. data: object permanence and arrow of time with the nuisances narrowed for a 2 M-parameter
#    model (sim/tiny/*.yaml: one camera, one light, 56x56, 4 s at 4 fps); the puzzle at 84x84 so
#    the 2x2 seams fall inside merged tokens (design.md). All three ask with sorted options: with
#    options shuffled per question the tiny model stayed at chance (see its card).
cosmos-ros gen-data --tasks sim/tiny/object_permanence.yaml,sim/tiny/arrow_of_time.yaml --n 1000 \
    --no-usd --workers 2 --out "$ROOT/data/easy56"
cosmos-ros gen-data --tasks sim/tiny/spatial_puzzle.yaml --n 1000 --no-usd --workers 2 \
    --out "$ROOT/data/puzzle84"
# GRPO's prompts: object permanence clips from another base seed, unseen by SFT (train/val only).
cosmos-ros gen-data --tasks sim/tiny/object_permanence.yaml --n 1000 --seed 200 --splits 0.9,0.1,0 \
    --no-usd --workers 2 --out "$ROOT/data/rl56"

# 2. SFT from random init; exports the weights of the best validation round (resumable: re-run
#    the script after an interruption).
cosmos-ros train sft --config training/sft_tiny.yaml --data.data_dirs "$DATA" \
    --trainer.default_root_dir "$ROOT/sft" --select val/answer_acc --resume auto

# 3. GRPO from the SFT export, on the unseen clips.
cosmos-ros train grpo --config training/grpo_tiny.yaml --data.data_dirs "[$ROOT/data/rl56]" \
    --model.model "$ROOT/sft/export" --trainer.default_root_dir "$ROOT/grpo" --select val/accuracy \
    --resume auto

# 4. held-out accuracy by category: random guessing vs SFT vs GRPO (table.md + chart.png).
cosmos-ros eval --model "$ROOT/sft/export" --name sft --model "$ROOT/grpo/export" --name grpo \
    --data "$ROOT/data/easy56" --data "$ROOT/data/puzzle84" --split test --out "$ROOT/eval"

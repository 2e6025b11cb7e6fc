"""Training: Lightning data modules, SFT and GRPO modules, evaluation, export.

Stands on `cosmos_ros.model` and `cosmos_ros.core`; reads datasets as files (JSONL + mp4 in the
Cosmos conversation shape, as `cosmos-ros gen-data` writes them), never through `cosmos_ros.sim`.

    cosmos-ros train sft --config training/sft_tiny.yaml
    cosmos-ros train grpo --config training/grpo_tiny.yaml --model.model runs/tiny/sft/export
    cosmos-ros eval --model runs/tiny/grpo/export --data runs/tiny/data/sim56 --split test
"""

"""Trained weights → an HF-layout directory the engines and the reasoner node load.

    export_model(module.model, module.tokenizer, module.processor, "model/cosmos-reason1-tiny")
    export_checkpoint("runs/sft/checkpoints/last.ckpt", "out/")   # from a Lightning checkpoint

LoRA adapters are merged first. Weights are written as contiguous fp32 safetensors by
`cosmos_ros.model.checkpoint.save_checkpoint` (config.json, generation_config.json, tokenizer
files, video_preprocessor_config.json).
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from cosmos_ros.model.checkpoint import save_checkpoint


def export_model(model, tokenizer, processor, path: str | Path, dtype: torch.dtype = torch.float32) -> Path:
    model = copy.deepcopy(model)
    if hasattr(model, "merge_and_unload"):  # peft
        model = model.merge_and_unload()
    if getattr(model, "is_gradient_checkpointing", False):
        model.gradient_checkpointing_disable()
    model = model.to("cpu", dtype).eval()
    for p in model.parameters():
        p.data = p.data.contiguous()
    return save_checkpoint(model, path, tokenizer=tokenizer, video_processor=processor.video)


def export_checkpoint(ckpt: str | Path, path: str | Path, module: str = "sft") -> Path:
    """A Lightning checkpoint of SFTModule / GRPOModule → HF directory."""
    from cosmos_ros.training.grpo import GRPOModule
    from cosmos_ros.training.sft import SFTModule

    cls = {"sft": SFTModule, "grpo": GRPOModule}[module]
    loaded = cls.load_from_checkpoint(str(ckpt), map_location="cpu")
    return export_model(loaded.model, loaded.tokenizer, loaded.processor, path)

"""Model presets: the architectures we serve, read from the YAML cards in `model/presets/`.

Three families, each composed from transformers' own classes:

- dense (`ModelPreset`): Qwen2.5-VL — `cosmos-reason1-7b` (Cosmos-Reason1-7B) and `tiny-dense`;
  model class `Qwen2_5_VLForConditionalGeneration`.
- hybrid (`HybridPreset`): InternViT + pixel shuffle + MLP projector + Nemotron-H —
  `cosmos-reason1-56b` and `tiny-hybrid`; model class `InternVLForConditionalGeneration`.
- qwen3_vl (`Qwen3VLPreset`): Qwen3-VL — `cosmos-reason2-2b`, `-8b`, `-32b` (Cosmos-Reason2) and
  `cosmos-reason2-tiny`; model class `Qwen3VLForConditionalGeneration`.

The tiny presets carry the offline tokenizer's token ids, so they run without any download.
"""

from __future__ import annotations

import time
from pathlib import Path

from cosmos_ros.model.cards import Preset, load_cards, preset_directories, read_card
from cosmos_ros.model.dense_config import (
    QWEN_TOKEN_IDS,
    TINY_TOKEN_IDS,
    ModelPreset,
    TextConfig,
    VideoDefaults,
    VisionConfig,
)
from cosmos_ros.model.families import family_of
from cosmos_ros.model.hybrid_config import FrameDefaults, HybridPreset, InternViTConfig, NemotronHTextConfig
from cosmos_ros.model.qwen3vl_config import Qwen3VLPreset

__all__ = [
    "PRESETS",
    "QWEN_TOKEN_IDS",
    "TINY_TOKEN_IDS",
    "FrameDefaults",
    "HybridPreset",
    "InternViTConfig",
    "ModelPreset",
    "NemotronHTextConfig",
    "Preset",
    "Qwen3VLPreset",
    "TextConfig",
    "VideoDefaults",
    "VisionConfig",
    "get_preset",
    "model_class",
    "model_info",
]

PRESETS: dict[str, Preset] = load_cards()


def get_preset(name: str | Path | Preset) -> Preset:
    """A preset by name, by the path of a YAML card, or passed through when already one."""
    if isinstance(name, (ModelPreset, HybridPreset, Qwen3VLPreset)):
        return name
    if name in PRESETS:
        return PRESETS[name]
    if str(name).endswith((".yaml", ".yml")) and Path(name).is_file():
        return read_card(name)
    folders = ", ".join(str(d) for d in preset_directories()) or "no preset folder found"
    raise KeyError(
        f"unknown model preset {str(name)!r}; known presets: {', '.join(sorted(PRESETS))} (cards in {folders}), "
        "or pass the path of a .yaml card"
    )


def model_class(config):
    """transformers' model class for a preset or an HF config, from its family's entry."""
    try:
        return family_of(config).load("model_class")
    except ValueError as exc:
        raise ValueError(f"no model class for {type(config).__name__}: {exc}") from None


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def model_info(preset: str | Path | Preset) -> dict:
    """Parameter counts of a preset, built on the meta device: no weights allocated, well under a
    second for 7B and a few seconds for 56B."""
    import torch

    preset = get_preset(preset)
    start = time.perf_counter()
    with torch.device("meta"):
        model = model_class(preset)(preset.to_hf_config())
    total = _count(model)
    info = {"preset": preset.name, "family": preset.family, "parameters": total}
    if family_of(preset).mrope:
        visual = model.model.visual
        merger = _count(visual.merger) + sum(map(_count, getattr(visual, "deepstack_merger_list", ())))
        vision = _count(visual)
        info |= {
            "vision_parameters": vision - merger,
            "projector_parameters": merger,
            "language_parameters": total - vision,
            "bytes_bf16": total * 2,
            "text_hidden_size": preset.text.hidden_size,
            "text_layers": preset.text.num_layers,
            "vision_depth": preset.vision.depth,
            "vocab_size": preset.text.vocab_size,
        }
    else:
        vision, projector = _count(model.model.vision_tower), _count(model.model.multi_modal_projector)
        info |= {
            "vision_parameters": vision,
            "projector_parameters": projector,
            "language_parameters": total - vision - projector,
            "bytes_bf16": total * 2,
            "text_hidden_size": preset.text.hidden_size,
            "text_layers": preset.text.num_layers,
            "text_layer_counts": preset.text.layer_counts(),
            "vision_depth": preset.vision.num_layers,
            "image_size": preset.vision.image_size,
            "tokens_per_frame": preset.tokens_per_frame,
            "vocab_size": preset.text.vocab_size,
        }
    info["build_s"] = time.perf_counter() - start
    return info

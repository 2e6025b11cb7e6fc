"""Everything a backend needs to run a model: weights, tokenizer, processor and an id, from a
preset (random init, tiny presets only) or a checkpoint directory, for either family."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from cosmos_ros.model.checkpoint import (
    CheckpointError,
    build_model,
    checkpoint_id,
    load_model,
    preset_id,
    resolve_dtype,
)
from cosmos_ros.model.config import PRESETS, HybridPreset, Preset, get_preset
from cosmos_ros.model.hybrid_processor import FrameProcessor, HybridReasonProcessor
from cosmos_ros.model.processor import ReasonProcessor, VideoProcessor
from cosmos_ros.model.tokenizer import build_tiny_tokenizer, load_tokenizer

FAMILY_OF_MODEL_TYPE = {"qwen2_5_vl": "dense", "internvl": "hybrid"}


@dataclass
class ModelBundle:
    model: (
        torch.nn.Module
    )  # transformers' Qwen2_5_VLForConditionalGeneration or InternVLForConditionalGeneration
    tokenizer: object
    processor: ReasonProcessor | HybridReasonProcessor
    model_id: str  # `<name>@<8 hex>`
    family: str  # "dense" or "hybrid"
    # the checkpoint's generation defaults (read_generation_defaults); empty for a preset
    generation: dict = field(default_factory=dict)


GENERATION_CONFIG = "generation_config.json"


def read_generation_defaults(path: str | Path) -> dict:
    """What a checkpoint's generation_config.json asks for when a caller asks for nothing:
    max_new_tokens, temperature (0 = greedy unless it sets do_sample, as transformers reads it),
    top_p when sampling, and eos_token_id (extra stop tokens). Empty without the file."""
    file = Path(path) / GENERATION_CONFIG
    if not file.is_file():
        return {}
    try:
        cfg = json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{file} is not valid JSON: {exc}") from None
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{file} is not a generation config (a JSON object)")
    defaults: dict = {}
    if isinstance(cfg.get("max_new_tokens"), int) and cfg["max_new_tokens"] > 0:
        defaults["max_new_tokens"] = cfg["max_new_tokens"]
    sampling = bool(cfg.get("do_sample")) and cfg.get("top_k") != 1  # top_k 1 is greedy (Qwen2.5-VL's own)
    defaults["temperature"] = float(cfg.get("temperature", 1.0)) if sampling else 0.0
    if sampling and isinstance(cfg.get("top_p"), (int, float)):
        defaults["top_p"] = float(cfg["top_p"])
    eos = cfg.get("eos_token_id")
    if isinstance(eos, int) or (isinstance(eos, list) and all(isinstance(e, int) for e in eos)):
        defaults["eos_token_id"] = eos
    return defaults


def write_generation_defaults(path: str | Path, defaults: dict) -> None:
    """generation_config.json holding `defaults` (read_generation_defaults' keys), HF style."""
    cfg = {k: v for k, v in defaults.items() if k in ("max_new_tokens", "eos_token_id")}
    if defaults.get("temperature", 0.0) > 0:
        cfg |= {
            "do_sample": True,
            "temperature": defaults["temperature"],
            "top_p": defaults.get("top_p", 1.0),
        }
    (Path(path) / GENERATION_CONFIG).write_text(json.dumps(cfg, indent=2) + "\n")


def make_processor(preset: Preset, tokenizer) -> ReasonProcessor | HybridReasonProcessor:
    """The `(Clip, Prompt) → inputs` processor of a preset, around `tokenizer`."""
    if isinstance(preset, HybridPreset):
        return HybridReasonProcessor(
            tokenizer,
            FrameProcessor.from_preset(preset),
            preset.tokens_per_frame,
            preset.token_ids["image_token_id"],
        )
    return ReasonProcessor(tokenizer, VideoProcessor.from_preset(preset), preset.token_ids["video_token_id"])


def checkpoint_processor(path: Path, config, tokenizer) -> ReasonProcessor | HybridReasonProcessor:
    """The processor of a checkpoint: its video_preprocessor_config.json over its family's defaults."""
    if FAMILY_OF_MODEL_TYPE[config.model_type] == "hybrid":
        vision = config.vision_config
        patches = (vision.image_size[0] // vision.patch_size[0]) ** 2
        tokens_per_frame = round(patches * config.downsample_ratio**2)
        if tokens_per_frame != config.image_seq_length:
            raise CheckpointError(
                f"{path}: image_seq_length {config.image_seq_length} disagrees with the vision config "
                f"({patches} patches x downsample_ratio² = {tokens_per_frame})"
            )
        base = replace(
            FrameProcessor.from_preset(get_preset("cosmos-reason1-56b")), image_size=vision.image_size[0]
        )
        frames = FrameProcessor.from_pretrained(path, base=base)
        if frames.image_size != vision.image_size[0]:
            raise CheckpointError(
                f"{path}: video_preprocessor_config.json resizes frames to {frames.image_size}² but the "
                f"vision tower takes {vision.image_size[0]}²"
            )
        return HybridReasonProcessor(tokenizer, frames, tokens_per_frame, config.image_token_id)
    vision = config.vision_config
    # Pixel budget and fps: the checkpoint's video_preprocessor_config.json, else the 7B defaults.
    base = replace(
        VideoProcessor.from_preset(get_preset("cosmos-reason1-7b")),
        patch_size=vision.patch_size,
        temporal_patch_size=vision.temporal_patch_size,
        merge_size=vision.spatial_merge_size,
    )
    return ReasonProcessor(tokenizer, VideoProcessor.from_pretrained(path, base=base), config.video_token_id)


def load_bundle(
    source: str | Path | Preset,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | str | None = None,
    seed: int = 0,
    strict: bool = True,
) -> ModelBundle:
    """`source`: a preset name or YAML card with an offline tokenizer (random init from `seed`),
    or a checkpoint directory of either family."""
    device = torch.device(device)
    dtype = resolve_dtype(dtype, device)
    if (
        isinstance(source, (str, Path))
        and not str(source).endswith((".yaml", ".yml"))
        and str(source) not in PRESETS
    ):
        path = Path(source)
        if not path.exists():
            raise CheckpointError(
                f"{str(source)!r} is neither a model preset ({', '.join(sorted(PRESETS))}) "
                "nor an existing checkpoint directory"
            )
        model = load_model(path, dtype, device, strict=strict)
        family = FAMILY_OF_MODEL_TYPE[model.config.model_type]
        tokenizer = load_tokenizer(path, family)
        processor = checkpoint_processor(path, model.config, tokenizer)
        generation = read_generation_defaults(path)
        return ModelBundle(model, tokenizer, processor, checkpoint_id(path), family, generation)
    preset = get_preset(source)
    if not preset.offline_tokenizer:
        raise ValueError(
            f"preset {preset.name!r} has no offline tokenizer and is too large to random-init for use; "
            "pass the directory of a downloaded checkpoint (e.g. nvidia/Cosmos-Reason1-7B) instead"
        )
    tokenizer = build_tiny_tokenizer(family=preset.family)
    model = build_model(preset, seed, dtype=dtype, device=device)
    return ModelBundle(
        model, tokenizer, make_processor(preset, tokenizer), preset_id(preset, seed), preset.family
    )

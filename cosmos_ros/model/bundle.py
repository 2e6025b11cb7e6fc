"""Everything a backend needs to run a model: weights, tokenizer, processor and an id, from a
preset (random init, tiny presets only) or a checkpoint directory, for either family."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
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
from cosmos_ros.model.config import PRESETS, Preset
from cosmos_ros.model.families import family_of, resolve_source
from cosmos_ros.model.hybrid_processor import HybridReasonProcessor
from cosmos_ros.model.processor import ReasonProcessor
from cosmos_ros.model.tokenizer import build_tiny_tokenizer, load_tokenizer


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
    """The `(Clip, Prompt) → inputs` processor of a preset, around `tokenizer` (its family's)."""
    return family_of(preset).load("preset_processor")(preset, tokenizer)


def checkpoint_processor(path: Path, config, tokenizer) -> ReasonProcessor | HybridReasonProcessor:
    """The processor of a checkpoint (or export) directory: its family's, from its processor
    configs over the family defaults."""
    return family_of(config).load("checkpoint_processor")(Path(path), config, tokenizer)


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
    kind, resolved = resolve_source(source)
    if kind == "directory":
        if not resolved.exists():
            raise CheckpointError(
                f"{str(source)!r} is neither a model preset ({', '.join(sorted(PRESETS))}) "
                "nor an existing checkpoint directory"
            )
        model = load_model(resolved, dtype, device, strict=strict)
        family = family_of(model.config).name
        tokenizer = load_tokenizer(resolved, family)
        processor = checkpoint_processor(resolved, model.config, tokenizer)
        generation = read_generation_defaults(resolved)
        return ModelBundle(model, tokenizer, processor, checkpoint_id(resolved), family, generation)
    preset = resolved
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

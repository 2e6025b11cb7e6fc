"""The model families, in one registry — in the spirit of transformers' `model_type` → classes
mappings. An entry names, as "module:attribute" (imported only when used, so reading the
registry costs no torch), everything that differs between families:

- `card`: the preset dataclass a YAML card becomes (its `text` / `vision` / `video` fields'
  types are the card's sections);
- `model_class`: transformers' model class, for presets and checkpoints alike;
- `preset_processor` / `checkpoint_processor`: the `(Clip, Prompt) → inputs` processor of a
  preset, and of a checkpoint directory (its own processor configs over the family defaults);
- `runner`: the torch engine's per-family forward (`engine.runners.Runner`);
- `export_jobs`: the ONNX graphs of `cosmos-ros export`;
- what it supports: `trainable` (SFT / GRPO), `exportable` (ONNX; TensorRT builds from an export).

    family = family_of(config)   # an HF config or config.json dict, a preset, or a family name
    family.load("model_class")   # transformers.Qwen2_5_VLForConditionalGeneration

Adding a family is an entry here and the family's own modules (model/README.md, "Adding a
family"). `resolve_source` is the one place that decides whether a model name is a preset or a
checkpoint directory.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Family:
    name: str  # what presets, manifests and bundles call it: "dense", "hybrid", "qwen3_vl"
    model_type: str  # config.json's model_type
    summary: str
    card: str
    model_class: str
    preset_processor: str
    checkpoint_processor: str
    runner: str
    export_jobs: str | None  # None: not exportable
    media_token: str  # the config / preset token id its media placeholder uses
    tiny_tokenizer: str = "qwen"  # the offline tokenizer's layout for its tiny preset: "qwen" or "internvl"
    # the Qwen-VL layout: patchified video (pixel_values_videos), a `model.model.visual` tower and
    # 3-D mRoPE position_ids computed outside the model (the export takes them as an input)
    mrope: bool = False
    trainable: bool = False
    exportable: bool = True

    def load(self, part: str):
        """The object an entry names: `family.load("runner")` is the runner class."""
        name = getattr(self, part)
        if name is None:
            raise ValueError(f"the {self.name} family ({self.summary}) has no {part}")
        module, _, attribute = name.partition(":")
        return getattr(importlib.import_module(module), attribute)


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            name="dense",
            model_type="qwen2_5_vl",
            summary="Qwen2.5-VL (Cosmos-Reason1-7B)",
            card="cosmos_ros.model.dense_config:ModelPreset",
            model_class="transformers:Qwen2_5_VLForConditionalGeneration",
            preset_processor="cosmos_ros.model.processor:preset_processor",
            checkpoint_processor="cosmos_ros.model.processor:checkpoint_processor",
            runner="cosmos_ros.engine.runners:DenseRunner",
            export_jobs="cosmos_ros.engine.onnx_jobs:dense_jobs",
            media_token="video_token_id",
            mrope=True,
            trainable=True,
        ),
        Family(
            name="hybrid",
            model_type="internvl",
            summary="InternViT + MLP projector + Nemotron-H (Cosmos-Reason1-56B)",
            card="cosmos_ros.model.hybrid_config:HybridPreset",
            model_class="transformers:InternVLForConditionalGeneration",
            preset_processor="cosmos_ros.model.hybrid_processor:preset_processor",
            checkpoint_processor="cosmos_ros.model.hybrid_processor:checkpoint_processor",
            runner="cosmos_ros.engine.runners:HybridRunner",
            export_jobs="cosmos_ros.engine.onnx_jobs:hybrid_jobs",
            media_token="image_token_id",
            tiny_tokenizer="internvl",
        ),
        Family(
            name="qwen3_vl",
            model_type="qwen3_vl",
            summary="Qwen3-VL (Cosmos-Reason2-2B / 8B / 32B)",
            card="cosmos_ros.model.qwen3vl_config:Qwen3VLPreset",
            model_class="transformers:Qwen3VLForConditionalGeneration",
            preset_processor="cosmos_ros.model.qwen3vl_processor:preset_processor",
            checkpoint_processor="cosmos_ros.model.qwen3vl_processor:checkpoint_processor",
            runner="cosmos_ros.engine.runners:Qwen3VLRunner",
            export_jobs="cosmos_ros.engine.onnx_jobs:qwen3_vl_jobs",
            media_token="video_token_id",
            mrope=True,
            trainable=True,
        ),
    )
}
MODEL_TYPES: dict[str, Family] = {family.model_type: family for family in FAMILIES.values()}


def family_of(thing) -> Family:
    """The family of a name ("dense"), a preset (its `family`), an HF config or a config.json
    mapping (its `model_type`); ValueError naming what is supported otherwise."""
    if isinstance(thing, str):
        if thing in FAMILIES:
            return FAMILIES[thing]
        raise ValueError(f"unknown model family {thing!r}; expected one of {', '.join(FAMILIES)}")
    name = getattr(thing, "family", None)
    if isinstance(name, str) and name in FAMILIES:
        return FAMILIES[name]
    model_type = thing.get("model_type") if isinstance(thing, dict) else getattr(thing, "model_type", None)
    if model_type in MODEL_TYPES:
        return MODEL_TYPES[model_type]
    raise ValueError(
        f"model_type {model_type!r} is not supported; expected one of {', '.join(MODEL_TYPES)} "
        f"({'; '.join(f'{f.model_type}: {f.summary}' for f in FAMILIES.values())})"
    )


def resolve_source(source):
    """A model source as ("preset", Preset) or ("directory", Path): a preset instance, a preset
    name, or a .yaml card are presets; anything else is a checkpoint (or export) directory, which
    need not exist yet for this answer."""
    from cosmos_ros.model.config import PRESETS, get_preset

    if not isinstance(source, (str, Path)):
        return "preset", get_preset(source)
    if str(source) in PRESETS or str(source).endswith((".yaml", ".yml")):
        return "preset", get_preset(source)
    return "directory", Path(source)

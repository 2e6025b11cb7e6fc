"""The qwen3_vl family: Cosmos-Reason2's Qwen3-VL architecture, as data.

A `Qwen3VLPreset` builds transformers' `Qwen3VLConfig`; the model class is transformers'
`Qwen3VLForConditionalGeneration` (composed, not copied). What differs from the dense
(Qwen2.5-VL) family, and why the family is its own:

- vision: patch 16 (32-pixel merged tokens), a learned position grid (`num_position_embeddings`,
  bilinearly resampled to each frame's grid) beside 2-D RoPE, no window attention, and
  DeepStack: the outputs of `deepstack_visual_indexes` vision blocks are merged and added to
  the first LLM layers' hidden states at the visual positions;
- text: Qwen3 (q/k RMSNorm, head_dim independent of the width), interleaved mRoPE;
- video: time is text — each temporal patch is announced as "<t seconds>" before its own
  `<|vision_start|>…<|vision_end|>` span — and the pixel budget covers the whole clip.

The numbers live in the YAML cards under `model/presets/` (see `cosmos_ros.model.cards`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import ClassVar

from transformers import Qwen3VLConfig

from cosmos_ros.model.dense_config import QWEN_TOKEN_IDS, check_qwen_preset


@dataclass(frozen=True)
class Qwen3TextConfig:
    """The language model (Qwen3 decoder with interleaved multimodal RoPE)."""

    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    max_position_embeddings: int = 262144
    rope_theta: float = 5_000_000.0
    mrope_section: tuple[int, int, int] = (24, 20, 20)  # (t, h, w) rotary pairs; sums to head_dim / 2
    mrope_interleaved: bool = True
    rms_norm_eps: float = 1e-6


@dataclass(frozen=True)
class Qwen3VisionConfig:
    """The ViT with a learned, resampled position grid, 2-D RoPE and DeepStack mergers."""

    depth: int
    hidden_size: int
    num_heads: int
    intermediate_size: int
    deepstack_visual_indexes: tuple[int, ...]
    patch_size: int = 16
    temporal_patch_size: int = 2
    spatial_merge_size: int = 2
    num_position_embeddings: int = 2304  # a 48 x 48 grid
    hidden_act: str = "gelu_pytorch_tanh"


@dataclass(frozen=True)
class Qwen3VideoDefaults:
    """How the processor samples and sizes a clip. Unlike Qwen2.5-VL, the pixel limits are the
    whole clip's (transformers' Qwen3VLVideoProcessor `size`): `min_pixels` / `max_pixels` bound
    frames x height x width, so a long clip is sampled smaller per frame."""

    min_pixels: int
    max_pixels: int
    fps: float = 4.0


@dataclass(frozen=True)
class Qwen3VLPreset:
    """A Qwen3-VL-architecture model: vision tower with DeepStack, merger, Qwen3 LLM."""

    family: ClassVar[str] = "qwen3_vl"

    name: str
    text: Qwen3TextConfig
    vision: Qwen3VisionConfig
    video: Qwen3VideoDefaults
    token_ids: dict[str, int] = field(default_factory=lambda: dict(QWEN_TOKEN_IDS))
    tie_word_embeddings: bool = False
    offline_tokenizer: bool = False  # True: `build_tiny_tokenizer()` matches this preset's ids

    def __post_init__(self) -> None:
        t, v = self.text, self.vision
        check_qwen_preset(self.name, t.mrope_section, t.head_dim, self.token_ids)
        if t.num_heads % t.num_kv_heads:
            raise ValueError(f"preset {self.name}: heads {t.num_heads} are not a multiple of kv heads {t.num_kv_heads}")
        if v.hidden_size % v.num_heads:
            raise ValueError(f"preset {self.name}: vision width {v.hidden_size} does not split into {v.num_heads} heads")
        if any(not 0 <= i < v.depth for i in v.deepstack_visual_indexes):
            raise ValueError(
                f"preset {self.name}: deepstack_visual_indexes {v.deepstack_visual_indexes} must lie in 0..{v.depth - 1}"
            )
        if len(v.deepstack_visual_indexes) > t.num_layers:
            raise ValueError(
                f"preset {self.name}: {len(v.deepstack_visual_indexes)} DeepStack features need as many LLM layers, "
                f"it has {t.num_layers}"
            )
        side = round(v.num_position_embeddings**0.5)
        if side * side != v.num_position_embeddings:
            raise ValueError(f"preset {self.name}: num_position_embeddings {v.num_position_embeddings} is not a square grid")

    def to_hf_config(self) -> Qwen3VLConfig:
        t, v = self.text, self.vision
        text_config = {
            "hidden_size": t.hidden_size,
            "num_hidden_layers": t.num_layers,
            "num_attention_heads": t.num_heads,
            "num_key_value_heads": t.num_kv_heads,
            "head_dim": t.head_dim,
            "intermediate_size": t.intermediate_size,
            "vocab_size": t.vocab_size,
            "max_position_embeddings": t.max_position_embeddings,
            "rms_norm_eps": t.rms_norm_eps,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": t.rope_theta,
                "mrope_section": list(t.mrope_section),
                "mrope_interleaved": t.mrope_interleaved,
            },
            "bos_token_id": self.token_ids["bos_token_id"],
            "eos_token_id": self.token_ids["eos_token_id"],
            "tie_word_embeddings": self.tie_word_embeddings,
        }
        vision_config = {
            "depth": v.depth,
            "hidden_size": v.hidden_size,
            "num_heads": v.num_heads,
            "intermediate_size": v.intermediate_size,
            "hidden_act": v.hidden_act,
            "patch_size": v.patch_size,
            "temporal_patch_size": v.temporal_patch_size,
            "spatial_merge_size": v.spatial_merge_size,
            "num_position_embeddings": v.num_position_embeddings,
            "deepstack_visual_indexes": list(v.deepstack_visual_indexes),
            "out_hidden_size": t.hidden_size,
        }
        return Qwen3VLConfig(
            text_config=text_config,
            vision_config=vision_config,
            image_token_id=self.token_ids["image_token_id"],
            video_token_id=self.token_ids["video_token_id"],
            vision_start_token_id=self.token_ids["vision_start_token_id"],
            vision_end_token_id=self.token_ids["vision_end_token_id"],
            tie_word_embeddings=self.tie_word_embeddings,
        )

    def as_dict(self) -> dict:
        return asdict(self)

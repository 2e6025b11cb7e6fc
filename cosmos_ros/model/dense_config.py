"""The dense family: Cosmos-Reason1-7B's Qwen2.5-VL architecture, as data.

A `ModelPreset` builds transformers' `Qwen2_5_VLConfig`; the model class itself is transformers'
`Qwen2_5_VLForConditionalGeneration` (composed, not copied). The numbers live in the YAML cards
under `model/presets/` (see `cosmos_ros.model.cards`); these classes say what a card may hold.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import ClassVar

from transformers import Qwen2_5_VLConfig

# Qwen2.5-VL token ids; the tiny tokenizer keeps Qwen's order at ids 0..13 (Qwen id - 151643).
QWEN_TOKEN_IDS = {
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
    "image_token_id": 151655,
    "video_token_id": 151656,
}
TINY_TOKEN_IDS = {name: qwen_id - 151643 for name, qwen_id in QWEN_TOKEN_IDS.items()}


def check_qwen_preset(name: str, mrope_section: tuple[int, ...], head_dim: int, token_ids: dict) -> None:
    """What every Qwen-VL preset must satisfy: mRoPE sections that fill half a head, and Qwen's
    special token ids all named."""
    if sum(mrope_section) * 2 != head_dim:
        raise ValueError(f"preset {name}: mrope_section {mrope_section} must sum to head_dim/2 = {head_dim // 2}")
    missing = set(QWEN_TOKEN_IDS) - set(token_ids)
    if missing:
        raise ValueError(f"preset {name}: token_ids lacks {sorted(missing)}")


@dataclass(frozen=True)
class TextConfig:
    """The language model (Qwen2 decoder with multimodal RoPE)."""

    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    vocab_size: int
    max_position_embeddings: int = 128000
    rope_theta: float = 1_000_000.0
    mrope_section: tuple[int, int, int] = (16, 24, 24)  # (t, h, w) rotary pairs; sums to head_dim / 2
    rms_norm_eps: float = 1e-6

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


@dataclass(frozen=True)
class VisionConfig:
    """The ViT with 2D RoPE, window attention and a 2x2 patch merger into the LLM width."""

    depth: int
    hidden_size: int
    num_heads: int
    intermediate_size: int
    patch_size: int = 14
    temporal_patch_size: int = 2
    spatial_merge_size: int = 2
    window_size: int = 112
    fullatt_block_indexes: tuple[int, ...] = (7, 15, 23, 31)
    tokens_per_second: int = 2


@dataclass(frozen=True)
class VideoDefaults:
    """How the processor samples and sizes frames for this model (per-frame pixel budget)."""

    min_pixels: int
    max_pixels: int
    fps: float = 4.0
    # pixels of the whole clip (qwen-vl-utils' total_pixels): a clip of many frames gets a
    # smaller per-frame budget, never below 1.05 x min_pixels; None: no clip budget
    total_pixels: int | None = None


@dataclass(frozen=True)
class ModelPreset:
    """A dense (Qwen2.5-VL architecture) model: vision tower, merger, Qwen2 LLM."""

    family: ClassVar[str] = "dense"

    name: str
    text: TextConfig
    vision: VisionConfig
    video: VideoDefaults
    token_ids: dict[str, int] = field(default_factory=lambda: dict(QWEN_TOKEN_IDS))
    tie_word_embeddings: bool = False
    offline_tokenizer: bool = False  # True: `build_tiny_tokenizer()` matches this preset's ids

    def __post_init__(self) -> None:
        t, v = self.text, self.vision
        check_qwen_preset(self.name, t.mrope_section, t.head_dim, self.token_ids)
        if t.hidden_size % t.num_heads or t.num_heads % t.num_kv_heads:
            raise ValueError(
                f"preset {self.name}: hidden {t.hidden_size}, heads {t.num_heads}, kv heads {t.num_kv_heads} do not divide"
            )
        if any(i >= v.depth for i in v.fullatt_block_indexes):
            raise ValueError(
                f"preset {self.name}: fullatt_block_indexes {v.fullatt_block_indexes} exceed depth {v.depth}"
            )

    def to_hf_config(self) -> Qwen2_5_VLConfig:
        t, v = self.text, self.vision
        text_config = {
            "hidden_size": t.hidden_size,
            "num_hidden_layers": t.num_layers,
            "num_attention_heads": t.num_heads,
            "num_key_value_heads": t.num_kv_heads,
            "intermediate_size": t.intermediate_size,
            "vocab_size": t.vocab_size,
            "max_position_embeddings": t.max_position_embeddings,
            "rms_norm_eps": t.rms_norm_eps,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": t.rope_theta,
                "mrope_section": list(t.mrope_section),
            },
            "bos_token_id": self.token_ids["bos_token_id"],
            "eos_token_id": self.token_ids["eos_token_id"],
            "max_window_layers": t.num_layers,
            "use_sliding_window": False,
        }
        vision_config = {
            "depth": v.depth,
            "hidden_size": v.hidden_size,
            "num_heads": v.num_heads,
            "intermediate_size": v.intermediate_size,
            "patch_size": v.patch_size,
            "temporal_patch_size": v.temporal_patch_size,
            "spatial_merge_size": v.spatial_merge_size,
            "window_size": v.window_size,
            "fullatt_block_indexes": list(v.fullatt_block_indexes),
            "tokens_per_second": v.tokens_per_second,
            "out_hidden_size": t.hidden_size,
        }
        return Qwen2_5_VLConfig(
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

"""The hybrid family: Cosmos-Reason1-56B's InternVL + Nemotron-H architecture, as data.

Each frame goes through an InternViT encoder (`InternVLVisionModel`), a 2x2 pixel shuffle
(downsample ratio 0.5: 1024 patches at 448² become 256 tokens of 4x the width) and a projector
LayerNorm → Linear → GELU → Linear into a Nemotron-H language model, whose layers are Mamba-2,
MLP or attention blocks in the order a pattern string gives. transformers composes it all as
`InternVLForConditionalGeneration` with `text_config.model_type = "nemotron_h"`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import ClassVar

from transformers import InternVLConfig

# Nemotron-H's pattern letters (its `hybrid_override_pattern`) → transformers' layer types.
LAYER_TYPES = {"M": "linear_attention", "-": "mlp", "*": "full_attention"}
LAYER_NAMES = {"M": "mamba", "-": "mlp", "*": "attention"}

# InternViT was trained on ImageNet-normalized pixels (not CLIP's statistics).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

HYBRID_TOKEN_KEYS = (
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "image_start_token_id",  # <img>, opens one frame
    "image_end_token_id",  # </img>
    "image_token_id",  # <IMG_CONTEXT>, one per vision token; the model scatters frame features there
    "video_token_id",  # <video>, the chat template's placeholder the processor expands into frames
)


@dataclass(frozen=True)
class InternViTConfig:
    """The vision encoder (transformers' `InternVLVisionConfig`): a plain ViT with a CLS token,
    absolute position embeddings and layer scale."""

    num_layers: int
    hidden_size: int
    num_heads: int
    intermediate_size: int
    image_size: int = 448
    patch_size: int = 14
    attention_bias: bool = True
    use_qk_norm: bool = False
    norm_type: str = "layer_norm"
    layer_norm_eps: float = 1e-6
    layer_scale_init_value: float = 0.1
    hidden_act: str = "gelu"

    @property
    def patches_per_frame(self) -> int:
        return (self.image_size // self.patch_size) ** 2


@dataclass(frozen=True)
class NemotronHTextConfig:
    """The language model (transformers' `NemotronHConfig`, no MoE). `layers` is Nemotron-H's
    pattern string: M = Mamba-2 block, - = MLP block, * = attention block; one letter per layer."""

    hidden_size: int
    layers: str
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    mamba_num_heads: int
    mamba_head_dim: int
    ssm_state_size: int
    n_groups: int
    vocab_size: int
    conv_kernel: int = 4
    chunk_size: int = 128
    max_position_embeddings: int = 8192
    layer_norm_epsilon: float = 1e-5
    mlp_hidden_act: str = "relu2"

    @property
    def layer_types(self) -> list[str]:
        return [LAYER_TYPES[letter] for letter in self.layers]

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def layer_counts(self) -> dict[str, int]:
        return {name: self.layers.count(letter) for letter, name in LAYER_NAMES.items()}


@dataclass(frozen=True)
class FrameDefaults:
    """How the processor prepares frames: resized to the encoder's square, normalized, sampled at fps."""

    fps: float = 4.0
    image_mean: tuple[float, float, float] = IMAGENET_MEAN
    image_std: tuple[float, float, float] = IMAGENET_STD


@dataclass(frozen=True)
class HybridPreset:
    """A hybrid (InternVL vision + Nemotron-H LLM) model."""

    family: ClassVar[str] = "hybrid"

    name: str
    vision: InternViTConfig
    text: NemotronHTextConfig
    video: FrameDefaults = field(default_factory=FrameDefaults)
    token_ids: dict[str, int] = field(default_factory=dict)
    downsample_ratio: float = 0.5
    projector_hidden_act: str = "gelu"
    tie_word_embeddings: bool = False
    offline_tokenizer: bool = False  # True: `build_tiny_tokenizer("hybrid")` matches this preset's ids

    def __post_init__(self) -> None:
        v, t = self.vision, self.text
        bad = sorted(set(t.layers) - set(LAYER_TYPES))
        if bad or not t.layers:
            raise ValueError(
                f"preset {self.name}: text.layers {t.layers!r} must be a non-empty string of "
                f"M (Mamba-2), - (MLP) and * (attention); found {bad}"
            )
        if "*" not in t.layers:
            raise ValueError(
                f"preset {self.name}: text.layers {t.layers!r} needs at least one attention layer (*): "
                "transformers' Nemotron-H cache measures the sequence on its attention layers"
            )
        if v.image_size % v.patch_size:
            raise ValueError(
                f"preset {self.name}: image_size {v.image_size} is not a multiple of patch {v.patch_size}"
            )
        side = v.image_size // v.patch_size
        shuffle = round(1 / self.downsample_ratio)
        if shuffle * self.downsample_ratio != 1 or side % shuffle:
            raise ValueError(
                f"preset {self.name}: downsample_ratio {self.downsample_ratio} must be 1/n with n dividing "
                f"the {side}x{side} patch grid"
            )
        if v.hidden_size % v.num_heads:
            raise ValueError(
                f"preset {self.name}: vision hidden {v.hidden_size} is not divisible by {v.num_heads} heads"
            )
        if t.num_heads % t.num_kv_heads or t.mamba_num_heads % t.n_groups:
            raise ValueError(
                f"preset {self.name}: heads {t.num_heads} / kv heads {t.num_kv_heads} or mamba heads "
                f"{t.mamba_num_heads} / groups {t.n_groups} do not divide"
            )
        missing = set(HYBRID_TOKEN_KEYS) - set(self.token_ids)
        if missing:
            raise ValueError(f"preset {self.name}: token_ids lacks {sorted(missing)}")

    @property
    def tokens_per_frame(self) -> int:
        """LLM tokens one frame becomes: patches shrunk by the pixel shuffle (256 at 448², patch 14, ratio 0.5)."""
        return round(self.vision.patches_per_frame * self.downsample_ratio**2)

    def to_hf_config(self) -> InternVLConfig:
        v, t = self.vision, self.text
        vision_config = {
            "hidden_size": v.hidden_size,
            "num_hidden_layers": v.num_layers,
            "num_attention_heads": v.num_heads,
            "intermediate_size": v.intermediate_size,
            "image_size": [v.image_size, v.image_size],
            "patch_size": [v.patch_size, v.patch_size],
            "attention_bias": v.attention_bias,
            "use_qk_norm": v.use_qk_norm,
            "norm_type": v.norm_type,
            "layer_norm_eps": v.layer_norm_eps,
            "layer_scale_init_value": v.layer_scale_init_value,
            "hidden_act": v.hidden_act,
        }
        text_config = {
            "model_type": "nemotron_h",
            "vocab_size": t.vocab_size,
            "hidden_size": t.hidden_size,
            "layers_block_type": t.layer_types,
            "num_attention_heads": t.num_heads,
            "num_key_value_heads": t.num_kv_heads,
            "head_dim": t.head_dim,
            "intermediate_size": t.intermediate_size,
            "mlp_hidden_act": t.mlp_hidden_act,
            "mamba_num_heads": t.mamba_num_heads,
            "mamba_head_dim": t.mamba_head_dim,
            "ssm_state_size": t.ssm_state_size,
            "n_groups": t.n_groups,
            "conv_kernel": t.conv_kernel,
            "chunk_size": t.chunk_size,
            "max_position_embeddings": t.max_position_embeddings,
            "layer_norm_epsilon": t.layer_norm_epsilon,
            "tie_word_embeddings": self.tie_word_embeddings,
            "bos_token_id": self.token_ids["bos_token_id"],
            "eos_token_id": self.token_ids["eos_token_id"],
            "pad_token_id": self.token_ids["pad_token_id"],
        }
        return InternVLConfig(
            vision_config=vision_config,
            text_config=text_config,
            image_token_id=self.token_ids["image_token_id"],
            image_seq_length=self.tokens_per_frame,
            downsample_ratio=self.downsample_ratio,
            projector_hidden_act=self.projector_hidden_act,
            vision_feature_layer=-1,
            vision_feature_select_strategy="default",  # drop the CLS token before the pixel shuffle
            tie_word_embeddings=self.tie_word_embeddings,
        )

    def as_dict(self) -> dict:
        return asdict(self)

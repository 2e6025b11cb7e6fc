"""Clip + prompt → model inputs for the hybrid (InternVL + Nemotron-H) family, without torchvision.

Frames: each is resized to the encoder's square (448² for the 56B; InternVL feeds a video frame
as one tile, aspect ratio not kept), rescaled and ImageNet-normalized → `pixel_values`
(T, 3, S, S). The vision tower, pixel shuffle and projector inside the model turn each frame into
`tokens_per_frame` (256) embeddings, scattered over that many `<IMG_CONTEXT>` tokens.

Text: the chat template puts a `<video>` placeholder before the user's text; the placeholder is
expanded the way transformers' `InternVLProcessor.replace_video_token` lays out video frames —
`Frame1: <img><IMG_CONTEXT>×256</img>\\nFrame2: ...` — so frame order is legible to the model.
The sampled frames' stamps are kept on the inputs, so "Frame 5" maps back to a time.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from cosmos_ros.core.types import Clip, Prompt
from cosmos_ros.model.hybrid_config import IMAGENET_MEAN, IMAGENET_STD, HybridPreset
from cosmos_ros.model.processor import (
    clip_fps,
    left_pad,
    normalize_frames,
    read_processor_configs,
    render_chat,
    resize_frames,
)
from cosmos_ros.model.tokenizer import INTERNVL_SPECIAL_TOKENS


@dataclass(frozen=True)
class FrameProcessor:
    """Frames → `pixel_values` for an InternViT encoder: square resize, rescale, normalize."""

    image_size: int = 448
    default_fps: float = 4.0
    image_mean: tuple[float, float, float] = IMAGENET_MEAN
    image_std: tuple[float, float, float] = IMAGENET_STD

    @classmethod
    def from_preset(cls, preset: HybridPreset) -> FrameProcessor:
        return cls(
            image_size=preset.vision.image_size,
            default_fps=preset.video.fps,
            image_mean=tuple(preset.video.image_mean),
            image_std=tuple(preset.video.image_std),
        )

    @classmethod
    def from_pretrained(cls, path: str | Path, base: FrameProcessor | None = None) -> FrameProcessor:
        """A checkpoint's processor settings (InternVL's HF keys) over `base`: see
        `processor.read_processor_configs`."""
        base = base or cls()
        cfg, files = read_processor_configs(path)
        if not cfg:
            return base
        size = cfg.get("size") or {}
        if size.get("height", base.image_size) != size.get("width", base.image_size):
            raise ValueError(
                f"{Path(path)} ({', '.join(files)}): frames must be square for InternViT, got size {size}"
            )
        fields = {
            "image_size": size.get("height"),
            "default_fps": cfg.get("fps"),
            "image_mean": tuple(cfg["image_mean"]) if "image_mean" in cfg else None,
            "image_std": tuple(cfg["image_std"]) if "image_std" in cfg else None,
        }
        return replace(base, **{k: v for k, v in fields.items() if v is not None})

    def to_hf_dict(self) -> dict:
        """The HF `video_preprocessor_config.json` keys of InternVL's video processor."""
        return {
            "video_processor_type": "InternVLVideoProcessor",
            "size": {"height": self.image_size, "width": self.image_size},
            "resample": 3,  # bicubic
            "fps": self.default_fps,
            "image_mean": list(self.image_mean),
            "image_std": list(self.image_std),
            "do_resize": True,
            "do_rescale": True,
            "rescale_factor": 1 / 255,
            "do_normalize": True,
        }

    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        """(T, H, W, 3) uint8 RGB → (T, 3, S, S) float32."""
        video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)  # (T, 3, H, W) uint8
        video = resize_frames(video, self.image_size, self.image_size)
        return normalize_frames(video, self.image_mean, self.image_std)


@dataclass
class HybridInputs:
    """One clip + prompt, ready for `InternVLForConditionalGeneration` (batch of one)."""

    input_ids: torch.Tensor  # (1, L) long
    attention_mask: torch.Tensor  # (1, L) long
    pixel_values: torch.Tensor  # (T, 3, S, S) float32, one row per frame
    image_token_id: int
    frame_stamps: np.ndarray  # (T,) float64, the clip's stamps
    fps: float
    text: str  # the rendered prompt, one placeholder per vision token

    @property
    def num_prompt_tokens(self) -> int:
        return int(self.input_ids.shape[1])

    @property
    def num_video_tokens(self) -> int:
        return int((self.input_ids == self.image_token_id).sum())

    @property
    def frame_times(self) -> np.ndarray:
        """(T,) seconds of each frame since the clip's first; frame N of the prompt is index N - 1."""
        return self.frame_stamps - self.frame_stamps[0]

    def model_kwargs(self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> dict:
        """Keyword arguments for the HF model's forward / generate."""
        return {
            "input_ids": self.input_ids.to(device),
            "attention_mask": self.attention_mask.to(device),
            "pixel_values": self.pixel_values.to(device, dtype),
        }


def collate_hybrid_inputs(items: list[HybridInputs], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Several clips' inputs → one left-padded batch; frames concatenated in row order, which is
    the order the model fills `<IMG_CONTEXT>` tokens in."""
    return {
        "input_ids": left_pad([x.input_ids for x in items], pad_token_id),
        "attention_mask": left_pad([x.attention_mask for x in items], 0),
        "pixel_values": torch.cat([x.pixel_values for x in items]),
    }


class HybridReasonProcessor:
    """Tokenizer + frame processor: `(Clip, Prompt) → HybridInputs`, video before text."""

    answer_format = "tags"  # Cosmos-Reason1: <answer>…</answer> (core.answers)

    def __init__(self, tokenizer, frames: FrameProcessor, tokens_per_frame: int, image_token_id: int):
        self.tokenizer = tokenizer
        self.frames = frames
        self.tokens_per_frame = tokens_per_frame
        self.image_token_id = image_token_id
        # InternVL tokenizers name their frame tokens; ours carries the same names.
        names = {
            attr: getattr(tokenizer, attr, None) or token for attr, token in INTERNVL_SPECIAL_TOKENS.items()
        }
        self.start_image_token = names["start_image_token"]
        self.end_image_token = names["end_image_token"]
        self.context_token = names["context_image_token"]
        self.video_token = names["video_token"]
        for token in names.values():
            ids = tokenizer.encode(token, add_special_tokens=False)
            if len(ids) != 1:
                raise ValueError(f"tokenizer has no single token for {token!r} (encodes as {ids})")
        if tokenizer.convert_tokens_to_ids(self.context_token) != image_token_id:
            raise ValueError(
                f"tokenizer maps {self.context_token} to {tokenizer.convert_tokens_to_ids(self.context_token)}, "
                f"but the model expects image_token_id {image_token_id}"
            )


    @property
    def media(self) -> FrameProcessor:
        """The family's media processor (every family's processor names it `media`)."""
        return self.frames
    def render(self, prompt: Prompt, assistant_prefix: str = "") -> str:
        """The chat text with one `<video>` placeholder, assistant turn opened (and begun with `assistant_prefix`)."""
        return render_chat(self.tokenizer, prompt) + assistant_prefix

    def video_text(self, num_frames: int) -> str:
        """What `<video>` becomes: one `FrameN: <img><IMG_CONTEXT>…</img>` line per frame."""
        frame = f"{self.start_image_token}{self.context_token * self.tokens_per_frame}{self.end_image_token}"
        return "\n".join(f"Frame{i + 1}: {frame}" for i in range(num_frames))

    def __call__(self, clip: Clip, prompt: Prompt, assistant_prefix: str = "") -> HybridInputs:
        text = self.render(prompt, assistant_prefix)
        if text.count(self.video_token) != 1:
            raise ValueError(
                f"prompt must render exactly one {self.video_token}; found {text.count(self.video_token)}"
            )
        text = text.replace(self.video_token, self.video_text(clip.num_frames))
        input_ids = torch.tensor([self.tokenizer.encode(text, add_special_tokens=False)], dtype=torch.long)
        expected = clip.num_frames * self.tokens_per_frame
        found = int((input_ids == self.image_token_id).sum())
        if found != expected:
            raise ValueError(f"expected {expected} {self.context_token} tokens after tokenizing, got {found}")
        return HybridInputs(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            pixel_values=self.frames(clip.frames),
            image_token_id=self.image_token_id,
            frame_stamps=np.asarray(clip.stamps, dtype=np.float64),
            fps=clip_fps(clip, self.frames.default_fps),
            text=text,
        )


def preset_processor(preset: HybridPreset, tokenizer) -> HybridReasonProcessor:
    """The hybrid family's processor of a preset, around `tokenizer`."""
    return HybridReasonProcessor(
        tokenizer,
        FrameProcessor.from_preset(preset),
        preset.tokens_per_frame,
        preset.token_ids["image_token_id"],
    )


def checkpoint_processor(path: Path, config, tokenizer) -> HybridReasonProcessor:
    """The hybrid family's processor of a checkpoint: tile size and tokens per frame from
    config.json (checked against each other), the rest from its processor configs over the 56B's."""
    from cosmos_ros.model.checkpoint import CheckpointError
    from cosmos_ros.model.config import get_preset

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

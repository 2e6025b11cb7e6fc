"""Clip + prompt → model inputs for Qwen2.5-VL-architecture models, without torchvision.

transformers' `Qwen2VLVideoProcessor` needs torchvision, which does not import beside the CPU
torch wheel, so the video half is ours: resize within a pixel budget, pad time, CLIP-normalize
and patchify in exactly the row/column order transformers uses. The text half is the tokenizer's
chat template with the video placeholder expanded to one `<|video_pad|>` per merged patch.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from cosmos_ros.core.types import Clip, Prompt
from cosmos_ros.model.config import ModelPreset

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

VIDEO_PAD = "<|video_pad|>"
TEXT_TOKEN_TYPE, IMAGE_TOKEN_TYPE, VIDEO_TOKEN_TYPE = 0, 1, 2


def smart_resize(
    height: int, width: int, factor: int = 28, min_pixels: int = 56 * 56, max_pixels: int = 14 * 14 * 4 * 1280
) -> tuple[int, int]:
    """Qwen2-VL's resize rule: both sides multiples of `factor`, area within [min_pixels, max_pixels],
    aspect ratio kept as closely as possible."""
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"aspect ratio must be below 200, got {height}x{width}")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def resize_frames(video: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(T, 3, H, W) uint8 → (T, 3, height, width) float32 on the 0..255 scale.

    Bicubic with antialias, rounded back to uint8 levels: what torchvision does to uint8 frames.
    """
    video = video.float()
    if (height, width) != tuple(video.shape[2:]):
        video = F.interpolate(
            video, size=(height, width), mode="bicubic", antialias=True, align_corners=False
        )
        video = video.round().clamp(0, 255)
    return video


def normalize_frames(video: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """(T, 3, H, W) float on 0..255 → rescaled to 0..1, then per-channel (x - mean) / std."""
    return (video / 255.0 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def left_pad(rows: list[torch.Tensor], value: int) -> torch.Tensor:
    """(1, L_i) rows → (B, max L_i), each row right-aligned: generation appends on the right."""
    length = max(r.shape[1] for r in rows)
    out = torch.full((len(rows), length), value, dtype=rows[0].dtype)
    for i, r in enumerate(rows):
        out[i, length - r.shape[1] :] = r[0]
    return out


def patchify_video(
    video: torch.Tensor, patch_size: int, temporal_patch_size: int, merge_size: int
) -> torch.Tensor:
    """(T, C, H, W) → (grid_t * grid_h * grid_w, C * temporal_patch_size * patch_size²).

    T must be a multiple of temporal_patch_size and H, W multiples of patch_size * merge_size.
    Rows run over (t, h-block, w-block, h-in-merge, w-in-merge) so each run of merge² rows is one
    merged token; columns over (C, t-in-patch, y, x) — transformers' Qwen2VLVideoProcessor order.
    """
    t, c, h, w = video.shape
    grid_t, grid_h, grid_w = t // temporal_patch_size, h // patch_size, w // patch_size
    patches = video.reshape(
        grid_t,
        temporal_patch_size,
        c,
        grid_h // merge_size,
        merge_size,
        patch_size,
        grid_w // merge_size,
        merge_size,
        patch_size,
    )
    # (grid_t, h-block, w-block, h-in-merge, w-in-merge, C, t-in-patch, y, x)
    patches = patches.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return patches.reshape(grid_t * grid_h * grid_w, c * temporal_patch_size * patch_size * patch_size)


PROCESSOR_CONFIG_FILES = ("preprocessor_config.json", "video_preprocessor_config.json")


def read_processor_configs(path: str | Path) -> tuple[dict, list[str]]:
    """(settings, the files they came from) of a checkpoint's processor: `preprocessor_config.json`
    (what Qwen2.5-VL and InternVL releases and fine-tunes save: pixel limits, patching,
    normalization), then `video_preprocessor_config.json` over it, key by key (as transformers'
    video processors read them: the video file where there is one, else the image processor's).
    Empty when the checkpoint has neither."""
    merged: dict = {}
    found = []
    for name in PROCESSOR_CONFIG_FILES:
        file = Path(path) / name
        if not file.is_file():
            continue
        try:
            cfg = json.loads(file.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{file} is not valid JSON: {exc}") from None
        if not isinstance(cfg, dict):
            raise ValueError(f"{file} is not a processor config (a JSON object)")  # noqa: TRY004 - a bad file, not a bad argument
        size = {**(merged.get("size") or {}), **(cfg.get("size") or {})}
        merged.update(cfg)
        if size:
            merged["size"] = size
        found.append(name)
    return merged, found


@dataclass(frozen=True)
class VideoProcessor:
    """Frames → `pixel_values_videos` + `video_grid_thw` for a Qwen2.5-VL vision tower."""

    patch_size: int = 14
    temporal_patch_size: int = 2
    merge_size: int = 2
    min_pixels: int = 56 * 56
    max_pixels: int = 112 * 112
    default_fps: float = 4.0
    total_pixels: int | None = None  # the clip's budget (see target_size); None: none
    image_mean: tuple[float, float, float] = OPENAI_CLIP_MEAN
    image_std: tuple[float, float, float] = OPENAI_CLIP_STD

    HF_TYPE: ClassVar[str] = "Qwen2VLVideoProcessor"  # the HF video processor whose keys these are
    EXTRA_KEYS: ClassVar[tuple[str, ...]] = ()  # a subclass's own fields, read and written under their names

    @classmethod
    def from_preset(cls, preset) -> VideoProcessor:
        """From a dense (or qwen3_vl) preset's vision geometry and video defaults."""
        v = preset.vision
        return cls(
            patch_size=v.patch_size,
            temporal_patch_size=v.temporal_patch_size,
            merge_size=v.spatial_merge_size,
            min_pixels=preset.video.min_pixels,
            max_pixels=preset.video.max_pixels,
            default_fps=preset.video.fps,
            total_pixels=getattr(preset.video, "total_pixels", None),
        )

    @classmethod
    def from_pretrained(cls, path: str | Path, base: VideoProcessor | None = None) -> VideoProcessor:
        """A checkpoint's processor settings (HF keys) over `base`: see `read_processor_configs`."""
        base = base or cls()
        cfg, _ = read_processor_configs(path)
        if not cfg:
            return base
        size = cfg.get("size") or {}
        fields = {
            "patch_size": cfg.get("patch_size"),
            "temporal_patch_size": cfg.get("temporal_patch_size"),
            "merge_size": cfg.get("merge_size"),
            "min_pixels": cfg.get("min_pixels", size.get("shortest_edge")),
            "max_pixels": cfg.get("max_pixels", size.get("longest_edge")),
            "default_fps": cfg.get("fps"),
            "total_pixels": cfg.get("total_pixels"),
            "image_mean": tuple(cfg["image_mean"]) if "image_mean" in cfg else None,
            "image_std": tuple(cfg["image_std"]) if "image_std" in cfg else None,
        } | {key: cfg.get(key) for key in cls.EXTRA_KEYS}
        return replace(base, **{k: v for k, v in fields.items() if v is not None})

    def to_hf_dict(self) -> dict:
        """The HF `video_preprocessor_config.json` keys this processor reads back."""
        return {
            "video_processor_type": self.HF_TYPE,
            "patch_size": self.patch_size,
            "temporal_patch_size": self.temporal_patch_size,
            "merge_size": self.merge_size,
            "size": {"shortest_edge": self.min_pixels, "longest_edge": self.max_pixels},
            "fps": self.default_fps,
            **({"total_pixels": self.total_pixels} if self.total_pixels else {}),
            "image_mean": list(self.image_mean),
            "image_std": list(self.image_std),
            "do_rescale": True,
            "rescale_factor": 1 / 255,
            "do_normalize": True,
        } | {key: getattr(self, key) for key in self.EXTRA_KEYS}

    @property
    def factor(self) -> int:
        return self.patch_size * self.merge_size

    def target_size(self, height: int, width: int, frames: int = 1) -> tuple[int, int]:
        """The frames' size: Qwen2-VL's resize rule within min_pixels..max_pixels per frame, the
        most pixels per frame lowered for a long clip so the clip stays within total_pixels, as
        qwen-vl-utils sizes video: max(min(max_pixels, total_pixels / frames x temporal patch),
        1.05 x min_pixels)."""
        max_pixels = self.max_pixels
        if self.total_pixels:
            budget = self.total_pixels / max(frames, 1) * self.temporal_patch_size
            max_pixels = min(max_pixels, max(budget, int(self.min_pixels * 1.05)))
        return smart_resize(height, width, self.factor, self.min_pixels, int(max_pixels))

    def __call__(self, frames: np.ndarray) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """(T, H, W, 3) uint8 RGB → (pixel_values (N, C·tp·p·p) float32, (grid_t, grid_h, grid_w))."""
        video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)  # (T, 3, H, W) uint8
        height, width = self.target_size(video.shape[2], video.shape[3], frames=video.shape[0])
        if pad := -video.shape[0] % self.temporal_patch_size:
            video = torch.cat([video, video[-1:].expand(pad, -1, -1, -1)])
        video = normalize_frames(resize_frames(video, height, width), self.image_mean, self.image_std)
        pixel_values = patchify_video(video, self.patch_size, self.temporal_patch_size, self.merge_size)
        grid = (
            video.shape[0] // self.temporal_patch_size,
            height // self.patch_size,
            width // self.patch_size,
        )
        return pixel_values, grid


@dataclass
class VideoInputs:
    """One clip + prompt, ready for `Qwen2_5_VLForConditionalGeneration` (batch of one)."""

    input_ids: torch.Tensor  # (1, L) long
    attention_mask: torch.Tensor  # (1, L) long
    mm_token_type_ids: torch.Tensor  # (1, L) int: 0 text, 2 video
    pixel_values_videos: torch.Tensor  # (grid_t·grid_h·grid_w, C·tp·p·p) float32
    video_grid_thw: torch.Tensor  # (1, 3) long
    # (1,) float: seconds spanned by one temporal patch (Qwen2.5-VL's absolute-time positions);
    # None for Qwen3-VL, whose prompt carries the time as text
    second_per_grid_ts: torch.Tensor | None
    frame_stamps: np.ndarray  # (T,) float64, the clip's stamps (before time padding)
    fps: float
    text: str  # the rendered prompt, one placeholder per video token

    @property
    def num_prompt_tokens(self) -> int:
        return int(self.input_ids.shape[1])

    @property
    def frame_times(self) -> np.ndarray:
        """(T,) seconds of each frame since the clip's first: what an answer's "when" refers to."""
        return self.frame_stamps - self.frame_stamps[0]

    @property
    def num_video_tokens(self) -> int:
        return int((self.mm_token_type_ids == VIDEO_TOKEN_TYPE).sum())

    def model_kwargs(self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> dict:
        """Keyword arguments for the HF model's forward / generate."""
        kwargs = {
            "input_ids": self.input_ids.to(device),
            "attention_mask": self.attention_mask.to(device),
            "mm_token_type_ids": self.mm_token_type_ids.to(device),
            "pixel_values_videos": self.pixel_values_videos.to(device, dtype),
            "video_grid_thw": self.video_grid_thw.to(device),
        }
        if self.second_per_grid_ts is not None:
            kwargs["second_per_grid_ts"] = self.second_per_grid_ts.to(device)
        return kwargs


def collate_video_inputs(items: list[VideoInputs], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Several clips' inputs → one left-padded batch for `Qwen2_5_VLForConditionalGeneration` (or
    `Qwen3VLForConditionalGeneration`, whose inputs have no temporal spacing).

    Token rows are right-aligned (padding masked out, token type 0); the videos' patches, grids and
    temporal spacings are concatenated in row order, which is how the model assigns them.
    """
    batch = {
        "input_ids": left_pad([x.input_ids for x in items], pad_token_id),
        "attention_mask": left_pad([x.attention_mask for x in items], 0),
        "mm_token_type_ids": left_pad([x.mm_token_type_ids for x in items], TEXT_TOKEN_TYPE),
        "pixel_values_videos": torch.cat([x.pixel_values_videos for x in items]),
        "video_grid_thw": torch.cat([x.video_grid_thw for x in items]),
    }
    spacing = [x.second_per_grid_ts for x in items]
    if any(s is not None for s in spacing):
        if any(s is None for s in spacing):
            raise ValueError("cannot batch inputs with and without second_per_grid_ts (two model families)")
        batch["second_per_grid_ts"] = torch.cat(spacing)
    return batch


def clip_fps(clip: Clip, default: float) -> float:
    """The clip's frame rate as the processors tell it to the model (`Clip.rate`)."""
    return clip.rate(default)


def render_chat(tokenizer, prompt: Prompt) -> str:
    """System turn, user turn with the video before the text (Cosmos convention), assistant turn opened."""
    messages = [
        {"role": "system", "content": prompt.system},
        {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": prompt.text}]},
    ]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


class ReasonProcessor:
    """Tokenizer + video processor: `(Clip, Prompt) → VideoInputs`, media before text (Cosmos convention).

    A family's variant overrides the hooks: `render` (how the prompt is worded), `video_text`
    (what the one video placeholder becomes) and `time_spacing` (the temporal spacing input)."""

    answer_format = "tags"  # Cosmos-Reason1: <answer>…</answer> (core.answers)
    single_tokens: tuple[str, ...] = (VIDEO_PAD,)  # must each encode as one token
    media_class: ClassVar[type] = VideoProcessor  # the family's video processor
    default_preset: ClassVar[str] = "cosmos-reason1-7b"  # a checkpoint's defaults, under its own configs

    @classmethod
    def for_preset(cls, preset, tokenizer):
        """The family's processor of a preset, around `tokenizer`."""
        return cls(tokenizer, cls.media_class.from_preset(preset), preset.token_ids["video_token_id"])

    @classmethod
    def for_checkpoint(cls, path: Path, config, tokenizer):
        """The family's processor of a checkpoint: its patch geometry from config.json, its pixel
        budget and fps from its processor configs, else the `default_preset` card's."""
        from cosmos_ros.model.config import get_preset

        vision = config.vision_config
        base = replace(
            cls.media_class.from_preset(get_preset(cls.default_preset)),
            patch_size=vision.patch_size,
            temporal_patch_size=vision.temporal_patch_size,
            merge_size=vision.spatial_merge_size,
        )
        return cls(tokenizer, cls.media_class.from_pretrained(path, base=base), config.video_token_id)

    def __init__(self, tokenizer, video_processor: VideoProcessor, video_token_id: int):
        self.tokenizer = tokenizer
        self.video = video_processor
        self.video_token_id = video_token_id
        for token in self.single_tokens:
            if len(tokenizer.encode(token, add_special_tokens=False)) != 1:
                raise ValueError(f"tokenizer has no single token for {token!r}")
        if tokenizer.convert_tokens_to_ids(VIDEO_PAD) != video_token_id:
            raise ValueError(
                f"tokenizer maps {VIDEO_PAD} to {tokenizer.convert_tokens_to_ids(VIDEO_PAD)}, "
                f"but the model expects video_token_id {video_token_id}"
            )

    @property
    def media(self) -> VideoProcessor:
        """The family's media processor (every family's processor names it `media`)."""
        return self.video

    def render(self, prompt: Prompt, assistant_prefix: str = "") -> str:
        """The chat text with one video placeholder, assistant turn opened (and begun with
        `assistant_prefix`, e.g. "<answer>\\n", when the caller scores what follows it)."""
        return render_chat(self.tokenizer, prompt) + assistant_prefix

    def video_text(self, clip: Clip, grid: tuple[int, int, int]) -> str:
        """What the video placeholder becomes: one `<|video_pad|>` per merged patch."""
        return VIDEO_PAD * (grid[0] * grid[1] * grid[2] // self.video.merge_size**2)

    def time_spacing(self, fps: float) -> torch.Tensor | None:
        """`second_per_grid_ts`: the seconds one temporal patch spans (Qwen2.5-VL's positions)."""
        return torch.tensor([self.video.temporal_patch_size / fps], dtype=torch.float32)

    def __call__(self, clip: Clip, prompt: Prompt, assistant_prefix: str = "") -> VideoInputs:
        pixel_values, grid = self.video(clip.frames)
        num_video_tokens = grid[0] * grid[1] * grid[2] // self.video.merge_size**2
        text = self.render(prompt, assistant_prefix)
        if text.count(VIDEO_PAD) != 1:
            raise ValueError(f"prompt must render exactly one {VIDEO_PAD}; found {text.count(VIDEO_PAD)}")
        text = text.replace(VIDEO_PAD, self.video_text(clip, grid))
        input_ids = torch.tensor([self.tokenizer.encode(text, add_special_tokens=False)], dtype=torch.long)
        is_video = input_ids == self.video_token_id
        if int(is_video.sum()) != num_video_tokens:
            raise ValueError(
                f"expected {num_video_tokens} video tokens after tokenizing, got {int(is_video.sum())}"
            )
        fps = clip_fps(clip, self.video.default_fps)
        return VideoInputs(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            mm_token_type_ids=is_video.int() * VIDEO_TOKEN_TYPE,
            pixel_values_videos=pixel_values,
            video_grid_thw=torch.tensor([list(grid)], dtype=torch.long),
            second_per_grid_ts=self.time_spacing(fps),
            frame_stamps=np.asarray(clip.stamps, dtype=np.float64),
            fps=fps,
            text=text,
        )


def preset_processor(preset: ModelPreset, tokenizer) -> ReasonProcessor:
    """The dense family's processor of a preset, around `tokenizer`."""
    return ReasonProcessor.for_preset(preset, tokenizer)


def checkpoint_processor(path: Path, config, tokenizer) -> ReasonProcessor:
    """The dense family's processor of a checkpoint (the 7B card's defaults under its configs)."""
    return ReasonProcessor.for_checkpoint(path, config, tokenizer)

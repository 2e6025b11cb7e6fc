"""Clip + prompt → model inputs for the qwen3_vl (Cosmos-Reason2 / Qwen3-VL) family, without
torchvision.

Pixels: the clip is resized by Qwen3-VL's rule — both sides multiples of patch x merge (32), the
*whole clip's* frames x height x width within the pixel budget — optionally with the per-frame
cap qwen-vl-utils applies (`cap_pixels_per_frame`), then rescaled, normalized with mean = std =
0.5 and patchified in the row/column order transformers' `Qwen3VLVideoProcessor` uses (the same
layout as Qwen2.5-VL, so `processor.patchify_video` serves both).

Text: the chat template renders `<|vision_start|><|video_pad|><|vision_end|>` (or a bare
`<|video_pad|>`); as transformers' `Qwen3VLProcessor` does, that becomes one
`<t seconds><|vision_start|><|video_pad|>×n<|vision_end|>` run per temporal patch, where t is the
mean time of the patch's frames since the clip's first, to one decimal. Time is in the text;
the 3-D positions give every frame the same temporal index (the model's `get_rope_index`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from cosmos_ros.core.prompts import for_answer_format
from cosmos_ros.core.types import Clip, Prompt
from cosmos_ros.model.processor import VIDEO_PAD, ReasonProcessor, VideoProcessor, render_chat
from cosmos_ros.model.qwen3vl_config import Qwen3VLPreset

IMAGENET_STANDARD_MEAN = (0.5, 0.5, 0.5)
IMAGENET_STANDARD_STD = (0.5, 0.5, 0.5)
VISION_START, VISION_END = "<|vision_start|>", "<|vision_end|>"


def smart_resize_clip(
    num_frames: int,
    height: int,
    width: int,
    temporal_factor: int = 2,
    factor: int = 32,
    min_pixels: int = 128 * 32 * 32,
    max_pixels: int = 768 * 32 * 32,
) -> tuple[int, int]:
    """Qwen3-VL's resize rule: both sides multiples of `factor`, num_frames x height x width
    (frames rounded to the temporal factor) within [min_pixels, max_pixels], aspect ratio kept
    as closely as possible. Frames smaller than `factor` are first scaled up to it."""
    if num_frames < temporal_factor:
        raise ValueError(f"a clip needs at least {temporal_factor} frames to be sized, got {num_frames}")
    if height < factor or width < factor:
        scale = max(factor / height, factor / width)
        height, width = int(height * scale), int(width * scale)
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"aspect ratio must be below 200, got {height}x{width}")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    t_bar = round(num_frames / temporal_factor) * temporal_factor
    if t_bar * h_bar * w_bar > max_pixels:
        beta = math.sqrt((num_frames * height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif t_bar * h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (num_frames * height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def patch_timestamps(times: np.ndarray, temporal_patch_size: int) -> list[float]:
    """Seconds of each temporal patch: the mean of its first and last frame's time, the last
    frame repeated to fill the final patch (transformers' `Qwen3VLProcessor._calculate_timestamps`)."""
    times = list(np.asarray(times, dtype=np.float64))
    if pad := -len(times) % temporal_patch_size:
        times += [times[-1]] * pad
    return [(times[i] + times[i + temporal_patch_size - 1]) / 2 for i in range(0, len(times), temporal_patch_size)]


@dataclass(frozen=True)
class Qwen3VideoProcessor(VideoProcessor):
    """Frames → `pixel_values_videos` + `video_grid_thw` for a Qwen3-VL vision tower: the dense
    processor's pipeline (resize, pad time, normalize, patchify) with Qwen3-VL's geometry and
    whole-clip sizing rule. `total_pixels` is unused: min_pixels / max_pixels already bound the
    clip."""

    patch_size: int = 16
    min_pixels: int = 128 * 32 * 32  # the whole clip's (frames x height x width)
    max_pixels: int = 768 * 32 * 32
    # qwen-vl-utils' cap: at most max_video_tokens merged tokens per frame, and the budget's even
    # share per frame (never below 1.05 x min_pixels), so a short clip is not sampled huge
    cap_pixels_per_frame: bool = True
    max_video_tokens: int = 768
    image_mean: tuple[float, float, float] = IMAGENET_STANDARD_MEAN
    image_std: tuple[float, float, float] = IMAGENET_STANDARD_STD

    HF_TYPE: ClassVar[str] = "Qwen3VLVideoProcessor"
    EXTRA_KEYS: ClassVar[tuple[str, ...]] = ("cap_pixels_per_frame", "max_video_tokens")

    def to_hf_dict(self) -> dict:
        return {**super().to_hf_dict(), "do_sample_frames": False}  # the node's buffer samples the clip

    def target_size(self, height: int, width: int, frames: int = 1) -> tuple[int, int]:
        """The frames' size for a clip of `frames` frames (a one-frame clip is sized as the
        temporal patch it is padded to)."""
        frames = max(frames, self.temporal_patch_size)
        max_pixels = self.max_pixels
        if self.cap_pixels_per_frame:
            frame_cap = self.max_video_tokens * self.factor**2
            per_frame = max(min(frame_cap, self.max_pixels // frames), int(self.min_pixels * 1.05))
            max_pixels = per_frame * frames
        return smart_resize_clip(
            frames, height, width, self.temporal_patch_size, self.factor, self.min_pixels, max_pixels
        )


class Qwen3ReasonProcessor(ReasonProcessor):
    """Tokenizer + video processor: `(Clip, Prompt) → VideoInputs` for
    `Qwen3VLForConditionalGeneration`, media before text (Cosmos convention). Prompts are
    worded as Cosmos-Reason2 was trained (its reasoning add-on; `core.prompts.for_answer_format`)
    and its answer follows </think>; the video is one timestamped vision span per temporal patch."""

    answer_format = "after_think"
    single_tokens = (VISION_START, VISION_END, VIDEO_PAD)
    media_class = Qwen3VideoProcessor
    default_preset = "cosmos-reason2-2b"

    def render(self, prompt: Prompt, assistant_prefix: str = "") -> str:
        """The chat text with one bare video placeholder (the template's vision_start/end wrapper
        collapsed, as each frame gets its own), assistant turn opened."""
        text = render_chat(self.tokenizer, for_answer_format(prompt, self.answer_format)) + assistant_prefix
        return text.replace(f"{VISION_START}{VIDEO_PAD}{VISION_END}", VIDEO_PAD)

    def video_text(self, clip: Clip, grid: tuple[int, int, int]) -> str:
        """`<t seconds><|vision_start|><|video_pad|>…<|vision_end|>` per temporal patch, t the mean
        time of its frames since the clip's first."""
        stamps = np.asarray(clip.stamps, dtype=np.float64)
        span = f"{VISION_START}{VIDEO_PAD * (grid[1] * grid[2] // self.video.merge_size**2)}{VISION_END}"
        times = patch_timestamps(stamps - stamps[0], self.video.temporal_patch_size)
        return "".join(f"<{t:.1f} seconds>{span}" for t in times)

    def time_spacing(self, fps: float) -> None:
        return None  # Qwen3-VL reads time from the timestamps in the text


def preset_processor(preset: Qwen3VLPreset, tokenizer) -> Qwen3ReasonProcessor:
    """The qwen3_vl family's processor of a preset, around `tokenizer`."""
    return Qwen3ReasonProcessor.for_preset(preset, tokenizer)


def checkpoint_processor(path: Path, config, tokenizer) -> Qwen3ReasonProcessor:
    """The qwen3_vl family's processor of a checkpoint (Cosmos-Reason2-2B's defaults under its configs)."""
    return Qwen3ReasonProcessor.for_checkpoint(path, config, tokenizer)

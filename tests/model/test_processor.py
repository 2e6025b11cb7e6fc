"""Our torchvision-free processor: Qwen2-VL resize rule, patch order, time padding, prompt tokens."""

import json
import math

import numpy as np
import pytest
import torch

from cosmos_ros.core.types import Clip, Prompt
from cosmos_ros.model.config import get_preset
from cosmos_ros.model.processor import (
    OPENAI_CLIP_MEAN,
    OPENAI_CLIP_STD,
    ReasonProcessor,
    VideoProcessor,
    collate_video_inputs,
    patchify_video,
    smart_resize,
)
from cosmos_ros.model.tokenizer import build_tiny_tokenizer

P, TP, M = 14, 2, 2  # patch, temporal patch, spatial merge


def reference_video_patchify(videos):
    """transformers 5.24 Qwen2VLVideoProcessor.patchify, batched (B, T, C, H, W), as written there."""
    b, t, c, h, w = videos.shape
    gt, gh, gw = t // TP, h // P, w // P
    patches = videos.view(b, gt, TP, c, gh // M, M, P, gw // M, M, P)
    patches = patches.permute(0, 1, 4, 7, 5, 8, 3, 2, 6, 9)
    return patches.reshape(b, gt * gh * gw, c * TP * P * P)


def reference_image_patchify(images):
    """transformers 5.24 Qwen2VLImageProcessor.patchify (B, C, H, W): a still repeated over time."""
    b, c, h, w = images.shape
    gh, gw = h // P, w // P
    patches = images.reshape(b, c, gh // M, M, P, gw // M, M, P)
    patches = patches.permute(0, 2, 5, 3, 6, 1, 4, 7)
    return patches.unsqueeze(6).expand(-1, -1, -1, -1, -1, -1, TP, -1, -1).reshape(b, gh * gw, c * TP * P * P)


def make_clip(t=8, h=64, w=64, fps=4.0, seed=0):
    frames = np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)
    return Clip(frames=frames, stamps=100.0 + np.arange(t) / fps, cameras=("front",))


@pytest.fixture(scope="module")
def processor():
    preset = get_preset("tiny-dense")
    return ReasonProcessor(
        build_tiny_tokenizer(), VideoProcessor.from_preset(preset), preset.token_ids["video_token_id"]
    )


@pytest.mark.parametrize("hw", [(64, 64), (480, 640), (720, 1280), (100, 1000), (1080, 1920), (28, 28)])
@pytest.mark.parametrize("budget", [(56 * 56, 112 * 112), (128 * 28 * 28, 768 * 28 * 28)])
def test_smart_resize_gives_multiples_of_28_within_the_pixel_budget(hw, budget):
    h, w = smart_resize(*hw, factor=28, min_pixels=budget[0], max_pixels=budget[1])
    assert h % 28 == 0 and w % 28 == 0
    assert budget[0] <= h * w <= budget[1]


def test_smart_resize_keeps_aspect_ratio_close():
    h, w = smart_resize(480, 640, factor=28, min_pixels=128 * 28 * 28, max_pixels=768 * 28 * 28)
    assert abs(w / h - 640 / 480) < 0.1


def test_smart_resize_refuses_extreme_aspect_ratios():
    with pytest.raises(ValueError, match="aspect ratio"):
        smart_resize(1, 300)


def test_patchify_matches_transformers_video_processor_order():
    video = torch.randn(4, 3, 56, 84)
    ours = patchify_video(video, P, TP, M)
    assert torch.equal(ours, reference_video_patchify(video[None])[0])


def test_patchify_of_a_still_matches_transformers_image_processor_order():
    image = torch.randn(3, 84, 56)
    ours = patchify_video(image[None].expand(TP, -1, -1, -1), P, TP, M)
    assert torch.equal(ours, reference_image_patchify(image[None])[0])


def test_each_merge_squared_run_of_rows_is_one_spatial_block():
    video = torch.randn(4, 3, 56, 112)
    gh, gw = 56 // P, 112 // P
    rows = patchify_video(video, P, TP, M)
    t, bh, bw, mh, mw = 1, 0, 3, 1, 0
    row = ((t * (gh // M) + bh) * (gw // M) + bw) * M * M + mh * M + mw
    y, x = (bh * M + mh) * P, (bw * M + mw) * P
    block = video[t * TP : (t + 1) * TP, :, y : y + P, x : x + P].permute(1, 0, 2, 3)  # (C, tp, P, P)
    assert torch.equal(rows[row], block.reshape(-1))


def test_video_processor_resizes_a_64px_clip_to_56px_for_the_tiny_preset():
    pixel_values, grid = VideoProcessor.from_preset(get_preset("tiny-dense"))(make_clip().frames)
    assert grid == (4, 4, 4)
    assert pixel_values.shape == (4 * 4 * 4, 3 * TP * P * P)


def test_odd_frame_count_is_padded_by_repeating_the_last_frame():
    frames = make_clip(t=7, h=56, w=56).frames
    pixel_values, grid = VideoProcessor()(frames)
    assert grid == (4, 4, 4)
    last = pixel_values[-16:].reshape(16, 3, TP, P, P)
    assert torch.equal(last[:, :, 0], last[:, :, 1])


def test_pixels_are_clip_normalized():
    frames = np.full((2, 56, 56, 3), (255, 0, 128), dtype=np.uint8)
    pixel_values, _ = VideoProcessor()(frames)
    per_channel = pixel_values.reshape(-1, 3, TP * P * P)[0, :, 0]
    expected = [(v / 255 - m) / s for v, m, s in zip((255, 0, 128), OPENAI_CLIP_MEAN, OPENAI_CLIP_STD)]
    assert per_channel.tolist() == pytest.approx(expected, abs=1e-5)


def test_video_pad_count_is_grid_product_over_merge_squared(processor):
    inputs = processor(make_clip(t=8, h=120, w=90), Prompt("Did the cube fall?"))
    grid_t, grid_h, grid_w = inputs.video_grid_thw[0].tolist()
    assert inputs.num_video_tokens == grid_t * grid_h * grid_w // M**2
    assert inputs.pixel_values_videos.shape[0] == grid_t * grid_h * grid_w


def test_token_types_mark_exactly_the_video_pads(processor):
    inputs = processor(make_clip(), Prompt("Did the cube fall?"))
    is_pad = inputs.input_ids == processor.video_token_id
    assert torch.equal(inputs.mm_token_type_ids, is_pad.int() * 2)


def test_video_comes_before_the_prompt_text_and_the_assistant_turn_is_open(processor):
    inputs = processor(make_clip(), Prompt("Did the cube fall?", system="Be brief."))
    text = inputs.text
    assert text.startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n<|vision_start|>")
    assert text.index("<|vision_end|>") < text.index("Did the cube fall?")
    assert text.endswith("<|im_start|>assistant\n")
    assert processor.tokenizer.decode(inputs.input_ids[0]) == text


def test_second_per_grid_is_temporal_patch_over_clip_fps(processor):
    inputs = processor(make_clip(fps=8.0), Prompt("q"))
    assert inputs.fps == pytest.approx(8.0)
    assert inputs.second_per_grid_ts.tolist() == pytest.approx([TP / 8.0])


def test_a_clips_nominal_rate_wins_over_its_jittered_stamps(processor):
    jittered = make_clip(t=12, fps=4.0)
    jittered = Clip(jittered.frames, jittered.stamps + np.linspace(0, 0.004, 12), jittered.cameras)
    assert processor(jittered, Prompt("q")).second_per_grid_ts.item() != pytest.approx(TP / 4.0, abs=1e-6)
    nominal = Clip(jittered.frames, jittered.stamps, jittered.cameras, fps=4.0)
    assert processor(nominal, Prompt("q")).second_per_grid_ts.tolist() == [TP / 4.0]


def test_single_frame_clip_uses_the_default_fps(processor):
    inputs = processor(make_clip(t=1), Prompt("q"))
    assert inputs.fps == processor.video.default_fps
    assert inputs.video_grid_thw[0, 0] == 1


def test_frame_stamps_are_kept(processor):
    clip = make_clip(t=5)
    assert np.array_equal(processor(clip, Prompt("q")).frame_stamps, clip.stamps)


def test_video_processor_config_round_trips_through_hf_keys(tmp_path):
    video = VideoProcessor(min_pixels=28 * 28, max_pixels=224 * 224, default_fps=2.0)
    (tmp_path / "video_preprocessor_config.json").write_text(json.dumps(video.to_hf_dict()))
    assert VideoProcessor.from_pretrained(tmp_path) == video


def test_tokenizer_and_model_disagreeing_on_the_video_token_is_refused():
    with pytest.raises(ValueError, match="video_token_id"):
        ReasonProcessor(build_tiny_tokenizer(), VideoProcessor(), video_token_id=151656)


def test_frame_times_count_from_the_first_frame(processor):
    inputs = processor(make_clip(t=3, fps=2.0), Prompt("q"))
    assert inputs.frame_times.tolist() == [0.0, 0.5, 1.0]


def test_assistant_prefix_extends_the_open_turn(processor):
    inputs = processor(make_clip(), Prompt("q"), assistant_prefix="<answer>\n")
    assert inputs.text.endswith("<|im_start|>assistant\n<answer>\n")


def test_batch_is_left_padded_with_videos_concatenated_in_row_order(processor):
    a = processor(make_clip(t=2, h=56, w=56), Prompt("short"))
    b = processor(make_clip(t=4, h=112, w=84), Prompt("a longer question about what the robot did"))
    batch = collate_video_inputs([a, b], pad_token_id=0)
    pad = b.num_prompt_tokens - a.num_prompt_tokens
    assert batch["input_ids"].shape == (2, b.num_prompt_tokens)
    assert batch["attention_mask"][0].tolist() == [0] * pad + [1] * a.num_prompt_tokens
    assert batch["mm_token_type_ids"][0, :pad].eq(0).all()
    assert torch.equal(batch["input_ids"][0, pad:], a.input_ids[0])
    assert torch.equal(batch["video_grid_thw"], torch.cat([a.video_grid_thw, b.video_grid_thw]))
    assert torch.equal(
        batch["pixel_values_videos"], torch.cat([a.pixel_values_videos, b.pixel_values_videos])
    )


def reference_video_size(height, width, frames, min_pixels, max_pixels, total_pixels, factor=28, frame_factor=2):
    """qwen-vl-utils' fetch_video sizing, written out from its formulas (round, then floor/ceil by factor)."""
    budget = max(min(max_pixels, total_pixels / frames * frame_factor), int(min_pixels * 1.05))
    h_bar, w_bar = max(factor, round(height / factor) * factor), max(factor, round(width / factor) * factor)
    if h_bar * w_bar > budget:
        beta = math.sqrt(height * width / budget)
        h_bar, w_bar = math.floor(height / beta / factor) * factor, math.floor(width / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar, w_bar = math.ceil(height * beta / factor) * factor, math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


@pytest.mark.parametrize("frames", [8, 300, 301, 600, 2000])
@pytest.mark.parametrize("height,width", [(720, 1280), (481, 641), (1080, 1920)])
def test_a_long_clip_gets_the_reference_per_frame_budget(frames, height, width):
    video = VideoProcessor.from_preset(get_preset("cosmos-reason1-7b"))
    assert video.total_pixels == 128000 * 28 * 28 * 0.9
    want = reference_video_size(height, width, frames, video.min_pixels, video.max_pixels, video.total_pixels)
    assert video.target_size(height, width, frames) == want
    if frames <= 300:  # the budget bites only past 300 frames at these limits
        assert video.target_size(height, width, frames) == video.target_size(height, width)


def test_the_clip_budget_sizes_the_grid_and_a_checkpoint_may_set_its_own(tmp_path):
    video = VideoProcessor(min_pixels=28 * 28, max_pixels=112 * 112, total_pixels=4 * 56 * 56)
    _, grid = video(np.zeros((8, 112, 112, 3), np.uint8))
    assert grid == (4, 4, 4)  # 8 frames share 4 x 56² x 2: 56² per frame, not 112²
    (tmp_path / "video_preprocessor_config.json").write_text(json.dumps(video.to_hf_dict()))
    assert VideoProcessor.from_pretrained(tmp_path).total_pixels == 4 * 56 * 56

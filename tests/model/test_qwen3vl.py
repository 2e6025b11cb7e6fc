"""The qwen3_vl family (Cosmos-Reason2 / Qwen3-VL): presets sized like the releases, our processor
against transformers' reference formulas, the torch engine against transformers' own class, and
a checkpoint directory laid out like a released Cosmos-Reason2."""

import json
import types

import numpy as np
import pytest
import torch
from transformers import Qwen3VLForConditionalGeneration, Qwen3VLProcessor
from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor, smart_resize
from transformers.video_utils import VideoMetadata

from cosmos_ros.core.answers import AnswerStatus, parse_answer
from cosmos_ros.core.prompts import REASONING_AFTER_THINK, failure_prompt, next_subtask_prompt
from cosmos_ros.core.types import Clip
from cosmos_ros.engine.torch_engine import TorchEngine
from cosmos_ros.model.checkpoint import build_model, checkpoint_info, save_checkpoint
from cosmos_ros.model.config import get_preset, model_info
from cosmos_ros.model.families import family_of
from cosmos_ros.model.processor import VIDEO_PAD, patchify_video
from cosmos_ros.model.qwen3vl_processor import (
    Qwen3VideoProcessor,
    patch_timestamps,
    preset_processor,
    smart_resize_clip,
)
from cosmos_ros.model.tokenizer import build_tiny_tokenizer

TINY = "cosmos-reason2-tiny"

# Released parameter counts (Hugging Face's safetensors count of the Qwen3-VL-*-Instruct
# checkpoints Cosmos-Reason2 is post-trained from; the shapes are the same).
RELEASED = {"cosmos-reason2-2b": 2_127_532_032, "cosmos-reason2-8b": 8_767_123_696, "cosmos-reason2-32b": 33_357_390_064}


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_the_presets_are_the_released_sizes(name):
    info = model_info(name)
    assert info["family"] == "qwen3_vl"
    assert abs(info["parameters"] - RELEASED[name]) / RELEASED[name] < 0.01
    assert info["parameters"] == RELEASED[name]  # the same shapes give the same count exactly


@pytest.fixture(scope="module")
def tokenizer():
    return build_tiny_tokenizer(family="qwen3_vl")


@pytest.fixture(scope="module")
def engine():
    return TorchEngine(TINY, seed=3)


def _clip(frames: int, height: int, width: int, fps: float = 4.0, seed: int = 0) -> Clip:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (frames, height, width, 3), dtype=np.uint8)
    return Clip(frames=pixels, stamps=100.0 + np.arange(frames) / fps)


SIZES = [(7, 241, 333), (4, 480, 640), (5, 31, 500), (16, 720, 1280), (3, 97, 65), (9, 1080, 1920)]


@pytest.mark.parametrize("cap", [True, False])
@pytest.mark.parametrize(("frames", "height", "width"), SIZES)
def test_grids_match_the_reference_processor(cap, frames, height, width):
    ours = Qwen3VideoProcessor(min_pixels=4096, max_pixels=25165824, cap_pixels_per_frame=cap)
    reference = Qwen3VLVideoProcessor(
        size={"shortest_edge": 4096, "longest_edge": 25165824}, cap_pixels_per_frame=cap
    )
    h, w = ours.target_size(height, width, frames)
    grid_t = -(-frames // 2)
    assert grid_t * (h // 16) * (w // 16) == reference.get_num_of_video_patches(frames, height, width)
    if not cap:
        assert (h, w) == smart_resize(frames, height, width, 2, 32, 4096, 25165824)


@pytest.mark.parametrize(("frames", "height", "width"), SIZES)
@pytest.mark.parametrize("budget", [(8192, 131072), (131072, 3774873), (4096, 16 * 1024)])
def test_the_resize_rule_is_the_references(frames, height, width, budget):
    assert smart_resize_clip(frames, height, width, 2, 32, *budget) == smart_resize(
        frames, height, width, 2, 32, *budget
    )


def test_patches_are_laid_out_as_the_reference():
    video = torch.randn(6, 3, 64, 96)
    ours = patchify_video(video, 16, 2, 2)
    theirs, *_ = Qwen3VLVideoProcessor.patchify(None, video[None], patch_size=16, merge_size=2, temporal_patch_size=2)
    torch.testing.assert_close(ours, theirs[0], rtol=0, atol=0)


@pytest.mark.parametrize("frames", [1, 2, 5, 8, 13])
def test_timestamps_are_the_references(frames):
    fps = 4.0
    reference = Qwen3VLProcessor._calculate_timestamps(None, list(range(frames)), fps, 2)
    assert patch_timestamps(np.arange(frames) / fps, 2) == pytest.approx(reference)


def _reference_video_text(grid: list[int], frames: int, fps: float) -> str:
    """transformers' own expansion of the video placeholder, from its Qwen3VLProcessor."""
    processor = Qwen3VLProcessor.__new__(Qwen3VLProcessor)
    processor.video_token, processor.vision_start_token, processor.vision_end_token = (
        VIDEO_PAD, "<|vision_start|>", "<|vision_end|>",
    )  # fmt: skip
    processor.video_processor = types.SimpleNamespace(merge_size=2, temporal_patch_size=2)
    metadata = VideoMetadata(total_num_frames=frames, fps=fps, frames_indices=list(range(frames)))
    return processor.replace_video_token({"video_grid_thw": torch.tensor([grid]), "video_metadata": [metadata]}, 0)


@pytest.mark.parametrize(("frames", "height", "width", "fps"), [(7, 241, 333, 4.0), (8, 480, 640, 2.0), (3, 97, 65, 30.0)])
def test_the_prompt_carries_the_references_timestamped_frames(tokenizer, frames, height, width, fps):
    processor = preset_processor(get_preset(TINY), tokenizer)
    inputs = processor(_clip(frames, height, width, fps), next_subtask_prompt("stack the blocks", ["grasp", "lift"]))
    grid = inputs.video_grid_thw[0].tolist()
    assert _reference_video_text(grid, frames, fps) in inputs.text
    assert "<|vision_start|><|vision_start|>" not in inputs.text  # the template's wrapper was collapsed
    assert inputs.num_video_tokens == grid[0] * grid[1] * grid[2] // 4
    assert inputs.pixel_values_videos.shape == (grid[0] * grid[1] * grid[2], 3 * 2 * 16 * 16)
    assert inputs.text.rstrip().endswith("<|im_start|>assistant")
    assert REASONING_AFTER_THINK in inputs.text  # worded the way Cosmos-Reason2 is asked


def test_pixels_are_normalized_around_half():
    processor = Qwen3VideoProcessor(min_pixels=2 * 64 * 64, max_pixels=2 * 64 * 64)
    white = np.full((2, 64, 64, 3), 255, np.uint8)
    pixels, grid = processor(white)
    assert grid == (1, 4, 4)
    assert torch.allclose(pixels, torch.ones_like(pixels))  # (1 - 0.5) / 0.5


def test_the_engine_runs_transformers_own_class_to_its_logits_and_greedy_tokens(engine):
    assert isinstance(engine.model, Qwen3VLForConditionalGeneration)
    clip, prompt = _clip(6, 120, 200), failure_prompt("put the cube in the bowl")
    inputs = engine.prepare(clip, prompt)
    with torch.inference_mode():
        reference = engine.model(**inputs.model_kwargs()).logits[0]
        generated = engine.model.generate(
            **inputs.model_kwargs(), max_new_tokens=12, do_sample=False, eos_token_id=None, pad_token_id=0
        )[0, inputs.num_prompt_tokens :]
    torch.testing.assert_close(engine.inputs_logits(inputs), reference, rtol=0, atol=1e-4)
    ours = engine.generate(inputs, max_new_tokens=12, ignore_stop_tokens=True)
    assert ours.token_ids == generated.tolist()


def test_a_batch_decodes_as_its_rows_one_by_one(engine):
    clips = [_clip(4, 96, 128, seed=1), _clip(8, 200, 150, seed=2)]
    prompts = [failure_prompt("open the drawer"), next_subtask_prompt("wipe the table", ["grasp the sponge", "wipe"])]
    batch = engine.reason_batch(clips, prompts, max_new_tokens=10, temperature=0.0)
    alone = [engine.reason(c, p, max_new_tokens=10, temperature=0.0) for c, p in zip(clips, prompts)]
    assert [r.text for r in batch] == [r.text for r in alone]
    assert all(r.answer_format == "after_think" for r in batch)


def test_a_checkpoint_laid_out_like_a_release_loads_and_answers(tmp_path, tokenizer):
    """Sharded bf16 safetensors + index, tokenizer files, preprocessor_config.json (the processor's
    own pixel budget), chat_template.jinja and generation_config.json, as Cosmos-Reason2 ships."""
    preset = get_preset(TINY)
    path = save_checkpoint(build_model(preset, seed=5, dtype="bf16"), tmp_path / "cr2", tokenizer=tokenizer, max_shard_size="1MB")
    assert len(list(path.glob("model-*-of-*.safetensors"))) > 1 and (path / "model.safetensors.index.json").is_file()
    template = tokenizer.chat_template
    (path / "chat_template.jinja").write_text(template)
    config = json.loads((path / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (path / "tokenizer_config.json").write_text(json.dumps(config))
    budget = {"shortest_edge": 64 * 64, "longest_edge": 8 * 64 * 64}
    (path / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "Qwen2VLImageProcessorFast", "patch_size": 16, "temporal_patch_size": 2,
        "merge_size": 2, "image_mean": [0.5] * 3, "image_std": [0.5] * 3, "size": budget,
    }))  # fmt: skip
    (path / "generation_config.json").write_text(json.dumps({"eos_token_id": [2, 0], "max_new_tokens": 7}))

    info = checkpoint_info(path)
    assert info["family"] == "qwen3_vl" and info["parameters"] == model_info(TINY)["parameters"]
    engine = TorchEngine(str(path))
    assert engine.processor.video.max_pixels == budget["longest_edge"]
    inputs = engine.prepare(_clip(4, 240, 320), failure_prompt("lift the box"))
    grid_t, grid_h, grid_w = inputs.video_grid_thw[0].tolist()
    assert grid_t * grid_h * grid_w * 16 * 16 * 2 <= budget["longest_edge"]
    reasoning = engine.reason(_clip(4, 240, 320), failure_prompt("lift the box"))
    assert reasoning.num_generated_tokens <= 7  # the checkpoint's own generation defaults
    assert reasoning.model_id.startswith("cr2@")
    assert family_of(engine.model.config).name == "qwen3_vl"


ANSWERS = [
    ("<think>\nthe cube slipped\n</think>\n\nA", AnswerStatus.OK, 0, True),
    ("<think>\nnothing went wrong\n</think>\n\nB. No, the robot did not fail", AnswerStatus.OK, 1, True),
    ("A", AnswerStatus.OK, 0, False),  # no reasoning asked for or given: all of it is the answer
    ("<think>\nhmm\n</think>\n\n<answer>\nB\n</answer>", AnswerStatus.OK, 1, False),  # tags still win
    ("<think>\nthe gripper closes and", AnswerStatus.UNCERTAIN, -1, False),  # cut off mid-thought
    ("<think>\nx\n</think>\n\n", AnswerStatus.UNCERTAIN, -1, False),
    ("<think>\nx\n</think>\n\nmaybe later", AnswerStatus.UNCERTAIN, -1, True),
]


@pytest.mark.parametrize(("text", "status", "choice", "format_ok"), ANSWERS)
def test_cosmos_reason2_answers_follow_the_think_block(text, status, choice, format_ok):
    parsed = parse_answer(text, failure_prompt("lift the box").options, "after_think")
    assert (parsed.status, parsed.choice_index, parsed.format_ok) == (status, choice, format_ok)
    if text.endswith("slipped\n</think>\n\nA"):
        assert parsed.think == "the cube slipped"
    if "cut off" in text or "closes and" in text:
        assert parsed.reason == "unclosed_think"


def test_reason1_models_are_still_read_only_from_answer_tags():
    assert parse_answer("<think>\nx\n</think>\n\nA", ("yes", "no")).reason == "no_answer_tag"

"""The hybrid family's torchvision-free processor and the pixel shuffle that makes 256 tokens per frame."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cosmos_ros.core.types import Clip, Prompt
from cosmos_ros.model.bundle import make_processor
from cosmos_ros.model.checkpoint import build_model
from cosmos_ros.model.config import get_preset
from cosmos_ros.model.hybrid_config import IMAGENET_MEAN, IMAGENET_STD
from cosmos_ros.model.hybrid_processor import FrameProcessor, collate_hybrid_inputs
from cosmos_ros.model.tokenizer import build_tiny_tokenizer


def make_clip(t=2, h=60, w=80, fps=4.0, seed=0):
    frames = np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)
    return Clip(frames=frames, stamps=50.0 + np.arange(t) / fps, cameras=("front",))


def reference_pixel_shuffle(features, ratio=0.5):
    """Space-to-depth by the definition: token (i, j) concatenates the (1/ratio)² patches it covers,
    row by row, each patch's channels whole: out[i, j, (m·n + k)·C + c] = in[n·i + m, n·j + k, c]."""
    b, h, w, c = features.shape
    n = round(1 / ratio)
    unshuffled = F.pixel_unshuffle(features.permute(0, 3, 1, 2), n)  # (B, C·n², H/n, W/n), channel-major
    out = unshuffled.reshape(b, c, n * n, h // n, w // n).permute(0, 3, 4, 2, 1)  # (B, H/n, W/n, n², C)
    return out.reshape(b, h // n, w // n, n * n * c)


@pytest.fixture(scope="module")
def processor():
    return make_processor(get_preset("tiny-hybrid"), build_tiny_tokenizer(family="hybrid"))


@pytest.fixture(scope="module")
def model():
    return build_model("tiny-hybrid")


def test_frames_are_resized_to_448_square_whatever_their_size():
    pixels = FrameProcessor()(make_clip(t=3, h=480, w=640).frames)
    assert pixels.shape == (3, 3, 448, 448) and pixels.dtype == torch.float32


def test_pixels_are_imagenet_normalized():
    frames = np.full((1, 448, 448, 3), (255, 0, 128), dtype=np.uint8)
    pixels = FrameProcessor()(frames)
    expected = [(v / 255 - m) / s for v, m, s in zip((255, 0, 128), IMAGENET_MEAN, IMAGENET_STD)]
    assert pixels[0, :, 0, 0].tolist() == pytest.approx(expected, abs=1e-5)


def test_each_frame_becomes_256_context_tokens_between_img_tags(processor):
    inputs = processor(make_clip(t=3), Prompt("Did the cube fall?"))
    ids = inputs.input_ids[0].tolist()
    tok = processor.tokenizer
    assert inputs.num_video_tokens == 3 * 256
    assert (
        ids.count(tok.convert_tokens_to_ids("<img>")) == ids.count(tok.convert_tokens_to_ids("</img>")) == 3
    )
    assert inputs.pixel_values.shape == (3, 3, 448, 448)


def test_video_frames_come_first_as_numbered_lines_like_internvl(processor):
    inputs = processor(make_clip(t=2), Prompt("Did the cube fall?", system="Be brief."))
    frame = "<img>" + "<IMG_CONTEXT>" * 256 + "</img>"
    assert inputs.text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n"
        f"Frame1: {frame}\nFrame2: {frame}\nDid the cube fall?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert processor.tokenizer.decode(inputs.input_ids[0]) == inputs.text


def test_frame_stamps_and_times_are_kept(processor):
    clip = make_clip(t=4, fps=2.0)
    inputs = processor(clip, Prompt("q"))
    assert np.array_equal(inputs.frame_stamps, clip.stamps)
    assert inputs.frame_times.tolist() == [0.0, 0.5, 1.0, 1.5]
    assert inputs.fps == pytest.approx(2.0)


def test_assistant_prefix_extends_the_open_turn(processor):
    inputs = processor(make_clip(t=1), Prompt("q"), assistant_prefix="<answer>\n")
    assert inputs.text.endswith("<|im_start|>assistant\n<answer>\n")


def test_transformers_pixel_shuffle_matches_the_reference_formula(model):
    features = torch.randn(2, 32, 32, 24)
    assert torch.equal(model.model.pixel_shuffle(features, 0.5), reference_pixel_shuffle(features))


def test_pixel_shuffle_token_holds_its_two_by_two_patches_row_by_row():
    c = 3
    features = torch.arange(4 * 4 * c, dtype=torch.float32).reshape(1, 4, 4, c)
    token = reference_pixel_shuffle(features)[0, 1, 0]  # second row of tokens, first column
    patches = [features[0, 2, 0], features[0, 2, 1], features[0, 3, 0], features[0, 3, 1]]
    assert torch.equal(token, torch.cat(patches))


def test_the_model_turns_a_448_frame_into_256_llm_tokens(model):
    with torch.inference_mode():
        features = model.get_image_features(pixel_values=torch.randn(2, 3, 448, 448)).pooler_output
    assert features.shape == (2, 256, model.config.text_config.hidden_size)


def test_batch_is_left_padded_and_frames_concatenate_in_row_order(processor):
    a = processor(make_clip(t=1), Prompt("short"))
    b = processor(make_clip(t=2), Prompt("a much longer question about the clip"))
    batch = collate_hybrid_inputs([a, b], pad_token_id=0)
    length = b.num_prompt_tokens
    assert batch["input_ids"].shape == (2, length)
    assert (
        batch["attention_mask"][0].tolist()
        == [0] * (length - a.num_prompt_tokens) + [1] * a.num_prompt_tokens
    )
    assert torch.equal(batch["input_ids"][0, -a.num_prompt_tokens :], a.input_ids[0])
    assert torch.equal(batch["pixel_values"], torch.cat([a.pixel_values, b.pixel_values]))


def test_frame_processor_config_round_trips_through_hf_keys(tmp_path):
    frames = FrameProcessor(image_size=224, default_fps=2.0)
    (tmp_path / "video_preprocessor_config.json").write_text(json.dumps(frames.to_hf_dict()))
    assert FrameProcessor.from_pretrained(tmp_path) == frames


def test_tokenizer_without_the_frame_tokens_is_refused():
    with pytest.raises(ValueError, match="single token"):
        make_processor(get_preset("tiny-hybrid"), build_tiny_tokenizer())

"""Checkpoints: HF-layout directories written and read locally, safetensors only."""

import json

import pytest
import torch

from cosmos_ros.model.checkpoint import (
    CheckpointError,
    build_model,
    checkpoint_id,
    create_tiny_checkpoint,
    load_model,
    preset_id,
)
from cosmos_ros.model.tokenizer import load_tokenizer


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return create_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny-dense", seed=0)


def fixed_inputs(model):
    cfg = model.config
    ids = torch.tensor(
        [[1, 40, 41, cfg.vision_start_token_id] + [cfg.video_token_id] * 4 + [cfg.vision_end_token_id, 50, 2]]
    )
    return {
        "input_ids": ids,
        "mm_token_type_ids": (ids == cfg.video_token_id).int() * 2,
        "pixel_values_videos": torch.randn(16, 3 * 2 * 14 * 14, generator=torch.Generator().manual_seed(1)),
        "video_grid_thw": torch.tensor([[1, 4, 4]]),
        "second_per_grid_ts": torch.tensor([0.5]),
    }


def test_checkpoint_directory_has_the_hf_layout(checkpoint):
    names = {p.name for p in checkpoint.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names
    assert json.loads((checkpoint / "config.json").read_text())["model_type"] == "qwen2_5_vl"


def test_saved_then_loaded_model_gives_identical_logits(checkpoint):
    original = build_model("tiny-dense", seed=0)
    loaded = load_model(checkpoint)
    inputs = fixed_inputs(original)
    with torch.inference_mode():
        assert torch.equal(original(**inputs).logits, loaded(**inputs).logits)


def test_checkpoint_tokenizer_loads_from_the_directory(checkpoint):
    assert load_tokenizer(checkpoint).convert_tokens_to_ids("<|video_pad|>") == 13


def test_same_seed_builds_identical_weights_and_leaves_the_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b = build_model("tiny-dense", seed=3), build_model("tiny-dense", seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_checkpoint_id_is_dir_name_and_stable_hash(checkpoint):
    model_id = checkpoint_id(checkpoint)
    assert model_id.startswith("tiny-dense@") and len(model_id.split("@")[1]) == 8
    assert checkpoint_id(checkpoint) == model_id


def test_checkpoint_id_changes_with_the_weights(checkpoint, tmp_path):
    other = create_tiny_checkpoint(tmp_path / "tiny-dense", seed=1)
    assert checkpoint_id(other) != checkpoint_id(checkpoint)


def test_preset_id_changes_with_the_seed():
    assert preset_id("tiny-dense", 0) != preset_id("tiny-dense", 1)
    assert preset_id("tiny-dense", 0).startswith("tiny-dense@")


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt", "weights.pth", "state.pkl"])
def test_pickle_weight_files_are_refused(checkpoint, tmp_path, name):
    for f in checkpoint.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / name).write_bytes(b"not loaded")
    with pytest.raises(CheckpointError, match="pickle.*safetensors"):
        load_model(tmp_path)


def test_missing_directory_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "absent")


def test_directory_without_config_is_named(tmp_path):
    with pytest.raises(CheckpointError, match="no config.json"):
        load_model(tmp_path)


def test_directory_without_safetensors_is_named(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "qwen2_5_vl"}')
    with pytest.raises(CheckpointError, match="safetensors"):
        load_model(tmp_path)


def test_unsupported_model_type_is_named(checkpoint, tmp_path):
    for f in checkpoint.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "config.json").write_text('{"model_type": "llama"}')
    with pytest.raises(CheckpointError, match="llama"):
        load_model(tmp_path)

"""Checkpoints of both families: HF-layout directories written and read locally, safetensors only,
and every kind of broken checkpoint refused with the file or tensor named."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from cosmos_ros.model.checkpoint import (
    CheckpointError,
    build_model,
    check_checkpoint_dir,
    checkpoint_id,
    create_tiny_checkpoint,
    load_model,
    preset_id,
    resolve_dtype,
)
from cosmos_ros.model.tokenizer import load_tokenizer

FAMILIES = {"tiny-dense": "qwen2_5_vl", "tiny-hybrid": "internvl"}


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def checkpoint(request, tmp_path_factory):
    return create_tiny_checkpoint(
        tmp_path_factory.mktemp("ckpt") / request.param, seed=0, preset=request.param
    )


@pytest.fixture(scope="module")
def dense_checkpoint(tmp_path_factory):
    return create_tiny_checkpoint(tmp_path_factory.mktemp("dense") / "tiny-dense", seed=0)


@pytest.fixture
def broken(dense_checkpoint, tmp_path):
    """A private copy of the dense checkpoint to damage."""
    return shutil.copytree(dense_checkpoint, tmp_path / "broken")


def fixed_inputs(model):
    cfg = model.config
    gen = torch.Generator().manual_seed(1)
    if cfg.model_type == "internvl":
        ids = torch.tensor([[1, 40, 41, 4096] + [cfg.image_token_id] * 256 + [4097, 50, 2]])
        return {"input_ids": ids, "pixel_values": torch.randn(1, 3, 448, 448, generator=gen)}
    ids = torch.tensor(
        [[1, 40, 41, cfg.vision_start_token_id] + [cfg.video_token_id] * 4 + [cfg.vision_end_token_id, 50, 2]]
    )
    return {
        "input_ids": ids,
        "mm_token_type_ids": (ids == cfg.video_token_id).int() * 2,
        "pixel_values_videos": torch.randn(16, 3 * 2 * 14 * 14, generator=gen),
        "video_grid_thw": torch.tensor([[1, 4, 4]]),
        "second_per_grid_ts": torch.tensor([0.5]),
    }


def rewrite_weights(path, edit):
    """Apply `edit(state_dict)` to the single-file weights of the checkpoint at `path`."""
    weights = path / "model.safetensors"
    tensors = load_file(weights)
    edit(tensors)
    save_file(tensors, weights, metadata={"format": "pt"})


def test_checkpoint_directory_has_the_hf_layout(checkpoint):
    names = {p.name for p in checkpoint.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names
    assert {"video_preprocessor_config.json", "generation_config.json"} <= names
    assert json.loads((checkpoint / "config.json").read_text())["model_type"] == FAMILIES[checkpoint.name]


def test_saved_then_loaded_model_gives_identical_logits(checkpoint):
    original = build_model(checkpoint.name, seed=0)
    loaded = load_model(checkpoint)
    inputs = fixed_inputs(original)
    with torch.inference_mode():
        assert torch.equal(original(**inputs).logits, loaded(**inputs).logits)


def test_loading_swaps_in_no_hub_kernels(checkpoint, monkeypatch):
    """transformers 5.25 kernelizes loaded models from the Hugging Face hub by default; a robot
    offline must load the checkpoint's own layers, with no network and no code fetched."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = load_model(checkpoint)
    assert getattr(model, "use_kernels", False) is False


def test_sharded_checkpoint_has_an_index_and_loads_identically(tmp_path):
    path = create_tiny_checkpoint(tmp_path / "sharded", preset="tiny-hybrid", max_shard_size="1MB")
    shards = sorted(p.name for p in path.glob("model-*.safetensors"))
    index = json.loads((path / "model.safetensors.index.json").read_text())
    assert len(shards) > 1 and sorted(set(index["weight_map"].values())) == shards
    original, loaded = build_model("tiny-hybrid"), load_model(path)
    assert all(
        torch.equal(a, b) for a, b in zip(original.state_dict().values(), loaded.state_dict().values())
    )


@pytest.mark.parametrize(
    "dtype,expected", [("fp32", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16)]
)
def test_dtype_is_chosen_at_load(dense_checkpoint, dtype, expected):
    model = load_model(dense_checkpoint, dtype=dtype)
    assert {p.dtype for p in model.parameters()} == {expected}


def test_default_dtype_is_bf16_on_cuda_and_fp32_elsewhere():
    assert resolve_dtype(None, "cuda") == torch.bfloat16
    assert resolve_dtype(None, "cpu") == torch.float32


def test_an_unknown_dtype_lists_the_choices():
    with pytest.raises(ValueError, match="fp32, float32, bf16"):
        resolve_dtype("int8")


def test_checkpoint_tokenizer_loads_from_the_directory(checkpoint):
    tokenizer = load_tokenizer(checkpoint)
    assert tokenizer.convert_tokens_to_ids("<|video_pad|>") == 13
    if checkpoint.name == "tiny-hybrid":
        assert tokenizer.context_image_token_id == 4098


def test_a_template_kept_only_in_chat_template_json_is_the_one_used(broken):
    (broken / "chat_template.jinja").unlink()
    config = json.loads((broken / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (broken / "tokenizer_config.json").write_text(json.dumps(config))
    template = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
    (broken / "chat_template.json").write_text(json.dumps({"chat_template": template}))
    tokenizer = load_tokenizer(broken)
    assert tokenizer.chat_template == template
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert rendered == "[user] hi\n"
    (broken / "chat_template.json").unlink()  # none at all: the family's own
    assert "<|im_start|>" in load_tokenizer(broken).chat_template


def test_model_info_describes_a_checkpoint_directory_from_its_headers(checkpoint, capsys):
    from cosmos_ros.cli import main
    from cosmos_ros.model.config import model_info

    assert main(["model", "info", str(checkpoint)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["family"] == ("dense" if checkpoint.name == "tiny-dense" else "hybrid")
    assert info["parameters"] == model_info(checkpoint.name)["parameters"]  # tied weights stored once
    assert info["model_id"] == checkpoint_id(checkpoint) and info["weight_files"] == ["model.safetensors"]
    assert "tokenizer.json" in info["files"] and info["bytes"] > 0
    assert main(["model", "info", str(checkpoint.parent / "absent")]) == 2  # neither preset nor directory


def test_a_fine_tunes_preprocessor_config_pixel_limits_are_honoured(broken):
    from cosmos_ros.model.bundle import load_bundle

    (broken / "video_preprocessor_config.json").unlink()  # as older Qwen2.5-VL releases and fine-tunes save
    image = {"image_processor_type": "Qwen2VLImageProcessor", "min_pixels": 56 * 56, "max_pixels": 112 * 112,
             "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2}  # fmt: skip
    (broken / "preprocessor_config.json").write_text(json.dumps(image))
    video = load_bundle(broken).processor.video
    assert (video.min_pixels, video.max_pixels) == (56 * 56, 112 * 112)
    # the video processor's own file, where there is one, wins key by key
    (broken / "video_preprocessor_config.json").write_text(json.dumps({"max_pixels": 84 * 84, "fps": 2.0}))
    video = load_bundle(broken).processor.video
    assert (video.min_pixels, video.max_pixels, video.default_fps) == (56 * 56, 84 * 84, 2.0)
    (broken / "preprocessor_config.json").write_text("{not json")
    with pytest.raises(ValueError, match="preprocessor_config.json is not valid JSON"):
        load_bundle(broken)


def test_same_seed_builds_identical_weights_and_leaves_the_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b = build_model("tiny-hybrid", seed=3), build_model("tiny-hybrid", seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_checkpoint_id_is_dir_name_and_stable_hash(checkpoint):
    model_id = checkpoint_id(checkpoint)
    assert model_id.startswith(f"{checkpoint.name}@") and len(model_id.split("@")[1]) == 8
    assert checkpoint_id(checkpoint) == model_id


def test_checkpoint_id_changes_with_the_weights(dense_checkpoint, tmp_path):
    other = create_tiny_checkpoint(tmp_path / "tiny-dense", seed=1)
    assert checkpoint_id(other) != checkpoint_id(dense_checkpoint)


def test_preset_id_changes_with_the_seed():
    assert preset_id("tiny-dense", 0) != preset_id("tiny-dense", 1)
    assert preset_id("tiny-hybrid", 0).startswith("tiny-hybrid@")


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt", "weights.pth", "state.pkl"])
def test_pickle_weight_files_are_refused(broken, name):
    (broken / name).write_bytes(b"not loaded")
    with pytest.raises(
        CheckpointError, match=f"pickle weight files \\['{name}'\\].*can run code.*safetensors"
    ):
        load_model(broken)


def test_a_trainers_own_state_beside_safetensors_weights_is_not_refused(broken):
    for name in ("training_args.bin", "optimizer.pt", "scheduler.pt", "rng_state.pth", "rng_state_3.pth"):
        (broken / name).write_bytes(b"never loaded")
    assert check_checkpoint_dir(broken) == broken
    assert load_model(broken).config.model_type == "qwen2_5_vl"
    (broken / "pytorch_model.bin").write_bytes(b"weights as a pickle")  # still refused, and named alone
    with pytest.raises(CheckpointError, match=r"pickle weight files \['pytorch_model.bin'\]"):
        load_model(broken)


def test_a_missing_tensor_is_named_with_its_expected_shape(broken):
    rewrite_weights(broken, lambda t: t.pop("lm_head.weight"))
    with pytest.raises(
        CheckpointError, match=r"missing tensor 'lm_head.weight' \(the model expects shape \[4096, 128\]\)"
    ):
        load_model(broken)


def test_a_missing_tensor_is_allowed_when_not_strict(broken, dense_checkpoint):
    rewrite_weights(broken, lambda t: t.pop("lm_head.weight"))
    loaded = dict(load_model(broken, strict=False).state_dict())
    reference = dict(load_model(dense_checkpoint).state_dict())
    assert loaded.keys() == reference.keys()
    # every tensor the file holds is loaded from it; the one it lacks keeps its initialisation
    differ = [name for name in reference if not torch.equal(loaded[name], reference[name])]
    assert differ == ["lm_head.weight"]


def test_an_unexpected_tensor_is_named(broken):
    rewrite_weights(broken, lambda t: t.update({"model.extra_head.weight": torch.zeros(2, 2)}))
    with pytest.raises(
        CheckpointError,
        match=r"unexpected tensor 'model.extra_head.weight' in model.safetensors \(model name 'model.language_model.extra_head.weight'\)",
    ):
        load_model(broken)


def test_a_mis_shaped_tensor_is_named_with_both_shapes(broken):
    rewrite_weights(broken, lambda t: t.update({"lm_head.weight": torch.zeros(4000, 128)}))
    with pytest.raises(
        CheckpointError,
        match=r"tensor 'lm_head.weight' in model.safetensors has shape \[4000, 128\] in the checkpoint, the model expects \[4096, 128\]",
    ):
        load_model(broken)


def test_a_mis_shaped_hybrid_tensor_is_named_as_stored_and_as_loaded(tmp_path):
    path = create_tiny_checkpoint(tmp_path / "hybrid", preset="tiny-hybrid")
    rewrite_weights(path, lambda t: t.update({"language_model.model.layers.0.mixer.A_log": torch.zeros(3)}))
    with pytest.raises(
        CheckpointError,
        match=r"tensor 'language_model.model.layers.0.mixer.A_log' in model.safetensors "
        r"\(model name 'model.language_model.layers.0.mixer.A_log'\) has shape \[3\] in the checkpoint, the model expects \[8\]",
    ):
        load_model(path)


def test_a_truncated_safetensors_file_names_the_file_and_the_first_incomplete_tensor(broken):
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    with pytest.raises(
        CheckpointError, match=r"model.safetensors is truncated: tensor '.+' \(F32\[.*\]\) needs data bytes"
    ):
        load_model(broken)


def test_a_file_cut_inside_its_header_is_named(broken):
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="model.safetensors is truncated: its header needs"):
        load_model(broken)


def test_an_index_naming_a_missing_shard_names_the_shard_and_a_tensor(tmp_path):
    path = create_tiny_checkpoint(tmp_path / "sharded", max_shard_size="1MB")
    index = json.loads((path / "model.safetensors.index.json").read_text())
    victim = max(index["weight_map"].values())
    (path / victim).unlink()
    with pytest.raises(CheckpointError, match=f"puts tensor '.+' in {victim}, which is not in"):
        load_model(path)


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


def test_unsupported_model_type_is_named(broken):
    (broken / "config.json").write_text('{"model_type": "llama"}')
    with pytest.raises(CheckpointError, match="llama"):
        load_model(broken)

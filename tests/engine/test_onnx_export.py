"""The ONNX export of both tiny presets: three graphs, a manifest, and agreement with torch."""

import json

import numpy as np
import pytest
import torch

from cosmos_ros.core.types import Clip, Prompt
from cosmos_ros.engine.manifest import GRAPHS, Manifest
from cosmos_ros.engine.torch_engine import TorchEngine

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

PRESETS = ("tiny-dense", "tiny-hybrid", "cosmos-reason2-tiny")
PROMPT = Prompt("What should the robot do next? Answer in <think></think><answer></answer>.")


def make_clip(t, seed=0, size=80):
    frames = np.random.default_rng(seed).integers(0, 256, (t, size, size, 3), dtype=np.uint8)
    return Clip(frames=frames, stamps=np.arange(t) / 4.0, cameras=("front",))


@pytest.fixture(scope="module")
def torch_engines():
    return {preset: TorchEngine(preset) for preset in PRESETS}


@pytest.mark.parametrize("preset", PRESETS)
def test_export_holds_three_checked_graphs_with_weights_as_external_data(exports, preset):
    manifest = Manifest.load(exports[preset])
    for graph in GRAPHS:
        path = manifest.graph_path(exports[preset], graph)
        onnx.checker.check_model(str(path))
        assert path.with_name(path.name + ".data").is_file()
        assert onnx.load(str(path), load_external_data=False).opset_import[0].version == 18


@pytest.mark.parametrize("preset", PRESETS)
def test_manifest_names_the_model_hash_dtypes_and_dynamic_axes(exports, torch_engines, preset):
    manifest = Manifest.load(exports[preset])
    assert manifest.model_id == torch_engines[preset].model_id and manifest.opset == 18
    prefill = manifest.graphs["prefill"]
    shapes = {t.name: t.shape for t in prefill.inputs}
    assert shapes["input_ids"] == ("batch", "sequence")
    assert {t.name: t.dtype for t in prefill.inputs}["input_ids"] == "int64"
    decode = {t.name: t.shape for t in manifest.graphs["decode"].inputs}
    assert decode["attention_mask"] == ("batch", "past + 1")
    raw = json.loads((exports[preset] / "manifest.json").read_text())
    assert all(raw["graphs"][g]["max_abs_diff"] <= 1e-4 for g in GRAPHS)


def test_dense_decode_carries_a_kv_cache_per_layer(exports):
    names = Manifest.load(exports["tiny-dense"]).graphs["decode"].input_names
    assert [n for n in names if n.startswith("past.")] == [
        f"past.{i}.{kv}" for i in range(4) for kv in ("key", "value")
    ]


def test_hybrid_decode_carries_mamba_conv_and_ssm_states_and_attention_kv(exports):
    manifest = Manifest.load(exports["tiny-hybrid"])
    names = manifest.graphs["decode"].input_names
    mamba = [layer for layer, kind in manifest.cache_layout if kind == "mamba"]
    attention = [layer for layer, kind in manifest.cache_layout if kind == "attention"]
    assert len(mamba) == 4 and len(attention) == 1
    assert all(f"past.{i}.conv" in names and f"past.{i}.ssm" in names for i in mamba)
    assert all(f"past.{i}.key" in names and f"past.{i}.value" in names for i in attention)


@pytest.mark.parametrize(
    "preset,frames",
    [("tiny-dense", 3), ("tiny-dense", 6), ("tiny-hybrid", 1), ("tiny-hybrid", 3),
     ("cosmos-reason2-tiny", 3), ("cosmos-reason2-tiny", 6)],
)
def test_vision_and_projector_match_transformers_within_1e_4(exports, torch_engines, preset, frames):
    from cosmos_ros.engine.onnx_graphs import dense_vision_inputs, qwen3_vision_inputs

    engine = torch_engines[preset]
    inputs = engine.prepare(make_clip(frames, seed=frames), PROMPT)
    session = ort.InferenceSession(str(exports[preset] / "vision.onnx"), providers=["CPUExecutionProvider"])
    deepstack = None
    with torch.inference_mode():
        if preset != "tiny-hybrid":
            vision_inputs = dense_vision_inputs if preset == "tiny-dense" else qwen3_vision_inputs
            feeds = {"pixel_values": inputs.pixel_values_videos,
                     **vision_inputs(inputs.video_grid_thw, engine.model.config.vision_config)}  # fmt: skip
            features = engine.model.model.get_video_features(inputs.pixel_values_videos, inputs.video_grid_thw)
            expected = features.pooler_output
            expected = torch.cat(list(expected)) if isinstance(expected, (list, tuple)) else expected
            if preset == "cosmos-reason2-tiny":  # DeepStack: one merged feature per chosen block
                deepstack = torch.stack([torch.cat(list(f)) for f in features.deepstack_features])
        else:
            feeds = {"pixel_values": inputs.pixel_values}
            expected = engine.model.get_image_features(
                inputs.pixel_values, vision_feature_layer=-1, vision_feature_select_strategy="default"
            ).pooler_output.flatten(0, 1)
    got, *got_deepstack = session.run(None, {k: v.numpy() for k, v in feeds.items()})
    assert got.shape == tuple(expected.shape)
    assert np.abs(got - expected.numpy()).max() <= 1e-4
    if deepstack is not None:
        assert got_deepstack[0].shape == tuple(deepstack.shape) == (2, *expected.shape)
        assert np.abs(got_deepstack[0] - deepstack.numpy()).max() <= 1e-4


@pytest.mark.parametrize(
    "grids",
    [[[1, 10, 14]], [[3, 6, 10], [2, 12, 16]]],
    ids=["windows-cut-short-at-the-frame-edge", "clips-of-several-frames-and-two-sizes"],
)
def test_dense_vision_matches_transformers_on_any_grid_within_1e_4(exports, torch_engines, grids):
    from cosmos_ros.engine.onnx_graphs import dense_vision_inputs

    model = torch_engines["tiny-dense"].model
    vision_config = model.config.vision_config
    window = vision_config.window_size // vision_config.patch_size
    grid_thw = torch.tensor(grids)
    assert any(h % window or w % window for _, h, w in grids)  # some windows are cut short
    pixels = torch.randn(int(grid_thw.prod(dim=1).sum()), 3 * 2 * vision_config.patch_size**2)
    with torch.inference_mode():
        expected = model.model.get_video_features(pixels, grid_thw).pooler_output
    expected = torch.cat(list(expected)) if isinstance(expected, (list, tuple)) else expected
    session = ort.InferenceSession(
        str(exports["tiny-dense"] / "vision.onnx"), providers=["CPUExecutionProvider"]
    )
    feeds = {"pixel_values": pixels, **dense_vision_inputs(grid_thw, vision_config)}
    (got,) = session.run(None, {k: v.numpy() for k, v in feeds.items()})
    assert got.shape == tuple(expected.shape)
    assert np.abs(got - expected.numpy()).max() <= 1e-4


def test_rms_norms_are_exported_in_the_form_onnxruntime_fuses(exports, tmp_path):
    path = Manifest.load(exports["tiny-dense"]).graph_path(exports["tiny-dense"], "decode")
    assert "Reciprocal" not in {
        node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node
    }
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "decode.optimized.onnx")
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    fused = onnx.load(options.optimized_model_filepath, load_external_data=False).graph.node
    assert any(node.op_type.endswith("SimplifiedLayerNormalization") for node in fused)

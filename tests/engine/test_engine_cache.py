"""Engine cache keys and hit / miss decisions: pure functions, no onnxruntime or GPU needed."""

import json
from pathlib import Path

import pytest

from cosmos_ros.engine.engine_cache import (
    CACHE_ENV,
    ENGINE_META_FILE,
    cache_root,
    engines_are_reusable,
    export_is_reusable,
    exporter_version,
    onnx_export_dir,
    quantizer_version,
    tensorrt_cache_key,
    tensorrt_engine_dir,
)
from cosmos_ros.engine.manifest import FORMAT_VERSION, GRAPHS, GraphSpec, Manifest, TensorSpec
from cosmos_ros.engine.tensorrt_build import Profiles, label_ranges, profile_shapes

TRT_ARGS = ("tiny-dense@1a2b3c4d", "NVIDIA H100 80GB HBM3", "10.9.0", "fp16", {"batch": [1, 1, 4]})


def test_cache_root_is_the_environment_variable_then_xdg_then_home(tmp_path):
    assert cache_root({CACHE_ENV: str(tmp_path)}) == tmp_path
    assert cache_root({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "cosmos_ros"
    assert cache_root({}) == Path.home() / ".cache" / "cosmos_ros"


def test_exports_are_kept_per_model_hash_and_opset(tmp_path):
    a = onnx_export_dir(tmp_path, "tiny-dense@1a2b3c4d", 18)
    assert a == tmp_path / "onnx" / "tiny-dense-1a2b3c4d-opset18"
    assert (
        a
        != onnx_export_dir(tmp_path, "tiny-dense@99999999", 18)
        != onnx_export_dir(tmp_path, "tiny-dense@1a2b3c4d", 17)
    )


def write_export(directory: Path, model_id="m@1", opset=18, files=GRAPHS, exporter=None, fmt=FORMAT_VERSION):
    directory.mkdir(parents=True, exist_ok=True)
    graphs = {g: {"file": f"{g}.onnx"} for g in GRAPHS}
    for g in files:
        (directory / f"{g}.onnx").write_bytes(b"onnx")
    manifest = {"format_version": fmt, "model_id": model_id, "opset": opset, "graphs": graphs,
                "versions": {"exporter": exporter or exporter_version()}}  # fmt: skip
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


def test_a_complete_export_of_the_same_model_is_a_hit(tmp_path):
    assert export_is_reusable(write_export(tmp_path / "e"), "m@1", 18)


@pytest.mark.parametrize(
    "fields",
    [
        {"model_id": "m@2"},
        {"opset": 17},
        {"files": ("vision", "prefill")},
        {"exporter": "00000000"},
        {"fmt": 0},
    ],
    ids=["other-weights", "other-opset", "graph-missing", "other-exporter-code", "other-format"],
)
def test_an_export_that_differs_in_anything_is_a_miss(tmp_path, fields):
    assert not export_is_reusable(write_export(tmp_path / "e", **fields), "m@1", 18)


def test_an_int8_export_is_kept_beside_the_fp32_one_and_never_taken_for_it(tmp_path):
    assert onnx_export_dir(tmp_path, "m@1", 18, "int8") == tmp_path / "onnx" / "m-1-opset18-int8"
    fp32 = write_export(tmp_path / "fp32")
    assert not export_is_reusable(fp32, "m@1", 18, precision="int8")
    int8 = write_export(tmp_path / "int8")
    manifest = json.loads((int8 / "manifest.json").read_text())
    manifest["precision"] = "int8"
    manifest["versions"]["quantizer"] = quantizer_version()
    (int8 / "manifest.json").write_text(json.dumps(manifest))
    assert export_is_reusable(int8, "m@1", 18, precision="int8")
    assert not export_is_reusable(int8, "m@1", 18)  # asked for fp32
    manifest["versions"]["quantizer"] = "00000000"  # made by other quantizer code
    (int8 / "manifest.json").write_text(json.dumps(manifest))
    assert not export_is_reusable(int8, "m@1", 18, precision="int8")


def test_no_manifest_is_a_miss(tmp_path):
    assert not export_is_reusable(tmp_path, "m@1", 18)


def test_the_tensorrt_key_is_stable_and_covers_gpu_version_precision_and_profiles():
    key = tensorrt_cache_key(*TRT_ARGS)
    assert key == tensorrt_cache_key(*TRT_ARGS) and len(key) == 16
    for i, other in enumerate(["m@2", "NVIDIA H200", "10.10.0", "bf16", {"batch": [1, 1, 8]}]):
        changed = list(TRT_ARGS)
        changed[i] = other
        assert tensorrt_cache_key(*changed) != key


def test_the_engine_folder_names_model_gpu_tensorrt_and_precision(tmp_path):
    folder = tensorrt_engine_dir(tmp_path, *TRT_ARGS).name
    assert folder.startswith("tiny-dense-1a2b3c4d-nvidia-h100-80gb-hbm3-trt10.9.0-fp16-")
    assert folder.endswith(tensorrt_cache_key(*TRT_ARGS))


def test_engines_are_reused_only_with_the_same_key_and_every_engine_file(tmp_path):
    key = tensorrt_cache_key(*TRT_ARGS)
    assert not engines_are_reusable(tmp_path, key)
    (tmp_path / ENGINE_META_FILE).write_text(json.dumps({"key": key}))
    for graph in GRAPHS[:-1]:
        (tmp_path / f"{graph}.engine").write_bytes(b"plan")
    assert not engines_are_reusable(tmp_path, key)
    (tmp_path / f"{GRAPHS[-1]}.engine").write_bytes(b"plan")
    assert engines_are_reusable(tmp_path, key)
    assert not engines_are_reusable(tmp_path, "another key")


def fake_manifest(family: str, multiple: int) -> Manifest:
    spec = GraphSpec(
        "prefill.onnx",
        [TensorSpec("input_ids", "int64", ("batch", "sequence"))],
        [],
        sequence_multiple=multiple,
    )
    return Manifest("m@1", family, 18, "float32", {"prefill": spec}, [], 2, 13)


def test_hybrid_profiles_round_prompt_lengths_up_to_the_chunk_and_count_media_per_frame():
    ranges = label_ranges(fake_manifest("hybrid", 64), {"image_seq_length": 256}, {},
                          Profiles(batch=(1, 1, 2), frames=(1, 8, 16), sequence=(100, 2000, 4000), new_tokens=10))  # fmt: skip
    assert ranges["sequence"] == [128, 2048, 4032]
    assert ranges["past"] == [128, 2048, 4042]
    assert ranges["frames"] == [1, 8, 32] and ranges["media"] == [256, 2048, 8192]


DENSE_CONFIG = {"vision_config": {"spatial_merge_size": 2, "patch_size": 14, "temporal_patch_size": 2,
                                   "window_size": 112}}  # fmt: skip
DENSE_PROCESSOR = {"size": {"shortest_edge": 128 * 784, "longest_edge": 768 * 784}}


def test_dense_profiles_count_merged_patches_from_the_pixel_budget():
    ranges = label_ranges(
        fake_manifest("dense", 1), DENSE_CONFIG, DENSE_PROCESSOR, Profiles(batch=(1, 1, 1), frames=(2, 8, 16))
    )
    assert ranges["merged"] == [128, 4 * 768, 8 * 768]
    assert ranges["patches"] == [4 * m for m in ranges["merged"]]


def test_dense_profiles_bound_the_attention_blocks_by_frames_and_windows():
    ranges = label_ranges(
        fake_manifest("dense", 1), DENSE_CONFIG, DENSE_PROCESSOR, Profiles(batch=(1, 1, 2), frames=(2, 8, 16))
    )
    assert ranges["grid_frames"] == [1, 4, 16]
    assert ranges["frame_patches"] == [4 * 128, 4 * 768, 4 * 768]
    assert ranges["window_patches"] == [4, 4 * 16, 4 * 16]  # a window: 4 × 4 merged patches
    # opt: square frames of 768 merged patches (48 windows); max: 1 × 768 slivers (192 windows)
    assert ranges["windows"] == [1, 4 * 48, 16 * 192]


QWEN3_VL_CONFIG = {"vision_config": {"spatial_merge_size": 2, "patch_size": 16, "temporal_patch_size": 2}}
# Cosmos-Reason2's vLLM budget for a whole clip: 128 to ~3686 merged patches of 32 x 32
QWEN3_VL_PROCESSOR = {"size": {"shortest_edge": 131072, "longest_edge": 3774873}}


def test_qwen3_vl_profiles_spread_the_clip_budget_over_its_frames():
    ranges = label_ranges(
        fake_manifest("qwen3_vl", 1), QWEN3_VL_CONFIG, QWEN3_VL_PROCESSOR, Profiles(batch=(1, 1, 2), frames=(2, 8, 16))
    )
    # a frame: at most half the clip's 3686 patches (two frames at least), capped at 768 per
    # frame, never below 1.05 x 128; at opt the 8 frames share the budget (460 each)
    assert ranges["frame_patches"] == [4, 4 * 460, 4 * 768]
    assert ranges["grid_frames"] == [1, 4, 16]
    assert ranges["merged"] == [1, 4 * 460, 16 * 768] and ranges["media"] == ranges["merged"]
    assert "windows" not in ranges and ranges["patches"] == [4 * m for m in ranges["merged"]]


def test_profile_shapes_fill_each_dynamic_axis_with_min_opt_max():
    spec = GraphSpec("decode.onnx", [TensorSpec("attention_mask", "int64", ("batch", "past + 1")),
                                     TensorSpec("past.0.key", "float32", ("batch", 2, "past", 32))], [])  # fmt: skip
    shapes = profile_shapes(spec, {"batch": [1, 2, 4], "past": [8, 64, 512]})
    assert shapes["attention_mask"] == ((1, 9), (2, 65), (4, 513))
    assert shapes["past.0.key"] == ((1, 2, 8, 32), (2, 2, 64, 32), (4, 2, 512, 32))


def test_an_axis_without_a_range_is_named():
    spec = GraphSpec("v.onnx", [TensorSpec("pixel_values", "float32", ("frames", 3))], [])
    with pytest.raises(ValueError, match="frames"):
        profile_shapes(spec, {"batch": [1, 1, 1]})

"""The TensorRT backend: a clear refusal where it cannot run, fallback only when asked, and —
on a GPU with TensorRT — engines that decode what torch decodes."""

import importlib.util

import numpy as np
import pytest
import torch

from cosmos_ros.core.types import Clip, Prompt
from cosmos_ros.engine.base import EngineUnavailableError, create_engine
from cosmos_ros.engine.tensorrt_build import missing_for_tensorrt

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None
CAN_RUN = HAS_TENSORRT and torch.cuda.is_available()
needs_tensorrt_gpu = pytest.mark.skipif(
    not CAN_RUN, reason="needs TensorRT and a CUDA GPU: " + "; ".join(missing_for_tensorrt("cuda"))
)
PROMPT = Prompt("What should the robot do next? Answer in <think></think><answer></answer>.")


def make_clip(t=2, seed=0):
    frames = np.random.default_rng(seed).integers(0, 256, (t, 64, 64, 3), dtype=np.uint8)
    return Clip(frames=frames, stamps=np.arange(t) / 4.0, cameras=("front",))


@pytest.mark.skipif(CAN_RUN, reason="TensorRT and a GPU are present here")
def test_without_tensorrt_or_a_gpu_selecting_it_names_what_is_missing():
    with pytest.raises(EngineUnavailableError, match="tensorrt engine cannot run here; missing: ") as caught:
        create_engine("tensorrt", "tiny-dense", device="cuda")
    message = str(caught.value)
    if not HAS_TENSORRT:
        assert "'tensorrt' Python package" in message and "tensorrt-cu12" in message
    if not torch.cuda.is_available():
        assert "CUDA GPU" in message


def test_a_cpu_device_is_named_as_the_gap():
    with pytest.raises(EngineUnavailableError, match="device='cuda"):
        create_engine("tensorrt", "tiny-dense", device="cpu")


@pytest.mark.skipif(CAN_RUN, reason="TensorRT and a GPU are present here")
def test_there_is_no_fallback_unless_asked():
    with pytest.raises(EngineUnavailableError):
        create_engine("tensorrt", "tiny-dense", device="cuda", precision="fp16")


@pytest.mark.skipif(CAN_RUN, reason="TensorRT and a GPU are present here")
def test_an_asked_for_fallback_runs_with_the_keywords_it_takes(exports, caplog):
    engine = create_engine("tensorrt", str(exports["tiny-dense"]), device="cuda", fallback="onnxruntime",
                           precision="bf16", seed=0)  # fmt: skip
    assert type(engine).__name__ == "OnnxRuntimeEngine"
    assert "falling back to the onnxruntime engine on cpu" in caplog.text


@pytest.mark.skipif(CAN_RUN, reason="TensorRT and a GPU are present here")
def test_build_engine_command_exits_2_naming_what_is_missing(capsys):
    from cosmos_ros.engine.cli import main

    assert main(["build-engine", "tiny-dense"]) == 2
    assert "missing" in capsys.readouterr().out


@pytest.mark.gpu
@needs_tensorrt_gpu
@pytest.mark.parametrize("preset", ["tiny-dense", "tiny-hybrid", "cosmos-reason2-tiny"])
def test_fp32_engines_decode_the_torch_tokens(exports, engine_cache, preset):
    from cosmos_ros.engine.torch_engine import TorchEngine

    engine = create_engine(
        "tensorrt", str(exports[preset]), device="cuda", precision="fp32", cache_dir=engine_cache
    )
    reference = TorchEngine(preset, device="cuda", dtype="fp32")
    inputs = reference.prepare(make_clip(), PROMPT)
    ours = engine.generate(inputs, max_new_tokens=16, ignore_stop_tokens=True)
    theirs = reference.generate(inputs, max_new_tokens=16, ignore_stop_tokens=True)
    assert ours.token_ids == theirs.token_ids


@pytest.mark.gpu
@needs_tensorrt_gpu
def test_engines_are_built_once_per_key(exports, engine_cache):
    from cosmos_ros.engine.tensorrt_build import build_engines

    first = build_engines(exports["tiny-dense"], precision="fp16", root=engine_cache)
    stamp = (first / "decode.engine").stat().st_mtime_ns
    assert build_engines(exports["tiny-dense"], precision="fp16", root=engine_cache) == first
    assert (first / "decode.engine").stat().st_mtime_ns == stamp


@pytest.mark.gpu
@needs_tensorrt_gpu
def test_an_engine_with_other_binding_names_is_refused(exports, engine_cache, tmp_path):
    import json
    import shutil

    from cosmos_ros.engine.manifest import Manifest, ManifestMismatchError
    from cosmos_ros.engine.tensorrt_build import build_engines
    from cosmos_ros.engine.tensorrt_engine import TensorRTGraphs

    directory = build_engines(exports["tiny-dense"], precision="fp16", root=engine_cache)
    copy = shutil.copytree(exports["tiny-dense"], tmp_path / "export")
    raw = json.loads((copy / "manifest.json").read_text())
    raw["graphs"]["vision"]["outputs"][0]["name"] = "image_embeds"
    (copy / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(ManifestMismatchError, match="image_embeds"):
        TensorRTGraphs(directory, Manifest.load(copy), torch.device("cuda"))

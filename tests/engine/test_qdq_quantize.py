"""Q/DQ exports for TensorRT's int8 and fp8 engines: every weight MatMul quantized explicitly as
TensorRT reads it (symmetric, per-channel weights, one calibrated scale per activation), the
graphs still runnable on onnxruntime's CPU provider, whose answers follow fp32's; and the
precision knob mapped to the right export and builder flags. The engine builds need a GPU."""

import importlib.util

import numpy as np
import pytest
import torch

from cosmos_ros.core.types import Clip
from cosmos_ros.engine.base import create_engine
from cosmos_ros.engine.manifest import GRAPHS, Manifest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper

from cosmos_ros.engine.onnx_quantize import gemm_as_matmul
from cosmos_ros.engine.qdq_quantize import (
    QMAX,
    activation_ranges,
    ensure_qdq_export,
    insert_qdq,
    quantized_matmuls,
    synthetic_calibration,
    weight_matmuls,
)
from cosmos_ros.engine.tensorrt_build import builder_flags, check_export_precision

CAN_BUILD = importlib.util.find_spec("tensorrt") is not None and torch.cuda.is_available()


@pytest.fixture(scope="module", params=["qdq-int8", "qdq-fp8"])
def qdq(request, exports, engine_cache):
    """(fp32 export, Q/DQ export) of tiny-dense."""
    return exports["tiny-dense"], ensure_qdq_export(exports["tiny-dense"], request.param, root=engine_cache)


def matmul_model(weight: np.ndarray, second_weight: np.ndarray):
    """y = (x @ weight) @ (x @ second_weight)^T: two weight MatMuls and one of two activations."""
    k = weight.shape[0]
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["a"], name="first"),
        helper.make_node("MatMul", ["x", "v"], ["b"], name="second"),
        helper.make_node("Transpose", ["b"], ["bt"], perm=[1, 0]),
        helper.make_node("MatMul", ["a", "bt"], ["y"], name="activations"),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["rows", k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["rows", "rows"])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(second_weight, "v")],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


@pytest.mark.parametrize("precision", ["qdq-int8", "qdq-fp8"])
def test_qdq_matmul_error_is_bounded_by_the_scales_and_the_weights_are_stored_as_tensorrt_reads_them(
    precision, tmp_path
):
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(32, 8)).astype(np.float32)
    weight[:, 3] *= 50  # one loud output channel: per-channel scales keep the others fine
    model = matmul_model(weight, rng.normal(size=(32, 8)).astype(np.float32))
    path = tmp_path / "m.onnx"
    onnx.save_model(model, str(path))
    feeds = [{"x": rng.normal(size=(rows, 32)).astype(np.float32)} for rows in (3, 5, 7)]  # shapes differ
    amax = activation_ranges(path, feeds, {"x"})
    assert amax["x"] == pytest.approx(max(float(np.abs(f["x"]).max()) for f in feeds), rel=1e-6)

    done = insert_qdq(model, amax, precision)
    assert sorted(done) == ["first", "second"] and quantized_matmuls(model) == ["first", "second"]
    assert weight_matmuls(model) == []  # no float weight left on a MatMul
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    stored, scale = inits["first.w_q"], inits["first.w_scale"]
    assert scale.shape == (8,) and np.allclose(scale, np.abs(weight).max(axis=0) / QMAX[precision])
    if precision == "qdq-int8":
        assert stored.dtype == np.int8 and stored.min() >= -127  # TensorRT's int8 weights: [-127, 127]
    else:
        assert model.graph.initializer[[i.name for i in model.graph.initializer].index("first.w_q")].data_type == (
            TensorProto.FLOAT8E4M3FN
        )
        assert any(o.domain in ("", "ai.onnx") and o.version >= 19 for o in model.opset_import)
    assert all(not np.any(inits[n].astype(np.float32)) for n in inits if n.endswith(".zero"))  # symmetric
    onnx.checker.check_model(model)

    # inside the calibrated range, a weight MatMul's error is what rounding x and w allows
    x = np.clip(rng.normal(size=(4, 32)).astype(np.float32), -amax["x"], amax["x"])
    got = _intermediate(model, x, "a")
    x_step, w_step = amax["x"] / QMAX[precision], scale
    if precision == "qdq-int8":  # half a step of each
        x_err, w_err = np.full_like(x, x_step / 2), np.broadcast_to(w_step / 2, weight.shape)
    else:  # E4M3: 3 mantissa bits (half an ulp is 1/16 relative), subnormal steps of 2^-9
        x_err, w_err = np.abs(x) / 16 + x_step / 1024, np.abs(weight) / 16 + w_step / 1024
    bound = np.abs(x) @ w_err + x_err @ np.abs(weight) + x_err @ w_err
    error = np.abs(got - x @ weight)
    assert np.all(error <= bound * 1.01 + 1e-5) and error.max() > 1e-6  # quantized, within its bound
    assert "activations" not in quantized_matmuls(model)  # two activations: left as they were


def _intermediate(model, x, name):
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run([name], {"x": x})[0]


def test_every_weight_matmul_of_every_graph_is_quantized_and_the_interface_is_the_fp32_exports(qdq):
    fp32, quantized = qdq
    manifest, source = Manifest.load(quantized), Manifest.load(fp32)
    assert manifest.precision in ("qdq-int8", "qdq-fp8") and manifest.versions["quantizer"]
    assert manifest.versions["calibration"].endswith("clips")
    for graph in GRAPHS:
        assert manifest.graphs[graph].inputs == source.graphs[graph].inputs
        assert manifest.graphs[graph].outputs == source.graphs[graph].outputs
        before = onnx.load(str(fp32 / source.graphs[graph].file))
        gemm_as_matmul(before)  # a Gemm of a stored weight is a MatMul to the quantizer
        after = onnx.load(str(quantized / manifest.graphs[graph].file), load_external_data=False)
        assert sorted(quantized_matmuls(after)) == sorted(weight_matmuls(before)) != []
        assert weight_matmuls(after) == []


def test_qdq_logits_follow_fp32_but_are_not_fp32(qdq, step_logits):
    """On random weights, whose logits lie close together: the prefill's logits within a few
    percent of their range; a decode step's still clearly the same function (8-bit activations,
    one scale per tensor, err more there than 8-bit weights alone)."""
    fp32, quantized = qdq
    reference, engine = create_engine("onnxruntime", str(fp32)), create_engine("onnxruntime", str(quantized))
    assert engine.precision == Manifest.load(quantized).precision
    for clip, prompt in synthetic_calibration((56, 56), frames=4, clips=12)[8:]:  # not calibrated on
        inputs = reference.prepare(clip, prompt)
        batch = reference.runner.collate([inputs], reference.pad_token_id)
        want = reference.runner.prefill(batch, None)[0][0, -1]
        got = engine.runner.prefill(engine.runner.collate([inputs], engine.pad_token_id), None)[0][0, -1]
        error = float((got - want).abs().max())
        assert 0 < error <= 0.15 * float(want.max() - want.min())
        assert float(np.corrcoef(got.numpy(), want.numpy())[0, 1]) > 0.99
        want, got = step_logits(reference, inputs), step_logits(engine, inputs)
        assert float(np.corrcoef(got.numpy(), want.numpy())[0, 1]) > 0.7


@pytest.mark.parametrize("precision", ["qdq-int8", "qdq-fp8"])
def test_the_shipped_models_answers_survive_the_qdq_graphs(precision, engine_cache):
    """The trained model's answers (not near-tied random logits) through the TensorRT graphs,
    emulated on the CPU."""
    from cosmos_ros.core.answers import parse_answer
    from cosmos_ros.core.prompts import failure_prompt, next_subtask_prompt
    from cosmos_ros.engine.onnx_export import ensure_export

    fp32_dir = ensure_export("model/cosmos-reason1-tiny", root=engine_cache)
    fp32 = create_engine("onnxruntime", str(fp32_dir))
    quantized = create_engine("onnxruntime", str(ensure_qdq_export(fp32_dir, precision, root=engine_cache)))
    task = "put the red block on the green pad"
    agree = 0
    for seed in range(4):
        frames = np.full((8, 112, 112, 3), 90, np.uint8)
        frames[:, 70:90, 60:90] = (40, 160, 60)  # the pad
        row = 30 + 6 * seed
        for t in range(8):  # a red block carried to the right
            frames[t, row : row + 16, 10 + 8 * t : 26 + 8 * t] = (200, 30, 30)
        scene = Clip(frames=frames, stamps=np.arange(8) / 4.0)
        for prompt in (failure_prompt(task), next_subtask_prompt(task, ("grasp the block", "move", "release"))):
            a = parse_answer(fp32.reason(scene, prompt, max_new_tokens=32).text, prompt.options).choice_index
            b = parse_answer(quantized.reason(scene, prompt, max_new_tokens=32).text, prompt.options).choice_index
            assert a is not None
            agree += a == b
    assert agree >= 7  # of 8


def test_the_cached_qdq_export_is_reused_and_kept_apart_per_precision(exports, engine_cache):
    int8 = ensure_qdq_export(exports["tiny-dense"], "int8", root=engine_cache)  # TensorRT's name works too
    stamp = (int8 / "decode.onnx").stat().st_mtime_ns
    assert ensure_qdq_export(exports["tiny-dense"], "qdq-int8", root=engine_cache) == int8
    assert (int8 / "decode.onnx").stat().st_mtime_ns == stamp
    fp8 = ensure_qdq_export(exports["tiny-dense"], "fp8", root=engine_cache)
    assert fp8 != int8 and int8.name.endswith("-qdq-int8") and fp8.name.endswith("-qdq-fp8")
    with pytest.raises(ValueError, match="one of int8, fp8"):
        ensure_qdq_export(exports["tiny-dense"], "int4", root=engine_cache)


def test_tensorrt_precisions_map_to_builder_flags_and_exports(exports, engine_cache):
    from cosmos_ros.engine.tensorrt_engine import resolve_tensorrt_export

    assert builder_flags("fp32") == () and builder_flags("bf16") == ("BF16",)
    assert builder_flags("int8") == ("FP16", "INT8") and builder_flags("fp8") == ("FP16", "FP8")
    with pytest.raises(ValueError, match="precision must be one of"):
        builder_flags("int4")
    check_export_precision("qdq-fp8", "fp8")
    check_export_precision("fp32", "bf16")
    with pytest.raises(ValueError, match="int8 engine is built from a qdq-int8 export, not a int8 one"):
        check_export_precision("int8", "int8")  # onnxruntime's MatMulNBits export
    with pytest.raises(ValueError, match="fp16 engine is built from a fp32 export, not a qdq-fp8"):
        check_export_precision("qdq-fp8", "fp16")

    fp32 = exports["tiny-dense"]
    assert resolve_tensorrt_export(fp32, "bf16", 0, engine_cache) == fp32
    int8 = resolve_tensorrt_export(fp32, "int8", 0, engine_cache)
    assert Manifest.load(int8).precision == "qdq-int8"
    assert resolve_tensorrt_export(int8, "int8", 0, engine_cache) == int8  # a Q/DQ export as given
    with pytest.raises(ValueError, match="fp8 engine is built from a qdq-fp8 export, not a qdq-int8"):
        resolve_tensorrt_export(int8, "fp8", 0, engine_cache)


@pytest.mark.gpu
@pytest.mark.skipif(not CAN_BUILD, reason="needs TensorRT and a CUDA GPU to build int8 / fp8 engines")
@pytest.mark.parametrize("precision", ["int8", "fp8"])
def test_quantized_engines_answer_what_fp32_answers_on_the_shipped_model(precision, engine_cache):
    from cosmos_ros.core.answers import parse_answer
    from cosmos_ros.core.prompts import failure_prompt
    from cosmos_ros.engine.tensorrt_build import FP8_MIN_CAPABILITY

    if precision == "fp8" and torch.cuda.get_device_capability() < FP8_MIN_CAPABILITY:
        pytest.skip(f"fp8 needs compute capability 8.9+; this GPU is {torch.cuda.get_device_capability()}")
    model = "model/cosmos-reason1-tiny"
    reference = create_engine("onnxruntime", model, cache_dir=engine_cache)
    engine = create_engine("tensorrt", model, device="cuda", precision=precision, cache_dir=engine_cache)
    prompt = failure_prompt("put the red block on the green pad")
    agree = 0
    for clip, _ in synthetic_calibration((112, 112), frames=8, clips=12)[8:]:
        a = parse_answer(reference.reason(clip, prompt, max_new_tokens=32).text, prompt.options).choice_index
        b = parse_answer(engine.reason(clip, prompt, max_new_tokens=32).text, prompt.options).choice_index
        agree += a == b
    assert agree >= 3  # of 4

"""int8 weights for onnxruntime: the quantized export is the same model at a quarter of the weight
bytes, found through the same knob (`precision`) everywhere, and kept in the cache like an export."""

import json

import numpy as np
import pytest

from cosmos_ros.core.types import Clip, Prompt
from cosmos_ros.engine.base import create_engine
from cosmos_ros.engine.manifest import GRAPHS, Manifest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from cosmos_ros.engine.onnx_quantize import ensure_int8_export, gemm_as_matmul, quantize_export

PROMPT = Prompt("What should the robot do next? Answer in <think></think><answer></answer>.")


def clip(t=2, size=64, seed=0):
    frames = np.random.default_rng(seed).integers(0, 256, (t, size, size, 3), dtype=np.uint8)
    return Clip(frames=frames, stamps=np.arange(t) / 4.0, cameras=("front",))


def op_counts(path) -> dict[str, int]:
    """Nodes by type; a Gemm or MatMul of a stored weight counts as "Gemm of a weight" / "MatMul of a weight"."""
    model = onnx.load(str(path), load_external_data=False)
    weights = {i.name for i in model.graph.initializer}
    counts: dict[str, int] = {}
    for node in model.graph.node:
        kind = node.op_type
        if kind in ("Gemm", "MatMul") and node.input[1] in weights:
            kind += " of a weight"
        counts[kind] = counts.get(kind, 0) + 1
    return counts


@pytest.fixture(scope="module", params=["tiny-dense", "tiny-hybrid"])
def int8(request, exports, engine_cache):
    """(fp32 export, int8 export) of a preset."""
    return exports[request.param], ensure_int8_export(exports[request.param], root=engine_cache)


def test_every_weight_matmul_of_decode_is_8_bit_and_the_compute_bound_graphs_stay_fp32(int8):
    fp32, quantized = int8
    manifest, source = Manifest.load(quantized), Manifest.load(fp32)
    assert manifest.precision == "int8" and source.precision == "fp32"
    assert manifest.model_id == source.model_id and manifest.versions["quantizer"]
    for graph in GRAPHS:
        before, after = op_counts(fp32 / f"{graph}.onnx"), op_counts(quantized / f"{graph}.onnx")
        # inputs and outputs are the fp32 export's: the runtime does not change
        assert manifest.graphs[graph].inputs == source.graphs[graph].inputs
        assert manifest.graphs[graph].outputs == source.graphs[graph].outputs
        if graph != "decode":
            assert after == before and manifest.graphs[graph] == source.graphs[graph]
            continue
        assert after.get("MatMulNBits", 0) == before.get("MatMul of a weight", 0) + before.get("Gemm of a weight", 0)
        assert after["MatMulNBits"] > 0 and "MatMul of a weight" not in after and "Gemm of a weight" not in after
    decode_before, decode_after = source.graphs["decode"].size_bytes, manifest.graphs["decode"].size_bytes
    assert decode_after < 0.6 * decode_before  # embeddings stay fp32 in these tiny models


def test_int8_logits_follow_fp32_closely_but_are_not_fp32(int8, step_logits):
    fp32, quantized = int8
    reference, engine = create_engine("onnxruntime", str(fp32)), create_engine("onnxruntime", str(quantized))
    assert engine.precision == "int8" and reference.precision == "fp32"
    for c, p in ((clip(t=2, seed=3), PROMPT), (clip(t=3, size=90, seed=4), Prompt("Did it fall?"))):
        inputs = reference.prepare(c, p)
        want, got = step_logits(reference, inputs), step_logits(engine, inputs)  # the int8 graph's step
        error = float((got - want).abs().max())
        assert 0 < error <= 0.05 * float(want.max() - want.min())
        assert float(np.corrcoef(got.numpy(), want.numpy())[0, 1]) > 0.999


def test_int8_answers_what_fp32_answers_on_the_shipped_model(engine_cache, monkeypatch):
    """The trained model's answers (not near-tied random logits) survive 8-bit weights."""
    from cosmos_ros.core.answers import parse_answer
    from cosmos_ros.core.prompts import failure_prompt, next_subtask_prompt
    from cosmos_ros.engine.engine_cache import CACHE_ENV

    monkeypatch.setenv(CACHE_ENV, str(engine_cache))  # the fp32 export the Q/DQ tests reuse

    model = "model/cosmos-reason1-tiny"
    fp32 = create_engine("onnxruntime", model)
    quantized = create_engine("onnxruntime", model, precision="int8")
    frames = np.full((8, 112, 112, 3), 90, np.uint8)
    for t in range(8):  # a red block carried to the right
        frames[t, 50:66, 20 + 8 * t : 36 + 8 * t] = (200, 30, 30)
    scene = Clip(frames=frames, stamps=np.arange(8) / 4.0)
    task = "put the red block on the green pad"
    prompts = [
        failure_prompt(task),
        next_subtask_prompt(task, ("grasp the block", "move to the pad", "release")),
    ]
    for prompt in prompts:
        a = fp32.reason(scene, prompt, max_new_tokens=64)
        b = quantized.reason(scene, prompt, max_new_tokens=64)
        assert parse_answer(a.text, prompt.options).choice_index is not None, a.text
        assert (
            parse_answer(b.text, prompt.options).choice_index
            == parse_answer(a.text, prompt.options).choice_index
        )


def test_the_cached_int8_export_is_reused_and_redone_when_the_quantizer_changes(
    exports, tmp_path, monkeypatch
):
    from cosmos_ros.engine import onnx_quantize

    first = ensure_int8_export(exports["tiny-dense"], root=tmp_path)
    stamp = (first / "decode.onnx").stat().st_mtime_ns
    assert ensure_int8_export(exports["tiny-dense"], root=tmp_path) == first
    assert (first / "decode.onnx").stat().st_mtime_ns == stamp
    assert first.name.endswith("-int8") and not list(tmp_path.glob("onnx/*.*"))  # no staging left
    monkeypatch.setattr(onnx_quantize, "quantizer_version", lambda *_: "0badc0de")
    import cosmos_ros.engine.engine_cache as cache

    monkeypatch.setattr(cache, "quantizer_version", lambda *_: "0badc0de")
    again = ensure_int8_export(exports["tiny-dense"], root=tmp_path)
    assert (
        again == first
        and json.loads((again / "manifest.json").read_text())["versions"]["quantizer"] == "0badc0de"
    )


def test_an_int8_export_directory_runs_as_saved_and_refuses_to_pass_for_fp32(int8, tmp_path):
    fp32, quantized = int8
    assert create_engine("onnxruntime", str(quantized)).precision == "int8"
    with pytest.raises(ValueError, match="int8 export; for precision 'fp32' give the fp32 export"):
        create_engine("onnxruntime", str(quantized), precision="fp32")
    with pytest.raises(ValueError, match="already a int8 export"):
        quantize_export(quantized, tmp_path / "twice")
    with pytest.raises(ValueError, match="needs its own directory"):
        quantize_export(fp32, fp32)


def test_precision_is_one_knob_and_a_backend_refuses_what_it_cannot_run():
    with pytest.raises(
        ValueError, match="the torch engine runs precision fp32, bf16, fp16, not 'int8'; int8"
    ):
        create_engine("torch", "tiny-dense", precision="int8")
    with pytest.raises(ValueError, match="onnxruntime engine runs precision fp32, int8, not 'fp16'"):
        create_engine("onnxruntime", "tiny-dense", precision="fp16")
    engine = create_engine("torch", "tiny-dense", precision="bf16")
    assert str(engine.dtype) == "torch.bfloat16"


def test_gemm_rewrite_computes_the_same_function():
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w, bias = rng.standard_normal((8, 5)).astype(np.float32), rng.standard_normal(8).astype(np.float32)
    node = helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="fc", transB=1)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 8])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(bias, "b")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    x = rng.standard_normal((3, 5)).astype(np.float32)

    def run(m):
        return ort.InferenceSession(m.SerializeToString()).run(None, {"x": x})[0]

    want = run(model)
    assert gemm_as_matmul(model) == 1
    assert [n.op_type for n in model.graph.node] == ["MatMul", "Add"]
    assert [i.name for i in model.graph.initializer] == ["b", "fc.weight"]
    np.testing.assert_allclose(run(model), want, rtol=1e-6, atol=1e-6)


def test_a_small_int8_decode_runs_on_one_thread_and_a_large_one_on_all(int8, monkeypatch):
    import cosmos_ros.engine.onnx_engine as onnx_engine

    fp32, quantized = int8

    def threads(export, **kw) -> dict[str, int]:
        engine = onnx_engine.OnnxRuntimeEngine(export, num_threads=2, **kw)
        sessions = engine.runner.backend.sessions
        return {graph: s.get_session_options().intra_op_num_threads for graph, s in sessions.items()}

    assert threads(quantized) == {"vision": 2, "prefill": 2, "decode": 1}  # a few MB of 8-bit weights
    assert threads(fp32) == {"vision": 2, "prefill": 2, "decode": 2}  # fp32's step is bandwidth-bound
    assert threads(quantized, decode_threads=2)["decode"] == 2
    monkeypatch.setattr(onnx_engine, "SMALL_DECODE_BYTES", 1024)  # as if the model were large
    assert threads(quantized)["decode"] == 2

"""The onnxruntime backend keeps the torch backend's contract: same tokens, same text, same stops."""

import json
import shutil

import numpy as np
import pytest

from cosmos_ros.core.types import Clip, Prompt
from cosmos_ros.engine.base import create_engine
from cosmos_ros.engine.manifest import ManifestError, ManifestMismatchError
from cosmos_ros.engine.torch_engine import TorchEngine

pytest.importorskip("onnxruntime")

PROMPT = Prompt("What should the robot do next? Answer in <think></think><answer></answer>.")


def make_clip(t=2, size=64, seed=0):
    frames = np.random.default_rng(seed).integers(0, 256, (t, size, size, 3), dtype=np.uint8)
    return Clip(frames=frames, stamps=np.arange(t) / 4.0, cameras=("front",))


@pytest.fixture(scope="module", params=["tiny-dense", "tiny-hybrid", "cosmos-reason2-tiny"])
def pair(request, exports):
    """(onnxruntime engine on the preset's export, torch engine of the same preset)."""
    return create_engine("onnxruntime", str(exports[request.param])), TorchEngine(request.param)


def test_an_export_directory_gives_an_engine_of_the_same_model(pair):
    ort_engine, torch_engine = pair
    assert ort_engine.model_id == torch_engine.model_id and ort_engine.family == torch_engine.family
    assert ort_engine.providers == ["CPUExecutionProvider"]


def test_prefill_logits_match_torch_within_1e_4(pair):
    ort_engine, torch_engine = pair
    for clip, prompt in ((make_clip(t=2, seed=4), PROMPT), (make_clip(t=1, seed=5), Prompt("Did it fall?"))):
        inputs = torch_engine.prepare(clip, prompt)
        logits, _ = ort_engine._prefill([inputs], cache=None, logits_to_keep=1)
        expected = torch_engine.inputs_logits(inputs)[-1]
        assert (logits[0, -1] - expected).abs().max() <= 1e-4


@pytest.mark.parametrize("frames,seed", [(3, 0), (1, 1)])
def test_greedy_generation_is_token_identical_to_torch(pair, frames, seed):
    ort_engine, torch_engine = pair
    inputs = torch_engine.prepare(make_clip(t=frames, seed=seed), PROMPT)
    a = ort_engine.generate(inputs, max_new_tokens=20, ignore_stop_tokens=True)
    b = torch_engine.generate(inputs, max_new_tokens=20, ignore_stop_tokens=True)
    assert a.token_ids == b.token_ids
    assert a.token_probs == pytest.approx(b.token_probs, abs=1e-4)


def test_a_left_padded_batch_gives_the_torch_batch(pair):
    ort_engine, torch_engine = pair
    clips, prompts = (
        [make_clip(t=2, seed=0), make_clip(t=3, size=90, seed=1)],
        [PROMPT, Prompt("Did it fall?")],
    )
    ours = ort_engine.reason_batch(clips, prompts, max_new_tokens=10)
    theirs = torch_engine.reason_batch(clips, prompts, max_new_tokens=10)
    assert [r.text for r in ours] == [r.text for r in theirs]


def test_streaming_and_stop_strings_behave_as_in_torch(pair):
    ort_engine, torch_engine = pair
    full = torch_engine.reason(make_clip(), PROMPT, max_new_tokens=12)
    stop = full.text[4:7]
    deltas = []
    ours = ort_engine.reason(make_clip(), PROMPT, max_new_tokens=12, stop=(stop,), on_token=deltas.append)
    theirs = torch_engine.reason(make_clip(), PROMPT, max_new_tokens=12, stop=(stop,))
    assert (ours.text, ours.finish_reason, ours.num_generated_tokens) == (
        theirs.text, theirs.finish_reason, theirs.num_generated_tokens)  # fmt: skip
    assert "".join(deltas) == ours.text


def test_a_seeded_sampled_call_samples_what_torch_samples(pair):
    ort_engine, torch_engine = pair
    kwargs = {"max_new_tokens": 12, "temperature": 1.0, "top_p": 0.9, "seed": 7}
    assert (
        ort_engine.reason(make_clip(), PROMPT, **kwargs).text
        == torch_engine.reason(make_clip(), PROMPT, **kwargs).text
    )


def test_yes_no_score_matches_torch(pair):
    ort_engine, torch_engine = pair
    prompt = Prompt("Did the robot drop the cube? Answer yes or no.")
    assert ort_engine.score_yes_no(make_clip(), prompt) == pytest.approx(
        torch_engine.score_yes_no(make_clip(), prompt), abs=1e-5
    )


def test_logits_at_every_position_are_refused_with_the_reason(pair):
    ort_engine, torch_engine = pair
    with pytest.raises(NotImplementedError, match="last position"):
        ort_engine._prefill([torch_engine.prepare(make_clip(), PROMPT)], cache=None, logits_to_keep=0)


def test_a_preset_is_exported_into_the_cache_once_and_reused(exports, engine_cache, monkeypatch):
    from cosmos_ros.engine import onnx_export

    monkeypatch.setattr(onnx_export, "export_model", lambda *a, **k: pytest.fail("exported again"))
    engine = create_engine("onnxruntime", "tiny-dense", cache_dir=engine_cache)
    assert engine.export_dir == exports["tiny-dense"]


def test_renamed_graph_inputs_are_a_manifest_mismatch(exports, tmp_path):
    copy = shutil.copytree(exports["tiny-dense"], tmp_path / "export")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["graphs"]["decode"]["inputs"][0]["name"] = "token_ids"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestMismatchError, match=r"decode graph does not match.*token_ids"):
        create_engine("onnxruntime", str(copy))


def test_a_manifest_of_another_format_asks_for_a_new_export(exports, tmp_path):
    copy = shutil.copytree(exports["tiny-dense"], tmp_path / "export")
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**manifest, "format_version": 0}))
    with pytest.raises(ManifestError, match="re-export"):
        create_engine("onnxruntime", str(copy))


def test_cuda_without_the_cuda_provider_names_the_package(exports):
    import onnxruntime as ort

    from cosmos_ros.engine.base import EngineUnavailableError

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    with pytest.raises(EngineUnavailableError, match="onnxruntime-gpu"):
        create_engine("onnxruntime", str(exports["tiny-dense"]), device="cuda")


def test_closed_engine_refuses_work(exports):
    engine = create_engine("onnxruntime", str(exports["tiny-dense"]))
    engine.close()
    with pytest.raises(RuntimeError, match="closed"):
        engine.reason(make_clip(), PROMPT, max_new_tokens=1)

"""The torch engine on both tiny random-init presets (dense and hybrid): the contract every backend keeps."""

import json
import math
import threading

import numpy as np
import pytest
import torch

from cosmos_ros.core.types import Clip, Prompt, Reasoning
from cosmos_ros.engine.base import create_engine
from cosmos_ros.engine.torch_engine import TorchEngine
from cosmos_ros.model.checkpoint import create_tiny_checkpoint

PROMPT = Prompt("What should the robot do next? Answer in <think></think><answer></answer>.")


def make_clip(t=4, size=64, seed=0):
    frames = np.random.default_rng(seed).integers(0, 256, (t, size, size, 3), dtype=np.uint8)
    return Clip(frames=frames, stamps=np.arange(t) / 4.0, cameras=("front",))


@pytest.fixture(scope="module", params=["tiny-dense", "tiny-hybrid"])
def engine(request):
    return create_engine("torch", request.param, seed=0)


def test_reason_returns_filled_reasoning(engine):
    r = engine.reason(make_clip(), PROMPT, max_new_tokens=8)
    assert isinstance(r, Reasoning)
    assert r.num_prompt_tokens > 16 and r.num_generated_tokens == 8
    assert r.model_id == engine.model_id and r.model_id.startswith(f"tiny-{engine.family}@")
    assert r.latency_s > 0
    assert len(r.token_probs) == 8 and all(0 < p <= 1 for p in r.token_probs)
    assert set(r.stages) == {"preprocess", "prefill", "decode"} and all(t > 0 for t in r.stages.values())
    assert sum(r.stages.values()) <= r.latency_s


def test_random_model_output_has_no_answer_so_confidence_is_nan(engine):
    r = engine.reason(make_clip(), PROMPT, max_new_tokens=8)
    assert "<answer>" not in r.text and math.isnan(r.confidence)


def test_greedy_reasoning_is_deterministic(engine):
    a = engine.reason(make_clip(), PROMPT, max_new_tokens=16)
    b = engine.reason(make_clip(), PROMPT, max_new_tokens=16)
    assert (a.text, a.token_probs) == (b.text, b.token_probs)


def test_streamed_deltas_concatenate_to_the_text(engine):
    deltas = []
    r = engine.reason(make_clip(), PROMPT, max_new_tokens=24, on_token=deltas.append)
    assert deltas and all(deltas)
    assert "".join(deltas) == r.text


def test_text_is_the_tokenizer_decode_of_the_generated_tokens(engine):
    inputs = engine.prepare(make_clip(), PROMPT)
    gen = engine.generate(inputs, max_new_tokens=24)
    r = engine.reason(make_clip(), PROMPT, max_new_tokens=24)
    assert r.text == engine.tokenizer.decode(gen.token_ids, skip_special_tokens=True)


@pytest.mark.parametrize("max_new_tokens", [0, 1, 5])
def test_max_new_tokens_is_respected(engine, max_new_tokens):
    r = engine.reason(make_clip(), PROMPT, max_new_tokens=max_new_tokens)
    assert r.num_generated_tokens == max_new_tokens
    assert r.finish_reason == "length"


def test_stop_token_ends_generation_with_stop_reason(engine, monkeypatch):
    first = engine.generate(engine.prepare(make_clip(), PROMPT), max_new_tokens=3).token_ids
    monkeypatch.setattr(engine, "stop_token_ids", frozenset({first[1]}))
    r = engine.reason(make_clip(), PROMPT, max_new_tokens=16)
    assert r.finish_reason == "stop"
    assert r.num_generated_tokens == 2 and len(r.token_probs) == 1


def test_prompt_logits_match_running_the_transformers_model_directly(engine):
    clip = make_clip()
    inputs = engine.prepare(clip, PROMPT)
    with torch.inference_mode():
        direct = engine.model(**inputs.model_kwargs()).logits[0]
    assert torch.allclose(engine.prompt_logits(clip, PROMPT), direct, atol=1e-5)


def test_greedy_tokens_match_transformers_generate(engine):
    inputs = engine.prepare(make_clip(), PROMPT)
    with torch.inference_mode():
        reference = engine.model.generate(
            **inputs.model_kwargs(), max_new_tokens=20, do_sample=False, pad_token_id=engine.pad_token_id
        )
    ours = engine.generate(inputs, max_new_tokens=20).token_ids
    assert ours == reference[0, inputs.num_prompt_tokens :].tolist()[: len(ours)]


def test_tiny_dense_logits_match_transformers_qwen2_5_vl_built_from_the_same_weights():
    """Parity on identical weights and inputs, through an independently constructed
    `Qwen2_5_VLForConditionalGeneration` (its own config from config.json, its own positions)."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    engine = TorchEngine("tiny-dense")
    config = Qwen2_5_VLConfig.from_dict(engine.model.config.to_dict())
    reference = Qwen2_5_VLForConditionalGeneration(config).eval()
    reference.load_state_dict(engine.model.state_dict())
    clip = make_clip(t=6, size=100)
    inputs = engine.prepare(clip, PROMPT)
    with torch.inference_mode():
        expected = reference(**inputs.model_kwargs()).logits[0]
    assert (engine.prompt_logits(clip, PROMPT) - expected).abs().max() <= 1e-4


def test_the_video_changes_the_answer_distribution(engine):
    a = engine.prompt_logits(make_clip(seed=0), PROMPT)[-1]
    b = engine.prompt_logits(make_clip(seed=1), PROMPT)[-1]
    assert not torch.allclose(a, b)


def test_sampling_is_reproducible_for_the_same_engine_seed():
    a = TorchEngine("tiny-dense", seed=5).reason(make_clip(), PROMPT, max_new_tokens=16, temperature=1.0)
    b = TorchEngine("tiny-dense", seed=5).reason(make_clip(), PROMPT, max_new_tokens=16, temperature=1.0)
    assert a.text == b.text


def test_negative_arguments_are_refused(engine):
    with pytest.raises(ValueError, match="max_new_tokens"):
        engine.reason(make_clip(), PROMPT, max_new_tokens=-1)
    with pytest.raises(ValueError, match="temperature"):
        engine.reason(make_clip(), PROMPT, temperature=-0.5)


def test_concurrent_calls_give_the_serial_results(engine):
    clips = [make_clip(seed=s) for s in range(3)]
    serial = [engine.reason(c, PROMPT, max_new_tokens=8).text for c in clips]
    results = [None] * 3

    def work(i):
        results[i] = engine.reason(clips[i], PROMPT, max_new_tokens=8).text

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == serial


def test_checkpoint_directory_engine_matches_the_preset_engine(engine, tmp_path):
    name = f"tiny-{engine.family}"
    path = create_tiny_checkpoint(tmp_path / name, seed=0, preset=name)
    from_dir = create_engine("torch", str(path))
    assert from_dir.model_id.startswith(f"{name}@") and from_dir.family == engine.family
    a = from_dir.reason(make_clip(), PROMPT, max_new_tokens=16)
    b = engine.reason(make_clip(), PROMPT, max_new_tokens=16)
    assert a.text == b.text


def test_closed_engine_refuses_work():
    engine = TorchEngine("tiny-dense")
    engine.close()
    with pytest.raises(RuntimeError, match="closed"):
        engine.reason(make_clip(), PROMPT, max_new_tokens=1)


def test_a_checkpoints_generation_config_is_the_default_and_a_callers_value_wins(tmp_path):
    path = create_tiny_checkpoint(tmp_path / "tiny-dense", seed=0)
    reference = TorchEngine(path)
    assert reference.generation_defaults["temperature"] == 0.0  # transformers' default: greedy
    config = {
        "do_sample": True,
        "temperature": 0.8,
        "top_p": 0.9,
        "max_new_tokens": 6,
        "eos_token_id": [7, 9],
    }
    (path / "generation_config.json").write_text(json.dumps(config))
    engine = TorchEngine(path)
    assert {7, 9} <= engine.stop_token_ids
    clip = make_clip()
    sampled = engine.reason(clip, PROMPT, seed=5)
    explicit = reference.reason(clip, PROMPT, max_new_tokens=6, temperature=0.8, top_p=0.9, seed=5)
    assert sampled.num_generated_tokens <= 6 and sampled.text == explicit.text
    greedy = engine.reason(clip, PROMPT, temperature=0.0, max_new_tokens=12)  # the node passes its own
    assert greedy.text == reference.reason(clip, PROMPT, max_new_tokens=12).text


def test_generation_defaults_are_read_as_transformers_reads_them(tmp_path):
    from cosmos_ros.model.bundle import read_generation_defaults, write_generation_defaults

    qwen = {
        "do_sample": True,
        "top_k": 1,
        "top_p": 0.001,
        "temperature": 0.1,
        "eos_token_id": [151645, 151643],
        "repetition_penalty": 1.05,
    }  # Qwen2.5-VL-7B-Instruct's: top_k 1 is greedy
    (tmp_path / "generation_config.json").write_text(json.dumps(qwen))
    assert read_generation_defaults(tmp_path) == {"temperature": 0.0, "eos_token_id": [151645, 151643]}
    write_generation_defaults(tmp_path, {"temperature": 0.7, "top_p": 0.95, "max_new_tokens": 512})
    assert read_generation_defaults(tmp_path) == {"temperature": 0.7, "top_p": 0.95, "max_new_tokens": 512}
    assert read_generation_defaults(tmp_path / "absent") == {}
    (tmp_path / "generation_config.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a generation config"):
        read_generation_defaults(tmp_path)

"""Generation features of the torch engine, for both families: KV/SSM cache, batches, top-p and
seeds, stop strings, the single-forward yes/no score, dtype and the Mamba kernel switch."""

import dataclasses

import numpy as np
import pytest
import torch

from cosmos_ros.core.types import Clip, Prompt
from cosmos_ros.engine.sampling import choose_tokens, top_p_filter
from cosmos_ros.engine.torch_engine import TorchEngine
from cosmos_ros.model.mamba_kernels import MambaKernelsUnavailable, missing_packages

PROMPT = Prompt("What should the robot do next? Answer in <think></think><answer></answer>.")
FAILURE = Prompt("Did the robot drop the cube? Answer yes or no.")


def make_clip(t=2, size=64, seed=0):
    frames = np.random.default_rng(seed).integers(0, 256, (t, size, size, 3), dtype=np.uint8)
    return Clip(frames=frames, stamps=np.arange(t) / 4.0, cameras=("front",))


@pytest.fixture(scope="module", params=["tiny-dense", "tiny-hybrid", "cosmos-reason2-tiny"])
def engine(request):
    return TorchEngine(request.param, seed=0)


def extended(inputs, token_ids):
    """The prompt inputs followed by already generated tokens (text tokens)."""
    new = torch.tensor([token_ids], dtype=torch.long)
    fields = {"input_ids": torch.cat([inputs.input_ids, new], 1)}
    fields["attention_mask"] = torch.ones_like(fields["input_ids"])
    if hasattr(inputs, "mm_token_type_ids"):
        fields["mm_token_type_ids"] = torch.cat(
            [inputs.mm_token_type_ids, torch.zeros_like(new, dtype=torch.int32)], 1
        )
    return dataclasses.replace(inputs, **fields)


def test_greedy_with_cache_equals_greedy_without_cache(engine):
    inputs = engine.prepare(make_clip(t=1), PROMPT)
    cached = engine.generate(inputs, max_new_tokens=10, ignore_stop_tokens=True).token_ids
    uncached = []
    for _ in range(10):
        uncached.append(int(engine.inputs_logits(extended(inputs, uncached))[-1].argmax()))
    assert cached == uncached


def test_a_batch_gives_the_one_by_one_greedy_results(engine):
    clips = [
        make_clip(t=2, size=64, seed=0),
        make_clip(t=3, size=90, seed=1),
        make_clip(t=1, size=50, seed=2),
    ]
    prompts = [PROMPT, Prompt("Did it fall?"), Prompt("Which object moved first, the red cube or the ball?")]
    batch = engine.reason_batch(clips, prompts, max_new_tokens=10)
    for clip, prompt, together in zip(clips, prompts, batch):
        alone = engine.reason(clip, prompt, max_new_tokens=10)
        assert (together.text, together.finish_reason) == (alone.text, alone.finish_reason)
        assert together.num_prompt_tokens == alone.num_prompt_tokens
        assert together.token_probs == pytest.approx(alone.token_probs, abs=1e-4)


def test_a_batch_streams_each_rows_text_by_row(engine):
    deltas = {0: [], 1: []}
    results = engine.reason_batch(
        [make_clip(seed=0), make_clip(seed=1)], [PROMPT, FAILURE], max_new_tokens=8,
        on_token=lambda row, delta: deltas[row].append(delta),
    )  # fmt: skip
    assert ["".join(deltas[i]) for i in (0, 1)] == [r.text for r in results]


def test_a_batch_needs_one_prompt_per_clip(engine):
    with pytest.raises(ValueError, match="one prompt per clip"):
        engine.reason_batch([make_clip()], [PROMPT, PROMPT])


def test_a_stop_string_ends_the_text_after_it_and_streams_no_further(engine):
    full = engine.reason(make_clip(), PROMPT, max_new_tokens=12)
    stop = full.text[4:7]
    assert stop and stop not in full.text[:6]
    deltas = []
    stopped = engine.reason(
        make_clip(), PROMPT, max_new_tokens=12, stop=("never appears", stop), on_token=deltas.append
    )
    assert stopped.text == full.text[: full.text.index(stop) + len(stop)]
    assert stopped.finish_reason == "stop" and stopped.num_generated_tokens < 12
    assert "".join(deltas) == stopped.text


def test_stop_must_be_a_sequence_of_strings(engine):
    with pytest.raises(ValueError, match="sequence of non-empty strings"):
        engine.reason(make_clip(), PROMPT, max_new_tokens=2, stop="</answer>")


def test_a_seed_makes_a_sampled_call_reproducible(engine):
    kwargs = {"max_new_tokens": 12, "temperature": 1.0, "top_p": 0.9}
    a = engine.reason(make_clip(), PROMPT, seed=7, **kwargs)
    b = engine.reason(make_clip(), PROMPT, seed=7, **kwargs)
    c = engine.reason(make_clip(), PROMPT, seed=8, **kwargs)
    assert a.text == b.text and a.token_probs == b.token_probs
    assert c.text != a.text


def test_a_tiny_top_p_samples_the_greedy_tokens(engine):
    greedy = engine.reason(make_clip(), PROMPT, max_new_tokens=8)
    nucleus = engine.reason(make_clip(), PROMPT, max_new_tokens=8, temperature=1.0, top_p=1e-6, seed=3)
    assert nucleus.text == greedy.text


def test_top_p_outside_zero_to_one_is_refused(engine):
    with pytest.raises(ValueError, match="top_p"):
        engine.reason(make_clip(), PROMPT, temperature=1.0, top_p=0.0)


def test_yes_no_score_is_a_probability_from_one_forward_over_the_prompt(engine):
    clip = make_clip()
    score = engine.score_yes_no(clip, FAILURE)
    assert 0.0 <= score <= 1.0
    last = engine.prompt_logits(clip, FAILURE)[-1]
    yes, no = (engine.tokenizer.encode(w, add_special_tokens=False)[0] for w in ("Yes", "No"))
    assert score == pytest.approx(torch.softmax(last[[yes, no]], 0)[0].item(), abs=1e-6)


def test_yes_no_score_follows_the_assistant_prefix_and_the_clip(engine):
    base = engine.score_yes_no(make_clip(seed=0), FAILURE)
    assert engine.score_yes_no(make_clip(seed=0), FAILURE, assistant_prefix="<answer>\n") != base
    assert engine.score_yes_no(make_clip(seed=1), FAILURE) != base


def test_yes_no_words_must_differ_in_their_first_token(engine):
    with pytest.raises(ValueError, match="same token"):
        engine.score_yes_no(make_clip(), FAILURE, yes="Yes", no="Yes please")


@pytest.mark.parametrize("preset", ["tiny-dense", "tiny-hybrid"])
def test_a_bf16_engine_keeps_its_dtype_and_answers(preset):
    engine = TorchEngine(preset, dtype="bf16")
    assert {p.dtype for p in engine.model.parameters()} == {torch.bfloat16}
    assert engine.reason(make_clip(t=1), PROMPT, max_new_tokens=3).num_generated_tokens == 3


@pytest.mark.skipif(not missing_packages(), reason="mamba-ssm and causal-conv1d are installed here")
def test_forcing_mamba_kernels_without_them_is_a_clear_error():
    with pytest.raises(MambaKernelsUnavailable, match="pip install mamba-ssm causal-conv1d"):
        TorchEngine("tiny-hybrid", use_mamba_kernels=True)


def test_the_dense_family_has_no_mamba_kernels_to_force():
    with pytest.raises(ValueError, match="no Mamba layers"):
        TorchEngine("tiny-dense", use_mamba_kernels=True)


def test_top_p_keeps_the_smallest_set_reaching_the_mass_and_renormalizes():
    probs = torch.tensor([[0.1, 0.5, 0.15, 0.25]])
    assert top_p_filter(probs, 0.7)[0].tolist() == pytest.approx([0.0, 0.5 / 0.75, 0.0, 0.25 / 0.75])
    assert top_p_filter(probs, 0.5)[0].tolist() == pytest.approx([0.0, 1.0, 0.0, 0.0])
    assert top_p_filter(probs, 1.0)[0].tolist() == pytest.approx(probs[0].tolist())


def test_chosen_token_probability_is_the_models_own_whatever_the_sampling():
    logits = torch.tensor([[2.0, 1.0, 0.0]])
    tokens, probs = choose_tokens(
        logits, temperature=0.5, top_p=0.5, generator=torch.Generator().manual_seed(0)
    )
    assert tokens.tolist() == [0]
    assert probs.item() == pytest.approx(torch.softmax(logits, -1)[0, 0].item())


def test_stop_ids_take_each_eos_as_an_id_a_list_or_none():
    from types import SimpleNamespace

    from cosmos_ros.engine.generation import STOP_TOKENS, stop_token_ids

    known = {token: 100 + i for i, token in enumerate(STOP_TOKENS)}
    tokenizer = SimpleNamespace(convert_tokens_to_ids=known.get, eos_token_id=3, unk_token_id=0)
    # config.json's id, generation_config.json's list, a missing one, and the unknown-token id
    assert stop_token_ids(tokenizer, 5, [7, 8, 0], None) == {3, 5, 7, 8, *known.values()}
    assert stop_token_ids(tokenizer) == {3, *known.values()}

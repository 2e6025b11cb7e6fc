"""Model presets: the real 7B numbers, a tiny same-architecture model, configs transformers accepts."""

import dataclasses

import pytest

from cosmos_ros.model.config import PRESETS, TextConfig, get_preset, model_info
from cosmos_ros.model.tokenizer import build_tiny_tokenizer


def test_cosmos_reason1_7b_has_the_published_parameter_count():
    info = model_info("cosmos-reason1-7b")
    assert info["parameters"] == 8_292_166_656  # Qwen2.5-VL-7B / Cosmos-Reason1-7B, untied head
    assert info["build_s"] < 10


def test_cosmos_reason1_7b_config_carries_the_checkpoint_numbers():
    cfg = get_preset("cosmos-reason1-7b").to_hf_config()
    t, v = cfg.text_config, cfg.vision_config
    assert (t.hidden_size, t.num_hidden_layers, t.num_attention_heads, t.num_key_value_heads) == (
        3584,
        28,
        28,
        4,
    )
    assert (t.intermediate_size, t.vocab_size, cfg.tie_word_embeddings) == (18944, 152064, False)
    assert (v.depth, v.hidden_size, v.num_heads, v.patch_size) == (32, 1280, 16, 14)
    assert (v.temporal_patch_size, v.spatial_merge_size, v.window_size) == (2, 2, 112)
    assert list(v.fullatt_block_indexes) == [7, 15, 23, 31]
    assert (cfg.video_token_id, cfg.vision_start_token_id) == (151656, 151652)


def test_tiny_dense_is_a_few_million_parameters():
    assert 1_000_000 < model_info("tiny-dense")["parameters"] < 10_000_000


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_vision_output_width_matches_the_language_model(name):
    cfg = get_preset(name).to_hf_config()
    assert cfg.vision_config.out_hidden_size == cfg.text_config.hidden_size


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_mrope_sections_cover_half_the_head_dim(name):
    preset = get_preset(name)
    rope = preset.to_hf_config().text_config.rope_parameters
    assert sum(rope["mrope_section"]) * 2 == preset.text.head_dim


def test_tiny_token_ids_match_the_offline_tokenizer():
    cfg = get_preset("tiny-dense").to_hf_config()
    tok = build_tiny_tokenizer()
    assert cfg.video_token_id == tok.convert_tokens_to_ids("<|video_pad|>")
    assert cfg.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert cfg.vision_start_token_id == tok.convert_tokens_to_ids("<|vision_start|>")
    assert cfg.text_config.eos_token_id == tok.eos_token_id
    assert len(tok) <= cfg.text_config.vocab_size


def test_a_preset_with_a_wrong_mrope_section_is_refused():
    tiny = get_preset("tiny-dense")
    bad_text = dataclasses.replace(tiny.text, mrope_section=(4, 4, 4))
    with pytest.raises(ValueError, match="mrope_section"):
        dataclasses.replace(tiny, text=bad_text)


def test_unknown_preset_names_the_known_ones():
    with pytest.raises(KeyError, match="tiny-dense"):
        get_preset("gpt-5")


def test_head_dim_is_hidden_over_heads():
    assert (
        TextConfig(
            hidden_size=128, num_layers=1, num_heads=4, num_kv_heads=2, intermediate_size=8, vocab_size=8
        ).head_dim
        == 32
    )

"""Model presets: the real 7B and 56B numbers, tiny same-architecture models, configs transformers accepts."""

import dataclasses

import pytest

from cosmos_ros.model.config import PRESETS, TextConfig, get_preset, model_info
from cosmos_ros.model.tokenizer import build_tiny_tokenizer

DENSE = sorted(n for n, p in PRESETS.items() if p.family == "dense")
HYBRID = sorted(n for n, p in PRESETS.items() if p.family == "hybrid")


def test_both_families_have_a_full_and_a_tiny_preset():
    assert DENSE == ["cosmos-reason1-7b", "tiny-dense"]
    assert HYBRID == ["cosmos-reason1-56b", "tiny-hybrid"]


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


@pytest.mark.parametrize("name", DENSE)
def test_vision_output_width_matches_the_language_model(name):
    cfg = get_preset(name).to_hf_config()
    assert cfg.vision_config.out_hidden_size == cfg.text_config.hidden_size


@pytest.mark.parametrize("name", DENSE)
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


def test_cosmos_reason1_56b_is_about_56b_parameters():
    info = model_info("cosmos-reason1-56b")
    assert 55.5e9 < info["parameters"] < 57.5e9
    assert 0.29e9 < info["vision_parameters"] < 0.31e9  # InternViT-300M
    assert info["projector_parameters"] == (4096 * 2 + 4096 * 8192 + 8192) + (8192 * 8192 + 8192)
    assert info["build_s"] < 30


def test_cosmos_reason1_56b_llm_is_118_layers_mostly_mamba():
    preset = get_preset("cosmos-reason1-56b")
    assert preset.text.num_layers == 118
    assert preset.text.layer_counts() == {"mamba": 54, "mlp": 54, "attention": 10}
    t = preset.to_hf_config().text_config
    assert t.model_type == "nemotron_h"
    assert t.layers_block_type.count("linear_attention") == 54 and len(t.layers_block_type) == 118
    assert (t.hidden_size, t.intermediate_size, t.num_attention_heads, t.num_key_value_heads) == (
        8192,
        32768,
        64,
        8,
    )
    assert (t.mamba_num_heads, t.mamba_head_dim, t.ssm_state_size, t.vocab_size) == (256, 64, 256, 131072)


def test_cosmos_reason1_56b_vision_is_internvit_300m_at_448():
    cfg = get_preset("cosmos-reason1-56b").to_hf_config()
    v = cfg.vision_config
    assert (v.num_hidden_layers, v.hidden_size, v.num_attention_heads) == (24, 1024, 16)
    assert tuple(v.image_size) == (448, 448) and tuple(v.patch_size) == (14, 14)
    assert (cfg.downsample_ratio, cfg.image_seq_length, cfg.tie_word_embeddings) == (0.5, 256, False)


@pytest.mark.parametrize("name", HYBRID)
def test_hybrid_presets_give_256_tokens_per_448_frame(name):
    assert get_preset(name).tokens_per_frame == 256


def test_tiny_hybrid_is_a_few_million_parameters_with_every_layer_kind():
    info = model_info("tiny-hybrid")
    assert 1_000_000 < info["parameters"] < 10_000_000
    assert all(n > 0 for n in info["text_layer_counts"].values())


def test_tiny_hybrid_token_ids_match_the_offline_tokenizer():
    preset = get_preset("tiny-hybrid")
    tok = build_tiny_tokenizer(family="hybrid")
    ids = preset.token_ids
    assert ids["image_token_id"] == tok.convert_tokens_to_ids("<IMG_CONTEXT>") == tok.context_image_token_id
    assert ids["image_start_token_id"] == tok.convert_tokens_to_ids("<img>")
    assert ids["image_end_token_id"] == tok.convert_tokens_to_ids("</img>")
    assert ids["video_token_id"] == tok.convert_tokens_to_ids("<video>")
    assert (ids["eos_token_id"], ids["pad_token_id"]) == (tok.eos_token_id, tok.pad_token_id)
    assert len(tok) <= preset.text.vocab_size


def test_a_hybrid_layer_pattern_with_an_unknown_letter_is_refused():
    tiny = get_preset("tiny-hybrid")
    with pytest.raises(ValueError, match="M \\(Mamba-2\\)"):
        dataclasses.replace(tiny, text=dataclasses.replace(tiny.text, layers="M-E*"))


def test_model_info_names_the_family():
    assert model_info("tiny-dense")["family"] == "dense"
    assert model_info("tiny-hybrid")["family"] == "hybrid"

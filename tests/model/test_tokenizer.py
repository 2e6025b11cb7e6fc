"""The offline tiny tokenizer: Qwen2.5-VL special tokens, ChatML template, save/load round trip."""

import pytest
from transformers import AutoTokenizer

from cosmos_ros.model.tokenizer import (
    INTERNVL_SPECIAL_TOKENS,
    QWEN_SPECIAL_TOKENS,
    build_tiny_tokenizer,
    load_tokenizer,
)


@pytest.fixture(scope="module")
def tokenizer():
    return build_tiny_tokenizer()


def test_vocabulary_is_a_few_thousand_tokens(tokenizer):
    assert 1000 <= len(tokenizer) <= 4096


def test_build_is_deterministic(tokenizer):
    assert build_tiny_tokenizer().get_vocab() == tokenizer.get_vocab()


def test_special_tokens_sit_at_qwen_order_ids(tokenizer):
    # tiny id == Qwen2.5-VL id - 151643, so configs translate one to one
    assert tokenizer.convert_tokens_to_ids(list(QWEN_SPECIAL_TOKENS)) == list(range(len(QWEN_SPECIAL_TOKENS)))


@pytest.mark.parametrize("token", QWEN_SPECIAL_TOKENS)
def test_special_token_encodes_as_one_token(tokenizer, token):
    ids = tokenizer.encode(f"a{token}b", add_special_tokens=False)
    assert tokenizer.convert_tokens_to_ids(token) in ids
    assert tokenizer.decode(ids) == f"a{token}b"


def test_eos_is_im_end_and_pad_is_endoftext(tokenizer):
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.pad_token == "<|endoftext|>"


def test_any_unicode_text_round_trips(tokenizer):
    text = "The gripper släpper the cube — 日本 🤖\n<think>\nx\n</think>\n\n<answer>\nB\n</answer>"
    assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text


def test_chat_template_puts_video_before_text_and_opens_assistant_turn(tokenizer):
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What next?"}]},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>What next?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_save_then_auto_tokenizer_load_round_trips(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path, local_files_only=True)
    text = "<|im_start|>user\n<|vision_start|><|video_pad|><|video_pad|><|vision_end|>Did it fall?<|im_end|>"
    assert loaded.encode(text) == tokenizer.encode(text)
    assert loaded.chat_template == tokenizer.chat_template
    assert loaded.convert_tokens_to_ids(list(QWEN_SPECIAL_TOKENS)) == list(range(len(QWEN_SPECIAL_TOKENS)))
    assert (loaded.eos_token, loaded.pad_token) == ("<|im_end|>", "<|endoftext|>")


def test_load_tokenizer_reads_a_saved_directory(tokenizer, tmp_path):
    tokenizer.save_pretrained(tmp_path)
    assert load_tokenizer(tmp_path).get_vocab() == tokenizer.get_vocab()


def test_load_tokenizer_names_a_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_tokenizer(tmp_path / "nope")


def test_load_tokenizer_names_a_directory_without_tokenizer_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no tokenizer"):
        load_tokenizer(tmp_path)


@pytest.fixture(scope="module")
def hybrid_tokenizer():
    return build_tiny_tokenizer(family="hybrid")


def test_hybrid_variant_appends_internvl_frame_tokens_and_keeps_the_dense_ids(tokenizer, hybrid_tokenizer):
    assert [hybrid_tokenizer.convert_tokens_to_ids(t) for t in INTERNVL_SPECIAL_TOKENS.values()] == [
        4096,
        4097,
        4098,
        4099,
    ]
    text = "<|im_start|>user\nThe gripper drops the cube.<|im_end|>"
    assert hybrid_tokenizer.encode(text) == tokenizer.encode(text)


def test_hybrid_variant_names_its_frame_tokens_like_internvl_tokenizers(hybrid_tokenizer):
    assert (hybrid_tokenizer.start_image_token, hybrid_tokenizer.end_image_token) == ("<img>", "</img>")
    assert (hybrid_tokenizer.context_image_token, hybrid_tokenizer.video_token) == (
        "<IMG_CONTEXT>",
        "<video>",
    )


def test_hybrid_chat_template_puts_a_video_placeholder_line_before_the_text(hybrid_tokenizer):
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What next?"}]}]
    text = hybrid_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<video>\nWhat next?<|im_end|>\n<|im_start|>assistant\n"
    )


def test_hybrid_tokenizer_round_trips_with_its_frame_token_names(hybrid_tokenizer, tmp_path):
    hybrid_tokenizer.save_pretrained(tmp_path)
    loaded = load_tokenizer(tmp_path, family="hybrid")
    assert loaded.get_vocab() == hybrid_tokenizer.get_vocab()
    assert loaded.context_image_token_id == 4098 and loaded.chat_template == hybrid_tokenizer.chat_template


def test_an_unknown_family_is_refused():
    with pytest.raises(ValueError, match="family"):
        build_tiny_tokenizer(family="moe")

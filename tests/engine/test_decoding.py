"""Streaming detokenization and the answer-confidence rule, independent of any backend."""

import math

import pytest

from cosmos_ros.engine.decoding import (
    IncrementalDecoder,
    StopStrings,
    TextStream,
    answer_confidence,
    answer_span,
)
from cosmos_ros.model.tokenizer import build_tiny_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return build_tiny_tokenizer()


def stream(tokenizer, text):
    decoder = IncrementalDecoder(tokenizer)
    deltas = [decoder.push(t) for t in tokenizer.encode(text, add_special_tokens=False)]
    deltas.append(decoder.flush())
    return decoder, [d for d in deltas if d]


def test_answer_confidence_is_the_geometric_mean_over_answer_tokens():
    text = "<think>\nok\n</think>\n\n<answer>\nAB\n</answer>"
    a = text.index("AB")
    spans = [(0, a - 1), (a - 1, a), (a, a + 1), (a + 1, a + 2), (a + 2, len(text))]
    probs = [0.1, 0.2, 0.5, 0.8, 0.3]  # only "A" and "B" lie in the answer content
    assert answer_confidence(text, spans, probs) == pytest.approx(math.sqrt(0.5 * 0.8))


def test_a_token_straddling_the_answer_border_counts():
    text = "<answer>yes</answer>"
    spans = [(0, 9), (9, len(text))]  # "<answer>y" then "es</answer>"
    assert answer_confidence(text, spans, [0.25, 1.0]) == pytest.approx(0.5)


@pytest.mark.parametrize("text", ["no tags", "<answer>\nA", "<answer>  \n</answer>", "A</answer>"])
def test_confidence_is_nan_without_a_closed_nonblank_answer(text):
    assert math.isnan(answer_confidence(text, [(0, len(text))], [0.9]))


def test_the_last_answer_span_is_scored():
    text = "<answer>A</answer> then <answer>B</answer>"
    b = text.rindex("B")
    assert answer_span(text) == (b, b + 1)
    spans = [(0, b), (b, b + 1), (b + 1, len(text))]
    assert answer_confidence(text, spans, [0.1, 0.7, 0.1]) == pytest.approx(0.7)


@pytest.mark.parametrize(
    "text,answer",
    [
        ("<think>\nthe cube slipped\n</think>\n\nA", "A"),  # Cosmos-Reason2: the answer follows </think>
        ("B. place it", "B. place it"),  # no reasoning asked for: all of it
        ("<think>\nx\n</think>\n\n<answer>\nC\n</answer>", "C"),  # answer tags still win
    ],
)
def test_an_after_think_answer_is_what_follows_the_think_block(text, answer):
    start, end = answer_span(text, "after_think")
    assert text[start:end] == answer
    assert answer_span("<think>\nthe gripper closes and", "after_think") is None  # cut off mid-thought
    assert answer_span("<think>\nx\n</think>\n\nA") is None  # a Reason1 reading needs the tags


def test_confidence_is_within_zero_and_one_even_for_a_zero_probability():
    text = "<answer>A</answer>"
    assert 0.0 < answer_confidence(text, [(8, 9)], [0.0]) <= 1.0


def test_mismatched_spans_and_probabilities_are_refused():
    with pytest.raises(ValueError, match="spans"):
        answer_confidence("<answer>A</answer>", [(0, 1)], [0.5, 0.5])


def test_streamed_deltas_concatenate_to_the_full_decode(tokenizer):
    text = "<think>\nThe cube slides — 滑る 🤖 off the ramp.\n</think>\n\n<answer>\nB\n</answer>"
    decoder, deltas = stream(tokenizer, text)
    assert "".join(deltas) == decoder.text == text


def test_deltas_never_split_a_multibyte_character(tokenizer):
    text = "日本 🤖 ü"
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert len(ids) > len(text)  # byte-level pieces, so characters do span tokens
    _, deltas = stream(tokenizer, text)
    assert all("\ufffd" not in d for d in deltas)


def test_every_token_gets_a_span_within_the_text(tokenizer):
    text = "<answer>\n🤖 A\n</answer>"
    decoder, _ = stream(tokenizer, text)
    assert len(decoder.spans) == len(decoder.token_ids)
    assert decoder.spans[0][0] == 0 and decoder.spans[-1][1] == len(text)
    assert all(a <= b for a, b in decoder.spans)


def test_special_tokens_are_not_streamed(tokenizer):
    decoder = IncrementalDecoder(tokenizer)
    assert decoder.push(tokenizer.convert_tokens_to_ids("<|video_pad|>")) == ""
    assert decoder.flush() == "" and decoder.text == ""


def test_decoder_spans_drive_confidence_end_to_end(tokenizer):
    text = "<think>\nIt fell.\n</think>\n\n<answer>\nA\n</answer>"
    decoder, _ = stream(tokenizer, text)
    lo, hi = answer_span(text)
    probs = [0.5 if a < hi and b > lo else 0.01 for a, b in decoder.spans]
    assert answer_confidence(decoder.text, decoder.spans, probs) == pytest.approx(0.5)


def test_stop_strings_find_the_earliest_ending_one_reaching_into_new_text():
    stops = StopStrings(["</answer>", "\n\n"])
    assert stops.find("abc</ans", 3) is None
    assert stops.find("abc</answer> x", 8) == len("abc</answer>")
    assert stops.find("a\n\nb</answer>", 1) == 3


def test_text_stream_keeps_the_stop_string_and_releases_nothing_after_it(tokenizer):
    text = "<think>\nok\n</think>\n\n<answer>\nB\n</answer> and then more"
    stream = TextStream(tokenizer, stop=["</answer>"])
    deltas = []
    for token in tokenizer.encode(text, add_special_tokens=False):
        deltas.append(stream.push(token))
        if stream.stopped:
            break
    deltas.append(stream.flush())
    assert stream.stopped and stream.text == text[: text.index("</answer>") + len("</answer>")]
    assert "".join(deltas) == stream.text
    assert all(b <= len(stream.text) for _, b in stream.spans)


def test_text_stream_without_stop_strings_is_the_plain_decode(tokenizer):
    text = "The cube falls 🤖."
    stream = TextStream(tokenizer)
    deltas = [stream.push(t) for t in tokenizer.encode(text, add_special_tokens=False)] + [stream.flush()]
    assert "".join(deltas) == stream.text == text and not stream.stopped

"""Specification of the answer parser and the rewards built on it."""

from __future__ import annotations

import random

import pytest

from cosmos_ros.core.answers import AnswerStatus, ParsedAnswer, accuracy_reward, format_reward, parse_answer

OPTIONS = ("pick up the cup", "open the tap", "place the cup in the sink")


def cosmos(think: str, answer: str) -> str:
    return f"<think>\n{think}\n</think>\n\n<answer>\n{answer}\n</answer>"


# ---- well-formed ---------------------------------------------------------------


def test_well_formed_mcq_answer_is_read_with_its_reasoning():
    parsed = parse_answer(cosmos("The cup is still on the table.", "A"), OPTIONS)
    assert parsed == ParsedAnswer(
        AnswerStatus.OK, "The cup is still on the table.", "A", 0, "pick up the cup", format_ok=True
    )


def test_think_and_answer_may_span_several_lines():
    parsed = parse_answer(cosmos("line one\n\nline two", "B\n"), OPTIONS)
    assert parsed.format_ok and parsed.choice_index == 1 and parsed.think == "line one\n\nline two"


def test_free_form_answer_is_the_stripped_answer_text():
    parsed = parse_answer(cosmos("hmm", "  wipe the table  "))
    assert (parsed.status, parsed.answer, parsed.choice_index) == (AnswerStatus.OK, "wipe the table", -1)


def test_free_form_none_is_an_ordinary_answer():
    assert parse_answer(cosmos("", "None")).status is AnswerStatus.OK


# ---- MCQ answer forms -----------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    ["B", "b", "B.", "(B)", "B)", "B:", "B. open the tap", "(B) Open the tap.", "open the tap",
     "  OPEN   the Tap. ", "Answer: B", "The answer is B", "**B**"],
)
def test_mcq_letter_and_option_text_forms_map_to_the_option(answer):
    parsed = parse_answer(cosmos("...", answer), OPTIONS)
    assert (parsed.status, parsed.choice_index, parsed.choice_text) == (AnswerStatus.OK, 1, "open the tap")


@pytest.mark.parametrize("answer", ["none", "None.", "none of the above", "None of the above."])
def test_none_answers_are_abstentions(answer):
    parsed = parse_answer(cosmos("nothing fits", answer), OPTIONS)
    assert (parsed.status, parsed.choice_index, parsed.choice_text) == (AnswerStatus.NONE, -1, "")


def test_an_option_literally_named_none_is_a_choice():
    parsed = parse_answer(cosmos("", "None"), ("Some", "None"))
    assert (parsed.status, parsed.choice_index) == (AnswerStatus.OK, 1)


def test_a_letter_beyond_the_options_is_uncertain():
    parsed = parse_answer(cosmos("", "D"), OPTIONS)
    assert (parsed.status, parsed.reason, parsed.choice_index) == (AnswerStatus.UNCERTAIN, "letter_out_of_range", -1)


@pytest.mark.parametrize("answer", ["A. open the tap", "(A) and (B)", "A) pick up the cup, then B"])
def test_a_letter_followed_by_text_other_than_its_option_is_uncertain(answer):
    parsed = parse_answer(cosmos("", answer), OPTIONS)
    assert (parsed.status, parsed.reason) == (AnswerStatus.UNCERTAIN, "letter_text_mismatch")


def test_prose_that_is_no_option_is_uncertain_but_keeps_the_answer_text():
    parsed = parse_answer(cosmos("", "A robot should wipe the table"), OPTIONS)
    assert (parsed.status, parsed.reason, parsed.answer) == (
        AnswerStatus.UNCERTAIN, "no_option_match", "A robot should wipe the table"
    )


# ---- near misses ------------------------------------------------------------------


def test_missing_blank_line_still_answers_but_is_not_strict_format():
    parsed = parse_answer("<think>\nok\n</think>\n<answer>\nA\n</answer>", OPTIONS)
    assert parsed.status is AnswerStatus.OK and parsed.choice_index == 0 and not parsed.format_ok


def test_text_outside_the_tags_still_answers_but_is_not_strict_format():
    parsed = parse_answer("Sure! " + cosmos("ok", "C") + "\nHope this helps.", OPTIONS)
    assert parsed.status is AnswerStatus.OK and parsed.choice_index == 2 and not parsed.format_ok


def test_answer_without_think_block_is_read():
    parsed = parse_answer("<answer>B</answer>", OPTIONS)
    assert (parsed.status, parsed.choice_index, parsed.think, parsed.format_ok) == (AnswerStatus.OK, 1, "", False)


def test_think_is_read_when_the_opening_think_tag_was_in_the_prompt():
    assert parse_answer("reasoning here\n</think>\n\n<answer>\nA\n</answer>", OPTIONS).think == "reasoning here"


def test_unclosed_answer_is_uncertain():
    parsed = parse_answer("<think>\nok\n</think>\n\n<answer>\nA", OPTIONS)
    assert (parsed.status, parsed.reason, parsed.think) == (AnswerStatus.UNCERTAIN, "unclosed_answer", "ok")


def test_unclosed_think_with_no_answer_is_uncertain():
    parsed = parse_answer("<think>\nthe robot is reaching for", OPTIONS)
    assert (parsed.status, parsed.reason, parsed.think) == (
        AnswerStatus.UNCERTAIN, "no_answer_tag", "the robot is reaching for"
    )


def test_two_answer_blocks_are_uncertain():
    parsed = parse_answer(cosmos("", "A") + "\n\n<answer>\nB\n</answer>", OPTIONS)
    assert (parsed.status, parsed.reason, parsed.format_ok) == (AnswerStatus.UNCERTAIN, "multiple_answers", False)


def test_closing_tag_before_opening_tag_is_uncertain():
    assert parse_answer("</answer>A<answer>", OPTIONS).reason == "unclosed_answer"


def test_empty_answer_is_uncertain():
    parsed = parse_answer(cosmos("thinking", ""), OPTIONS)
    assert (parsed.status, parsed.reason) == (AnswerStatus.UNCERTAIN, "empty_answer")


@pytest.mark.parametrize("text, index", [("B", 1), ("(c)", 2), (" open the tap \n", 1)])
def test_a_bare_letter_or_option_without_tags_is_accepted_leniently(text, index):
    parsed = parse_answer(text, OPTIONS)
    assert (parsed.status, parsed.choice_index, parsed.format_ok) == (AnswerStatus.OK, index, False)


@pytest.mark.parametrize("text", ["B. but maybe A", "I think it is B", "none", "Answer: B", ""])
def test_other_text_without_tags_is_uncertain(text):
    parsed = parse_answer(text, OPTIONS)
    assert (parsed.status, parsed.reason) == (AnswerStatus.UNCERTAIN, "no_answer_tag")


def test_free_form_text_without_tags_is_uncertain():
    assert parse_answer("wipe the table").reason == "no_answer_tag"


def test_none_input_is_uncertain():
    assert parse_answer(None, OPTIONS) == ParsedAnswer(AnswerStatus.UNCERTAIN, reason="no_output")


def test_bytes_input_is_decoded_and_garbage_bytes_do_not_raise():
    assert parse_answer(cosmos("", "A").encode(), OPTIONS).choice_index == 0
    assert parse_answer(b"\xff\xfe<answer>\x80", OPTIONS).status is AnswerStatus.UNCERTAIN


def test_non_text_input_is_uncertain():
    assert parse_answer(42, OPTIONS).reason == "not_text"


def test_random_tag_soup_never_raises():
    pieces = ["<think>", "</think>", "<answer>", "</answer>", "\n", "A", "b.", "(", ")", "none", "\x00", "é", " ",
              "open the tap", "<", ">", "/", "\udcff"]
    rng = random.Random(0)
    for _ in range(2000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        parsed = parse_answer(text, OPTIONS if rng.random() < 0.7 else ())
        assert isinstance(parsed, ParsedAnswer)
        assert (parsed.choice_index >= 0) == (parsed.status is AnswerStatus.OK and parsed.choice_text != "")


# ---- rewards ------------------------------------------------------------------------


def test_format_reward_is_one_only_for_the_strict_layout():
    assert format_reward(cosmos("why", "A")) == 1.0
    assert format_reward(cosmos("why", "A") + "\n") == 0.0
    assert format_reward("<think>why</think>\n\n<answer>A</answer>") == 0.0
    assert format_reward(cosmos("why", "A") + cosmos("again", "B")) == 0.0
    assert format_reward(None) == 0.0


@pytest.mark.parametrize("reference", ["B", "b", "open the tap", "Open The Tap"])
def test_accuracy_reward_accepts_a_letter_or_option_text_reference(reference):
    assert accuracy_reward(cosmos("", "B. open the tap"), reference, OPTIONS) == 1.0
    assert accuracy_reward(cosmos("", "A"), reference, OPTIONS) == 0.0


def test_accuracy_reward_matches_none_references():
    assert accuracy_reward(cosmos("", "None of the above"), "none", OPTIONS) == 1.0
    assert accuracy_reward(cosmos("", "A"), "none", OPTIONS) == 0.0


def test_accuracy_reward_for_free_form_compares_text_case_insensitively():
    assert accuracy_reward(cosmos("", "Yes"), "yes") == 1.0
    assert accuracy_reward(cosmos("", "no"), "yes") == 0.0


def test_uncertain_outputs_earn_no_accuracy():
    assert accuracy_reward("<answer>\nB", "B", OPTIONS) == 0.0
    assert accuracy_reward(None, "B", OPTIONS) == 0.0

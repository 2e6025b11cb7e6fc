"""Specification of the Cosmos-Reason1 prompt builders."""

from __future__ import annotations

import pytest

from cosmos_ros.core.prompts import (
    FAILED_CHOICE,
    FAILURE_OPTIONS,
    REASONING_FREE,
    REASONING_MCQ,
    failure_prompt,
    free_prompt,
    mcq_prompt,
    next_subtask_prompt,
)
from cosmos_ros.core.types import Prompt, TaskKind


def test_mcq_reasoning_add_on_is_the_exact_cosmos_text():
    assert REASONING_MCQ == (
        "Answer the question with provided options in the following format: "
        "<think>\nyour reasoning\n</think>\n\n<answer>\nyour answer\n</answer>."
    )


def test_free_reasoning_add_on_is_the_exact_cosmos_text():
    assert REASONING_FREE == (
        "Answer the question in the following format: "
        "<think>\nyour reasoning\n</think>\n\n<answer>\nyour answer\n</answer>."
    )


def test_mcq_prompt_is_question_then_lettered_options_then_add_on():
    prompt = mcq_prompt("Which cup moved?", ["the red cup", "the blue cup"])
    assert prompt.text == f"Which cup moved?\nA. the red cup\nB. the blue cup\n{REASONING_MCQ}"
    assert prompt.options == ("the red cup", "the blue cup")
    assert prompt.kind is TaskKind.QUESTION


def test_free_prompt_is_question_then_free_add_on():
    prompt = free_prompt("  What is the robot holding? ")
    assert prompt.text == f"What is the robot holding?\n{REASONING_FREE}"
    assert prompt.options == ()


def test_options_are_lettered_up_to_z():
    options = [f"option {i}" for i in range(26)]
    text = mcq_prompt("Pick one.", options).text
    assert "\nA. option 0\n" in text and "\nZ. option 25\n" in text


def test_more_than_26_options_is_an_error():
    with pytest.raises(ValueError, match="at most 26"):
        mcq_prompt("Pick one.", [f"option {i}" for i in range(27)])


@pytest.mark.parametrize("options", [["ok", "  "], ["ok", ""], ["two\nlines", "ok"], ["Same", "same"]])
def test_blank_multiline_or_duplicate_options_are_errors(options):
    with pytest.raises(ValueError):
        mcq_prompt("Pick one.", options)


def test_mcq_without_options_is_an_error():
    with pytest.raises(ValueError, match="free_prompt"):
        mcq_prompt("Pick one.", [])


def test_a_single_string_is_not_mistaken_for_a_list_of_options():
    with pytest.raises(ValueError, match="sequence"):
        mcq_prompt("Pick one.", "abc")


@pytest.mark.parametrize("task", ["", "   ", None])
def test_an_empty_task_is_an_error(task):
    with pytest.raises(ValueError, match="task"):
        next_subtask_prompt(task)


def test_next_subtask_with_options_offers_none_as_an_answer():
    prompt = next_subtask_prompt("put the cup in the sink", ["pick up the cup", "open the tap"])
    assert prompt.kind is TaskKind.NEXT_SUBTASK
    assert prompt.text.startswith(
        "The robot is performing the task: 'put the cup in the sink'. "
        "What is the most plausible next immediate subtask?\nA. pick up the cup\nB. open the tap\n"
    )
    assert '"none"' in prompt.text
    assert prompt.text.endswith(REASONING_MCQ)


def test_next_subtask_without_options_is_free_form():
    prompt = next_subtask_prompt("stack the blocks")
    assert prompt.options == () and prompt.text.endswith(REASONING_FREE)


def test_failure_prompt_is_a_two_option_mcq_where_a_means_failed():
    prompt = failure_prompt("stack the blocks", subtask="grasp the red block")
    assert prompt.kind is TaskKind.FAILURE
    assert prompt.options == FAILURE_OPTIONS
    assert FAILURE_OPTIONS[FAILED_CHOICE].startswith("Yes")
    assert "Did the robot fail to complete the subtask: 'grasp the red block'?" in prompt.text
    assert f"\nA. {FAILURE_OPTIONS[0]}\nB. {FAILURE_OPTIONS[1]}\n" in prompt.text
    assert prompt.text.endswith(REASONING_MCQ)


def test_failure_prompt_without_subtask_asks_about_the_task():
    assert "Did the robot fail to complete the task?" in failure_prompt("stack the blocks").text


def test_prompts_are_worded_for_the_model_line_and_back():
    from cosmos_ros.core.prompts import REASONING_AFTER_THINK, REASONING_MCQ, for_answer_format

    reason1 = next_subtask_prompt("stack the cubes", ["pick the red cube", "place it"])
    reason2 = for_answer_format(reason1, "after_think")
    assert reason2.text.endswith("\n\n" + REASONING_AFTER_THINK) and REASONING_MCQ not in reason2.text
    assert reason2.options == reason1.options and reason2.kind == reason1.kind
    assert for_answer_format(reason2, "tags") == reason1
    assert for_answer_format(reason1, "tags") == reason1
    own = Prompt("Describe the scene.")  # a user's own wording is left as written
    assert for_answer_format(own, "after_think") == own
    with pytest.raises(ValueError, match="answer_format"):
        for_answer_format(reason1, "xml")

"""Cosmos-Reason1 prompts: the user text that follows the video.

The engine places the video before the text (Cosmos convention: media first),
so these builders produce only the text: question, lettered options, and the
reasoning add-on the model was trained with. The add-on strings are exact
copies of the training prompts; a changed character changes model behaviour.
The answer letters written here are the ones `answers.parse_answer` maps back.
"""

from __future__ import annotations

import string
from dataclasses import replace
from typing import Sequence

from cosmos_ros.core.types import Prompt, TaskKind

REASONING_MCQ = (
    "Answer the question with provided options in the following format: "
    "<think>\nyour reasoning\n</think>\n\n<answer>\nyour answer\n</answer>."
)
REASONING_FREE = (
    "Answer the question in the following format: "
    "<think>\nyour reasoning\n</think>\n\n<answer>\nyour answer\n</answer>."
)

# Cosmos-Reason2's reasoning add-on (cosmos-reason2's REASONING_PROMPT), after a blank line; its
# answer follows </think> directly (answers.AFTER_THINK).
REASONING_AFTER_THINK = (
    "Answer the question using the following format:\n\n<think>\nYour reasoning.\n</think>\n\n"
    "Write your final answer immediately after the </think> tag."
)
ANSWER_FORMAT_ADDONS = {"tags": (REASONING_MCQ, REASONING_FREE), "after_think": (REASONING_AFTER_THINK,)}

OPTION_LETTERS = string.ascii_uppercase  # A..Z: at most 26 options

NONE_HINT = 'If none of the options fits, answer "none".'

# failure_prompt's options, in letter order: A means the robot failed.
FAILURE_OPTIONS = ("Yes, the robot failed", "No, the robot did not fail")
FAILED_CHOICE = 0


def for_answer_format(prompt: Prompt, answer_format: str) -> Prompt:
    """`prompt` as a model of `answer_format` was trained to be asked: a Reason1 reasoning add-on
    at the end of the text becomes Cosmos-Reason2's ("after_think"), and back ("tags"). Text
    without a known add-on (a user's own prompt) is left as written."""
    if answer_format not in ANSWER_FORMAT_ADDONS:
        raise ValueError(f"answer_format must be one of {tuple(ANSWER_FORMAT_ADDONS)}, got {answer_format!r}")
    text = prompt.text
    if answer_format == "after_think":
        for addon in ANSWER_FORMAT_ADDONS["tags"]:
            if text.endswith("\n" + addon):
                return replace(prompt, text=f"{text[: -len(addon) - 1]}\n\n{REASONING_AFTER_THINK}")
    elif text.endswith("\n\n" + REASONING_AFTER_THINK):
        addon = REASONING_MCQ if prompt.options else REASONING_FREE
        return replace(prompt, text=f"{text[: -len(REASONING_AFTER_THINK) - 2]}\n{addon}")
    return prompt


def _clean_text(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    return value.strip()


def _clean_options(options: Sequence[str]) -> tuple[str, ...]:
    """Options stripped and checked: each one non-blank, on one line, distinct."""
    if isinstance(options, str):
        raise ValueError(f"options must be a sequence of strings, not one string: {options!r}")
    cleaned = tuple(_clean_text(option, f"option {i + 1}") for i, option in enumerate(options))
    if len(cleaned) > len(OPTION_LETTERS):
        raise ValueError(f"at most {len(OPTION_LETTERS)} options (A-Z) are supported, got {len(cleaned)}")
    for i, option in enumerate(cleaned):
        if "\n" in option:
            raise ValueError(f"option {OPTION_LETTERS[i]} must be one line, got {option!r}")
    folded = [" ".join(option.casefold().split()) for option in cleaned]
    if len(set(folded)) != len(folded):
        raise ValueError(f"options must be distinct (case-insensitive) so answers map to one letter: {cleaned}")
    return cleaned


def format_options(options: Sequence[str]) -> str:
    """'A. first\\nB. second' — one lettered line per option."""
    return "\n".join(f"{OPTION_LETTERS[i]}. {option}" for i, option in enumerate(_clean_options(options)))


def mcq_prompt(
    question: str, options: Sequence[str], *, kind: TaskKind = TaskKind.QUESTION, allow_none: bool = False
) -> Prompt:
    """A multiple-choice question: question, lettered options, MCQ reasoning add-on.

    allow_none adds a line telling the model that "none" is a valid answer,
    which the parser reports as AnswerStatus.NONE.
    """
    question = _clean_text(question, "question")
    cleaned = _clean_options(options)
    if not cleaned:
        raise ValueError("a multiple-choice question needs at least one option; use free_prompt for open questions")
    lines = [question, format_options(cleaned)]
    if allow_none:
        lines.append(NONE_HINT)
    lines.append(REASONING_MCQ)
    return Prompt(text="\n".join(lines), kind=kind, options=cleaned)


def free_prompt(question: str, *, kind: TaskKind = TaskKind.QUESTION) -> Prompt:
    """An open question answered in free text, with the non-MCQ reasoning add-on."""
    return Prompt(text=f"{_clean_text(question, 'question')}\n{REASONING_FREE}", kind=kind)


def next_subtask_prompt(task: str, options: Sequence[str] = ()) -> Prompt:
    """Ask which subtask the robot should do next.

    With options the model picks a letter or says "none" (no option fits, e.g.
    the task is already done); without options it names the subtask freely.
    """
    task = _clean_text(task, "task")
    question = f"The robot is performing the task: '{task}'. What is the most plausible next immediate subtask?"
    if options:
        return mcq_prompt(question, options, kind=TaskKind.NEXT_SUBTASK, allow_none=True)
    return free_prompt(question, kind=TaskKind.NEXT_SUBTASK)


def failure_prompt(task: str, subtask: str | None = None) -> Prompt:
    """Ask whether the robot failed, as a two-option MCQ (A = failed, see FAILED_CHOICE).

    Kept multiple-choice rather than free yes/no so the parser maps a letter,
    not a paraphrase, to the verdict.
    """
    task = _clean_text(task, "task")
    if subtask is None:
        question = f"The robot is performing the task: '{task}'. Did the robot fail to complete the task?"
    else:
        subtask = _clean_text(subtask, "subtask")
        question = (
            f"The robot is performing the task: '{task}'. "
            f"Did the robot fail to complete the subtask: '{subtask}'?"
        )
    return mcq_prompt(question, FAILURE_OPTIONS, kind=TaskKind.FAILURE)

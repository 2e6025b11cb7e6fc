"""Parse Cosmos-Reason1 output into think text, answer and MCQ choice; score it.

The model is asked for "<think>\\n...\\n</think>\\n\\n<answer>\\n...\\n</answer>".
Real outputs drift: a missing blank line, text after the answer, a truncated
generation, "B. pick up the cup" instead of "B". A robot must never act on a
guess, so the rule is: read what is unambiguous, and report everything else
as UNCERTAIN with a short `reason` instead of raising. Every engine backend,
the nodes and the GRPO rewards use this one parser, so they agree.

Two answer formats, one per model line (the family's `answer_format`):

- "tags" (Cosmos-Reason1): the answer is inside <answer>…</answer>.
- "after_think" (Cosmos-Reason2): "<think>\n…\n</think>\n\n" then the answer itself, as its
  reasoning prompt asks ("Write your final answer immediately after the </think> tag"); an
  output without think tags is all answer. Answer tags, if a model writes them, still win.

UNCERTAIN reasons: "no_output" (None), "not_text", "no_answer_tag",
"unclosed_answer", "unclosed_think", "multiple_answers", "empty_answer", "letter_out_of_range",
"letter_text_mismatch", "no_option_match".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Any, Sequence

from cosmos_ros.core.prompts import OPTION_LETTERS


class AnswerStatus(str, Enum):
    OK = "ok"  # an answer (and for MCQ, one option) was read
    NONE = "none"  # the model abstained: "none" / "none of the above"
    UNCERTAIN = "uncertain"  # nothing trustworthy could be read; see ParsedAnswer.reason


@dataclass(frozen=True)
class ParsedAnswer:
    status: AnswerStatus
    think: str = ""  # reasoning text, stripped
    answer: str = ""  # text inside <answer>, stripped
    choice_index: int = -1  # MCQ option index; -1 for NONE, UNCERTAIN and free-form
    choice_text: str = ""  # the option's text as given in the prompt
    format_ok: bool = False  # the whole output is in the strict Cosmos format
    reason: str = ""  # why UNCERTAIN; empty otherwise


# Tag contents may span lines but may not contain another tag.
_BODY = r"(?:(?!</?(?:think|answer)>).)*"
_STRICT = re.compile(rf"<think>\n{_BODY}\n</think>\n\n<answer>\n{_BODY}\n</answer>", re.DOTALL)
_STRICT_AFTER_THINK = re.compile(rf"<think>\n{_BODY}\n</think>\n\n(?=\S){_BODY}", re.DOTALL)
_TAG = re.compile(r"<(/?)(think|answer)>", re.IGNORECASE)

ANSWER_TAGS, AFTER_THINK = "tags", "after_think"
ANSWER_FORMATS = (ANSWER_TAGS, AFTER_THINK)

_NONE_ANSWERS = frozenset(
    {"none", "none of the above", "none of them", "none of these", "none of the options", "no option fits"}
)
_ANSWER_PREFIX = re.compile(r"^(?:the\s+)?(?:final\s+)?answer(?:\s+is)?\s*[:\-]?\s*", re.IGNORECASE)
# "A", "A.", "A)", "A:", "(A)", "(A).", each optionally followed by the option text.
_LETTER = re.compile(r"^(?:\((?P<paren>[a-z])\)[.:]?|(?P<bare>[a-z])(?P<punct>[.):])?)(?:\s+(?P<rest>.*))?$", re.DOTALL)


def _normalize(text: str) -> str:
    """Casefolded, whitespace collapsed, without wrapping quotes/markdown or trailing periods."""
    text = " ".join(text.casefold().split())
    text = text.strip("*`\"' ")
    return text.rstrip(".").strip()


def _match_choice(answer: str, options: Sequence[str], *, strict: bool = False) -> tuple[AnswerStatus, int, str]:
    """(status, option index, reason) for an answer to a multiple-choice question.

    strict accepts only a bare letter ("B", "(B)") or an option's exact text;
    the tag-less fallback uses it so that free prose is never taken as a choice.
    """
    norm = _normalize(answer)
    folded = [_normalize(option) for option in options]
    if norm in folded:
        return AnswerStatus.OK, folded.index(norm), ""
    if not strict:
        norm = _normalize(_ANSWER_PREFIX.sub("", norm, count=1))
        if norm in folded:
            return AnswerStatus.OK, folded.index(norm), ""
        if norm in _NONE_ANSWERS:
            return AnswerStatus.NONE, -1, ""
    match = _LETTER.match(norm)
    rest = match and match.group("rest")
    if match is None or (rest and not (match.group("paren") or match.group("punct"))) or (strict and rest):
        return AnswerStatus.UNCERTAIN, -1, "no_option_match"
    index = OPTION_LETTERS.index((match.group("paren") or match.group("bare")).upper())
    if index >= len(options):
        return AnswerStatus.UNCERTAIN, -1, "letter_out_of_range"
    # "B. open the tap" must repeat B's own text: "(A) and (B)" or "A. <text of B>" is no answer.
    if rest and _normalize(rest) != folded[index]:
        return AnswerStatus.UNCERTAIN, -1, "letter_text_mismatch"
    return AnswerStatus.OK, index, ""


def _think_text(text: str, tags: list[re.Match], answer_start: int) -> str:
    opens = [t for t in tags if t.group(2).lower() == "think" and not t.group(1)]
    closes = [t for t in tags if t.group(2).lower() == "think" and t.group(1)]
    start = opens[0].end() if opens else 0
    ends = [t.start() for t in closes if t.start() >= start]
    if not opens and not ends:
        return ""
    return text[start : ends[0] if ends else answer_start].strip()


def _strict(answer_format: str) -> re.Pattern:
    if answer_format not in ANSWER_FORMATS:
        raise ValueError(f"answer_format must be one of {ANSWER_FORMATS}, got {answer_format!r}")
    return _STRICT if answer_format == ANSWER_TAGS else _STRICT_AFTER_THINK


def _choice(answer: str, think: str, options: tuple[str, ...], format_ok: bool) -> ParsedAnswer:
    """The parse of an answer read from its delimited place (tags, or after </think>)."""
    if not answer:
        return ParsedAnswer(AnswerStatus.UNCERTAIN, think=think, format_ok=format_ok, reason="empty_answer")
    if not options:
        return ParsedAnswer(AnswerStatus.OK, think=think, answer=answer, format_ok=format_ok)
    status, index, reason = _match_choice(answer, options)
    if status is AnswerStatus.UNCERTAIN:
        return ParsedAnswer(status, think=think, answer=answer, format_ok=format_ok, reason=reason)
    return ParsedAnswer(status, think, answer, index, options[index] if index >= 0 else "", format_ok)


def _after_think(text: str, tags: list[re.Match], options: tuple[str, ...], format_ok: bool) -> ParsedAnswer:
    """Reason2's layout: the answer is what follows the last </think> (all of it without think tags)."""
    closes = [t for t in tags if t.group(1)]
    if not closes:
        if tags:  # an opened think never closed: generation ended mid-reasoning
            return ParsedAnswer(
                AnswerStatus.UNCERTAIN, think=_think_text(text, tags, len(text)), reason="unclosed_think"
            )
        return _choice(text.strip(), "", options, format_ok)
    return _choice(text[closes[-1].end() :].strip(), _think_text(text, tags, closes[-1].start()), options, format_ok)


def parse_answer(text: Any, options: Sequence[str] = (), answer_format: str = ANSWER_TAGS) -> ParsedAnswer:
    """Read a model output; never raises (but for an unknown `answer_format`).

    "tags": answer text comes from the single <answer>...</answer> block, wherever it is
    (format_ok says whether the layout was strict). With no answer tags at all,
    an output that is exactly a letter ("B", "(B)") or exactly an option text is
    still accepted (format_ok False): small models often answer bare. "none" is
    only accepted inside tags. "after_think": see the module docstring; answer
    tags are read as under "tags" when present. bytes are decoded as UTF-8 with
    replacement.
    """
    strict = _strict(answer_format)
    if text is None:
        return ParsedAnswer(AnswerStatus.UNCERTAIN, reason="no_output")
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", errors="replace")
    if not isinstance(text, str):
        return ParsedAnswer(AnswerStatus.UNCERTAIN, reason="not_text")
    options = tuple(str(option) for option in options)
    format_ok = strict.fullmatch(text) is not None
    tags = list(_TAG.finditer(text))
    opens = [t for t in tags if t.group(2).lower() == "answer" and not t.group(1)]
    closes = [t for t in tags if t.group(2).lower() == "answer" and t.group(1)]

    def uncertain(reason: str, think: str = "", answer: str = "") -> ParsedAnswer:
        return ParsedAnswer(AnswerStatus.UNCERTAIN, think=think, answer=answer, format_ok=format_ok, reason=reason)

    if not opens and not closes and answer_format == AFTER_THINK:
        return _after_think(text, tags, options, format_ok)
    if not opens and not closes:
        if tags or not options:
            return uncertain("no_answer_tag", think=_think_text(text, tags, len(text)))
        status, index, reason = _match_choice(text, options, strict=True)
        if status is not AnswerStatus.OK:
            return uncertain("no_answer_tag")
        return ParsedAnswer(status, answer=text.strip(), choice_index=index, choice_text=options[index])
    if len(opens) > 1 or len(closes) > 1:
        return uncertain("multiple_answers", think=_think_text(text, tags, opens[0].start() if opens else len(text)))
    if not opens:
        return uncertain("no_answer_tag", think=_think_text(text, tags, closes[0].start()))
    think = _think_text(text, tags, opens[0].start())
    if not closes or closes[0].start() < opens[0].end():
        return uncertain("unclosed_answer", think=think)
    return _choice(text[opens[0].end() : closes[0].start()].strip(), think, options, format_ok)


def format_reward(text: Any, answer_format: str = ANSWER_TAGS) -> float:
    """1.0 when the whole output is exactly the format's layout — "tags":
    <think>\\n…\\n</think>\\n\\n<answer>\\n…\\n</answer>; "after_think": <think>\\n…\\n</think>\\n\\n…
    — else 0.0."""
    return 1.0 if isinstance(text, str) and _strict(answer_format).fullmatch(text) is not None else 0.0


def accuracy_reward(
    text: Any, reference: str, options: Sequence[str] = (), answer_format: str = ANSWER_TAGS
) -> float:
    """1.0 when the parsed answer equals `reference`, else 0.0.

    With options, the reference may be a letter ("B") or an option text, and
    the answer matches it by option index ("none" references match a NONE
    answer). Otherwise texts compare case-insensitively, ignoring whitespace
    runs and a trailing period. UNCERTAIN answers score 0.
    """
    parsed = parse_answer(text, options, answer_format)
    if parsed.status is AnswerStatus.UNCERTAIN or not isinstance(reference, str):
        return 0.0
    if options:
        ref_status, ref_index, _ = _match_choice(reference, tuple(options))
        if ref_status is AnswerStatus.OK:
            return float(parsed.status is AnswerStatus.OK and parsed.choice_index == ref_index)
        if ref_status is AnswerStatus.NONE:
            return float(parsed.status is AnswerStatus.NONE)
    return float(_normalize(parsed.answer) == _normalize(reference))

"""Backend-independent decoding helpers: streaming detokenization, stop strings, answer confidence.

Pure Python, so every backend (torch, onnxruntime, tensorrt) streams, stops and scores alike.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Sequence

_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_THINK_OPEN = re.compile(r"<think>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</think>", re.IGNORECASE)
_REPLACEMENT = "\ufffd"  # what a decoder yields for an incomplete UTF-8 sequence


class IncrementalDecoder:
    """Token ids in, text deltas out, never splitting a UTF-8 character across deltas.

    A token whose bytes end mid-character is held until a later token completes it (the
    prefix/read offset scheme of text-generation-inference). Each token gets the char span of
    the delta that released it: tokens released together share one span, so a character split
    over two tokens counts for both.
    """

    def __init__(self, tokenizer, skip_special_tokens: bool = True):
        self._tokenizer = tokenizer
        self._skip_special = skip_special_tokens
        self.token_ids: list[int] = []
        self.spans: list[tuple[int, int]] = []  # char range in `text` per released token
        self.text = ""
        self._prefix = 0  # start of the window decoded for context
        self._read = 0  # first token not yet released

    def _decode(self, ids: list[int]) -> str:
        return self._tokenizer.decode(ids, skip_special_tokens=self._skip_special)

    def _release(self, delta: str) -> str:
        start = len(self.text)
        self.text += delta
        self.spans.extend([(start, len(self.text))] * (len(self.token_ids) - self._read))
        self._prefix, self._read = self._read, len(self.token_ids)
        return delta

    def push(self, token_id: int) -> str:
        """Add one token; returns the newly complete text (may be empty)."""
        self.token_ids.append(token_id)
        prefix_text = self._decode(self.token_ids[self._prefix : self._read])
        new_text = self._decode(self.token_ids[self._prefix :])
        if len(new_text) > len(prefix_text) and not new_text.endswith(_REPLACEMENT):
            return self._release(new_text[len(prefix_text) :])
        return ""

    def flush(self) -> str:
        """Release whatever is held (an unfinished character decodes as U+FFFD)."""
        if self._read == len(self.token_ids):
            return ""
        prefix_text = self._decode(self.token_ids[self._prefix : self._read])
        new_text = self._decode(self.token_ids[self._prefix :])
        return self._release(new_text[len(prefix_text) :])

    def truncate(self, end: int) -> None:
        """Cut the text at char `end` (where a stop string ends); token spans are clipped to it."""
        self.text = self.text[:end]
        self.spans = [(min(a, end), min(b, end)) for a, b in self.spans]


class StopStrings:
    """Finds the first of several stop strings in text that grows at the end."""

    def __init__(self, stops: Sequence[str]):
        if isinstance(stops, str) or any(not isinstance(s, str) or not s for s in stops):
            raise ValueError(f"stop must be a sequence of non-empty strings, got {stops!r}")
        self.stops = tuple(stops)
        self._longest = max((len(s) for s in self.stops), default=0)

    def find(self, text: str, start: int) -> int | None:
        """End of the earliest-ending stop string that reaches into text[start:], or None."""
        lo = max(0, start - self._longest + 1)
        ends = [i + len(s) for s in self.stops if (i := text.find(s, lo)) != -1]
        return min(ends) if ends else None


class TextStream:
    """One generation's text: token ids in, text deltas out, ending at the first stop string.

    The stop string is kept in the text (so `</answer>` still closes the answer) and nothing
    after it is released; `stopped` says a stop string ended the text.
    """

    def __init__(self, tokenizer, stop: Sequence[str] = ()):
        self.decoder = IncrementalDecoder(tokenizer)
        self._stops = StopStrings(stop) if stop else None
        self.stopped = False

    @property
    def text(self) -> str:
        return self.decoder.text

    @property
    def spans(self) -> list[tuple[int, int]]:
        return self.decoder.spans

    def push(self, token_id: int) -> str:
        return self._cut(self.decoder.push(token_id))

    def flush(self) -> str:
        return "" if self.stopped else self._cut(self.decoder.flush())

    def _cut(self, delta: str) -> str:
        if not delta or self._stops is None:
            return delta
        start = len(self.decoder.text) - len(delta)
        end = self._stops.find(self.decoder.text, start)
        if end is None:
            return delta
        self.decoder.truncate(end)
        self.stopped = True
        return delta[: end - start]


def answer_span(text: str, answer_format: str = "tags") -> tuple[int, int] | None:
    """Char range of the answer content, surrounding whitespace excluded: the last
    `<answer>…</answer>`, or for "after_think" (Cosmos-Reason2) without answer tags what
    follows the last `</think>` (the whole text without think tags, none while a think is
    open). None when there is no such answer or it is blank."""
    matches = list(_ANSWER.finditer(text))
    if matches:
        start, end = matches[-1].span(1)
    elif answer_format == "after_think":
        closes = list(_THINK_CLOSE.finditer(text))
        if not closes and _THINK_OPEN.search(text):
            return None
        start, end = (closes[-1].end() if closes else 0), len(text)
    else:
        return None
    content = text[start:end]
    start += len(content) - len(content.lstrip())
    end -= len(content) - len(content.rstrip())
    return (start, end) if end > start else None


def answer_confidence(
    text: str,
    token_spans: Sequence[tuple[int, int]],
    token_probs: Sequence[float],
    answer_format: str = "tags",
) -> float:
    """Geometric mean probability of the tokens overlapping the answer content; NaN without one.

    token_spans[i] is token i's char range in `text` (as `IncrementalDecoder.spans` gives),
    token_probs[i] the probability the model gave the token it chose.
    """
    if len(token_spans) != len(token_probs):
        raise ValueError(f"{len(token_spans)} token spans but {len(token_probs)} token probabilities")
    span = answer_span(text, answer_format)
    if span is None:
        return math.nan
    lo, hi = span
    log_probs = [
        math.log(max(p, sys.float_info.min))
        for (a, b), p in zip(token_spans, token_probs)
        if a < hi and b > lo
    ]
    if not log_probs:
        return math.nan
    return math.exp(sum(log_probs) / len(log_probs))

"""Backend-independent decoding helpers: streaming detokenization and answer confidence.

Pure Python, so every backend (torch, onnxruntime, tensorrt) streams and scores alike.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Sequence

_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
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


def answer_span(text: str) -> tuple[int, int] | None:
    """Char range of the last `<answer>…</answer>` content, surrounding whitespace excluded;
    None when there is no closed answer or it is blank."""
    matches = list(_ANSWER.finditer(text))
    if not matches:
        return None
    start, end = matches[-1].span(1)
    content = text[start:end]
    start += len(content) - len(content.lstrip())
    end -= len(content) - len(content.rstrip())
    return (start, end) if end > start else None


def answer_confidence(
    text: str, token_spans: Sequence[tuple[int, int]], token_probs: Sequence[float]
) -> float:
    """Geometric mean probability of the tokens overlapping the answer content; NaN without one.

    token_spans[i] is token i's char range in `text` (as `IncrementalDecoder.spans` gives),
    token_probs[i] the probability the model gave the token it chose.
    """
    if len(token_spans) != len(token_probs):
        raise ValueError(f"{len(token_spans)} token spans but {len(token_probs)} token probabilities")
    span = answer_span(text)
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

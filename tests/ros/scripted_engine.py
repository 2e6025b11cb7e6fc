"""A fast, predictable Engine for node tests, loaded through the reasoner's plugin form
`engine:=scripted_engine:create`. Its behaviour is steered by the question text:
"explode" raises, "slowly" streams a token every 0.5 s, "ponder" thinks 30 s before the first
token, "stamps" thinks the clip's frame stamps, in seconds before its newest (to see what the buffer held), anything else answers
option A after streaming a few tokens."""

from __future__ import annotations

import time

from cosmos_ros.core.types import Reasoning
from cosmos_ros.engine import Engine

PONDER_S = 30.0
ANSWER = "<think>\nthe ball rolls behind the box\n</think>\n\n<answer>\nA\n</answer>"


class ScriptedEngine(Engine):
    def __init__(self, delay_s: float = 0.02):
        self.delay_s = delay_s
        self.calls = 0

    @property
    def model_id(self) -> str:
        return "scripted@0"

    def reason(self, clip, prompt, *, max_new_tokens=256, temperature=0.0, on_token=None):
        self.calls += 1
        if "explode" in prompt.text:
            raise RuntimeError("scripted failure")
        time.sleep(PONDER_S if "ponder" in prompt.text else self.delay_s)
        text = ANSWER
        if "stamps" in prompt.text:
            text = ANSWER.replace("the ball rolls behind the box", " ".join(f"{s - clip.end:.6f}" for s in clip.stamps))
        pieces = [text[i : i + 8] for i in range(0, len(text), 8)]
        for piece in pieces:
            if on_token is not None:
                on_token(piece)
            if "slowly" in prompt.text:
                time.sleep(0.5)
        return Reasoning(
            text=text, confidence=0.9, num_generated_tokens=len(pieces), model_id=self.model_id
        )


def create(model: str, device: str = "cpu", **kw) -> Engine:
    return ScriptedEngine()

"""The shipped trained checkpoint (model/cosmos-reason1-tiny) loads as users load it and answers in
the strict Cosmos format it was trained to write."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cosmos_ros.core.answers import AnswerStatus, format_reward, parse_answer
from cosmos_ros.core.prompts import mcq_prompt
from cosmos_ros.core.types import Clip

SHIPPED = Path(__file__).resolve().parents[2] / "model" / "cosmos-reason1-tiny"


def test_shipped_tiny_model_answers_an_mcq_in_the_strict_format():
    from cosmos_ros.engine import create_engine

    engine = create_engine("torch", SHIPPED)
    rng = np.random.default_rng(0)
    clip = Clip(rng.integers(0, 255, (16, 56, 56, 3), dtype=np.uint8), np.arange(16) / 4.0)
    options = ("Forward", "In reverse")
    reasoning = engine.reason(clip, mcq_prompt("Is this video playing forward or in reverse?", options),
                              max_new_tokens=32, temperature=0.0)  # fmt: skip
    assert format_reward(reasoning.text) == 1.0
    parsed = parse_answer(reasoning.text, options)
    assert parsed.status is AnswerStatus.OK and parsed.choice_text in options

"""The shipped trained checkpoint (model/cosmos-reason1-tiny) loads as users load it and answers in
the strict Cosmos format it was trained to write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

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


def test_a_live_camera_s_jitter_does_not_move_the_shipped_model_s_video_positions():
    # Qwen2.5-VL truncates t * tokens_per_second * 2 / fps to an integer position: told 4.001 fps
    # instead of 4, every video token but the first lands one temporal position back (and every
    # answer about live clips changed with it). The clip the buffer builds carries the grid rate.
    from cosmos_ros.core.frames import FrameBuffer
    from cosmos_ros.engine import create_engine
    from cosmos_ros.model.positions import rope_index

    engine = create_engine("torch", SHIPPED)
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 255, (12, 112, 112, 3), dtype=np.uint8)
    exact = 100.0 + np.arange(12) / 4.0
    live = FrameBuffer()
    jitter = rng.uniform(-0.003, 0.003, 12)
    jitter[[0, -1]] = 0.002, -0.002  # a span 4 ms short: 4.006 fps
    for frame, stamp in zip(frames, exact + jitter):
        live.add("cam", stamp, frame, received=stamp)
    prompt = mcq_prompt("Which block moved?", ("The red one", "The blue one"))
    positions = [
        rope_index(engine.model, engine.processor(clip, prompt).model_kwargs())[0]
        for clip in (live.clip(2.9, 4.0, 12), Clip(frames, exact))
    ]
    assert positions[0].shape == positions[1].shape
    assert torch.equal(positions[0], positions[1])

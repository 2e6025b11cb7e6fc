"""Questions and per-frame states shared by the occluder and container set-ups."""

from __future__ import annotations

import numpy as np

from cosmos_ros.sim.sample import Question, balanced_options

TASK = "object_permanence"

PLAUSIBLE = "Yes, the video is physically plausible"
IMPLAUSIBLE = "No, something happens that is physically impossible"
PLAUSIBILITY_QUESTION = "Could the events in this video happen in the real world?"


def plausibility_question(plausible: bool, think: str, rng: np.random.Generator) -> Question:
    correct, other = (PLAUSIBLE, IMPLAUSIBLE) if plausible else (IMPLAUSIBLE, PLAUSIBLE)
    options, answer = balanced_options(correct, [other], rng, 2)
    return Question(PLAUSIBILITY_QUESTION, options, answer, f"{TASK}/plausibility", think=think)


def location_question(question: str, places: dict[str, str], where: str, think: str, rng) -> Question:
    others = [text for key, text in places.items() if key != where]
    options, answer = balanced_options(places[where], others, rng, len(places))
    return Question(question, options, answer, f"{TASK}/location", think=think)


def states(exists: np.ndarray, visible: np.ndarray, contained: np.ndarray, carried: np.ndarray) -> list[str]:
    """Per-frame CATER state: visible, occluded, contained, carried, or absent."""
    out = []
    for e, v, c, m in zip(exists, visible, contained, carried):
        out.append(
            "absent" if not e else "carried" if m else "contained" if c else "visible" if v else "occluded"
        )
    return out

"""What a scenario produces: a rendered clip, its questions, its labels, and the physics behind it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from cosmos_ros.core.prompts import OPTION_LETTERS, failure_prompt, mcq_prompt, next_subtask_prompt
from cosmos_ros.core.types import Prompt, TaskKind
from cosmos_ros.sim.physics import Simulation, Trajectory


class Rejected(Exception):
    """The draw is degenerate (labels guessable or not shown by the pixels); draw again."""


@dataclass(frozen=True)
class Question:
    """One multiple-choice question about a video of the sample.

    kind (a TaskKind) picks the prompt builder so the dataset asks exactly what the reasoner node
    asks: QUESTION (mcq_prompt), NEXT_SUBTASK (next_subtask_prompt with `task`), FAILURE
    (failure_prompt with `task` and optional `subtask`; options are FAILURE_OPTIONS).
    video: which video of the sample it is about ('clip' or a key of Sample.videos).
    """

    question: str
    options: tuple[str, ...]
    answer: int
    category: str
    kind: TaskKind = TaskKind.QUESTION
    task: str = ""
    subtask: str = ""
    think: str = ""
    video: str = "clip"

    def __post_init__(self) -> None:
        if not 0 <= self.answer < len(self.options):
            raise ValueError(f"answer index {self.answer} out of range for {len(self.options)} options")
        if len({o.casefold() for o in self.options}) != len(self.options):
            raise ValueError(f"options must be distinct: {self.options}")

    @property
    def answer_letter(self) -> str:
        return OPTION_LETTERS[self.answer]

    @property
    def answer_text(self) -> str:
        return self.options[self.answer]

    def prompt(self) -> Prompt:
        if self.kind == TaskKind.NEXT_SUBTASK:
            return next_subtask_prompt(self.task, self.options)
        if self.kind == TaskKind.FAILURE:
            prompt = failure_prompt(self.task, self.subtask or None)
            if prompt.options != self.options:
                raise ValueError(
                    f"failure questions use FAILURE_OPTIONS {prompt.options}, got {self.options}"
                )
            return prompt
        return mcq_prompt(self.question, self.options)


@dataclass(kw_only=True)
class Sample:
    """One generated clip, built with keywords.

    frames are what the model sees (already reversed or shuffled); trajectory is the physical
    run in simulated-time order, for the USD export. labels are JSON-ready per-clip and
    per-frame ground truth. scene_key identifies the physical set-up (not its rendering
    variant), for split-leakage checks. videos: extra videos cut from the clip, name ->
    (first frame, end frame), e.g. the prefix shown for a next-subtask question. seed is the clip
    seed, set by the scenario's draw loop (scenarios.common.draw_sample) once a draw is kept.
    """

    task: str
    seed: int | None = None
    variant: str
    frames: np.ndarray  # (T, H, W, 3) uint8
    fps: float
    questions: list[Question]
    labels: dict
    scene_key: str
    sim: Simulation | None = None
    trajectory: Trajectory | None = None
    videos: dict[str, tuple[int, int]] = field(default_factory=dict)

    def video_frames(self, name: str) -> np.ndarray:
        if name == "clip":
            return self.frames
        start, end = self.videos[name]
        return self.frames[start:end]


def balanced_options(
    correct: str, distractors: list[str], rng: np.random.Generator, count: int
) -> tuple[tuple[str, ...], int]:
    """`count` options: the correct one at a uniformly random letter among random distractors."""
    if len(distractors) < count - 1:
        raise ValueError(f"need {count - 1} distractors, got {len(distractors)}")
    picked = [distractors[i] for i in rng.permutation(len(distractors))[: count - 1]]
    answer = int(rng.integers(count))
    options = picked[:answer] + [correct] + picked[answer:]
    return tuple(options), answer


def scene_key(*parts) -> str:
    """A short hash of the physical set-up's parameters."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]

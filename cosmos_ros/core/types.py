"""Value types shared by every floor of the package: clips in, reasoning out.

Pure Python + numpy. These are the contracts between the frame buffer, the
engines and the nodes; keep them small and stable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, IntEnum

import numpy as np


@dataclass(frozen=True)
class Clip:
    """A short video: RGB frames with the capture time of each.

    frames: (T, H, W, 3) uint8, RGB order, T >= 1
    stamps: (T,) float64 seconds (ROS time of each frame's header), increasing
    cameras: names of the cameras the frames came from (several when tiled)
    fps: the nominal frame rate the clip was sampled at, or None to take it from the stamps.
        A live camera's stamps jitter by milliseconds; the rate the model is told must not,
        because Qwen2.5-VL's temporal positions are floor(t * tokens_per_second * 2 / fps):
        4 fps measured as 4.001 moves every video token but the first back by one position.
        FrameBuffer.clip sets it from its resampling grid.
    """

    frames: np.ndarray
    stamps: np.ndarray
    cameras: tuple[str, ...] = ()
    fps: float | None = None

    def __post_init__(self) -> None:
        if self.frames.ndim != 4 or self.frames.shape[-1] != 3 or self.frames.dtype != np.uint8:
            raise ValueError(
                f"Clip.frames must be (T, H, W, 3) uint8 RGB, got {self.frames.shape} {self.frames.dtype}"
            )
        if self.stamps.shape != (self.frames.shape[0],):
            raise ValueError(
                f"Clip.stamps must have one stamp per frame: {self.stamps.shape} vs {self.frames.shape[0]} frames"
            )
        if self.frames.shape[0] == 0:
            raise ValueError("Clip must hold at least one frame")
        if self.fps is not None and not (np.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"Clip.fps must be a finite rate > 0 or None, got {self.fps}")

    @property
    def start(self) -> float:
        return float(self.stamps[0])

    @property
    def end(self) -> float:
        return float(self.stamps[-1])

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    def rate(self, default: float) -> float:
        """The nominal frame rate when the clip has one (`fps`), else the rate its stamps imply;
        `default` for a single frame or a zero-length span."""
        if self.fps is not None:
            return float(self.fps)
        span = float(self.stamps[-1] - self.stamps[0]) if len(self.stamps) > 1 else 0.0
        return (len(self.stamps) - 1) / span if span > 0 else default


class OutcomeStatus(IntEnum):
    """What became of a question — the STATUS_* constants of every cosmos_ros message, service
    and action carry these values (a test ties them)."""

    OK = 0
    NONE = 1
    UNCERTAIN = 2
    STALE = 3
    ERROR = 4
    BUSY = 5
    INVALID = 6

    @classmethod
    def name_of(cls, value: int) -> str:
        """'OK', 'NONE', … for a status value; the number itself for one this version does not know."""
        try:
            return cls(value).name
        except ValueError:
            return str(value)


class TaskKind(str, Enum):
    """What a question asks; its value is the name the datasets and reports write."""

    NEXT_SUBTASK = "next_subtask"
    FAILURE = "failure"
    QUESTION = "question"

    def __str__(self) -> str:  # "failure", not "TaskKind.FAILURE", in f-strings and reports
        return self.value


@dataclass(frozen=True)
class Prompt:
    """What the model is asked about a clip.

    `text` is the full user text that follows the video (question, lettered
    options, reasoning add-on); `options` are the MCQ option texts in letter
    order (A, B, ...), empty for free-form questions.
    """

    text: str
    kind: TaskKind = TaskKind.QUESTION
    options: tuple[str, ...] = ()
    system: str = "You are a helpful assistant."


@dataclass
class Reasoning:
    """What an engine returns for one clip + prompt: the raw generated text and
    how sure the model was of its answer. Parsing into think/answer/choice is
    `cosmos_ros.core.answers.parse_answer`'s job, so every backend is parsed alike.

    confidence: geometric mean probability of the answer's tokens (NaN when the output has no
                answer span)
    answer_format: where the model puts its answer ("tags": <answer>…</answer>, Cosmos-Reason1;
                "after_think": after </think>, Cosmos-Reason2), for `parse_answer`
    """

    text: str
    confidence: float = float("nan")
    num_prompt_tokens: int = 0
    num_generated_tokens: int = 0
    latency_s: float = 0.0
    model_id: str = ""
    finish_reason: str = "length"  # "stop" (EOS / stop string) or "length"
    token_probs: list[float] = field(default_factory=list)
    # seconds per stage of this answer where the engine measures them: "preprocess" (clip and
    # prompt to model inputs), "prefill" (vision + prompt, first token), "decode" (the rest)
    stages: dict[str, float] = field(default_factory=dict)
    answer_format: str = "tags"

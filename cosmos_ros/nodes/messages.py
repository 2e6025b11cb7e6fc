"""Outcome → cosmos_ros messages, and ROS time ↔ float seconds."""

from __future__ import annotations

import math

from builtin_interfaces.msg import Time

from cosmos_ros.core.codec import time_nanoseconds
from cosmos_ros.core.prompts import FAILED_CHOICE
from cosmos_ros.core.types import OutcomeStatus
from cosmos_ros.msg import FailureDetection, SubtaskPrediction
from cosmos_ros.nodes.worker import Outcome


class StampBase:
    """Header stamps as float seconds counted from the first stamp's whole second.

    The frame buffer and clips work in float seconds. Seconds since 1970 in a float64 keep only
    ~240 ns, so a published clip_end would not equal the frame's own stamp; counted from a
    nearby base second they stay exact to the nanosecond for about 100 days.
    """

    def __init__(self) -> None:
        self.base_sec: int | None = None

    def to_seconds(self, stamp) -> float:
        if self.base_sec is None:
            self.base_sec = int(stamp.sec)
        return (stamp.sec - self.base_sec) + stamp.nanosec * 1e-9

    def to_time(self, seconds: float) -> Time:
        if self.base_sec is None or not math.isfinite(seconds):
            return Time()
        whole = math.floor(seconds)
        nanosec = int(round((seconds - whole) * 1e9))
        if nanosec >= 1_000_000_000:
            whole, nanosec = whole + 1, nanosec - 1_000_000_000
        sec = self.base_sec + int(whole)
        return Time(sec=sec, nanosec=nanosec) if sec >= 0 else Time()


class StampTicks:
    """Periodic answers driven by a camera's stamps, for sim time (use_sim_time:=true).

    One answer each time the stamps enter a new period of `period_ns` (counted from stamp 0), on
    the clip ending at the last frame of the period before. A camera's frames arrive in order, so
    every frame of that clip is in the buffer by then: the clip depends on the stamps alone, not
    on how the frames interleave with /clock, and a replayed bag gets the same clips every time.
    """

    def __init__(self) -> None:
        self.index: int | None = None  # the period the newest frame is in
        self.newest: float | None = None  # that frame, buffer seconds

    def offer(self, stamp, seconds: float, period_ns: int, restart: bool = False) -> float | None:
        """A frame's header stamp and buffer seconds; the clip end to answer on, or None. After a
        clock jump (restart) or a stamp from an earlier period (a bag played again) counting
        starts over from that frame."""
        index = time_nanoseconds(stamp) // period_ns
        previous, self.newest = self.newest, seconds
        if restart or self.index is None or index < self.index:
            self.index = index
            return None
        if index == self.index:
            return None
        self.index = index
        return previous


def _confidence(outcome: Outcome) -> float:
    if outcome.reasoning is None:
        return float("nan")
    return float(outcome.reasoning.confidence)


def _fill_common(msg, outcome: Outcome, stamps: StampBase, frame_id: str) -> None:
    """Fields SubtaskPrediction, FailureDetection and the Reason results share."""
    msg.clip_start = stamps.to_time(outcome.clip_start)
    msg.clip_end = stamps.to_time(outcome.clip_end)
    msg.num_frames = outcome.num_frames
    msg.reasoning = outcome.parsed.think if outcome.parsed else ""
    msg.answer = outcome.parsed.answer if outcome.parsed else ""
    msg.confidence = _confidence(outcome)
    msg.status = int(outcome.status)
    msg.status_message = outcome.message
    msg.model_id = outcome.model_id
    msg.latency_s = float(outcome.latency_s)
    if hasattr(msg, "header"):
        msg.header.stamp = msg.clip_end
        msg.header.frame_id = frame_id
        msg.cameras = list(outcome.cameras)


def subtask_prediction(outcome: Outcome, stamps: StampBase, frame_id: str = "") -> SubtaskPrediction:
    msg = SubtaskPrediction()
    _fill_common(msg, outcome, stamps, frame_id)
    msg.task, msg.task_id = outcome.task, outcome.task_id
    msg.options = list(outcome.prompt.options) if outcome.prompt else []
    parsed = outcome.parsed
    msg.choice_index = parsed.choice_index if parsed else -1
    if outcome.status is OutcomeStatus.OK and parsed is not None:
        msg.subtask = parsed.choice_text if parsed.choice_index >= 0 else parsed.answer
    return msg


def failure_detection(outcome: Outcome, stamps: StampBase, frame_id: str = "") -> FailureDetection:
    msg = FailureDetection()
    _fill_common(msg, outcome, stamps, frame_id)
    msg.task, msg.task_id, msg.subtask = outcome.task, outcome.task_id, outcome.subtask
    parsed = outcome.parsed
    if outcome.status is OutcomeStatus.OK and parsed is not None and parsed.choice_index >= 0:
        failed = parsed.choice_index == FAILED_CHOICE
        msg.verdict = FailureDetection.VERDICT_FAILURE if failed else FailureDetection.VERDICT_SUCCESS
        msg.reason = parsed.choice_text
    else:
        msg.verdict = FailureDetection.VERDICT_UNCERTAIN
        msg.reason = outcome.message
    return msg


class FailureConfirmation:
    """Holds back a FAILURE verdict until `needed` answers in a row about the same task said so.

    One answer about one window is a noisy witness: a planner that replans on each would replan
    on every false alarm. Answers in between that are not OK (no answer, stale camera) neither
    count nor break the run; a SUCCESS verdict or another task (its id, or the task or subtask
    text when the task comes from parameters and has no id) starts it again. A held-back
    FAILURE goes out as VERDICT_UNCERTAIN with STATUS_UNCERTAIN, its raw answer kept, so a planner
    acting on OK answers only waits for the confirmation.
    """

    def __init__(self) -> None:
        self.task: tuple[str, str, str] | None = None  # (task id, task, subtask) of the run
        self.run = 0

    def apply(self, msg: FailureDetection, needed: int) -> FailureDetection:
        task = (msg.task_id, msg.task, msg.subtask)
        if task != self.task:
            self.task, self.run = task, 0
        if msg.status != FailureDetection.STATUS_OK:
            return msg
        if msg.verdict != FailureDetection.VERDICT_FAILURE:
            self.run = 0
            return msg
        self.run += 1
        if self.run < needed:
            msg.verdict, msg.status = FailureDetection.VERDICT_UNCERTAIN, FailureDetection.STATUS_UNCERTAIN
            msg.status_message = (
                f"failure seen in {self.run} of the {needed} answers in a row needed (failure_confirmations)"
            )
        return msg


def fill_reason_result(result, outcome: Outcome, stamps: StampBase) -> None:
    """Fills a Reason.Response or Reason.Result (same fields) from an outcome."""
    _fill_common(result, outcome, stamps, "")
    parsed = outcome.parsed
    result.choice_index = parsed.choice_index if parsed else -1
    result.choice_text = parsed.choice_text if parsed else ""

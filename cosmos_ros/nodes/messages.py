"""Outcome → cosmos_ros messages, and ROS time ↔ float seconds."""

from __future__ import annotations

import math

from builtin_interfaces.msg import Time

from cosmos_ros.core.prompts import FAILED_CHOICE
from cosmos_ros.msg import FailureDetection, SubtaskPrediction
from cosmos_ros.nodes.worker import Outcome, OutcomeStatus


def to_time(seconds: float) -> Time:
    if not math.isfinite(seconds) or seconds < 0:
        return Time()
    sec = int(math.floor(seconds))
    nanosec = min(int(round((seconds - sec) * 1e9)), 999_999_999)
    return Time(sec=sec, nanosec=nanosec)


def from_time(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def _confidence(outcome: Outcome) -> float:
    if outcome.reasoning is None:
        return float("nan")
    return float(outcome.reasoning.confidence)


def _fill_common(msg, outcome: Outcome, frame_id: str) -> None:
    """Fields SubtaskPrediction, FailureDetection and the Reason results share."""
    msg.clip_start = to_time(outcome.clip_start)
    msg.clip_end = to_time(outcome.clip_end)
    msg.num_frames = outcome.num_frames
    msg.reasoning = outcome.parsed.think if outcome.parsed else ""
    msg.answer = outcome.parsed.answer if outcome.parsed else ""
    msg.confidence = _confidence(outcome)
    msg.status = int(outcome.status)
    msg.status_message = outcome.message
    msg.model_id = outcome.model_id
    msg.latency_s = float(outcome.latency_s)
    if hasattr(msg, "header"):
        msg.header.stamp = to_time(outcome.clip_end)
        msg.header.frame_id = frame_id
        msg.cameras = list(outcome.cameras)


def subtask_prediction(outcome: Outcome, task: str, frame_id: str = "") -> SubtaskPrediction:
    msg = SubtaskPrediction()
    _fill_common(msg, outcome, frame_id)
    msg.task = task
    msg.options = list(outcome.prompt.options) if outcome.prompt else []
    parsed = outcome.parsed
    msg.choice_index = parsed.choice_index if parsed else -1
    if outcome.status is OutcomeStatus.OK and parsed is not None:
        msg.subtask = parsed.choice_text if parsed.choice_index >= 0 else parsed.answer
    return msg


def failure_detection(outcome: Outcome, task: str, subtask: str = "", frame_id: str = "") -> FailureDetection:
    msg = FailureDetection()
    _fill_common(msg, outcome, frame_id)
    msg.task = task
    msg.subtask = subtask
    parsed = outcome.parsed
    if outcome.status is OutcomeStatus.OK and parsed is not None and parsed.choice_index >= 0:
        failed = parsed.choice_index == FAILED_CHOICE
        msg.verdict = FailureDetection.VERDICT_FAILURE if failed else FailureDetection.VERDICT_SUCCESS
        msg.reason = parsed.choice_text
    else:
        msg.verdict = FailureDetection.VERDICT_UNCERTAIN
        msg.reason = outcome.message
    return msg


def fill_reason_result(result, outcome: Outcome) -> None:
    """Fills a Reason.Response or Reason.Result (same fields) from an outcome."""
    _fill_common(result, outcome, "")
    parsed = outcome.parsed
    result.choice_index = parsed.choice_index if parsed else -1
    result.choice_text = parsed.choice_text if parsed else ""

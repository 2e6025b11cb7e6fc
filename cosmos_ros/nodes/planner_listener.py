"""planner_listener: what a robot planner writes to consume the reasoner's topics.

Subscribes `next_subtask` (SubtaskPrediction) and `failure` (FailureDetection) — remap them to
the reasoner's `~/next_subtask` and `~/failure` — and `task` (TaskContext, the reasoner's `~/task`,
which the planner itself publishes; here another node plays the planner). It acts on answers the
way a planner should: only STATUS_OK answers about the current task id, above `min_confidence`,
about clips no older than `max_age_s`; a FAILURE verdict is a request to replan (once per task).
Here "acting" is a log line ("next: ...", "FAILURE: ... -> replan"); a real planner would switch
behaviours instead.
"""

from __future__ import annotations

import math
import sys

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.time import Time

from cosmos_ros.core.types import OutcomeStatus
from cosmos_ros.msg import FailureDetection, SubtaskPrediction, TaskContext
from cosmos_ros.nodes import params
from cosmos_ros.nodes.runner import run_node

VERDICT_NAMES = {0: "SUCCESS", 1: "FAILURE", 2: "UNCERTAIN"}
PARAMETERS = {
    "min_confidence": (0.0, "act only on answers at least this confident", True),
    "max_age_s": (10.0, "ignore answers about clips older than this, s", True),
}
RANGES = {"min_confidence": (0.0, 1.0), "max_age_s": (0.0, 1.0e6)}
THROTTLE_S = 10.0  # routine lines (ignored answers, SUCCESS verdicts) at most this often


class PlannerListener(Node):
    def __init__(self, **kwargs):
        super().__init__("planner_listener", **kwargs)
        values = params.declare(self, PARAMETERS, ranges=RANGES)
        self.min_confidence, self.max_age_s = values.min_confidence, values.max_age_s
        self.current_subtask = ""
        self.task_id = ""  # the task the robot is on; "" until a TaskContext arrives
        self.replanned: set[str] = set()
        latched = QoSProfile(
            depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
        )
        self.create_subscription(TaskContext, "task", self._on_task, latched)
        self.create_subscription(SubtaskPrediction, "next_subtask", self._on_subtask, 10)
        self.create_subscription(FailureDetection, "failure", self._on_failure, 10)

    def _on_task(self, msg: TaskContext) -> None:
        if msg.task_id != self.task_id:
            self.task_id, self.current_subtask = msg.task_id, ""
            self.get_logger().info(f"task {msg.task_id!r}: {msg.task}")

    def _usable(self, msg) -> str:
        """'' when the planner may act on msg, else why not."""
        if self.task_id and msg.task_id != self.task_id:
            return f"about task {msg.task_id!r}, the robot is on {self.task_id!r}"
        if msg.status != SubtaskPrediction.STATUS_OK:
            return f"status {OutcomeStatus.name_of(msg.status)}: {msg.status_message}"
        if math.isfinite(msg.confidence) and msg.confidence < self.min_confidence:
            return f"confidence {msg.confidence:.2f} < {self.min_confidence:.2f}"
        age = (self.get_clock().now() - Time.from_msg(msg.header.stamp)).nanoseconds * 1e-9
        if age > self.max_age_s:
            return f"clip is {age:.1f} s old"
        return ""

    def _on_subtask(self, msg: SubtaskPrediction) -> None:
        why_not = self._usable(msg)
        if why_not:
            self.get_logger().info(f"next subtask: ignored ({why_not})", throttle_duration_sec=THROTTLE_S)
            return
        if msg.subtask != self.current_subtask:
            self.current_subtask = msg.subtask
            self.get_logger().info(
                f"next: '{msg.subtask}' (confidence {msg.confidence:.2f}, {msg.num_frames} frames, "
                f"{msg.latency_s:.2f} s)"
            )

    def _on_failure(self, msg: FailureDetection) -> None:
        why_not = self._usable(msg)
        if why_not:
            self.get_logger().info(f"failure check: ignored ({why_not})", throttle_duration_sec=THROTTLE_S)
            return
        if msg.verdict == FailureDetection.VERDICT_FAILURE and msg.task_id not in self.replanned:
            self.replanned.add(msg.task_id)
            self.get_logger().warning(
                f"FAILURE: {msg.reason} (confidence {msg.confidence:.2f}) -> replan '{msg.task}'"
            )
        else:
            verdict = VERDICT_NAMES.get(msg.verdict, str(msg.verdict))
            self.get_logger().info(
                f"failure check: {verdict} (confidence {msg.confidence:.2f})", throttle_duration_sec=THROTTLE_S
            )


def main(args=None) -> int:
    return run_node(PlannerListener, "planner_listener", args=args)


if __name__ == "__main__":
    sys.exit(main())

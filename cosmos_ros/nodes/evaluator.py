"""evaluator: scores the reasoner against the sim camera's ground truth.

Listens to `ground_truth` (std_msgs/String JSON from sim_camera; fields in
cosmos_ros.sim.evaluation). For every *question* record it asks the reasoner's `reason` service
the same multiple-choice question about the window the question's video covered, and scores the
chosen option against the answer. It also scores the reasoner's periodic `next_subtask`
(SubtaskPrediction) and `failure` (FailureDetection) messages whose task is the task of the clip
they watched (manipulation clips; set the reasoner's `task` to match to get these scored).

Running accuracy goes to `~/accuracy` (std_msgs/String JSON) after every score. After
`num_questions` service answers (0 = never) it logs the accuracy report, writes it to
`report_path` if set, and exits — which ends a `cosmos-ros launch sim_eval` run.
"""

from __future__ import annotations

import json
import sys
from collections import deque

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from cosmos_ros.msg import FailureDetection, SubtaskPrediction
from cosmos_ros.sim.evaluation import Scoreboard, expected_next_subtask
from cosmos_ros.srv import Reason
from cosmos_ros.nodes.runner import run_node

STATUS_NAMES = {0: "ok", 1: "none", 2: "uncertain", 3: "stale", 4: "error", 5: "busy", 6: "invalid"}


def _seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


class Evaluator(Node):
    def __init__(self, **kwargs):
        super().__init__("evaluator", **kwargs)
        describe = lambda text: ParameterDescriptor(description=text, read_only=True)  # noqa: E731
        self.declare_parameter(
            "num_questions", 0, describe("service answers to score before the report; 0 = never stop")
        )
        self.declare_parameter(
            "report_path", "", describe("write the final JSON report here ('' = log only)")
        )
        self.declare_parameter(
            "max_new_tokens", 0, describe("generation budget per question; 0 = reasoner default")
        )
        self.declare_parameter("service_timeout_s", 10.0, describe("how long to wait for the reason service"))
        get = lambda name: self.get_parameter(name).value  # noqa: E731
        self.num_questions, self.report_path = int(get("num_questions")), get("report_path")
        self.max_new_tokens = int(get("max_new_tokens"))
        if self.num_questions < 0 or self.max_new_tokens < 0:
            raise ValueError("num_questions and max_new_tokens must be >= 0")

        self.scores = Scoreboard()
        self.answered = 0
        self.finished = False
        self._clips: deque[dict] = deque(maxlen=20)  # clip records, newest last
        self._periodic: deque = deque(maxlen=200)  # periodic predictions waiting for their clip record
        group = ReentrantCallbackGroup()
        self._client = self.create_client(Reason, "reason", callback_group=group)
        if not self._client.wait_for_service(timeout_sec=float(get("service_timeout_s"))):
            self.get_logger().warning("the reason service is not up yet; questions wait for it")
        truth_qos = QoSProfile(
            depth=50, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
        )
        self.create_subscription(String, "ground_truth", self._on_truth, truth_qos, callback_group=group)
        self.create_subscription(
            SubtaskPrediction, "next_subtask", self._on_periodic, 10, callback_group=group
        )
        self.create_subscription(FailureDetection, "failure", self._on_periodic, 10, callback_group=group)
        self._accuracy_pub = self.create_publisher(String, "~/accuracy", 10)
        self.get_logger().info(
            f"scoring the reasoner; report after {self.num_questions or 'unlimited'} questions"
        )

    def _on_truth(self, msg: String) -> None:
        record = json.loads(msg.data)
        if record["type"] == "clip":
            self._clips.append(record)
            pending, self._periodic = list(self._periodic), deque(maxlen=200)
            for prediction in pending:
                self._on_periodic(prediction)
        elif record["type"] == "question" and not self.finished:
            window = record["window"]
            request = Reason.Request(
                question=record["question"],
                options=record["options"],
                window_s=float(window["end"] - window["start"]) + 0.05,
                max_new_tokens=self.max_new_tokens,
            )
            future = self._client.call_async(request)
            future.add_done_callback(lambda f, r=record: self._on_answer(r, f))

    def _on_answer(self, record: dict, future) -> None:
        response = future.result()
        if self.finished or response is None:
            return
        status = STATUS_NAMES.get(response.status, str(response.status))
        correct = response.status == Reason.Response.STATUS_OK and response.choice_index == record["answer"]
        if (response.clip_end.sec, response.clip_end.nanosec) != tuple(record["window"]["end_stamp"]):
            self.scores.window_mismatches += 1  # the reasoner saw a later frame than the question's video
        self.scores.record(record["category"], correct, status)
        self.answered += 1
        self.get_logger().info(
            f"{record['clip_id']} {record['category']}: "
            f"answered {response.choice_text or response.answer or status!r}, "
            f"truth {record['answer_text']!r} -> {'correct' if correct else 'wrong'} "
            f"(running accuracy {self.scores.correct}/{self.scores.asked})"
        )
        self._publish_accuracy()
        if self.num_questions and self.answered >= self.num_questions:
            self._finish()

    def _on_periodic(self, msg) -> None:
        end = _seconds(msg.clip_end)
        clip = next((c for c in self._clips if c["task_text"] and c["frame_stamps"] and
                     c["frame_stamps"][0][0] + c["frame_stamps"][0][1] * 1e-9 <= end <=
                     c["frame_stamps"][-1][0] + c["frame_stamps"][-1][1] * 1e-9 + 1e-6), None)  # fmt: skip
        if clip is None:
            self._periodic.append(msg)  # its clip record comes when the clip ends
            return
        if msg.task != clip["task_text"] or msg.status != SubtaskPrediction.STATUS_OK:
            return  # the reasoner was watching for another task, or has no answer
        if isinstance(msg, SubtaskPrediction):
            expected = expected_next_subtask(clip, end)
            if expected is not None and expected in msg.options:
                self.scores.record("periodic/next_subtask", msg.subtask.casefold() == expected.casefold())
        elif msg.verdict != FailureDetection.VERDICT_UNCERTAIN:
            self.scores.record(
                "periodic/failure", (msg.verdict == FailureDetection.VERDICT_FAILURE) == bool(clip["failed"])
            )
        self._publish_accuracy()

    def _publish_accuracy(self) -> None:
        self._accuracy_pub.publish(String(data=json.dumps(self.scores.summary())))

    def _finish(self) -> None:
        self.finished = True
        summary = self.scores.summary()
        self.get_logger().info("accuracy report\n" + self.scores.report())
        if self.report_path:
            with open(self.report_path, "w") as file:
                json.dump(summary, file, indent=1)
            self.get_logger().info(f"report written to {self.report_path}")
        self._publish_accuracy()
        self.context.try_shutdown()  # ends spin(); main() exits 0


def main(args=None) -> int:
    return run_node(Evaluator, "evaluator", args=args, threads=2)


if __name__ == "__main__":
    sys.exit(main())

"""evaluator: scores the reasoner against the sim camera's ground truth.

Listens to `ground_truth` (std_msgs/String JSON from sim_camera; fields in
cosmos_ros.sim.evaluation). For every *question* record it asks the reasoner's `reason` service
the same multiple-choice question about the window the question's video covered, and scores the
chosen option against the answer. It also scores the reasoner's periodic `next_subtask`
(SubtaskPrediction) and `failure` (FailureDetection) messages about live episodes (sim_camera
`mode:=episodes`): each carries the task id it answered, which is the episode's clip id, and is
scored against that episode's record (cosmos_ros.sim.evaluation.EpisodeScores: next-subtask
accuracy, failure precision / recall / F1, detection latency, false alarms).

Running scores go to `~/accuracy` (std_msgs/String JSON). After `num_questions` service answers
or `duration_s` seconds (0 = never) it logs the report, writes it to `report_path` if set (also
after every episode, so a stopped run leaves its report), and exits — which ends a
`cosmos-ros launch` run.
"""

from __future__ import annotations

import json
import os
import sys

from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from cosmos_ros.core.codec import time_seconds
from cosmos_ros.core.types import OutcomeStatus, TaskKind
from cosmos_ros.msg import FailureDetection, SubtaskPrediction
from cosmos_ros.sim.evaluation import EpisodeScores, PeriodicAnswer, Scoreboard, episode_report
from cosmos_ros.srv import Reason
from cosmos_ros.nodes import params
from cosmos_ros.nodes.runner import run_node

PARAMETERS = {
    "num_questions": (0, "service answers to score before the report; 0 = never stop", True),
    "report_path": ("", "write the final JSON report here ('' = log only)", True),
    "max_new_tokens": (0, "generation budget per question; 0 = reasoner default", True),
    "service_timeout_s": (10.0, "how long to wait for the reason service at start, s", True),
    "duration_s": (0.0, "report and exit after this many seconds; 0 = never", True),
}
RANGES = {
    "num_questions": (0, 1_000_000),
    "max_new_tokens": (0, 32768),
    "service_timeout_s": (0.0, 3600.0),
    "duration_s": (0.0, 1.0e7),
}
VERDICTS = {FailureDetection.VERDICT_FAILURE: True, FailureDetection.VERDICT_SUCCESS: False}


class Evaluator(Node):
    def __init__(self, **kwargs):
        super().__init__("evaluator", **kwargs)
        # duration_s: integer or double, as `duration:=300` from a launch command line is an integer
        values = params.declare(self, PARAMETERS, ranges=RANGES, dynamic=("duration_s",))
        self.num_questions, self.report_path = values.num_questions, values.report_path
        self.max_new_tokens, duration = values.max_new_tokens, float(values.duration_s)

        self.scores = Scoreboard()
        self.episodes = EpisodeScores()
        self.answered = 0
        self.finished = False
        group = ReentrantCallbackGroup()
        self._client = self.create_client(Reason, "reason", callback_group=group)
        if not self._client.wait_for_service(timeout_sec=values.service_timeout_s):
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
        if duration:
            self._deadline = self.create_timer(duration, self._finish, callback_group=group)
        until = [f"{self.num_questions} questions"] * bool(self.num_questions) + [f"{duration:g} s"] * bool(duration)
        self.get_logger().info(f"scoring the reasoner; report after {' or '.join(until) or 'Ctrl-C'}")

    def _on_truth(self, msg: String) -> None:
        record = json.loads(msg.data)
        if record["type"] == "clip":
            if record.get("task_text") and not self.finished:  # an episode with a task to score
                self.episodes.add_record(record)
                self._log_episode(record)
                self._write_report()
                self._publish_accuracy()
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
        status = OutcomeStatus.name_of(response.status).lower()
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
        if not msg.task_id or self.finished:
            return  # answers from the reasoner's parameters are about no episode
        subtask = isinstance(msg, SubtaskPrediction)
        answer = PeriodicAnswer(
            kind=TaskKind.NEXT_SUBTASK if subtask else TaskKind.FAILURE,
            clip_end=time_seconds(msg.clip_end),
            received=self.get_clock().now().nanoseconds * 1e-9,
            status=OutcomeStatus.name_of(msg.status).lower(),
            subtask=msg.subtask if subtask else "",
            failed=None if subtask else VERDICTS.get(msg.verdict),
        )
        self.episodes.add_answer(msg.task_id, answer)

    def _log_episode(self, record: dict) -> None:
        answers = self.episodes.answers.get(record["clip_id"], [])
        alarms = sum(1 for a in answers if a.kind == TaskKind.FAILURE and a.status == "ok" and a.failed)
        self.get_logger().info(
            f"episode {record['clip_id']} ({record.get('outcome')}): {len(answers)} answers, "
            f"{alarms} FAILURE verdicts; running next-subtask accuracy "
            f"{self.episodes.summary()['next_subtask_accuracy']}"
        )

    def _summary(self) -> dict:
        """The questions' scores (asked, accuracy, per_category, ...) and the episodes' (episodes,
        next_subtask_accuracy, failure_f1, ...): their keys are distinct."""
        return {**self.scores.summary(), **self.episodes.summary()}

    def _publish_accuracy(self) -> None:
        self._accuracy_pub.publish(String(data=json.dumps(self._summary())))

    def _write_report(self) -> None:
        if not self.report_path:
            return
        partial = f"{self.report_path}.tmp"
        with open(partial, "w") as file:
            json.dump(self._summary(), file, indent=1)
        os.replace(partial, self.report_path)

    def _finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        report = []
        if self.scores.asked:
            report.append("accuracy report\n" + self.scores.report())
        if self.episodes.records:
            report.append("robot loop\n" + episode_report(self.episodes.summary()))
        self.get_logger().info("report\n" + "\n".join(report or ["nothing was scored"]))
        self._write_report()
        if self.report_path:
            self.get_logger().info(f"report written to {self.report_path}")
        self._publish_accuracy()
        self.context.try_shutdown()  # ends spin(); main() exits 0


def main(args=None) -> int:
    return run_node(Evaluator, "evaluator", args=args, threads=2)


if __name__ == "__main__":
    sys.exit(main())

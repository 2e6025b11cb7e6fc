"""Testing in simulation as a user runs it (`cosmos-ros launch sim_eval`): sim camera, reasoner
(with the scripted engine, which always answers A) and evaluator as separate processes. The
evaluator's score must be exactly what the announced ground truth implies for that engine."""

from __future__ import annotations

import json
import sys

import pytest
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosharness import Probe, Process, child_env, unique_domain_id, wait_for
from sensor_msgs.msg import Image
from std_msgs.msg import String

pytest.importorskip("mujoco", reason="mujoco is not installed")
pytestmark = [pytest.mark.ros, pytest.mark.slow]

QUESTIONS = 3


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    report = tmp_path_factory.mktemp("sim_eval") / "report.json"
    domain = unique_domain_id()
    probe = Probe(domain)
    latched = QoSProfile(
        depth=50, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
    )
    seen = {
        "frames": probe.collect(Image, "/sim/camera/image_raw"),
        "truth": probe.collect(String, "/sim/camera/ground_truth", latched),
        "accuracy": probe.collect(String, "/sim/evaluator/accuracy"),
    }
    command = [
        sys.executable, "-m", "cosmos_ros.cli", "launch", "sim_eval", "scenario:=spatial_puzzle",
        "engine:=scripted_engine:create", f"num_questions:={QUESTIONS}", "width:=96", "height:=96",
        f"report_path:={report}",
    ]  # fmt: skip
    launcher = Process(command, child_env(domain))
    try:
        wait_for(lambda: launcher.proc.poll() is not None, 120, "the evaluator's report to end the run")
        yield launcher, seen, report
    finally:
        probe.close()
        launcher.stop()


def test_the_run_ends_cleanly_with_an_accuracy_report(run):
    launcher, _, report = run
    assert launcher.stop() == 0, launcher.output[-3000:]
    assert "accuracy report" in launcher.output
    assert json.loads(report.read_text())["asked"] == QUESTIONS


def test_scores_match_the_announced_ground_truth(run):
    _, seen, report = run
    questions = [json.loads(m.data) for m in seen["truth"]]
    questions = [q for q in questions if q["type"] == "question"][:QUESTIONS]
    assert len(questions) == QUESTIONS
    expected = sum(q["answer_letter"] == "A" for q in questions)  # the scripted engine answers A
    summary = json.loads(report.read_text())
    assert summary["correct"] == expected
    assert summary["statuses"] == {"ok": QUESTIONS}
    assert summary["window_mismatches"] == 0  # each answer saw exactly the question's video


def test_the_camera_publishes_frames_and_the_evaluator_a_running_accuracy(run):
    _, seen, _ = run
    assert seen["frames"] and (seen["frames"][0].width, seen["frames"][0].height) == (96, 96)
    # The last update goes out as the evaluator exits and may not be delivered; the report is the
    # record of the final score.
    wait_for(lambda: len(seen["accuracy"]) >= 1, 5, "accuracy updates")
    asked = [json.loads(m.data)["asked"] for m in seen["accuracy"]]
    assert asked == sorted(asked) and 1 <= asked[-1] <= QUESTIONS

"""The camera graph as a user starts it (`cosmos-ros launch camera_demo`): camera, reasoner and planner as
separate processes on real ROS 2, observed and questioned from this test process."""

from __future__ import annotations

import math
import sys

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import Image

from rosharness import Probe, Process, child_env, diagnostic_values, unique_domain_id, wait_for, wait_future
from cosmos_ros.action import Reason as ReasonAction
from cosmos_ros.msg import FailureDetection, SubtaskPrediction
from cosmos_ros.srv import Reason as ReasonService

pytestmark = [pytest.mark.ros, pytest.mark.slow]

WINDOW_S = 4.0  # launch/reasoner.params.yaml


def stamp_key(stamp) -> tuple[int, int]:
    return (stamp.sec, stamp.nanosec)


@pytest.fixture(scope="module")
def graph():
    domain = unique_domain_id()
    probe = Probe(domain)
    seen = {
        "frames": probe.collect(Image, "/demo/camera/image_raw"),
        "subtask": probe.collect(SubtaskPrediction, "/demo/reasoner/next_subtask"),
        "failure": probe.collect(FailureDetection, "/demo/reasoner/failure"),
        "diagnostics": probe.collect(DiagnosticArray, "/diagnostics"),
    }
    launcher = Process(
        [sys.executable, "-m", "cosmos_ros.cli", "launch", "camera_demo", "rate_hz:=2.0"], child_env(domain)
    )
    try:
        wait_for(lambda: len(seen["subtask"]) >= 2 and len(seen["failure"]) >= 2, 60, "periodic answers")
        yield probe, seen, launcher
    finally:
        probe.close()
        launcher.stop()


def assert_clip_inside_published_frames(msg, frames) -> None:
    published = {stamp_key(f.header.stamp) for f in frames}
    assert stamp_key(msg.header.stamp) == stamp_key(msg.clip_end)
    assert stamp_key(msg.clip_end) in published, "clip_end is not the stamp of a published frame"
    start = msg.clip_start.sec + msg.clip_start.nanosec * 1e-9
    end = msg.clip_end.sec + msg.clip_end.nanosec * 1e-9
    assert end - WINDOW_S - 1e-6 <= start <= end


def test_subtask_predictions_cover_published_frames(graph):
    _, seen, _ = graph
    msg = seen["subtask"][-1]
    assert_clip_inside_published_frames(msg, seen["frames"])
    assert msg.cameras == ["camera"]
    assert msg.header.frame_id == "camera_optical_frame"  # the frames' own frame_id, not the camera name
    assert msg.num_frames >= 1
    assert msg.model_id.startswith("tiny-dense@")
    assert msg.task == "put the red ball in the box"
    assert len(msg.options) == 4
    assert msg.status in (
        SubtaskPrediction.STATUS_OK,
        SubtaskPrediction.STATUS_NONE,
        SubtaskPrediction.STATUS_UNCERTAIN,
    )
    assert msg.latency_s > 0


def test_failure_detections_cover_published_frames(graph):
    _, seen, _ = graph
    msg = seen["failure"][-1]
    assert_clip_inside_published_frames(msg, seen["frames"])
    assert msg.verdict in (
        FailureDetection.VERDICT_SUCCESS,
        FailureDetection.VERDICT_FAILURE,
        FailureDetection.VERDICT_UNCERTAIN,
    )
    if msg.status != FailureDetection.STATUS_OK:
        assert msg.verdict == FailureDetection.VERDICT_UNCERTAIN


def test_reason_service_answers_about_the_latest_clip(graph):
    probe, seen, _ = graph
    client = probe.node.create_client(ReasonService, "/demo/reasoner/reason")
    assert client.wait_for_service(timeout_sec=10)
    request = ReasonService.Request(
        question="Where is the ball?", options=["left", "right"], max_new_tokens=8
    )
    response = wait_future(client.call_async(request), 30, "the Reason service")
    assert response.status in (ReasonService.Response.STATUS_OK, ReasonService.Response.STATUS_UNCERTAIN)
    assert response.num_frames >= 1
    assert stamp_key(response.clip_end) in {stamp_key(f.header.stamp) for f in seen["frames"]}
    assert response.model_id.startswith("tiny-dense@")


def test_reason_action_streams_feedback(graph):
    probe, _, _ = graph
    client = rclpy_action_client(probe)
    feedback = []
    goal = ReasonAction.Goal(question="What is the robot doing?", max_new_tokens=12)
    handle = wait_future(
        client.send_goal_async(goal, feedback_callback=lambda fb: feedback.append(fb.feedback)),
        30,
        "goal acceptance",
    )
    assert handle.accepted
    result = wait_future(handle.get_result_async(), 60, "the action result").result
    assert feedback, "no feedback arrived"
    assert feedback[-1].num_tokens == len(feedback)
    assert "".join(f.text_delta for f in feedback) == feedback[-1].text
    assert result.num_frames >= 1
    assert result.status in (ReasonAction.Result.STATUS_OK, ReasonAction.Result.STATUS_UNCERTAIN)


def rclpy_action_client(probe):
    from rclpy.action import ActionClient

    client = ActionClient(probe.node, ReasonAction, "/demo/reasoner/reason")
    assert client.wait_for_server(timeout_sec=10)
    return client


def test_diagnostics_report_camera_rate_and_engine(graph):
    _, seen, _ = graph
    wait_for(
        lambda: diagnostic_values(seen["diagnostics"], "engine").get("inferences", "0") != "0",
        10,
        "inferences",
    )
    camera = diagnostic_values(seen["diagnostics"], "camera camera")
    engine = diagnostic_values(seen["diagnostics"], "engine")
    assert 5.0 < float(camera["rate_hz"]) < 30.0  # the demo camera runs at 15 fps
    assert int(camera["accepted"]) > 0 and camera["decode_errors"] == "0"
    assert math.isfinite(float(camera["latency_p50_s"]))
    assert int(engine["inferences"]) >= 2
    assert engine["model_id"].startswith("tiny-dense@")


def test_planner_listener_receives_both_topics(graph):
    _, _, launcher = graph
    wait_for(
        lambda: "next subtask:" in launcher.output and "failure check:" in launcher.output, 20, "planner logs"
    )


def test_ctrl_c_stops_the_whole_graph_cleanly(graph):
    _, _, launcher = graph
    assert launcher.stop() == 0
    assert "exited with" not in launcher.output, launcher.output[-2000:]

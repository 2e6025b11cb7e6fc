"""Ctrl-C with work in flight, in its own process: a goal being generated is aborted with a
reason before the context goes away, nothing is logged as an error, and a second Ctrl-C exits at
once. The engine is the scripted plugin, steered by the question ("slowly", "ponder")."""

from __future__ import annotations

import signal
import threading
import time

import pytest
from action_msgs.msg import GoalStatus
from rclpy.action import ActionClient
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosharness import Probe, child_env, start_node, unique_domain_id, wait_for, wait_future
from sensor_msgs.msg import Image
from test_reasoner_robustness import image

from cosmos_ros.action import Reason as ReasonAction
from cosmos_ros.srv import Reason as ReasonService

pytestmark = [pytest.mark.ros, pytest.mark.slow]


@pytest.fixture
def rig():
    domain = unique_domain_id()
    probe = Probe(domain)
    reasoner = start_node(
        "cosmos_ros.nodes.reasoner",
        child_env(domain),
        "-p", "cameras:=[cam]",
        "-p", "engine:=scripted_engine:create",
        "-p", "stale_timeout_s:=30.0",
    )  # fmt: skip
    publisher = probe.node.create_publisher(
        Image, "/cam/image_raw", QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    )
    stop = threading.Event()

    def publish() -> None:
        while not stop.is_set():
            publisher.publish(image(probe.node.get_clock().now().to_msg()))
            time.sleep(0.05)

    camera = threading.Thread(target=publish, daemon=True)
    camera.start()
    service = probe.node.create_client(ReasonService, "/reasoner/reason")
    try:
        assert service.wait_for_service(timeout_sec=20), reasoner.output
        ok = ReasonService.Response.STATUS_OK
        wait_for(
            lambda: (
                wait_future(
                    service.call_async(ReasonService.Request(question="ready?")), 10, "an answer"
                ).status
                == ok
            ),
            20,
            "a first answer",
        )
        yield probe, reasoner, service
    finally:
        stop.set()
        camera.join(timeout=2)
        probe.close()
        reasoner.stop()


def test_ctrl_c_aborts_a_goal_in_flight_with_a_reason_and_logs_no_error(rig):
    probe, reasoner, _ = rig
    client = ActionClient(probe.node, ReasonAction, "/reasoner/reason")
    assert client.wait_for_server(timeout_sec=10)
    feedback = []
    goal = wait_future(
        client.send_goal_async(ReasonAction.Goal(question="think slowly"), feedback_callback=feedback.append),
        10,
        "the goal accepted",
    )
    assert goal.accepted
    result_future = goal.get_result_async()
    wait_for(lambda: feedback, 10, "the first feedback")
    reasoner.proc.send_signal(signal.SIGINT)
    result = wait_future(result_future, 10, "the goal's result")
    assert result.status == GoalStatus.STATUS_ABORTED
    assert result.result.status == ReasonAction.Result.STATUS_ERROR
    assert "shutting down" in result.result.status_message
    assert reasoner.proc.wait(15) == 0
    errors = [line for line in reasoner.lines if "ERROR" in line or "Traceback" in line]
    assert errors == [], reasoner.output[-3000:]


def test_a_second_ctrl_c_exits_promptly_and_cleanly(rig):
    _, reasoner, service = rig
    pondering = service.call_async(ReasonService.Request(question="ponder this"))
    time.sleep(0.5)  # the engine is now inside its 30 s of thought
    reasoner.proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    sent = time.monotonic()
    reasoner.proc.send_signal(signal.SIGINT)
    assert reasoner.proc.wait(10) == 0
    assert time.monotonic() - sent < 3.0
    assert "Traceback" not in reasoner.output, reasoner.output[-3000:]
    assert not pondering.done()  # given up on: the process left without waiting for the engine

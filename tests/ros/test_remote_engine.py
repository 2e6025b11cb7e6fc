"""The reasoner on `engine:=openai`, in its own process, against an OpenAI-compatible server on
127.0.0.1 (tests/openai_server.py, answering with the shipped tiny model): the Reason service
and action (feedback streaming) answer through it, periodic answers too; a server that dies
mid-run makes answers ERROR and the node carries on, using it again when it is back; a server at
capacity is BUSY."""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time

import numpy as np
import pytest
from openai_server import ChatServer
from rclpy.action import ActionClient
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosharness import Probe, child_env, start_node, unique_domain_id, wait_for, wait_future
from sensor_msgs.msg import Image

from cosmos_ros.action import Reason as ReasonAction
from cosmos_ros.engine.torch_engine import TorchEngine
from cosmos_ros.msg import SubtaskPrediction
from cosmos_ros.resources import data_dirs
from cosmos_ros.srv import Reason as ReasonService

pytestmark = [pytest.mark.ros, pytest.mark.slow]
Status = ReasonService.Response


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Camera:
    def __init__(self, probe: Probe):
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.pub, self.probe, self._stop = probe.node.create_publisher(Image, "/cam/image_raw", qos), probe, False
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        rng = np.random.default_rng(0)
        while not self._stop:
            msg = Image(height=112, width=112, encoding="rgb8", step=112 * 3)
            msg.header.stamp = self.probe.node.get_clock().now().to_msg()
            msg.data = rng.integers(0, 256, 112 * 112 * 3, dtype=np.uint8).tobytes()
            self.pub.publish(msg)
            time.sleep(0.05)

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=2)


@contextlib.contextmanager
def remote_reasoner(url: str, served_model: str, env: dict | None = None, *params: str):
    """A reasoner on engine:=openai against `url`, a camera, a probe: yields (probe, Reason
    client, the next_subtask messages) once a periodic answer that is not STALE has come."""
    domain = unique_domain_id()
    probe = Probe(domain)
    predictions = probe.collect(SubtaskPrediction, "/reasoner/next_subtask")
    reasoner = start_node(
        "cosmos_ros.nodes.reasoner", {**child_env(domain), **(env or {})},
        "-p", "cameras:=[cam]", "-p", "engine:=openai", "-p", f"server_url:={url}",
        "-p", f"served_model:={served_model}", "-p", "task:=put the red block on the green pad",
        "-p", "subtask_options:=[grasp the red block, place it on the green pad]",
        "-p", "rate_hz:=1.0", "-p", "max_new_tokens:=24", "-p", "window_s:=2.0", *params,
    )  # fmt: skip
    camera = Camera(probe)
    client = probe.node.create_client(ReasonService, "/reasoner/reason")
    try:
        assert client.wait_for_service(timeout_sec=20), reasoner.output
        wait_for(lambda: any(p.status != SubtaskPrediction.STATUS_STALE for p in predictions), 60, "a periodic answer")
        yield probe, client, predictions
    finally:
        camera.close()
        probe.close()
        code = reasoner.stop()
        assert code == 0, reasoner.output[-3000:]


@pytest.fixture(scope="module")
def rig():
    port = _free_port()
    server = ChatServer(TorchEngine(str(data_dirs("model")[0] / "cosmos-reason1-tiny")), "cosmos-tiny", port=port).start()
    try:
        with remote_reasoner(server.url, "cosmos-tiny") as (probe, client, predictions):
            yield server, probe, client, predictions
    finally:
        server.stop()


def stream_goal(probe) -> tuple[list, object]:
    """A Reason action goal: (its feedback messages, its result); feedback text only grows."""
    action = ActionClient(probe.node, ReasonAction, "/reasoner/reason")
    assert action.wait_for_server(timeout_sec=10)
    feedback = []
    goal = ReasonAction.Goal(question="What is the robot doing?", max_new_tokens=12)
    handle = wait_future(action.send_goal_async(goal, feedback_callback=lambda fb: feedback.append(fb.feedback)), 30, "goal")
    result = wait_future(handle.get_result_async(), 60, "the action result").result
    for before, after in itertools.pairwise(feedback):
        assert after.text.startswith(before.text) and after.num_tokens > before.num_tokens
        if after.num_tokens == before.num_tokens + 1:
            assert after.text == before.text + after.text_delta
    return feedback, result


def ask(client, **fields) -> ReasonService.Response:
    request = ReasonService.Request(question="Where is the red block?", options=["left", "right"], max_new_tokens=16, **fields)
    return wait_future(client.call_async(request), 60, "a Reason answer")


def test_periodic_answers_come_through_the_server(rig):
    server, _, _, predictions = rig
    answered = [p for p in predictions if p.status != SubtaskPrediction.STATUS_STALE]
    assert answered and answered[-1].status != SubtaskPrediction.STATUS_ERROR, answered[-1].status_message
    assert answered[-1].model_id.startswith("cosmos-tiny@")
    assert any(r["messages"][1]["content"][1]["text"].startswith("The robot is performing the task") for r in server.requests)


def test_a_service_call_and_an_action_goal_are_answered_through_it(rig):
    _, probe, client, _ = rig
    response = ask(client)
    assert response.status in (Status.STATUS_OK, Status.STATUS_UNCERTAIN, Status.STATUS_NONE), response.status_message
    assert response.model_id.startswith("cosmos-tiny@")
    feedback, result = stream_goal(probe)
    # streamed from the server: growing text, each delta what it added. A burst of deltas (this
    # server sends a finished reply at once) can overrun the client's feedback history (depth 10),
    # which is why every feedback carries the whole text so far.
    assert feedback and feedback[-1].text
    assert result.status != ReasonAction.Result.STATUS_ERROR, result.status_message


def test_a_dead_server_is_an_error_and_the_node_recovers_when_it_returns(rig):
    server, _, client, predictions = rig
    server.stop()
    response = ask(client)
    assert response.status == Status.STATUS_ERROR
    assert server.url in response.status_message and "cannot reach" in response.status_message
    server.start()  # the same port again
    response = ask(client)
    assert response.status != Status.STATUS_ERROR, response.status_message
    seen = len(predictions)
    wait_for(lambda: len(predictions) > seen and predictions[-1].status != SubtaskPrediction.STATUS_ERROR, 30,
             "a periodic answer after the server came back")  # fmt: skip


def test_a_server_at_capacity_makes_answers_busy_not_errors(rig):
    server, _, client, predictions = rig
    server.mode = "429"
    try:
        response = ask(client)
        assert response.status == Status.STATUS_BUSY and "HTTP 429" in response.status_message
        wait_for(lambda: predictions[-1].status == SubtaskPrediction.STATUS_BUSY, 30, "a BUSY periodic answer")
    finally:
        server.mode = "ok"
    assert ask(client).status != Status.STATUS_BUSY

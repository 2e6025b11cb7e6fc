"""reasoner_lifecycle under a lifecycle manager's commands: nothing is published until it is
configured and activated, it goes quiet when deactivated, and a bad configuration fails the
transition without killing the node."""

from __future__ import annotations

import array
import threading
import time

import numpy as np
import pytest
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosharness import Probe, call_idempotent, child_env, start_node, unique_domain_id, wait_for, wait_future
from sensor_msgs.msg import Image

from cosmos_ros.msg import SubtaskPrediction

pytestmark = [pytest.mark.ros, pytest.mark.slow]


class Manager:
    """What a lifecycle manager does: change_state / get_state service calls."""

    def __init__(self, probe: Probe, node: str):
        self.change = probe.node.create_client(ChangeState, f"{node}/change_state")
        self.get = probe.node.create_client(GetState, f"{node}/get_state")
        assert self.change.wait_for_service(timeout_sec=20) and self.get.wait_for_service(timeout_sec=20)
        self.state()  # both services' paths matched before a transition, which is not sent twice

    def transition(self, transition_id: int) -> bool:
        request = ChangeState.Request(transition=Transition(id=transition_id))
        return wait_future(self.change.call_async(request), 60, f"transition {transition_id}").success

    def state(self) -> int:
        return call_idempotent(self.get, GetState.Request(), 30, "the state").current_state.id


def publish_frames(probe: Probe, topic: str, stop: threading.Event) -> threading.Thread:
    pub = probe.node.create_publisher(
        Image, topic, QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    )

    def loop() -> None:
        while not stop.is_set():
            msg = Image(height=24, width=32, encoding="rgb8", step=96)
            msg.header.stamp = probe.node.get_clock().now().to_msg()
            data = array.array("B")
            data.frombytes(np.full(24 * 96, 120, np.uint8).tobytes())
            msg.data = data
            pub.publish(msg)
            time.sleep(0.05)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def start_lifecycle_reasoner(domain: int, *params: str, module: str = "cosmos_ros.nodes.reasoner_lifecycle"):
    args = ["-p", "cameras:=[cam]", "-p", "task:=wipe the table", "-p", "engine:=scripted_engine:create"]
    args += ["-p", "rate_hz:=4.0"]
    for param in params:
        args += ["-p", param]
    return start_node(module, child_env(domain), *args)


def assert_quiet_while_inactive(manager: Manager, predictions: list) -> int:
    """Deactivates the reasoner and checks that no answer comes while it is inactive; returns how
    many there were."""
    assert manager.transition(Transition.TRANSITION_DEACTIVATE)
    time.sleep(0.5)  # an answer in flight may still land
    count = len(predictions)
    time.sleep(1.5)
    assert len(predictions) == count
    return count


def test_answers_flow_only_while_active():
    domain = unique_domain_id()
    probe = Probe(domain)
    predictions = probe.collect(SubtaskPrediction, "/reasoner/next_subtask")
    reasoner = start_lifecycle_reasoner(domain)
    stop = threading.Event()
    publish_frames(probe, "/cam/image_raw", stop)
    try:
        manager = Manager(probe, "/reasoner")
        assert manager.state() == State.PRIMARY_STATE_UNCONFIGURED
        assert manager.transition(Transition.TRANSITION_CONFIGURE)
        assert manager.state() == State.PRIMARY_STATE_INACTIVE
        time.sleep(1.0)
        assert predictions == []
        assert manager.transition(Transition.TRANSITION_ACTIVATE)
        wait_for(lambda: any(p.status == SubtaskPrediction.STATUS_OK for p in predictions), 20, "answers")
        assert_quiet_while_inactive(manager, predictions)
        assert manager.transition(Transition.TRANSITION_CLEANUP)
        assert manager.state() == State.PRIMARY_STATE_UNCONFIGURED
    finally:
        stop.set()
        probe.close()
        assert reasoner.stop() == 0, reasoner.output[-2000:]


def test_bad_parameters_fail_configure_and_the_node_stays_up():
    domain = unique_domain_id()
    probe = Probe(domain)
    reasoner = start_lifecycle_reasoner(domain, "image_transport:=mjpeg")  # in range: refused by configure
    try:
        manager = Manager(probe, "/reasoner")
        assert not manager.transition(Transition.TRANSITION_CONFIGURE)
        assert manager.state() == State.PRIMARY_STATE_UNCONFIGURED
        wait_for(lambda: "image_transport must be" in reasoner.output, 5, "the reason in the log")
    finally:
        probe.close()
        assert reasoner.stop() == 0, reasoner.output[-2000:]


def test_the_plain_reasoner_is_the_same_node_started_active_and_a_manager_can_pause_it():
    domain = unique_domain_id()
    probe = Probe(domain)
    predictions = probe.collect(SubtaskPrediction, "/reasoner/next_subtask")
    reasoner = start_lifecycle_reasoner(domain, module="cosmos_ros.nodes.reasoner")
    stop = threading.Event()
    publish_frames(probe, "/cam/image_raw", stop)
    try:
        manager = Manager(probe, "/reasoner")
        assert manager.state() == State.PRIMARY_STATE_ACTIVE  # configured and activated at start
        wait_for(lambda: any(p.status == SubtaskPrediction.STATUS_OK for p in predictions), 20, "answers")
        count = assert_quiet_while_inactive(manager, predictions)
        assert manager.transition(Transition.TRANSITION_ACTIVATE)
        wait_for(lambda: len(predictions) > count, 20, "answers after reactivating")
    finally:
        stop.set()
        probe.close()
        assert reasoner.stop() == 0, reasoner.output[-2000:]


def test_the_plain_reasoner_outlives_a_model_that_fails_to_load_where_a_managed_one_fails_configure():
    domain = unique_domain_id()
    probe = Probe(domain)
    predictions = probe.collect(SubtaskPrediction, "/reasoner/next_subtask")
    broken = ("engine:=torch", "model:=/no/such/checkpoint")
    plain = start_lifecycle_reasoner(domain, *broken, module="cosmos_ros.nodes.reasoner")
    stop = threading.Event()
    publish_frames(probe, "/cam/image_raw", stop)
    try:
        wait_for(lambda: any(p.status == SubtaskPrediction.STATUS_ERROR for p in predictions), 30, "an ERROR")
        assert "/no/such/checkpoint" in predictions[-1].status_message
        assert plain.proc.poll() is None
    finally:
        stop.set()
        probe.close()
        assert plain.stop() == 0, plain.output[-2000:]
    domain = unique_domain_id()
    probe = Probe(domain)
    managed = start_lifecycle_reasoner(domain, *broken)
    try:
        manager = Manager(probe, "/reasoner")
        assert not manager.transition(Transition.TRANSITION_CONFIGURE)
        assert manager.state() == State.PRIMARY_STATE_UNCONFIGURED
    finally:
        probe.close()
        assert managed.stop() == 0, managed.output[-2000:]

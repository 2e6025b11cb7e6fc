"""The planner's channel to the reasoner, across processes: a TaskContext on ~/task changes what
the periodic answers ask and is echoed by id; a reasoner that starts after the planner published
still gets it (transient local); an invalid task is refused, counted, and changes nothing."""

from __future__ import annotations

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from cosmos_ros.msg import FailureDetection, SubtaskPrediction, TaskContext
from rosharness import Probe, child_env, diagnostic_values, start_node, unique_domain_id, wait_for

pytestmark = [pytest.mark.ros, pytest.mark.slow]

PLAN_A = ["move above the red block", "grasp the red block", "lift the red block"]
PLAN_B = ["move behind the red block", "push the red block onto the green pad"]


def task(probe: Probe, task_id: str, text: str, plan: list[str]) -> TaskContext:
    msg = TaskContext(task_id=task_id, task=text, candidate_subtasks=plan)
    msg.header.stamp = probe.node.get_clock().now().to_msg()
    return msg


@pytest.fixture(scope="module")
def rig():
    from test_reasoner_robustness import Camera  # frames from the probe at 20 Hz

    domain = unique_domain_id()
    probe = Probe(domain)
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    planner = probe.node.create_publisher(TaskContext, "/reasoner/task", latched)
    planner.publish(task(probe, "ep-1", "put the red block on the green pad", PLAN_A))  # before the reasoner
    seen = {
        "subtask": probe.collect(SubtaskPrediction, "/reasoner/next_subtask"),
        "failure": probe.collect(FailureDetection, "/reasoner/failure"),
        "diagnostics": probe.collect(DiagnosticArray, "/diagnostics"),
    }
    reasoner = start_node(
        "cosmos_ros.nodes.reasoner",
        child_env(domain),
        "-p", "cameras:=[cam]",
        "-p", "task:=from the parameters",
        "-p", "engine:=scripted_engine:create",
        "-p", "rate_hz:=4.0",
    )  # fmt: skip
    camera = Camera(probe)
    try:
        yield probe, planner, seen, reasoner
    finally:
        camera.close()
        probe.close()
        assert reasoner.stop() == 0, reasoner.output[-3000:]


def newest_ok(messages):
    return [m for m in messages if m.status == SubtaskPrediction.STATUS_OK]


def test_a_late_reasoner_gets_the_current_task_and_echoes_its_id(rig):
    _, _, seen, reasoner = rig
    wait_for(lambda: any(m.task_id == "ep-1" for m in newest_ok(seen["subtask"])), 40, "an answer about ep-1")
    answer = next(m for m in newest_ok(seen["subtask"]) if m.task_id == "ep-1")
    assert answer.task == "put the red block on the green pad" and list(answer.options) == PLAN_A
    assert answer.subtask == PLAN_A[0]  # the scripted engine answers A
    wait_for(lambda: any(m.task_id == "ep-1" for m in seen["failure"]), 10, "a failure answer about ep-1")
    assert "from the parameters" not in {m.task for m in seen["subtask"] if m.task_id == "ep-1"}


def test_a_new_task_changes_what_the_periodic_answers_ask(rig):
    probe, planner, seen, _ = rig
    new = task(probe, "ep-2", "push the red block onto the green pad", PLAN_B)
    planner.publish(new)
    wait_for(lambda: any(m.task_id == "ep-2" for m in newest_ok(seen["subtask"])), 20, "an answer about ep-2")
    answer = next(m for m in newest_ok(seen["subtask"]) if m.task_id == "ep-2")
    assert list(answer.options) == PLAN_B and answer.task == "push the red block onto the green pad"
    assert seconds(answer.clip_start) >= seconds(new.header.stamp) - 1e-6  # no frame from before it began
    assert seconds(answer.clip_end) - seconds(answer.clip_start) < 4.0  # shorter than the window


def seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def test_an_invalid_task_is_refused_counted_and_changes_nothing(rig):
    probe, planner, seen, reasoner = rig
    wait_for(lambda: any(m.task_id == "ep-2" for m in seen["subtask"]), 20, "an answer about ep-2")
    planner.publish(task(probe, "ep-bad", "", PLAN_B))
    # depth 1: wait for the first to land before the second replaces it in the writer's history
    wait_for(lambda: diagnostic_values(seen["diagnostics"], ": task").get("refused") == "1", 10, "one refusal")
    planner.publish(task(probe, "ep-huge", "stack", [f"step {i}" for i in range(300)]))
    wait_for(
        lambda: diagnostic_values(seen["diagnostics"], ": task").get("refused") == "2", 10, "two refusals"
    )
    values = diagnostic_values(seen["diagnostics"], ": task")
    assert values["refused.empty_task"] == "1" and values["refused.too_many_subtasks"] == "1"
    assert values["task_id"] == "ep-2"
    count = len(seen["subtask"])
    wait_for(lambda: len(seen["subtask"]) >= count + 2, 10, "answers after the refusals")
    assert {m.task_id for m in seen["subtask"][count:]} == {"ep-2"}
    assert reasoner.proc.poll() is None
    assert "refused (empty_task)" in reasoner.output

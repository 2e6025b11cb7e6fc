"""Cosmos-Reason2 (qwen3_vl family) in the robot graph: `cosmos-ros launch camera_demo
model:=cosmos-reason2-tiny`, and `model:=DIR` of a checkpoint directory, serve the planner's topics
and the Reason service from a Qwen3-VL model, each answer naming it."""

from __future__ import annotations

import sys

import pytest

from rosharness import Probe, Process, child_env, unique_domain_id, wait_for, wait_future
from cosmos_ros.msg import FailureDetection, SubtaskPrediction
from cosmos_ros.srv import Reason as ReasonService

pytestmark = [pytest.mark.ros, pytest.mark.slow]

MODEL = "cosmos-reason2-tiny"


@pytest.fixture(scope="module", params=["preset", "directory"])
def graph(request, tmp_path_factory):
    from cosmos_ros.model.checkpoint import create_tiny_checkpoint

    if request.param == "preset":
        model, name = MODEL, MODEL
    else:
        model, name = str(create_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "cr2-ckpt", preset=MODEL)), "cr2-ckpt"
    domain = unique_domain_id()
    probe = Probe(domain)
    seen = {
        "subtask": probe.collect(SubtaskPrediction, "/demo/reasoner/next_subtask"),
        "failure": probe.collect(FailureDetection, "/demo/reasoner/failure"),
    }
    launcher = Process(
        [sys.executable, "-m", "cosmos_ros.cli", "launch", "camera_demo", f"model:={model}", "rate_hz:=2.0"],
        child_env(domain),
    )
    try:
        wait_for(lambda: len(seen["subtask"]) >= 1 and len(seen["failure"]) >= 1, 60, "periodic answers")
        yield probe, seen, name
    finally:
        probe.close()
        launcher.stop()


def test_periodic_answers_come_from_the_qwen3vl_model(graph):
    _, seen, name = graph
    subtask, failure = seen["subtask"][-1], seen["failure"][-1]
    assert subtask.model_id.startswith(f"{name}@") and failure.model_id.startswith(f"{name}@")
    assert subtask.num_frames >= 1 and subtask.latency_s > 0
    # random weights answer noise, but a parsed status, never an engine error
    assert subtask.status != SubtaskPrediction.STATUS_ERROR
    assert failure.status != FailureDetection.STATUS_ERROR


def test_the_reason_service_answers_with_it(graph):
    probe, _, name = graph
    client = probe.node.create_client(ReasonService, "/demo/reasoner/reason")
    assert client.wait_for_service(timeout_sec=10)
    request = ReasonService.Request(question="Where is the ball?", options=["left", "right"], max_new_tokens=8)
    response = wait_future(client.call_async(request), 30, "the Reason service")
    assert response.status in (ReasonService.Response.STATUS_OK, ReasonService.Response.STATUS_UNCERTAIN)
    assert response.model_id.startswith(f"{name}@")
    assert response.num_frames >= 1

"""The reasoner on `engine:=openai` in its own process against a real vLLM server (tests/
vllm_server.py): periodic answers, a Reason service call and an action goal whose feedback
streams token by token come through it; the server killed mid-run makes answers ERROR naming the
URL and the node carries on, answering through the server again once it is back, without a
restart. Skipped, with the reason, where there is no vLLM environment (see tests/vllm_server.py)."""

from __future__ import annotations

import pytest
from rosharness import wait_for
from test_remote_engine import ask, remote_reasoner, stream_goal
from vllm_server import KEY, KEY_ENV, NAME

from cosmos_ros.action import Reason as ReasonAction
from cosmos_ros.msg import SubtaskPrediction
from cosmos_ros.srv import Reason as ReasonService

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.vllm]
Status = ReasonService.Response
ANSWERED = (Status.STATUS_OK, Status.STATUS_UNCERTAIN, Status.STATUS_NONE)


@pytest.fixture(scope="module")
def rig(vllm_server):
    with remote_reasoner(vllm_server.url, NAME, {KEY_ENV: KEY}, "-p", f"api_key_env:={KEY_ENV}") as (probe, client, predictions):
        wait_for(lambda: any(p.status in ANSWERED for p in predictions), 60, "a periodic answer through vLLM")
        yield vllm_server, probe, client, predictions


def test_periodic_answers_come_through_vllm(rig):
    _, _, _, predictions = rig
    answered = [p for p in predictions if p.status in ANSWERED]
    assert answered and answered[-1].model_id.startswith(f"{NAME}@")
    assert answered[-1].options == ["grasp the red block", "place it on the green pad"]


def test_a_service_call_and_an_action_goal_stream_through_vllm(rig):
    _, probe, client, _ = rig
    response = ask(client)
    assert response.status in ANSWERED, response.status_message
    assert response.model_id.startswith(f"{NAME}@") and response.num_frames > 0
    feedback, result = stream_goal(probe)
    assert result.status != ReasonAction.Result.STATUS_ERROR, result.status_message
    assert len(feedback) >= 2 and feedback[-1].text  # vLLM streams token by token


def test_a_killed_server_is_an_error_and_the_node_recovers_when_it_returns(rig):
    server, _, client, predictions = rig
    server.stop()
    response = ask(client)
    assert response.status == Status.STATUS_ERROR
    assert server.url in response.status_message and "cannot reach" in response.status_message
    wait_for(lambda: predictions[-1].status == SubtaskPrediction.STATUS_ERROR, 30, "an ERROR periodic answer")
    server.start()  # the same port again; the node was never restarted
    response = ask(client)
    assert response.status in ANSWERED, response.status_message
    seen = len(predictions)
    wait_for(lambda: len(predictions) > seen and predictions[-1].status in ANSWERED, 60,
             "a periodic answer after the server came back")  # fmt: skip

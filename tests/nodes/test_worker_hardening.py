"""Specification of ReasoningWorker under hostile input: every request is answered exactly once
whatever its fields, and an unexpected exception at any stage becomes an ERROR answer counted by
stage and reported once per cause. Fakes and fixtures are test_worker's."""

from __future__ import annotations

import random
import time

import numpy as np
import pytest
import test_worker
from test_worker import FIRST_STAMPS, NOW, WAIT_S, FakeEngine, Recorder, ask, fill, settings

from cosmos_ros.nodes import worker as worker_module
from cosmos_ros.core.types import OutcomeStatus
from cosmos_ros.nodes.worker import MAX_NEW_TOKENS, MAX_WINDOW_S, Request

# test_worker's fixtures, for the tests here
buffer = test_worker.buffer
make_worker = test_worker.make_worker

# ---- request fields ------------------------------------------------------------------------------


@pytest.mark.parametrize("window_s", [float("inf"), float("nan"), 3.4e38, 1e9, MAX_WINDOW_S + 1, -1.0])
def test_a_request_window_that_is_not_finite_or_out_of_range_is_invalid(make_worker, window_s):
    engine = FakeEngine("A")
    worker, _, _ = make_worker(engine)
    outcome = ask(worker, window_s=window_s)
    assert outcome.status is OutcomeStatus.INVALID and "window_s" in outcome.message
    assert engine.calls == []


def test_a_request_token_budget_above_the_limit_is_invalid(make_worker):
    engine = FakeEngine("A")
    worker, _, _ = make_worker(engine)
    outcome = ask(worker, max_new_tokens=2**32 - 1)
    assert outcome.status is OutcomeStatus.INVALID and str(MAX_NEW_TOKENS) in outcome.message
    assert engine.calls == []


def test_the_longest_window_allowed_is_answered_from_the_frames_held(make_worker):
    engine = FakeEngine("A")
    worker, _, _ = make_worker(engine, settings(fps=1e300, max_frames=4))
    outcome = ask(worker, window_s=MAX_WINDOW_S)
    assert outcome.status is OutcomeStatus.OK and outcome.num_frames == 4
    assert outcome.clip_start == FIRST_STAMPS[0]


# ---- a failure at each stage ---------------------------------------------------------------------


def raising(exc: Exception):
    def fail(*args, **kwargs):
        raise exc

    return fail


STAGES = {
    "buffer": lambda worker, monkeypatch: monkeypatch.setattr(
        worker.buffer, "clip", raising(OverflowError("cannot convert float infinity to integer"))
    ),
    "prompt": lambda worker, monkeypatch: monkeypatch.setattr(
        worker_module.prompts, "free_prompt", raising(TypeError("template is broken"))
    ),
    "engine": lambda worker, monkeypatch: monkeypatch.setattr(
        worker._engine, "reason", raising(MemoryError("30 GiB"))
    ),
    "parser": lambda worker, monkeypatch: monkeypatch.setattr(
        worker_module, "parse_answer", raising(AttributeError("'NoneType' has no attribute 'strip'"))
    ),
}


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_an_unexpected_failure_at_any_stage_answers_error_counted_and_reported_once(
    make_worker, monkeypatch, stage
):
    worker, _, errors = make_worker(FakeEngine("A"))
    STAGES[stage](worker, monkeypatch)
    first, second = ask(worker), ask(worker)
    for outcome in (first, second):
        assert outcome.status is OutcomeStatus.ERROR and outcome.message.startswith(f"{stage} failed: ")
    ((cause, _),) = errors.calls  # reported once, counted twice
    assert cause.startswith(f"{stage}.") and worker.stats.errors == {cause: 2}
    monkeypatch.undo()
    assert ask(worker).status is OutcomeStatus.OK


def test_a_delivery_that_raises_is_retried_once_with_an_error_answer(make_worker):
    worker, _, errors = make_worker(FakeEngine("A"))
    delivered = []

    def done(outcome):
        delivered.append(outcome)
        if len(delivered) == 1:
            raise RuntimeError("Failed to publish: context is invalid")

    assert worker.submit(Request("Is the ball in the box?", done=done))
    deadline = time.monotonic() + WAIT_S
    while len(delivered) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [o.status for o in delivered] == [OutcomeStatus.OK, OutcomeStatus.ERROR]
    assert "delivery failed: RuntimeError" in delivered[1].message
    assert worker.stats.errors == {"delivery.RuntimeError": 1}
    assert [cause for cause, _ in errors.calls] == ["delivery.RuntimeError"]
    assert ask(worker).status is OutcomeStatus.OK


def test_stop_can_be_called_again_and_closes_the_engine_once(make_worker):
    closes = []
    engine = FakeEngine("A")
    engine.close = lambda: closes.append(1)
    worker, _, _ = make_worker(engine, start=False)
    worker.start()
    assert worker.stop(timeout=WAIT_S) and worker.stop(timeout=WAIT_S)
    assert closes == [1]


def test_stop_on_a_worker_never_started_returns_at_once(make_worker):
    worker, _, _ = make_worker(FakeEngine("A"), start=False)
    assert worker.stop(timeout=WAIT_S)


# ---- fuzz ----------------------------------------------------------------------------------------

FUZZ_SECONDS = 3.0
SPECIAL_FLOATS = [0.0, -0.0, 1e-300, 0.25, 4.0, MAX_WINDOW_S, 3.4e38, 1e9, -1.0, float("inf"), float("nan")]
WORDS = ["", " ", "\t\n", "ball", "box", "A", "none", "é", "\x00", "<think>", "</answer>", "🤖", "?" * 500]


def random_text(rng: random.Random) -> str:
    return "".join(rng.choice(WORDS) for _ in range(rng.randint(0, 6)))


def random_request(rng: random.Random, done) -> Request:
    return Request(
        question=random_text(rng),
        options=tuple(random_text(rng) for _ in range(rng.choice([0, 0, 1, 2, 4, 30]))),
        cameras=tuple(rng.choice(["front", "front", "rear", "", "FRONT"]) for _ in range(rng.randint(0, 2))),
        window_s=rng.choice(SPECIAL_FLOATS + [rng.uniform(-10, 1e4)]),
        max_new_tokens=rng.choice([0, 1, 7, MAX_NEW_TOKENS, MAX_NEW_TOKENS + 1, 2**32 - 1, -5]),
        done=done,
    )


def random_frame(rng: random.Random, np_rng: np.random.Generator) -> tuple[float, np.ndarray]:
    stamp = rng.choice([100.0, 101.0, 1e9, 0.0, -5.0, 102.0 + rng.random(), 3.15e7 + rng.random()])
    height, width = rng.choice([(1, 1), (8, 8), (2, 400), (48, 64)])
    return stamp, np_rng.integers(0, 256, (height, width, 3), np.uint8)


def test_fuzzed_requests_and_frame_stamps_are_each_answered_once_without_an_error(make_worker, buffer):
    rng, np_rng = random.Random(16), np.random.default_rng(16)
    engine = FakeEngine(lambda call: rng.choice(["A", "B", "none", None, "Z", "the red ball"]))
    worker, _, errors = make_worker(engine, settings(cameras=("front", "rear")), max_pending=4)
    fill(buffer, FIRST_STAMPS, camera="rear")
    answered: list[Recorder] = []
    deadline = time.monotonic() + FUZZ_SECONDS
    while time.monotonic() < deadline:
        for _ in range(rng.randint(0, 3)):
            stamp, image = random_frame(rng, np_rng)
            buffer.add(rng.choice(["front", "rear"]), stamp, image, received=NOW)
        done = Recorder()
        if worker.submit(random_request(rng, done)):
            answered.append(done)
        if rng.random() < 0.2:
            worker.tick()
        if len(answered) % 4 == 0:
            done.wait_for(1)  # let the queue drain now and then so most requests are accepted
    outcomes = [done.wait_for(1)[0][0] for done in answered]
    assert all(len(done.calls) == 1 for done in answered)
    assert len(outcomes) >= 50
    assert OutcomeStatus.ERROR not in {o.status for o in outcomes}, [o.message for o in outcomes][:5]
    assert errors.calls == [] and worker.stats.errors == {}
    engine.output = "A"
    fill(buffer, [2e9, 2e9 + 0.25], camera="front")
    fill(buffer, [2e9, 2e9 + 0.25], camera="rear")
    assert ask(worker, "Is the ball in the box?", options=("yes", "no")).status is OutcomeStatus.OK

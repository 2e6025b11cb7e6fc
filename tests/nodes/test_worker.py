"""Specification of ReasoningWorker: the reasoner's inference thread, without ROS or a model.

The engines here are small fakes that answer in the Cosmos format, record how they were called
and can be held inside `reason` to observe what queues up meanwhile. The worker's clock is
injected and frames arrive at that same instant, so cameras are fresh unless a test says not.
"""

from __future__ import annotations

import queue
import threading
import time

import numpy as np
import pytest

from cosmos_ros.core.answers import AnswerStatus
from cosmos_ros.core.frames import FrameBuffer
from cosmos_ros.core.types import Reasoning, TaskKind
from cosmos_ros.nodes.worker import (
    Cancelled,
    Outcome,
    OutcomeStatus,
    ReasoningWorker,
    Request,
    Settings,
)

NOW = 1000.0  # the worker's clock, and the arrival time of fresh frames
WAIT_S = 5.0  # upper bound for anything the worker thread does here; tests finish far sooner
TASK = "put the red ball in the box"
SUBTASKS = ("pick up the red ball", "place the ball in the box")
FIRST_STAMPS = 100.0 + np.arange(8) * 0.25  # 2 s of one camera at 4 Hz


def cosmos_output(answer: str) -> str:
    return f"<think>\nThe gripper is open above the ball.\n</think>\n\n<answer>\n{answer}\n</answer>"


def frame(value: int = 0) -> np.ndarray:
    return np.full((8, 8, 3), value, np.uint8)


def fill(buffer: FrameBuffer, stamps, *, camera: str = "front", received: float = NOW) -> None:
    for i, stamp in enumerate(stamps):
        assert buffer.add(camera, float(stamp), frame(i), received=received)


def settings(**overrides) -> Settings:
    values = dict(cameras=("front",), task=TASK, subtask_options=SUBTASKS)
    values.update(overrides)
    return Settings(**values)


class FakeEngine:
    """Answers every prompt with `output` (text or a callable of the call number).

    Records each call; streams the text to on_token in 4-character deltas; `before` runs inside
    `reason` before answering (to block, count or raise).
    """

    model_id = "fake@0000"

    def __init__(self, output="A", *, before=None):
        self.output = output
        self.before = before
        self.calls: list[dict] = []
        self.closed = False

    def reason(self, clip, prompt, *, max_new_tokens, temperature, on_token):
        self.calls.append(
            dict(clip=clip, prompt=prompt, max_new_tokens=max_new_tokens, temperature=temperature)
        )
        if self.before is not None:
            self.before(len(self.calls))
        answer = self.output(len(self.calls)) if callable(self.output) else self.output
        text = cosmos_output(answer) if answer is not None else "the model rambles on"
        if on_token is not None:
            for start in range(0, len(text), 4):
                on_token(text[start : start + 4])
        return Reasoning(text=text, confidence=0.9)

    def close(self):
        self.closed = True


class Gate:
    """Holds engine calls inside `reason`: `entered` yields each call number as it arrives,
    `release(n)` lets n calls through, `open()` lets every call through from now on."""

    def __init__(self):
        self.entered: queue.Queue[int] = queue.Queue()
        self._permits = threading.Semaphore(0)
        self._open = threading.Event()

    def __call__(self, call: int) -> None:
        self.entered.put(call)
        while not self._open.is_set():
            if self._permits.acquire(timeout=0.01):
                return

    def wait_entered(self) -> int:
        return self.entered.get(timeout=WAIT_S)

    def release(self, count: int = 1) -> None:
        for _ in range(count):
            self._permits.release()

    def open(self) -> None:
        self._open.set()


class Recorder:
    """A thread-safe callback that keeps its calls' arguments and can wait for them."""

    def __init__(self):
        self.calls: list[tuple] = []
        self._cv = threading.Condition()

    def __call__(self, *args) -> None:
        with self._cv:
            self.calls.append(args)
            self._cv.notify_all()

    def wait_for(self, count: int) -> list[tuple]:
        with self._cv:
            assert self._cv.wait_for(lambda: len(self.calls) >= count, WAIT_S), (
                f"expected {count} calls within {WAIT_S} s, got {self.calls}"
            )
            return list(self.calls)


@pytest.fixture
def buffer() -> FrameBuffer:
    buffer = FrameBuffer(capacity_per_camera=64, max_age_s=None)
    fill(buffer, FIRST_STAMPS)
    return buffer


@pytest.fixture
def make_worker(buffer):
    """make_worker(engine, settings, **kw) -> (started worker, periodic Recorder, error Recorder)."""
    started = []

    def make(engine=None, worker_settings=None, *, engine_factory=None, frames=None, start=True, **kw):
        periodic, errors = Recorder(), Recorder()
        worker = ReasoningWorker(
            frames or buffer,
            engine_factory or (lambda: engine),
            worker_settings or settings(),
            on_periodic=periodic,
            on_error=errors,
            clock=lambda: NOW,
            **kw,
        )
        if start:
            worker.start()
            started.append(worker)
            assert worker.wait_ready(WAIT_S)
        return worker, periodic, errors

    yield make
    for worker in started:
        worker.stop(timeout=WAIT_S)


def ask(worker: ReasoningWorker, question: str = "Is the ball in the box?", **fields) -> Outcome:
    """Submit one request and wait for its single Outcome."""
    done = Recorder()
    assert worker.submit(Request(question=question, done=done, **fields))
    (outcome,), = done.wait_for(1)
    return outcome


def drain(worker: ReasoningWorker) -> None:
    """Return once any tick pending now has been served: requests and ticks alternate, so a
    tick pending when the first request is done runs before the second request."""
    ask(worker)
    ask(worker)


def periodic_by_kind(periodic: Recorder) -> dict[str, list[Outcome]]:
    kinds: dict[str, list[Outcome]] = {}
    for kind, outcome in periodic.calls:
        kinds.setdefault(kind, []).append(outcome)
    return kinds


# ---- periodic answers ----------------------------------------------------------------------------


def test_a_tick_answers_next_subtask_then_failure_with_the_parsed_choice(make_worker):
    worker, periodic, _ = make_worker(FakeEngine("A"))
    worker.tick()
    (kind1, subtask), (kind2, failure) = periodic.wait_for(2)
    assert (kind1, kind2) == ("next_subtask", "failure")
    assert subtask.status is OutcomeStatus.OK
    assert subtask.parsed.choice_index == 0 and subtask.parsed.choice_text == SUBTASKS[0]
    assert subtask.prompt.kind is TaskKind.NEXT_SUBTASK
    assert failure.status is OutcomeStatus.OK
    assert failure.parsed.choice_index == 0 and failure.prompt.kind is TaskKind.FAILURE
    assert subtask.model_id == "fake@0000"
    assert worker.stats.periodic_runs == 1 and worker.stats.inferences == 2


def test_a_periodic_outcome_describes_the_clip_it_answered(make_worker):
    worker, periodic, _ = make_worker(FakeEngine("A"))
    worker.tick()
    (_, outcome), _ = periodic.wait_for(2)
    assert outcome.cameras == ("front",)
    assert outcome.clip_end == FIRST_STAMPS[-1]
    assert outcome.clip_start == FIRST_STAMPS[0]
    assert outcome.num_frames == len(FIRST_STAMPS)
    assert outcome.reasoning.confidence == 0.9


def test_an_abstaining_answer_is_none(make_worker):
    worker, periodic, _ = make_worker(FakeEngine("none"))
    worker.tick()
    (_, subtask), (_, failure) = periodic.wait_for(2)
    assert subtask.status is OutcomeStatus.NONE and subtask.parsed.status is AnswerStatus.NONE
    assert failure.status is OutcomeStatus.NONE


def test_an_unreadable_answer_is_uncertain_with_the_parser_reason(make_worker):
    worker, periodic, _ = make_worker(FakeEngine(None))  # no tags, not an option
    worker.tick()
    (_, subtask), (_, failure) = periodic.wait_for(2)
    assert subtask.status is OutcomeStatus.UNCERTAIN and subtask.message == "no_answer_tag"
    assert failure.status is OutcomeStatus.UNCERTAIN


def test_publish_subtask_false_skips_the_next_subtask_question(make_worker):
    engine = FakeEngine("A")
    worker, periodic, _ = make_worker(engine, settings(publish_subtask=False))
    worker.tick()
    drain(worker)
    assert [kind for kind, _ in periodic.calls] == ["failure"]
    assert [call["prompt"].kind for call in engine.calls].count(TaskKind.NEXT_SUBTASK) == 0


def test_publish_failure_false_skips_the_failure_question(make_worker):
    engine = FakeEngine("A")
    worker, periodic, _ = make_worker(engine, settings(publish_failure=False))
    worker.tick()
    drain(worker)
    assert [kind for kind, _ in periodic.calls] == ["next_subtask"]
    assert [call["prompt"].kind for call in engine.calls].count(TaskKind.FAILURE) == 0


def test_without_a_task_a_tick_does_no_work(make_worker):
    engine = FakeEngine("A")
    worker, periodic, _ = make_worker(engine, settings(task=""))
    worker.tick()
    drain(worker)
    assert periodic.calls == []
    assert worker.stats.periodic_runs == 0
    assert [call["prompt"].kind for call in engine.calls] == [TaskKind.QUESTION, TaskKind.QUESTION]


# ---- stale cameras -------------------------------------------------------------------------------


def test_a_camera_silent_past_the_stale_timeout_gives_stale_without_calling_the_engine(make_worker):
    buffer = FrameBuffer(max_age_s=None)
    fill(buffer, FIRST_STAMPS, received=NOW - 10.0)
    engine = FakeEngine("A")
    worker, periodic, _ = make_worker(engine, settings(stale_timeout_s=2.0), frames=buffer)
    worker.tick()
    (_, subtask), (_, failure) = periodic.wait_for(2)
    assert subtask.status is OutcomeStatus.STALE and failure.status is OutcomeStatus.STALE
    assert "front" in subtask.message and "2 s" in subtask.message
    assert engine.calls == []
    assert worker.stats.stale == 2


def test_a_camera_that_never_delivered_is_stale(make_worker):
    engine = FakeEngine("A")
    worker, _, _ = make_worker(engine, settings(cameras=("front", "wrist")))
    outcome = ask(worker, cameras=("wrist",))
    assert outcome.status is OutcomeStatus.STALE and "wrist" in outcome.message
    assert engine.calls == []


# ---- engine failures -----------------------------------------------------------------------------


def failing(call: int) -> None:
    raise RuntimeError(f"CUDA out of memory (call {call})")


def test_an_engine_exception_gives_error_naming_its_type(make_worker):
    worker, _, _ = make_worker(FakeEngine("A", before=failing))
    outcome = ask(worker)
    assert outcome.status is OutcomeStatus.ERROR
    assert "RuntimeError" in outcome.message and "CUDA out of memory" in outcome.message
    assert outcome.model_id == "fake@0000"


def test_engine_errors_are_counted_by_type_and_reported_once_per_cause(make_worker):
    worker, _, errors = make_worker(FakeEngine("A", before=failing))
    for _ in range(5):
        assert ask(worker).status is OutcomeStatus.ERROR
    assert worker.stats.errors == {"engine.RuntimeError": 5}
    assert len(errors.calls) == 1
    cause, message = errors.calls[0]
    assert cause == "engine.RuntimeError" and "RuntimeError" in message


def test_each_new_cause_of_error_is_reported_once(make_worker):
    exceptions = [RuntimeError("a"), ValueError("b"), RuntimeError("c"), ValueError("d")]

    def raise_next(call: int) -> None:
        raise exceptions[call - 1]

    worker, _, errors = make_worker(FakeEngine("A", before=raise_next))
    for _ in exceptions:
        ask(worker)
    assert [cause for cause, _ in errors.calls] == ["engine.RuntimeError", "engine.ValueError"]
    assert worker.stats.errors == {"engine.RuntimeError": 2, "engine.ValueError": 2}


def test_the_request_after_an_engine_failure_is_served(make_worker):
    def fail_first(call: int) -> None:
        if call == 1:
            raise RuntimeError("transient")

    worker, _, _ = make_worker(FakeEngine("A", before=fail_first))
    assert ask(worker).status is OutcomeStatus.ERROR
    outcome = ask(worker, options=("yes", "no"))
    assert outcome.status is OutcomeStatus.OK and outcome.parsed.choice_text == "yes"
    assert worker.stats.inferences == 1


def test_each_answer_times_its_stages_with_the_engines_own_figures(make_worker):
    class StagedEngine(FakeEngine):
        def reason(self, clip, prompt, **kw):
            reasoning = super().reason(clip, prompt, **kw)
            reasoning.stages = {"preprocess": 0.01, "prefill": 0.2, "decode": 0.5}
            return reasoning

    worker, periodic, _ = make_worker(StagedEngine("A"))
    worker.tick()
    periodic.wait_for(2)
    stages = worker.stats.stages
    wait_until(lambda: len(stages.get("publish", ())) == 2)
    assert list(stages["prefill"]) == [0.2, 0.2] and list(stages["decode"]) == [0.5, 0.5]
    for stage in ("clip", "parse", "publish"):  # the worker's own
        assert len(stages[stage]) == 2 and all(0 <= t < WAIT_S for t in stages[stage]), stage


def wait_until(condition) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_engine_errors_do_not_enter_the_latency_statistics(make_worker):
    worker, _, _ = make_worker(FakeEngine("A", before=failing))
    ask(worker)
    assert len(worker.stats.latencies) == 0


def test_an_engine_that_fails_to_load_answers_every_question_with_that_error(make_worker):
    def broken_factory():
        raise OSError("no weights in /models/missing")

    worker, periodic, errors = make_worker(engine_factory=broken_factory)
    assert worker.wait_ready(WAIT_S)
    assert "OSError" in worker.engine_error and worker.model_id == ""
    for _ in range(2):  # the worker lives on: it keeps answering
        outcome = ask(worker)
        assert outcome.status is OutcomeStatus.ERROR
        assert "loading the engine failed" in outcome.message and "no weights" in outcome.message
    worker.tick()
    for _, outcome in periodic.wait_for(2):
        assert outcome.status is OutcomeStatus.ERROR and "loading the engine failed" in outcome.message
    assert [cause for cause, _ in errors.calls] == ["engine_load"]


def test_stop_closes_the_engine(make_worker):
    engine = FakeEngine("A")
    worker, _, _ = make_worker(engine, start=False)
    worker.start()
    worker.wait_ready(WAIT_S)
    worker.stop(timeout=WAIT_S)
    assert engine.closed


# ---- ticks collapse: the latest clip wins --------------------------------------------------------


def test_ticks_while_the_engine_is_busy_collapse_into_one_run_on_the_newest_clip(make_worker, buffer):
    gate = Gate()
    worker, periodic, _ = make_worker(FakeEngine("A", before=gate))
    worker.tick()
    gate.wait_entered()  # the first periodic run is inside the engine
    newer = FIRST_STAMPS[-1] + 0.25 * np.arange(1, 9)
    for stamp in newer:
        fill(buffer, [stamp])
        worker.tick()
    for _ in range(2):
        worker.tick()
    gate.open()
    calls = periodic.wait_for(4)
    drain(worker)
    assert worker.stats.periodic_runs == 2
    assert [kind for kind, _ in periodic.calls] == ["next_subtask", "failure"] * 2
    (_, first), _, (_, second_subtask), (_, second_failure) = calls
    assert first.clip_end == FIRST_STAMPS[-1]
    assert second_subtask.clip_end == newer[-1] and second_failure.clip_end == newer[-1]


def test_a_tick_with_an_end_answers_on_the_clip_ending_there_and_the_latest_end_wins(make_worker, buffer):
    gate = Gate()
    worker, periodic, _ = make_worker(FakeEngine("A", before=gate))
    worker.tick(end=FIRST_STAMPS[3])
    gate.wait_entered()
    worker.tick(end=FIRST_STAMPS[5])  # both wait while the engine is busy: the later one runs
    worker.tick(end=FIRST_STAMPS[6])
    gate.open()
    (_, first), _, (_, second), _ = periodic.wait_for(4)
    assert first.clip_end == FIRST_STAMPS[3] and first.num_frames == 4  # newer frames left out
    assert second.clip_end == FIRST_STAMPS[6] and second.num_frames == 7
    worker.tick()  # without an end: the newest frame again
    periodic.wait_for(6)
    assert periodic.calls[4][1].clip_end == FIRST_STAMPS[-1]


# ---- the request queue ---------------------------------------------------------------------------


def test_submit_refuses_when_max_pending_requests_are_queued(make_worker):
    gate = Gate()
    worker, _, _ = make_worker(FakeEngine("A", before=gate), max_pending=3)
    busy = Recorder()
    assert worker.submit(Request("first?", done=busy))
    gate.wait_entered()  # the first request left the queue: it is being served
    queued = [Recorder() for _ in range(3)]
    assert all(worker.submit(Request(f"q{i}?", done=done)) for i, done in enumerate(queued))
    assert worker.queue_depth == 3
    refused = Recorder()
    assert not worker.submit(Request("one too many?", done=refused))
    assert worker.stats.busy_rejections == 1
    gate.open()
    for done in [busy, *queued]:
        assert len(done.wait_for(1)) == 1
    drain(worker)
    assert refused.calls == []
    assert all(len(done.calls) == 1 for done in [busy, *queued])


def test_requests_from_many_threads_are_each_refused_or_done_exactly_once(make_worker):
    worker, _, _ = make_worker(FakeEngine("A", before=lambda call: time.sleep(0.001)), max_pending=4)
    counts = [0] * 100
    accepted = [False] * 100
    lock = threading.Lock()
    all_done = threading.Condition(lock)

    def done_for(index):
        def done(outcome: Outcome) -> None:
            with lock:
                counts[index] += 1
                all_done.notify_all()

        return done

    def submit_range(first: int) -> None:
        for index in range(first, first + 10):
            accepted[index] = worker.submit(Request(f"question {index}?", done=done_for(index)))

    threads = [threading.Thread(target=submit_range, args=(10 * t,)) for t in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S)
    with lock:
        assert all_done.wait_for(lambda: sum(counts) >= sum(accepted), WAIT_S)
    drain(worker)
    assert counts == [1 if ok else 0 for ok in accepted]
    assert worker.stats.busy_rejections == accepted.count(False)
    assert worker.stats.requests_done == accepted.count(True) + 2  # + the two drain requests


def test_stop_completes_queued_requests_with_a_shutting_down_error(make_worker):
    gate = Gate()
    worker, _, _ = make_worker(FakeEngine("A", before=gate), start=False)
    worker.start()
    serving = Recorder()
    assert worker.submit(Request("first?", done=serving))
    gate.wait_entered()
    queued = [Recorder() for _ in range(3)]
    for done in queued:
        assert worker.submit(Request("later?", done=done))
    stopper = threading.Thread(target=worker.stop, kwargs=dict(timeout=WAIT_S))
    stopper.start()
    for done in queued:
        ((outcome,),) = done.wait_for(1)
        assert outcome.status is OutcomeStatus.ERROR and "shutting down" in outcome.message
    gate.open()
    stopper.join(WAIT_S)
    assert not stopper.is_alive()
    ((outcome,),) = serving.calls  # the request being served still gets its one answer
    assert outcome.status is OutcomeStatus.OK
    assert all(len(done.calls) == 1 for done in queued)


def test_submit_after_stop_is_refused(make_worker):
    worker, _, _ = make_worker(FakeEngine("A"), start=False)
    worker.start()
    worker.stop(timeout=WAIT_S)
    done = Recorder()
    assert not worker.submit(Request("anyone there?", done=done))
    assert done.calls == []


# ---- requests ------------------------------------------------------------------------------------


def test_a_request_with_options_is_answered_as_multiple_choice(make_worker):
    engine = FakeEngine("B")
    worker, _, _ = make_worker(engine)
    outcome = ask(worker, "Where is the ball?", options=("on the table", "in the box"))
    assert outcome.status is OutcomeStatus.OK and outcome.parsed.choice_text == "in the box"
    assert engine.calls[0]["prompt"].options == ("on the table", "in the box")


def test_a_request_without_options_is_answered_in_free_text(make_worker):
    worker, _, _ = make_worker(FakeEngine("The ball is in the box."))
    outcome = ask(worker, "Where is the ball?")
    assert outcome.status is OutcomeStatus.OK and outcome.parsed.answer == "The ball is in the box."
    assert outcome.prompt.options == ()


def test_a_request_for_an_unknown_camera_is_invalid_and_names_it(make_worker):
    engine = FakeEngine("A")
    worker, _, _ = make_worker(engine)
    outcome = ask(worker, cameras=("front", "rear"))
    assert outcome.status is OutcomeStatus.INVALID
    assert "rear" in outcome.message and "front" in outcome.message
    assert engine.calls == []


def test_a_request_with_a_negative_window_is_invalid(make_worker):
    engine = FakeEngine("A")
    worker, _, _ = make_worker(engine)
    outcome = ask(worker, window_s=-1.0)
    assert outcome.status is OutcomeStatus.INVALID and "window_s" in outcome.message
    assert engine.calls == []


@pytest.mark.parametrize(
    "question,options",
    [("Which one?", ("left", "  ")), ("Which one?", ("left", "LEFT")), ("   ", ())],
    ids=["blank option", "duplicate options", "blank question"],
)
def test_a_request_with_a_malformed_question_is_invalid(make_worker, question, options):
    engine = FakeEngine("A")
    worker, _, _ = make_worker(engine)
    outcome = ask(worker, question, options=options)
    assert outcome.status is OutcomeStatus.INVALID and outcome.message
    assert engine.calls == []


def test_request_window_and_token_budget_override_the_settings(make_worker):
    engine = FakeEngine("A")
    worker, _, _ = make_worker(engine, settings(window_s=4.0, max_new_tokens=256, temperature=0.3))
    ask(worker, window_s=1.0, max_new_tokens=7)
    call = engine.calls[0]
    assert call["max_new_tokens"] == 7 and call["temperature"] == 0.3
    assert call["clip"].end == FIRST_STAMPS[-1]
    assert call["clip"].start == pytest.approx(FIRST_STAMPS[-1] - 1.0)


def test_a_request_without_overrides_uses_the_settings(make_worker):
    engine = FakeEngine("A")
    worker, _, _ = make_worker(engine, settings(window_s=1.0, max_new_tokens=33))
    ask(worker)
    call = engine.calls[0]
    assert call["max_new_tokens"] == 33
    assert call["clip"].start == pytest.approx(FIRST_STAMPS[-1] - 1.0)


def test_a_request_on_one_camera_uses_only_that_camera(make_worker, buffer):
    fill(buffer, FIRST_STAMPS, camera="wrist")
    engine = FakeEngine("A")
    worker, _, _ = make_worker(engine, settings(cameras=("front", "wrist")))
    outcome = ask(worker, cameras=("wrist",))
    assert outcome.status is OutcomeStatus.OK and outcome.cameras == ("wrist",)
    assert engine.calls[0]["clip"].cameras == ("wrist",)


def test_on_token_receives_the_generated_text_in_deltas(make_worker):
    worker, _, _ = make_worker(FakeEngine("A"))
    deltas = []
    outcome = ask(worker, options=("yes", "no"), on_token=deltas.append)
    assert len(deltas) > 1
    assert "".join(deltas) == outcome.reasoning.text


def test_cancelling_from_on_token_gives_an_error_outcome_saying_cancelled(make_worker):
    worker, _, errors = make_worker(FakeEngine("A"))

    def cancel(delta: str) -> None:
        raise Cancelled()

    outcome = ask(worker, on_token=cancel)
    assert outcome.status is OutcomeStatus.ERROR and outcome.message == "cancelled"
    assert worker.stats.errors == {} and errors.calls == []  # a cancel is not an engine fault


def test_the_request_after_a_cancelled_one_is_served(make_worker):
    worker, _, _ = make_worker(FakeEngine("A"))

    def cancel(delta: str) -> None:
        raise Cancelled()

    ask(worker, on_token=cancel)
    assert ask(worker, options=("yes", "no")).status is OutcomeStatus.OK


# ---- fairness ------------------------------------------------------------------------------------


def test_queued_requests_and_a_pending_tick_take_turns(make_worker):
    gate = Gate()
    engine = FakeEngine("A", before=gate)
    worker, _, _ = make_worker(engine, settings(publish_failure=False))
    worker.tick()
    gate.wait_entered()  # periodic run 1 is in the engine
    dones = [Recorder() for _ in range(3)]
    for i, done in enumerate(dones):
        assert worker.submit(Request(f"request {i}?", done=done))
    for _ in range(5):
        worker.tick()  # keep a tick pending whenever the worker chooses
        gate.release()
        gate.wait_entered()
    worker.tick()
    gate.open()
    for done in dones:
        done.wait_for(1)
    served = ["tick" if call["prompt"].kind is TaskKind.NEXT_SUBTASK else "request" for call in engine.calls]
    assert served[:6] == ["tick", "request", "tick", "request", "tick", "request"]


def test_after_a_request_a_pending_tick_runs_before_the_next_queued_request(make_worker):
    gate = Gate()
    engine = FakeEngine("A", before=gate)
    worker, _, _ = make_worker(engine, settings(publish_failure=False))
    first = Recorder()
    assert worker.submit(Request("request 0?", done=first))
    gate.wait_entered()  # request 0 is in the engine
    second = Recorder()
    assert worker.submit(Request("request 1?", done=second))
    worker.tick()
    gate.open()
    second.wait_for(1)
    served = ["tick" if call["prompt"].kind is TaskKind.NEXT_SUBTASK else "request" for call in engine.calls]
    assert served == ["request", "tick", "request"]


# ---- robustness ----------------------------------------------------------------------------------


def test_a_periodic_callback_that_raises_does_not_stop_the_worker(buffer):
    published = threading.Event()

    def publish(kind: str, outcome: Outcome) -> None:
        published.set()
        raise RuntimeError("publisher's context is invalid")

    worker = ReasoningWorker(buffer, FakeEngine, settings(), on_periodic=publish, clock=lambda: NOW)
    worker.start()
    try:
        assert worker.wait_ready(WAIT_S)
        worker.tick()
        assert published.wait(WAIT_S)
        done = Recorder()
        assert worker.submit(Request("still there?", done=done))
        with done._cv:
            answered = done._cv.wait_for(lambda: done.calls, 1.0)
        assert answered, "the request was accepted but never answered"
    finally:
        worker.stop(timeout=1.0)

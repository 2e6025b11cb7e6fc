"""Specification of the planner's task input: which TaskContexts the reasoner takes, and how the
periodic answers follow the current task (its id echoed, no frame from before it began)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from cosmos_ros.core.frames import FrameBuffer
from cosmos_ros.core.types import Reasoning
from cosmos_ros.nodes.tasks import TaskFields, TaskInput, TaskRefused, check_task
from cosmos_ros.nodes.worker import ReasoningWorker, Settings

PLAN = ("move above the red block", "lower the gripper to the red block", "grasp the red block")
TASK = TaskFields("episode-1", "put the red block on the green pad", PLAN, "", since=10.0)


@pytest.mark.parametrize(
    ("fields", "cause"),
    [
        (TaskFields("a", "   "), "empty_task"),
        (TaskFields("a", "x" * 501), "too_long"),
        (TaskFields("a", "stack", tuple(f"step {i}" for i in range(300))), "too_many_subtasks"),
        (TaskFields("a", "stack", ("pick", "PICK")), "bad_subtasks"),
        (TaskFields("a", "stack", ("pick", "")), "bad_subtasks"),
        (TaskFields("a", "stack", ("two\nlines",)), "bad_subtasks"),
    ],
)
def test_unusable_tasks_are_refused_by_cause(fields, cause):
    with pytest.raises(TaskRefused) as refused:
        check_task(fields)
    assert refused.value.cause == cause


def test_a_refused_task_is_counted_and_keeps_the_current_one():
    tasks = TaskInput()
    assert tasks.offer(TASK)
    with pytest.raises(TaskRefused):
        tasks.offer(TaskFields("episode-2", ""))
    assert tasks.current == TASK and tasks.received == 2 and tasks.refused == {"empty_task": 1}


def test_a_task_older_than_the_current_one_is_refused_as_stale():
    tasks = TaskInput()
    tasks.offer(TASK)
    with pytest.raises(TaskRefused) as refused:
        tasks.offer(TaskFields("episode-0", "push the red block onto the green pad", since=5.0))
    assert refused.value.cause == "stale" and tasks.current == TASK


def test_the_same_task_again_changes_nothing():
    tasks = TaskInput()
    assert tasks.offer(TASK)
    assert not tasks.offer(TASK)  # a transient-local re-delivery


def test_the_task_replaces_the_parameter_defaults():
    defaults = Settings(cameras=("front",), task="from parameters", subtask_options=("a", "b"))
    tasks = TaskInput()
    assert tasks.apply(defaults) == defaults
    tasks.offer(TASK)
    applied = tasks.apply(defaults)
    assert (applied.task, applied.subtask_options, applied.task_id, applied.task_since) == (
        TASK.task, PLAN, "episode-1", 10.0
    )


class Engine:
    """Answers "A"; records the clip's stamps and prompt; `hold` keeps a call inside reason."""

    model_id = "fake@0"

    def __init__(self):
        self.calls = []
        self.hold = threading.Event()
        self.hold.set()
        self.entered = threading.Event()

    def reason(self, clip, prompt, *, max_new_tokens, temperature, on_token):
        self.calls.append((clip, prompt))
        self.entered.set()
        assert self.hold.wait(5.0)
        return Reasoning(text="<think>\n\n</think>\n\n<answer>\nA\n</answer>", confidence=1.0)


def _worker(engine, settings):
    buffer = FrameBuffer(capacity_per_camera=64, max_age_s=None)
    for stamp in 8.0 + np.arange(16) * 0.25:  # 8.0 .. 11.75 s
        buffer.add("front", float(stamp), np.zeros((8, 8, 3), np.uint8), received=100.0)
    answers, done = [], threading.Semaphore(0)

    def on_periodic(kind, outcome):
        answers.append((kind, outcome))
        done.release()

    worker = ReasoningWorker(buffer, lambda: engine, settings, on_periodic=on_periodic, clock=lambda: 100.0)
    worker.start()
    assert worker.wait_ready(5.0)
    return worker, answers, done


def test_periodic_answers_echo_the_task_and_see_only_its_frames():
    engine = Engine()
    tasks = TaskInput()
    tasks.offer(TASK)
    worker, answers, done = _worker(engine, tasks.apply(Settings(cameras=("front",), window_s=4.0)))
    try:
        worker.tick()
        assert done.acquire(timeout=5.0) and done.acquire(timeout=5.0)
    finally:
        worker.stop()
    (kind1, subtask), (kind2, failure) = answers
    assert (kind1, subtask.task_id, subtask.task, subtask.parsed.choice_text) == (
        "next_subtask", "episode-1", TASK.task, PLAN[0]
    )
    assert (kind2, failure.task_id) == ("failure", "episode-1")
    clip, prompt = engine.calls[0]
    assert clip.start >= 10.0 and clip.end == 11.75  # the 4 s window, cut at the task's start
    assert prompt.options == PLAN


def test_a_task_that_arrives_while_the_model_runs_applies_to_the_next_answer():
    engine = Engine()
    engine.hold.clear()
    first = Settings(cameras=("front",), task="stack the cubes", task_id="old")
    worker, answers, done = _worker(engine, first)
    try:
        worker.tick()
        assert engine.entered.wait(5.0)
        tasks = TaskInput()
        tasks.offer(TASK)
        worker.settings = tasks.apply(worker.settings)  # what the node does on a TaskContext
        engine.hold.set()
        assert done.acquire(timeout=5.0) and done.acquire(timeout=5.0)
        worker.tick()
        assert done.acquire(timeout=5.0)
    finally:
        worker.stop()
    assert [o.task_id for _, o in answers[:2]] == ["old", "old"]  # asked before the task changed
    assert answers[2][1].task_id == "episode-1" and answers[2][1].task == TASK.task

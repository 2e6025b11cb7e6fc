"""The planner's TaskContext as the reasoner's periodic questions: checked, counted, applied.

No rclpy here: the node converts the message into `TaskFields` and hands it over. A task that is
refused (empty text, too many or malformed candidate subtasks, older than the current one) leaves
the current task in place; refusals are counted by cause for /diagnostics.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from cosmos_ros.core import prompts
from cosmos_ros.nodes.worker import Settings

MAX_TASK_CHARS = 500
MAX_SUBTASK_CHARS = 200


@dataclass(frozen=True)
class TaskFields:
    task_id: str
    task: str
    subtasks: tuple[str, ...] = ()
    failure_subtask: str = ""
    since: float | None = None  # the task's start, buffer seconds; None = no bound


class TaskRefused(ValueError):
    def __init__(self, cause: str, message: str):
        super().__init__(message)
        self.cause = cause


def check_task(fields: TaskFields) -> None:
    """Raises TaskRefused(cause, message) when the periodic prompts cannot be built from it."""
    if not fields.task.strip():
        raise TaskRefused("empty_task", "the task text is empty")
    if len(fields.task) > MAX_TASK_CHARS:
        raise TaskRefused("too_long", f"the task text has {len(fields.task)} characters; at most {MAX_TASK_CHARS}")
    if len(fields.subtasks) > len(prompts.OPTION_LETTERS):
        raise TaskRefused(
            "too_many_subtasks",
            f"{len(fields.subtasks)} candidate subtasks; at most {len(prompts.OPTION_LETTERS)} (options A-Z)",
        )
    longest = max((len(s) for s in (*fields.subtasks, fields.failure_subtask)), default=0)
    if longest > MAX_SUBTASK_CHARS:
        raise TaskRefused("too_long", f"a subtask has {longest} characters; at most {MAX_SUBTASK_CHARS}")
    try:
        prompts.next_subtask_prompt(fields.task, fields.subtasks)
        prompts.failure_prompt(fields.task, fields.failure_subtask or None)
    except ValueError as exc:  # blank, multi-line or duplicate options
        raise TaskRefused("bad_subtasks", str(exc)) from exc


class TaskInput:
    """The newest accepted task, and what was received and refused."""

    def __init__(self) -> None:
        self.current: TaskFields | None = None
        self.received = 0
        self.refused: dict[str, int] = {}

    def offer(self, fields: TaskFields) -> bool:
        """Takes the task if it is usable and not older than the current one; True when it
        changed the task. Raises TaskRefused (counted) otherwise."""
        self.received += 1
        try:
            check_task(fields)
            current = self.current
            if current is not None and None not in (current.since, fields.since) and fields.since < current.since:
                raise TaskRefused(
                    "stale", f"task {fields.task_id!r} started before the current task {current.task_id!r}"
                )
        except TaskRefused as exc:
            self.refused[exc.cause] = self.refused.get(exc.cause, 0) + 1
            raise
        changed = fields != self.current
        self.current = fields
        return changed

    def apply(self, settings: Settings) -> Settings:
        """The settings with the current task in place of the parameter defaults."""
        task = self.current
        if task is None:
            return settings
        return replace(
            settings,
            task=task.task.strip(),
            subtask_options=task.subtasks,
            failure_subtask=task.failure_subtask,
            task_id=task.task_id,
            task_since=task.since,
        )

"""The reasoner's `~/reason` service and action, answered by its worker thread.

Each call or goal becomes a worker `Request`; the service coroutine (or the action's execute
callback) awaits a Future the worker completes, so the executor never blocks. The queue is
bounded: a call beyond it is answered BUSY at once. An answer is always delivered, even when
filling it fails (then an ERROR that says why). Once the node winds down (`shutting_down`), new
calls are answered ERROR, new goals are refused and a goal being generated stops at its next
token and is aborted with the reason.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.task import Future

from cosmos_ros.action import Reason as ReasonAction
from cosmos_ros.core.types import OutcomeStatus
from cosmos_ros.nodes import messages
from cosmos_ros.nodes.worker import Cancelled, Outcome, ReasoningWorker, Request
from cosmos_ros.srv import Reason as ReasonService

SHUTTING_DOWN = "the reasoner is shutting down"


class ReasonServer:
    """Serves `~/reason` on `node` while it exists (the reasoner's active state)."""

    def __init__(
        self,
        node,
        worker: ReasoningWorker,
        stamps: messages.StampBase,
        log_once: Callable[[str, str], None],
    ):
        self.node, self.worker, self.stamps, self._log_once = node, worker, stamps, log_once
        self.shutting_down = False
        self.in_flight = 0  # calls and goals not yet answered
        group = ReentrantCallbackGroup()
        # Deep queues: a burst of concurrent calls must reach the callback to get BUSY, not vanish.
        deep = QoSProfile(depth=256, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
        self.service = node.create_service(
            ReasonService, "~/reason", self._on_reason, qos_profile=deep, callback_group=group
        )
        self.action = ActionServer(
            node,
            ReasonAction,
            "~/reason",
            execute_callback=self._execute_goal,
            goal_callback=lambda _: GoalResponse.REJECT if self.shutting_down else GoalResponse.ACCEPT,
            cancel_callback=lambda goal: CancelResponse.ACCEPT,
            callback_group=group,
        )

    def destroy(self) -> None:
        self.node.destroy_service(self.service)
        self.action.destroy()

    def _request(self, goal, on_token=None) -> tuple[Request, Future]:
        future = Future(executor=self.node.executor)
        # A done-callback makes rclpy schedule a task when the worker thread completes the
        # future, which wakes the executor so the awaiting service coroutine resumes.
        future.add_done_callback(lambda _: None)
        request = Request(
            question=goal.question,
            options=tuple(goal.options),
            cameras=tuple(c for c in goal.cameras if c),
            window_s=float(goal.window_s),
            max_new_tokens=int(goal.max_new_tokens),
            on_token=on_token,
            done=future.set_result,
        )
        return request, future

    async def _answer(self, job: Request, future: Future) -> Outcome:
        if self.shutting_down:
            return Outcome(OutcomeStatus.ERROR, SHUTTING_DOWN)
        if not self.worker.submit(job):
            return Outcome(OutcomeStatus.BUSY, f"{self.worker.queue_depth} requests queued; try again later")
        self.in_flight += 1
        try:
            return await future
        finally:
            self.in_flight -= 1

    def _fill_result(self, result, outcome: Outcome):
        """Fills a Reason response or result; if that fails, it still carries an ERROR that says why."""
        try:
            messages.fill_reason_result(result, outcome, self.stamps)
        except Exception as exc:  # the caller must get an answer, even one about our own bug
            cause = f"delivery.{type(exc).__name__}"
            errors = self.worker.stats.errors
            errors[cause] = errors.get(cause, 0) + 1
            self._log_once(cause, f"filling an answer failed: {type(exc).__name__}: {exc}")
            result = type(result)()
            failed = Outcome(OutcomeStatus.ERROR, f"answer delivery failed: {type(exc).__name__}: {exc}")
            messages.fill_reason_result(result, failed, self.stamps)
        return result

    async def _on_reason(self, request, response):
        job, future = self._request(request)
        return self._fill_result(response, await self._answer(job, future))

    async def _execute_goal(self, goal_handle):
        started = time.monotonic()
        text = []
        lock = threading.Lock()

        def on_token(delta: str) -> None:
            if goal_handle.is_cancel_requested or self.shutting_down:
                raise Cancelled()
            with lock:
                text.append(delta)
                feedback = ReasonAction.Feedback(
                    text_delta=delta,
                    text="".join(text),
                    num_tokens=len(text),
                    elapsed_s=time.monotonic() - started,
                )
            goal_handle.publish_feedback(feedback)

        job, future = self._request(goal_handle.request, on_token)
        outcome = await self._answer(job, future)
        if self.shutting_down and outcome.status is OutcomeStatus.ERROR:
            outcome = Outcome(OutcomeStatus.ERROR, SHUTTING_DOWN, cameras=outcome.cameras)
        result = self._fill_result(ReasonAction.Result(), outcome)
        if goal_handle.is_cancel_requested:
            goal_handle.canceled()
        elif self.shutting_down and outcome.status is OutcomeStatus.ERROR:
            goal_handle.abort()
        else:
            goal_handle.succeed()
        return result

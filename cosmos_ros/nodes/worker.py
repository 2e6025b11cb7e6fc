"""The reasoner's inference thread: turns the frame buffer into answers, off the executor.

No rclpy here: the node hands this worker its buffer, engine factory and settings, and gets
`Outcome`s back through callbacks. Keeping it free of ROS lets the scheduling rules (latest clip
wins, bounded request queue, stale cameras, engine failures) be tested directly.

Scheduling: a periodic tick asks for one "next subtask" and one "failure" answer on the newest
clip. Ticks do not queue up: while the engine is busy, further ticks collapse into one, so the
next periodic answer always sees the latest frames. Requests (service / action) wait in a
bounded FIFO; when it is full `submit` refuses at once and the caller answers BUSY. Requests and
ticks alternate so neither starves the other.

Every request is answered exactly once, whatever its fields: INVALID for fields out of range, and
an ERROR naming the stage (request, prompt, buffer, engine, parser, delivery) for any unexpected
exception, counted in `stats.errors` as "<stage>.<ExceptionType>" and reported once per cause.
"""

from __future__ import annotations

import collections
import contextlib
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from cosmos_ros.core import prompts
from cosmos_ros.core.answers import AnswerStatus, ParsedAnswer, parse_answer
from cosmos_ros.core.frames import EmptyClipError, FrameBuffer
from cosmos_ros.core.types import Clip, OutcomeStatus, Prompt, Reasoning, TaskKind
from cosmos_ros.engine.base import EngineBusyError

# The bounds of a request's window_s and max_new_tokens; the node's parameters share them.
MAX_WINDOW_S = 600.0
MAX_NEW_TOKENS = 32768


_FROM_ANSWER = {
    AnswerStatus.OK: OutcomeStatus.OK,
    AnswerStatus.NONE: OutcomeStatus.NONE,
    AnswerStatus.UNCERTAIN: OutcomeStatus.UNCERTAIN,
}


class Cancelled(Exception):
    """Raised from a token callback to stop generation (action goal cancelled)."""


@dataclass(frozen=True)
class Settings:
    """The reasoner parameters the worker needs; replaced whole when a parameter changes."""

    cameras: tuple[str, ...]
    task: str = ""
    subtask_options: tuple[str, ...] = ()
    failure_subtask: str = ""
    window_s: float = 4.0
    fps: float = 4.0
    max_frames: int = 16
    max_new_tokens: int = 256
    temperature: float = 0.0
    stale_timeout_s: float = 2.0
    publish_subtask: bool = True
    publish_failure: bool = True
    # From the planner's TaskContext: its id (echoed in the answers) and its start stamp in
    # buffer seconds (periodic clips hold no older frame; None = no bound).
    task_id: str = ""
    task_since: float | None = None


@dataclass
class Outcome:
    """The result of one question about one clip, whatever happened."""

    status: OutcomeStatus
    message: str = ""
    prompt: Prompt | None = None
    parsed: ParsedAnswer | None = None
    reasoning: Reasoning | None = None
    clip_start: float = 0.0
    clip_end: float = 0.0
    cameras: tuple[str, ...] = ()
    num_frames: int = 0
    latency_s: float = 0.0
    model_id: str = ""
    # what a periodic answer was asked about (the settings may change while the model runs)
    task: str = ""
    task_id: str = ""
    subtask: str = ""


@dataclass
class Request:
    """An explicit question (Reason service or action)."""

    question: str
    options: tuple[str, ...] = ()
    cameras: tuple[str, ...] = ()
    window_s: float = 0.0  # 0 = settings.window_s
    max_new_tokens: int = 0  # 0 = settings.max_new_tokens
    on_token: Callable[[str], None] | None = None
    done: Callable[[Outcome], None] = lambda outcome: None
    submitted: float = field(default_factory=time.monotonic)


@dataclass
class WorkerStats:
    inferences: int = 0
    periodic_runs: int = 0
    requests_done: int = 0
    busy_rejections: int = 0  # requests refused because the queue was full
    busy: int = 0  # answers the engine could not give now (a shared server at capacity)
    stale: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # "<stage>.<exception type>" -> count
    last_latency_s: float = float("nan")
    latencies: collections.deque = field(default_factory=lambda: collections.deque(maxlen=100))
    # seconds of the last 100 answers' stages: clip (cut from the buffer), preprocess, prefill,
    # decode (as the engine reports them), parse, publish (the answer handed to its publisher)
    stages: dict[str, collections.deque] = field(default_factory=dict)

    def note(self, stage: str, seconds: float) -> None:
        self.stages.setdefault(stage, collections.deque(maxlen=100)).append(seconds)


class ReasoningWorker:
    """One thread that owns the engine.

    engine_factory: called once on the worker thread (model loading can take a while);
        if it raises, every answer is an ERROR that names the failure and the node lives on.
    on_periodic: receives (kind, Outcome) with kind TaskKind.NEXT_SUBTASK or TaskKind.FAILURE.
    on_error: receives (cause, message) the first time each cause of error appears.
    """

    def __init__(
        self,
        buffer: FrameBuffer,
        engine_factory: Callable[[], object],
        settings: Settings,
        *,
        on_periodic: Callable[[str, Outcome], None],
        on_error: Callable[[str, str], None] = lambda cause, message: None,
        max_pending: int = 8,
        clock: Callable[[], float] = time.monotonic,
        refresh: Callable[[], None] = lambda: None,
    ):
        self.buffer = buffer
        self.settings = settings
        self.stats = WorkerStats()
        self._engine_factory = engine_factory
        self._engine = None
        self._engine_error = ""
        self._on_periodic = on_periodic
        self._on_error = on_error
        self._reported_causes: set[str] = set()
        self._max_pending = max_pending
        self._clock = clock
        self._refresh = refresh  # called before a clip is cut: lets the node take the newest frames
        self._requests: collections.deque[Request] = collections.deque()
        self._tick = False
        self._tick_end: float | None = None  # where the pending tick's clip ends; None = newest frame
        self._cv = threading.Condition()
        self._stop = False
        self._ready = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="cosmos_ros-reasoner", daemon=True)

    # ---- control, from any thread --------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Queued requests are answered ERROR at once; the one being served finishes (or is
        cancelled through its on_token). Waits up to timeout for the thread; the engine is closed,
        once, only after the thread has ended. Returns whether it has; safe to call again."""
        with self._cv:
            self._stop = True
            pending, self._requests = list(self._requests), collections.deque()
            self._cv.notify_all()
        for request in pending:
            self._deliver(request, Outcome(OutcomeStatus.ERROR, "the reasoner is shutting down"))
        if self._thread.ident is not None:
            self._thread.join(timeout)
        if self._thread.is_alive():
            return False
        if not self._closed:
            self._closed = True
            close = getattr(self._engine, "close", None)
            if close is not None:
                close()
        return True

    def wait_ready(self, timeout: float | None = None) -> bool:
        """True once the engine has loaded (or failed to load)."""
        return self._ready.wait(timeout)

    @property
    def model_id(self) -> str:
        return getattr(self._engine, "model_id", "") if self._engine is not None else ""

    @property
    def engine_error(self) -> str:
        return self._engine_error

    @property
    def queue_depth(self) -> int:
        with self._cv:
            return len(self._requests)

    def tick(self, end: float | None = None) -> None:
        """Ask for a periodic answer on the newest clip, or on the clip ending at buffer time
        `end` (collapses with a pending tick: the latest one wins)."""
        with self._cv:
            self._tick = True
            self._tick_end = end
            self._cv.notify()

    def submit(self, request: Request) -> bool:
        """Queue a request; False (and counted) when the queue is full."""
        with self._cv:
            if self._stop or len(self._requests) >= self._max_pending:
                self.stats.busy_rejections += 1
                return False
            self._requests.append(request)
            self._cv.notify()
            return True

    # ---- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._engine = self._engine_factory()
        except Exception as exc:  # the node must outlive a broken model
            self._engine_error = f"loading the engine failed: {type(exc).__name__}: {exc}"
            self._report("engine_load", self._engine_error)
        self._ready.set()
        prefer_request = True
        while True:
            with self._cv:
                while not self._stop and not self._tick and not self._requests:
                    self._cv.wait()
                if self._stop:
                    return
                run_request = bool(self._requests) and (prefer_request or not self._tick)
                request = self._requests.popleft() if run_request else None
                end = None
                if request is None:
                    self._tick, end, self._tick_end = False, self._tick_end, None
            prefer_request = not run_request
            try:
                if request is not None:
                    self._serve(request)
                else:
                    self._periodic(end)
            except Exception as exc:  # a failing callback must not end the thread that answers
                self._count_failure("periodic", exc)

    def _serve(self, request: Request) -> None:
        try:
            outcome = self._request_outcome(request)
        except Exception as exc:  # whatever a request holds, its caller gets an answer
            outcome = Outcome(OutcomeStatus.ERROR, self._count_failure("request", exc))
        self._deliver(request, outcome)

    def _request_outcome(self, request: Request) -> Outcome:
        settings = self.settings
        try:
            prompt = (
                prompts.mcq_prompt(request.question, request.options)
                if request.options
                else prompts.free_prompt(request.question)
            )
        except ValueError as exc:
            return Outcome(OutcomeStatus.INVALID, str(exc))
        except Exception as exc:  # a prompt bug is ours, not the caller's: ERROR, not INVALID
            return Outcome(OutcomeStatus.ERROR, self._count_failure("prompt", exc))
        if request.cameras:
            unknown = [c for c in request.cameras if c not in settings.cameras]
            if unknown:
                return Outcome(
                    OutcomeStatus.INVALID,
                    f"unknown cameras {unknown}; this reasoner watches {list(settings.cameras)}",
                )
        window_s, max_new_tokens = float(request.window_s), int(request.max_new_tokens)
        if not (math.isfinite(window_s) and 0 <= window_s <= MAX_WINDOW_S):
            return Outcome(
                OutcomeStatus.INVALID,
                f"window_s must be within 0..{MAX_WINDOW_S:g} s (0 = default), got {window_s}",
            )
        if not 0 <= max_new_tokens <= MAX_NEW_TOKENS:
            return Outcome(
                OutcomeStatus.INVALID,
                f"max_new_tokens must be within 0..{MAX_NEW_TOKENS} (0 = default), got {max_new_tokens}",
            )
        if window_s > 0:
            settings = replace(settings, window_s=window_s)
        if max_new_tokens > 0:
            settings = replace(settings, max_new_tokens=max_new_tokens)
        cameras = request.cameras or settings.cameras
        outcome = self._answer(prompt, cameras, settings, on_token=request.on_token)
        self.stats.requests_done += 1
        return outcome

    def _deliver(self, request: Request, outcome: Outcome) -> None:
        try:
            started = time.perf_counter()
            request.done(outcome)
            self.stats.note("publish", time.perf_counter() - started)
        except Exception as exc:  # tell the caller through the same callback, once more
            message = self._count_failure("delivery", exc)
            with contextlib.suppress(Exception):  # counted above; there is no other way to the caller
                request.done(Outcome(OutcomeStatus.ERROR, message, cameras=outcome.cameras))

    def _periodic(self, end: float | None = None) -> None:
        settings = self.settings  # one snapshot: a task that arrives meanwhile applies next time
        if not settings.task:
            return
        self.stats.periodic_runs += 1
        if settings.publish_subtask:
            prompt = prompts.next_subtask_prompt(settings.task, settings.subtask_options)
            outcome = self._answer(prompt, settings.cameras, settings, since=settings.task_since, end=end)
            outcome.task, outcome.task_id = settings.task, settings.task_id
            self._publish(TaskKind.NEXT_SUBTASK, outcome)
        if settings.publish_failure:
            prompt = prompts.failure_prompt(settings.task, settings.failure_subtask or None)
            outcome = self._answer(prompt, settings.cameras, settings, since=settings.task_since, end=end)
            outcome.task, outcome.task_id = settings.task, settings.task_id
            outcome.subtask = settings.failure_subtask
            self._publish(TaskKind.FAILURE, outcome)

    def _publish(self, kind: TaskKind, outcome: Outcome) -> None:
        started = time.perf_counter()
        self._on_periodic(kind, outcome)
        self.stats.note("publish", time.perf_counter() - started)

    def _answer(
        self,
        prompt: Prompt,
        cameras: Sequence[str],
        settings: Settings,
        on_token: Callable[[str], None] | None = None,
        since: float | None = None,
        end: float | None = None,
    ) -> Outcome:
        cutting = time.perf_counter()
        self._refresh()
        started = self._clock()
        stale = [c for c in cameras if self.buffer.is_stale(c, started, settings.stale_timeout_s)]
        if stale:
            self.stats.stale += 1
            return Outcome(
                OutcomeStatus.STALE,
                f"no frame from {', '.join(stale)} in the last {settings.stale_timeout_s:g} s",
                prompt=prompt,
                cameras=tuple(cameras),
            )
        try:
            clip = self.buffer.clip(
                settings.window_s, settings.fps, settings.max_frames, cameras=cameras, since=since, end=end
            )
        except EmptyClipError as exc:
            self.stats.stale += 1
            return Outcome(OutcomeStatus.STALE, str(exc), prompt=prompt, cameras=tuple(cameras))
        except Exception as exc:  # a clip that cannot be built is an answer too, not a lost request
            message = self._count_failure("buffer", exc)
            return Outcome(OutcomeStatus.ERROR, message, prompt=prompt, cameras=tuple(cameras))
        self.stats.note("clip", time.perf_counter() - cutting)
        outcome = self._infer(clip, prompt, settings, on_token)
        outcome.latency_s = self._clock() - started
        if outcome.status is not OutcomeStatus.ERROR:
            self.stats.last_latency_s = outcome.latency_s
            self.stats.latencies.append(outcome.latency_s)
        return outcome

    def _infer(
        self, clip: Clip, prompt: Prompt, settings: Settings, on_token: Callable[[str], None] | None
    ) -> Outcome:
        base = Outcome(
            OutcomeStatus.ERROR,
            prompt=prompt,
            clip_start=clip.start,
            clip_end=clip.end,
            cameras=clip.cameras,
            num_frames=clip.num_frames,
        )
        if self._engine is None:
            base.message = self._engine_error or "the engine is not loaded"
            return base
        base.model_id = self.model_id
        try:
            reasoning = self._engine.reason(
                clip,
                prompt,
                max_new_tokens=settings.max_new_tokens,
                temperature=settings.temperature,
                on_token=on_token,
            )
        except Cancelled:
            base.message = "cancelled"
            return base
        except EngineBusyError as exc:  # a shared server at capacity: ask again later
            self.stats.busy += 1
            base.status, base.message = OutcomeStatus.BUSY, str(exc)
            return base
        except Exception as exc:  # any engine failure becomes an ERROR answer, never a dead node
            base.message = self._count_failure("engine", exc)
            return base
        self.stats.inferences += 1
        for stage, seconds in (reasoning.stages or {}).items():
            self.stats.note(stage, seconds)
        try:
            parsing = time.perf_counter()
            parsed = parse_answer(reasoning.text, prompt.options, reasoning.answer_format)
            status = _FROM_ANSWER[parsed.status]
            self.stats.note("parse", time.perf_counter() - parsing)
        except Exception as exc:  # an engine's odd output must not cost the caller its answer
            base.message = self._count_failure("parser", exc)
            return base
        base.status = status
        base.message = parsed.reason
        base.parsed = parsed
        base.reasoning = reasoning
        base.model_id = reasoning.model_id or base.model_id
        return base

    def _count_failure(self, stage: str, exc: Exception) -> str:
        """Counts an unexpected exception by stage and type, reports each cause once; returns
        the message for the ERROR answer."""
        cause = f"{stage}.{type(exc).__name__}"
        self.stats.errors[cause] = self.stats.errors.get(cause, 0) + 1
        message = f"{stage} failed: {type(exc).__name__}: {exc}"
        self._report(cause, message)
        return message

    def _report(self, cause: str, message: str) -> None:
        if cause not in self._reported_causes:
            self._reported_causes.add(cause)
            self._on_error(cause, message)

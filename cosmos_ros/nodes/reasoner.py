"""reasoner: camera topics in, next subtask and failure detections out.

Subscribes `<camera>/image_raw` (or `<camera>/image_raw/compressed`) for each name in the
`cameras` parameter, keeps the frames in a FrameBuffer, and every 1/rate_hz seconds asks the
model on a worker thread what the robot should do next (`~/next_subtask`) and whether it failed
(`~/failure`). Anyone can ask their own question through the `~/reason` service or the
`~/reason` action (which streams the chain of thought as feedback). Health goes to /diagnostics.
With use_sim_time the periodic answers follow the first camera's stamps instead of a timer
(messages.StampTicks), so a replayed bag gets the same clips every run.

One class for both executables: a lifecycle node (configure: parameters checked, model loading,
publishers up; activate: cameras subscribed, periodic answers, ~/reason served; deactivate;
cleanup). The `reasoner` executable configures and activates it at start, as nav2's autostart
does, and keeps running with a model that fails to load (every answer then says why);
`reasoner_lifecycle` leaves the transitions to a lifecycle manager, and its configure waits for
the model and fails without it.

Executor callbacks only convert and hand off; the model runs on the worker thread.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from functools import partial

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from cosmos_ros.core.codec import (
    compressed_from_cdr,
    image_from_cdr,
    FRAME_MAX_ASPECT,
    FRAME_MIN_SIDE,
    ImageDecodeError,
    compressed_to_rgb8,
    image_to_rgb8,
    stamp_seconds,
)
from cosmos_ros.core.frames import FrameBuffer
from cosmos_ros.core.types import TaskKind
from cosmos_ros.engine import create_engine
from cosmos_ros.msg import FailureDetection, SubtaskPrediction, TaskContext
from cosmos_ros.nodes import diagnostics, messages
from cosmos_ros.nodes.ingest import CameraIngest, resolve_mode
from cosmos_ros.nodes.tasks import TaskFields, TaskInput, TaskRefused
from cosmos_ros.nodes.reasoner_params import (
    PARAMETERS,
    descriptor,
    ingest_rate_hz,
    settings_from,
    timer_period_ns,
    validate,
)
from cosmos_ros.nodes.reason_server import ReasonServer
from cosmos_ros.nodes.runner import run_node
from cosmos_ros.nodes.worker import Outcome, ReasoningWorker

LOAD_TIMEOUT_S = 600.0  # a managed reasoner's configure waits this long for the model


class Reasoner(LifecycleNode):
    """The reasoner node. autostart: configured and activated at construction (the `reasoner`
    executable); otherwise it waits in `unconfigured` for a lifecycle manager."""

    def __init__(self, *, autostart: bool = False, **kwargs):
        super().__init__("reasoner", **kwargs)
        self.autostart = autostart
        # Configured state (inactive and active); None / empty while unconfigured.
        self._values: dict = {}
        self.worker: ReasoningWorker | None = None
        self.buffer: FrameBuffer | None = None
        self.stamps = messages.StampBase()
        self.tasks = TaskInput()
        self._confirmation = messages.FailureConfirmation()
        self._decode_errors: dict[str, dict[str, int]] = {}  # camera -> cause -> frames
        self._latency: dict[str, collections.deque] = {}  # camera -> capture-to-buffer seconds
        self._logged_causes: set[str] = set()
        self._frame_ids: dict[str, str] = {}
        self._jumped: set[str] = set()  # cameras whose last frame was a clock jump
        self._ingest: CameraIngest | None = None
        self._outputs: tuple = ()  # next_subtask, failure, /diagnostics
        self._diag_timer = None
        # Active state: subscriptions, the periodic timer (or stamp ticks on sim time), ~/reason.
        self._active: list = []
        self._timer = None
        self._stamp_ticks: messages.StampTicks | None = None
        self._server: ReasonServer | None = None
        self._shutting_down = False
        # After the state above: a refused parameter ends the node here, and destroy_node runs.
        for name, (default, description, read_only) in PARAMETERS.items():
            self.declare_parameter(name, default, descriptor(name, default, description, read_only))
        self.add_on_set_parameters_callback(self._on_set_parameters)
        if autostart:
            problem = validate(self._read_parameters())
            if problem:
                raise ValueError(f"invalid reasoner parameters: {problem}")
            for transition in (self.trigger_configure, self.trigger_activate):
                if transition() != TransitionCallbackReturn.SUCCESS:
                    raise ValueError(f"the reasoner failed to {transition.__name__.removeprefix('trigger_')}")

    # ---- lifecycle transitions -------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure()
        except ValueError as exc:
            self.get_logger().error(str(exc))
            return TransitionCallbackReturn.FAILURE
        if not self.autostart:  # a managed reasoner is configured once its model works
            if not self.worker.wait_ready(LOAD_TIMEOUT_S) or self.worker.engine_error:
                self.get_logger().error(self.worker.engine_error or "the model did not load in time")
                self._cleanup()
                return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._activate()
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._deactivate()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._cleanup()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self._server is not None:
            self._deactivate()
        if self.worker is not None:
            self._cleanup()
        return TransitionCallbackReturn.SUCCESS

    def destroy_node(self) -> None:
        if self.worker is not None:
            # After a wind-down the thread has ended, or was given up on: do not wait for it again.
            self.worker.stop(0.5 if self._shutting_down else 10.0)
        super().destroy_node()

    # ---- the steps -------------------------------------------------------------------------------

    def _read_parameters(self) -> dict:
        return {name: self.get_parameter(name).value for name in PARAMETERS}

    def _configure(self) -> None:
        """Reads and checks the parameters, starts the worker (which loads the model) and the
        publishers. Raises ValueError for unusable parameters."""
        values = self._read_parameters()
        problem = validate(values)
        if problem:
            raise ValueError(f"invalid reasoner parameters: {problem}")
        self._values = values
        settings = settings_from(values)
        self._decode_errors = {c: {} for c in settings.cameras}
        self._latency = {c: collections.deque(maxlen=200) for c in settings.cameras}
        self._logged_causes, self._frame_ids, self._jumped = set(), {}, set()
        self.stamps, self.tasks = messages.StampBase(), TaskInput()
        self._confirmation = messages.FailureConfirmation()
        self.buffer = FrameBuffer(
            values["buffer_capacity"],
            max_age_s=max(30.0, 2 * settings.window_s),
            clock_jump_s=values["clock_jump_s"],
            on_clock_jump=self._on_clock_jump,
        )
        self._shutting_down = False
        self.worker = ReasoningWorker(
            self.buffer,
            self._make_engine,
            settings,
            on_periodic=self._publish_periodic,
            on_error=lambda cause, message: self.get_logger().error(message),
            max_pending=self._values["max_pending_requests"],
            clock=self._arrival_time,
            refresh=self._take_latest,
        )
        self._outputs = (
            self.create_publisher(SubtaskPrediction, "~/next_subtask", 10),
            self.create_publisher(FailureDetection, "~/failure", 10),
            self.create_publisher(DiagnosticArray, "/diagnostics", 10),
        )
        self._diag_timer = self.create_timer(1.0, self._publish_diagnostics)
        self.worker.start()

    def _activate(self) -> None:
        """Subscribes the cameras, starts the periodic questions and serves ~/reason."""
        values = self._values
        sim_time = bool(self.get_parameter("use_sim_time").value)
        self._ingest = CameraIngest(
            self,
            self.worker.settings.cameras,
            mode=resolve_mode(values["ingest_mode"], sim_time),
            compressed=values["image_transport"] == "compressed",
            reliable=values["camera_reliability"] == "reliable",
            rate_hz=lambda: ingest_rate_hz(self._values),
            on_frame=self._on_frame,
            on_bad_stamp=lambda camera, exc: self._count_decode_error(camera, exc.cause, str(exc)),
        )
        # The planner's current task: a reasoner that starts (or activates) late still gets it.
        latched = QoSProfile(
            depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
        )
        self._active.append(self.create_subscription(TaskContext, "~/task", self._on_task, latched))
        # On sim time the camera's stamps drive the periodic answers (messages.StampTicks), so a
        # replayed bag gets the same clips however its messages interleave with /clock.
        self._stamp_ticks = messages.StampTicks() if sim_time else None
        if self._stamp_ticks is None:
            self._timer = self.create_timer(1.0 / self._values["rate_hz"], self.worker.tick)
        self._server = ReasonServer(self, self.worker, self.stamps, self._log_once)
        settings = self.worker.settings
        v = self._values
        where = (f"{v['served_model'] or 'the served model'} at {v['server_url']}" if v["engine"] == "openai"
                 else f"{v['model']} on {v['device']}")  # fmt: skip
        self.get_logger().info(
            f"watching {', '.join(settings.cameras)} with {v['engine']} engine "
            f"({where}), taking frames by {self._ingest.mode} "
            f"at {ingest_rate_hz(values):.3g} fps; task: {settings.task or '(none)'}"
        )

    def _deactivate(self) -> None:
        self._ingest.destroy()
        self._ingest = None
        for subscription in self._active:
            self.destroy_subscription(subscription)
        self._active = []
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        self._server.destroy()
        self._server = None

    def _cleanup(self) -> None:
        self.worker.stop()
        self.worker = None  # the engine goes with it
        self.destroy_timer(self._diag_timer)
        for publisher in self._outputs:
            self.destroy_publisher(publisher)
        self._outputs, self._diag_timer = (), None

    # ---- set-up --------------------------------------------------------------------------------

    def _make_engine(self):
        values = self._values
        if values["engine"] == "openai":
            engine = create_engine("openai", values["served_model"], server_url=values["server_url"],
                                   api_key_env=values["api_key_env"])  # fmt: skip
        else:
            engine = create_engine(
                values["engine"], values["model"], device=values["device"], precision=values["precision"] or None
            )
        self.get_logger().info(f"engine ready: {engine.model_id}")
        return engine

    # ---- callbacks: convert, hand off, return ---------------------------------------------------

    def _take_latest(self) -> None:
        """Before a clip is cut (worker thread): in latest mode, the newest frames now."""
        ingest = self._ingest
        if ingest is not None:
            ingest.take_latest()

    def _on_frame(self, camera: str, data: bytes) -> bool:
        """A taken frame, as the serialized message: read in place, converted, buffered. False
        when it could not be decoded (counted per cause)."""
        shape = {"max_side": self._values["ingest_max_side"], "min_side": FRAME_MIN_SIDE}
        shape["max_aspect"] = FRAME_MAX_ASPECT  # absurd shapes are dropped here, not in the engine
        compressed = self._values["image_transport"] == "compressed"
        try:
            msg = compressed_from_cdr(data) if compressed else image_from_cdr(data)
            rgb = compressed_to_rgb8(msg, **shape) if compressed else image_to_rgb8(msg, **shape)
        except ImageDecodeError as exc:
            self._count_decode_error(camera, exc.cause, str(exc))
            return False
        stamp = self.stamps.to_seconds(msg.header.stamp)
        accepted = self.buffer.add(camera, stamp, rgb, received=self._arrival_time())
        self._frame_ids[camera] = msg.header.frame_id
        jumped = camera in self._jumped
        self._jumped.discard(camera)
        if accepted and self._stamp_ticks is not None and camera == self.worker.settings.cameras[0]:
            period_ns = timer_period_ns(self._values["rate_hz"])
            end = self._stamp_ticks.offer(msg.header.stamp, stamp, period_ns, restart=jumped)
            if end is not None:
                self.worker.tick(end=end)
        # capture -> in the buffer, decode and resize included; refused frames and the first of a
        # new timeline (a stamp-0 frame, a year-ahead one) would only measure the bad stamp
        if accepted and not jumped:
            captured = stamp_seconds(msg)
            self._latency[camera].append(self.get_clock().now().nanoseconds * 1e-9 - captured)
        else:
            self._log_once(
                f"{camera}:order", f"camera {camera}: frames with non-increasing stamps are dropped"
            )
        return True

    def _arrival_time(self) -> float:
        """Seconds on the node's clock: sim time when use_sim_time is on (a paused sim is not a
        silent camera), else monotonic (a wall-clock step is not a camera's clock jump)."""
        clock = self.get_clock()
        if clock.ros_time_is_active:
            return clock.now().nanoseconds * 1e-9
        return time.monotonic()

    def _on_clock_jump(self, camera: str, newest: float, stamp: float) -> None:
        self._jumped.add(camera)
        self._latency[camera].clear()  # measured against the old timeline
        self.get_logger().warning(
            f"camera {camera}: clock jumped {stamp - newest:+.3f} s; its frames restart from this one "
            "(counted as clock_jumps on /diagnostics)",
            throttle_duration_sec=5.0,
        )

    def _count_decode_error(self, camera: str, cause: str, message: str) -> None:
        counts = self._decode_errors.setdefault(camera, {})
        counts[cause] = counts.get(cause, 0) + 1
        self._log_once(f"{camera}:{cause}", f"camera {camera}: dropping frames ({cause}): {message}")

    def _log_once(self, key: str, message: str) -> None:
        if key not in self._logged_causes:
            self._logged_causes.add(key)
            self.get_logger().warning(message + " (logged once; counts on /diagnostics)")

    def _publish_periodic(self, kind: TaskKind, outcome: Outcome) -> None:
        frame_id = self._frame_ids.get(outcome.cameras[0], "") if outcome.cameras else ""
        subtask_pub, failure_pub, _ = self._outputs
        if kind == TaskKind.NEXT_SUBTASK:
            subtask_pub.publish(messages.subtask_prediction(outcome, self.stamps, frame_id))
        else:
            msg = messages.failure_detection(outcome, self.stamps, frame_id)
            failure_pub.publish(self._confirmation.apply(msg, self._values["failure_confirmations"]))

    def _on_task(self, msg: TaskContext) -> None:
        stamp = msg.header.stamp
        fields = TaskFields(
            task_id=msg.task_id,
            task=msg.task,
            subtasks=tuple(msg.candidate_subtasks),
            failure_subtask=msg.failure_subtask,
            since=self.stamps.to_seconds(stamp) if stamp.sec or stamp.nanosec else None,
        )
        try:
            changed = self.tasks.offer(fields)
        except TaskRefused as exc:
            self._log_once(f"task:{exc.cause}", f"task {msg.task_id!r} refused ({exc.cause}): {exc}")
            return
        if changed:
            self.worker.settings = self.tasks.apply(self.worker.settings)
            self.get_logger().info(f"task {msg.task_id!r}: {fields.task.strip()}")

    def _publish_diagnostics(self) -> None:
        ingest = self._ingest
        statuses = diagnostics.reasoner_statuses(
            self.get_fully_qualified_name(),
            self.buffer,
            self.worker,
            self.tasks,
            self._arrival_time(),
            decode_errors=self._decode_errors,
            latencies_s=self._latency,
            skipped=ingest.skipped if ingest is not None else {},
        )
        self._outputs[2].publish(diagnostics.diagnostic_array(self.get_clock().now().to_msg(), statuses))

    def _on_set_parameters(self, params) -> SetParametersResult:
        if self.worker is None:  # not configured: checked on configure
            return SetParametersResult(successful=True)
        values = dict(self._values)
        for param in params:
            if param.name in PARAMETERS and PARAMETERS[param.name][2]:
                return SetParametersResult(
                    successful=False, reason=f"{param.name} is read-only; restart the node"
                )
            values[param.name] = param.value
        problem = validate(values)
        if problem:
            return SetParametersResult(successful=False, reason=problem)
        if values["rate_hz"] != self._values["rate_hz"] and self._timer is not None:
            try:
                self._timer.timer_period_ns = timer_period_ns(values["rate_hz"])
                self._timer.reset()
            except Exception as exc:  # an exception here would end the process: refuse instead
                return SetParametersResult(
                    successful=False, reason=f"rate_hz {values['rate_hz']}: the timer refused it: {exc}"
                )
        self._values = values
        if self._ingest is not None:
            self._ingest.set_rate()  # fps or ingest_fps may have changed
        self.worker.settings = self.tasks.apply(settings_from(values))  # a planner's task wins
        return SetParametersResult(successful=True)

    def wind_down(self, executor, give_up, timeout_s: float = 10.0) -> None:
        """Ends what is in flight while the context still works (run_node calls this on the first
        Ctrl-C / SIGTERM): new calls and goals are refused, a goal being generated stops at its
        next token and is aborted with the reason, queued ones are answered ERROR, and the executor
        spins until all of them are delivered, timeout_s passes or give_up() (a second Ctrl-C)."""
        if self.worker is None:  # an unconfigured node has nothing in flight
            return
        self._shutting_down = True
        server = self._server
        if server is not None:
            server.shutting_down = True
        stopper = threading.Thread(target=self.worker.stop, name="cosmos_ros-stop", daemon=True)
        stopper.start()
        deadline = time.monotonic() + timeout_s

        def busy() -> bool:
            return stopper.is_alive() or (server is not None and server.in_flight > 0)

        while busy() and time.monotonic() < deadline and not give_up():
            executor.spin_once(timeout_sec=0.05)
        flush = time.monotonic() + 0.3  # the action server sends results from tasks of its own
        while time.monotonic() < flush and not give_up():
            executor.spin_once(timeout_sec=0.05)


def main(args=None) -> int:
    # One executor thread: callbacks only convert and hand off, and the service/action handlers
    # are coroutines, so nothing blocks it. rclpy's multi-threaded executor spent most of a core
    # rebuilding wait sets and delivered fewer frames (bench/ingest.py).
    return run_node(partial(Reasoner, autostart=True), "reasoner", args=args)


if __name__ == "__main__":
    sys.exit(main())

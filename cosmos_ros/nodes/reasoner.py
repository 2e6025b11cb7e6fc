"""reasoner: camera topics in, next subtask and failure detections out.

Subscribes `<camera>/image_raw` (or `<camera>/image_raw/compressed`) for each name in the
`cameras` parameter, keeps the frames in a FrameBuffer, and every 1/rate_hz seconds asks the
model on a worker thread what the robot should do next (`~/next_subtask`) and whether it failed
(`~/failure`). Anyone can ask their own question through the `~/reason` service or the
`~/reason` action (which streams the chain of thought as feedback). Health goes to /diagnostics.

Executor callbacks only convert and hand off; the model runs on the worker thread.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from functools import partial

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor, ParameterType, SetParametersResult
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.task import Future
from sensor_msgs.msg import CompressedImage, Image

from cosmos_ros.action import Reason as ReasonAction
from cosmos_ros.core.codec import ImageDecodeError, compressed_to_rgb8, image_to_rgb8
from cosmos_ros.core.frames import FrameBuffer
from cosmos_ros.engine import create_engine
from cosmos_ros.msg import FailureDetection, SubtaskPrediction, TaskContext
from cosmos_ros.nodes import diagnostics, messages
from cosmos_ros.nodes.tasks import TaskFields, TaskInput, TaskRefused
from cosmos_ros.nodes.worker import Cancelled, Outcome, OutcomeStatus, ReasoningWorker, Request, Settings
from cosmos_ros.srv import Reason as ReasonService
from cosmos_ros.nodes.runner import run_node

_STRING_ARRAY = ParameterType.PARAMETER_STRING_ARRAY

# name: (default, description, read_only). Read-only ones shape subscriptions or the model.
PARAMETERS = {
    "cameras": (["camera"], "camera names; subscribes <name>/image_raw for each", True),
    "image_transport": ("raw", "'raw' (sensor_msgs/Image) or 'compressed' (CompressedImage)", True),
    "camera_reliability": ("best_effort", "'best_effort' (matches any publisher) or 'reliable'", True),
    "task": ("", "the task until a TaskContext arrives on ~/task; empty = no periodic answers", False),
    "subtask_options": ([""], "candidate next subtasks until a TaskContext arrives; [''] = free-form", False),
    "failure_subtask": ("", "the subtask to check for failure until a TaskContext arrives; empty = whole task", False),
    "window_s": (4.0, "seconds of video per clip", False),
    "fps": (4.0, "frames per second the clip is resampled to (Cosmos-Reason1: 4)", False),
    "max_frames": (16, "most frames per clip", False),
    "rate_hz": (0.5, "periodic answers per second", False),
    "engine": ("torch", "torch | onnxruntime | tensorrt | module:factory", True),
    "model": ("tiny-dense", "model preset name or checkpoint directory", True),
    "device": ("cpu", "torch device for the engine (cpu, cuda, cuda:1)", True),
    "max_new_tokens": (256, "generation budget per answer", False),
    "temperature": (0.0, "0 = greedy (recommended for serving)", False),
    "stale_timeout_s": (2.0, "a camera silent for longer is STALE: no inference on old frames", False),
    "buffer_capacity": (128, "frames kept per camera", True),
    "ingest_max_side": (640, "frames are downscaled on arrival so their longer side is at most this", True),
    "publish_subtask": (True, "publish ~/next_subtask periodically", False),
    "publish_failure": (True, "publish ~/failure periodically", False),
    "max_pending_requests": (8, "queued service/action requests before answering BUSY", True),
}


def validate(values: dict) -> str:
    """Returns why the parameter values are unusable, or '' when they are fine."""
    checks = [
        (values["window_s"] > 0, "window_s must be > 0"),
        (values["fps"] > 0, "fps must be > 0"),
        (values["max_frames"] >= 1, "max_frames must be >= 1"),
        (values["rate_hz"] > 0, "rate_hz must be > 0"),
        (values["max_new_tokens"] >= 1, "max_new_tokens must be >= 1"),
        (values["temperature"] >= 0, "temperature must be >= 0"),
        (values["stale_timeout_s"] > 0, "stale_timeout_s must be > 0"),
        (values["buffer_capacity"] >= 1, "buffer_capacity must be >= 1"),
        (values["ingest_max_side"] >= 28, "ingest_max_side must be >= 28"),
        (values["max_pending_requests"] >= 1, "max_pending_requests must be >= 1"),
        (len([c for c in values["cameras"] if c]) >= 1, "cameras must name at least one camera"),
        (values["image_transport"] in ("raw", "compressed"), "image_transport must be 'raw' or 'compressed'"),
        (
            values["camera_reliability"] in ("best_effort", "reliable"),
            "camera_reliability must be 'best_effort' or 'reliable'",
        ),
    ]
    return "; ".join(message for ok, message in checks if not ok)


def settings_from(values: dict) -> Settings:
    return Settings(
        cameras=tuple(c for c in values["cameras"] if c),
        task=values["task"],
        subtask_options=tuple(o for o in values["subtask_options"] if o),
        failure_subtask=values["failure_subtask"],
        window_s=values["window_s"],
        fps=values["fps"],
        max_frames=values["max_frames"],
        max_new_tokens=values["max_new_tokens"],
        temperature=values["temperature"],
        stale_timeout_s=values["stale_timeout_s"],
        publish_subtask=values["publish_subtask"],
        publish_failure=values["publish_failure"],
    )


class ReasonerLogic:
    """Everything the reasoner does, in lifecycle-sized steps, for a class that is also a Node:
    `Reasoner` runs all steps at construction; `LifecycleReasoner` (reasoner_lifecycle) runs them
    on configure/activate/deactivate/cleanup transitions."""

    def _declare_parameters(self) -> None:
        for name, (default, description, read_only) in PARAMETERS.items():
            descriptor = ParameterDescriptor(description=description, read_only=read_only)
            if isinstance(default, list):
                descriptor.type = _STRING_ARRAY
            self.declare_parameter(name, default, descriptor)
        self.add_on_set_parameters_callback(self._on_set_parameters)

    def _configure(self) -> None:
        """Reads and checks the parameters, starts the worker (which loads the model) and the
        publishers. Raises ValueError for unusable parameters."""
        self._values = {name: self.get_parameter(name).value for name in PARAMETERS}
        problem = validate(self._values)
        if problem:
            raise ValueError(f"invalid reasoner parameters: {problem}")
        settings = settings_from(self._values)
        self._decode_errors: dict[str, dict[str, int]] = {c: {} for c in settings.cameras}
        # header stamp -> frame in the buffer, seconds, for /diagnostics
        self._latency = {c: collections.deque(maxlen=200) for c in settings.cameras}
        self._logged_causes: set[str] = set()
        self.stamps = messages.StampBase()
        self._frame_ids: dict[str, str] = {}
        self.tasks = TaskInput()
        self.buffer = FrameBuffer(self._values["buffer_capacity"], max_age_s=max(30.0, 2 * settings.window_s))
        self.worker = ReasoningWorker(
            self.buffer,
            self._make_engine,
            settings,
            on_periodic=self._publish_periodic,
            on_error=lambda cause, message: self.get_logger().error(message),
            max_pending=self._values["max_pending_requests"],
        )
        self._subtask_pub = self.create_publisher(SubtaskPrediction, "~/next_subtask", 10)
        self._failure_pub = self.create_publisher(FailureDetection, "~/failure", 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diag_timer = self.create_timer(1.0, self._publish_diagnostics)
        self._active: list = []  # subscriptions, timer, service, action server while active
        self.worker.start()

    def _activate(self) -> None:
        """Subscribes the cameras, starts the periodic questions and serves ~/reason."""
        self._active = self._subscribe_cameras(self.worker.settings.cameras)
        # The planner's current task: a reasoner that starts (or activates) late still gets it.
        latched = QoSProfile(
            depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
        )
        self._active.append(self.create_subscription(TaskContext, "~/task", self._on_task, latched))
        requests = ReentrantCallbackGroup()
        # Deep queues: a burst of concurrent calls must reach the callback to get BUSY, not vanish.
        deep = QoSProfile(depth=256, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
        self._timer = self.create_timer(1.0 / self._values["rate_hz"], self.worker.tick)
        self._service = self.create_service(
            ReasonService, "~/reason", self._on_reason, qos_profile=deep, callback_group=requests
        )
        self._action = ActionServer(
            self,
            ReasonAction,
            "~/reason",
            execute_callback=self._execute_goal,
            goal_callback=lambda goal: GoalResponse.ACCEPT,
            cancel_callback=lambda goal: CancelResponse.ACCEPT,
            callback_group=requests,
        )
        settings = self.worker.settings
        self.get_logger().info(
            f"watching {', '.join(settings.cameras)} with {self._values['engine']} engine "
            f"({self._values['model']} on {self._values['device']}); task: {settings.task or '(none)'}"
        )

    def _deactivate(self) -> None:
        for subscription in self._active:
            self.destroy_subscription(subscription)
        self._active = []
        self.destroy_timer(self._timer)
        self.destroy_service(self._service)
        self._action.destroy()

    def _cleanup(self) -> None:
        self.worker.stop()
        self.destroy_timer(self._diag_timer)
        for publisher in (self._subtask_pub, self._failure_pub, self._diag_pub):
            self.destroy_publisher(publisher)

    # ---- set-up --------------------------------------------------------------------------------

    def _make_engine(self):
        engine = create_engine(self._values["engine"], self._values["model"], device=self._values["device"])
        self.get_logger().info(f"engine ready: {engine.model_id}")
        return engine

    def _subscribe_cameras(self, cameras) -> list:
        qos = qos_profile_sensor_data
        if self._values["camera_reliability"] == "reliable":
            qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
        compressed = self._values["image_transport"] == "compressed"
        suffix = "/compressed" if compressed else ""
        return [
            self.create_subscription(
                CompressedImage if compressed else Image,
                f"{camera}/image_raw{suffix}",
                partial(self._on_frame, camera, compressed),
                qos,
                callback_group=MutuallyExclusiveCallbackGroup(),
            )
            for camera in cameras
        ]

    # ---- callbacks: convert, hand off, return ---------------------------------------------------

    def _on_frame(self, camera: str, compressed: bool, msg) -> None:
        max_side = self._values["ingest_max_side"]
        try:
            if compressed:
                rgb = compressed_to_rgb8(msg, max_side=max_side)
            else:
                rgb = image_to_rgb8(msg, max_side=max_side)
        except ImageDecodeError as exc:
            self._count_decode_error(camera, exc.cause, str(exc))
            return
        accepted = self.buffer.add(camera, self.stamps.to_seconds(msg.header.stamp), rgb)
        self._frame_ids[camera] = msg.header.frame_id
        # capture -> in the buffer, decode and resize included
        captured = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        self._latency[camera].append(self.get_clock().now().nanoseconds * 1e-9 - captured)
        if not accepted:
            self._log_once(
                f"{camera}:order", f"camera {camera}: frames with non-increasing stamps are dropped"
            )

    def _count_decode_error(self, camera: str, cause: str, message: str) -> None:
        counts = self._decode_errors.setdefault(camera, {})
        counts[cause] = counts.get(cause, 0) + 1
        self._log_once(f"{camera}:{cause}", f"camera {camera}: dropping frames ({cause}): {message}")

    def _log_once(self, key: str, message: str) -> None:
        if key not in self._logged_causes:
            self._logged_causes.add(key)
            self.get_logger().warning(message + " (logged once; counts on /diagnostics)")

    def _publish_periodic(self, kind: str, outcome: Outcome) -> None:
        frame_id = self._frame_ids.get(outcome.cameras[0], "") if outcome.cameras else ""
        if kind == "next_subtask":
            self._subtask_pub.publish(messages.subtask_prediction(outcome, self.stamps, frame_id))
        else:
            self._failure_pub.publish(messages.failure_detection(outcome, self.stamps, frame_id))

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
        name = self.get_fully_qualified_name()
        now = time.monotonic()
        settings = self.worker.settings
        stats = self.buffer.all_stats()
        statuses = [
            diagnostics.camera_status(
                name,
                camera,
                stats.get(camera),
                dict(self._decode_errors.get(camera, {})),
                self.buffer.is_stale(camera, now, settings.stale_timeout_s),
                list(self._latency[camera]),
            )
            for camera in settings.cameras
        ]
        statuses.append(
            diagnostics.engine_status(
                name,
                self.worker.stats,
                self.worker.queue_depth,
                self.worker.model_id,
                self.worker.engine_error,
            )
        )
        statuses.append(diagnostics.task_status(name, self.tasks, self.worker.settings))
        self._diag_pub.publish(diagnostics.diagnostic_array(self.get_clock().now().to_msg(), statuses))

    def _on_set_parameters(self, params) -> SetParametersResult:
        if not hasattr(self, "worker"):  # not configured yet: checked on configure
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
        rate_changed = values["rate_hz"] != self._values["rate_hz"]
        self._values = values
        self.worker.settings = self.tasks.apply(settings_from(values))  # a planner's task wins
        if rate_changed and self._active:
            self._timer.timer_period_ns = int(1e9 / values["rate_hz"])
            self._timer.reset()
        return SetParametersResult(successful=True)

    # ---- questions from other nodes -------------------------------------------------------------

    def _request(self, goal, on_token=None) -> tuple[Request, Future]:
        future = Future(executor=self.executor)
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

    async def _on_reason(self, request, response):
        job, future = self._request(request)
        if not self.worker.submit(job):
            outcome = Outcome(
                OutcomeStatus.BUSY, f"{self.worker.queue_depth} requests queued; try again later"
            )
        else:
            outcome = await future
        messages.fill_reason_result(response, outcome, self.stamps)
        return response

    async def _execute_goal(self, goal_handle):
        started = time.monotonic()
        text = []
        lock = threading.Lock()

        def on_token(delta: str) -> None:
            if goal_handle.is_cancel_requested:
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
        if not self.worker.submit(job):
            outcome = Outcome(
                OutcomeStatus.BUSY, f"{self.worker.queue_depth} requests queued; try again later"
            )
        else:
            outcome = await future
        result = ReasonAction.Result()
        messages.fill_reason_result(result, outcome, self.stamps)
        if goal_handle.is_cancel_requested:
            goal_handle.canceled()
        else:
            goal_handle.succeed()
        return result


class Reasoner(ReasonerLogic, Node):
    """The reasoner, configured and active from the start (see reasoner_lifecycle for the
    managed variant)."""

    def __init__(self, **kwargs):
        super().__init__("reasoner", **kwargs)
        self._declare_parameters()
        self._configure()
        self._activate()

    def destroy_node(self) -> None:
        if hasattr(self, "worker"):  # rclpy also destroys a node whose parameters were refused
            self.worker.stop()
        super().destroy_node()


def main(args=None) -> int:
    # One executor thread: callbacks only convert and hand off, and the service/action handlers
    # are coroutines, so nothing blocks it. rclpy's multi-threaded executor spent most of a core
    # rebuilding wait sets and delivered fewer frames (bench/ingest.py).
    return run_node(Reasoner, "reasoner", args=args)


if __name__ == "__main__":
    sys.exit(main())

"""How the reasoner takes its camera frames: only as many as its clips need.

A clip samples `fps` frames per second (4 for Cosmos-Reason); a camera sends 30 or more. Taking
every frame into Python costs a core for two 720p cameras, nearly all of it for frames that are
thrown away. `ingest_mode` chooses how the others are left out (`ingest_fps` per camera, by
default 4 x fps):

- `latest`: a keep-last-1 subscription on a hidden helper node that no executor spins; a timer
  at `ingest_fps` takes the newest frame, and DDS overwrites the rest without Python ever seeing
  them (the least CPU). Each clip also takes the newest frame just before it is cut, so its
  newest frame is as fresh as with every frame taken. Which frames a clip gets depends on
  wall-clock timing.
- `stamp`: every frame reaches a callback as raw bytes, and only those at least 0.9/ingest_fps
  after the camera's last taken one are decoded, chosen by header stamp alone: the same stamps
  give the same frames, so a replayed bag gives the same clips.
- `all`: every frame is decoded (the behaviour before ingest_mode).
- `auto` (default): `stamp` on sim time (use_sim_time), where replays should repeat, else
  `latest`.

Frames left out are counted as `skipped` (from the publishers' sequence numbers in `latest`), not
as drops; duplicates, reordering and clock jumps still reach the frame buffer's accounting.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.exceptions import InvalidHandle
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image

from cosmos_ros.core.codec import ImageDecodeError, image_stamp, time_nanoseconds

MODES = ("auto", "latest", "stamp", "all")
# stamp mode: a frame is due once 0.9 of an ingest period has passed since the last one taken, so
# a frame stamped a little early (capture jitter) is not skipped for it
GAP_SHARE = 0.9

OnFrame = Callable[[str, bytes], bool]  # camera, the serialized message -> whether it decoded


def resolve_mode(mode: str, sim_time: bool) -> str:
    if mode != "auto":
        return mode
    return "stamp" if sim_time else "latest"


class StampGate:
    """`stamp` mode's rule: a frame less than `gap_ns` after the camera's last taken one is not
    due. A stamp equal to or older than the last taken one is always due, so the frame buffer
    still counts duplicates, reordering and clock jumps. Only a frame that decoded counts as
    taken (`taken`): a malformed one does not leave a hole of one gap in the clips."""

    def __init__(self) -> None:
        self.last: dict[str, int] = {}  # camera -> stamp of the last taken frame, ns

    def due(self, camera: str, stamp, gap_ns: int) -> bool:
        last = self.last.get(camera)
        return last is None or not 0 < time_nanoseconds(stamp) - last < gap_ns

    def taken(self, camera: str, stamp) -> None:
        self.last[camera] = time_nanoseconds(stamp)


class CameraIngest:
    """The camera subscriptions of one active reasoner, in one of the modes above."""

    def __init__(
        self,
        node,
        cameras: Sequence[str],
        *,
        mode: str,
        compressed: bool,
        reliable: bool,
        rate_hz: Callable[[], float],
        on_frame: OnFrame,
        on_bad_stamp: Callable[[str, ImageDecodeError], None],
    ):
        self.node, self.mode, self._rate_hz = node, mode, rate_hz
        self._on_frame, self._on_bad_stamp = on_frame, on_bad_stamp
        self.skipped = {camera: 0 for camera in cameras}
        self._msg_type = CompressedImage if compressed else Image
        topics = {camera: f"{camera}/image_raw{'/compressed' if compressed else ''}" for camera in cameras}
        self._lock = threading.Lock()  # the timer (executor) and a clip about to be cut (worker) take
        self._gate = StampGate()
        self._sequence: dict[str, tuple] = {}  # camera -> (publisher gid, its last sequence number)
        self._hidden = None
        self._timer = None
        keep_frames_on_the_heap()
        if mode == "latest":
            # Not spun by any executor: nothing takes from these subscriptions but take_latest.
            self._hidden = _helper_node(node)
            latest = QoSProfile(
                depth=1,
                history=HistoryPolicy.KEEP_LAST,
                reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
            )
            self.subscriptions = {
                camera: self._hidden.create_subscription(self._msg_type, topic, _unused, latest, raw=True)
                for camera, topic in topics.items()
            }
            self._timer = node.create_timer(1.0 / rate_hz(), self.take_latest)
        else:
            qos = qos_profile_sensor_data
            if reliable:
                qos = QoSProfile(
                    depth=5, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST
                )
            self.subscriptions = {
                camera: node.create_subscription(
                    self._msg_type,
                    topic,
                    lambda data, camera=camera: self._on_message(camera, data),
                    qos,
                    callback_group=MutuallyExclusiveCallbackGroup(),
                    raw=True,
                )
                for camera, topic in topics.items()
            }

    def set_rate(self) -> None:
        """Follows a changed fps / ingest_fps (latest mode's timer period)."""
        if self._timer is not None:
            self._timer.timer_period_ns = round(1e9 / self._rate_hz())
            self._timer.reset()

    def take_latest(self) -> None:
        """latest mode: takes the newest frame of each camera, if a new one has come."""
        if self._hidden is None:
            return
        with self._lock:
            for camera, subscription in self.subscriptions.items():
                try:
                    with subscription.handle:
                        taken = subscription.handle.take_message(self._msg_type, True)
                except InvalidHandle:  # destroyed meanwhile (deactivating): nothing to take
                    return
                if taken is None:
                    continue
                data, info = taken
                self._count_overwritten(camera, info)
                self._on_frame(camera, data)

    def _count_overwritten(self, camera: str, info: dict) -> None:
        sequence, gid = info.get("publication_sequence_number"), info.get("publisher_gid")
        if not isinstance(sequence, int) or sequence <= 0:
            return  # this middleware does not number samples: skipped frames go uncounted
        key = (gid or {}).get("data")
        previous = self._sequence.get(camera)
        if previous is not None and previous[0] == key and sequence > previous[1]:
            self.skipped[camera] += sequence - previous[1] - 1
        self._sequence[camera] = (key, sequence)

    def _on_message(self, camera: str, data: bytes) -> None:
        if self.mode == "stamp":
            try:
                stamp = image_stamp(data)
            except ImageDecodeError as exc:
                self._on_bad_stamp(camera, exc)
                return
            if not self._gate.due(camera, stamp, int(GAP_SHARE * 1e9 / self._rate_hz())):
                self.skipped[camera] += 1
                return
            if self._on_frame(camera, data):
                self._gate.taken(camera, stamp)
            return
        self._on_frame(camera, data)

    def destroy(self) -> None:
        with self._lock:
            if self._timer is not None:
                self.node.destroy_timer(self._timer)
            owner = self._hidden or self.node
            for subscription in self.subscriptions.values():
                owner.destroy_subscription(subscription)
            if self._hidden is not None:
                self._hidden.destroy_node()
                self._hidden = None


# glibc's mallopt parameters; see mallopt(3)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
HEAP_TRIM_BYTES = 256 * 2**20
HEAP_MMAP_BYTES = 32 * 2**20  # glibc's largest mmap threshold on 64-bit


@functools.cache  # a process-wide setting: once per process, however many ingests it runs
def keep_frames_on_the_heap() -> bool:
    """Stops glibc from giving a frame's memory back to the system after each frame. A 720p
    frame (2.7 MB) is above glibc's mmap threshold, and freeing it trims the heap top, so every
    take mapped and faulted in 2.7 MB anew: 5 ms of CPU per take in the reasoner against 1.6 ms
    in a bare process; two 720p cameras taken at 16 fps cost 34 % of a core, 20 % with this
    (bench/ingest.py, AMD EPYC, 2 cores). The price: up to HEAP_TRIM_BYTES of freed memory stays
    with the process. False (and nothing changed) where the C library is not glibc."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, HEAP_MMAP_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, HEAP_TRIM_BYTES)
    )


def _helper_node(node):
    """A hidden node (a leading underscore keeps it out of `ros2 node list`) in the reasoner's
    namespace and context, so its topics resolve and remap as the reasoner's own."""
    from rclpy.node import Node

    return Node(
        f"_{node.get_name()}_ingest",
        namespace=node.get_namespace(),
        context=node.context,
        start_parameter_services=False,
        enable_rosout=False,
    )


def _unused(_) -> None:
    """The helper node's subscriptions are never spun; rclpy still wants a callback."""

"""sim_camera: plays simulated scenarios as a camera, and announces their ground truth.

Publishes `image_raw` (sensor_msgs/Image) at the scenario's fps, clip after clip (clip i of the
scenario config is always the same clip). Two ways to play:

- `mode:=questions` (quizzes): when the video of one of the clip's questions has been shown in
  full — the whole clip, or a prefix for next-subtask questions — the camera pauses for `gap_s`
  and publishes the question on `~/ground_truth` (std_msgs/String holding JSON; see
  cosmos_ros.sim.evaluation for the fields), so whoever asks the reasoner right then asks about
  exactly that video.
- `mode:=episodes` (a live robot): clips play back to back at a steady rate, `gap_s` apart (plus a
  seeded `U(0, gap_jitter_s)`: episodes of one length would otherwise meet a periodic reasoner at
  the same moments every time), and
  before each episode's first frame the camera publishes its `TaskContext` on `task` (the
  planner's role in simulation: task id = clip id, the task, the plan's steps), stamped with that
  frame's stamp.

Either way, at the end of each clip it publishes a `clip` record with per-frame labels (the
subtask running), the stamp of every frame and, for a failed episode, how and when it failed.
Clips are rendered ahead on a worker thread.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import queue
import sys
import threading
import time

import numpy as np
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import String

from cosmos_ros.msg import TaskContext
from cosmos_ros.nodes.images import rgb_to_image
from cosmos_ros.sim import evaluation, scenarios
from cosmos_ros.sim.config import clip_id
from cosmos_ros.nodes import params
from cosmos_ros.nodes.runner import run_node


PARAMETERS = {
    "scenario": ("object_permanence", "task name or scenario YAML path", True),
    "seed": (-1, "base seed; -1 = the scenario config's", True),
    "start_index": (0, "first clip index", True),
    "num_clips": (0, "clips to play; 0 = endless", True),
    "width": (0, "frame width; 0 = the config's", True),
    "height": (0, "frame height; 0 = the config's", True),
    "fps": (0.0, "frames per second; 0 = the config's", True),
    "mode": ("questions", "questions (pause and announce) | episodes (live)", True),
    "gap_s": (1.0, "pause after each question's video (questions) or episode (episodes), s", True),
    "gap_jitter_s": (
        0.0,
        "episodes: add a seeded U(0, this) s to each pause, so periodic answers fall at every moment "
        "of an episode instead of locking to one phase",
        True,
    ),
    "frame_id": ("sim_camera", "header.frame_id", True),
    "encoding": ("rgb8", "rgb8 or bgr8", True),
}
RANGES = {
    "seed": (-1, 2**31 - 1),
    "start_index": (0, 2**31 - 1),
    "num_clips": (0, 2**31 - 1),
    "width": (0, 4096),
    "height": (0, 4096),
    "fps": (0.0, 240.0),
    "gap_s": (0.0, 3600.0),
    "gap_jitter_s": (0.0, 3600.0),
}
CHOICES = {"mode": ("questions", "episodes"), "encoding": ("rgb8", "bgr8")}


class SimCamera(Node):
    def __init__(self, **kwargs):
        super().__init__("sim_camera", **kwargs)
        # set first: rclpy destroys a node whose construction failed, and destroy_node needs these
        self._stop = threading.Event()
        self._renderer: threading.Thread | None = None
        values = params.declare(self, PARAMETERS, ranges=RANGES, choices=CHOICES)
        render = {"width": values.width or None, "height": values.height or None, "fps": values.fps or None}
        self.config = scenarios.load_config(values.scenario, **render)  # ValueError names what is wrong
        if values.seed >= 0:
            self.config = dataclasses.replace(self.config, seed=values.seed)
        self.gap_s, self.frame_id, self.encoding = values.gap_s, values.frame_id, values.encoding
        self.gap_jitter_s = values.gap_jitter_s
        self._gaps = np.random.default_rng([self.config.seed, 0x6A9])  # the pauses repeat with the seed
        self.episodes = values.mode == "episodes"
        first, count = values.start_index, values.num_clips
        self._indices = iter(range(first, first + count)) if count else itertools.count(first)

        qos = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
        self._image_pub = self.create_publisher(Image, "image_raw", qos)
        truth_qos = QoSProfile(
            depth=50, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
        )
        self._truth_pub = self.create_publisher(String, "~/ground_truth", truth_qos)
        latched = QoSProfile(
            depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
        )
        self._task_pub = self.create_publisher(TaskContext, "task", latched)
        self._ready: queue.Queue = queue.Queue(maxsize=1)
        self._renderer = threading.Thread(target=self._render_ahead, daemon=True)
        self._renderer.start()
        self._clip = None  # (clip id, sample, question stops)
        self._frame = 0
        self._stamps: list[tuple[int, int]] = []
        self._resume_at = 0.0
        self.clips_played = 0
        self.create_timer(1.0 / self.config.render.fps, self._tick)
        r = self.config.render
        self.get_logger().info(
            f"playing {self.config.task} {'episodes' if self.episodes else 'clips'} from index {first} "
            f"({count or 'endless'}) at {r.fps:g} fps, {r.width}x{r.height}, seed {self.config.seed}"
        )

    def _render_ahead(self) -> None:
        """Worker thread: generate the next clip while the current one plays."""
        for index in self._indices:
            if self._stop.is_set():
                return
            try:
                sample = scenarios.generate(self.config, index)
            except Exception as exc:  # noqa: BLE001 - reported and skipped, playback goes on
                self.get_logger().error(f"clip {index} could not be generated: {exc}")
                continue
            item = (clip_id(self.config.task, index), sample, evaluation.question_stops(sample))
            while not self._stop.is_set():
                try:
                    self._ready.put(item, timeout=0.2)
                    break
                except queue.Full:
                    continue
        self._ready.put(None)

    def _tick(self) -> None:
        if time.monotonic() < self._resume_at:
            return
        if self._clip is None:
            try:
                self._clip = self._ready.get_nowait()
            except queue.Empty:
                return  # still rendering
            if self._clip is None:
                self.get_logger().info(f"all {self.clips_played} clips played", once=True)
                self._clip = False
                return
            self._frame, self._stamps = 0, []
        if self._clip is False:
            return
        cid, sample, stops = self._clip
        stamp = self.get_clock().now().to_msg()
        if self.episodes and self._frame == 0 and sample.labels.get("task_text"):
            self._task_pub.publish(self._task_context(cid, sample, stamp))
        self._publish_frame(sample.frames[self._frame], stamp)
        if not self.episodes:
            for index in stops.get(self._frame, []):
                self._announce(evaluation.question_message(sample, cid, index, self._stamps))
            if stops.get(self._frame):
                self._resume_at = time.monotonic() + self.gap_s
        self._frame += 1
        if self._frame == len(sample.frames):
            self._announce(evaluation.clip_message(sample, cid, self._stamps))
            self.clips_played += 1
            self._clip = None
            if self.episodes:
                self._resume_at = time.monotonic() + self.gap_s + self._gaps.uniform(0.0, self.gap_jitter_s)

    @staticmethod
    def _task_context(cid: str, sample, stamp) -> TaskContext:
        msg = TaskContext(task_id=cid, task=sample.labels["task_text"])
        msg.candidate_subtasks = list(sample.labels.get("subtasks", []))
        msg.header.stamp = stamp
        return msg

    def _publish_frame(self, rgb: np.ndarray, stamp) -> None:
        msg = rgb_to_image(rgb, self.encoding, stamp, self.frame_id)
        self._image_pub.publish(msg)
        self._stamps.append((msg.header.stamp.sec, msg.header.stamp.nanosec))

    def _announce(self, record: dict) -> None:
        self._truth_pub.publish(String(data=json.dumps(record)))

    def destroy_node(self) -> None:
        self._stop.set()
        # Let the renderer leave MuJoCo / EGL before the interpreter tears down: a daemon thread
        # still inside the GL context at exit can hang the process past SIGINT and SIGTERM.
        if self._renderer is not None:
            self._renderer.join(timeout=5.0)
        super().destroy_node()


def main(args=None) -> int:
    return run_node(SimCamera, "sim_camera", args=args)


if __name__ == "__main__":
    sys.exit(main())

"""video_camera: a stand-in camera publishing sensor_msgs/Image on `image_raw`.

Sources: `pattern` (a synthetic scene: a ball rolling across a gradient, with a frame counter),
a video file (anything OpenCV reads), or a folder of images (sorted by name). Frames are resized
to width x height and published at `fps` with header stamps from the node clock.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from cosmos_ros.nodes.images import ENCODINGS, rgb_to_image
from cosmos_ros.nodes import params
from cosmos_ros.nodes.runner import run_node

PARAMETERS = {
    "source": ("pattern", "'pattern', a video file or an image folder", True),
    "fps": (15.0, "frames per second", True),
    "width": (320, "published width in pixels", True),
    "height": (240, "published height in pixels", True),
    "encoding": ("bgr8", "bgr8, rgb8 or mono8", True),
    "frame_id": ("camera", "header.frame_id", True),
    "loop": (True, "restart a file source at its end", True),
    "reliable": (True, "reliable QoS (matches every subscriber)", True),
}
RANGES = {"fps": (0.01, 240.0), "width": (8, 8192), "height": (8, 8192)}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def pattern_frames(width: int, height: int, fps: float) -> Iterator[np.ndarray]:
    """An endless synthetic scene (RGB): a red ball rolls left to right and bounces back,
    over a slowly shifting gradient, with the frame number written in the corner."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    radius = max(3, min(width, height) // 8)
    period = max(2, int(round(4 * fps)))  # one crossing every 4 s
    index = 0
    while True:
        phase = (index % (2 * period)) / period
        position = phase if phase <= 1 else 2 - phase
        cx = radius + position * (width - 2 * radius)
        cy = height * 0.6
        frame = np.empty((height, width, 3), np.uint8)
        frame[..., 0] = (40 + 60 * xs / max(width - 1, 1)).astype(np.uint8)
        frame[..., 1] = (80 + 40 * np.sin(ys / max(height, 1) * np.pi + index / fps)).astype(np.uint8)
        frame[..., 2] = 120
        ball = (xs - cx) ** 2 + (ys - cy) ** 2 <= radius**2
        frame[ball] = (220, 30, 30)
        cv2.putText(frame, str(index), (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
        yield frame
        index += 1


def file_frames(source: Path, loop: bool) -> Iterator[np.ndarray]:
    """RGB frames from a video file or an image folder; unreadable images are skipped."""
    while True:
        produced = 0
        if source.is_dir():
            for path in sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
                bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if bgr is not None:
                    produced += 1
                    yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        else:
            capture = cv2.VideoCapture(str(source))
            try:
                while True:
                    ok, bgr = capture.read()
                    if not ok:
                        break
                    produced += 1
                    yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            finally:
                capture.release()
        if produced == 0:
            raise ValueError(f"{source} holds no readable frames")
        if not loop:
            return


class VideoCamera(Node):
    def __init__(self, **kwargs):
        super().__init__("video_camera", **kwargs)
        values = params.declare(self, PARAMETERS, ranges=RANGES, choices={"encoding": ENCODINGS})
        self.fps, self.width, self.height = values.fps, values.width, values.height
        self.encoding, self.frame_id = values.encoding, values.frame_id
        source = values.source
        if source == "pattern":
            self._frames = pattern_frames(self.width, self.height, self.fps)
        else:
            path = Path(source).expanduser()
            if not path.exists():
                raise ValueError(
                    f"source {source!r} does not exist (expected 'pattern', a video or a folder)"
                )
            self._frames = file_frames(path, values.loop)
        reliability = ReliabilityPolicy.RELIABLE if values.reliable else ReliabilityPolicy.BEST_EFFORT
        qos = QoSProfile(depth=2, reliability=reliability, history=HistoryPolicy.KEEP_LAST)
        self._pub = self.create_publisher(Image, "image_raw", qos)
        self.published = 0
        self.create_timer(1.0 / self.fps, self._publish_next)
        self.get_logger().info(
            f"publishing {source} at {self.fps:g} fps, {self.width}x{self.height} {self.encoding}"
        )

    def _publish_next(self) -> None:
        try:
            rgb = next(self._frames)
        except StopIteration:
            self.get_logger().info(f"source ended after {self.published} frames", once=True)
            return
        if rgb.shape[:2] != (self.height, self.width):
            rgb = cv2.resize(rgb, (self.width, self.height), interpolation=cv2.INTER_AREA)
        msg = rgb_to_image(rgb, self.encoding, self.get_clock().now().to_msg(), self.frame_id)
        self._pub.publish(msg)
        self.published += 1


def main(args=None) -> int:
    return run_node(VideoCamera, "video_camera", args=args)


if __name__ == "__main__":
    sys.exit(main())

"""RGB frames → sensor_msgs/Image, for the nodes that publish camera frames."""

from __future__ import annotations

import array

import cv2
import numpy as np
from sensor_msgs.msg import Image

from cosmos_ros.core.codec import array_to_image_fields

ENCODINGS = ("bgr8", "rgb8", "mono8")


def rgb_to_image(rgb: np.ndarray, encoding: str, stamp, frame_id: str) -> Image:
    """(H, W, 3) uint8 RGB → Image in `encoding` (bgr8, rgb8 or mono8)."""
    if encoding == "bgr8":
        pixels = rgb[..., ::-1]
    elif encoding == "mono8":
        pixels = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    elif encoding == "rgb8":
        pixels = rgb
    else:
        raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
    fields = array_to_image_fields(np.ascontiguousarray(pixels), encoding)
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = fields["height"], fields["width"]
    msg.encoding, msg.is_bigendian, msg.step = fields["encoding"], fields["is_bigendian"], fields["step"]
    data = array.array("B")
    data.frombytes(fields["data"])  # one copy; assigning a numpy array would iterate per byte
    msg.data = data
    return msg

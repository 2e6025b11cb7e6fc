"""sensor_msgs/Image and CompressedImage <-> numpy, without cv_bridge.

PyPI's cv-bridge is a ROS 1 copy that breaks on numpy 2, so this package reads the raw
message fields itself, with the encoding names and semantics cv_bridge uses. Two APIs:

- the model path (`model`): `image_to_rgb8` / `compressed_to_rgb8` turn any camera message
  into the (H, W, 3) uint8 RGB frame the model wants, `rgb8_to_compressed_fields` the reverse;
- cv_bridge's API (`bridge`, `compressed`): `imgmsg_to_cv2(msg, desired_encoding)`,
  `cv2_to_imgmsg(array, encoding, header)`, `compressed_imgmsg_to_cv2(msg, desired_encoding)`,
  `cv2_to_compressed_imgmsg(array, dst_format)` and `cvt_color`, with cv_bridge's conversion
  rules and rounding, plus image_transport's compressedDepth (png) format;

under both, `image_to_array` / `array_to_image_fields` (`raw`): the message's own layout; and
`image_from_cdr` / `compressed_from_cdr` / `image_stamp` (`cdr`): the messages read from the
bytes a raw subscription delivers, pixels viewed in place.

Messages are duck-typed: an Image is anything with `height, width, encoding,
is_bigendian, step, data`; a CompressedImage anything with `format, data`.
`data` may be bytes, bytearray, memoryview or array.array('B') (what rclpy gives).
Outgoing messages are dicts of fields, or a message class the caller passes (msg_type).

Every malformed input, and every conversion cv_bridge refuses, raises `ImageDecodeError`
with a stable `cause` string so a node can count failures per cause (see `DECODE_CAUSES`).
OpenCV is imported lazily: importing `cosmos_ros.core` stays cheap and works without it.
"""

from cosmos_ros.core.codec.cdr import compressed_from_cdr, image_from_cdr, image_stamp
from cosmos_ros.core.codec.bridge import PASSTHROUGH, cv2_to_imgmsg, cvt_color, imgmsg_to_cv2
from cosmos_ros.core.codec.compressed import compressed_imgmsg_to_cv2, cv2_to_compressed_imgmsg
from cosmos_ros.core.codec.encodings import DECODE_CAUSES, ImageDecodeError, encoding_info
from cosmos_ros.core.codec.model import (
    FRAME_MAX_ASPECT,
    FRAME_MIN_SIDE,
    compressed_to_rgb8,
    image_to_rgb8,
    rgb8_to_compressed_fields,
)
from cosmos_ros.core.codec.raw import (
    DEFAULT_MAX_PIXELS,
    array_to_image_fields,
    check_proportions,
    image_to_array,
    stamp_seconds,
    time_nanoseconds,
    time_seconds,
)

__all__ = [
    "DECODE_CAUSES",
    "DEFAULT_MAX_PIXELS",
    "FRAME_MAX_ASPECT",
    "FRAME_MIN_SIDE",
    "ImageDecodeError",
    "PASSTHROUGH",
    "array_to_image_fields",
    "check_proportions",
    "compressed_from_cdr",
    "compressed_imgmsg_to_cv2",
    "compressed_to_rgb8",
    "cv2_to_compressed_imgmsg",
    "cv2_to_imgmsg",
    "cvt_color",
    "encoding_info",
    "image_from_cdr",
    "image_stamp",
    "image_to_array",
    "image_to_rgb8",
    "imgmsg_to_cv2",
    "rgb8_to_compressed_fields",
    "stamp_seconds",
    "time_nanoseconds",
    "time_seconds",
]

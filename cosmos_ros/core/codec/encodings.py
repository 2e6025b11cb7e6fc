"""ROS image encodings: what each name holds, and the one error every codec function raises.

The names and their meaning are sensor_msgs/image_encodings.hpp's; the colour families and the
generic `<depth>C<n>` types are cv_bridge's (getCvType, getEncoding in cv_bridge.cpp).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

DECODE_CAUSES = (
    "unknown_encoding",  # encoding string we do not know
    "empty",  # zero width/height, or no compressed bytes
    "too_large",  # more than max_pixels, rejected before touching the data
    "bad_step",  # step smaller than one row of pixels
    "size_mismatch",  # len(data) != step * height
    "bad_shape",  # dimensions the encoding cannot hold (odd-width yuv422, a 1-D array)
    "too_small",  # a side below the caller's min_side
    "bad_aspect",  # longer side / shorter side above the caller's max_aspect
    "bad_data",  # data is not a byte buffer
    "unsupported_encoding",  # a known encoding with no RGB meaning (data of 2 or over 4 channels)
    "unsupported_format",  # compressed format we do not decode or encode (compressedDepth rvl)
    "corrupt_compressed",  # compressed bytes that do not decode
    "unsupported_conversion",  # a desired encoding cv_bridge cannot convert to (8UC3 -> mono8)
    "unsupported_dtype",  # an array dtype no encoding has (int64, float16, bool)
    "incompatible_encoding",  # an array whose dtype or channels do not fit the encoding it is given
    "bad_cdr",  # serialized message bytes that are cut short or not CDR
)


class ImageDecodeError(ValueError):
    """A message or array that cannot become an image; `cause` is one of DECODE_CAUSES.

    Raised wherever cv_bridge raises CvBridgeError, and for every malformed message.
    """

    def __init__(self, cause: str, message: str) -> None:
        super().__init__(message)
        self.cause = cause


@dataclass(frozen=True)
class Encoding:
    """What a ROS encoding holds."""

    dtype: np.dtype  # one channel, native byte order
    channels: int
    family: str  # cv_bridge's colour family (GRAY, RGB, ..., UYVY, BAYER_RGGB); "" for generic data

    @property
    def bit_depth(self) -> int:
        return self.dtype.itemsize * 8


_U8, _U16 = np.dtype(np.uint8), np.dtype(np.uint16)

_NAMED: dict[str, Encoding] = {
    "mono8": Encoding(_U8, 1, "GRAY"),
    "mono16": Encoding(_U16, 1, "GRAY"),
    "rgb8": Encoding(_U8, 3, "RGB"),
    "bgr8": Encoding(_U8, 3, "BGR"),
    "rgba8": Encoding(_U8, 4, "RGBA"),
    "bgra8": Encoding(_U8, 4, "BGRA"),
    "rgb16": Encoding(_U16, 3, "RGB"),
    "bgr16": Encoding(_U16, 3, "BGR"),
    "rgba16": Encoding(_U16, 4, "RGBA"),
    "bgra16": Encoding(_U16, 4, "BGRA"),
    # ROS's "yuv422" is UYVY byte order and "yuv422_yuy2" is YUYV; newer image_encodings.hpp
    # names them "uyvy" and "yuyv" and keeps the old names as deprecated aliases.
    "yuv422": Encoding(_U8, 2, "UYVY"),
    "uyvy": Encoding(_U8, 2, "UYVY"),
    "yuv422_yuy2": Encoding(_U8, 2, "YUYV"),
    "yuyv": Encoding(_U8, 2, "YUYV"),
}

# OpenCV names a Bayer pattern by the 2x2 block starting at pixel (1, 1), ROS by the
# one at (0, 0): ROS rggb is OpenCV BG, and so on (the mapping cv_bridge uses).
BAYER_TO_OPENCV = {"rggb": "BG", "bggr": "RG", "gbrg": "GR", "grbg": "GB"}
for _pattern in BAYER_TO_OPENCV:
    _NAMED[f"bayer_{_pattern}8"] = Encoding(_U8, 1, f"BAYER_{_pattern.upper()}")
    _NAMED[f"bayer_{_pattern}16"] = Encoding(_U16, 1, f"BAYER_{_pattern.upper()}")

# cv_bridge's generic "<depth>C<n>" encodings (raw data with no colour meaning); a bare "<depth>"
# is one channel. OpenCV 4 allows at most 512 channels (CV_CN_MAX).
MAX_CHANNELS = 512
_GENERIC = re.compile(r"^(8U|8S|16U|16S|32S|32F|64F)(?:C([0-9]+))?$")
GENERIC_DTYPES = {
    "8U": np.dtype(np.uint8), "8S": np.dtype(np.int8), "16U": np.dtype(np.uint16),
    "16S": np.dtype(np.int16), "32S": np.dtype(np.int32), "32F": np.dtype(np.float32),
    "64F": np.dtype(np.float64),
}  # fmt: skip
DTYPE_TO_GENERIC = {dtype: depth for depth, dtype in GENERIC_DTYPES.items()}

_cv2_module: Any = None


def cv2() -> Any:
    """OpenCV, imported on first use so `import cosmos_ros.core` does not pay for it."""
    global _cv2_module
    if _cv2_module is None:
        import cv2 as module

        _cv2_module = module
    return _cv2_module


def cv_ready(array: np.ndarray) -> np.ndarray:
    """`array`, or a packed copy when its rows are padded by a step OpenCV cannot express.

    OpenCV needs every stride to be a multiple of the channel size; given a uint16 view whose
    rows are padded by an odd number of bytes, its Python binding silently misreads the rows.
    """
    if all(stride % array.itemsize == 0 for stride in array.strides):
        return array
    return np.ascontiguousarray(array)


def lookup(encoding: str) -> Encoding:
    """The Encoding of a ROS encoding name; ImageDecodeError("unknown_encoding") if there is none."""
    spec = _NAMED.get(encoding) if isinstance(encoding, str) else None
    if spec is not None:
        return spec
    match = _GENERIC.match(encoding) if isinstance(encoding, str) else None
    channels = int(match.group(2) or 1) if match else 0
    if not 1 <= channels <= MAX_CHANNELS:
        known = ", ".join(sorted(_NAMED)) + f", <8U|8S|16U|16S|32S|32F|64F>[C<1-{MAX_CHANNELS}>]"
        raise ImageDecodeError(
            "unknown_encoding", f"unknown image encoding {encoding!r}; expected one of {known}"
        )
    return Encoding(GENERIC_DTYPES[match.group(1)], channels, "")


def encoding_info(encoding: str) -> tuple[np.dtype, int]:
    """(dtype of one channel, channels per pixel) for a ROS encoding name."""
    spec = lookup(encoding)
    return spec.dtype, spec.channels


def generic_encoding(dtype: np.dtype, channels: int) -> str:
    """cv_bridge's name for an array type, "8UC3" for (H, W, 3) uint8; what passthrough encodes as."""
    depth = DTYPE_TO_GENERIC.get(np.dtype(dtype).newbyteorder("="))
    if depth is None:
        expected = ", ".join(str(d) for d in GENERIC_DTYPES.values())
        raise ImageDecodeError(
            "unsupported_dtype", f"no image encoding holds {np.dtype(dtype)}; expected {expected}"
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise ImageDecodeError("bad_shape", f"an image has 1 to {MAX_CHANNELS} channels, not {channels}")
    return f"{depth}C{channels}"


def byte_view(data: Any) -> memoryview:
    """A flat byte view of msg.data without copying (rclpy gives array.array('B'))."""
    try:
        view = memoryview(data)
    except TypeError:
        try:
            view = memoryview(bytes(data))  # a list of ints from hand-built messages
        except (TypeError, ValueError) as exc:
            raise ImageDecodeError(
                "bad_data", f"image data must be a byte buffer, got {type(data).__name__}"
            ) from exc
    return view.cast("B") if view.format != "B" or view.ndim != 1 else view

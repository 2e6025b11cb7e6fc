"""sensor_msgs/Image and CompressedImage <-> numpy, without cv_bridge.

PyPI's cv-bridge is a ROS 1 copy that breaks on numpy 2, and the model only ever
wants one thing: an (H, W, 3) uint8 RGB frame. So this module reads the raw
message fields itself, with the same encoding names and semantics cv_bridge uses.

Messages are duck-typed: an Image is anything with `height, width, encoding,
is_bigendian, step, data`; a CompressedImage anything with `format, data`.
`data` may be bytes, bytearray, memoryview or array.array('B') (what rclpy gives).

Every malformed input raises `ImageDecodeError` with a stable `cause` string so a
node can count failures per cause (see `DECODE_CAUSES`). OpenCV is imported
lazily: importing `cosmos_ros.core` stays cheap and works without it.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_MAX_PIXELS = 8192 * 8192
# Shapes a vision model can use, for callers that ingest frames for one: the Qwen2.5-VL resize
# refuses aspect ratios of 200 and more, and cameras tiled side by side multiply the ratio.
FRAME_MIN_SIDE = 8
FRAME_MAX_ASPECT = 20.0

DECODE_CAUSES = (
    "unknown_encoding",  # encoding string we do not know
    "empty",  # zero width/height, or no compressed bytes
    "too_large",  # more than max_pixels, rejected before touching the data
    "bad_step",  # step smaller than one row of pixels
    "size_mismatch",  # len(data) != step * height
    "bad_shape",  # dimensions the encoding cannot hold (odd-width yuv422)
    "too_small",  # a side below the caller's min_side
    "bad_aspect",  # longer side / shorter side above the caller's max_aspect
    "bad_data",  # data is not a byte buffer
    "unsupported_encoding",  # a known encoding with no RGB meaning (2-channel data)
    "unsupported_format",  # compressed format we do not decode (compressedDepth)
    "corrupt_compressed",  # jpeg/png bytes that do not decode
)


class ImageDecodeError(ValueError):
    """A message that cannot become an image; `cause` is one of DECODE_CAUSES."""

    def __init__(self, cause: str, message: str) -> None:
        super().__init__(message)
        self.cause = cause


@dataclass(frozen=True)
class _Encoding:
    dtype: np.dtype  # one channel, native byte order
    channels: int
    to_rgb: str  # name of the OpenCV conversion to RGB; "" when already RGB; "data" when generic


_U8, _U16 = np.dtype(np.uint8), np.dtype(np.uint16)

_NAMED: dict[str, _Encoding] = {
    "mono8": _Encoding(_U8, 1, "COLOR_GRAY2RGB"),
    "mono16": _Encoding(_U16, 1, "COLOR_GRAY2RGB"),
    "rgb8": _Encoding(_U8, 3, ""),
    "bgr8": _Encoding(_U8, 3, "COLOR_BGR2RGB"),
    "rgba8": _Encoding(_U8, 4, "COLOR_RGBA2RGB"),
    "bgra8": _Encoding(_U8, 4, "COLOR_BGRA2RGB"),
    "rgb16": _Encoding(_U16, 3, ""),
    "bgr16": _Encoding(_U16, 3, "COLOR_BGR2RGB"),
    "rgba16": _Encoding(_U16, 4, "COLOR_RGBA2RGB"),
    "bgra16": _Encoding(_U16, 4, "COLOR_BGRA2RGB"),
    # ROS's "yuv422" is UYVY byte order; "yuv422_yuy2" is YUYV (image_encodings.hpp).
    "yuv422": _Encoding(_U8, 2, "COLOR_YUV2RGB_UYVY"),
    "uyvy": _Encoding(_U8, 2, "COLOR_YUV2RGB_UYVY"),
    "yuv422_yuy2": _Encoding(_U8, 2, "COLOR_YUV2RGB_YUYV"),
    "yuyv": _Encoding(_U8, 2, "COLOR_YUV2RGB_YUYV"),
}

# OpenCV names a Bayer pattern by the 2x2 block starting at pixel (1, 1), ROS by the
# one at (0, 0): ROS rggb is OpenCV BG, and so on (the mapping cv_bridge uses).
for _ros, _cv in {"rggb": "BG", "bggr": "RG", "gbrg": "GR", "grbg": "GB"}.items():
    _NAMED[f"bayer_{_ros}8"] = _Encoding(_U8, 1, f"COLOR_Bayer{_cv}2RGB")
    _NAMED[f"bayer_{_ros}16"] = _Encoding(_U16, 1, f"COLOR_Bayer{_cv}2RGB")

# Generic data encodings without a colour meaning, by channel count (cv_bridge takes 8UC3 as is).
_DATA_TO_RGB = {1: "COLOR_GRAY2RGB", 3: "", 4: "COLOR_RGBA2RGB"}

# cv_bridge's generic "<depth><type>C<n>" encodings: raw data with no colour meaning.
_GENERIC = re.compile(r"^(8U|8S|16U|16S|32S|32F|64F)C([1-4])$")
_GENERIC_DTYPES = {
    "8U": np.uint8, "8S": np.int8, "16U": np.uint16, "16S": np.int16,
    "32S": np.int32, "32F": np.float32, "64F": np.float64,
}

_cv2_module: Any = None


def _cv2() -> Any:
    """OpenCV, imported on first use so `import cosmos_ros.core` does not pay for it."""
    global _cv2_module
    if _cv2_module is None:
        import cv2

        _cv2_module = cv2
    return _cv2_module


def encoding_info(encoding: str) -> tuple[np.dtype, int]:
    """(dtype of one channel, channels per pixel) for a ROS encoding name."""
    spec = _lookup(encoding)
    return spec.dtype, spec.channels


def _lookup(encoding: str) -> _Encoding:
    spec = _NAMED.get(encoding)
    if spec is not None:
        return spec
    match = _GENERIC.match(encoding) if isinstance(encoding, str) else None
    if match is None:
        known = ", ".join(sorted(_NAMED)) + ", <8U|8S|16U|16S|32S|32F|64F>C<1-4>"
        raise ImageDecodeError("unknown_encoding", f"unknown image encoding {encoding!r}; expected one of {known}")
    return _Encoding(np.dtype(_GENERIC_DTYPES[match.group(1)]), int(match.group(2)), "data")


def _byte_view(data: Any) -> memoryview:
    """A flat byte view of msg.data without copying (rclpy gives array.array('B'))."""
    try:
        view = memoryview(data)
    except TypeError:
        try:
            view = memoryview(bytes(data))  # a list of ints from hand-built messages
        except (TypeError, ValueError) as exc:
            raise ImageDecodeError("bad_data", f"image data must be a byte buffer, got {type(data).__name__}") from exc
    return view.cast("B") if view.format != "B" or view.ndim != 1 else view


def time_seconds(stamp: Any) -> float:
    """A builtin_interfaces/Time, or a (sec, nanosec) pair as JSON records hold it, as float seconds."""
    sec, nanosec = (stamp.sec, stamp.nanosec) if hasattr(stamp, "nanosec") else stamp
    return float(sec) + float(nanosec) * 1e-9


def stamp_seconds(msg: Any) -> float:
    """header.stamp of a message as float seconds (the FrameBuffer's time key)."""
    return time_seconds(msg.header.stamp)


def image_to_array(msg: Any, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The pixels of a sensor_msgs/Image in their native layout.

    Returns (H, W) for one channel, else (H, W, C), with the encoding's dtype in
    native byte order. Little-endian data is a zero-copy view of msg.data (rows
    padded by `step` stay padded in memory: the view is strided, not contiguous;
    read-only when data is bytes). Big-endian multi-byte data is byte-swapped
    into a new array so callers never see a non-native dtype.
    """
    spec = _lookup(msg.encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageDecodeError(
            "empty", f"image has no pixels: {width}x{height} ({msg.encoding}); expected width and height > 0"
        )
    if height * width > max_pixels:
        raise ImageDecodeError(
            "too_large", f"image {width}x{height} has {width * height} pixels; at most {max_pixels} allowed"
        )
    itemsize = spec.dtype.itemsize
    row_bytes = width * spec.channels * itemsize
    if step < row_bytes:
        pixel_bytes = spec.channels * itemsize
        raise ImageDecodeError(
            "bad_step", f"step {step} is shorter than one row: width {width} x {pixel_bytes} bytes = {row_bytes}"
        )
    data = _byte_view(msg.data)
    if len(data) != step * height:
        raise ImageDecodeError(
            "size_mismatch", f"data has {len(data)} bytes; expected step {step} x height {height} = {step * height}"
        )
    big = bool(msg.is_bigendian) and itemsize > 1
    dtype = spec.dtype.newbyteorder(">") if big else spec.dtype
    shape = (height, width, spec.channels)  # (H, W, C)
    array = np.ndarray(shape, dtype=dtype, buffer=data, strides=(step, spec.channels * itemsize, itemsize))
    if big:
        array = array.astype(spec.dtype)
    return array[..., 0] if spec.channels == 1 else array


def check_proportions(
    width: int, height: int, what: str, min_side: int = 1, max_aspect: float | None = None
) -> None:
    """Raises ImageDecodeError ("too_small" / "bad_aspect") for a frame no model should get."""
    if max_aspect is not None and max(width, height) > max_aspect * min(width, height):
        raise ImageDecodeError(
            "bad_aspect",
            f"{what} is {width}x{height}; the aspect ratio must be at most {max_aspect:g}",
        )
    if min(width, height) < min_side:
        raise ImageDecodeError(
            "too_small", f"{what} is {width}x{height}; both sides must be at least {min_side} pixels"
        )


def image_to_rgb8(
    msg: Any,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_side: int | None = None,
    min_side: int = 1,
    max_aspect: float | None = None,
) -> np.ndarray:
    """The frame the model consumes: (H, W, 3) uint8 RGB, a new C-contiguous array.

    The result owns its memory, so it may outlive msg (the FrameBuffer keeps it).
    - colour orders are swapped, alpha dropped, mono repeated into gray RGB;
    - named 16-bit encodings (mono16, rgb16, bayer_*16, ...) keep their top 8 bits;
    - generic data encodings other than 8U (16UC1 depth, 32FC1, ...) have no fixed
      range, so they are min-max stretched over their finite values; NaN and inf
      become 0 (black). 8UC3/8UC4 carry no colour order: taken as RGB, like cv_bridge;
    - yuv422/uyvy/yuyv use OpenCV's BT.601 conversion; bayer is demosaiced.

    max_side: when given, frames whose longer side exceeds it are scaled down (INTER_AREA,
    aspect kept). Where the colour conversion works pixel by pixel the scaling happens first,
    on the source layout, so the conversion touches fewer pixels (720p bgr8 to 448: ~2x
    cheaper); YUV and Bayer data are converted first, since their pixels share samples.
    min_side, max_aspect: refuse frames with a shorter side or a larger aspect ratio, checked
    on the message's size before any pixel is converted (see check_proportions).
    """
    spec = _lookup(msg.encoding)
    array = image_to_array(msg, max_pixels=max_pixels)  # (H, W[, C])
    check_proportions(array.shape[1], array.shape[0], f"image ({msg.encoding})", min_side, max_aspect)
    to_rgb = spec.to_rgb
    if to_rgb == "data":
        if spec.channels not in _DATA_TO_RGB:
            raise ImageDecodeError(
                "unsupported_encoding", f"{msg.encoding} has 2 channels and no RGB meaning; expected 1, 3 or 4 channels"
            )
        to_rgb = _DATA_TO_RGB[spec.channels]
        if spec.dtype != _U8:
            array = _stretch_to_u8(array)
    elif spec.dtype == _U16:
        array = (array >> 8).astype(np.uint8)
    if "YUV" in to_rgb and array.shape[1] % 2:
        raise ImageDecodeError(
            "bad_shape", f"{msg.encoding} packs pixels in pairs; width {array.shape[1]} must be even"
        )
    pixel_local = "YUV" not in to_rgb and "Bayer" not in to_rgb
    resized = False
    if pixel_local:
        array, resized = _fit(array, max_side)
    if not to_rgb:
        rgb = array if resized else np.array(array, dtype=np.uint8, order="C")
    else:
        cv2 = _cv2()
        # cvtColor reads strided rows directly and is ~60x faster than numpy's [..., ::-1] copy.
        rgb = cv2.cvtColor(array, getattr(cv2, to_rgb))
    return rgb if pixel_local else _fit(rgb, max_side)[0]


def _fit(array: np.ndarray, max_side: int | None) -> tuple[np.ndarray, bool]:
    """(array scaled so its longer side is at most max_side, whether it was scaled)."""
    height, width = array.shape[:2]
    if max_side is None or max(height, width) <= max_side:
        return array, False
    if max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return _cv2().resize(array, size, interpolation=_cv2().INTER_AREA), True


def _stretch_to_u8(array: np.ndarray) -> np.ndarray:
    """Min-max stretch over finite values to uint8; non-finite -> 0, constant -> 0."""
    values = array.astype(np.float32, copy=False)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(array.shape, np.uint8)
    low, high = float(values[finite].min()), float(values[finite].max())
    scale = 255.0 / (high - low) if high > low else 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        out = (values - low) * scale
    out[~finite] = 0.0
    return np.clip(out, 0.0, 255.0).astype(np.uint8)


def array_to_image_fields(array: np.ndarray, encoding: str, *, bigendian: bool = False) -> dict[str, Any]:
    """Fields of a sensor_msgs/Image holding `array` (the reverse of image_to_array).

    array: (H, W) or (H, W, 1) for one-channel encodings, (H, W, C) otherwise, with
    the encoding's dtype. Rows are packed (step = W * C * itemsize). `data` is bytes;
    a publisher should copy it into an array('B') with `frombytes` (one memcpy).
    """
    spec = _lookup(encoding)
    array = np.asarray(array)
    if array.ndim == 2 and spec.channels == 1:
        array = array[..., None]
    expected = f"(H, W{'' if spec.channels == 1 else f', {spec.channels}'}) {spec.dtype}"
    if array.ndim != 3 or array.shape[2] != spec.channels or array.dtype.newbyteorder("=") != spec.dtype:
        raise ValueError(f"{encoding} needs an array of shape {expected}, got {array.shape} {array.dtype}")
    height, width = array.shape[:2]
    if height == 0 or width == 0:
        raise ValueError(f"cannot encode an empty image of shape {array.shape}")
    order = ">" if bigendian else "<"
    data = np.ascontiguousarray(array, dtype=spec.dtype.newbyteorder(order)).tobytes()
    return {
        "height": int(height),
        "width": int(width),
        "encoding": encoding,
        "is_bigendian": int(bool(bigendian) and spec.dtype.itemsize > 1),
        "step": int(width * spec.channels * spec.dtype.itemsize),
        "data": data,
    }


def compressed_to_rgb8(
    msg: Any,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_side: int | None = None,
    min_side: int = 1,
    max_aspect: float | None = None,
) -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage (jpeg or png) to (H, W, 3) uint8 RGB.

    image_transport writes formats like "jpeg", "rgb8; jpeg compressed bgr8" or
    "mono16; png compressed mono16"; the compressed stream itself is always in
    OpenCV's BGR/gray order, so the decoded pixels are converted from that. The
    image size is read from the jpeg/png header first, so a decompression bomb is
    refused before any pixels are allocated. max_side, min_side and max_aspect as in
    image_to_rgb8 (checked on the header's size, before decoding).
    """
    fmt = str(getattr(msg, "format", "") or "").lower()
    what = f"compressed image ({fmt or 'no format'})"
    if "compresseddepth" in fmt:
        raise ImageDecodeError("unsupported_format", f"{what}: compressedDepth is not supported; expected jpeg or png")
    data = _byte_view(msg.data)
    if len(data) == 0:
        raise ImageDecodeError("empty", f"{what} has no data")
    size = _compressed_size(data)
    if size is None:
        raise ImageDecodeError("corrupt_compressed", f"{what} has no readable jpeg or png header")
    width, height = size
    if width * height > max_pixels:
        raise ImageDecodeError("too_large", f"{what} is {width}x{height}; at most {max_pixels} pixels allowed")
    check_proportions(width, height, what, min_side, max_aspect)
    cv2 = _cv2()
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)  # (H, W[, C]) BGR order
    if decoded is None or decoded.size == 0:
        raise ImageDecodeError("corrupt_compressed", f"{what}: {len(data)} bytes do not decode")
    if decoded.dtype == np.uint16:
        decoded = (decoded >> 8).astype(np.uint8)
    decoded = _fit(decoded, max_side)[0]
    if decoded.ndim == 2 or decoded.shape[2] == 1:
        return cv2.cvtColor(decoded, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(decoded, cv2.COLOR_BGRA2RGB if decoded.shape[2] == 4 else cv2.COLOR_BGR2RGB)


def _compressed_size(data: memoryview) -> tuple[int, int] | None:
    """(width, height) from a PNG IHDR or JPEG SOF header; None if neither is found."""
    head = bytes(data[:24])
    if head.startswith(b"\x89PNG\r\n\x1a\n") and len(head) >= 24 and head[12:16] == b"IHDR":
        width, height = struct.unpack(">II", head[16:24])
        return width, height
    if not head.startswith(b"\xff\xd8"):
        return None
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA:  # start of scan: no frame header came before it
            return None
        # SOF0..SOF15 carry the frame size; C4 (DHT), C8 (JPG), CC (DAC) do not.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if pos + 9 > len(data):
                return None
            height, width = struct.unpack_from(">HH", data, pos + 5)
            return width, height
        pos += 2 + struct.unpack_from(">H", data, pos + 2)[0]
    return None


def rgb8_to_compressed_fields(array: np.ndarray, fmt: str = "jpeg", quality: int = 90) -> dict[str, Any]:
    """Fields of a sensor_msgs/CompressedImage for an (H, W, 3) uint8 RGB frame.

    `format` follows compressed_image_transport ("rgb8; jpeg compressed bgr8") so
    ROS tools decode it with the right colours. quality: jpeg 1-100 (png ignores it).
    """
    array = np.asarray(array)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got {array.shape} {array.dtype}")
    if fmt not in ("jpeg", "png"):
        raise ValueError(f"compressed format must be 'jpeg' or 'png', got {fmt!r}")
    cv2 = _cv2()
    bgr = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if fmt == "jpeg" else []
    ok, encoded = cv2.imencode(".jpg" if fmt == "jpeg" else ".png", bgr, params)
    if not ok:
        raise ValueError(f"OpenCV failed to encode a {array.shape} image as {fmt}")
    return {"format": f"rgb8; {fmt} compressed bgr8", "data": encoded.tobytes()}

"""cv_bridge's conversions between sensor_msgs/Image and numpy arrays, without cv_bridge.

The names and arguments of cv_bridge's Python CvBridge (imgmsg_to_cv2, cv2_to_imgmsg), with
duck-typed messages in and dicts of fields (or a given message class) out, and the conversion
rules of its C++ core (toCvCopy, cvtColor):

- an encoding with colour meaning (mono, rgb/bgr(a), yuv422, bayer) converts to another one
  through OpenCV's cvtColor, at the source's bit depth, then changes depth;
- generic data ("16UC1", "32FC3", ...) only changes depth, keeping its channel count; it never
  becomes a colour encoding, and a colour encoding becomes generic data only with as many
  channels (bgr8 -> 8UC3, not 8UC1);
- nothing converts to yuv422 or bayer, and bayer converts only to mono, rgb and bgr;
- a depth change between 8 and 16 bits scales by 65535/255 (or 255/65535) and rounds to the
  nearest integer: 16-bit v becomes round(v * 255 / 65535); other depth changes keep values,
  rounding floats to integers (half to even) and saturating to the target's range, NaN -> 0.
"""

from __future__ import annotations

import array as array_module
import sys
from typing import Any

import numpy as np

from cosmos_ros.core.codec.encodings import (
    BAYER_TO_OPENCV,
    Encoding,
    ImageDecodeError,
    cv2,
    cv_ready,
    generic_encoding,
    lookup,
)
from cosmos_ros.core.codec.raw import DEFAULT_MAX_PIXELS, image_to_array

PASSTHROUGH = "passthrough"

_PLAIN = ("GRAY", "RGB", "BGR", "RGBA", "BGRA")


def _colour_codes() -> dict[tuple[str, str], str]:
    """(source family, target family) -> OpenCV conversion name, "" for the same family.

    The table of cv_bridge's getConversionCodes: no way into yuv422 or bayer, and bayer only
    to gray, rgb and bgr.
    """
    codes = {(family, family): "" for family in _PLAIN + ("UYVY", "YUYV")}
    codes.update({(src, dst): f"COLOR_{src}2{dst}" for src in _PLAIN for dst in _PLAIN if src != dst})
    for family, suffix in (("UYVY", "UYVY"), ("YUYV", "YUY2")):
        codes.update({(family, dst): f"COLOR_YUV2{dst}_{suffix}" for dst in _PLAIN})
    for pattern, opencv in BAYER_TO_OPENCV.items():
        codes.update({(f"BAYER_{pattern.upper()}", dst): f"COLOR_Bayer{opencv}2{dst}" for dst in _PLAIN[:3]})
    return codes


COLOUR_CODES = _colour_codes()


def _conversion_code(src_encoding: str, dst_encoding: str) -> str:
    """The OpenCV colour conversion from one encoding to another ("" for none), or why there is none.

    Raises ImageDecodeError("unsupported_conversion") where cv_bridge's getConversionCode throws.
    """
    src, dst = lookup(src_encoding), lookup(dst_encoding)
    if src_encoding == dst_encoding:
        return ""
    if not src.family and dst.family:
        raise ImageDecodeError(
            "unsupported_conversion",
            f"{src_encoding} is generic data with no colour meaning; it cannot become {dst_encoding}, "
            f"only a generic encoding with {src.channels} channel(s)",
        )
    if not (src.family and dst.family):
        if src.channels != dst.channels:
            raise ImageDecodeError(
                "unsupported_conversion",
                f"{src_encoding} has {src.channels} channel(s) and {dst_encoding} {dst.channels}; "
                "a conversion to or from generic data keeps the channel count",
            )
        return ""
    code = COLOUR_CODES.get((src.family, dst.family))
    if code is None:
        raise ImageDecodeError(
            "unsupported_conversion",
            f"no conversion from {src_encoding} to {dst_encoding}; nothing converts to yuv422 or bayer, "
            "and bayer converts only to mono, rgb and bgr",
        )
    return code


def _depth_scale(src: Encoding, dst: Encoding) -> float:
    """cv_bridge's factor for a depth change: 8 <-> 16 bits stretch between [0, 255] and [0, 65535]."""
    if (src.bit_depth, dst.bit_depth) == (8, 16):
        return 65535.0 / 255.0
    if (src.bit_depth, dst.bit_depth) == (16, 8):
        return 255.0 / 65535.0
    return 1.0


def u16_to_u8(array: np.ndarray) -> np.ndarray:
    """uint16 -> uint8 as round(v * 255 / 65535), cv_bridge's 16 -> 8 bit rule (OpenCV's convertTo)."""
    if array.ndim == 2 or array.shape[2] <= 4:
        # convertScaleAbs is convertTo (abs is a no-op on unsigned data), ~3x faster than v >> 8.
        return cv2().convertScaleAbs(cv_ready(array), alpha=255.0 / 65535.0)
    return ((array.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _convert_depth(array: np.ndarray, dtype: np.dtype, scale: float = 1.0) -> np.ndarray:
    """`array * scale` as `dtype`, a new array, with OpenCV's convertTo arithmetic.

    Integer targets get values rounded half to even and saturated to their range; NaN becomes 0.
    """
    dtype = np.dtype(dtype)
    if scale == 1.0 and array.dtype == dtype:
        return np.array(array, order="C")
    if scale == 255.0 / 65535.0 and array.dtype == np.uint16 and dtype == np.uint8:
        return u16_to_u8(array)
    if dtype.kind == "f":
        out = array.astype(dtype)
        return out * dtype.type(scale) if scale != 1.0 else out
    info = np.iinfo(dtype)
    if array.dtype.kind in "ui" and scale == 1.0:
        source = np.iinfo(array.dtype)
        low, high = max(info.min, source.min), min(info.max, source.max)
        return np.clip(array, low, high).astype(dtype)
    # float32 holds every 8/16-bit value exactly and is what convertTo computes in; wider
    # types need float64 so that int32's range survives the clip below.
    wide = array.dtype.itemsize > 2 or dtype.itemsize > 2
    values = array.astype(np.float64 if wide else np.float32)
    if scale != 1.0:
        values *= values.dtype.type(scale)
    values = np.nan_to_num(values, copy=False, nan=0.0, posinf=info.max, neginf=info.min)
    return np.clip(np.rint(values, out=values), info.min, info.max).astype(dtype)


def _as_encoding(array: Any, encoding: str, spec: Encoding) -> np.ndarray:
    """`array` as (H, W[, C]) of spec's native dtype; ImageDecodeError if it does not fit."""
    array = np.asarray(array)
    shaped = array[..., 0] if array.ndim == 3 and array.shape[2] == 1 else array
    channels = 1 if shaped.ndim == 2 else (shaped.shape[2] if shaped.ndim == 3 else 0)
    if channels != spec.channels or array.dtype.newbyteorder("=") != spec.dtype:
        expected = f"(H, W{'' if spec.channels == 1 else f', {spec.channels}'}) {spec.dtype}"
        raise ImageDecodeError(
            "incompatible_encoding",
            f"{encoding} holds arrays of shape {expected}, got {array.shape} {array.dtype}",
        )
    return shaped if shaped.dtype.isnative else shaped.astype(spec.dtype)


def cvt_color(array: np.ndarray, src_encoding: str, dst_encoding: str) -> np.ndarray:
    """`array`, holding `src_encoding`, converted to `dst_encoding`: cv_bridge's cvtColor.

    Always a new C-contiguous array: (H, W) for one channel, else (H, W, C). The rules are
    cv_bridge's (see the module docstring); for example mono16 1000 -> bgr8 (4, 4, 4), since
    1000 * 255 / 65535 = 3.89. Raises ImageDecodeError: "unknown_encoding",
    "incompatible_encoding" (array does not fit src_encoding), "unsupported_conversion",
    "bad_shape" (yuv422 of odd width).
    """
    src, dst = lookup(src_encoding), lookup(dst_encoding)
    array = _as_encoding(array, src_encoding, src)
    code = _conversion_code(src_encoding, dst_encoding)
    if code:
        if "YUV" in code and array.shape[1] % 2:
            raise ImageDecodeError(
                "bad_shape", f"{src_encoding} packs pixels in pairs; width {array.shape[1]} must be even"
            )
        array = cv2().cvtColor(cv_ready(array), getattr(cv2(), code))
        if array.dtype == dst.dtype:
            return array
    return _convert_depth(array, dst.dtype, _depth_scale(src, dst))


def imgmsg_to_cv2(
    msg: Any, desired_encoding: str = PASSTHROUGH, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """A sensor_msgs/Image as a numpy array in `desired_encoding`, as cv_bridge's imgmsg_to_cv2.

    desired_encoding: "passthrough" keeps the message's encoding, otherwise any encoding name,
    reached by cvt_color's rules (bgr8 -> rgb8 swaps channels, rgba8 -> bgr8 drops alpha,
    mono16 -> mono8 rounds v * 255 / 65535, 8UC3 -> mono8 is refused).
    Returns a new, writeable, C-contiguous array in native byte order (whatever `step` padding
    or `is_bigendian` the message has): (H, W) for one channel, else (H, W, C).
    Raises ImageDecodeError for a malformed message (see image_to_array) and as cvt_color does.
    """
    source = image_to_array(msg, max_pixels=max_pixels)  # (H, W[, C]), a view unless byte-swapped
    if desired_encoding != PASSTHROUGH:
        return cvt_color(source, msg.encoding, desired_encoding)
    swapped = bool(msg.is_bigendian) and source.dtype.itemsize > 1
    return np.ascontiguousarray(source) if swapped else np.array(source, order="C")


def to_message(msg_type: Any, fields: dict[str, Any]) -> Any:
    """msg_type() with `fields` set; bytes become array('B') in one copy, as rclpy messages want."""
    msg = msg_type()
    for name, value in fields.items():
        if isinstance(value, bytes):
            value = array_module.array("B", value)
        setattr(msg, name, value)
    return msg


def cv2_to_imgmsg(
    cvim: np.ndarray, encoding: str = PASSTHROUGH, header: Any = None, *, msg_type: Any = None
) -> Any:
    """A numpy image as sensor_msgs/Image fields, as cv_bridge's cv2_to_imgmsg.

    cvim: (H, W) or (H, W, C) of uint8, int8, uint16, int16, int32, float32 or float64.
    encoding: "passthrough" names the array's type the generic way ("8UC3", "32FC1", any
    channel count up to 512); otherwise the encoding must hold exactly that dtype and channel
    count (bgr8 takes any (H, W, 3) uint8 array, as cv_bridge does).
    header: copied into the result when given.
    msg_type: a message class such as sensor_msgs.msg.Image to fill; by default a dict of its
    fields (height, width, encoding, is_bigendian, step, data as bytes, and header if given).
    Rows are packed (step = W * C * itemsize). A big-endian array ('>' dtype) keeps its bytes
    and sets is_bigendian, as cv_bridge does; any other is written in native order.
    Raises TypeError when cvim is not a numpy array (as cv_bridge), else ImageDecodeError:
    "bad_shape", "empty", "unsupported_dtype", "unknown_encoding", "incompatible_encoding".
    """
    if not isinstance(cvim, np.ndarray):
        raise TypeError(f"cv2_to_imgmsg needs a numpy array, got {type(cvim).__name__}")
    if cvim.ndim not in (2, 3):
        raise ImageDecodeError("bad_shape", f"an image array is (H, W) or (H, W, C), got shape {cvim.shape}")
    height, width = cvim.shape[:2]
    channels = 1 if cvim.ndim == 2 else cvim.shape[2]
    if height == 0 or width == 0:
        raise ImageDecodeError("empty", f"cannot encode an image with no pixels, shape {cvim.shape}")
    array_type = generic_encoding(cvim.dtype, channels)
    if encoding != PASSTHROUGH:
        spec = lookup(encoding)
        if generic_encoding(spec.dtype, spec.channels) != array_type:
            raise ImageDecodeError(
                "incompatible_encoding",
                f"encoding {encoding} holds {generic_encoding(spec.dtype, spec.channels)} data, "
                f"but the array is {array_type} (shape {cvim.shape}, {cvim.dtype})",
            )
    order = cvim.dtype.byteorder  # "|" for one-byte types
    fields = {
        "height": int(height),
        "width": int(width),
        "encoding": array_type if encoding == PASSTHROUGH else encoding,
        "is_bigendian": int(order == ">" or (order == "=" and sys.byteorder == "big")),
        "step": int(width * channels * cvim.dtype.itemsize),
        "data": cvim.tobytes(),  # C order, whatever the array's strides
    }
    if header is not None:
        fields["header"] = header
    return fields if msg_type is None else to_message(msg_type, fields)

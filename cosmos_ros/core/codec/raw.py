"""sensor_msgs/Image fields <-> numpy arrays in the message's own layout, and message stamps."""

from __future__ import annotations

from typing import Any

import numpy as np

from cosmos_ros.core.codec.encodings import ImageDecodeError, byte_view, lookup

DEFAULT_MAX_PIXELS = 8192 * 8192


def time_nanoseconds(stamp: Any) -> int:
    """A builtin_interfaces/Time (or anything with sec and nanosec) as integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def time_seconds(stamp: Any) -> float:
    """A builtin_interfaces/Time, or a (sec, nanosec) pair as JSON records hold it, as float seconds."""
    sec, nanosec = (stamp.sec, stamp.nanosec) if hasattr(stamp, "nanosec") else stamp
    return float(sec) + float(nanosec) * 1e-9


def stamp_seconds(msg: Any) -> float:
    """header.stamp of a message as float seconds (the FrameBuffer's time key)."""
    return time_seconds(msg.header.stamp)


def check_pixels(width: int, height: int, what: str, max_pixels: int) -> None:
    """Raises ImageDecodeError ("empty" / "too_large") unless 0 < width * height <= max_pixels."""
    if height <= 0 or width <= 0:
        raise ImageDecodeError(
            "empty", f"{what} has no pixels: {width}x{height}; expected width and height > 0"
        )
    if height * width > max_pixels:
        raise ImageDecodeError(
            "too_large", f"{what} is {width}x{height}: {width * height} pixels; at most {max_pixels} allowed"
        )


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


def image_to_array(msg: Any, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """The pixels of a sensor_msgs/Image in their native layout.

    Returns (H, W) for one channel, else (H, W, C), with the encoding's dtype in
    native byte order. Little-endian data is a zero-copy view of msg.data (rows
    padded by `step` stay padded in memory: the view is strided, not contiguous;
    read-only when data is bytes). Big-endian multi-byte data is byte-swapped
    into a new array so callers never see a non-native dtype.
    """
    spec = lookup(msg.encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    check_pixels(width, height, f"image ({msg.encoding})", max_pixels)
    itemsize = spec.dtype.itemsize
    row_bytes = width * spec.channels * itemsize
    if step < row_bytes:
        pixel_bytes = spec.channels * itemsize
        raise ImageDecodeError(
            "bad_step",
            f"step {step} is shorter than one row: width {width} x {pixel_bytes} bytes = {row_bytes}",
        )
    data = byte_view(msg.data)
    if len(data) != step * height:
        raise ImageDecodeError(
            "size_mismatch",
            f"data has {len(data)} bytes; expected step {step} x height {height} = {step * height}",
        )
    big = bool(msg.is_bigendian) and itemsize > 1
    dtype = spec.dtype.newbyteorder(">") if big else spec.dtype
    shape = (height, width, spec.channels)  # (H, W, C)
    array = np.ndarray(shape, dtype=dtype, buffer=data, strides=(step, spec.channels * itemsize, itemsize))
    if big:
        array = array.astype(spec.dtype)
    return array[..., 0] if spec.channels == 1 else array


def array_to_image_fields(array: np.ndarray, encoding: str, *, bigendian: bool = False) -> dict[str, Any]:
    """Fields of a sensor_msgs/Image holding `array` (the reverse of image_to_array).

    array: (H, W) or (H, W, 1) for one-channel encodings, (H, W, C) otherwise, with
    the encoding's dtype. Rows are packed (step = W * C * itemsize). `data` is bytes;
    a publisher should copy it into an array('B') with `frombytes` (one memcpy).
    """
    spec = lookup(encoding)
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

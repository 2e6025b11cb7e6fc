"""sensor_msgs/CompressedImage <-> numpy: cv_bridge's compressed conversions, image_transport's formats.

Two kinds of payload arrive in a CompressedImage:
- an image file OpenCV decodes (jpeg, png, bmp, tiff, webp, pnm, ...): compressed_image_transport
  writes formats like "bgr8; jpeg compressed bgr8", cv_bridge plain "jpg"; the stream itself is
  always in OpenCV's gray/BGR/BGRA order;
- compressed_depth_image_transport's "<encoding>; compressedDepth [png|rvl]": a 12-byte
  ConfigHeader (int32 format, float32 depthParam[2], in the publisher's byte order: little-endian
  on every ROS 2 platform) then the payload. 16UC1/mono16 depth is a 16-bit PNG as is; 32FC1
  depth is quantised inverse depth, a 16-bit PNG of q = A / depth + B (q = 0: no depth), so
  depth = A / (q - B) with A, B = depthParam, and NaN where q = 0. Only the png variant is
  decoded: rvl (a run-length code that can only be read sequentially) is refused.
"""

from __future__ import annotations

import re
import struct
from typing import Any

import numpy as np

from cosmos_ros.core.codec.bridge import PASSTHROUGH, cvt_color, to_message
from cosmos_ros.core.codec.encodings import ImageDecodeError, byte_view, cv2, generic_encoding
from cosmos_ros.core.codec.raw import DEFAULT_MAX_PIXELS, check_pixels, check_proportions

DEPTH_HEADER_BYTES = 12  # compressed_depth_image_transport's ConfigHeader
DEPTH_ENCODINGS = ("16UC1", "mono16", "32FC1")
_DEPTH_FORMAT = re.compile(r"compresseddepth(?:\s+(\S+))?")


def compressed_size(data: memoryview) -> tuple[int, int] | None:
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


def decode_file(
    data: memoryview,
    what: str,
    max_pixels: int,
    *,
    min_side: int = 1,
    max_aspect: float | None = None,
    need_header: bool = False,
) -> np.ndarray:
    """An image file's pixels as OpenCV decodes them: (H, W) gray or (H, W, 3|4) BGR(A), any depth.

    A PNG or JPEG is measured from its header and refused before any pixel is allocated (a
    decompression bomb costs nothing); other formats, accepted only when need_header is False,
    are measured once decoded.
    """
    if len(data) == 0:
        raise ImageDecodeError("empty", f"{what} has no data")
    size = compressed_size(data)
    if size is None and need_header:
        raise ImageDecodeError("corrupt_compressed", f"{what} has no readable jpeg or png header")
    if size is not None:
        check_pixels(*size, what, max_pixels)
        check_proportions(*size, what, min_side, max_aspect)
    decoded = cv2().imdecode(np.frombuffer(data, np.uint8), cv2().IMREAD_UNCHANGED)
    if decoded is None or decoded.size == 0:
        raise ImageDecodeError("corrupt_compressed", f"{what}: {len(data)} bytes do not decode")
    if size is None:
        check_pixels(decoded.shape[1], decoded.shape[0], what, max_pixels)
        check_proportions(decoded.shape[1], decoded.shape[0], what, min_side, max_aspect)
    return decoded


def is_compressed_depth(fmt: str) -> bool:
    """Whether a CompressedImage format names compressed_depth_image_transport's payload."""
    return "compresseddepth" in fmt.lower()


def decode_compressed_depth(
    fmt: str, data: memoryview, what: str, max_pixels: int, **limits
) -> tuple[np.ndarray, str]:
    """(depth image (H, W), its encoding) from a compressedDepth payload, as the ROS subscriber decodes it.

    The encoding is the format's text before ";"; a format without a variant is png, as
    compressed_depth_image_transport reads it. limits: decode_file's min_side, max_aspect and
    need_header, applied to the PNG inside.
    """
    encoding, _, variant_text = fmt.partition(";")
    encoding = encoding.strip()
    match = _DEPTH_FORMAT.search(variant_text.lower())
    variant = (match.group(1) or "png") if match else "png"
    if variant != "png":
        hint = "; rvl is not decoded here, publish with format png" if variant == "rvl" else ""
        raise ImageDecodeError(
            "unsupported_format", f"{what}: compressedDepth {variant} is not supported{hint}"
        )
    if encoding not in DEPTH_ENCODINGS:
        raise ImageDecodeError(
            "unsupported_format",
            f"{what}: compressedDepth holds {', '.join(DEPTH_ENCODINGS)}, not {encoding!r}",
        )
    if len(data) == 0:
        raise ImageDecodeError("empty", f"{what} has no data")
    if len(data) <= DEPTH_HEADER_BYTES:
        raise ImageDecodeError(
            "corrupt_compressed",
            f"{what} has {len(data)} bytes, no more than its {DEPTH_HEADER_BYTES}-byte header",
        )
    quant_a, quant_b = struct.unpack_from("<ff", data, 4)
    png = decode_file(data[DEPTH_HEADER_BYTES:], what, max_pixels, **limits)
    if png.ndim != 2 or png.dtype != np.uint16:
        raise ImageDecodeError(
            "corrupt_compressed", f"{what} must hold one 16-bit channel, got {png.shape} {png.dtype}"
        )
    if encoding != "32FC1":
        return png, encoding
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = np.float32(quant_a) / (png.astype(np.float32) - np.float32(quant_b))  # (H, W) metres
    depth[png == 0] = np.nan
    return depth, encoding


def decoded_encoding(decoded: np.ndarray) -> str:
    """The encoding of what imdecode returned: mono/bgr/bgra 8 or 16 bit, else cv_bridge's generic name.

    cv_bridge's C++ toCvCopy takes a decoded stream as mono8, bgr8 or bgra8 by its channel
    count; a 16-bit PNG or TIFF is named mono16/bgr16/bgra16 here so its depth is not misread.
    """
    channels = 1 if decoded.ndim == 2 else decoded.shape[2]
    family = {1: "mono", 3: "bgr", 4: "bgra"}.get(channels)
    if family and decoded.dtype in (np.uint8, np.uint16):
        return f"{family}{decoded.dtype.itemsize * 8}"
    return generic_encoding(decoded.dtype, channels)


def compressed_imgmsg_to_cv2(
    msg: Any, desired_encoding: str = PASSTHROUGH, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """A sensor_msgs/CompressedImage as a numpy array, as cv_bridge's compressed_imgmsg_to_cv2.

    Any format OpenCV decodes (jpeg, png, bmp, tiff, webp, pnm, ...), and compressedDepth png.
    desired_encoding "passthrough" returns what was decoded: gray stays (H, W), colour is
    (H, W, 3) BGR, a PNG with alpha (H, W, 4) BGRA, a 16-bit PNG uint16, compressedDepth
    (H, W) uint16 (16UC1, mono16) or float32 metres with NaN where there is no depth (32FC1).
    Any other encoding is reached from the decoded one (see decoded_encoding) by cvt_color's
    rules: "rgba8" keeps a PNG's alpha, "rgb8" drops it, "mono8" of a 16UC1 depth is refused.
    Raises ImageDecodeError: "empty", "too_large", "corrupt_compressed", "unsupported_format"
    (compressedDepth rvl or a depth encoding other than 16UC1, mono16, 32FC1), and as cvt_color.
    """
    fmt = str(getattr(msg, "format", "") or "")
    what = f"compressed image ({fmt or 'no format'})"
    data = byte_view(msg.data)
    if is_compressed_depth(fmt):
        decoded, encoding = decode_compressed_depth(fmt, data, what, max_pixels)
    else:
        decoded = decode_file(data, what, max_pixels)
        encoding = decoded_encoding(decoded)
    return decoded if desired_encoding == PASSTHROUGH else cvt_color(decoded, encoding, desired_encoding)


def cv2_to_compressed_imgmsg(cvim: np.ndarray, dst_format: str = "jpg", *, msg_type: Any = None) -> Any:
    """A numpy image as sensor_msgs/CompressedImage fields, as cv_bridge's cv2_to_compressed_imgmsg.

    cvim is written as OpenCV reads arrays: (H, W) gray, (H, W, 3) BGR, (H, W, 4) BGRA.
    dst_format: a file extension OpenCV writes ("jpg", "png", "bmp", "tiff", "webp", ...); it
    becomes `format` as is. Returns {"format", "data" (bytes)}, or msg_type() filled with them.
    Raises TypeError when cvim is not a numpy array (as cv_bridge), else ImageDecodeError:
    "empty", "unsupported_format" (OpenCV has no writer for it), "incompatible_encoding" (the
    format cannot hold this array, such as 2 channels or colour as pgm).
    """
    if not isinstance(cvim, np.ndarray):
        raise TypeError(f"cv2_to_compressed_imgmsg needs a numpy array, got {type(cvim).__name__}")
    if cvim.size == 0:
        raise ImageDecodeError("empty", f"cannot compress an image with no pixels, shape {cvim.shape}")
    extension = f".{dst_format}"
    if not cv2().haveImageWriter(extension):
        raise ImageDecodeError("unsupported_format", f"OpenCV has no image writer for {dst_format!r}")
    what = f"{cvim.shape} {cvim.dtype} array"
    try:
        ok, encoded = cv2().imencode(extension, cvim)
    except cv2().error as exc:
        reason = str(exc).split("error: ", 1)[-1].strip()
        raise ImageDecodeError(
            "incompatible_encoding", f"OpenCV cannot write a {what} as {dst_format}: {reason}"
        ) from exc
    if not ok:
        raise ImageDecodeError("incompatible_encoding", f"OpenCV failed to write a {what} as {dst_format}")
    fields = {"format": dst_format, "data": encoded.tobytes()}
    return fields if msg_type is None else to_message(msg_type, fields)

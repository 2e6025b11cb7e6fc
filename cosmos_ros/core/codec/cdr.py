"""sensor_msgs/Image and CompressedImage read straight from their serialized (CDR) bytes.

A raw subscription (rclpy's `raw=True`) hands over the bytes DDS delivered; rclpy's own
deserialization would copy every pixel into a Python array first. Reading the few header fields
here and viewing the pixels in place costs microseconds, and `image_stamp` reads only the stamp,
so a node can decide from it whether to look at the frame at all.

Layout (the OMG CDR rules ROS 2 serializes with): a 4-byte encapsulation header (0x0000 big-,
0x0001 little-endian; XCDR2's plain 0x0006 / 0x0007 lay these types out the same way), then the
fields in order, each aligned to its own size counted from after the encapsulation header:

    Image:           int32 sec, uint32 nanosec, string frame_id, uint32 height, uint32 width,
                     string encoding, uint8 is_bigendian, uint32 step, sequence<uint8> data
    CompressedImage: int32 sec, uint32 nanosec, string frame_id, string format, sequence<uint8> data

(a string is a uint32 length counting its NUL, then the bytes and the NUL; a sequence a uint32
count, then the items). The results are duck-typed like the messages, so `image_to_rgb8` and
`compressed_to_rgb8` take them as they take a message.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from cosmos_ros.core.codec.encodings import ImageDecodeError

_ENDIAN = {0x0000: ">", 0x0001: "<", 0x0006: ">", 0x0007: "<"}  # encapsulation id -> byte order


@dataclass(frozen=True)
class Stamp:
    sec: int
    nanosec: int


@dataclass(frozen=True)
class Header:
    stamp: Stamp
    frame_id: str


@dataclass(frozen=True)
class ImageView:
    """A sensor_msgs/Image whose `data` is a view of the serialized bytes (no copy)."""

    header: Header
    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: memoryview = field(repr=False)


@dataclass(frozen=True)
class CompressedImageView:
    header: Header
    format: str
    data: memoryview = field(repr=False)


class _Reader:
    def __init__(self, data) -> None:
        self.view = memoryview(data).cast("B") if not isinstance(data, memoryview) else data.cast("B")
        if len(self.view) < 4:
            raise ImageDecodeError(
                "bad_cdr", f"a serialized message needs at least 4 bytes, got {len(self.view)}"
            )
        kind = (self.view[0] << 8) | self.view[1]
        if kind not in _ENDIAN:
            raise ImageDecodeError("bad_cdr", f"unsupported CDR encapsulation 0x{kind:04x}")
        self.order = _ENDIAN[kind]
        self.pos = 4

    def _take(self, size: int, what: str) -> int:
        start = self.pos
        if start + size > len(self.view):
            raise ImageDecodeError(
                "bad_cdr", f"the serialized message ends inside {what} (byte {start} of {len(self.view)})"
            )
        self.pos += size
        return start

    def uint32(self, what: str, signed: bool = False) -> int:
        self.pos += -(self.pos - 4) % 4  # aligned from after the encapsulation header
        start = self._take(4, what)
        return struct.unpack_from(self.order + ("i" if signed else "I"), self.view, start)[0]

    def uint8(self, what: str) -> int:
        return self.view[self._take(1, what)]

    def string(self, what: str) -> str:
        size = self.uint32(what)
        start = self._take(size, what)
        return bytes(self.view[start : start + max(size - 1, 0)]).decode("utf-8", errors="replace")

    def octets(self, what: str) -> memoryview:
        size = self.uint32(what)
        start = self._take(size, what)
        return self.view[start : start + size]

    def header(self) -> Header:
        sec = self.uint32("header.stamp.sec", signed=True)
        nanosec = self.uint32("header.stamp.nanosec")
        return Header(Stamp(sec, nanosec), self.string("header.frame_id"))


def image_stamp(data) -> Stamp:
    """header.stamp of a serialized Image or CompressedImage, reading 12 bytes."""
    reader = _Reader(data)
    return Stamp(reader.uint32("header.stamp.sec", signed=True), reader.uint32("header.stamp.nanosec"))


def image_from_cdr(data) -> ImageView:
    """A serialized sensor_msgs/Image as an ImageView; ImageDecodeError("bad_cdr") if malformed."""
    reader = _Reader(data)
    header = reader.header()
    height, width = reader.uint32("height"), reader.uint32("width")
    encoding = reader.string("encoding")
    is_bigendian = reader.uint8("is_bigendian")
    step = reader.uint32("step")
    return ImageView(header, height, width, encoding, is_bigendian, step, reader.octets("data"))


def compressed_from_cdr(data) -> CompressedImageView:
    """A serialized sensor_msgs/CompressedImage as a CompressedImageView."""
    reader = _Reader(data)
    header = reader.header()
    fmt = reader.string("format")
    return CompressedImageView(header, fmt, reader.octets("data"))

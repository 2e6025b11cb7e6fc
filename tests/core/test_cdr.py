"""Images read from their serialized bytes agree with rclpy's own deserialization, field by
field, for every alignment the variable-length strings can leave; a cut-off or foreign buffer is
a counted decode error, not a crash."""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CompressedImage, Image

from cosmos_ros.core.codec import (
    ImageDecodeError,
    array_to_image_fields,
    compressed_from_cdr,
    compressed_to_rgb8,
    image_from_cdr,
    image_stamp,
    image_to_rgb8,
    rgb8_to_compressed_fields,
)

RNG = np.random.default_rng(3)


def image_msg(frame_id: str, encoding: str, array: np.ndarray, *, pad: int = 0, big: bool = False) -> Image:
    fields = array_to_image_fields(array, encoding, bigendian=big)
    msg = Image(
        height=fields["height"], width=fields["width"], encoding=encoding, is_bigendian=fields["is_bigendian"]
    )
    rows = np.frombuffer(fields["data"], np.uint8).reshape(fields["height"], -1)
    padded = np.concatenate([rows, np.full((rows.shape[0], pad), 0xAB, np.uint8)], axis=1)
    msg.step, msg.data = fields["step"] + pad, padded.tobytes()
    msg.header.stamp.sec, msg.header.stamp.nanosec = -5 if big else 1_700_000_123, 999_999_999
    msg.header.frame_id = frame_id
    return msg


@pytest.mark.parametrize("frame_id", ["", "c", "cam", "cam0", "camera_optical_frame"])
@pytest.mark.parametrize(
    ("encoding", "shape", "dtype", "pad", "big"),
    [
        ("rgb8", (5, 7, 3), np.uint8, 0, False),
        ("mono16", (4, 6), np.uint16, 3, True),
        ("32FC1", (3, 3), np.float32, 4, False),
    ],
)
def test_an_image_read_from_its_bytes_is_the_message_rclpy_would_give(
    frame_id, encoding, shape, dtype, pad, big
):
    array = (RNG.random(shape) * 1000).astype(dtype)
    msg = image_msg(frame_id, encoding, array, pad=pad, big=big)
    data = serialize_message(msg)
    view = image_from_cdr(data)
    assert (view.header.stamp.sec, view.header.stamp.nanosec) == (
        msg.header.stamp.sec,
        msg.header.stamp.nanosec,
    )
    assert view.header.frame_id == frame_id
    assert (view.height, view.width, view.encoding, view.is_bigendian, view.step) == (
        msg.height, msg.width, msg.encoding, msg.is_bigendian, msg.step,
    )  # fmt: skip
    assert bytes(view.data) == bytes(msg.data)
    assert image_stamp(data) == view.header.stamp
    if encoding == "rgb8":  # the model path takes the view as it takes the message, without copying first
        np.testing.assert_array_equal(image_to_rgb8(view), image_to_rgb8(msg))


def test_a_compressed_image_read_from_its_bytes_decodes_like_the_message():
    rgb = RNG.integers(0, 255, (16, 24, 3), dtype=np.uint8)
    fields = rgb8_to_compressed_fields(rgb, "png")
    msg = CompressedImage(format=fields["format"], data=fields["data"])
    msg.header.frame_id = "wrist"
    msg.header.stamp.sec = 42
    view = compressed_from_cdr(serialize_message(msg))
    assert (view.format, view.header.frame_id, view.header.stamp.sec) == (msg.format, "wrist", 42)
    np.testing.assert_array_equal(compressed_to_rgb8(view), rgb)


def test_the_pixels_are_a_view_of_the_serialized_bytes():
    data = bytearray(serialize_message(image_msg("cam", "mono8", np.zeros((2, 2), np.uint8))))
    view = image_from_cdr(data)
    data[-1] = 77  # the last pixel
    assert view.data[-1] == 77


def test_cut_off_or_foreign_bytes_are_a_bad_cdr_decode_error():
    data = serialize_message(image_msg("camera", "rgb8", np.zeros((4, 4, 3), np.uint8)))
    for cut in (2, 10, 30, len(data) - 1):
        with pytest.raises(ImageDecodeError, match="ends inside|at least 4 bytes") as error:
            image_from_cdr(data[:cut])
        assert error.value.cause == "bad_cdr"
    with pytest.raises(ImageDecodeError, match="encapsulation 0x0003") as error:
        image_from_cdr(b"\x00\x03\x00\x00" + data[4:])
    assert error.value.cause == "bad_cdr"


def test_a_big_endian_cdr_buffer_is_read_in_its_byte_order():
    import struct

    def string(text: str) -> bytes:
        raw = text.encode() + b"\0"
        return struct.pack(">I", len(raw)) + raw

    body = struct.pack(">iI", 7, 5) + string("cam")  # 8 + 8 bytes: aligned
    body += struct.pack(">II", 1, 2) + string("mono8")  # 8 + 10 bytes: ends at 34
    body += struct.pack(">B", 0) + b"\0" + struct.pack(">I", 2)  # is_bigendian at 34, pad to 36, step
    body += struct.pack(">I", 2) + bytes([10, 20])
    view = image_from_cdr(b"\x00\x00\x00\x00" + body)
    assert (view.header.stamp.sec, view.header.stamp.nanosec, view.header.frame_id) == (7, 5, "cam")
    assert (view.height, view.width, view.encoding, view.step, bytes(view.data)) == (1, 2, "mono8", 2, b"\x0a\x14")

"""Specification of the cv_bridge-compatible Image API: imgmsg_to_cv2, cv2_to_imgmsg, cvt_color.

Expected values follow cv_bridge's documented behaviour and its own tests (vision_opencv
cv_bridge/test: conversions.py, enumerants.py, test_endian.cpp, utest.cpp, utest2.cpp).
"""

from __future__ import annotations

import array
import struct
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from cosmos_ros.core.codec import (
    DECODE_CAUSES,
    ImageDecodeError,
    cv2_to_imgmsg,
    encoding_info,
    imgmsg_to_cv2,
)

RNG = np.random.default_rng(7)

NAMED = [
    "mono8", "mono16", "rgb8", "bgr8", "rgba8", "bgra8", "rgb16", "bgr16", "rgba16", "bgra16",
    "yuv422", "uyvy", "yuv422_yuy2", "yuyv",
    "bayer_rggb8", "bayer_bggr8", "bayer_gbrg8", "bayer_grbg8",
    "bayer_rggb16", "bayer_bggr16", "bayer_gbrg16", "bayer_grbg16",
]  # fmt: skip
DEPTHS = ("8U", "8S", "16U", "16S", "32S", "32F", "64F")
GENERIC = [f"{depth}C{channels}" for depth in DEPTHS for channels in (1, 2, 3, 4)]
GENERIC += ["8UC5", "32FC10", "16UC128", "8U", "64F"]
CV_DEPTHS = {
    np.uint8: cv2.CV_8U, np.int8: cv2.CV_8S, np.uint16: cv2.CV_16U, np.int16: cv2.CV_16S,
    np.int32: cv2.CV_32S, np.float32: cv2.CV_32F, np.float64: cv2.CV_64F,
}  # fmt: skip


def pixels(encoding: str, height: int = 4, width: int = 6) -> np.ndarray:
    dtype, channels = encoding_info(encoding)
    shape = (height, width) if channels == 1 else (height, width, channels)
    if dtype.kind == "f":
        return (RNG.standard_normal(shape) * 1000).astype(dtype)
    info = np.iinfo(dtype)
    return RNG.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)


def message(array_: np.ndarray, encoding: str = "passthrough", **changes) -> SimpleNamespace:
    return SimpleNamespace(**dict(cv2_to_imgmsg(array_, encoding), **changes))


def padded(msg: SimpleNamespace, pad: int) -> SimpleNamespace:
    """The same image with `pad` junk bytes after every row."""
    rows = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)
    junk = np.full((msg.height, pad), 0xAB, np.uint8)
    return SimpleNamespace(**dict(vars(msg), step=msg.step + pad, data=np.hstack([rows, junk]).tobytes()))


def cause_of(call, *args, **kwargs) -> str:
    with pytest.raises(ImageDecodeError) as info:
        call(*args, **kwargs)
    assert info.value.cause in DECODE_CAUSES
    return info.value.cause


# ---- passthrough and round trips -----------------------------------------------------------


@pytest.mark.parametrize("encoding", NAMED + GENERIC)
def test_every_encoding_round_trips_exactly(encoding):
    original = pixels(encoding)
    msg = message(original, encoding)
    assert msg.encoding == encoding
    for decoded in (imgmsg_to_cv2(msg), imgmsg_to_cv2(msg, encoding)):
        assert decoded.dtype == original.dtype and decoded.shape == original.shape
        np.testing.assert_array_equal(decoded, original)


def test_passthrough_is_an_owned_writeable_contiguous_copy():
    original = pixels("bgr8")
    buffer = array.array("B", cv2_to_imgmsg(original)["data"])
    decoded = imgmsg_to_cv2(message(original, data=buffer))
    assert decoded.flags.c_contiguous and decoded.flags.writeable and decoded.flags.owndata
    assert not np.shares_memory(decoded, np.frombuffer(buffer, np.uint8))


@pytest.mark.parametrize("encoding", ["mono8", "mono16", "8UC1", "32FC1", "bayer_rggb8"])
def test_one_channel_images_decode_to_two_dimensions(encoding):
    assert imgmsg_to_cv2(message(pixels(encoding, 3, 5), encoding)).shape == (3, 5)


@pytest.mark.parametrize(
    "encoding, pad", [("mono8", 8), ("mono16", 3), ("bgr8", 5), ("rgba16", 2), ("32FC1", 4), ("64FC3", 7),
                      ("8UC5", 1), ("yuv422", 6)],
)  # fmt: skip
def test_padded_step_is_skipped_and_the_result_is_packed(encoding, pad):
    original = pixels(encoding, 5, 7)
    decoded = imgmsg_to_cv2(padded(message(original, encoding), pad))
    np.testing.assert_array_equal(decoded, original)
    assert decoded.flags.c_contiguous and decoded.strides[0] == decoded.itemsize * original[0].size


def test_a_padded_message_converts_from_its_real_rows():
    bgr = pixels("bgr8", 3, 4)
    np.testing.assert_array_equal(imgmsg_to_cv2(padded(message(bgr, "bgr8"), 4), "rgb8"), bgr[..., ::-1])


@pytest.mark.parametrize(
    "src, dst", [("bgr16", "rgb8"), ("mono16", "bgr8"), ("bayer_rggb16", "bgr16"), ("rgba16", "mono16"),
                 ("16UC3", "8UC3"), ("32FC1", "16UC1")],
)  # fmt: skip
@pytest.mark.parametrize("bigendian", [False, True], ids=["little", "big"])
def test_rows_padded_by_an_odd_byte_count_convert_from_their_values(src, dst, bigendian):
    original = pixels(src, 6, 8)
    stored = original.astype(original.dtype.newbyteorder(">")) if bigendian else original
    msg = padded(message(stored, src), 3)
    np.testing.assert_array_equal(imgmsg_to_cv2(msg, dst), imgmsg_to_cv2(message(original, src), dst))


def test_padded_mono8_rows_like_cv_bridges_step_test():
    msg = SimpleNamespace(
        height=220, width=200, encoding="mono8", is_bigendian=0, step=208, data=bytes(220 * 208)
    )
    decoded = imgmsg_to_cv2(msg, "mono8")
    assert decoded.shape == (220, 200) and decoded.strides == (200, 1)
    assert cause_of(imgmsg_to_cv2, SimpleNamespace(**dict(vars(msg), step=199)), "mono8") == "bad_step"


def test_big_endian_32sc2_decodes_to_native_values_like_cv_bridges_endian_test():
    data = struct.pack(">ii", 1, 2)
    msg = SimpleNamespace(height=1, width=1, encoding="32SC2", is_bigendian=1, step=8, data=data)
    decoded = imgmsg_to_cv2(msg)
    assert decoded.dtype == np.int32 and decoded.dtype.isnative
    np.testing.assert_array_equal(decoded, [[[1, 2]]])


@pytest.mark.parametrize(
    "encoding", ["mono16", "16UC1", "rgb16", "bgra16", "16SC3", "32SC1", "32FC1", "64FC2"]
)
def test_big_endian_padded_messages_decode_to_native_values(encoding):
    original = pixels(encoding, 3, 5)
    msg = padded(message(original.astype(original.dtype.newbyteorder(">")), encoding), 3)
    assert msg.is_bigendian == 1
    decoded = imgmsg_to_cv2(msg)
    assert decoded.dtype.isnative and decoded.flags.c_contiguous
    np.testing.assert_array_equal(decoded, original)


def test_big_endian_mono16_converts_by_value():
    msg = padded(message(np.full((2, 3), 1000, ">u2"), "mono16"), 1)
    assert msg.data[:2] == b"\x03\xe8"
    np.testing.assert_array_equal(imgmsg_to_cv2(msg, "bgr8"), np.full((2, 3, 3), 4))


# ---- cv2_to_imgmsg ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", list(CV_DEPTHS))
@pytest.mark.parametrize("shape, channels", [((3, 4), 1), ((3, 4, 1), 1), ((3, 4, 2), 2), ((3, 4, 3), 3),
                                             ((3, 4, 4), 4), ((3, 4, 5), 5), ((3, 4, 10), 10)])  # fmt: skip
def test_passthrough_names_the_array_type_the_generic_way(dtype, shape, channels):
    depth = {np.uint8: "8U", np.int8: "8S", np.uint16: "16U", np.int16: "16S", np.int32: "32S",
             np.float32: "32F", np.float64: "64F"}[dtype]  # fmt: skip
    fields = cv2_to_imgmsg(np.zeros(shape, dtype))
    itemsize = np.dtype(dtype).itemsize
    assert fields["encoding"] == f"{depth}C{channels}"
    assert (fields["height"], fields["width"], fields["is_bigendian"]) == (3, 4, 0)
    assert fields["step"] == 4 * channels * itemsize and len(fields["data"]) == 3 * fields["step"]


def test_a_non_contiguous_array_is_packed_like_cv_bridges_non_continuous_test():
    partial = np.eye(8, dtype=np.uint16)[:, 2:5]
    fields = cv2_to_imgmsg(partial, "mono16")
    assert (fields["height"], fields["width"], fields["step"], fields["encoding"]) == (8, 3, 6, "mono16")
    np.testing.assert_array_equal(imgmsg_to_cv2(SimpleNamespace(**fields)), partial)


def test_a_big_endian_array_keeps_its_bytes_and_sets_is_bigendian():
    values = RNG.integers(0, 255, (30, 40))
    fields = cv2_to_imgmsg(values.astype(">i4"))
    assert fields["is_bigendian"] == 1 and fields["encoding"] == "32SC1"
    assert fields["data"][:4] == struct.pack(">i", values[0, 0])
    np.testing.assert_array_equal(imgmsg_to_cv2(SimpleNamespace(**fields)), values)


def test_a_little_endian_array_is_not_big_endian():
    fields = cv2_to_imgmsg(np.array([[1, 2]], "<u2"), "mono16")
    assert fields["is_bigendian"] == 0 and fields["data"] == b"\x01\x00\x02\x00"


@pytest.mark.parametrize(
    "shape, dtype, encoding",
    [((2, 3, 3), np.uint8, "rgb8"), ((2, 3, 3), np.uint8, "bgr8"), ((2, 3, 3), np.uint8, "8UC3"),
     ((2, 3), np.uint8, "mono8"), ((2, 3, 1), np.uint8, "mono8"), ((2, 3), np.uint8, "8U"),
     ((2, 4, 2), np.uint8, "yuv422"), ((2, 3), np.uint16, "bayer_grbg16"), ((2, 3, 4), np.uint16, "bgra16"),
     ((2, 3), np.float32, "32FC1"), ((2, 3, 7), np.int16, "16SC7")],
)  # fmt: skip
def test_an_explicit_encoding_is_kept_when_it_holds_the_array_type(shape, dtype, encoding):
    fields = cv2_to_imgmsg(np.ones(shape, dtype), encoding)
    assert fields["encoding"] == encoding


@pytest.mark.parametrize(
    "shape, dtype, encoding",
    [((2, 3, 3), np.uint8, "rgba8"), ((2, 3, 3), np.float32, "bgr8"), ((2, 3), np.uint16, "mono8"),
     ((2, 3, 3), np.uint8, "8UC4"), ((2, 3), np.int16, "16UC1"), ((2, 3, 2), np.uint8, "mono8")],
)  # fmt: skip
def test_an_explicit_encoding_that_does_not_hold_the_array_type_is_refused(shape, dtype, encoding):
    assert cause_of(cv2_to_imgmsg, np.zeros(shape, dtype), encoding) == "incompatible_encoding"


def test_the_incompatible_encoding_error_names_both_types():
    with pytest.raises(ValueError, match=r"encoding rgba8 holds 8UC4 data, but the array is 8UC3"):
        cv2_to_imgmsg(np.zeros((2, 2, 3), np.uint8), "rgba8")


def test_the_header_travels_with_the_fields():
    header = SimpleNamespace(frame_id="cam", stamp=SimpleNamespace(sec=1, nanosec=2))
    assert cv2_to_imgmsg(np.zeros((2, 2), np.uint8), "mono8", header)["header"] is header
    assert "header" not in cv2_to_imgmsg(np.zeros((2, 2), np.uint8))


def test_msg_type_is_filled_with_the_fields_and_data_as_a_byte_array():
    class Image:
        pass

    msg = cv2_to_imgmsg(np.arange(6, dtype=np.uint8).reshape(2, 3), "mono8", "hdr", msg_type=Image)
    assert isinstance(msg, Image) and msg.header == "hdr" and msg.encoding == "mono8" and msg.step == 3
    assert isinstance(msg.data, array.array) and msg.data.tobytes() == bytes(range(6))


def test_msg_type_fills_a_real_sensor_msgs_image():
    sensor_msgs = pytest.importorskip("sensor_msgs.msg")
    std_msgs = pytest.importorskip("std_msgs.msg")
    bgr = pixels("bgr8")
    msg = cv2_to_imgmsg(bgr, "bgr8", std_msgs.Header(frame_id="cam"), msg_type=sensor_msgs.Image)
    assert msg.header.frame_id == "cam" and (msg.height, msg.width, msg.step) == (4, 6, 18)
    np.testing.assert_array_equal(imgmsg_to_cv2(msg, "rgb8"), bgr[..., ::-1])


@pytest.mark.parametrize("not_an_array", [1, [[1, 2], [3, 4]], "image", None])
def test_anything_but_a_numpy_array_is_a_type_error_like_cv_bridge(not_an_array):
    with pytest.raises(TypeError, match="numpy array"):
        cv2_to_imgmsg(not_an_array, "rgba8")


@pytest.mark.parametrize(
    "array_, cause",
    [(np.zeros(5, np.uint8), "bad_shape"), (np.zeros((2, 2, 2, 2), np.uint8), "bad_shape"),
     (np.zeros((0, 4), np.uint8), "empty"), (np.zeros((4, 0, 3), np.uint8), "empty"),
     (np.zeros((2, 2), np.int64), "unsupported_dtype"), (np.zeros((2, 2), np.float16), "unsupported_dtype"),
     (np.zeros((2, 2), bool), "unsupported_dtype"), (np.zeros((2, 2), np.uint32), "unsupported_dtype"),
     (np.zeros((1, 1, 513), np.uint8), "bad_shape")],
)  # fmt: skip
def test_arrays_no_image_can_hold_are_refused(array_, cause):
    assert cause_of(cv2_to_imgmsg, array_) == cause


def test_an_unknown_explicit_encoding_is_refused():
    assert cause_of(cv2_to_imgmsg, np.zeros((2, 2), np.uint8), "mono9") == "unknown_encoding"

"""Specification of CompressedImage conversions: cv_bridge's API and image_transport's compressedDepth.

cv_bridge facts from vision_opencv (conversions.py, test_compression.cpp, core.py); the
compressedDepth layout from image_transport_plugins' compressed_depth_image_transport codec.cpp.
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
    array_to_image_fields,
    compressed_imgmsg_to_cv2,
    compressed_to_rgb8,
    cv2_to_compressed_imgmsg,
    cvt_color,
    image_to_rgb8,
)

RNG = np.random.default_rng(5)


def cause_of(call, *args, **kwargs) -> str:
    with pytest.raises(ImageDecodeError) as info:
        call(*args, **kwargs)
    assert info.value.cause in DECODE_CAUSES
    return info.value.cause


def compressed(array_: np.ndarray, dst_format: str = "png") -> SimpleNamespace:
    return SimpleNamespace(**cv2_to_compressed_imgmsg(array_, dst_format))


def noise(shape, dtype=np.uint8) -> np.ndarray:
    return RNG.integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True)


def smooth(height=40, width=48) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // width, y * 255 // height, np.full_like(x, 90)], axis=2).astype(np.uint8)


# ---- image files -----------------------------------------------------------------------------

LOSSLESS = ["png", "bmp", "dib", "tif", "tiff", "pnm"]
LOSSY = ["jpg", "jpeg", "jpe"]
MAGIC = {"png": b"\x89PNG", "jpg": b"\xff\xd8", "bmp": b"BM", "tiff": b"II*\x00", "sr": b"\x59\xa6\x6a\x95"}


@pytest.mark.parametrize("dst_format", LOSSLESS + LOSSY + ["sr", "ras"])
@pytest.mark.parametrize("shape", [(30, 40), (30, 40, 1), (30, 40, 3)], ids=["HxW", "HxWx1", "HxWx3"])
def test_every_format_cv_bridge_tests_round_trips_its_shape(dst_format, shape):
    original = noise(shape)
    msg = compressed(original, dst_format)
    assert msg.format == dst_format and isinstance(msg.data, bytes)
    decoded = compressed_imgmsg_to_cv2(msg)
    assert decoded.dtype == np.uint8
    assert decoded.shape == (shape if len(shape) == 2 or shape[2] == 3 else shape[:2])


@pytest.mark.parametrize("dst_format", LOSSLESS)
@pytest.mark.parametrize("shape", [(30, 40), (30, 40, 3)], ids=["gray", "bgr"])
def test_lossless_formats_round_trip_exactly(dst_format, shape):
    original = noise(shape)
    np.testing.assert_array_equal(compressed_imgmsg_to_cv2(compressed(original, dst_format)), original)


@pytest.mark.parametrize("dst_format", MAGIC)
def test_the_bytes_are_the_named_file_format(dst_format):
    assert compressed(noise((8, 8, 3)), dst_format).data.startswith(MAGIC[dst_format])


@pytest.mark.parametrize("dst_format", LOSSY)
def test_jpeg_keeps_the_picture(dst_format):
    frame = smooth()
    decoded = compressed_imgmsg_to_cv2(compressed(frame, dst_format))
    assert decoded.shape == frame.shape and np.abs(decoded.astype(int) - frame).mean() < 3


def test_an_rgb_image_comes_back_in_rgb_like_cv_bridges_compression_test():
    rgb = noise((10, 10, 3))
    msg = compressed(cvt_color(rgb, "rgb8", "bgr8"), "png")  # the stream is BGR, as cv_bridge writes it
    np.testing.assert_array_equal(compressed_imgmsg_to_cv2(msg, "rgb8"), rgb)
    np.testing.assert_array_equal(compressed_imgmsg_to_cv2(msg, "bgr8"), rgb[..., ::-1])


def test_png_alpha_is_kept_when_asked_for_and_dropped_otherwise():
    bgra = noise((10, 10, 4))
    msg = compressed(bgra, "png")
    np.testing.assert_array_equal(compressed_imgmsg_to_cv2(msg), bgra)
    np.testing.assert_array_equal(compressed_imgmsg_to_cv2(msg, "bgra8"), bgra)
    np.testing.assert_array_equal(compressed_imgmsg_to_cv2(msg, "rgba8"), bgra[..., [2, 1, 0, 3]])
    np.testing.assert_array_equal(compressed_imgmsg_to_cv2(msg, "bgr8"), bgra[..., :3])


def test_a_gray_stream_stays_two_dimensional_and_converts_to_colour():
    gray = noise((6, 7))
    msg = compressed(gray, "png")
    assert compressed_imgmsg_to_cv2(msg).shape == (6, 7)
    np.testing.assert_array_equal(compressed_imgmsg_to_cv2(msg, "mono8"), gray)
    bgr = compressed_imgmsg_to_cv2(msg, "bgr8")
    np.testing.assert_array_equal(bgr, np.repeat(gray[..., None], 3, axis=2))


def test_16_bit_png_decodes_to_uint16_and_rounds_to_8_bits():
    gray16 = noise((5, 6), np.uint16)
    msg = compressed(gray16, "png")
    decoded = compressed_imgmsg_to_cv2(msg)
    assert decoded.dtype == np.uint16
    np.testing.assert_array_equal(decoded, gray16)
    np.testing.assert_array_equal(compressed_imgmsg_to_cv2(msg, "mono16"), gray16)
    expected = ((gray16.astype(np.int64) * 255 + 32767) // 65535).astype(np.uint8)
    np.testing.assert_array_equal(compressed_imgmsg_to_cv2(msg, "mono8"), expected)
    bgr16 = noise((5, 6, 3), np.uint16)
    rgb16 = compressed_imgmsg_to_cv2(compressed(bgr16, "tiff"), "rgb16")
    np.testing.assert_array_equal(rgb16, bgr16[..., ::-1])


def test_rclpy_style_data_and_message_classes_work():
    class CompressedImage:
        pass

    msg = cv2_to_compressed_imgmsg(noise((4, 4, 3)), "png", msg_type=CompressedImage)
    assert isinstance(msg, CompressedImage) and msg.format == "png" and isinstance(msg.data, array.array)
    assert compressed_imgmsg_to_cv2(msg).shape == (4, 4, 3)


@pytest.mark.parametrize(
    "data, cause",
    [(b"", "empty"), (b"not an image at all", "corrupt_compressed"),
     (b"\xff\xd8\xff\xc0\x00\x11\x08\x00\x10\x00\x10\x03" + b"\x00" * 40, "corrupt_compressed")],
)  # fmt: skip
def test_bad_compressed_bytes_raise_with_a_stable_cause(data, cause):
    assert cause_of(compressed_imgmsg_to_cv2, SimpleNamespace(format="jpeg", data=data)) == cause


def test_a_truncated_png_is_corrupt():
    data = compressed(smooth(), "png").data
    assert cause_of(compressed_imgmsg_to_cv2, SimpleNamespace(format="png", data=data[: len(data) // 2])) == (
        "corrupt_compressed"
    )


def test_a_huge_png_header_is_refused_before_decoding():
    ihdr = struct.pack(">II", 100_000, 100_000) + b"\x08\x02\x00\x00\x00"
    png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + b"\x00" * 4
    assert cause_of(compressed_imgmsg_to_cv2, SimpleNamespace(format="png", data=png)) == "too_large"


def test_max_pixels_applies_to_formats_without_a_readable_header_once_decoded():
    msg = compressed(noise((4, 6)), "bmp")
    assert cause_of(compressed_imgmsg_to_cv2, msg, max_pixels=23) == "too_large"
    assert compressed_imgmsg_to_cv2(msg, max_pixels=24).shape == (4, 6)


def test_a_desired_encoding_the_stream_cannot_reach_is_refused():
    msg = compressed(noise((4, 6)), "png")
    assert cause_of(compressed_imgmsg_to_cv2, msg, "yuv422") == "unsupported_conversion"
    assert cause_of(compressed_imgmsg_to_cv2, msg, "mono9") == "unknown_encoding"


@pytest.mark.parametrize(
    "array_, dst_format, cause",
    [(np.zeros((4, 4, 3), np.uint8), "xyz", "unsupported_format"),
     (np.zeros((4, 4, 2), np.uint8), "png", "incompatible_encoding"),
     (np.zeros((4, 4, 3), np.uint8), "pgm", "incompatible_encoding"),
     (np.zeros((0, 4), np.uint8), "png", "empty")],
)  # fmt: skip
def test_arrays_a_format_cannot_hold_are_refused(array_, dst_format, cause):
    assert cause_of(cv2_to_compressed_imgmsg, array_, dst_format) == cause


def test_compressing_anything_but_a_numpy_array_is_a_type_error():
    with pytest.raises(TypeError, match="numpy array"):
        cv2_to_compressed_imgmsg([[1, 2]], "png")


# ---- compressedDepth -------------------------------------------------------------------------


def compressed_depth(depth: np.ndarray, encoding: str, depth_max=10.0, quantization=100.0, fmt=None):
    """What compressed_depth_image_transport publishes: ConfigHeader (int32 format, float32[2]) + PNG.

    32FC1 is quantised as inverse depth, q = A / d + B truncated to uint16, 0 past depth_max or
    for NaN, with A = z0 (z0 + 1), B = 1 - A / depth_max; 16UC1 is stored as is, 0 past depth_max.
    """
    if encoding == "32FC1":
        quant_a = np.float32(quantization) * (np.float32(quantization) + np.float32(1.0))
        quant_b = np.float32(1.0) - quant_a / np.float32(depth_max)
        with np.errstate(invalid="ignore", divide="ignore"):
            inverse = np.where(depth < depth_max, quant_a / depth + quant_b, 0)
        image, params = inverse.astype(np.uint16), (float(quant_a), float(quant_b))
    else:
        image, params = np.where(depth > depth_max * 1000, 0, depth).astype(np.uint16), (0.0, 0.0)
    png = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 3])[1].tobytes()
    data = struct.pack("<iff", 0, *params) + png
    return SimpleNamespace(format=fmt or f"{encoding}; compressedDepth png", data=array.array("B", data))


@pytest.mark.parametrize("encoding", ["16UC1", "mono16"])
def test_16_bit_compressed_depth_round_trips_exactly(encoding):
    depth = RNG.integers(0, 10_000, (6, 8), dtype=np.uint16, endpoint=True)
    decoded = compressed_imgmsg_to_cv2(compressed_depth(depth, encoding))
    assert decoded.dtype == np.uint16 and decoded.shape == (6, 8)
    np.testing.assert_array_equal(decoded, depth)


def test_16_bit_compressed_depth_converts_like_a_16uc1_image():
    msg = compressed_depth(np.array([[0, 1000, 9000]], np.uint16), "16UC1")
    np.testing.assert_array_equal(compressed_imgmsg_to_cv2(msg, "8UC1"), [[0, 4, 35]])
    np.testing.assert_array_equal(compressed_imgmsg_to_cv2(msg, "32FC1"), [[0.0, 1000.0, 9000.0]])
    assert cause_of(compressed_imgmsg_to_cv2, msg, "mono8") == "unsupported_conversion"
    mono = compressed_depth(np.array([[0, 1000, 9000]], np.uint16), "mono16")
    np.testing.assert_array_equal(compressed_imgmsg_to_cv2(mono, "mono8"), [[0, 4, 35]])


def test_32fc1_compressed_depth_is_exact_where_the_inverse_depth_is_an_integer():
    depth = np.array([[0.25, 0.5, 1.0], [2.0, 4.0, 5.0]], np.float32)  # A = 10100 divides by each
    decoded = compressed_imgmsg_to_cv2(compressed_depth(depth, "32FC1"))
    assert decoded.dtype == np.float32 and decoded.shape == (2, 3)
    np.testing.assert_array_equal(decoded, depth)


def test_32fc1_compressed_depth_is_within_its_quantisation_step():
    depth = RNG.uniform(0.3, 9.9, (20, 30)).astype(np.float32)
    decoded = compressed_imgmsg_to_cv2(compressed_depth(depth, "32FC1"))
    quant_a = 100.0 * 101.0
    error = decoded.astype(np.float64) - depth  # truncating A / d + B can only overestimate d
    assert (error > -1e-5).all() and (error < depth.astype(np.float64) ** 2 / (quant_a - depth) + 1e-5).all()


def test_32fc1_compressed_depth_has_nan_where_there_was_no_depth():
    depth = np.array([[np.nan, 10.0, 12.0, 1.0]], np.float32)  # NaN and >= depth_max are coded 0
    decoded = compressed_imgmsg_to_cv2(compressed_depth(depth, "32FC1"))
    assert np.isnan(decoded[0, :3]).all() and decoded[0, 3] == 1.0


@pytest.mark.parametrize(
    "fmt", ["32FC1; compressedDepth", "32FC1; compressedDepth png", "32FC1;compressedDepth png"]
)
def test_a_compressed_depth_format_without_or_with_png_is_png(fmt):
    depth = np.full((2, 2), 2.0, np.float32)
    np.testing.assert_array_equal(compressed_imgmsg_to_cv2(compressed_depth(depth, "32FC1", fmt=fmt)), depth)


EIGHT_BIT_PNG = cv2.imencode(".png", np.zeros((2, 2), np.uint8))[1].tobytes()


@pytest.mark.parametrize(
    "fmt, data, cause",
    [("32FC1; compressedDepth rvl", b"\x00" * 40, "unsupported_format"),
     ("32FC1; compressedDepth jpeg", b"\x00" * 40, "unsupported_format"),
     ("8UC1; compressedDepth png", b"\x00" * 40, "unsupported_format"),
     ("compressedDepth", b"\x00" * 40, "unsupported_format"),
     ("16UC1; compressedDepth png", b"", "empty"),
     ("16UC1; compressedDepth png", b"\x00" * 12, "corrupt_compressed"),
     ("16UC1; compressedDepth png", b"\x00" * 12 + b"garbage", "corrupt_compressed"),
     ("16UC1; compressedDepth png", b"\x00" * 12 + EIGHT_BIT_PNG, "corrupt_compressed")],
)  # fmt: skip
def test_compressed_depth_that_cannot_be_decoded_raises_with_a_stable_cause(fmt, data, cause):
    assert cause_of(compressed_imgmsg_to_cv2, SimpleNamespace(format=fmt, data=data)) == cause


def test_rvl_is_refused_with_a_hint():
    msg = SimpleNamespace(format="16UC1; compressedDepth rvl", data=b"\x00" * 40)
    with pytest.raises(ValueError, match=r"compressedDepth rvl is not supported; rvl is not decoded here"):
        compressed_imgmsg_to_cv2(msg)


# ---- compressedDepth on the model path ---------------------------------------------------------


@pytest.mark.parametrize(
    "encoding, depth",
    [("16UC1", np.array([[0, 1000], [2000, 3000]], np.uint16)),
     ("mono16", np.array([[0, 1000], [2000, 3000]], np.uint16)),
     ("32FC1", np.array([[0.5, 1.0], [np.nan, 4.0]], np.float32))],
)  # fmt: skip
def test_the_model_path_shows_compressed_depth_like_the_same_raw_image(encoding, depth):
    rgb = compressed_to_rgb8(compressed_depth(depth, encoding))
    raw = image_to_rgb8(SimpleNamespace(**array_to_image_fields(depth, encoding)))
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb, raw)


def test_the_model_path_stretches_16uc1_compressed_depth_over_its_range():
    rgb = compressed_to_rgb8(compressed_depth(np.array([[0, 1000], [2000, 3000]], np.uint16), "16UC1"))
    np.testing.assert_array_equal(rgb[..., 0], [[0, 85], [170, 255]])


def test_the_model_path_refuses_rvl_and_huge_depth_before_decoding():
    rvl = SimpleNamespace(format="32FC1; compressedDepth rvl", data=b"\x00" * 40)
    assert cause_of(compressed_to_rgb8, rvl) == "unsupported_format"
    ihdr = struct.pack(">II", 100_000, 100_000) + b"\x10\x00\x00\x00\x00"
    png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + b"\x00" * 4
    bomb = SimpleNamespace(format="16UC1; compressedDepth png", data=b"\x00" * 12 + png)
    assert cause_of(compressed_to_rgb8, bomb) == "too_large"
    strip = compressed_depth(np.ones((2, 200), np.uint16), "16UC1")
    assert cause_of(compressed_to_rgb8, strip, max_aspect=20.0) == "bad_aspect"

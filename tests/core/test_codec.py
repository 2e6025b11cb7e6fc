"""Specification of the image codec: sensor_msgs fields <-> numpy, cv_bridge encodings."""

from __future__ import annotations

import array
import struct
import warnings
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from cosmos_ros.core.codec import (
    DECODE_CAUSES,
    ImageDecodeError,
    array_to_image_fields,
    compressed_to_rgb8,
    encoding_info,
    image_to_array,
    image_to_rgb8,
    rgb8_to_compressed_fields,
    stamp_seconds,
    time_seconds,
)

RNG = np.random.default_rng(0)

ENCODINGS = [
    "mono8", "mono16", "rgb8", "bgr8", "rgba8", "bgra8", "rgb16", "bgr16", "rgba16", "bgra16",
    "8UC1", "8UC3", "8UC4", "16UC1", "16SC1", "32FC1", "32SC1", "64FC1", "32FC3",
    "yuv422", "uyvy", "yuv422_yuy2", "yuyv",
    "bayer_rggb8", "bayer_bggr8", "bayer_gbrg8", "bayer_grbg8",
    "bayer_rggb16", "bayer_bggr16", "bayer_gbrg16", "bayer_grbg16",
]


def image_msg(**fields) -> SimpleNamespace:
    return SimpleNamespace(**fields)


def random_array(encoding: str, height: int = 4, width: int = 6) -> np.ndarray:
    dtype, channels = encoding_info(encoding)
    shape = (height, width) if channels == 1 else (height, width, channels)
    if dtype.kind == "f":
        return RNG.standard_normal(shape).astype(dtype)
    info = np.iinfo(dtype)
    return RNG.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)


def padded(fields: dict, pad: int) -> dict:
    """The same image with `pad` junk bytes after every row."""
    rows = np.frombuffer(fields["data"], np.uint8).reshape(fields["height"], fields["step"])
    junk = np.full((fields["height"], pad), 0xAB, np.uint8)
    return dict(fields, step=fields["step"] + pad, data=np.hstack([rows, junk]).tobytes())


def cause_of(call, *args, **kwargs) -> str:
    with pytest.raises(ImageDecodeError) as info:
        call(*args, **kwargs)
    return info.value.cause


# ---- native layout ----------------------------------------------------------


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_encoding_round_trips_through_message_fields(encoding):
    original = random_array(encoding)
    fields = array_to_image_fields(original, encoding)
    decoded = image_to_array(image_msg(**fields))
    assert decoded.dtype == original.dtype
    np.testing.assert_array_equal(decoded, original)


@pytest.mark.parametrize("encoding", ["mono8", "bgr8", "rgba8", "mono16", "rgb16", "32FC1", "yuv422"])
def test_padded_rows_are_skipped_using_step(encoding):
    original = random_array(encoding, height=5, width=7)
    fields = padded(array_to_image_fields(original, encoding), pad=3)
    np.testing.assert_array_equal(image_to_array(image_msg(**fields)), original)


@pytest.mark.parametrize("encoding", ["mono16", "16UC1", "rgb16", "16SC1", "32FC1", "64FC1"])
def test_big_endian_data_decodes_to_native_values(encoding):
    original = random_array(encoding)
    fields = array_to_image_fields(original, encoding, bigendian=True)
    assert fields["is_bigendian"] == 1
    decoded = image_to_array(image_msg(**fields))
    assert decoded.dtype.isnative
    np.testing.assert_array_equal(decoded, original)


def test_big_endian_bytes_are_most_significant_first():
    fields = array_to_image_fields(np.array([[0x0102]], np.uint16), "mono16", bigendian=True)
    assert fields["data"] == b"\x01\x02"


def test_big_endian_flag_is_ignored_for_8_bit_data():
    fields = array_to_image_fields(random_array("bgr8"), "bgr8")
    flipped = image_to_array(image_msg(**dict(fields, is_bigendian=1)))
    np.testing.assert_array_equal(flipped, image_to_array(image_msg(**fields)))


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview, lambda b: array.array("B", b), list])
def test_data_may_be_any_byte_container(wrap):
    original = random_array("rgb8")
    fields = array_to_image_fields(original, "rgb8")
    decoded = image_to_array(image_msg(**dict(fields, data=wrap(fields["data"]))))
    np.testing.assert_array_equal(decoded, original)


def test_image_to_array_is_a_view_of_the_message_buffer():
    fields = array_to_image_fields(random_array("bgr8"), "bgr8")
    buffer = array.array("B", fields["data"])
    view = image_to_array(image_msg(**dict(fields, data=buffer)))
    assert np.shares_memory(view, np.frombuffer(buffer, np.uint8))


def test_array_to_image_fields_rejects_a_dtype_that_does_not_fit_the_encoding():
    with pytest.raises(ValueError, match="mono16"):
        array_to_image_fields(np.zeros((2, 2), np.uint8), "mono16")


def test_array_to_image_fields_rejects_a_wrong_channel_count():
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        array_to_image_fields(np.zeros((2, 2, 4), np.uint8), "bgr8")


def test_stamp_seconds_joins_sec_and_nanosec():
    msg = SimpleNamespace(header=SimpleNamespace(stamp=SimpleNamespace(sec=12, nanosec=500_000_000)))
    assert stamp_seconds(msg) == 12.5


def test_time_seconds_reads_a_time_message_and_a_recorded_pair_alike():
    assert time_seconds(SimpleNamespace(sec=1796282771, nanosec=9_534_202)) == 1796282771.009534202
    pair = [1796282771, 9_534_202]
    assert time_seconds(pair) == time_seconds(tuple(pair)) == 1796282771.009534202


# ---- to RGB ------------------------------------------------------------------


def rgb_of(array_, encoding, **kw):
    return image_to_rgb8(image_msg(**array_to_image_fields(array_, encoding, **kw)))


def test_rgb8_is_returned_as_an_owned_contiguous_copy():
    original = random_array("rgb8")
    fields = array_to_image_fields(original, "rgb8")
    buffer = array.array("B", fields["data"])
    rgb = image_to_rgb8(image_msg(**dict(fields, data=buffer)))
    np.testing.assert_array_equal(rgb, original)
    assert rgb.flags.c_contiguous and rgb.flags.writeable
    assert not np.shares_memory(rgb, np.frombuffer(buffer, np.uint8))


def to_8_bits(values: np.ndarray) -> np.ndarray:
    """cv_bridge's 16 -> 8 bit rule, round(v * 255 / 65535), in exact integer arithmetic."""
    return ((values.astype(np.int64) * 255 + 32767) // 65535).astype(np.uint8)


@pytest.mark.parametrize("encoding", ["bgr8", "bgr16"])
def test_bgr_channels_are_reversed(encoding):
    bgr = random_array(encoding)
    expected = bgr[..., ::-1] if bgr.dtype == np.uint8 else to_8_bits(bgr[..., ::-1])
    np.testing.assert_array_equal(rgb_of(bgr, encoding), expected)


@pytest.mark.parametrize("encoding, order", [("rgba8", [0, 1, 2]), ("bgra8", [2, 1, 0]), ("8UC4", [0, 1, 2])])
def test_alpha_is_dropped(encoding, order):
    pixels = random_array(encoding)
    np.testing.assert_array_equal(rgb_of(pixels, encoding), pixels[..., order])


@pytest.mark.parametrize("encoding", ["mono8", "8UC1"])
def test_mono_becomes_gray_rgb(encoding):
    gray = random_array(encoding)
    np.testing.assert_array_equal(rgb_of(gray, encoding), np.repeat(gray[..., None], 3, axis=2))


def test_8uc3_is_taken_as_rgb_without_swapping_like_cv_bridge():
    pixels = random_array("8UC3")
    np.testing.assert_array_equal(rgb_of(pixels, "8UC3"), pixels)


@pytest.mark.parametrize("encoding", ["mono16", "rgb16", "rgba16"])
def test_named_16_bit_encodings_are_rounded_to_8_bits_like_cv_bridge(encoding):
    pixels = random_array(encoding)
    scaled = to_8_bits(pixels)
    expected = np.repeat(scaled[..., None], 3, axis=2) if scaled.ndim == 2 else scaled[..., :3]
    np.testing.assert_array_equal(rgb_of(pixels, encoding), expected)


@pytest.mark.parametrize("encoding", ["mono16", "rgb16", "bgra16"])
def test_padded_big_endian_16_bit_rows_convert_from_their_values(encoding):
    pixels = random_array(encoding, height=5, width=7)
    for bigendian in (False, True):
        fields = padded(array_to_image_fields(pixels, encoding, bigendian=bigendian), pad=3)
        direct = rgb_of(pixels, encoding)
        np.testing.assert_array_equal(image_to_rgb8(image_msg(**fields)), direct)


def test_16_bit_rounding_over_the_full_range_differs_from_the_old_top_byte_by_at_most_one():
    ramp = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    gray = rgb_of(ramp, "mono16")[..., 0]
    np.testing.assert_array_equal(gray, to_8_bits(ramp))
    assert gray[0, 0] == 0 and gray[-1, -1] == 255 and gray.flat[1000] == 4  # 1000 * 255 / 65535 = 3.89
    assert np.abs(gray.astype(int) - (ramp >> 8)).max() == 1


def test_16uc1_depth_is_stretched_over_its_range():
    depth = np.array([[1000, 2000], [3000, 1000]], np.uint16)
    rgb = rgb_of(depth, "16UC1")
    np.testing.assert_array_equal(rgb[..., 0], [[0, 128], [255, 0]])  # 127.5 rounds half to even


def test_depth_stretch_rounds_to_the_nearest_level_like_cv_bridges_display_scaling():
    rgb = rgb_of(np.array([[0, 1, 8]], np.uint16), "16UC1")
    np.testing.assert_array_equal(rgb[..., 0], [[0, 32, 255]])  # 255 / 8 = 31.875; truncating gave 31


def test_32fc1_is_normalized_and_nan_inf_become_black_without_warnings():
    depth = np.array([[0.5, 1.5, np.nan], [np.inf, -np.inf, 2.5]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rgb = rgb_of(depth, "32FC1")
    np.testing.assert_array_equal(rgb[..., 1], [[0, 128, 0], [0, 0, 255]])


def test_all_nan_32fc1_is_black():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rgb = rgb_of(np.full((2, 3), np.nan, np.float32), "32FC1")
    assert rgb.shape == (2, 3, 3) and not rgb.any()


def test_constant_32fc1_is_black():
    assert not rgb_of(np.full((2, 2), 7.0, np.float32), "32FC1").any()


def bt601_rgb(y: int, u: int, v: int) -> np.ndarray:
    """Limited-range BT.601 YCbCr -> RGB, the reference OpenCV's YUV422 conversions follow."""
    c, d, e = y - 16, u - 128, v - 128
    rgb = [1.164 * c + 1.596 * e, 1.164 * c - 0.392 * d - 0.813 * e, 1.164 * c + 2.017 * d]
    return np.clip(np.round(rgb), 0, 255)


@pytest.mark.parametrize(
    "encoding, layout", [("yuv422", "UYVY"), ("uyvy", "UYVY"), ("yuv422_yuy2", "YUYV"), ("yuyv", "YUYV")]
)
def test_yuv422_orange_matches_the_bt601_formula(encoding, layout):
    y, u, v = 150, 60, 200  # an orange
    pair = {"UYVY": [u, y, v, y], "YUYV": [y, u, y, v]}[layout]
    packed = np.tile(np.array(pair, np.uint8), (2, 2)).reshape(2, 4, 2)  # (H, W, 2)
    rgb = rgb_of(packed, encoding)
    assert rgb.shape == (2, 4, 3)
    assert np.abs(rgb.astype(int) - bt601_rgb(y, u, v)).max() <= 2


def test_yuv422_with_odd_width_is_a_bad_shape():
    packed = np.zeros((2, 3, 2), np.uint8)
    assert cause_of(image_to_rgb8, image_msg(**array_to_image_fields(packed, "yuv422"))) == "bad_shape"


def bayer_mosaic(pattern: str, rgb: tuple[int, int, int], size: int = 8, dtype=np.uint8) -> np.ndarray:
    """A flat-colour image as a Bayer sensor with `pattern` (e.g. 'rggb') records it."""
    value = {"r": rgb[0], "g": rgb[1], "b": rgb[2]}
    mosaic = np.empty((size, size), dtype)
    for i, channel in enumerate(pattern):
        mosaic[i // 2 :: 2, i % 2 :: 2] = value[channel]
    return mosaic


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
@pytest.mark.parametrize("colour", [(220, 30, 10), (10, 220, 30), (30, 10, 220)])
def test_bayer_demosaic_recovers_a_flat_colour(pattern, colour):
    rgb = rgb_of(bayer_mosaic(pattern, colour), f"bayer_{pattern}8")
    interior = rgb[2:-2, 2:-2].reshape(-1, 3)
    assert np.abs(interior.astype(int) - colour).max() <= 2


@pytest.mark.parametrize("pattern", ["rggb", "grbg"])
def test_16_bit_bayer_is_demosaiced_from_its_top_8_bits(pattern):
    mosaic = bayer_mosaic(pattern, (220 << 8, 30 << 8, 10 << 8), dtype=np.uint16)
    interior = rgb_of(mosaic, f"bayer_{pattern}16")[2:-2, 2:-2].reshape(-1, 3)
    assert np.abs(interior.astype(int) - (220, 30, 10)).max() <= 2


# ---- invalid messages --------------------------------------------------------


def good_fields(encoding="bgr8", height=4, width=6) -> dict:
    return array_to_image_fields(random_array(encoding, height, width), encoding)


@pytest.mark.parametrize(
    "change, cause",
    [
        ({"encoding": "bgr9"}, "unknown_encoding"),
        ({"encoding": ""}, "unknown_encoding"),
        ({"height": 0, "width": 0, "step": 0, "data": b""}, "empty"),
        ({"width": 0}, "empty"),
        ({"height": 16384, "width": 16384, "step": 16384 * 3, "data": b""}, "too_large"),
        ({"step": 6 * 3 - 1}, "bad_step"),
        ({"data": b"\x00" * (4 * 18 - 1)}, "size_mismatch"),
        ({"data": b"\x00" * (4 * 18 + 1)}, "size_mismatch"),
        ({"data": b""}, "size_mismatch"),
        ({"data": object()}, "bad_data"),
    ],
)
def test_malformed_images_raise_with_a_stable_cause(change, cause):
    msg = image_msg(**dict(good_fields(), **change))
    assert cause_of(image_to_array, msg) == cause
    assert cause_of(image_to_rgb8, msg) == cause
    assert cause in DECODE_CAUSES


def test_decode_errors_are_value_errors_that_name_what_was_expected():
    msg = image_msg(**dict(good_fields(), step=10))
    with pytest.raises(ValueError, match=r"step 10 is shorter than one row: width 6 x 3 bytes = 18"):
        image_to_array(msg)


def test_max_pixels_is_configurable():
    msg = image_msg(**good_fields(height=4, width=6))
    assert cause_of(image_to_rgb8, msg, max_pixels=23) == "too_large"
    assert image_to_rgb8(msg, max_pixels=24).shape == (4, 6, 3)


def test_two_channel_data_has_no_rgb_meaning():
    msg = image_msg(**array_to_image_fields(np.zeros((2, 2, 2), np.uint8), "8UC2"))
    assert image_to_array(msg).shape == (2, 2, 2)
    assert cause_of(image_to_rgb8, msg) == "unsupported_encoding"


def test_data_with_more_than_four_channels_decodes_but_has_no_rgb_meaning():
    msg = image_msg(**array_to_image_fields(np.zeros((2, 2, 5), np.uint8), "8UC5"))
    assert image_to_array(msg).shape == (2, 2, 5)
    with pytest.raises(ImageDecodeError, match="8UC5 has 5 channels and no RGB meaning"):
        image_to_rgb8(msg)


# ---- compressed --------------------------------------------------------------


def smooth_rgb(height=48, width=64) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // width, y * 255 // height, np.full_like(x, 90)], axis=2).astype(np.uint8)


def test_png_round_trip_is_exact_and_names_the_format_like_image_transport():
    frame = smooth_rgb()
    fields = rgb8_to_compressed_fields(frame, fmt="png")
    assert fields["format"] == "rgb8; png compressed bgr8"
    np.testing.assert_array_equal(compressed_to_rgb8(SimpleNamespace(**fields)), frame)


def test_jpeg_round_trip_keeps_colours():
    frame = smooth_rgb()
    fields = rgb8_to_compressed_fields(frame, fmt="jpeg", quality=95)
    assert fields["format"] == "rgb8; jpeg compressed bgr8"
    decoded = compressed_to_rgb8(SimpleNamespace(**fields))
    assert decoded.shape == frame.shape
    assert np.abs(decoded.astype(int) - frame).mean() < 3


@pytest.mark.parametrize("fmt", ["jpeg", "bgr8; jpeg compressed bgr8"])
def test_compressed_bgr_stream_from_opencv_decodes_to_rgb(fmt):
    red_bgr = np.zeros((16, 16, 3), np.uint8)
    red_bgr[..., 2] = 255
    data = cv2.imencode(".jpg", red_bgr)[1].tobytes()
    rgb = compressed_to_rgb8(SimpleNamespace(format=fmt, data=array.array("B", data)))
    assert rgb[8, 8, 0] > 240 and rgb[8, 8, 2] < 15


def test_compressed_gray_and_16_bit_png_become_gray_rgb():
    gray16 = np.full((4, 5), 0x8000, np.uint16)
    data = cv2.imencode(".png", gray16)[1].tobytes()
    rgb = compressed_to_rgb8(SimpleNamespace(format="mono16; png compressed mono16", data=data))
    assert rgb.shape == (4, 5, 3) and (rgb == 128).all()


@pytest.mark.parametrize(
    "data, fmt, cause",
    [
        (b"", "jpeg", "empty"),
        (b"not an image at all", "jpeg", "corrupt_compressed"),
        (b"\xff\xd8\xff\xc0\x00\x11\x08\x00\x10\x00\x10\x03" + b"\x00" * 40, "jpeg", "corrupt_compressed"),
        (b"\x00" * 16, "32FC1; compressedDepth rvl", "unsupported_format"),
        (b"\x00" * 16, "32FC1; compressedDepth png", "corrupt_compressed"),
    ],
)
def test_bad_compressed_images_raise_with_a_stable_cause(data, fmt, cause):
    assert cause_of(compressed_to_rgb8, SimpleNamespace(format=fmt, data=data)) == cause
    assert cause in DECODE_CAUSES


def test_truncated_png_is_corrupt():
    data = rgb8_to_compressed_fields(smooth_rgb(), fmt="png")["data"]
    truncated = SimpleNamespace(format="png", data=data[: len(data) // 2])
    assert cause_of(compressed_to_rgb8, truncated) == "corrupt_compressed"


def test_huge_compressed_header_is_refused_before_decoding():
    ihdr = struct.pack(">II", 100_000, 100_000) + b"\x08\x02\x00\x00\x00"
    png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + b"\x00" * 4
    assert cause_of(compressed_to_rgb8, SimpleNamespace(format="png", data=png)) == "too_large"


def test_huge_jpeg_header_is_refused_before_decoding():
    frame = rgb8_to_compressed_fields(smooth_rgb(16, 16), fmt="jpeg")["data"]
    sof = frame.index(b"\xff\xc0")
    bomb = frame[: sof + 5] + struct.pack(">HH", 60_000, 60_000) + frame[sof + 9 :]
    assert cause_of(compressed_to_rgb8, SimpleNamespace(format="jpeg", data=bomb)) == "too_large"


# ---- scaling on decode ----------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["bgr8", "rgb8", "rgba8", "mono8", "bayer_rggb8", "yuv422", "16UC1"])
def test_max_side_scales_the_longer_side_and_keeps_the_aspect(encoding):
    fields = array_to_image_fields(random_array(encoding, 120, 200), encoding)
    rgb = image_to_rgb8(image_msg(**fields), max_side=50)
    assert rgb.shape == (30, 50, 3) and rgb.dtype == np.uint8 and rgb.flags.c_contiguous


def test_max_side_keeps_colours_of_a_flat_bgr_frame():
    frame = np.zeros((360, 640, 3), np.uint8)
    frame[...] = (10, 120, 230)  # B, G, R
    rgb = image_to_rgb8(image_msg(**array_to_image_fields(frame, "bgr8")), max_side=64)
    assert rgb.shape == (36, 64, 3)
    assert (rgb == (230, 120, 10)).all()


def test_max_side_leaves_small_frames_untouched_and_owning_their_memory():
    frame = random_array("rgb8", 20, 30)
    msg = image_msg(**array_to_image_fields(frame, "rgb8"))
    rgb = image_to_rgb8(msg, max_side=64)
    assert rgb.shape == (20, 30, 3) and (rgb == frame).all() and rgb.base is None


def test_compressed_frames_are_scaled_on_decode():
    frame = np.full((100, 400, 3), 200, np.uint8)
    fields = rgb8_to_compressed_fields(frame, "png")
    rgb = compressed_to_rgb8(SimpleNamespace(**fields), max_side=100)
    assert rgb.shape == (25, 100, 3) and (rgb == 200).all()


# ---- shape sanity on arrival ----------------------------------------------------------------


@pytest.mark.parametrize(
    "height, width, cause",
    [(1, 100_000, "bad_aspect"), (4000, 10, "bad_aspect"), (4, 64, "too_small")],
    ids=["100000x1", "10x4000", "64x4"],
)
def test_absurdly_shaped_images_are_refused_on_arrival(height, width, cause):
    msg = image_msg(**array_to_image_fields(np.zeros((height, width, 3), np.uint8), "bgr8"))
    assert cause_of(image_to_rgb8, msg, max_side=640, min_side=8, max_aspect=20.0) == cause
    assert cause in DECODE_CAUSES


def test_absurdly_shaped_compressed_images_are_refused_before_decoding():
    fields = rgb8_to_compressed_fields(np.zeros((2, 600, 3), np.uint8), "png")
    msg = SimpleNamespace(**fields)
    assert cause_of(compressed_to_rgb8, msg, max_aspect=20.0) == "bad_aspect"
    assert cause_of(compressed_to_rgb8, msg, min_side=8) == "too_small"


def test_the_aspect_limit_is_inclusive_and_off_by_default():
    msg = image_msg(**array_to_image_fields(np.zeros((10, 200, 3), np.uint8), "bgr8"))
    assert image_to_rgb8(msg, max_aspect=20.0).shape == (10, 200, 3)
    strip = image_msg(**array_to_image_fields(np.zeros((1, 500, 3), np.uint8), "bgr8"))
    assert image_to_rgb8(strip).shape == (1, 500, 3)


@pytest.mark.parametrize("size", [(448, 252), (640, 360), (1000, 563), (97, 55)])
def test_downscale_matches_a_one_step_box_average_at_a_fraction_of_its_cost(size):
    import cv2

    from cosmos_ros.core.codec.model import downscale

    rng = np.random.default_rng(0)
    frame = cv2.GaussianBlur(rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8), (0, 0), 3)  # camera-like
    out = downscale(frame, size)
    assert out.shape == (size[1], size[0], 3) and out.dtype == np.uint8
    area = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    assert np.abs(out.astype(int) - area).mean() < 1.5  # of 255
    if 1280 % size[0] == 0 and 720 % size[1] == 0:  # a whole factor: exactly the box average
        assert np.array_equal(out, area)
    flat = np.full((720, 1280, 3), 77, np.uint8)
    assert (downscale(flat, size) == 77).all()

"""Specification of desired_encoding: cv_bridge's conversion rules, values and rounding.

The rules are cv_bridge's getConversionCode / toCvCopyImpl (vision_opencv cv_bridge.cpp); the
refusals mirror utest2.cpp and conversions.py, the 16-bit value utest.cpp's ChannelOrder test.
"""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from cosmos_ros.core.codec import DECODE_CAUSES, ImageDecodeError, cv2_to_imgmsg, cvt_color, imgmsg_to_cv2

RNG = np.random.default_rng(11)


def message(array_: np.ndarray, encoding: str = "passthrough") -> SimpleNamespace:
    return SimpleNamespace(**cv2_to_imgmsg(array_, encoding))


def convert(array_: np.ndarray, src: str, dst: str) -> np.ndarray:
    return imgmsg_to_cv2(message(array_, src), dst)


def cause_of(call, *args, **kwargs) -> str:
    with pytest.raises(ImageDecodeError) as info:
        call(*args, **kwargs)
    assert info.value.cause in DECODE_CAUSES
    return info.value.cause


def to_8_bits(values: np.ndarray) -> np.ndarray:
    """round(v * 255 / 65535) in exact integer arithmetic (no ties: v / 257 is never k + 1/2)."""
    return ((values.astype(np.int64) * 255 + 32767) // 65535).astype(np.uint8)


BGR = RNG.integers(0, 256, (3, 4, 3), dtype=np.uint8)
BGRA = RNG.integers(0, 256, (3, 4, 4), dtype=np.uint8)


# ---- colour order, alpha, mono -------------------------------------------------------------


@pytest.mark.parametrize(
    "src, source, dst, expected",
    [("bgr8", BGR, "rgb8", BGR[..., ::-1]), ("rgb8", BGR, "bgr8", BGR[..., ::-1]),
     ("bgr8", BGR, "bgr8", BGR), ("bgra8", BGRA, "rgba8", BGRA[..., [2, 1, 0, 3]]),
     ("bgra8", BGRA, "rgb8", BGRA[..., [2, 1, 0]]), ("rgba8", BGRA, "rgb8", BGRA[..., :3]),
     ("bgra8", BGRA, "bgr8", BGRA[..., :3]), ("bgr8", BGR, "8UC3", BGR)],
)  # fmt: skip
def test_colour_order_and_alpha(src, source, dst, expected):
    np.testing.assert_array_equal(convert(source, src, dst), expected)


def test_adding_alpha_makes_it_opaque():
    rgba = convert(BGR, "bgr8", "rgba8")
    np.testing.assert_array_equal(rgba[..., :3], BGR[..., ::-1])
    assert (rgba[..., 3] == 255).all()


def test_mono_is_repeated_into_every_colour_channel():
    gray = RNG.integers(0, 256, (3, 4), dtype=np.uint8)
    np.testing.assert_array_equal(convert(gray, "mono8", "bgr8"), np.repeat(gray[..., None], 3, axis=2))
    bgra = convert(gray, "mono8", "bgra8")
    np.testing.assert_array_equal(bgra[..., 0], gray)
    assert (bgra[..., 3] == 255).all()


@pytest.mark.parametrize(
    "bgr, gray", [((0, 0, 255), 76), ((0, 255, 0), 150), ((255, 0, 0), 29), ((9, 9, 9), 9)]
)
def test_colour_to_mono_weighs_channels_like_bt601(bgr, gray):
    image = np.full((2, 2, 3), bgr, np.uint8)
    assert (convert(image, "bgr8", "mono8") == gray).all()
    assert (convert(image[..., ::-1].copy(), "rgb8", "mono8") == gray).all()


# ---- bit depth: 8 <-> 16 bits scaled and rounded, everything else by value -----------------


def test_mono16_1000_becomes_4_in_bgr8_like_cv_bridges_channel_order_test():
    bgr = convert(np.full((200, 200), 1000, np.uint16), "mono16", "bgr8")
    assert bgr.dtype == np.uint8 and bgr.shape == (200, 200, 3) and (bgr == 4).all()  # 3.89 rounds up


def test_16_to_8_bits_rounds_over_the_full_range():
    ramp = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    for src, dst in [("mono16", "mono8"), ("16UC1", "8UC1"), ("mono16", "8UC1")]:
        np.testing.assert_array_equal(convert(ramp, src, dst), to_8_bits(ramp))


def test_8_to_16_bits_stretches_255_to_65535():
    ramp = np.arange(256, dtype=np.uint8).reshape(16, 16)
    for src, dst in [("mono8", "mono16"), ("8UC1", "16UC1"), ("mono8", "16UC1")]:
        out = convert(ramp, src, dst)
        assert out.dtype == np.uint16
        np.testing.assert_array_equal(out, ramp.astype(np.uint16) * 257)


def test_colour_and_depth_change_together():
    np.testing.assert_array_equal(convert(BGR, "bgr8", "rgb16"), BGR[..., ::-1].astype(np.uint16) * 257)
    bgr16 = RNG.integers(0, 65536, (3, 4, 3), dtype=np.uint16)
    np.testing.assert_array_equal(convert(bgr16, "bgr16", "rgb8"), to_8_bits(bgr16[..., ::-1]))


def test_signed_16_to_8_bits_is_scaled_too():
    values = np.array([[-32768, -129, -128, -1, 0, 128, 129, 32767]], np.int16)
    np.testing.assert_array_equal(convert(values, "16SC1", "8SC1"), [[-128, -1, 0, 0, 0, 0, 1, 127]])


def test_other_depth_changes_keep_values():
    depth = np.array([[0, 1000, 65535]], np.uint16)
    np.testing.assert_array_equal(convert(depth, "mono16", "32FC1"), [[0.0, 1000.0, 65535.0]])
    np.testing.assert_array_equal(convert(depth, "16UC1", "32SC1"), [[0, 1000, 65535]])
    np.testing.assert_array_equal(convert(BGR, "bgr8", "32FC3"), BGR.astype(np.float32))


def test_floats_become_integers_rounded_half_to_even_and_saturated():
    values = np.array([[-1.5, 0.5, 1.5, 2.5, 2.6, 70000.0, np.nan, np.inf, -np.inf]], np.float32)
    np.testing.assert_array_equal(convert(values, "32FC1", "16UC1"), [[0, 0, 2, 2, 3, 65535, 0, 65535, 0]])
    np.testing.assert_array_equal(
        convert(values, "32FC1", "8SC1"), [[-2, 0, 2, 2, 3, 127, 0, 127, -128]]
    )


def test_integers_saturate_to_a_narrower_type():
    values = np.array([[70000, -70000, 5]], np.int32)
    np.testing.assert_array_equal(convert(values, "32SC1", "16SC1"), [[32767, -32768, 5]])
    np.testing.assert_array_equal(convert(values, "32SC1", "16UC1"), [[65535, 0, 5]])


@pytest.mark.parametrize("src", ["32FC1", "64FC1"])
def test_floats_beyond_int32_saturate(src):
    values = np.array([[3e9, -3e9, 2.5]], np.float32 if src == "32FC1" else np.float64)
    np.testing.assert_array_equal(convert(values, src, "32SC1"), [[2**31 - 1, -(2**31), 2]])


TYPES = {"8U": np.uint8, "8S": np.int8, "16U": np.uint16, "16S": np.int16, "32S": np.int32,
         "32F": np.float32, "64F": np.float64}  # fmt: skip


@pytest.mark.parametrize("src", list(TYPES))
@pytest.mark.parametrize("dst", list(TYPES))
def test_depth_changes_agree_with_opencvs_saturating_arithmetic(src, dst):
    if TYPES[src] in (np.float32, np.float64):
        values = np.concatenate([RNG.normal(0, 4e4, 2000), np.arange(-300, 300, 0.25)])
    else:
        info = np.iinfo(TYPES[src])
        values = RNG.integers(info.min, info.max, 4000, endpoint=True)
    source = values.astype(TYPES[src]).reshape(1, -1)
    bits = {(1, 2): 65535 / 255, (2, 1): 255 / 65535}
    scale = bits.get((np.dtype(TYPES[src]).itemsize, np.dtype(TYPES[dst]).itemsize), 1.0)
    cv_depth = cv2.CV_8U if TYPES[dst] == np.uint8 else getattr(cv2, f"CV_{dst}")
    expected = cv2.addWeighted(source, scale, source, 0, 0, dtype=cv_depth)  # saturate(v * scale)
    out = convert(source, f"{src}C1", f"{dst}C1")
    assert out.dtype == expected.dtype
    np.testing.assert_array_equal(out, expected)


# ---- yuv422 and bayer ------------------------------------------------------------------------


def test_yuv422_becomes_gray_from_its_luma():
    uyvy = np.tile(np.array([60, 150, 200, 90], np.uint8), (2, 2)).reshape(2, 4, 2)  # U Y V Y
    np.testing.assert_array_equal(convert(uyvy, "yuv422", "mono8"), [[150, 90, 150, 90]] * 2)
    yuyv = np.tile(np.array([150, 60, 90, 200], np.uint8), (2, 2)).reshape(2, 4, 2)  # Y U Y V
    np.testing.assert_array_equal(convert(yuyv, "yuv422_yuy2", "mono8"), [[150, 90, 150, 90]] * 2)


@pytest.mark.parametrize("src", ["yuv422", "uyvy"])
def test_yuv422_becomes_colour_with_opencvs_bt601(src):
    uyvy = np.tile(np.array([60, 150, 200, 150], np.uint8), (2, 2)).reshape(2, 4, 2)
    rgb = convert(uyvy, src, "rgb8")
    bgra = convert(uyvy, src, "bgra8")
    assert rgb.shape == (2, 4, 3) and (bgra[..., 3] == 255).all()
    np.testing.assert_array_equal(bgra[..., 2::-1], rgb)
    # limited-range BT.601 of Y 150, U 60, V 200: R = 1.164 * 134 + 1.596 * 72 = 271 -> 255, G 124, B 19
    assert np.abs(rgb[0, 0].astype(int) - (255, 124, 19)).max() <= 2  # an orange


def test_yuv_aliases_are_the_same_layout():
    packed = np.arange(16, dtype=np.uint8).reshape(2, 4, 2)
    np.testing.assert_array_equal(convert(packed, "yuv422", "uyvy"), packed)
    np.testing.assert_array_equal(convert(packed, "yuyv", "yuv422_yuy2"), packed)


def bayer(pattern: str, colour: tuple[int, int, int], dtype=np.uint8) -> np.ndarray:
    value = dict(zip("rgb", colour))
    mosaic = np.empty((8, 8), dtype)
    for i, channel in enumerate(pattern):
        mosaic[i // 2 :: 2, i % 2 :: 2] = value[channel]
    return mosaic


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
def test_bayer_is_demosaiced_to_bgr_rgb_and_mono(pattern):
    mosaic = bayer(pattern, (220, 30, 10))
    bgr = convert(mosaic, f"bayer_{pattern}8", "bgr8")[2:-2, 2:-2]
    rgb = convert(mosaic, f"bayer_{pattern}8", "rgb8")[2:-2, 2:-2]
    assert np.abs(bgr.astype(int) - (10, 30, 220)).max() <= 1
    np.testing.assert_array_equal(rgb, bgr[..., ::-1])
    assert convert(mosaic, f"bayer_{pattern}8", "mono8").shape == (8, 8)


def test_16_bit_bayer_is_demosaiced_then_rounded_to_8_bits():
    mosaic = bayer("rggb", (220 * 257, 30 * 257, 10 * 257), np.uint16)
    assert (convert(mosaic, "bayer_rggb16", "rgb8")[2:-2, 2:-2] == (220, 30, 10)).all()


# ---- what cv_bridge refuses ------------------------------------------------------------------


@pytest.mark.parametrize(
    "array_, src, dst",
    [(np.zeros((2, 2, 3), np.uint8), "8UC3", "mono16"),  # conversions.py: generic data is not colour
     (np.zeros((2, 2), np.float32), "32FC1", "mono8"), (np.zeros((2, 2), np.uint16), "16UC1", "mono16"),
     (np.zeros((2, 2, 3), np.uint8), "8UC3", "bgr8"),
     (np.zeros((2, 2, 3), np.uint8), "8UC3", "8UC4"), (np.zeros((2, 2), np.uint16), "16UC1", "16UC3"),
     (np.zeros((2, 2, 3), np.uint8), "bgr8", "8UC1"), (np.zeros((2, 2, 3), np.uint8), "bgr8", "32FC1"),
     (np.zeros((2, 2, 3), np.uint8), "rgb8", "yuv422"), (np.zeros((2, 2), np.uint8), "mono8", "yuv422_yuy2"),
     (np.zeros((2, 2, 2), np.uint8), "yuv422", "yuv422_yuy2"),
     (np.zeros((2, 2), np.uint8), "mono8", "bayer_rggb8"),
     (np.zeros((2, 2), np.uint8), "bayer_rggb8", "rgba8"),
     (np.zeros((2, 2), np.uint8), "bayer_rggb8", "bayer_bggr8"),
     (np.zeros((2, 2), np.uint8), "bayer_rggb8", "bayer_rggb16")],
)  # fmt: skip
def test_conversions_cv_bridge_refuses_are_unsupported(array_, src, dst):
    assert cause_of(convert, array_, src, dst) == "unsupported_conversion"


def test_rgb8_becomes_mono16_though_8uc3_cannot():
    bgr = np.full((2, 2, 3), (0, 0, 255), np.uint8)
    np.testing.assert_array_equal(convert(bgr, "rgb8", "mono16"), np.full((2, 2), 29 * 257))


def test_the_refusal_says_why():
    expected = r"8UC3 is generic data with no colour meaning; it cannot become mono16"
    with pytest.raises(ValueError, match=expected):
        convert(np.zeros((2, 2, 3), np.uint8), "8UC3", "mono16")


def test_an_unknown_desired_encoding_is_refused():
    assert cause_of(convert, BGR, "bgr8", "bgr9") == "unknown_encoding"


def test_odd_width_yuv422_cannot_be_unpacked():
    assert cause_of(convert, np.zeros((2, 3, 2), np.uint8), "yuv422", "rgb8") == "bad_shape"


def test_a_message_that_does_not_fill_its_rows_is_refused_before_converting():
    msg = SimpleNamespace(height=200, width=200, encoding="bgr8", is_bigendian=0, step=600, data=b"")
    assert cause_of(imgmsg_to_cv2, msg, "mono8") == "size_mismatch"


# ---- cvt_color on arrays ---------------------------------------------------------------------


def test_cvt_color_returns_a_new_array_even_for_the_same_encoding():
    out = cvt_color(BGR, "bgr8", "bgr8")
    np.testing.assert_array_equal(out, BGR)
    assert not np.shares_memory(out, BGR)


def test_cvt_color_takes_one_channel_as_h_w_or_h_w_1():
    gray = RNG.integers(0, 256, (3, 4, 1), dtype=np.uint8)
    np.testing.assert_array_equal(cvt_color(gray, "mono8", "mono16"), gray[..., 0].astype(np.uint16) * 257)


def test_cvt_color_reads_big_endian_arrays_by_value():
    out = cvt_color(np.full((2, 2), 1000, ">u2"), "mono16", "mono8")
    assert (out == 4).all() and out.dtype == np.uint8


@pytest.mark.parametrize(
    "array_, src", [(np.zeros((2, 2), np.uint8), "bgr8"), (np.zeros((2, 2, 3), np.uint16), "bgr8"),
                    (np.zeros((2, 2, 3), np.uint8), "mono8"), (np.zeros(4, np.uint8), "mono8")],
)  # fmt: skip
def test_cvt_color_refuses_an_array_its_source_encoding_cannot_hold(array_, src):
    assert cause_of(cvt_color, array_, src, "rgb8") == "incompatible_encoding"

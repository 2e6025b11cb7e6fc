"""Specification of FrameBuffer: bounded per-camera rings resampled into clips."""

from __future__ import annotations

import threading
import tracemalloc

import numpy as np
import pytest

from cosmos_ros.core.frames import CameraStats, EmptyClipError, FrameBuffer


def frame(value: int = 0, height: int = 4, width: int = 6) -> np.ndarray:
    return np.full((height, width, 3), value % 256, np.uint8)


def fill(buffer: FrameBuffer, camera: str, stamps, *, height: int = 4, width: int = 6) -> None:
    """Add one frame per stamp; each frame's pixels hold its index, to identify it in clips."""
    for i, stamp in enumerate(stamps):
        assert buffer.add(camera, stamp, frame(i, height, width), received=stamp)


def camera_stamps(fps: float, seconds: float, start: float = 100.0) -> np.ndarray:
    return start + np.arange(int(round(seconds * fps))) / fps


# ---- adding ------------------------------------------------------------------


def test_each_camera_keeps_at_most_its_capacity_evicting_the_oldest():
    buffer = FrameBuffer(capacity_per_camera=3, max_age_s=None)
    fill(buffer, "cam", [1.0, 2.0, 3.0, 4.0, 5.0])
    fill(buffer, "other", [1.0])
    assert buffer.num_frames("cam") == 3 and buffer.num_frames("other") == 1
    assert buffer.stats("cam").evicted == 2
    clip = buffer.clip(10.0, 100.0, 10, cameras=["cam"])
    np.testing.assert_array_equal(clip.stamps, [3.0, 4.0, 5.0])


def test_frames_older_than_max_age_behind_the_newest_expire():
    buffer = FrameBuffer(capacity_per_camera=100, max_age_s=2.0)
    fill(buffer, "cam", [0.0, 1.0, 2.0, 3.0, 4.0])
    assert buffer.num_frames("cam") == 3
    assert buffer.stats("cam").expired == 2


def test_an_older_stamp_is_rejected_and_counted_as_out_of_order():
    buffer = FrameBuffer()
    fill(buffer, "cam", [1.0, 2.0])
    assert buffer.add("cam", 1.5, frame()) is False
    stats = buffer.stats("cam")
    assert (stats.out_of_order, stats.duplicates, stats.accepted, stats.received) == (1, 0, 2, 3)
    assert buffer.newest_stamp("cam") == 2.0


def test_a_repeated_stamp_is_rejected_and_counted_as_a_duplicate():
    buffer = FrameBuffer()
    fill(buffer, "cam", [1.0, 2.0])
    assert buffer.add("cam", 2.0, frame()) is False
    assert buffer.add("cam", 1.0, frame()) is False
    stats = buffer.stats("cam")
    assert (stats.duplicates, stats.out_of_order) == (2, 0)


def test_a_stamp_that_is_not_finite_is_refused():
    with pytest.raises(ValueError, match="finite"):
        FrameBuffer().add("cam", float("nan"), frame())


def test_stats_track_last_stamp_arrival_and_rate():
    buffer = FrameBuffer()
    for i in range(11):
        buffer.add("cam", 50.0 + i / 10, frame(), received=1000.0 + i / 10)
    stats = buffer.stats("cam")
    assert stats.last_stamp == pytest.approx(51.0)
    assert stats.last_received_wall == pytest.approx(1001.0)
    assert stats.rate_hz == pytest.approx(10.0)


def test_the_rate_of_a_silent_camera_falls_to_zero():
    buffer = FrameBuffer(rate_horizon_s=2.0)
    for i in range(11):
        buffer.add("cam", 50.0 + i / 10, frame(), received=1000.0 + i / 10)
    assert buffer.stats("cam", now=1001.05).rate_hz == pytest.approx(10.0)
    assert buffer.stats("cam", now=1003.5).rate_hz == 0.0
    assert buffer.all_stats(now=1003.5)["cam"].rate_hz == 0.0


def test_a_slow_camera_keeps_its_rate_between_two_frames():
    buffer = FrameBuffer(rate_horizon_s=2.0)
    for i in range(4):
        buffer.add("cam", float(i * 3), frame(), received=float(i * 3))
    assert buffer.stats("cam", now=11.0).rate_hz == pytest.approx(1 / 3)


def test_stats_of_an_unknown_camera_are_zero():
    assert FrameBuffer().stats("nobody") == CameraStats()


def test_add_rejects_frames_that_are_not_rgb8():
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        FrameBuffer().add("cam", 1.0, np.zeros((4, 6), np.uint8))


def test_cameras_are_listed_in_order_of_first_frame():
    buffer = FrameBuffer()
    fill(buffer, "wrist", [1.0])
    fill(buffer, "head", [1.0])
    assert buffer.cameras == ("wrist", "head")


# ---- clock jumps -------------------------------------------------------------


def test_one_frame_stamped_a_year_ahead_does_not_blind_the_camera():
    buffer = FrameBuffer(clock_jump_s=1.0)
    fill(buffer, "cam", [100.0, 100.1, 100.2])
    assert buffer.add("cam", 100.3 + 3.15e7, frame(), received=100.3)
    assert buffer.add("cam", 100.4, frame(), received=100.4)
    assert buffer.add("cam", 100.5, frame(), received=100.5)
    np.testing.assert_array_equal(buffer.clip(1.0, 10.0, 10).stamps, [100.4, 100.5])
    assert buffer.stats("cam").clock_jumps == 2


def test_a_camera_whose_clock_restarts_behind_is_accepted_at_once():
    buffer = FrameBuffer(clock_jump_s=1.0)
    fill(buffer, "cam", [500.0, 500.1])
    assert buffer.add("cam", 0.0, frame(), received=500.2)  # sim time reset
    assert buffer.add("cam", 0.1, frame(), received=500.3)
    assert buffer.newest_stamp("cam") == 0.1 and buffer.num_frames("cam") == 2
    stats = buffer.stats("cam")
    assert (stats.clock_jumps, stats.out_of_order, stats.accepted) == (1, 0, 4)


def test_a_step_back_within_the_tolerance_is_dropped_as_out_of_order():
    buffer = FrameBuffer(clock_jump_s=1.0)
    fill(buffer, "cam", [10.0, 11.0])
    assert buffer.add("cam", 10.5, frame(), received=11.0) is False
    stats = buffer.stats("cam")
    assert (stats.clock_jumps, stats.out_of_order) == (0, 1)


def test_a_camera_resuming_after_a_silence_is_not_a_clock_jump():
    buffer = FrameBuffer(clock_jump_s=1.0, max_age_s=None)
    fill(buffer, "cam", [10.0, 10.1])
    assert buffer.add("cam", 40.0, frame(), received=40.0)  # stamps and arrivals both moved 30 s
    assert buffer.add("cam", 40.1, frame(), received=200.0)  # a paused sim: its clock lags ours
    assert buffer.stats("cam").clock_jumps == 0 and buffer.num_frames("cam") == 4


def test_each_clock_jump_is_reported_with_the_stamps_it_jumped_between():
    jumps = []
    buffer = FrameBuffer(clock_jump_s=1.0, on_clock_jump=lambda *jump: jumps.append(jump))
    fill(buffer, "cam", [10.0])
    buffer.add("cam", 2.0, frame(), received=10.1)
    assert jumps == [("cam", 10.0, 2.0)]


def test_without_a_jump_tolerance_a_stamp_far_ahead_drops_every_later_frame():
    buffer = FrameBuffer(clock_jump_s=None)
    fill(buffer, "cam", [10.0, 1e9])
    assert buffer.add("cam", 10.1, frame(), received=10.1) is False


# ---- staleness ---------------------------------------------------------------


def test_a_camera_is_stale_when_its_last_frame_arrived_longer_ago_than_the_timeout():
    buffer = FrameBuffer()
    buffer.add("cam", 5.0, frame(), received=100.0)
    assert not buffer.is_stale("cam", now_wall=100.9, timeout_s=1.0)
    assert buffer.is_stale("cam", now_wall=101.1, timeout_s=1.0)


def test_a_camera_never_seen_is_stale_and_has_no_newest_stamp():
    buffer = FrameBuffer()
    assert buffer.is_stale("cam", now_wall=0.0, timeout_s=1.0)
    assert buffer.newest_stamp("cam") is None


# ---- single-camera clips -------------------------------------------------------


def test_clip_resamples_a_fast_camera_to_the_nearest_frame_of_each_grid_time():
    buffer = FrameBuffer()
    stamps = camera_stamps(30.0, 3.0)  # 100.000 .. 102.967
    fill(buffer, "cam", stamps)
    clip = buffer.clip(2.0, 4.0, 32, cameras=["cam"])
    grid = stamps[-1] - np.arange(9)[::-1] / 4.0
    assert clip.num_frames == 9
    assert np.abs(clip.stamps - grid).max() <= 1 / 60 + 1e-9
    assert clip.end == stamps[-1]
    assert clip.cameras == ("cam",)


def test_clip_frames_are_the_frames_of_the_chosen_stamps():
    buffer = FrameBuffer()
    fill(buffer, "cam", camera_stamps(10.0, 2.0))
    clip = buffer.clip(1.0, 2.0, 8, cameras=["cam"])
    np.testing.assert_array_equal(clip.stamps, [100.9, 101.4, 101.9])
    assert [int(f[0, 0, 0]) for f in clip.frames] == [9, 14, 19]
    assert clip.frames.shape == (3, 4, 6, 3)


def test_a_camera_slower_than_fps_gives_each_frame_once():
    buffer = FrameBuffer()
    fill(buffer, "cam", [100.0, 101.0, 102.0])
    clip = buffer.clip(2.0, 4.0, 32, cameras=["cam"])
    np.testing.assert_array_equal(clip.stamps, [100.0, 101.0, 102.0])


def test_clip_never_contains_frames_outside_its_window():
    buffer = FrameBuffer()
    fill(buffer, "cam", camera_stamps(10.0, 5.0))
    clip = buffer.clip(1.0, 4.0, 32, cameras=["cam"], end=102.0)
    assert clip.start >= 101.0 and clip.end == pytest.approx(102.0)


def test_max_frames_subsamples_evenly_over_the_window_keeping_the_newest():
    buffer = FrameBuffer()
    stamps = camera_stamps(10.0, 4.0)
    fill(buffer, "cam", stamps)
    clip = buffer.clip(3.0, 10.0, 4, cameras=["cam"])
    assert clip.num_frames == 4
    assert clip.end == stamps[-1]
    np.testing.assert_allclose(clip.stamps, stamps[-1] - np.array([3.0, 2.0, 1.0, 0.0]))


def test_max_frames_of_one_gives_the_newest_frame():
    buffer = FrameBuffer()
    fill(buffer, "cam", [1.0, 2.0, 3.0])
    assert buffer.clip(5.0, 4.0, 1, cameras=["cam"]).stamps.tolist() == [3.0]


def test_a_jittering_camera_gives_the_grid_rate_as_the_clip_rate():
    # the model is told the clip's rate; a live camera's few-millisecond jitter must not reach it
    buffer = FrameBuffer()
    rng = np.random.default_rng(3)
    stamps = camera_stamps(4.0, 10.0) + rng.uniform(-0.004, 0.004, 40)
    fill(buffer, "cam", stamps)
    clip = buffer.clip(2.9, 4.0, 12, cameras=["cam"])
    assert clip.num_frames == 12
    assert clip.fps == 4.0
    np.testing.assert_array_equal(clip.stamps, stamps[-12:])  # the stamps stay the real ones
    assert (clip.num_frames - 1) / (clip.end - clip.start) != 4.0


def test_a_camera_at_half_the_grid_rate_keeps_its_own_rate():
    buffer = FrameBuffer()
    fill(buffer, "cam", camera_stamps(2.0, 4.0) + np.array([0.003, -0.002] * 4))
    assert buffer.clip(3.0, 4.0, 32, cameras=["cam"]).fps == 2.0


def test_a_clip_subsampled_to_max_frames_has_its_mean_rate():
    buffer = FrameBuffer()
    fill(buffer, "cam", camera_stamps(10.0, 4.0))
    assert buffer.clip(3.0, 10.0, 4, cameras=["cam"]).fps == pytest.approx(1.0)


def test_a_one_frame_clip_has_no_rate():
    buffer = FrameBuffer()
    fill(buffer, "cam", [100.0, 101.0])
    assert buffer.clip(5.0, 4.0, 1, cameras=["cam"]).fps is None


def test_a_window_cut_at_a_frames_own_stamp_keeps_that_frame_despite_jitter():
    # since = the stamp of a task's first frame; the span to the newest is 1.9996 grid steps
    buffer = FrameBuffer()
    fill(buffer, "cam", [99.75, 100.0, 100.2502, 100.4999])
    clip = buffer.clip(2.9, 4.0, 12, cameras=["cam"], since=100.0)
    np.testing.assert_array_equal(clip.stamps, [100.0, 100.2502, 100.4999])
    assert clip.fps == 4.0


def test_since_drops_every_frame_older_than_it():
    buffer = FrameBuffer()
    fill(buffer, "cam", camera_stamps(4.0, 3.0))
    clip = buffer.clip(2.9, 4.0, 12, cameras=["cam"], since=101.0)
    assert clip.start == 101.0 and clip.num_frames == 8


def test_an_empty_window_raises_empty_clip_error():
    buffer = FrameBuffer()
    fill(buffer, "cam", [10.0, 11.0])
    with pytest.raises(EmptyClipError, match="no frame in"):
        buffer.clip(1.0, 4.0, 8, cameras=["cam"], end=5.0)


def test_an_unknown_camera_raises_empty_clip_error_naming_the_known_ones():
    buffer = FrameBuffer()
    fill(buffer, "head", [1.0])
    with pytest.raises(EmptyClipError, match="'wrist'.*head"):
        buffer.clip(1.0, 4.0, 8, cameras=["wrist"])


def test_empty_clip_error_is_a_lookup_error():
    with pytest.raises(LookupError):
        FrameBuffer().clip(1.0, 4.0, 8)


@pytest.mark.parametrize(
    "window_s, fps",
    [(1e9, 4.0), (3.4e38, 4.0), (4.0, 1e300), (1e5, 60.0)],
    ids=["1e9 s", "3.4e38 s", "1e300 fps", "1e5 s at 60 fps"],
)
def test_a_huge_window_or_fps_costs_what_the_frames_held_cost(window_s, fps):
    buffer = FrameBuffer(capacity_per_camera=64, max_age_s=None)
    fill(buffer, "cam", camera_stamps(fps=15.0, seconds=8.0))
    tracemalloc.start()
    try:
        clip = buffer.clip(window_s, fps, 16)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert clip.num_frames == 16 and clip.end == pytest.approx(107.933, abs=1e-3)
    assert peak < 1_000_000  # a grid of window_s x fps points would take gigabytes


@pytest.mark.parametrize("window_s, fps", [(float("inf"), 4.0), (float("nan"), 4.0), (1.0, float("inf"))])
def test_clip_rejects_a_window_or_fps_that_is_not_finite(window_s, fps):
    buffer = FrameBuffer()
    fill(buffer, "cam", [1.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        buffer.clip(window_s, fps, 8)


@pytest.mark.parametrize("window_s, fps, max_frames", [(-1.0, 4.0, 8), (1.0, 0.0, 8), (1.0, 4.0, 0)])
def test_clip_rejects_nonsense_arguments(window_s, fps, max_frames):
    with pytest.raises(ValueError):
        FrameBuffer().clip(window_s, fps, max_frames)


def test_a_resolution_change_within_the_window_is_scaled_to_the_newest_size():
    buffer = FrameBuffer()
    buffer.add("cam", 1.0, frame(10, 8, 12))
    buffer.add("cam", 2.0, frame(20, 4, 6))
    clip = buffer.clip(2.0, 1.0, 8, cameras=["cam"])
    assert clip.frames.shape == (2, 4, 6, 3)
    assert (clip.frames[0] == 10).all()


# ---- several cameras -----------------------------------------------------------


def test_two_cameras_are_aligned_on_the_reference_and_tiled_side_by_side():
    buffer = FrameBuffer()
    fill(buffer, "head", camera_stamps(10.0, 2.0), height=4, width=6)
    fill(buffer, "wrist", camera_stamps(10.0, 2.0, start=100.03), height=4, width=5)
    clip = buffer.clip(1.0, 2.0, 8, cameras=["head", "wrist"])
    assert clip.cameras == ("head", "wrist")
    assert clip.frames.shape == (3, 4, 11, 3)
    np.testing.assert_array_equal(clip.stamps, [100.9, 101.4, 101.9])
    # head frame i sits next to wrist frame i (stamp + 0.03 s is the nearest)
    np.testing.assert_array_equal(clip.frames[:, 0, 0, 0], clip.frames[:, 0, 6, 0])


def test_other_cameras_are_scaled_to_the_reference_height():
    buffer = FrameBuffer()
    fill(buffer, "head", [1.0], height=4, width=6)
    fill(buffer, "wrist", [1.0], height=8, width=8)
    clip = buffer.clip(1.0, 4.0, 8, cameras=["head", "wrist"])
    assert clip.frames.shape == (1, 4, 6 + 4, 3)


def test_reference_frames_without_a_partner_within_tolerance_are_dropped():
    buffer = FrameBuffer()
    fill(buffer, "head", [1.0, 2.0, 3.0])
    fill(buffer, "wrist", [1.05, 2.5, 3.01])
    clip = buffer.clip(2.0, 1.0, 8, cameras=["head", "wrist"], align_tolerance_s=0.1)
    np.testing.assert_array_equal(clip.stamps, [1.0, 3.0])


def test_default_alignment_tolerance_is_half_a_grid_step():
    buffer = FrameBuffer()
    fill(buffer, "head", [1.0, 2.0])
    fill(buffer, "wrist", [1.2, 2.4])
    clip = buffer.clip(1.0, 2.0, 8, cameras=["head", "wrist"])  # tolerance 0.25 s
    np.testing.assert_array_equal(clip.stamps, [1.0])


def test_alignment_with_no_partner_at_all_raises_empty_clip_error():
    buffer = FrameBuffer()
    fill(buffer, "head", [1.0, 2.0])
    fill(buffer, "wrist", [10.0])
    with pytest.raises(EmptyClipError, match="'wrist'"):
        buffer.clip(1.0, 4.0, 8, cameras=["head", "wrist"])


def test_clip_without_cameras_tiles_every_camera_in_arrival_order():
    buffer = FrameBuffer()
    fill(buffer, "head", [1.0])
    fill(buffer, "wrist", [1.0])
    assert buffer.clip(1.0, 4.0, 8).cameras == ("head", "wrist")


def test_clips_per_camera_share_one_window_and_skip_silent_cameras():
    buffer = FrameBuffer()
    fill(buffer, "head", camera_stamps(10.0, 2.0))
    fill(buffer, "wrist", camera_stamps(10.0, 1.0, start=101.0))
    fill(buffer, "old", [50.0])
    clips = buffer.clips_per_camera(0.5, 4.0, 8)
    assert set(clips) == {"head", "wrist"}
    assert clips["head"].end == clips["wrist"].end == pytest.approx(101.9)
    assert clips["head"].cameras == ("head",)


# ---- threads -----------------------------------------------------------------


def test_adding_and_clipping_from_two_threads_is_safe():
    buffer = FrameBuffer(capacity_per_camera=32)
    errors: list[BaseException] = []
    done = threading.Event()

    def producer():
        try:
            for i in range(2000):
                buffer.add("cam", i / 100, frame(i))
        except BaseException as exc:  # surfaced by the main thread
            errors.append(exc)
        finally:
            done.set()

    def consumer():
        try:
            while not done.is_set():
                try:
                    clip = buffer.clip(0.2, 20.0, 4, cameras=["cam"])
                except EmptyClipError:
                    continue
                assert np.all(np.diff(clip.stamps) > 0)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=producer), threading.Thread(target=consumer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not errors
    stats = buffer.stats("cam")
    assert stats.accepted == 2000 and buffer.num_frames("cam") == 32

"""Per-camera frame rings and the clips the model reasons about.

Cameras publish at their own rate (often 15-60 Hz) while the model wants a few
seconds sampled at ~4 fps. The FrameBuffer keeps the last few seconds of each
camera, keyed by header stamp (capture time, not arrival time), and resamples
them into a `Clip` on demand. The node adds frames from the executor thread and
a worker thread asks for clips, so every public method takes one lock; the heavy
work of a clip (resampling, stacking, tiling) runs on a snapshot outside it.

Clock jumps (a rebooted driver, a replayed bag, a sim reset, one frame stamped a
year ahead): a stamp more than `clock_jump_s` behind the camera's newest, or ahead
of it by more than the arrival time since then plus `clock_jump_s`, empties the
camera's ring and starts a new timeline. Smaller steps back are reordering: dropped.
An outlier costs the history (twice: out and back) but cannot blind the camera.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from cosmos_ros.core.resample import even_subsample, grid_fps, nearest, resample, tile
from cosmos_ros.core.types import Clip

__all__ = ["CameraStats", "EmptyClipError", "FrameBuffer", "even_subsample", "grid_fps"]


class EmptyClipError(LookupError):
    """No frame of a requested camera falls in the requested window.

    Raised rather than returning None: a node that asks for a clip needs to say
    why it has none (unknown camera, camera silent, window too early).
    """


@dataclass
class CameraStats:
    """Counters for one camera, for /diagnostics.

    received = accepted + out_of_order + duplicates. Frames leave the ring either
    because capacity was exceeded (`evicted`), they grew older than max_age_s
    behind the newest stamp (`expired`) or the camera's clock jumped (the ring is
    emptied; `clock_jumps` counts the jumps, not the frames).
    """

    received: int = 0
    accepted: int = 0
    out_of_order: int = 0  # stamp older than the newest held frame (and not a duplicate)
    duplicates: int = 0  # stamp equal to a frame already held
    evicted: int = 0
    expired: int = 0
    clock_jumps: int = 0
    last_stamp: float = float("nan")  # newest accepted header stamp, seconds
    last_received_wall: float = float("nan")  # arrival time of that frame (caller's clock)
    rate_hz: float = 0.0  # accepted frames per second over recent arrivals; 0 once silent


@dataclass
class _Camera:
    stamps: deque[float]
    frames: deque[np.ndarray]
    arrivals: deque[float]  # arrival times of recent accepted frames, for rate_hz
    stats: CameraStats = field(default_factory=CameraStats)


class FrameBuffer:
    """Bounded per-camera rings of (stamp, RGB frame), resampled into Clips.

    capacity_per_camera: frames kept per camera; the oldest is evicted past it.
    max_age_s: frames older than this behind their camera's newest stamp are
        dropped (None keeps up to capacity). Bounded either way.
    rate_window: how many recent arrivals the rate estimate spans.
    rate_horizon_s: arrivals older than this (or two mean frame intervals, if
        longer) stop counting, so a silent camera's rate falls to 0.
    clock_jump_s: the clock-jump tolerance (module docstring); None never resets.
    on_clock_jump: called with (camera, newest stamp, new stamp), outside the lock.
    """

    def __init__(
        self,
        capacity_per_camera: int = 256,
        max_age_s: float | None = 30.0,
        *,
        rate_window: int = 30,
        rate_horizon_s: float = 2.0,
        clock_jump_s: float | None = 1.0,
        on_clock_jump: Callable[[str, float, float], None] | None = None,
    ):
        if capacity_per_camera < 1:
            raise ValueError(f"capacity_per_camera must be >= 1, got {capacity_per_camera}")
        if max_age_s is not None and max_age_s <= 0:
            raise ValueError(f"max_age_s must be > 0 or None, got {max_age_s}")
        if rate_window < 2:
            raise ValueError(f"rate_window must be >= 2, got {rate_window}")
        if not rate_horizon_s > 0:
            raise ValueError(f"rate_horizon_s must be > 0, got {rate_horizon_s}")
        if clock_jump_s is not None and not clock_jump_s > 0:
            raise ValueError(f"clock_jump_s must be > 0 or None, got {clock_jump_s}")
        self.capacity_per_camera = capacity_per_camera
        self.max_age_s = max_age_s
        self.clock_jump_s = clock_jump_s
        self._rate_window = rate_window
        self._rate_horizon_s = rate_horizon_s
        self._on_clock_jump = on_clock_jump
        self._cameras: dict[str, _Camera] = {}
        self._lock = threading.Lock()

    # ---- writing -------------------------------------------------------------

    def add(self, camera: str, stamp: float, frame: np.ndarray, *, received: float | None = None) -> bool:
        """Store an (H, W, 3) uint8 RGB frame captured at `stamp` seconds.

        Returns False, and counts it, when the stamp is not newer than the
        camera's newest frame (rings stay sorted by stamp), unless the step is a
        clock jump (module docstring): then the ring restarts from this frame.
        `received` is the arrival time (default time.monotonic()); use the same
        clock for is_stale and stats. The frame is kept by reference: do not
        modify it afterwards.
        """
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frame must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
        stamp = float(stamp)
        if not math.isfinite(stamp):
            raise ValueError(f"stamp must be finite seconds, got {stamp}")
        received = time.monotonic() if received is None else float(received)
        jumped_from = None
        with self._lock:
            cam = self._cameras.get(camera)
            if cam is None:
                cam = _Camera(deque(), deque(), deque(maxlen=self._rate_window))
                self._cameras[camera] = cam
            stats = cam.stats
            stats.received += 1
            if cam.stamps and self._is_clock_jump(stamp, received, cam):
                jumped_from = cam.stamps[-1]
                cam.stamps.clear()
                cam.frames.clear()
                stats.clock_jumps += 1
            if cam.stamps and stamp <= cam.stamps[-1]:
                held = np.asarray(cam.stamps)
                if (held == stamp).any():
                    stats.duplicates += 1
                else:
                    stats.out_of_order += 1
                return False
            cam.stamps.append(stamp)
            cam.frames.append(frame)
            cam.arrivals.append(received)
            stats.accepted += 1
            stats.last_stamp = stamp
            stats.last_received_wall = received
            while len(cam.stamps) > self.capacity_per_camera:
                self._pop_oldest(cam)
                stats.evicted += 1
            if self.max_age_s is not None:
                while cam.stamps[0] < stamp - self.max_age_s:
                    self._pop_oldest(cam)
                    stats.expired += 1
        if jumped_from is not None and self._on_clock_jump is not None:
            self._on_clock_jump(camera, jumped_from, stamp)
        return True

    def _is_clock_jump(self, stamp: float, received: float, cam: _Camera) -> bool:
        if self.clock_jump_s is None:
            return False
        newest = cam.stamps[-1]
        elapsed = max(0.0, received - cam.stats.last_received_wall)
        return stamp < newest - self.clock_jump_s or stamp - newest > elapsed + self.clock_jump_s

    @staticmethod
    def _pop_oldest(cam: _Camera) -> None:
        cam.stamps.popleft()
        cam.frames.popleft()

    def clear(self, camera: str | None = None) -> None:
        """Forget the frames and counters of one camera, or of all."""
        with self._lock:
            if camera is None:
                self._cameras.clear()
            else:
                self._cameras.pop(camera, None)

    # ---- state ---------------------------------------------------------------

    @property
    def cameras(self) -> tuple[str, ...]:
        """Camera names in the order their first frame arrived."""
        with self._lock:
            return tuple(self._cameras)

    def __len__(self) -> int:
        with self._lock:
            return sum(len(cam.stamps) for cam in self._cameras.values())

    def num_frames(self, camera: str) -> int:
        with self._lock:
            cam = self._cameras.get(camera)
            return len(cam.stamps) if cam else 0

    def stats(self, camera: str, now: float | None = None) -> CameraStats:
        """A copy of one camera's counters (all zero for a camera never seen).
        now: the time on add's `received` clock, for rate_hz; None = the newest arrival."""
        with self._lock:
            cam = self._cameras.get(camera)
            return self._stats_copy(cam, now) if cam else CameraStats()

    def all_stats(self, now: float | None = None) -> dict[str, CameraStats]:
        with self._lock:
            return {name: self._stats_copy(cam, now) for name, cam in self._cameras.items()}

    def _stats_copy(self, cam: _Camera, now: float | None) -> CameraStats:
        arrivals = list(cam.arrivals)
        if len(arrivals) >= 2:
            now = arrivals[-1] if now is None else now
            mean_interval = (arrivals[-1] - arrivals[0]) / (len(arrivals) - 1)
            horizon = max(self._rate_horizon_s, 2 * mean_interval)
            arrivals = [t for t in arrivals if now - t <= horizon]
        span = arrivals[-1] - arrivals[0] if len(arrivals) >= 2 else 0.0
        return replace(cam.stats, rate_hz=(len(arrivals) - 1) / span if span > 0 else 0.0)

    def newest_stamp(self, camera: str) -> float | None:
        """Header stamp of the camera's newest held frame; None when it holds none."""
        with self._lock:
            cam = self._cameras.get(camera)
            return cam.stamps[-1] if cam and cam.stamps else None

    def is_stale(self, camera: str, now_wall: float | None = None, timeout_s: float = 1.0) -> bool:
        """True when the camera's last accepted frame arrived more than timeout_s ago
        (or never). Arrival time, not stamp: a camera with a wrong clock still counts
        as alive while it delivers. now_wall defaults to time.monotonic()."""
        now_wall = time.monotonic() if now_wall is None else now_wall
        with self._lock:
            cam = self._cameras.get(camera)
            if cam is None or cam.stats.accepted == 0:
                return True
            return now_wall - cam.stats.last_received_wall > timeout_s

    # ---- reading -------------------------------------------------------------

    def _snapshot(self, camera: str) -> tuple[np.ndarray, list[np.ndarray]]:
        """(stamps (N,) float64, frames) of one camera, copied under the lock."""
        with self._lock:
            cam = self._cameras.get(camera)
            if cam is None or not cam.stamps:
                known = ", ".join(self._cameras) or "none"
                raise EmptyClipError(f"camera {camera!r} has no frames (cameras with frames: {known})")
            return np.fromiter(cam.stamps, np.float64, len(cam.stamps)), list(cam.frames)

    def clip(
        self,
        window_s: float,
        fps: float,
        max_frames: int,
        *,
        cameras: Sequence[str] | None = None,
        end: float | None = None,
        since: float | None = None,
        align_tolerance_s: float | None = None,
    ) -> Clip:
        """The last `window_s` seconds ending at `end`, resampled at `fps`; with `since`,
        nothing older than that stamp (e.g. frames from before the current task began).

        Resampling: grid times end, end - 1/fps, ... back to end - window_s; each
        takes the nearest held frame in the window, and a frame chosen twice is
        kept once, so a camera slower than fps yields fewer frames instead of
        repeats. Past `max_frames`, frames are subsampled evenly over the window,
        always keeping the newest: the clip still spans the whole window and its
        stamps carry the real timing.

        Several cameras: the first is the reference and `end` defaults to its
        newest stamp. Each other camera contributes its nearest frame within
        `align_tolerance_s` (default half a grid step, 0.5 / fps) of each
        reference frame; reference frames missing a partner are dropped. Frames
        are tiled left to right in camera order, scaled to the reference height.
        cameras=None means every camera, in order of first arrival.

        Raises EmptyClipError when the window holds no (aligned) frame. Memory and
        time grow with the frames held, not with window_s x fps.
        """
        finite = math.isfinite(window_s) and math.isfinite(fps)
        if not finite or window_s < 0 or fps <= 0 or max_frames < 1:
            raise ValueError(
                f"need finite window_s >= 0 and fps > 0, max_frames >= 1; got {window_s}, {fps}, {max_frames}"
            )
        names = tuple(cameras) if cameras is not None else self.cameras
        if not names:
            raise EmptyClipError("the frame buffer holds no cameras")
        tolerance = 0.5 / fps if align_tolerance_s is None else align_tolerance_s
        ref_stamps, ref_frames = self._snapshot(names[0])
        end = float(ref_stamps[-1]) if end is None else float(end)
        start = end - window_s if since is None else max(end - window_s, float(since))
        picks = resample(ref_stamps, start, end, fps)  # (T,) indices into the reference
        if picks.size == 0:
            raise EmptyClipError(
                f"camera {names[0]!r} has no frame in [{start:.3f}, {end:.3f}] s "
                f"(it holds {ref_stamps[0]:.3f} .. {ref_stamps[-1]:.3f})"
            )
        stamps = ref_stamps[picks]  # (T,)
        columns = [[ref_frames[i] for i in picks]]
        if len(names) > 1:
            keep = np.ones(stamps.shape, bool)
            partners = []
            for name in names[1:]:
                other_stamps, other_frames = self._snapshot(name)
                closest = nearest(other_stamps, stamps)  # (T,)
                keep &= np.abs(other_stamps[closest] - stamps) <= tolerance
                partners.append((other_frames, closest))
            if not keep.any():
                raise EmptyClipError(
                    f"no frame of {', '.join(map(repr, names[1:]))} lies within {tolerance:.3f} s of "
                    f"{names[0]!r} frames in [{end - window_s:.3f}, {end:.3f}] s"
                )
            stamps = stamps[keep]
            columns = [[f for f, k in zip(columns[0], keep) if k]]
            columns += [[frames[i] for i in closest[keep]] for frames, closest in partners]
        chosen = even_subsample(len(stamps), max_frames)  # (T',) keeps the newest
        stamps = stamps[chosen]
        columns = [[column[i] for i in chosen] for column in columns]
        return Clip(
            frames=tile(columns),
            stamps=np.ascontiguousarray(stamps),
            cameras=names,
            fps=grid_fps(stamps, end, fps),
        )

    def clips_per_camera(
        self,
        window_s: float,
        fps: float,
        max_frames: int,
        *,
        cameras: Sequence[str] | None = None,
        end: float | None = None,
    ) -> dict[str, Clip]:
        """One clip per camera over the same window, for engines that take several videos.

        `end` defaults to the newest stamp over all requested cameras, so every
        clip covers the same time span. Cameras with no frame in the window are
        left out of the dict (check is_stale for why); EmptyClipError if all are.
        """
        names = tuple(cameras) if cameras is not None else self.cameras
        if end is None:
            newest = [s for s in map(self.newest_stamp, names) if s is not None]
            if not newest:
                raise EmptyClipError(f"none of the cameras {names} has frames")
            end = max(newest)
        clips = {}
        for name in names:
            try:
                clips[name] = self.clip(window_s, fps, max_frames, cameras=[name], end=end)
            except EmptyClipError:
                continue
        if not clips:
            raise EmptyClipError(f"none of the cameras {names} has a frame in [{end - window_s:.3f}, {end:.3f}] s")
        return clips

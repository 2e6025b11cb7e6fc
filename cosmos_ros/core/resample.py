"""How a clip is cut from buffered frames: resampling irregular stamps onto a clip's time grid,
even subsampling, and tiling several cameras side by side (pure numpy; FrameBuffer uses these).
"""

from __future__ import annotations

import numpy as np

def nearest(stamps: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Index of the stamp nearest to each time; stamps (N,) sorted, times (T,) -> (T,)."""
    if len(stamps) == 1:
        return np.zeros(times.shape, np.intp)
    right = np.clip(np.searchsorted(stamps, times), 1, len(stamps) - 1)
    left = right - 1
    return np.where(times - stamps[left] <= stamps[right] - times, left, right)


GRID_SLACK = 0.05


def resample(stamps: np.ndarray, start: float, end: float, fps: float) -> np.ndarray:
    """Indices of the frames nearest to the grid end - k/fps (k = 0..steps) within
    [start, end], each frame at most once, in increasing stamp order.

    The grid may have far more points than frames are held (a long window at a
    high fps), so it is never built: each frame owns the grid indices between the
    midpoints to its neighbours; one owning an index over two steps from every
    midpoint is picked outright, and only indices near a midpoint or a grid end,
    where rounding decides ties, are looked up. O(frames held)."""
    eps = 1e-9  # stamps built from sec + nanosec carry float rounding
    lo = np.searchsorted(stamps, start - eps, side="left")
    hi = np.searchsorted(stamps, end + eps, side="right")
    if hi <= lo:
        return np.empty(0, np.intp)
    held = stamps[lo:hi]  # (N,)
    # a grid point up to GRID_SLACK of a step before `start` still counts: a window cut at a
    # frame's own stamp (`since`) must not lose that frame to a capture-jitter span of 1.9996 steps
    steps = np.floor((end - start) * fps + GRID_SLACK)
    with np.errstate(over="ignore"):  # a huge fps overflows to inf; the clip bounds it
        k_mid = np.clip((end - (held[:-1] + held[1:]) / 2) * fps, 0, steps)  # (N - 1,)
    near = np.floor(np.concatenate([[0.0, steps], k_mid]))[:, None] + np.arange(-2, 3)  # (N + 1, 5)
    k_near = np.unique(np.clip(near, 0, steps))
    looked_up = nearest(held, end - k_near / fps)
    newest_k = np.concatenate([k_mid, [0.0]])  # (N,) frame j owns indices from here...
    oldest_k = np.concatenate([[steps], k_mid])  # (N,) ...to here
    outright = np.flatnonzero(np.floor(newest_k + 2) + 1 < oldest_k - 2)
    return lo + np.union1d(looked_up, outright)


def grid_fps(stamps: np.ndarray, end: float, fps: float) -> float | None:
    """The nominal rate of frames resampled on the grid end - k/fps: each stamp snapped to its
    grid index k, so capture jitter drops out while a camera slower than the grid (every other
    index taken) or a clip subsampled to max_frames keeps its true mean rate. None for one frame."""
    if len(stamps) < 2:
        return None
    k = np.rint((end - stamps) * fps)  # (T,) grid index of each frame, decreasing
    span = float(k[0] - k[-1])
    return (len(stamps) - 1) * fps / span if span > 0 else None


def even_subsample(count: int, max_count: int) -> np.ndarray:
    """Up to max_count indices spread evenly over range(count), first and last included."""
    if count <= max_count:
        return np.arange(count)
    if max_count == 1:
        return np.array([count - 1])
    return np.round(np.linspace(0, count - 1, max_count)).astype(np.intp)


def tile(columns: list[list[np.ndarray]]) -> np.ndarray:
    """Stack per-camera frame lists into (T, H, W_total, 3), cameras left to right.

    Every camera is scaled to the reference camera's height; a camera whose
    resolution changed mid-window is scaled to the size of its newest frame.
    """
    height = columns[0][-1].shape[0]
    sizes = []
    for column in columns:
        h, w = column[-1].shape[:2]
        sizes.append((height, max(1, round(w * height / h))))
    total_width = sum(w for _, w in sizes)
    out = np.empty((len(columns[0]), height, total_width, 3), np.uint8)  # (T, H, W_total, 3)
    x = 0
    for column, (h, w) in zip(columns, sizes):
        for t, frame in enumerate(column):
            out[t, :, x : x + w] = frame if frame.shape[:2] == (h, w) else _resize(frame, h, w)
        x += w
    return out


def _resize(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    import cv2  # lazily: only mixed resolutions need it

    shrinking = height * width < frame.shape[0] * frame.shape[1]
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)

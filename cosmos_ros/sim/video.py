"""MP4 clips through imageio-ffmpeg's bundled static ffmpeg (H.264, no system ffmpeg needed)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import imageio_ffmpeg
import numpy as np


def write_mp4(path: Path, frames: np.ndarray, fps: float, *, crf: int = 18) -> Path:
    """(T, H, W, 3) uint8 RGB → H.264 mp4 (yuv420p, plays everywhere).

    Written to a temporary name and renamed at the end, so a crash never leaves a file
    that looks finished."""
    path = Path(path)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise ValueError(f"H.264 yuv420p needs even frame sizes, got {frames.shape[2]}x{frames.shape[1]}")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.stem + ".tmp" + path.suffix)
    writer = imageio_ffmpeg.write_frames(
        str(partial), (frames.shape[2], frames.shape[1]), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
        quality=None, macro_block_size=2, output_params=["-crf", str(crf), "-preset", "veryfast"],
        ffmpeg_log_level="error",
    )  # fmt: skip
    writer.send(None)  # start ffmpeg
    for frame in frames:
        writer.send(np.ascontiguousarray(frame))
    writer.close()
    os.replace(partial, path)
    return path


def read_mp4(path: Path) -> np.ndarray:
    """All frames of a video as (T, H, W, 3) uint8 RGB; ValueError if it cannot be decoded."""
    try:
        reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
        meta = next(reader)
        width, height = meta["size"]
        frames = [np.frombuffer(buf, np.uint8).reshape(height, width, 3) for buf in reader]
    except (OSError, RuntimeError, StopIteration, KeyError) as exc:
        raise ValueError(f"{path}: not a readable video ({exc})") from exc
    if not frames:
        raise ValueError(f"{path}: holds no frames")
    return np.stack(frames)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

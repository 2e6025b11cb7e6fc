"""Simulated clip generation: clips per second per core for each scenario at 256x256 x 32 frames.

For each scenario this generates clips one after another in this process — physics, RGB and
segmentation renders (MuJoCo, EGL on CPU), labels and questions — then encodes each to H.264,
and measures wall time and the CPU time of the process (all threads: llvmpipe renders on
several). clips/s/core is clips per CPU-second, so it holds whatever the core count; the issue's
goal is >= 1 for the physics scenarios.

    python bench/simgen.py [--clips 6] [--size 256] [--frames 32]
    cosmos-ros bench simgen [same arguments]

The last line printed is `{"bench": "simgen", "machine": ..., "metrics": {...}}`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

import cosmos_ros.sim  # noqa: F401 - selects headless EGL before mujoco loads
from cosmos_ros.sim.scenarios import TASKS, generate, load_config
from cosmos_ros.sim.video import write_mp4

PHYSICS = ("object_permanence", "arrow_of_time", "manipulation")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_description() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor(),
    )
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu}, {os.cpu_count()} cores, {system}, MUJOCO_GL={os.environ.get('MUJOCO_GL')}"


def measure(task: str, clips: int, size: int, frames: int, folder: Path) -> dict:
    cfg = load_config(task, width=size, height=size, num_frames=frames)
    generate(cfg, 10_000)  # warm-up: first GL context, shader compilation
    wall, cpu = time.perf_counter(), cpu_seconds()
    samples = [generate(cfg, i) for i in range(clips)]
    gen_wall, gen_cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    wall, cpu = time.perf_counter(), cpu_seconds()
    for i, sample in enumerate(samples):
        write_mp4(folder / f"{task}_{i}.mp4", sample.frames, sample.fps)
    # ffmpeg runs in a child process: its CPU time is counted through RUSAGE_CHILDREN
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    enc_wall = time.perf_counter() - wall
    enc_cpu = cpu_seconds() - cpu + children.ru_utime + children.ru_stime - measure.children_before
    measure.children_before = children.ru_utime + children.ru_stime
    return {
        "clips_per_s": clips / gen_wall,
        "clips_per_s_per_core": clips / gen_cpu,
        "clips_per_s_per_core_with_mp4": clips / (gen_cpu + enc_cpu),
        "mp4_share": enc_wall / (gen_wall + enc_wall),
    }


measure.children_before = 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", type=int, default=6, help="clips per scenario")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--tasks", default=",".join(TASKS))
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    metrics: dict[str, float] = {}
    table = Table(
        title=f"clip generation, {args.size}x{args.size} x {args.frames} frames, {args.clips} clips each"
    )
    for column in ("scenario", "clips/s (wall)", "clips/s/core", "clips/s/core incl. mp4", "mp4 share"):
        table.add_column(column)
    with tempfile.TemporaryDirectory() as folder:
        for task in args.tasks.split(","):
            result = measure(task, args.clips, args.size, args.frames, Path(folder))
            table.add_row(
                task,
                *(
                    f"{result[k]:.2f}"
                    for k in (
                        "clips_per_s",
                        "clips_per_s_per_core",
                        "clips_per_s_per_core_with_mp4",
                        "mp4_share",
                    )
                ),
            )
            for key, value in result.items():
                metrics[f"{task}_{key}"] = round(value, 3)
    physics = [
        metrics[f"{t}_clips_per_s_per_core"] for t in PHYSICS if f"{t}_clips_per_s_per_core" in metrics
    ]
    if physics:
        metrics["physics_scenarios_min_clips_per_s_per_core"] = min(physics)
    console.print(table)
    console.file.flush()
    print(json.dumps({"bench": "simgen", "machine": machine_description(), "metrics": metrics}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

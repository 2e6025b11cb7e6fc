"""Small, fast renders for the sim tests: the physics runs at full length, only fewer and
smaller frames are drawn (the same seconds at 4 fps, 96x96)."""

from __future__ import annotations

import dataclasses

import pytest

import cosmos_ros.sim  # noqa: F401 - selects headless EGL before mujoco is imported

pytest.importorskip("mujoco", reason="mujoco is not installed (pip install mujoco)")

from cosmos_ros.sim.scenarios import load_config  # noqa: E402


def small(task: str, **fields):
    cfg = load_config(task)
    seconds = cfg.render.duration_s
    render = dataclasses.replace(cfg.render, width=96, height=96, fps=4.0, num_frames=int(round(seconds * 4)))
    return dataclasses.replace(cfg, render=render, **fields)


@pytest.fixture(scope="session")
def configs():
    return {
        task: small(task) for task in ("object_permanence", "arrow_of_time", "spatial_puzzle", "manipulation")
    }

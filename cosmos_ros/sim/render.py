"""Headless rendering of a Trajectory: RGB frames plus segmentation-based visibility.

MuJoCo renders offscreen through EGL (Mesa llvmpipe on CPU); `cosmos_ros.sim` selects it
before mujoco is first imported unless MUJOCO_GL is already set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import mujoco
import numpy as np

from cosmos_ros.sim.physics import Simulation, Trajectory

CAMERA = "cam"
_GEOM = int(mujoco.mjtObj.mjOBJ_GEOM)  # an int: comparing arrays with the enum object is elementwise Python


@dataclass
class Rendering:
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    visible_px: dict[str, np.ndarray]  # body name -> (T,) pixels where that body is the nearest surface


def render(
    sim: Simulation, trajectory: Trajectory, width: int, height: int, *, rgb: bool = True
) -> Rendering:
    """Renders every frame of the trajectory from the scene camera.

    Visibility counts segmentation pixels per tracked body (Scene.tracked): an object hidden
    behind an occluder or inside a container has 0 pixels while qpos still holds its position.
    rgb=False renders segmentation only (for finding hidden frames before the final render).
    """
    m, d = sim.model, sim.data
    tracked = sim.scene.tracked
    body_ids = [sim.body_id(name) for name in tracked]
    # geom id -> column in the per-body counts; untracked geoms fall into a last, ignored column
    column_of_geom = np.full(m.ngeom + 1, len(tracked), np.int64)
    for column, body in enumerate(body_ids):
        column_of_geom[np.flatnonzero(m.geom_bodyid == body)] = column
    frames = np.empty((len(trajectory), height, width, 3), np.uint8) if rgb else None
    counts = np.zeros((len(trajectory), len(tracked) + 1), np.int64)
    try:
        renderer = mujoco.Renderer(m, height, width)
    except mujoco.FatalError as exc:
        raise RuntimeError(
            f"cannot create an offscreen OpenGL context ({exc}); MUJOCO_GL={os.environ.get('MUJOCO_GL')!r}. "
            "Import cosmos_ros.sim before mujoco (or set MUJOCO_GL=egl) "
            "and install EGL (Debian: libegl1 libgl1-mesa-dri)"
        ) from exc
    try:
        # One pass per mode: switching between RGB and segmentation every frame costs ~30x more.
        if rgb:
            for k in range(len(trajectory)):
                _set_state(m, d, trajectory, k)
                renderer.update_scene(d, camera=CAMERA)
                frames[k] = renderer.render()
        if tracked:
            renderer.enable_segmentation_rendering()
            for k in range(len(trajectory)):
                _set_state(m, d, trajectory, k)
                renderer.update_scene(d, camera=CAMERA)
                seg = renderer.render()  # (H, W, 2): object id, object type; -1 = background
                ids = seg[..., 0].ravel()
                is_geom = (seg[..., 1].ravel() == _GEOM) & (ids >= 0)
                geoms = np.where(is_geom, ids, m.ngeom)
                counts[k] = np.bincount(column_of_geom[geoms], minlength=len(tracked) + 1)
    finally:
        renderer.close()
    visible = {name: counts[:, i].copy() for i, name in enumerate(tracked)}
    return Rendering(frames if rgb else np.zeros((0, height, width, 3), np.uint8), visible)


def _set_state(m: mujoco.MjModel, d: mujoco.MjData, trajectory: Trajectory, k: int) -> None:
    d.qpos[:] = trajectory.qpos[k]
    d.qvel[:] = trajectory.qvel[k]
    if m.nmocap:
        d.mocap_pos[:] = trajectory.mocap_pos[k]
        d.mocap_quat[:] = trajectory.mocap_quat[k]
    mujoco.mj_forward(m, d)

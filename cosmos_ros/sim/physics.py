"""MuJoCo physics for a Scene: step it, record the state at every frame time.

The recorded Trajectory is all the renderer, the labels and the USD export need, so a clip can
be rendered (or re-rendered, reversed, cropped) without simulating again. Physics is cheap here
(~10^5 steps/s); rendering is the cost, so generators simulate freely and render once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import mujoco
import numpy as np

from cosmos_ros.sim.scene import Scene, to_mjcf

Control = Callable[[mujoco.MjModel, mujoco.MjData], None]
Edit = Callable[[mujoco.MjModel, mujoco.MjData], None]


@dataclass
class Trajectory:
    """State at each frame time. T frames, B bodies (index 0 is the world)."""

    times: np.ndarray  # (T,) seconds of simulated time
    qpos: np.ndarray  # (T, nq)
    qvel: np.ndarray  # (T, nv)
    mocap_pos: np.ndarray  # (T, nmocap, 3)
    mocap_quat: np.ndarray  # (T, nmocap, 4) w, x, y, z
    xpos: np.ndarray  # (T, B, 3) body positions in the world
    xquat: np.ndarray  # (T, B, 4) body orientations, w x y z
    body_names: tuple[str, ...]
    ctrl: np.ndarray | None = None  # (T, nu) actuator commands in force at each frame

    def __len__(self) -> int:
        return int(self.times.shape[0])

    def index(self, body: str) -> int:
        try:
            return self.body_names.index(body)
        except ValueError:
            raise KeyError(f"no body {body!r} in the trajectory; bodies: {self.body_names}") from None

    def position(self, body: str) -> np.ndarray:
        """(T, 3) world position of a body."""
        return self.xpos[:, self.index(body)]

    def select(self, frames) -> Trajectory:
        """The frames at the given indices, in the given order (reversal, crops)."""
        frames = np.asarray(frames, int)
        return Trajectory(
            self.times[frames], self.qpos[frames], self.qvel[frames], self.mocap_pos[frames],
            self.mocap_quat[frames], self.xpos[frames], self.xquat[frames], self.body_names,
            None if self.ctrl is None else self.ctrl[frames],
        )  # fmt: skip


class Simulation:
    """A compiled Scene and its state; `run` steps it and records a Trajectory."""

    def __init__(self, scene: Scene, name: str = "scenario"):
        self.scene = scene
        self.xml = to_mjcf(scene, name)
        self.model = mujoco.MjModel.from_xml_string(self.xml)
        self.data = mujoco.MjData(self.model)
        self.body_names = tuple(self.model.body(i).name for i in range(self.model.nbody))

    def body_id(self, name: str) -> int:
        return self.body_names.index(name)

    def free_qpos(self, body: str) -> slice:
        """qpos slice (x, y, z, qw, qx, qy, qz) of a free body."""
        joint = self.model.body_jntadr[self.body_id(body)]
        if joint < 0 or int(self.model.jnt_type[joint]) != int(mujoco.mjtJoint.mjJNT_FREE):
            raise ValueError(f"body {body!r} has no free joint")
        start = self.model.jnt_qposadr[joint]
        return slice(start, start + 7)

    def free_qvel(self, body: str) -> slice:
        joint = self.model.body_jntadr[self.body_id(body)]
        start = self.model.jnt_dofadr[joint]
        return slice(start, start + 6)

    def mocap_index(self, body: str) -> int:
        index = int(self.model.body_mocapid[self.body_id(body)])
        if index < 0:
            raise ValueError(f"body {body!r} is not a mocap body")
        return index

    def set_velocity(self, body: str, linear=(0.0, 0.0, 0.0), angular=(0.0, 0.0, 0.0)) -> None:
        qvel = self.free_qvel(body)
        self.data.qvel[qvel] = (*linear, *angular)

    def run(
        self,
        fps: float,
        num_frames: int,
        *,
        control: Control | None = None,
        edits: dict[int, Edit] | None = None,
    ) -> Trajectory:
        """Steps from the current state, recording frame k at time k / fps (k = 0 is the start).

        control(model, data) runs before every step (actuator targets, mocap motion);
        edits[k](model, data) changes the state just before frame k is recorded (violations).
        """
        m, d = self.model, self.data
        edits = edits or {}
        mujoco.mj_forward(m, d)
        rows = {key: [] for key in ("times", "qpos", "qvel", "mocap_pos", "mocap_quat", "xpos", "xquat", "ctrl")}
        for k in range(num_frames):
            target = k / fps
            while d.time < target - 0.5 * m.opt.timestep:
                if control is not None:
                    control(m, d)
                mujoco.mj_step(m, d)
            if k in edits:
                edits[k](m, d)
                mujoco.mj_forward(m, d)
            for key, value in (
                ("times", d.time), ("qpos", d.qpos), ("qvel", d.qvel), ("mocap_pos", d.mocap_pos),
                ("mocap_quat", d.mocap_quat), ("xpos", d.xpos), ("xquat", d.xquat), ("ctrl", d.ctrl),
            ):  # fmt: skip
                rows[key].append(np.array(value, copy=True))
        arrays = {key: np.asarray(values) for key, values in rows.items()}
        return Trajectory(body_names=self.body_names, **arrays)


def free_bodies(model: mujoco.MjModel) -> list[int]:
    """The bodies on a free joint: the ones physics moves on its own."""
    return [
        body
        for body in range(1, model.nbody)
        if model.body_jntadr[body] >= 0
        and int(model.jnt_type[model.body_jntadr[body]]) == int(mujoco.mjtJoint.mjJNT_FREE)
    ]


def speeds(trajectory: Trajectory, model: mujoco.MjModel) -> np.ndarray:
    """(T,) largest linear speed (m/s) of any free body at each frame."""
    columns = []
    for body in free_bodies(model):
        start = model.jnt_dofadr[model.body_jntadr[body]]
        columns.append(np.linalg.norm(trajectory.qvel[:, start : start + 3], axis=1))
    return np.max(columns, axis=0) if columns else np.zeros(len(trajectory))

"""A gantry gripper in plain MJCF (no robosuite): three slide joints carry a palm with two
parallel fingers, all driven by position actuators, plus a scripted controller.

Grasps are physical: the fingers squeeze the block and friction holds it, so a misplaced grasp
closes on air and an opened hand drops what it holds. The script is a list of phases, each
labelled with the subtask a person would name; the labels of a clip come from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from cosmos_ros.sim.scenarios.common import HARD_FRICTION, smoothstep

OPEN, CLOSED = -0.01, 0.03  # finger joint targets; the open hand spans 8.4 cm
FINGER_REACH = 0.09  # palm origin to fingertip, m
HOME = (0.0, -0.25, 0.38)

WORLDBODY = """
<body name="gripper" pos="0 0 0" gravcomp="1">
  <joint name="gx" type="slide" axis="1 0 0" range="-1 1" damping="40"/>
  <joint name="gy" type="slide" axis="0 1 0" range="-1 1" damping="40"/>
  <joint name="gz" type="slide" axis="0 0 1" range="0.05 0.8" damping="40"/>
  <inertial pos="0 0 0" mass="1" diaginertia="0.01 0.01 0.01"/>
  <geom name="palm" type="box" size="0.06 0.025 0.015" rgba="0.25 0.25 0.28 1"
        friction="1.2 0.01 0.001"/>
  <geom name="rod" type="cylinder" size="0.018 0.5" pos="0 0 0.515" rgba="0.55 0.55 0.58 1"
        contype="0" conaffinity="0"/>
  <body name="finger_left" pos="-0.04 0 -0.05" gravcomp="1">
    <joint name="finger_left" type="slide" axis="1 0 0" range="-0.01 0.05" damping="5"/>
    <geom name="finger_left" type="box" size="0.008 0.02 0.04" rgba="0.15 0.15 0.17 1" mass="0.05"
          friction="2 0.02 0.001"/>
  </body>
  <body name="finger_right" pos="0.04 0 -0.05" gravcomp="1">
    <joint name="finger_right" type="slide" axis="-1 0 0" range="-0.01 0.05" damping="5"/>
    <geom name="finger_right" type="box" size="0.008 0.02 0.04" rgba="0.15 0.15 0.17 1" mass="0.05"
          friction="2 0.02 0.001"/>
  </body>
</body>
"""

MODEL = """
<equality><joint joint1="finger_left" joint2="finger_right"/></equality>
<actuator>
  <position name="gx" joint="gx" kp="2000" kv="200"/>
  <position name="gy" joint="gy" kp="2000" kv="200"/>
  <position name="gz" joint="gz" kp="2000" kv="200"/>
  <position name="grip" joint="finger_left" kp="200" kv="5" forcerange="-15 15"/>
</actuator>
"""

OPTIONS = HARD_FRICTION  # firm frictional grasps


@dataclass(frozen=True)
class Phase:
    """Move the palm to `target` (x, y, z) and the fingers to `grip` over `duration` seconds."""

    subtask: str
    duration: float
    target: tuple[float, float, float]
    grip: float


class Script:
    """Phases played back to back from HOME with an open hand; eased motion within each."""

    def __init__(self, phases: list[Phase], start_delay: float = 0.0):
        self.phases = phases
        self.starts = np.cumsum([start_delay] + [p.duration for p in phases])  # (P + 1,)
        self.points = [np.array(HOME)] + [np.asarray(p.target, float) for p in phases]
        self.grips = [OPEN] + [p.grip for p in phases]

    @property
    def duration(self) -> float:
        return float(self.starts[-1])

    def phase_at(self, t: float) -> int:
        """Index of the phase running at time t (-1 before the first, P-1 after the last)."""
        return int(np.searchsorted(self.starts, t, side="right")) - 1 if t >= self.starts[0] else -1

    def target(self, t: float) -> tuple[np.ndarray, float]:
        i = min(self.phase_at(t), len(self.phases) - 1)
        if i < 0:
            return self.points[0], self.grips[0]
        s = smoothstep((t - self.starts[i]) / self.phases[i].duration)
        point = self.points[i] + (self.points[i + 1] - self.points[i]) * s
        grip = self.grips[i] + (self.grips[i + 1] - self.grips[i]) * s
        return point, grip

    def control(self, model: mujoco.MjModel, data: mujoco.MjData) -> None:
        point, grip = self.target(data.time)
        data.ctrl[:4] = (*point, grip)


def home_qpos(model: mujoco.MjModel, data: mujoco.MjData) -> None:
    """Puts the gripper at HOME with the hand open (before the first step)."""
    for name, value in zip(("gx", "gy", "gz"), HOME):
        data.qpos[model.jnt_qposadr[model.joint(name).id]] = value
    data.ctrl[:4] = (*HOME, OPEN)

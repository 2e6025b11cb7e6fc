"""Simulated training and test data: scenario configs, MuJoCo physics and rendering, USD export,
QA datasets. Stands on `cosmos_ros.core` only: no model, no training, no rclpy.

MuJoCo picks its OpenGL platform when it is first imported, so headless EGL is selected here,
before any submodule imports mujoco (a user's MUJOCO_GL wins).
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

"""The exported stages as another USD physics engine reads them: NVIDIA's Newton (pip `newton`,
the UsdPhysics importer Isaac Lab's stack uses, on CPU through Warp) loads each stage with the
MuJoCo run's initial state — poses, and velocities authored in each body's own frame, which
Newton rotates by the body's orientation."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pxr", reason="usd-core is not installed (pip install usd-core)")
newton = pytest.importorskip("newton", reason="Newton is not installed (pip install 'cosmos_ros[newton]')")
pytest.importorskip("newton_usd_schemas", reason="newton-usd-schemas is not installed (pip install 'cosmos_ros[newton]')")

import mujoco
import warp as wp

from cosmos_ros.sim.scenarios import generate
from cosmos_ros.sim.usd import export_usd

wp.config.quiet = True

# (task, variant, seed): a ball in flight with a tilted, spinning start; a ball rolling at speed
CASES = [("arrow_of_time", "bouncing", 4), ("object_permanence", "occluder_pass", 0)]


def _mujoco_start(sample) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """{body name: (position, world linear velocity, world angular velocity)} of each free body."""
    model, traj = sample.sim.model, sample.trajectory
    start = {}
    for body in range(1, model.nbody):
        joint = model.body_jntadr[body]
        if joint < 0 or model.jnt_type[joint] != mujoco.mjtJoint.mjJNT_FREE:
            continue
        dof = model.jnt_dofadr[joint]
        rotation = np.zeros(9)
        mujoco.mju_quat2Mat(rotation, traj.xquat[0, body])
        angular = rotation.reshape(3, 3) @ traj.qvel[0, dof + 3 : dof + 6]
        start[model.body(body).name] = (traj.xpos[0, body], traj.qvel[0, dof : dof + 3], angular)
    return start


@pytest.mark.parametrize(("task", "variant", "seed"), CASES)
def test_newton_starts_from_the_recorded_state(configs, tmp_path, task, variant, seed):
    sample = generate(configs[task], seed, variant=variant)
    path = export_usd(sample.sim, sample.trajectory, tmp_path / "run.usda", sample.fps)
    builder = newton.ModelBuilder()
    builder.add_usd(str(path))
    labels = list(builder.body_label)
    state = builder.finalize(device="cpu").state()
    q, qd = state.body_q.numpy(), state.body_qd.numpy()
    expected = _mujoco_start(sample)
    assert expected and any(np.abs(v).max() > 1e-2 for _, v, _ in expected.values())  # something moves
    for name, (position, linear, angular) in expected.items():
        i = next(k for k, label in enumerate(labels) if label.endswith("/" + name))
        np.testing.assert_allclose(q[i, :3], position, atol=1e-5)
        np.testing.assert_allclose(qd[i, :3], linear, atol=1e-4)  # world frame, as MuJoCo has it
        np.testing.assert_allclose(qd[i, 3:], angular, atol=1e-4)

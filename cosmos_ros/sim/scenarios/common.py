"""Pieces every scenario uses: the base scene, mocap motion schedules, visibility thresholds."""

from __future__ import annotations

import mujoco
import numpy as np

from cosmos_ros.sim.config import RenderConfig, TaskConfig, pick_variant
from cosmos_ros.sim.physics import Simulation, Trajectory
from cosmos_ros.sim.sample import Rejected, Sample
from cosmos_ros.sim.scene import Body, Camera, Scene, sample_camera, sample_floor, sample_light, sample_sky

# Where removed objects wait: behind the camera, on the (infinite) floor, out of every view.
PARKING = (0.0, -9.0)


def draw_sample(cfg: TaskConfig, seed: int, variant: str | None, attempt) -> Sample:
    """Runs attempt(rng, variant) until a draw is not degenerate.

    The variant is drawn once per clip, before any physics: were it drawn again after each
    rejection, variants that are rejected more often would be under-represented."""
    rng = np.random.default_rng(seed)
    drawn = pick_variant(cfg.variants, rng)
    chosen = variant or drawn
    reasons = []
    for _ in range(cfg.max_attempts):
        try:
            sample = attempt(rng, chosen)
        except Rejected as exc:
            reasons.append(str(exc))
            continue
        sample.seed = seed
        return sample
    raise RuntimeError(
        f"{cfg.task}: {cfg.max_attempts} degenerate draws in a row for variant {chosen} (seed {seed}); "
        f"last reasons: {reasons[-3:]}"
    )


def base_scene(
    cfg: TaskConfig, rng: np.random.Generator, bodies: list[Body], *, tracked=(), lookat=(0.0, 0.1, 0.1), **kw
) -> Scene:
    camera: Camera = sample_camera(cfg.scene, rng, lookat)
    return Scene(
        bodies=bodies,
        camera=camera,
        light=sample_light(cfg.scene, rng),
        floor_rgb=sample_floor(cfg.scene, rng),
        sky_rgb=sample_sky(rng),
        tracked=tuple(tracked),
        **kw,
    )


# Hard contact friction: MuJoCo's default (pyramidal cone, impratio 1) keeps a contact's friction
# soft, so rolling friction below its bound acts as a drag: a rolling ball's speed decays
# exponentially and it creeps on past where a friction torque would stop it. An elliptic cone
# with impratio 10 gives the constant-torque rolling resistance (and firm grasps) that PhysX and
# Newton model, so an exported stage replays the same roll.
HARD_FRICTION = 'cone="elliptic" impratio="10"'


def min_visible_px(render: RenderConfig, px_at_256: int) -> int:
    """A pixel-count threshold given for 256x256, scaled to the render size (at least 2)."""
    return max(2, round(px_at_256 * render.width * render.height / 65536))


def smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3 - 2 * x)


class MocapPath:
    """Piecewise motion of one mocap body: keyframes (time, position), eased in and out."""

    def __init__(self, keyframes: list[tuple[float, tuple[float, float, float]]]):
        self.times = [t for t, _ in keyframes]
        self.points = [np.asarray(p, float) for _, p in keyframes]
        if any(b < a for a, b in zip(self.times, self.times[1:])):
            raise ValueError(f"keyframe times must not decrease: {self.times}")

    def __call__(self, t: float) -> np.ndarray:
        if t <= self.times[0]:
            return self.points[0]
        for (t0, p0), (t1, p1) in zip(zip(self.times, self.points), zip(self.times[1:], self.points[1:])):
            if t <= t1:
                return p0 + (p1 - p0) * smoothstep((t - t0) / max(t1 - t0, 1e-9))
        return self.points[-1]


def mocap_control(sim: Simulation, paths: dict[str, MocapPath]):
    """A control callback that moves each named mocap body along its path."""
    indices = {sim.mocap_index(name): path for name, path in paths.items()}

    def control(model: mujoco.MjModel, data: mujoco.MjData) -> None:
        t = data.time + model.opt.timestep  # the pose the body should reach by the end of this step
        for index, path in indices.items():
            data.mocap_pos[index] = path(t)

    return control


def park(sim: Simulation, body: str):
    """An edit that removes a free body from the scene: moved to PARKING, at rest."""
    qpos, qvel = sim.free_qpos(body), sim.free_qvel(body)

    def edit(model: mujoco.MjModel, data: mujoco.MjData) -> None:
        radius = float(model.geom_rbound[model.body_geomadr[sim.body_id(body)]])
        data.qpos[qpos] = (*PARKING, radius, 1.0, 0.0, 0.0, 0.0)
        data.qvel[qvel] = 0.0

    return edit


def place(sim: Simulation, body: str, xyz):
    """An edit that puts a free body at xyz, at rest (a teleport or a spontaneous appearance)."""
    qpos, qvel = sim.free_qpos(body), sim.free_qvel(body)

    def edit(model: mujoco.MjModel, data: mujoco.MjData) -> None:
        data.qpos[qpos] = (*xyz, 1.0, 0.0, 0.0, 0.0)
        data.qvel[qvel] = 0.0

    return edit


def is_parked(position: np.ndarray) -> np.ndarray:
    """(T, 3) positions → (T,) True where the body is in the parking spot (does not exist)."""
    return np.hypot(position[:, 0] - PARKING[0], position[:, 1] - PARKING[1]) < 1.0


def pixel_track(scene: Scene, trajectory: Trajectory, body: str, render: RenderConfig) -> np.ndarray:
    """(T, 2) where the body's centre projects in the image, whether or not it is visible."""
    return scene.camera.project(trajectory.position(body), render.width, render.height)


def in_view(pixels: np.ndarray, render: RenderConfig, margin: float = 0.0) -> np.ndarray:
    u, v = pixels[:, 0], pixels[:, 1]
    with np.errstate(invalid="ignore"):
        return (u >= -margin) & (u < render.width + margin) & (v >= -margin) & (v < render.height + margin)


def rounded(array, digits: int = 4) -> list:
    """A JSON-ready nested list, NaN written as None."""
    values = np.round(np.asarray(array, float), digits)
    return np.where(np.isnan(values), None, values).tolist()

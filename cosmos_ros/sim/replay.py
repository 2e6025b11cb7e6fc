"""Replaying an exported stage in another physics engine: NVIDIA's Newton (pip `newton`, the
UsdPhysics importer of Isaac Lab's stack; CPU through Warp), to check that what a stage records
is what a USD physics engine does with it.

The engine gets only what the stage holds: bodies, colliders, materials, masses, joints and
drives, the initial state, the drives' time-sampled targets (the robot's commands, as a
controller would send them) and the time-sampled poses of kinematic bodies (mocap props). The
motion of everything else is the engine's own. One thing Newton's importer does not read is
done here: `physxRigidBody:disableGravity` (a robot that holds itself up, MuJoCo's gravcomp),
as a force that cancels the body's weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pxr import Usd, UsdGeom, UsdPhysics

from cosmos_ros.sim.physics import free_bodies, speeds
from cosmos_ros.sim.usd_joints import DISABLE_GRAVITY

DRIVE_TARGET = "drive:linear:physics:targetPosition"


@dataclass
class Replay:
    """Body paths' world positions at the stage's frame times, and the engine's last state."""

    times: np.ndarray  # (T,) seconds
    positions: dict[str, np.ndarray]  # body name (last path element) -> (T, 3)
    final_speed: dict[str, float]  # m/s at the end
    heights: dict[str, np.ndarray]  # body name -> (steps,) height at every engine step

    def position(self, body: str) -> np.ndarray:
        return self.positions[body]


def _samples(attr: Usd.Attribute, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """(times in s, values) of an attribute's time samples, or its plain value at t = 0."""
    times = attr.GetTimeSamples()
    if not times:
        return np.zeros(1), np.array([float(attr.Get())])
    return np.asarray(times, float) / fps, np.array([float(attr.Get(Usd.TimeCode(t))) for t in times])


def _frame_count(stage: Usd.Stage) -> int:
    return int(stage.GetEndTimeCode() - stage.GetStartTimeCode()) + 1


def _world_poses(stage: Usd.Stage, path: str, frames: int) -> np.ndarray:
    """(frames, 7) world pose (x, y, z, qx, qy, qz, qw: Warp's layout) of a prim at each frame."""
    xformable = UsdGeom.Xformable(stage.GetPrimAtPath(path))
    poses = np.zeros((frames, 7))
    for k in range(frames):
        matrix = xformable.ComputeLocalToWorldTransform(Usd.TimeCode(k))
        quat = matrix.RemoveScaleShear().ExtractRotationQuat()
        poses[k, :3] = matrix.ExtractTranslation()
        poses[k, 3:6], poses[k, 6] = quat.GetImaginary(), quat.GetReal()
    return poses


GRASP_ITERATIONS = 8


def replay_in_newton(
    path: Path, *, hz: int = 512, iterations: int | None = None, seconds: float | None = None
) -> Replay:
    """Simulates the stage in Newton's XPBD solver (restitution on) from its initial state over
    its time range, feeding every drive its time-sampled target and every kinematic body its
    time-sampled pose (blended linearly between frames; moved, not spun: the project's props
    do not rotate); records each body's position at the stage's frame times.

    XPBD iterations, unless given: GRASP_ITERATIONS for a stage with joints, else Newton's
    default 2. At 2, fingers driven into a block squeeze through the friction that holds it and
    the grasp lets go mid-lift; but XPBD applies rolling resistance once per iteration, so at 8 a
    rolling ball stops well short of where MuJoCo's does."""
    import newton  # the [newton] extra
    import warp as wp

    wp.config.quiet = True
    stage = Usd.Stage.Open(str(path))
    fps = stage.GetTimeCodesPerSecond()
    if hz < fps:
        raise ValueError(f"replay rate {hz} Hz is below the stage's {fps} frames per second")
    frames = _frame_count(stage)
    seconds = (frames - 1) / fps if seconds is None else seconds
    builder = newton.ModelBuilder()
    builder.add_usd(str(path))
    bodies = list(builder.body_label)
    joints = list(builder.joint_label)
    model = builder.finalize(device="cpu")
    if iterations is None:
        articulated = any(t != newton.JointType.FREE for t in builder.joint_type)
        iterations = GRASP_ITERATIONS if articulated else 2
    solver = newton.solvers.SolverXPBD(model, iterations=iterations, enable_restitution=True)
    state, following, control = model.state(), model.state(), model.control()
    pipeline = newton.CollisionPipeline(model)
    contacts = pipeline.contacts()

    q_start = model.joint_q_start.numpy()
    drives = []  # (coordinate, sample times, targets)
    for j, label in enumerate(joints):
        prim = stage.GetPrimAtPath(label) if label.startswith("/") else None
        if prim and prim.HasAPI(UsdPhysics.DriveAPI, UsdPhysics.Tokens.linear):
            drives.append((int(q_start[j]), *_samples(prim.GetAttribute(DRIVE_TARGET), fps)))
    weightless = np.zeros((len(bodies), 6), np.float32)  # cancels gravity on bodies that disable it
    masses, gravity = model.body_mass.numpy(), np.asarray(model.gravity.numpy()).reshape(-1, 3)[0]
    for b, label in enumerate(bodies):
        attr = stage.GetPrimAtPath(label).GetAttribute(DISABLE_GRAVITY)
        if attr and attr.Get():
            weightless[b, :3] = -masses[b] * gravity
    flags = model.body_flags.numpy()
    kinematic = [
        (b, _world_poses(stage, label, frames))
        for b, label in enumerate(bodies)
        if flags[b] & int(newton.BodyFlags.KINEMATIC)
    ]
    names = [label.rsplit("/", 1)[-1] for label in bodies]
    steps = round(seconds * hz)
    frame_steps = {round(k * hz / fps) for k in range(frames)}  # the steps that land on a frame time
    recorded, heights = [], []
    dt = 1.0 / hz
    for step in range(steps + 1):
        t = step * dt
        q = state.body_q.numpy()
        if step in frame_steps:
            recorded.append(q[:, :3].copy())
        heights.append(q[:, 2].copy())
        if step == steps:
            break
        if drives:
            target = control.joint_target_q.numpy()
            for coordinate, times, values in drives:
                target[coordinate] = np.interp(t, times, values)
            control.joint_target_q.assign(target)
        if kinematic:
            qd = state.body_qd.numpy()
            for b, poses in kinematic:
                k = min(t * fps, frames - 1.000001)
                lo, w = int(k), k - int(k)
                after = poses[lo + 1].copy()
                if np.dot(after[3:], poses[lo, 3:]) < 0:  # the same turn, the short way round
                    after[3:] *= -1
                pose = poses[lo] * (1 - w) + after * w
                pose[3:] /= np.linalg.norm(pose[3:])
                q[b] = pose
                qd[b, :3], qd[b, 3:] = (poses[lo + 1, :3] - poses[lo, :3]) * fps, 0.0
            state.body_q.assign(q)
            state.body_qd.assign(qd)
        state.clear_forces()
        if weightless.any():
            state.body_f.assign(weightless)
        pipeline.collide(state, contacts)
        solver.step(state, following, control, contacts, dt)
        state, following = following, state
    positions = np.asarray(recorded)  # (T, B, 3)
    speeds = np.linalg.norm(state.body_qd.numpy()[:, :3], axis=1)
    heights = np.asarray(heights)
    return Replay(
        times=np.arange(len(positions)) / fps,
        positions={n: positions[:, b] for b, n in enumerate(names)},
        final_speed={n: float(speeds[b]) for b, n in enumerate(names)},
        heights={n: heights[:, b] for b, n in enumerate(names)},
    )


def recorded_positions(path: Path) -> dict[str, np.ndarray]:
    """{body name: (T, 3) world positions} the stage records for its non-kinematic bodies, one
    per frame: what a replay of the stage alone is compared with."""
    stage = Usd.Stage.Open(str(path))
    frames = _frame_count(stage)
    return {
        prim.GetName(): _world_poses(stage, str(prim.GetPath()), frames)[:, :3]
        for prim in stage.Traverse()
        if UsdPhysics.RigidBodyAPI(prim) and not UsdPhysics.RigidBodyAPI(prim).GetKinematicEnabledAttr().Get()
    }


def stage_errors(path: Path, replay: Replay) -> dict[str, tuple[float, float]]:
    """{body: (final, largest) distance in m between the replay and the stage's own time samples}."""
    errors = {}
    for name, recorded in recorded_positions(path).items():
        distance = np.linalg.norm(
            replay.position(name)[: len(recorded)] - recorded[: len(replay.times)], axis=1
        )
        errors[name] = (float(distance[-1]), float(distance.max()))
    return errors


# What each kind of clip is judged by (the goals): picks by whether the block was lifted
# and placed, other manipulation by the outcome and the final pose, bounces by the rebound
# heights; chaotic clips (a box tumbling down a ramp, dominoes) by how each body comes to lie,
# its final height, not where; the rest by the final pose.
POSE_TOLERANCE_M = 0.1
BOUNCE_TOLERANCE = 0.25
CHAOTIC = {"arrow_of_time/toppling", "arrow_of_time/falling"}
REST_SPEED = 0.02  # m/s
LIE_TOLERANCE_M = 0.02  # final height: fallen, standing or on its side alike


def rebounds(heights: np.ndarray, floor: float) -> list[float]:
    """Heights above `floor` of each local maximum clear of the floor: a ball's rebounds."""
    z = np.asarray(heights) - floor
    return [float(z[i]) for i in range(1, len(z) - 1) if z[i] > z[i - 1] and z[i] >= z[i + 1] and z[i] > 1e-3]


def mujoco_heights(sample, body: str) -> np.ndarray:
    """The body's height at every MuJoCo step, rerun from the recorded first state (the
    recording holds frames only, too sparse for a rebound's peak)."""
    import mujoco

    model, traj = sample.sim.model, sample.trajectory
    data = mujoco.MjData(model)
    data.qpos[:], data.qvel[:] = traj.qpos[0], traj.qvel[0]
    b = model.body(body).id
    heights = []
    for _ in range(round((len(traj) - 1) / sample.fps / model.opt.timestep)):
        mujoco.mj_step(model, data)
        heights.append(float(data.xpos[b, 2]))
    return np.asarray(heights)


def replayed_manipulation_outcome(sample, replay: Replay) -> str:
    """The manipulation outcome the replayed motion shows, read as the scenario reads its own."""
    from cosmos_ros.sim.scenarios import manipulation_motion as motion

    model = sample.sim.model
    count = sum(name.startswith("block_") for name in sample.trajectory.body_names)
    pad = model.body("pad").id
    half = float(model.geom_size[model.body_geomadr[model.body("block_0").id], 0])
    handled = 0 if sample.labels["handled_block"] == sample.labels["target_block"] else 1
    pad_half = float(model.geom_size[model.body_geomadr[pad], 0])
    outcome, _ = motion.read_outcome(
        replay, count, 0, handled, half, model.body_pos[pad][:2], pad_half, sample.labels["skill"]
    )
    return outcome


def compare(sample, replay: Replay, name: str | None = None) -> dict:
    """The replay against the recorded run: the largest final-pose error of a free body, whether
    both came to rest, a ball's first rebounds, a manipulation's outcome; and `ok`, the verdict
    by the clip kind's criterion."""
    kind = f"{sample.task}/{sample.variant}"
    traj = sample.trajectory
    model = sample.sim.model
    bodies = [model.body(b).name for b in free_bodies(model)]
    errors = [float(np.linalg.norm(replay.position(b)[-1] - traj.position(b)[-1])) for b in bodies]
    row = {
        "clip": name or f"{kind} seed {sample.seed}",
        "final_error_m": max(errors),
        "mujoco_at_rest": bool(speeds(traj, model)[-1] < REST_SPEED),
        "newton_at_rest": max(replay.final_speed[b] for b in bodies) < REST_SPEED,
    }
    if sample.task == "manipulation":
        row["mujoco_outcome"] = sample.labels["outcome"]
        row["newton_outcome"] = replayed_manipulation_outcome(sample, replay)
        row["ok"] = row["newton_outcome"] == row["mujoco_outcome"] and (
            sample.labels["skill"] == "pick" or row["final_error_m"] < POSE_TOLERANCE_M
        )
    elif sample.variant == "bouncing":
        radius = float(model.geom_size[model.body_geomadr[model.body(bodies[0]).id], 0])
        ours = rebounds(mujoco_heights(sample, bodies[0]), radius)[:3]
        theirs = rebounds(replay.heights[bodies[0]], radius)[:3]
        row["rebounds_m"] = (ours, theirs)
        row["ok"] = len(theirs) >= len(ours) and all(
            abs(t / o - 1) <= BOUNCE_TOLERANCE for o, t in zip(ours, theirs)
        )
    elif kind in CHAOTIC:
        row["height_error_m"] = max(
            abs(float(replay.position(b)[-1, 2] - traj.position(b)[-1, 2])) for b in bodies
        )
        row["ok"] = row["height_error_m"] < LIE_TOLERANCE_M
    else:
        row["ok"] = row["final_error_m"] < POSE_TOLERANCE_M
    return row


CASES = (  # (task, variant, seed, config overrides): every physical kind of clip the scenarios make
    *(("arrow_of_time", v, s, {}) for v, s in [("falling", 0), ("bouncing", 7), ("bouncing", 11), ("rolling", 0),
                                               ("rolling", 3), ("toppling", 0), ("scattering", 1), ("scattering", 5)]),
    *(("object_permanence", v, 0, {}) for v in ("occluder_pass", "occluder_stay", "container_stay", "container_carried")),
    *(("object_permanence", v, 0, {"hard_friction": True}) for v in ("occluder_pass", "occluder_stay")),
    *(("spatial_puzzle", v, s, {}) for v, s in [("moving", 0), ("moving", 1), ("static", 0)]),
    *(("manipulation", v, s, {}) for v, s in [("pick_success", 0), ("pick_success", 1), ("pick_drop", 0),
                                              ("pick_missed_grasp", 0), ("pick_collision", 0), ("pick_wrong_object", 0),
                                              ("push_success", 0), ("push_missed_push", 0)]),
)  # fmt: skip


def _criterion(row: dict) -> tuple[str, str]:
    """(what the clip is judged by, its value) for the table."""
    if "newton_outcome" in row:
        return "outcome (MuJoCo / Newton)", f"{row['mujoco_outcome']} / {row['newton_outcome']}"
    if "rebounds_m" in row:
        pairs = zip(*row["rebounds_m"])
        return "rebounds, m (MuJoCo / Newton)", ", ".join(f"{o:.2f} / {t:.2f}" for o, t in pairs)
    if "height_error_m" in row:
        return "final height error", f"{row['height_error_m']:.3f} m"
    return "final pose error", f"{row['final_error_m']:.3f} m"


def table(rows: list[dict]) -> str:
    """The cross-simulator table (markdown)."""
    lines = ["| clip | final pose error (m) | at rest (MuJoCo / Newton) | judged by | value | ok |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        rest = f"{'yes' if r['mujoco_at_rest'] else 'no'} / {'yes' if r['newton_at_rest'] else 'no'}"
        judged, value = _criterion(r)
        lines.append(
            f"| {r['clip']} | {r['final_error_m']:.3f} | {rest} | {judged} | {value} | {'yes' if r['ok'] else '**no**'} |"
        )
    return "\n".join(lines)


def check_stages(paths: list[Path], hz: int) -> int:
    """Each stage replayed in Newton against its own time samples, a line per body. A stage that
    cannot be opened or simulated is reported and skipped; the exit code counts them (0: none)."""
    from pxr import Tf

    failed = 0
    for path in paths:
        print(f"{path}:")
        if not Path(path).is_file():
            failed += 1
            print("  cannot replay it: no such file")
            continue
        try:
            errors = stage_errors(path, replay_in_newton(path, hz=hz))
        except (Tf.ErrorException, ValueError) as exc:
            failed += 1
            print(f"  cannot replay it: {str(exc).strip().splitlines()[-1].strip()}")
            continue
        for body, (final, largest) in errors.items():
            print(f"  {body:<28} final {final:.3f} m, largest {largest:.3f} m")
    return min(failed, 1)


def main(argv: list[str] | None = None) -> int:
    """python -m cosmos_ros.sim.replay [--out FILE]: export every kind of clip, replay each in
    Newton and print the table; exit 1 if any clip misses its criterion.
    python -m cosmos_ros.sim.replay STAGE.usda ...: replay exported stages (gen-data writes one
    per clip) and print how far each body ends from, and strays from, the stage's own samples."""
    import argparse
    import dataclasses
    import tempfile

    from cosmos_ros.sim.scenarios import generate, load_config
    from cosmos_ros.sim.usd import export_usd

    parser = argparse.ArgumentParser(prog="python -m cosmos_ros.sim.replay", description=main.__doc__)
    parser.add_argument("--out", type=Path, help="also write the table to this markdown file")
    parser.add_argument("--hz", type=int, default=512)
    parser.add_argument("stages", nargs="*", type=Path, help="exported stages to check instead of the table")
    args = parser.parse_args(argv)
    if args.stages:
        return check_stages(args.stages, args.hz)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for task, variant, seed, overrides in CASES:
            sample = generate(dataclasses.replace(load_config(task), **overrides), seed, variant=variant)
            path = export_usd(
                sample.sim, sample.trajectory, Path(folder) / f"{task}_{variant}_{seed}.usda", sample.fps
            )
            name = f"{task}/{variant} seed {seed}" + "".join(f", {k}" for k in overrides)
            rows.append(compare(sample, replay_in_newton(path, hz=args.hz), name))
            print(rows[-1], flush=True)
    text = table(rows)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())

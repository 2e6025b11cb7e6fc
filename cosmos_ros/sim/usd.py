"""USD export of a simulated run, for Isaac Sim and other USD physics importers (usd-core).

The stage: `/World` default prim, Z up, metres and kilograms (metersPerUnit 1,
kilogramsPerUnit 1), a `UsdPhysics.Scene` with gravity, every body a flat child of /World
(rigid bodies may not nest) — free bodies dynamic, mocap bodies and robot bases kinematic,
welded bodies static colliders — with collision shapes, masses, the camera, and the recorded
poses as time samples. A robot on slide joints (the gantry gripper: three stacked slides, two
coupled fingers) is a fixed-base articulation of dynamic links on prismatic joints whose drives
carry the MuJoCo actuators' gains, force limits and time-sampled commands, so an engine
reproduces its grasps from the commands (`usd_joints`). Importers read the plain (default) pose
rather than the samples, so every body also carries its first pose as a plain value, and free
bodies their initial velocity (in the body's own frame, angular in degrees per second: see
`body_frame_velocity`).
"""

from __future__ import annotations

import functools
import math
import re
from pathlib import Path

import mujoco
import numpy as np
from pxr import Gf, Sdf, Usd, UsdGeom, UsdPhysics, UsdShade, UsdValidation, Vt

from cosmos_ros.sim.physics import Simulation, Trajectory
from cosmos_ros.sim.usd_joints import (
    JOINTS,
    add_couplings,
    add_slide_chain,
    author_poses,
    body_path,
    disable_gravity,
    joint_drives,
    prim_name,
    slide_joints,
)

# ints: comparing numpy ints with the enum objects does not work
_PLANE, _SPHERE, _CYLINDER, _BOX = (
    int(getattr(mujoco.mjtGeom, f"mjGEOM_{t}")) for t in ("PLANE", "SPHERE", "CYLINDER", "BOX")
)
_FREE = int(mujoco.mjtJoint.mjJNT_FREE)
VERTICAL_APERTURE = 20.955  # USD's default, in tenths of a scene unit (mm for a metre stage)


def _body_kind(model: mujoco.MjModel, body: int) -> str:
    """'dynamic' (free joint), 'jointed' (on slide joints only: a gantry, a finger),
    'kinematic' (mocap, or moved by other joints) or 'static'."""
    joint = model.body_jntadr[body]
    if joint >= 0 and int(model.jnt_type[joint]) == _FREE:
        return "dynamic"
    if model.body_mocapid[body] < 0 and slide_joints(model, body):
        return "jointed"
    if (
        model.body_mocapid[body] >= 0
        or model.body_dofnum[body] > 0
        or model.body_dofnum[model.body_parentid[body]] > 0
    ):
        return "kinematic"
    ancestor = model.body_parentid[body]
    while ancestor > 0:
        if model.body_dofnum[ancestor] > 0:
            return "kinematic"
        ancestor = model.body_parentid[ancestor]
    return "static"


def body_frame_velocity(model: mujoco.MjModel, trajectory: Trajectory, body: int) -> tuple[np.ndarray, np.ndarray]:
    """A free body's first-frame (linear m/s, angular rad/s) velocity in its own frame: the space
    UsdPhysics means by "the same space as the node's xform" as Newton's importer reads it (it
    rotates `physics:velocity` / `physics:angularVelocity` by the body's orientation). Isaac's
    importer (omni.physx) reads them in the world frame unless the body's customData sets
    `physics:localSpaceVelocities` (its default comes from the Kit setting
    /physics/outputVelocitiesLocalSpace, false), so the export sets it on every body it gives a
    velocity, and both read the same motion. MuJoCo's free joint holds the linear velocity in the
    world frame, the angular one in the body frame."""
    start = model.jnt_dofadr[model.body_jntadr[body]]
    rotation = np.zeros(9)
    mujoco.mju_quat2Mat(rotation, trajectory.xquat[0, body])
    linear = rotation.reshape(3, 3).T @ trajectory.qvel[0, start : start + 3]
    return linear, np.array(trajectory.qvel[0, start + 3 : start + 6])


MATERIALS = "/World/PhysicsMaterials"
LOCAL_SPACE_VELOCITIES = "physics:localSpaceVelocities"  # omni.physx's per-body customData key


def contact_restitution(model: mujoco.MjModel, g: int) -> float:
    """The coefficient of restitution a MuJoCo contact of geom `g` has against a default floor:
    0 for a critically damped solref (a positive one at damping ratio >= 1, MuJoCo's default);
    otherwise measured, as the square root of the height a ball with that solref dropped in
    MuJoCo rebounds to (a negative solref takes over the floor's, and is a damped spring per unit
    mass, so neither the shape nor the mass changes it)."""
    stiffness, damping = (float(v) for v in model.geom_solref[g])
    if stiffness > 0 and damping >= 1:
        return 0.0
    return _measured_restitution((stiffness, damping))


@functools.lru_cache(maxsize=256)
def _measured_restitution(solref: tuple[float, float]) -> float:
    xml = f"""<mujoco><option timestep="0.0005"/><worldbody><geom type="plane" size="2 2 1"/>
        <body pos="0 0 0.5"><freejoint/><geom type="sphere" size="0.05" mass="0.1"
        solref="{solref[0]} {solref[1]}"/></body></worldbody></mujoco>"""
    model = mujoco.MjModel.from_xml_string(xml)
    data = mujoco.MjData(model)
    peak, touched, left = 0.0, False, False
    for _ in range(8000):
        mujoco.mj_step(model, data)
        touched = touched or data.ncon > 0
        left = left or (touched and data.ncon == 0)
        if left:  # in flight after the first impact
            peak = max(peak, data.qpos[2] - 0.05)
    return math.sqrt(peak / 0.45)


def _add_material(
    stage: Usd.Stage, prim: Usd.Prim, model: mujoco.MjModel, g: int, name: str, restitution: float | None = None
) -> None:
    """A physics material for collider `g` from MuJoCo's contact values, bound to it:
    static = dynamic friction = MuJoCo's sliding friction, restitution (`contact_restitution`);
    both combined by the larger side, as MuJoCo does (the larger friction; the bouncier solref),
    told to PhysX by its combine modes; torsional and rolling friction, which UsdPhysics has no
    field for, as Newton's and MuJoCo's own attributes."""
    sliding, torsional, rolling = (float(v) for v in model.geom_friction[g])
    material = UsdShade.Material.Define(stage, Sdf.Path(MATERIALS).AppendChild(name))
    physics = UsdPhysics.MaterialAPI.Apply(material.GetPrim())
    physics.CreateStaticFrictionAttr(sliding)
    physics.CreateDynamicFrictionAttr(sliding)
    physics.CreateRestitutionAttr(contact_restitution(model, g) if restitution is None else restitution)
    extra = material.GetPrim()
    for schema in ("PhysxMaterialAPI", "NewtonMaterialAPI", "MjcMaterialAPI"):  # read where the importer knows them
        extra.AddAppliedSchema(schema)
    for attr, value in (("physxMaterial:frictionCombineMode", "max"), ("physxMaterial:restitutionCombineMode", "max")):
        extra.CreateAttribute(attr, Sdf.ValueTypeNames.Token, custom=True).Set(value)
    for attr, value in (("newton:torsionalFriction", torsional), ("newton:rollingFriction", rolling),
                        ("mjc:torsionalfriction", torsional), ("mjc:rollingfriction", rolling)):  # fmt: skip
        extra.CreateAttribute(attr, Sdf.ValueTypeNames.Float, custom=True).Set(value)
    binding = UsdShade.MaterialBindingAPI.Apply(prim)
    binding.Bind(material, UsdShade.Tokens.weakerThanDescendants, "physics")  # material:binding:physics


def _fixed_restitution(model: mujoco.MjModel) -> float | None:
    """The restitution to give the fixed colliders (floor, walls, the robot): the free bodies'
    one when they all share one. MuJoCo's bouncy (negative) solref takes over a default one, so a
    ball rebounds off the floor with its own restitution; an engine that combines the two sides
    by the larger (PhysX "max") or by their mean (Newton) then gives the same when both sides
    carry it. None (each its own, 0 for MuJoCo's default) when the free bodies differ: there
    only the "max" engines match MuJoCo."""
    free = [
        g for g in range(model.ngeom)
        if (model.geom_contype[g] or model.geom_conaffinity[g]) and _body_kind(model, int(model.geom_bodyid[g])) == "dynamic"
    ]  # fmt: skip
    values = {round(contact_restitution(model, g), 6) for g in free}
    return values.pop() if len(values) == 1 else None


def _add_geom(
    stage: Usd.Stage, parent: Sdf.Path, model: mujoco.MjModel, g: int, restitution: float | None = None
) -> None:
    kind = int(model.geom_type[g])
    size = model.geom_size[g]
    path = parent.AppendChild(prim_name(model.geom(g).name, f"geom_{g}"))
    if kind == _SPHERE:
        prim = UsdGeom.Sphere.Define(stage, path)
        prim.CreateRadiusAttr(float(size[0]))
        scale = None
    elif kind == _CYLINDER:
        prim = UsdGeom.Cylinder.Define(stage, path)
        prim.CreateRadiusAttr(float(size[0]))
        prim.CreateHeightAttr(float(2 * size[1]))
        prim.CreateAxisAttr(UsdGeom.Tokens.z)
        scale = None
    elif kind in (_BOX, _PLANE):
        prim = UsdGeom.Cube.Define(stage, path)
        prim.CreateSizeAttr(2.0)
        # a plane becomes a 5 cm thick slab whose top face is the plane
        scale = Gf.Vec3f(*size[:3]) if kind == _BOX else Gf.Vec3f(float(size[0]), float(size[1]), 0.025)
    else:
        raise ValueError(f"geom {g}: type {kind} has no USD export (spheres, cylinders, boxes, planes)")
    pos = model.geom_pos[g] - (np.array([0, 0, 0.025]) if kind == _PLANE else 0)
    xform = UsdGeom.Xformable(prim)
    xform.AddTranslateOp().Set(Gf.Vec3d(*map(float, pos)))
    xform.AddOrientOp().Set(Gf.Quatf(*map(float, model.geom_quat[g])))
    if scale is not None:
        xform.AddScaleOp().Set(scale)
    prim.CreateDisplayColorAttr(Vt.Vec3fArray([Gf.Vec3f(*map(float, model.geom_rgba[g][:3]))]))
    if model.geom_contype[g] or model.geom_conaffinity[g]:
        UsdPhysics.CollisionAPI.Apply(prim.GetPrim())
        _add_material(stage, prim.GetPrim(), model, g, f"{parent.name}_{path.name}", restitution)


def _add_camera(stage: Usd.Stage, model: mujoco.MjModel, width: int, height: int) -> None:
    camera = UsdGeom.Camera.Define(stage, "/World/camera")
    fovy = math.radians(float(model.cam_fovy[0]))
    camera.CreateVerticalApertureAttr(VERTICAL_APERTURE)
    camera.CreateHorizontalApertureAttr(VERTICAL_APERTURE * width / height)
    camera.CreateFocalLengthAttr(VERTICAL_APERTURE / (2 * math.tan(fovy / 2)))
    camera.CreateClippingRangeAttr(Gf.Vec2f(0.01, 100.0))
    rotation = model.cam_mat0[0].reshape(3, 3)  # columns: camera x (right), y (up), z (backward) in the world
    matrix = Gf.Matrix4d(1.0)
    for row in range(3):  # USD matrices act on row vectors: row i is the image of axis i
        matrix.SetRow(row, Gf.Vec4d(*map(float, rotation[:, row]), 0.0))
    matrix.SetRow(3, Gf.Vec4d(*map(float, model.cam_pos[0]), 1.0))
    camera.AddTransformOp().Set(matrix)


def export_usd(
    sim: Simulation,
    trajectory: Trajectory,
    path: Path,
    fps: float,
    *,
    width: int = 256,
    height: int = 256,
    metadata: dict | None = None,
) -> Path:
    """Writes the run as a .usda (or .usd/.usdc) stage; returns the path."""
    model = sim.model
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Built in memory and exported: CreateNew refuses a path whose layer this process still holds
    # (a stage exported, opened and exported again), and a stage is not always gone when dropped.
    stage = Usd.Stage.CreateInMemory()
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    UsdPhysics.SetStageKilogramsPerUnit(stage, 1.0)
    stage.SetStartTimeCode(0)
    stage.SetEndTimeCode(len(trajectory) - 1)
    stage.SetTimeCodesPerSecond(fps)
    stage.SetFramesPerSecond(fps)
    world = UsdGeom.Xform.Define(stage, "/World")
    stage.SetDefaultPrim(world.GetPrim())
    if metadata:
        stage.SetMetadata("customLayerData", {k: v for k, v in metadata.items() if v is not None})
    scene = UsdPhysics.Scene.Define(stage, "/World/PhysicsScene")
    gravity = np.asarray(model.opt.gravity, float)
    scene.CreateGravityDirectionAttr(Gf.Vec3f(*map(float, gravity / np.linalg.norm(gravity))))
    scene.CreateGravityMagnitudeAttr(float(np.linalg.norm(gravity)))

    UsdGeom.Scope.Define(stage, MATERIALS)
    fixed_restitution = _fixed_restitution(model)
    static_root = UsdGeom.Xform.Define(stage, "/World/ground").GetPath()
    for g in np.flatnonzero(model.geom_bodyid == 0):
        _add_geom(stage, static_root, model, int(g), fixed_restitution)
    drives = joint_drives(model) if trajectory.ctrl is not None else {}
    joints: dict[int, Usd.Prim] = {}
    for body in range(1, model.nbody):
        kind = _body_kind(model, body)
        prim = UsdGeom.Xform.Define(stage, body_path(model, body))
        author_poses(prim, trajectory.xpos[:, body], trajectory.xquat[:, body], animated=kind != "static")
        if kind != "static":
            rigid = UsdPhysics.RigidBodyAPI.Apply(prim.GetPrim())
            rigid.CreateKinematicEnabledAttr(kind == "kinematic")
            UsdPhysics.MassAPI.Apply(prim.GetPrim()).CreateMassAttr(float(model.body_mass[body]))
            disable_gravity(prim.GetPrim(), model, body)
            if kind == "jointed":
                if not joints:
                    UsdGeom.Scope.Define(stage, JOINTS)
                joints.update(add_slide_chain(stage, model, trajectory, body, drives))
            if kind == "dynamic":
                linear, angular = body_frame_velocity(model, trajectory, body)
                rigid.CreateVelocityAttr(Gf.Vec3f(*map(float, linear)))
                rigid.CreateAngularVelocityAttr(Gf.Vec3f(*map(float, np.degrees(angular))))
                # omni.physx reads velocities in the world frame unless a body says otherwise
                prim.GetPrim().SetCustomDataByKey(LOCAL_SPACE_VELOCITIES, True)
        for g in np.flatnonzero(model.geom_bodyid == body):
            _add_geom(stage, prim.GetPath(), model, int(g), None if kind == "dynamic" else fixed_restitution)
    add_couplings(stage, model, joints)
    _add_camera(stage, model, width, height)
    stage.GetRootLayer().Export(str(path))
    held = Sdf.Layer.Find(str(path))
    if held is not None:  # a stage this process opened before reads the new file, not the old one
        held.Reload(force=True)
    return path


def _load_physics(stage: Usd.Stage) -> dict:
    """Parse physics as a simulator would (LoadUsdPhysicsFromRange, renamed in newer USD)."""
    load = getattr(UsdPhysics, "UsdPhysicsLoadStageFromPrimRange", None) or UsdPhysics.LoadUsdPhysicsFromRange
    return load(stage, ["/World"])


def validate_usd(path: Path) -> list[str]:
    """Problems with a stage: errors from every registered UsdValidation validator, and
    failures to parse its physics the way a simulator would. Empty = valid."""
    stage = Usd.Stage.Open(str(path))
    if stage is None:
        return [f"{path}: cannot be opened as a USD stage"]
    validators = UsdValidation.ValidationRegistry().GetOrLoadAllValidators()
    problems = [
        f"{e.GetIdentifier()}: {e.GetMessage()}"
        for e in UsdValidation.ValidationContext(validators).Validate(stage)
        if e.GetType() == UsdValidation.ValidationErrorType.Error
    ]
    parsed = _load_physics(stage)
    if not parsed:
        problems.append("UsdPhysics parsed no physics objects under /World")
    return problems


def physics_summary(path: Path) -> dict[str, int]:
    """How many objects of each physics type UsdPhysics parses from the stage."""
    stage = Usd.Stage.Open(str(path))
    parsed = _load_physics(stage)
    return {str(kind).rsplit(".", 1)[-1]: len(paths) for kind, (paths, _descs) in parsed.items()}


_RECIPE = re.compile(r"generate\(load_config\('(?P<task>\w+)'\), (?P<seed>\d+), variant='(?P<variant>\w+)'\)")


def regenerate_example(path: Path, out: Path) -> Path:
    """Run the recipe a shipped example records (its `generated_by` layer data) with the current
    code and export it to `out`, layer data kept: `sim/examples/*.usda` are regenerated this way."""
    from cosmos_ros.sim.scenarios import generate, load_config

    stage = Usd.Stage.Open(str(path))  # kept: the layer lives as long as its stage
    data = dict(stage.GetRootLayer().customLayerData)
    recipe = _RECIPE.search(str(data.get("generated_by", "")))
    if recipe is None:
        raise ValueError(f"{path}: no generate(load_config('task'), seed, variant='v') recipe in its generated_by")
    sample = generate(load_config(recipe["task"]), int(recipe["seed"]), variant=recipe["variant"])
    return export_usd(sample.sim, sample.trajectory, out, sample.fps, metadata=data)

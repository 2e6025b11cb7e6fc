"""A MuJoCo robot on slide joints as a USD articulation (part of the USD export, `usd.py`).

MuJoCo stacks several joints on one body and couples joints by equality constraints; USD has
one joint between two bodies and no coupling in UsdPhysics itself. So a body on n slide joints
becomes a chain of n `PrismaticJoint`s through n-1 light carriages; with the world as its parent
the chain's first joint is the root of a fixed-base articulation (PhysX refuses an articulation
rooted on a kinematic body). Each position actuator becomes a force `DriveAPI` (stiffness kp,
damping kv plus the joint's own damping, maxForce from forcerange) with the commands as
time-sampled targets; a coupled pair shares it (`joint_drives`) and the coupling is also
authored as a Newton mimic joint. MuJoCo's gravity compensation is PhysX's `disableGravity`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mujoco
import numpy as np
from pxr import Gf, Sdf, Usd, UsdGeom, UsdPhysics

from cosmos_ros.sim.physics import Trajectory

JOINTS = "/World/Joints"
DISABLE_GRAVITY = "physxRigidBody:disableGravity"  # PhysX's; Newton's importer does not read it
_SLIDE = int(mujoco.mjtJoint.mjJNT_SLIDE)


def prim_name(text: str, fallback: str) -> str:
    cleaned = "".join(c if c.isalnum() or c == "_" else "_" for c in text)
    return cleaned if cleaned and not cleaned[0].isdigit() else fallback


def body_path(model: mujoco.MjModel, body: int) -> Sdf.Path:
    """Every body is a flat child of /World (rigid bodies may not nest)."""
    return Sdf.Path("/World").AppendChild(prim_name(model.body(body).name, f"body_{body}"))


def author_poses(
    prim: UsdGeom.Xformable, positions: np.ndarray, quats: np.ndarray, animated: bool = True
) -> None:
    """A body's pose: the first one as the plain value importers read, and with `animated` one
    time sample per frame. positions (T, 3), quats (T, 4) w x y z, in the world."""
    translate, orient = prim.AddTranslateOp(), prim.AddOrientOp()
    translate.Set(Gf.Vec3d(*map(float, positions[0])))
    orient.Set(Gf.Quatf(*map(float, quats[0])))
    if not animated:
        return
    for k in range(len(positions)):
        translate.Set(Gf.Vec3d(*map(float, positions[k])), Usd.TimeCode(k))
        orient.Set(Gf.Quatf(*map(float, quats[k])), Usd.TimeCode(k))


def slide_joints(model: mujoco.MjModel, body: int) -> list[int]:
    """The body's joints when it has some and all of them slide; else []."""
    joints = list(range(model.body_jntadr[body], model.body_jntadr[body] + model.body_jntnum[body]))
    return joints if joints and all(int(model.jnt_type[j]) == _SLIDE for j in joints) else []


@dataclass(frozen=True)
class Drive:
    """A joint's share of a MuJoCo position actuator: target = offset + scale * ctrl[column],
    with ctrl clamped to the actuator's control range as MuJoCo clamps it. Targets, like every
    joint position in the stage, are displacements from the joint's reference (qpos0)."""

    stiffness: float
    damping: float
    max_force: float  # inf: not force-limited
    column: int
    offset: float = 0.0
    scale: float = 1.0
    ctrl_range: tuple[float, float] = (-math.inf, math.inf)


def _reference(model: mujoco.MjModel, joint: int) -> float:
    """The joint's reference position (qpos0): where its body sits at body_pos, the stage's zero."""
    return float(model.qpos0[model.jnt_qposadr[joint]])


def _is_position_servo(model: mujoco.MjModel, a: int) -> bool:
    gain, bias = model.actuator_gainprm[a], model.actuator_biasprm[a]
    return (
        int(model.actuator_gaintype[a]) == int(mujoco.mjtGain.mjGAIN_FIXED)
        and int(model.actuator_biastype[a]) == int(mujoco.mjtBias.mjBIAS_AFFINE)
        and math.isclose(bias[1], -gain[0])
        and math.isclose(model.actuator_gear[a, 0], 1.0)
    )


def _joint_couplings(model: mujoco.MjModel) -> list[tuple[int, int, float, float]]:
    """Active linear joint equalities as (follower, leader, c0, c1): q_follower = c0 + c1 q_leader."""
    couplings = []
    for e in range(model.neq):
        if int(model.eq_type[e]) != int(mujoco.mjtEq.mjEQ_JOINT) or not model.eq_active0[e]:
            continue
        c = model.eq_data[e, :5]  # on displacements from qpos0, as the stage's joint positions are
        if np.any(c[2:] != 0) or c[1] == 0 or model.eq_obj2id[e] < 0:
            raise ValueError(
                f"equality {e}: only linear couplings of two joints have a USD export, got polycoef {list(c)}"
            )
        couplings.append((int(model.eq_obj1id[e]), int(model.eq_obj2id[e]), float(c[0]), float(c[1])))
    return couplings


def joint_drives(model: mujoco.MjModel) -> dict[int, Drive]:
    """{joint: Drive} for every joint a position actuator drives, directly or through a linear
    joint coupling. A coupled pair shares the actuator: each joint gets half of its gains and
    force limit (the coupled joint's share scaled by the coupling's ratio), so an engine that
    honours the coupling (a mimic joint) sums them back to MuJoCo's one actuator, and an engine
    that does not still pushes each finger as hard as MuJoCo does. The joint's own passive
    damping is added to its drive's (so maxForce caps it too, where MuJoCo's force range caps
    the actuator alone: a difference of the damping force, 5 N·s/m on the fingers)."""
    drives: dict[int, Drive] = {}
    couplings = _joint_couplings(model)

    def damping(joint: int) -> float:
        return float(model.dof_damping[model.jnt_dofadr[joint]])

    for a in range(model.nu):
        if int(model.actuator_trntype[a]) != int(mujoco.mjtTrn.mjTRN_JOINT):
            continue
        j = int(model.actuator_trnid[a, 0])
        if not _is_position_servo(model, a):
            raise ValueError(
                f"actuator {model.actuator(a).name!r}: only position servos (gear 1) have a USD drive"
            )
        kp, kv = float(model.actuator_gainprm[a, 0]), -float(model.actuator_biasprm[a, 2])
        force = float(model.actuator_forcerange[a, 1]) if model.actuator_forcelimited[a] else math.inf
        unlimited = (-math.inf, math.inf)
        limits = (
            tuple(map(float, model.actuator_ctrlrange[a])) if model.actuator_ctrllimited[a] else unlimited
        )
        reference = _reference(model, j)  # ctrl is a joint position; the stage's targets are displacements
        # partners as (joint, alpha, beta) with d_j = alpha + beta * d_partner (displacements)
        partners = [(lead, c0, c1) for follow, lead, c0, c1 in couplings if follow == j]
        partners += [(follow, -c0 / c1, 1 / c1) for follow, lead, c0, c1 in couplings if lead == j]
        share = 1.0 / (1 + len(partners))
        drives[j] = Drive(share * kp, share * kv + damping(j), share * force, a, -reference, 1.0, limits)
        for partner, alpha, beta in partners:
            drives[partner] = Drive(
                share * beta**2 * kp, share * beta**2 * kv + damping(partner), share * abs(beta) * force, a,
                offset=(-reference - alpha) / beta, scale=1 / beta, ctrl_range=limits,
            )  # fmt: skip
    return drives


def _axis_rotation(axis: np.ndarray) -> np.ndarray:
    """The quaternion (w, x, y, z) turning +X onto `axis` (a joint's axis is a frame's X)."""
    axis = axis / np.linalg.norm(axis)
    if axis[0] < -1 + 1e-9:
        return np.array([0.0, 0.0, 0.0, 1.0])  # half a turn about Z
    q = np.array([1.0 + axis[0], 0.0, -axis[2], axis[1]])  # (1 + x.a, x cross a)
    return q / np.linalg.norm(q)


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.zeros(4)
    mujoco.mju_mulQuat(out, a, b)
    return out


CARRIAGE_MASS_SHARE = 0.01  # each carriage of a multi-joint body weighs this share of the body


def add_slide_chain(
    stage: Usd.Stage, model: mujoco.MjModel, trajectory: Trajectory, body: int, drives: dict[int, Drive]
) -> dict[int, Usd.Prim]:
    """A 'jointed' body's slide joints as a chain of prismatic joints from its parent (the world:
    body0 unset) to the body: MuJoCo stacks several joints on one body, USD needs a body between
    each two, so all but the last end on a light carriage that moves as MuJoCo's joints do. Each
    joint is in MuJoCo's joint frame (the axis as its X), with its limits and its drive (the
    actuator's commands as time-sampled targets). Returns {MuJoCo joint: joint prim}."""
    joints = slide_joints(model, body)
    parent = int(model.body_parentid[body])
    parent_path = body_path(model, parent) if parent > 0 else None
    prims: dict[int, Usd.Prim] = {}
    for i, j in enumerate(joints):
        if i + 1 < len(joints):
            child = _add_carriage(stage, model, trajectory, body, joints[: i + 1])
        else:
            child = body_path(model, body)
        name = prim_name(model.joint(j).name, f"joint_{j}")
        joint = UsdPhysics.PrismaticJoint.Define(stage, Sdf.Path(JOINTS).AppendChild(name))
        if parent_path is not None:
            joint.CreateBody0Rel().SetTargets([parent_path])
        joint.CreateBody1Rel().SetTargets([child])
        turn = _axis_rotation(np.asarray(model.jnt_axis[j], float))
        if i == 0:  # from the parent's frame, where the body sits at q = 0
            anchor = np.zeros(3)
            mujoco.mju_rotVecQuat(anchor, model.jnt_pos[j], model.body_quat[body])
            pos0, rot0 = model.body_pos[body] + anchor, _quat_mul(model.body_quat[body], turn)
        else:  # from the carriage before, which has the body's orientation
            pos0, rot0 = model.jnt_pos[j], turn
        joint.CreateLocalPos0Attr(Gf.Vec3f(*map(float, pos0)))
        joint.CreateLocalRot0Attr(Gf.Quatf(*map(float, rot0)))
        joint.CreateLocalPos1Attr(Gf.Vec3f(*map(float, model.jnt_pos[j])))
        joint.CreateLocalRot1Attr(Gf.Quatf(*map(float, turn)))
        joint.CreateAxisAttr(UsdPhysics.Tokens.x)
        if model.jnt_limited[j]:
            joint.CreateLowerLimitAttr(float(model.jnt_range[j, 0]) - _reference(model, j))
            joint.CreateUpperLimitAttr(float(model.jnt_range[j, 1]) - _reference(model, j))
        if j in drives:
            _add_drive(joint.GetPrim(), drives[j], trajectory)
        if i == 0 and parent_path is None:  # a fixed-base articulation: its root joint holds it to the world
            UsdPhysics.ArticulationRootAPI.Apply(joint.GetPrim())
        parent_path = child
        prims[j] = joint.GetPrim()
    return prims


def _add_carriage(
    stage: Usd.Stage, model: mujoco.MjModel, trajectory: Trajectory, body: int, joints: list[int]
) -> Sdf.Path:
    """The light body between two stacked slide joints of `body`, where the first `joints` have
    moved it: the body's pose less the later joints' travel, at every frame."""
    joint_name = model.joint(joints[-1]).name or f"joint{joints[-1]}"
    name = f"{model.body(body).name}_{joint_name}_carriage"
    path = Sdf.Path("/World").AppendChild(prim_name(name, f"body_{body}_carriage_{len(joints)}"))
    prim = UsdGeom.Xform.Define(stage, path)
    later = slide_joints(model, body)[len(joints) :]
    travel = np.zeros((len(trajectory), 3))  # the later joints' travel, in the body's frame
    for j in later:
        travel += np.outer(trajectory.qpos[:, model.jnt_qposadr[j]] - _reference(model, j), model.jnt_axis[j])
    offsets = np.zeros_like(travel)  # ... and in the world
    for k in range(len(trajectory)):
        mujoco.mju_rotVecQuat(offsets[k], travel[k], trajectory.xquat[k, body])
    author_poses(prim, trajectory.xpos[:, body] - offsets, trajectory.xquat[:, body])
    UsdPhysics.RigidBodyAPI.Apply(prim.GetPrim())
    mass = UsdPhysics.MassAPI.Apply(prim.GetPrim())
    share = CARRIAGE_MASS_SHARE * float(model.body_mass[body])
    mass.CreateMassAttr(share)
    mass.CreateDiagonalInertiaAttr(Gf.Vec3f(*map(float, CARRIAGE_MASS_SHARE * model.body_inertia[body])))
    mass.CreatePrincipalAxesAttr(Gf.Quatf(*map(float, model.body_iquat[body])))
    disable_gravity(prim.GetPrim(), model, body)
    return path


def disable_gravity(prim: Usd.Prim, model: mujoco.MjModel, body: int) -> None:
    """MuJoCo's full gravity compensation (a robot holding itself up) as PhysX's disableGravity."""
    if model.body_gravcomp[body] == 1:
        prim.AddAppliedSchema("PhysxRigidBodyAPI")
        prim.CreateAttribute(DISABLE_GRAVITY, Sdf.ValueTypeNames.Bool).Set(True)


def _add_drive(prim: Usd.Prim, drive: Drive, trajectory: Trajectory) -> None:
    api = UsdPhysics.DriveAPI.Apply(prim, UsdPhysics.Tokens.linear)
    api.CreateTypeAttr(UsdPhysics.Tokens.force)
    api.CreateStiffnessAttr(drive.stiffness)
    api.CreateDampingAttr(drive.damping)
    if math.isfinite(drive.max_force):
        api.CreateMaxForceAttr(drive.max_force)
    commands = np.clip(trajectory.ctrl[:, drive.column], *drive.ctrl_range)  # (T,) as MuJoCo clamps them
    targets = drive.offset + drive.scale * commands
    target = api.CreateTargetPositionAttr(float(targets[0]))  # the plain value importers read
    for k, value in enumerate(targets):
        target.Set(float(value), Usd.TimeCode(k))


def add_couplings(stage: Usd.Stage, model: mujoco.MjModel, joints: dict[int, Usd.Prim]) -> None:
    """MuJoCo's joint equalities as Newton mimic joints (follower = c0 + c1 * leader)."""
    for follower, leader, c0, c1 in _joint_couplings(model):
        if follower in joints and leader in joints:
            prim = joints[follower]
            prim.AddAppliedSchema("NewtonMimicAPI")
            prim.CreateRelationship("newton:mimicJoint", custom=False).SetTargets([joints[leader].GetPath()])
            prim.CreateAttribute("newton:mimicCoef0", Sdf.ValueTypeNames.Float, custom=False).Set(c0)
            prim.CreateAttribute("newton:mimicCoef1", Sdf.ValueTypeNames.Float, custom=False).Set(c1)

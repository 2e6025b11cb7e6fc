"""Every scenario's run exports a USD stage that validates and parses as physics."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pxr", reason="usd-core is not installed (pip install usd-core)")

from pxr import Usd, UsdGeom, UsdPhysics  # noqa: E402

from cosmos_ros.sim.scenarios import generate  # noqa: E402
from cosmos_ros.sim.usd import export_usd, physics_summary, validate_usd  # noqa: E402

EXPECTED_BODIES = {"object_permanence": 2, "arrow_of_time": 1, "spatial_puzzle": 3, "manipulation": 5}


@pytest.fixture(scope="module", params=sorted(EXPECTED_BODIES))
def exported(request, configs, tmp_path_factory):
    sample = generate(configs[request.param], 0)
    path = export_usd(sample.sim, sample.trajectory, tmp_path_factory.mktemp("usd") / "run.usda", sample.fps,
                      metadata={"task": sample.task, "seed": sample.seed})  # fmt: skip
    return request.param, sample, path


def test_every_export_passes_all_registered_validators(exported):
    _, _, path = exported
    assert validate_usd(path) == []


def test_stage_metadata_is_z_up_in_metres_and_kilograms(exported):
    _, sample, path = exported
    stage = Usd.Stage.Open(str(path))
    assert stage.GetDefaultPrim().GetPath() == "/World"
    assert UsdGeom.GetStageUpAxis(stage) == UsdGeom.Tokens.z
    assert UsdGeom.GetStageMetersPerUnit(stage) == 1.0
    assert UsdPhysics.GetStageKilogramsPerUnit(stage) == 1.0
    assert stage.GetTimeCodesPerSecond() == sample.fps


def test_physics_parses_with_a_scene_rigid_bodies_and_colliders(exported):
    task, _, path = exported
    summary = physics_summary(path)
    assert summary["Scene"] == 1
    assert summary["RigidBody"] >= EXPECTED_BODIES[task]
    stage = Usd.Stage.Open(str(path))
    carriages = sum(p.GetName().endswith("_carriage") for p in stage.Traverse())  # bodies with no geometry
    assert sum(v for k, v in summary.items() if k.endswith("Shape")) > summary["RigidBody"] - carriages


def test_bodies_carry_mass_a_plain_initial_pose_and_one_sample_per_frame(exported):
    _, sample, path = exported
    stage = Usd.Stage.Open(str(path))
    bodies = [p for p in stage.Traverse() if p.HasAPI(UsdPhysics.RigidBodyAPI)]
    assert bodies
    for prim in bodies:
        assert UsdPhysics.MassAPI(prim).GetMassAttr().Get() > 0
        translate = prim.GetAttribute("xformOp:translate")
        assert translate.GetNumTimeSamples() == len(sample.trajectory)
        plain = np.array(translate.Get(Usd.TimeCode.Default()))
        first = np.array(translate.Get(Usd.TimeCode(0)))
        assert np.allclose(plain, first)
    assert stage.GetPrimAtPath("/World/camera").IsA(UsdGeom.Camera)


def test_the_initial_velocity_of_a_rolling_ball_is_exported(configs, tmp_path):
    sample = generate(configs["object_permanence"], 0, variant="occluder_pass")
    stage = Usd.Stage.Open(str(export_usd(sample.sim, sample.trajectory, tmp_path / "ball.usda", sample.fps)))
    velocity = UsdPhysics.RigidBodyAPI(stage.GetPrimAtPath("/World/ball")).GetVelocityAttr().Get()
    assert abs(velocity[0]) > 0.3 and abs(velocity[2]) < 1e-3


def test_velocities_are_marked_body_local_for_isaacs_importer(exported):
    """Authored in each body's frame (as Newton reads them); omni.physx reads world-frame
    velocities unless the body's customData says physics:localSpaceVelocities."""
    _, _, path = exported
    stage = Usd.Stage.Open(str(path))
    moving = [p for p in stage.Traverse() if p.HasAPI(UsdPhysics.RigidBodyAPI) and p.GetAttribute("physics:velocity").HasAuthoredValue()]
    assert moving
    for prim in moving:
        assert prim.GetCustomDataByKey("physics:localSpaceVelocities") is True, prim.GetPath()


@pytest.mark.parametrize("name", ["object_permanence_carried", "manipulation_pick_place"])
def test_the_shipped_examples_validate(name):
    from cosmos_ros.sim.config import SCENARIO_DIR

    path = SCENARIO_DIR / "examples" / f"{name}.usda"
    assert validate_usd(path) == []
    assert physics_summary(path)["RigidBody"] >= 3


def _values(stage: Usd.Stage) -> dict[tuple[str, str], list]:
    """Every attribute of every prim: its default and time samples, in order; and its customData."""
    values = {}
    for prim in stage.Traverse():
        values[(str(prim.GetPath()), "customData")] = [dict(prim.GetCustomData())]
        for attr in prim.GetAttributes():
            samples = [attr.Get(t) for t in attr.GetTimeSamples()]
            values[(str(prim.GetPath()), attr.GetName())] = [attr.Get(), *samples]
    return values


def _close(a, b) -> bool:
    if a is None or b is None:  # unauthored
        return a is b
    try:
        a, b = np.asarray(a, float), np.asarray(b, float)
    except (TypeError, ValueError):  # tokens, strings
        return a == b
    return a.shape == b.shape and bool(np.allclose(a, b, atol=1e-5))


@pytest.mark.parametrize("name", ["object_permanence_carried", "manipulation_pick_place"])
def test_the_shipped_examples_are_what_their_recipe_generates(name, tmp_path):
    """sim/examples stay regenerable: `regenerate_example` on the current code gives the same stage."""
    from cosmos_ros.sim.config import SCENARIO_DIR
    from cosmos_ros.sim.usd import regenerate_example

    shipped = SCENARIO_DIR / "examples" / f"{name}.usda"
    fresh = regenerate_example(shipped, tmp_path / f"{name}.usda")
    ours, theirs = _values(Usd.Stage.Open(str(shipped))), _values(Usd.Stage.Open(str(fresh)))
    assert ours.keys() == theirs.keys()
    differ = [key for key in ours if len(ours[key]) != len(theirs[key]) or not all(map(_close, ours[key], theirs[key]))]
    assert not differ, f"{shipped.name} is stale; regenerate it with regenerate_example: {differ[:5]}"


def test_every_collider_has_a_physics_material_from_its_mujoco_contact(exported):
    _, sample, path = exported
    model = sample.sim.model
    stage = Usd.Stage.Open(str(path))
    colliders = [p for p in stage.Traverse() if p.HasAPI(UsdPhysics.CollisionAPI)]
    assert colliders
    frictions = {round(float(f), 6) for f in model.geom_friction[:, 0]}
    for prim in colliders:
        target = prim.GetRelationship("material:binding:physics").GetTargets()
        assert len(target) == 1, f"{prim.GetPath()} has no physics material bound"
        material = stage.GetPrimAtPath(target[0])
        api = UsdPhysics.MaterialAPI(material)
        assert material.HasAPI(UsdPhysics.MaterialAPI)
        assert api.GetStaticFrictionAttr().Get() == api.GetDynamicFrictionAttr().Get()
        assert round(api.GetStaticFrictionAttr().Get(), 6) in frictions  # MuJoCo's sliding friction
        assert 0.0 <= api.GetRestitutionAttr().Get() < 1.0
        assert material.GetAttribute("physxMaterial:frictionCombineMode").Get() == "max"  # as MuJoCo combines
        assert material.GetAttribute("newton:rollingFriction").Get() is not None


@pytest.mark.parametrize("damping", [10.0, 20.0, 40.0])
def test_restitution_is_the_rebound_mujoco_gives(damping):
    """The bouncing balls' contacts (solref -20000, -damping) against the floor: the coefficient
    authored is the one a damped spring of that ratio has, zeta = damping / (2 sqrt(stiffness)),
    within 4% (MuJoCo's impedance makes the rebound a little livelier); the default solref none."""
    import mujoco

    from cosmos_ros.sim.usd import contact_restitution

    xml = f'<mujoco><worldbody><geom type="sphere" size="0.05" solref="-20000 -{damping}"/></worldbody></mujoco>'
    zeta = damping / (2 * 20000**0.5)
    spring = np.exp(-np.pi * zeta / np.sqrt(1 - zeta**2))
    assert contact_restitution(mujoco.MjModel.from_xml_string(xml), 0) == pytest.approx(spring, rel=0.04)
    default = mujoco.MjModel.from_xml_string("<mujoco><worldbody><geom size='0.1'/></worldbody></mujoco>")
    assert contact_restitution(default, 0) == 0.0


@pytest.fixture(scope="module")
def pick(configs, tmp_path_factory):
    sample = generate(configs["manipulation"], 0, variant="pick_success")
    path = export_usd(sample.sim, sample.trajectory, tmp_path_factory.mktemp("pick") / "pick.usda", sample.fps)
    return sample, Usd.Stage.Open(str(path))


def test_the_gripper_is_a_fixed_base_articulation_of_prismatic_joints(pick):
    _, stage = pick
    chain = [("gx", None, "gripper_gx_carriage"), ("gy", "gripper_gx_carriage", "gripper_gy_carriage"),
             ("gz", "gripper_gy_carriage", "gripper"), ("finger_left", "gripper", "finger_left"),
             ("finger_right", "gripper", "finger_right")]  # fmt: skip
    for name, body0, body1 in chain:
        joint = UsdPhysics.PrismaticJoint(stage.GetPrimAtPath(f"/World/Joints/{name}"))
        assert joint, f"no prismatic joint {name}"
        assert [str(p) for p in joint.GetBody0Rel().GetTargets()] == ([f"/World/{body0}"] if body0 else [])
        assert [str(p) for p in joint.GetBody1Rel().GetTargets()] == [f"/World/{body1}"]
    root = stage.GetPrimAtPath("/World/Joints/gx")
    assert root.HasAPI(UsdPhysics.ArticulationRootAPI)  # fixed base: the root joint holds it to the world
    for name in ("gripper", "finger_left", "finger_right"):  # dynamic links, so PhysX accepts the articulation
        body = UsdPhysics.RigidBodyAPI(stage.GetPrimAtPath(f"/World/{name}"))
        assert not body.GetKinematicEnabledAttr().Get()
        assert stage.GetPrimAtPath(f"/World/{name}").GetAttribute("physxRigidBody:disableGravity").Get()  # gravcomp


def test_joint_frames_coincide_at_the_recorded_start(pick):
    """Each joint's two frames, placed by its bodies' first poses, sit on one line along its axis,
    apart by the joint's first recorded position (what an importer computes the joint from)."""
    from pxr import Gf

    sample, stage = pick
    model = sample.sim.model
    for name in ("gx", "gy", "gz", "finger_left", "finger_right"):
        joint = UsdPhysics.PrismaticJoint(stage.GetPrimAtPath(f"/World/Joints/{name}"))

        def frame(rel, pos, rot):
            targets = rel.GetTargets()
            world = (
                UsdGeom.Xformable(stage.GetPrimAtPath(targets[0])).ComputeLocalToWorldTransform(Usd.TimeCode.Default())
                if targets else Gf.Matrix4d(1.0)
            )  # fmt: skip
            local = Gf.Matrix4d().SetRotate(Gf.Rotation(Gf.Quatd(rot.Get()))) * Gf.Matrix4d().SetTranslate(Gf.Vec3d(pos.Get()))
            return local * world

        a = frame(joint.GetBody0Rel(), joint.GetLocalPos0Attr(), joint.GetLocalRot0Attr())
        b = frame(joint.GetBody1Rel(), joint.GetLocalPos1Attr(), joint.GetLocalRot1Attr())
        axis = np.array(a.TransformDir(Gf.Vec3d(1, 0, 0)))
        travel = np.array(b.ExtractTranslation()) - np.array(a.ExtractTranslation())
        address = model.jnt_qposadr[model.joint(name).id]
        q0 = sample.trajectory.qpos[0, address] - model.qpos0[address]  # displacement from the reference
        np.testing.assert_allclose(travel, q0 * axis, atol=1e-5)
        np.testing.assert_allclose(np.array(b.TransformDir(Gf.Vec3d(1, 0, 0))), axis, atol=1e-5)


def test_drives_carry_the_actuators_gains_limits_and_commands(pick):
    sample, stage = pick
    traj = sample.trajectory
    expected = {  # MuJoCo: gantry kp 2000, kv 200 + joint damping 40; the grip kp 200, kv 5, +-15 N on
        "gx": (2000, 240, np.inf, 0),  # the two coupled fingers, shared half each (+ each one's damping 5)
        "gz": (2000, 240, np.inf, 2),
        "finger_left": (100, 7.5, 7.5, 3),
        "finger_right": (100, 7.5, 7.5, 3),
    }
    for name, (stiffness, damping, max_force, column) in expected.items():
        prim = stage.GetPrimAtPath(f"/World/Joints/{name}")
        drive = UsdPhysics.DriveAPI(prim, UsdPhysics.Tokens.linear)
        assert drive.GetTypeAttr().Get() == UsdPhysics.Tokens.force
        assert drive.GetStiffnessAttr().Get() == pytest.approx(stiffness)
        assert drive.GetDampingAttr().Get() == pytest.approx(damping)
        assert drive.GetMaxForceAttr().Get() == pytest.approx(max_force)  # the schema's default: unlimited
        target = drive.GetTargetPositionAttr()
        samples = [target.Get(Usd.TimeCode(k)) for k in target.GetTimeSamples()]
        np.testing.assert_allclose(samples, traj.ctrl[:, column], atol=1e-6)  # the commands, one per frame
    assert len(set(np.round(traj.ctrl[:, 3], 4))) > 2  # the hand opens and closes
    follower = stage.GetPrimAtPath("/World/Joints/finger_left")
    assert "NewtonMimicAPI" in follower.GetMetadata("apiSchemas").GetAddedOrExplicitItems()
    assert [str(p) for p in follower.GetRelationship("newton:mimicJoint").GetTargets()] == ["/World/Joints/finger_right"]
    assert follower.GetAttribute("newton:mimicCoef1").Get() == 1.0


def test_a_coupled_pair_shares_its_actuator_as_the_coupling_ratio_says():
    """q1 = 0.01 + 2 q2 with a servo on q1 (kp 100, kv 4, +-10 N): each joint's drive is half
    the actuator seen from its own coordinate, so under the coupling they sum to MuJoCo's one
    actuator (stiffness on q2: 2^2 x 50 + 200 = 2^2 x 100), and the partner's target is the
    driver's through the coupling."""
    import mujoco

    from cosmos_ros.sim.usd_joints import joint_drives

    model = mujoco.MjModel.from_xml_string("""<mujoco><worldbody><body>
        <joint name="a" type="slide" axis="1 0 0"/><joint name="b" type="slide" axis="0 1 0" damping="3"/>
        <geom type="sphere" size="0.1"/></body></worldbody>
        <equality><joint joint1="a" joint2="b" polycoef="0.01 2 0 0 0"/></equality>
        <actuator><position joint="a" kp="100" kv="4" forcerange="-10 10"/></actuator></mujoco>""")
    drives = joint_drives(model)
    a, b = drives[model.joint("a").id], drives[model.joint("b").id]
    assert (a.stiffness, a.damping, a.max_force) == pytest.approx((50, 2, 5))
    assert (b.stiffness, b.damping, b.max_force) == pytest.approx((200, 8 + 3, 10))
    assert 2**2 * a.stiffness + b.stiffness == pytest.approx(2**2 * 100)
    ctrl = 0.05
    assert a.offset + a.scale * ctrl == pytest.approx(ctrl)
    assert 0.01 + 2 * (b.offset + b.scale * ctrl) == pytest.approx(ctrl)  # b's target keeps q1 = 0.01 + 2 q2


def test_a_servo_on_the_leader_shares_it_with_its_follower_and_targets_are_displacements():
    """The servo on q2 (the leader of q1 = 0.01 + 2 q2), q2 with ref 0.1 and a control range:
    q1's drive is half the actuator seen from q1 (stiffness / 2^2), its target what the coupling
    makes of q2's; targets are displacements from the reference, commands clamped to the range."""
    import mujoco

    from cosmos_ros.sim.usd_joints import joint_drives

    model = mujoco.MjModel.from_xml_string("""<mujoco><worldbody><body>
        <joint name="a" type="slide" axis="1 0 0"/><joint name="b" type="slide" axis="0 1 0" ref="0.1"/>
        <geom type="sphere" size="0.1"/></body></worldbody>
        <equality><joint joint1="a" joint2="b" polycoef="0.01 2 0 0 0"/></equality>
        <actuator><position joint="b" kp="100" ctrlrange="-0.2 0.2"/></actuator></mujoco>""")
    drives = joint_drives(model)
    a, b = drives[model.joint("a").id], drives[model.joint("b").id]
    assert b.stiffness == pytest.approx(50) and a.stiffness == pytest.approx(50 / 4)
    assert b.stiffness + 2**2 * a.stiffness == pytest.approx(100)  # on q2, the actuator's kp again
    ctrl = 0.15
    assert b.offset + b.scale * ctrl == pytest.approx(ctrl - 0.1)  # the displacement from ref
    assert a.offset + a.scale * ctrl == pytest.approx(0.01 + 2 * (ctrl - 0.1))  # the coupling's
    assert b.ctrl_range == (-0.2, 0.2)


def test_a_path_can_be_exported_again_while_its_stage_is_open(configs, tmp_path):
    """Re-exporting a clip in one process (a regenerated example, a replay sweep) must not fail on
    the layer USD still holds for the first export."""
    sample = generate(configs["arrow_of_time"], 0, variant="rolling")
    path = export_usd(sample.sim, sample.trajectory, tmp_path / "run.usda", sample.fps)
    opened = Usd.Stage.Open(str(path))
    again = export_usd(sample.sim, sample.trajectory, tmp_path / "run.usda", sample.fps, metadata={"task": "again"})
    assert validate_usd(again) == []
    assert Usd.Stage.Open(str(again)).GetRootLayer().customLayerData["task"] == "again"
    assert opened.GetDefaultPrim().GetPath() == "/World"

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
    assert sum(v for k, v in summary.items() if k.endswith("Shape")) > summary["RigidBody"]


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


@pytest.mark.parametrize("name", ["object_permanence_carried", "manipulation_pick_place"])
def test_the_shipped_examples_validate(name):
    from cosmos_ros.sim.config import SCENARIO_DIR

    path = SCENARIO_DIR / "examples" / f"{name}.usda"
    assert validate_usd(path) == []
    assert physics_summary(path)["RigidBody"] >= 3


def _values(stage: Usd.Stage) -> dict[tuple[str, str], list]:
    """Every attribute of every prim: its default and time samples, in order."""
    values = {}
    for prim in stage.Traverse():
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

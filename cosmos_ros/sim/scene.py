"""A scene as plain data (bodies made of geoms, a camera, lights, a floor) and its MJCF text.

Scenario generators draw a Scene from their config; `to_mjcf` turns it into a MuJoCo model.
Articulated parts (the manipulation gripper) come as raw MJCF fragments. Z is up, metres,
kilograms — the same units the USD export writes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from xml.sax.saxutils import quoteattr

import numpy as np

from cosmos_ros.sim.config import COLORS, SceneConfig

SHAPES = ("sphere", "box", "cylinder")


@dataclass
class Geom:
    """size: sphere (r,), box half extents (x, y, z), cylinder (r, half height) along local z."""

    shape: str
    size: tuple[float, ...]
    rgba: tuple[float, float, float, float]
    pos: tuple[float, float, float] = (0.0, 0.0, 0.0)
    quat: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    friction: tuple[float, float, float] = (1.0, 0.005, 0.0001)
    solref: tuple[float, float] = (0.02, 1.0)  # (time constant, damping ratio); damping < 1 bounces
    condim: int = 3
    collide: bool = True
    name: str = ""

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"geom shape must be one of {SHAPES}, got {self.shape!r}")


@dataclass
class Body:
    """kind: 'free' (dynamic rigid body), 'mocap' (kinematic, moved by the scenario) or 'static'."""

    name: str
    geoms: list[Geom]
    pos: tuple[float, float, float]
    quat: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    kind: str = "free"
    mass: float | None = None  # None: from the geoms' volume at density 1000 (MuJoCo default)
    color_name: str = ""


@dataclass
class Camera:
    pos: tuple[float, float, float]
    lookat: tuple[float, float, float]
    fovy_deg: float

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(right, up, backward) unit vectors: MuJoCo and USD cameras both look along -z."""
        forward = np.asarray(self.lookat, float) - np.asarray(self.pos, float)
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, (0.0, 0.0, 1.0))
        right /= np.linalg.norm(right)
        up = np.cross(right, forward)
        return right, up, -forward

    def project(self, points: np.ndarray, width: int, height: int) -> np.ndarray:
        """(N, 3) world points → (N, 2) pixel (x, y); NaN behind the camera."""
        right, up, back = self.axes()
        rel = np.atleast_2d(points) - np.asarray(self.pos, float)
        x, y, z = rel @ right, rel @ up, rel @ back  # camera frame, looking along -z
        focal = 0.5 * height / math.tan(math.radians(self.fovy_deg) / 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.where(z < 0, width / 2 + focal * x / -z, np.nan)
            v = np.where(z < 0, height / 2 - focal * y / -z, np.nan)
        return np.stack([u, v], axis=-1)


@dataclass
class Light:
    direction: tuple[float, float, float]
    diffuse: float
    ambient: float


@dataclass
class Scene:
    bodies: list[Body]
    camera: Camera
    light: Light
    floor_rgb: tuple[tuple[float, float, float], tuple[float, float, float]]
    sky_rgb: tuple[float, float, float] = (0.55, 0.65, 0.8)
    timestep: float = 0.002
    floor_friction: tuple[float, float, float] = (1.0, 0.005, 0.0001)
    floor_condim: int = 3
    worldbody_xml: str = ""  # extra MJCF inside <worldbody> (articulated robots)
    model_xml: str = ""  # extra MJCF after <worldbody> (actuators, equality constraints)
    options_xml: str = ""  # extra attributes of <option>
    tracked: tuple[str, ...] = field(default_factory=tuple)  # bodies whose visibility is labelled

    def body(self, name: str) -> Body:
        for body in self.bodies:
            if body.name == name:
                return body
        raise KeyError(f"scene has no body {name!r}; bodies: {[b.name for b in self.bodies]}")


def sample_camera(cfg: SceneConfig, rng: np.random.Generator, lookat=(0.0, 0.0, 0.1)) -> Camera:
    c = cfg.camera
    distance = c.distance.sample(rng)
    azimuth = math.radians(c.azimuth_deg.sample(rng))
    elevation = math.radians(c.elevation_deg.sample(rng))
    target = np.asarray(lookat, float) + rng.uniform(-c.lookat_jitter, c.lookat_jitter, 3) * (1, 1, 0.3)
    # azimuth 0: camera on the -y side looking along +y
    offset = distance * np.array(
        [
            math.sin(azimuth) * math.cos(elevation),
            -math.cos(azimuth) * math.cos(elevation),
            -math.sin(elevation),
        ]
    )
    return Camera(tuple(target + offset), tuple(target), c.fovy_deg.sample(rng))


def sample_light(cfg: SceneConfig, rng: np.random.Generator) -> Light:
    lc = cfg.lighting
    azimuth = math.radians(lc.azimuth_deg.sample(rng))
    elevation = math.radians(lc.elevation_deg.sample(rng))
    direction = (
        -math.sin(azimuth) * math.cos(elevation),
        -math.cos(azimuth) * math.cos(elevation),
        -math.sin(elevation),
    )
    return Light(direction, lc.intensity.sample(rng), lc.ambient.sample(rng))


def sample_floor(cfg: SceneConfig, rng: np.random.Generator):
    """Two muted checker colours, low saturation so they never read as an object colour."""
    base = cfg.floor_brightness.sample(rng)
    tint = rng.uniform(-0.06, 0.06, 3)
    first = np.clip(base + tint, 0, 1)
    second = np.clip(first * rng.uniform(0.75, 0.9), 0, 1)
    return tuple(map(float, first)), tuple(map(float, second))


def sample_sky(rng: np.random.Generator) -> tuple[float, float, float]:
    """A pale, slightly blue or grey sky colour for the gradient skybox."""
    base = rng.uniform(0.45, 0.75)
    return tuple(
        float(np.clip(base + d, 0, 1))
        for d in (rng.uniform(-0.1, 0), rng.uniform(-0.05, 0.05), rng.uniform(0, 0.12))
    )


def sample_colors(cfg: SceneConfig, rng: np.random.Generator, count: int) -> list[str]:
    if count > len(cfg.colors):
        raise ValueError(f"need {count} distinct colours, scene.colors has {len(cfg.colors)}")
    order = rng.permutation(len(cfg.colors)) if cfg.shuffle_colors else np.arange(len(cfg.colors))
    return [cfg.colors[i] for i in order[:count]]


def rgba(color: str, alpha: float = 1.0) -> tuple[float, float, float, float]:
    return (*COLORS[color], alpha)


def _vec(values) -> str:
    return " ".join(f"{float(v):.6g}" for v in values)


def _geom_xml(geom: Geom, body: Body) -> str:
    attrs = {
        "type": geom.shape,
        "size": _vec(geom.size),
        "rgba": _vec(geom.rgba),
        "pos": _vec(geom.pos),
        "quat": _vec(geom.quat),
        "friction": _vec(geom.friction),
        "solref": _vec(geom.solref),
        "condim": str(geom.condim),
    }
    if geom.name:
        attrs["name"] = geom.name
    if not geom.collide:
        attrs["contype"] = attrs["conaffinity"] = "0"
    if body.mass is not None and body.kind == "free":
        attrs["mass"] = f"{body.mass / len(body.geoms):.6g}"
    return "<geom " + " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items()) + "/>"


def _body_xml(body: Body) -> str:
    inner = "".join(_geom_xml(g, body) for g in body.geoms)
    joint = "<freejoint/>" if body.kind == "free" else ""
    mocap = ' mocap="true"' if body.kind == "mocap" else ""
    pose = f'pos="{_vec(body.pos)}" quat="{_vec(body.quat)}"'
    return f"<body name={quoteattr(body.name)} {pose}{mocap}>{joint}{inner}</body>"


def to_mjcf(scene: Scene, name: str = "scenario") -> str:
    cam = scene.camera
    right, up, _ = cam.axes()
    light = scene.light
    (r1, r2) = scene.floor_rgb
    return f"""<mujoco model={quoteattr(name)}>
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{scene.timestep}" {scene.options_xml}/>
  <visual>
    <quality shadowsize="1024" offsamples="0"/>
    <headlight ambient="{_vec([light.ambient] * 3)}" diffuse="{_vec([0.25] * 3)}" specular="0 0 0"/>
    <global offwidth="1024" offheight="1024"/>
  </visual>
  <asset>
    <texture name="sky" type="skybox" builtin="gradient" rgb1="{_vec(scene.sky_rgb)}" rgb2="0.1 0.1 0.12"
             width="64" height="64"/>
    <texture name="floor" type="2d" builtin="checker" rgb1="{_vec(r1)}" rgb2="{_vec(r2)}"
             width="256" height="256"/>
    <material name="floor" texture="floor" texrepeat="18 18" reflectance="0"/>
  </asset>
  <worldbody>
    <light name="key" directional="true" castshadow="true" dir="{_vec(light.direction)}"
           diffuse="{_vec([light.diffuse] * 3)}" specular="0.1 0.1 0.1"/>
    <geom name="floor" type="plane" size="12 12 1" material="floor" condim="{scene.floor_condim}"
          friction="{_vec(scene.floor_friction)}"/>
    <camera name="cam" pos="{_vec(cam.pos)}" xyaxes="{_vec(right)} {_vec(up)}" fovy="{cam.fovy_deg:.6g}"/>
    {"".join(_body_xml(b) for b in scene.bodies)}
    {scene.worldbody_xml}
  </worldbody>
  {scene.model_xml}
</mujoco>"""

"""Arrow of time: physical events that look different played backwards, shown forward or reversed.

Events: falling (dropped from rest, lands, settles), bouncing (a lively ball loses height with
every bounce), rolling (down a ramp, along the floor, to a stop), toppling (a row of dominoes),
scattering (a ball rolls down a ramp into a cluster of blocks). Every event starts and ends at
rest, so "does the clip end at rest" would tell the direction if clips were the whole event.
Instead the clip window is chosen so that whether the first and last frames are at rest is drawn
independently of the direction: the pattern (first at rest?, last at rest?) is picked uniformly
from those the run offers whose mirror image it also offers. Reversal maps a pattern to its
mirror, so forward and reversed clips have the same distribution of rest patterns; what tells
them apart is the physics in between (objects slow down, bounces decay, energy is lost).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from cosmos_ros.sim.config import CameraConfig, Range, SceneConfig, TaskConfig
from cosmos_ros.sim.physics import Simulation, speeds
from cosmos_ros.sim.render import render
from cosmos_ros.sim.sample import Question, Rejected, Sample, balanced_options, scene_key
from cosmos_ros.sim.scenarios.common import base_scene, draw_sample, min_visible_px, rounded
from cosmos_ros.sim.scene import Body, Geom, rgba, sample_colors

TASK = "arrow_of_time"
EVENTS = ("falling", "bouncing", "rolling", "toppling", "scattering")
QUESTION = "Is this video playing forward or in reverse?"
FORWARD, REVERSE = "Forward", "In reverse"
REST_SPEED = 0.02  # m/s: every free body slower than this = at rest


def _default_variants() -> dict[str, float]:
    return {event: 1.0 for event in EVENTS}


@dataclass(frozen=True)
class ArrowConfig(TaskConfig):
    task: str = TASK
    variants: dict[str, float] = field(default_factory=_default_variants)
    scene: SceneConfig = SceneConfig(camera=CameraConfig(distance=Range(1.5, 2.0)))
    object_size: Range = Range(0.08, 0.13)  # sphere radius / box half extent of the main object
    drop_height: Range = Range(0.5, 1.0)
    ramp_angle_deg: Range = Range(12.0, 22.0)
    rolling_friction: Range = Range(0.008, 0.015)
    reverse_probability: float = 0.5
    min_moving_fraction: float = 0.25  # of the window's frames
    visible_px: int = 20  # at 256x256, the main object in at least half of the frames

    def __post_init__(self) -> None:
        super().__post_init__()
        if set(self.variants) - set(EVENTS):
            raise ValueError(
                f"unknown arrow_of_time events {sorted(set(self.variants) - set(EVENTS))}; known: {EVENTS}"
            )


def generate(cfg: ArrowConfig, seed: int, variant: str | None = None, reverse: bool | None = None) -> Sample:
    """variant forces the event, reverse the direction; the rest of the draw does not change,
    so generate(seed, reverse=True) is generate(seed, reverse=False) played backwards."""
    drawn_reverse = []  # the direction is drawn once, right after the event

    def attempt(rng, event):
        if not drawn_reverse:
            drawn_reverse.append(bool(rng.random() < cfg.reverse_probability))
        return _attempt(cfg, rng, event, drawn_reverse[0] if reverse is None else reverse)

    return draw_sample(cfg, seed, variant, attempt)


def _quat_axis_angle(axis, angle: float) -> tuple[float, float, float, float]:
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    return (math.cos(angle / 2), *(math.sin(angle / 2) * axis))


def _ramp(angle_deg: float, length: float, x_end: float, color: str) -> tuple[Body, np.ndarray, np.ndarray]:
    """A static ramp descending toward +x, meeting the floor at x_end.

    Returns the ramp, the top of its surface and the downhill direction along it."""
    angle = math.radians(angle_deg)
    down = np.array([math.cos(angle), 0.0, -math.sin(angle)])  # along the surface, downhill
    normal = np.array([math.sin(angle), 0.0, math.cos(angle)])
    top = np.array([x_end, 0.0, 0.0]) - length * down
    center = top + down * length / 2 - normal * 0.02
    geom = Geom("box", (length / 2, 0.22, 0.02), rgba(color))
    return Body("ramp", [geom], tuple(center), _quat_axis_angle((0, 1, 0), angle), kind="static"), top, down


def _event_bodies(cfg: ArrowConfig, rng, event: str, colors: list[str]) -> tuple[list[Body], dict]:
    """The bodies of one event and what the think text needs to know about it."""
    size = cfg.object_size.sample(rng)
    main = colors[0]
    roll = cfg.rolling_friction.sample(rng)
    # Negative solref = contact stiffness and damping directly: a ball that bounces 6-8 times.
    lively = (-20000.0, -rng.uniform(10.0, 20.0))
    if event == "falling":
        ramp, top, _ = _ramp(cfg.ramp_angle_deg.sample(rng) + 8, rng.uniform(0.6, 0.8), 0.1, colors[-1])
        shape = ("sphere", "box", "cylinder")[int(rng.integers(3))]
        geom_size = {
            "sphere": (size,),
            "box": (size, size * 0.8, size * 0.6),
            "cylinder": (size * 0.8, size),
        }[shape]
        solref = (-20000.0, -rng.uniform(25.0, 60.0))
        quat = _quat_axis_angle(rng.normal(size=3), rng.uniform(0, math.pi))
        pos = (
            top[0] + rng.uniform(0.2, 0.35),
            rng.uniform(-0.08, 0.08),
            top[2] + 0.5 * cfg.drop_height.sample(rng),  # lower than a bounce: it stays in view
        )
        geom = Geom(shape, geom_size, rgba(main), solref=solref, friction=(0.8, 0.005, roll), condim=6)
        return [ramp, Body("object", [geom], pos, quat, color_name=main)], {"shape": shape}
    if event == "bouncing":
        geom = Geom("sphere", (size,), rgba(main), solref=lively, friction=(0.6, 0.005, roll), condim=6)
        pos = (rng.uniform(-0.35, -0.1), 0.0, cfg.drop_height.sample(rng) + 0.3)
        return [Body("object", [geom], pos, color_name=main)], {
            "shape": "ball",
            "push": rng.uniform(0.1, 0.35),
        }
    if event in ("rolling", "scattering"):
        ramp, top, down = _ramp(cfg.ramp_angle_deg.sample(rng), rng.uniform(0.5, 0.7), -0.1, colors[-1])
        normal = np.cross(down, (0.0, 1.0, 0.0))  # (sin a, 0, cos a): out of the surface
        geom = Geom("sphere", (size,), rgba(main), friction=(1.0, 0.005, roll), condim=6)
        ball = Body("object", [geom], tuple(top + 0.1 * down + (size + 0.002) * normal), color_name=main)
        bodies = [ramp, ball]
        if event == "scattering":
            block = rng.uniform(0.035, 0.05)
            layout = [(0, -1, 0), (0, 1, 0), (1, 0, 0), (0, 0, 1), (1, -2, 0), (1, 2, 0)][
                : int(rng.integers(4, 7))
            ]
            for i, (dx, dy, level) in enumerate(layout):
                color = colors[1 + i % (len(colors) - 2)]
                pos = (0.3 + dx * 2.1 * block, dy * 1.05 * block, block + level * 2 * block)
                geom = Geom("box", (block,) * 3, rgba(color), friction=(0.7, 0.005, 0.0005))
                bodies.append(Body(f"block_{i}", [geom], pos, color_name=color))
        return bodies, {"shape": "ball"}
    if event == "toppling":
        count = int(rng.integers(5, 9))
        height = rng.uniform(0.3, 0.42)
        thick, width = height * 0.16, height * 0.45
        gap = height * rng.uniform(0.5, 0.7)
        tilt = math.atan2(thick, height) + math.radians(rng.uniform(1.0, 3.0))  # just past balance
        bodies = []
        for i in range(count):
            angle = tilt if i == 0 else 0.0
            # tilted about the leading bottom edge, which stays on the floor
            edge_x = -(count - 1) * gap / 2 + i * gap + thick / 2
            center = np.array([edge_x, 0.0, 0.0]) + np.array(
                [
                    -thick / 2 * math.cos(angle) + height / 2 * math.sin(angle),
                    0.0,
                    thick / 2 * math.sin(angle) + height / 2 * math.cos(angle),
                ]
            )
            color = colors[i % (len(colors) - 1)]
            geom = Geom("box", (thick / 2, width / 2, height / 2), rgba(color), friction=(0.6, 0.005, 0.0005))
            name = f"domino_{i}" if i else "object"
            bodies.append(
                Body(name, [geom], tuple(center), _quat_axis_angle((0, 1, 0), angle), color_name=color)
            )
        return bodies, {"shape": "domino", "count": count}
    raise ValueError(f"unknown event {event!r}; known: {EVENTS}")


def _attempt(cfg: ArrowConfig, rng: np.random.Generator, event: str, reverse: bool) -> Sample:
    r = cfg.render
    colors = sample_colors(cfg.scene, rng, 4)
    bodies, facts = _event_bodies(cfg, rng, event, colors)
    lookat = {"falling": (-0.1, 0.0, 0.3), "bouncing": (0.15, 0.0, 0.35)}.get(event, (0.0, 0.0, 0.12))
    roll = bodies[-1].geoms[0].friction[2] if event != "scattering" else cfg.rolling_friction.low
    scene = base_scene(cfg, rng, bodies, tracked=("object",), lookat=lookat, floor_condim=6,
                       floor_friction=(1.0, 0.005, roll))  # fmt: skip
    sim = Simulation(scene, TASK)
    if event == "bouncing":
        sim.set_velocity("object", (facts.pop("push"), 0.0, 0.0))
    rollout = sim.run(r.fps, 3 * r.num_frames)  # (N,) frames of the whole event
    at_rest = speeds(rollout, sim.model) < REST_SPEED
    start, pattern = _window(at_rest, r.num_frames, cfg.min_moving_fraction, rng)
    frames = np.arange(start, start + r.num_frames)
    shown = rollout.select(frames[::-1] if reverse else frames)
    rendering = render(sim, shown, r.width, r.height)
    px = rendering.visible_px["object"]
    if (px >= min_visible_px(r, cfg.visible_px)).mean() < 0.5:
        raise Rejected("the main object is visible in fewer than half of the frames")

    correct, other = (REVERSE, FORWARD) if reverse else (FORWARD, REVERSE)
    options, answer = balanced_options(correct, [other], rng, 2)
    think = _think(event, colors[0], facts, reverse)
    question = Question(QUESTION, options, answer, f"{TASK}/{event}", think=think)
    shown_rest = at_rest[frames[::-1] if reverse else frames]
    labels = {
        "event": event,
        "reversed": reverse,
        "window_start_frame": int(start),
        "physical_rest_pattern": list(pattern),
        "starts_at_rest": bool(shown_rest[0]),
        "ends_at_rest": bool(shown_rest[-1]),
        "object_color": colors[0],
        "frames": {
            "physical_time_s": rounded(shown.times, 4),
            "at_rest": shown_rest.tolist(),
            "object_visible_px": px.tolist(),
            "object_position": rounded(shown.position("object")),
        },
    }
    key = scene_key(TASK, event, rounded(rollout.position("object")[0]))
    # trajectory stays in physical order (USD export); frames are what the model sees
    return Sample(
        task=TASK, variant=event, frames=rendering.frames, fps=r.fps, questions=[question],
        labels=labels, scene_key=key, sim=sim, trajectory=rollout.select(frames),
    )


def _window(at_rest: np.ndarray, length: int, min_moving: float, rng) -> tuple[int, tuple[bool, bool]]:
    """A window start whose (first at rest, last at rest) pattern is uniform over the run's
    mirror-closed patterns (see the module docstring)."""
    starts = [s for s in range(len(at_rest) - length + 1) if (~at_rest[s : s + length]).mean() >= min_moving]
    by_pattern: dict[tuple[bool, bool], list[int]] = {}
    for s in starts:
        by_pattern.setdefault((bool(at_rest[s]), bool(at_rest[s + length - 1])), []).append(s)
    closed = sorted(p for p in by_pattern if (p[1], p[0]) in by_pattern)
    if not closed:
        raise Rejected("no window whose rest pattern has a mirror image in this run")
    pattern = closed[int(rng.integers(len(closed)))]
    choices = by_pattern[pattern]
    return choices[int(rng.integers(len(choices)))], pattern


_STORIES = {
    "falling": (
        "The {color} {shape} drops from rest, speeds up as it falls, hits the floor and settles.",
        "The {color} {shape} would have to jump off the floor by itself and slow down as it rises, "
        "ending at rest in mid-air.",
    ),
    "bouncing": (
        "The {color} ball bounces, each bounce lower than the last, as every impact loses energy.",
        "The {color} ball bounces higher with every bounce, gaining energy from nowhere.",
    ),
    "rolling": (
        "The {color} ball rolls down the ramp, then slows along the floor until it stops.",
        "The {color} ball starts rolling on its own, speeds up along the floor and climbs the ramp "
        "until it rests at the top.",
    ),
    "toppling": (
        "The first domino tips over and knocks the next ones down, one after another.",
        "The fallen dominoes stand up by themselves, one after another.",
    ),
    "scattering": (
        "The {color} ball rolls down the ramp into the blocks and scatters them; they slide to a stop.",
        "Scattered blocks slide together into a neat cluster and push the ball back up the ramp.",
    ),
}


def _think(event: str, color: str, facts: dict, reverse: bool) -> str:
    forward, backward = _STORIES[event]
    if reverse:
        return (
            backward.format(color=color, **facts) + " That cannot happen, so the video is playing in reverse."
        )
    return (
        forward.format(color=color, **facts) + " That is what gravity and friction do, so it plays forward."
    )

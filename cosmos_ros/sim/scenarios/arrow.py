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
    # falling: an object dropped ahead of a steeper ramp's top, tumbling down it
    falling_extra_angle_deg: float = 8.0  # steeper than ramp_angle_deg by this much
    falling_ramp_length: Range = Range(0.6, 0.8)
    falling_damping: Range = Range(25.0, 60.0)  # contact damping (solref): bounces die out
    falling_ahead: Range = Range(0.2, 0.35)  # m past the ramp's top
    falling_side: Range = Range(-0.08, 0.08)
    # bouncing: a lively ball dropped and pushed
    bounce_damping: Range = Range(10.0, 20.0)  # 6-8 bounces
    bounce_x: Range = Range(-0.35, -0.1)
    bounce_push: Range = Range(0.1, 0.35)  # m/s along x
    # rolling, scattering: a ball rolls down a ramp (into a stack of blocks)
    rolling_ramp_length: Range = Range(0.5, 0.7)
    scatter_block_size: Range = Range(0.035, 0.05)  # half extent
    scatter_blocks: tuple[int, int] = (4, 7)  # blocks in the stack: integers in [low, high)
    # toppling: a row of dominoes, the first tilted just past its balance
    dominoes: tuple[int, int] = (5, 9)  # integers in [low, high)
    domino_height: Range = Range(0.3, 0.42)
    domino_gap: Range = Range(0.5, 0.7)  # spacing, in domino heights
    domino_tilt_deg: Range = Range(1.0, 3.0)  # past the balance angle

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
    lively = (-20000.0, -cfg.bounce_damping.sample(rng))
    if event == "falling":
        ramp, top, _ = _ramp(
            cfg.ramp_angle_deg.sample(rng) + cfg.falling_extra_angle_deg, cfg.falling_ramp_length.sample(rng), 0.1,
            colors[-1],
        )  # fmt: skip
        shape = ("sphere", "box", "cylinder")[int(rng.integers(3))]
        geom_size = {
            "sphere": (size,),
            "box": (size, size * 0.8, size * 0.6),
            "cylinder": (size * 0.8, size),
        }[shape]
        solref = (-20000.0, -cfg.falling_damping.sample(rng))
        quat = _quat_axis_angle(rng.normal(size=3), rng.uniform(0, math.pi))
        pos = (
            top[0] + cfg.falling_ahead.sample(rng),
            cfg.falling_side.sample(rng),
            top[2] + 0.5 * cfg.drop_height.sample(rng),  # lower than a bounce: it stays in view
        )
        geom = Geom(shape, geom_size, rgba(main), solref=solref, friction=(0.8, 0.005, roll), condim=6)
        return [ramp, Body("object", [geom], pos, quat, color_name=main)], {"shape": shape}
    if event == "bouncing":
        geom = Geom("sphere", (size,), rgba(main), solref=lively, friction=(0.6, 0.005, roll), condim=6)
        pos = (cfg.bounce_x.sample(rng), 0.0, cfg.drop_height.sample(rng) + 0.3)
        return [Body("object", [geom], pos, color_name=main)], {
            "shape": "ball",
            "push": cfg.bounce_push.sample(rng),
        }
    if event in ("rolling", "scattering"):
        ramp, top, down = _ramp(cfg.ramp_angle_deg.sample(rng), cfg.rolling_ramp_length.sample(rng), -0.1, colors[-1])
        normal = np.cross(down, (0.0, 1.0, 0.0))  # (sin a, 0, cos a): out of the surface
        geom = Geom("sphere", (size,), rgba(main), friction=(1.0, 0.005, roll), condim=6)
        ball = Body("object", [geom], tuple(top + 0.1 * down + (size + 0.002) * normal), color_name=main)
        bodies = [ramp, ball]
        if event == "scattering":
            block = cfg.scatter_block_size.sample(rng)
            layout = [(0, -1, 0), (0, 1, 0), (1, 0, 0), (0, 0, 1), (1, -2, 0), (1, 2, 0)][
                : int(rng.integers(*cfg.scatter_blocks))
            ]
            for i, (dx, dy, level) in enumerate(layout):
                color = colors[1 + i % (len(colors) - 2)]
                pos = (0.3 + dx * 2.1 * block, dy * 1.05 * block, block + level * 2 * block)
                geom = Geom("box", (block,) * 3, rgba(color), friction=(0.7, 0.005, 0.0005))
                bodies.append(Body(f"block_{i}", [geom], pos, color_name=color))
        return bodies, {"shape": "ball"}
    if event == "toppling":
        count = int(rng.integers(*cfg.dominoes))
        height = cfg.domino_height.sample(rng)
        thick, width = height * 0.16, height * 0.45
        gap = height * cfg.domino_gap.sample(rng)
        tilt = math.atan2(thick, height) + math.radians(cfg.domino_tilt_deg.sample(rng))  # just past balance
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


@dataclass
class Run:
    event: str
    reverse: bool
    colors: list
    facts: dict  # what the think text needs to know
    sim: Simulation
    rollout: object  # the whole event, in physical order
    at_rest: np.ndarray  # (N,) per rollout frame
    start: int  # the window's first rollout frame
    pattern: tuple  # the window's rest pattern (at rest at its start, at its end)
    shown: object  # the window as the model sees it (reversed or not)
    rendering: object
    length: int  # frames in the window

    @property
    def window(self) -> np.ndarray:
        """The window's rollout frames, in physical order."""
        return np.arange(self.start, self.start + self.length)

    @property
    def at_rest_shown(self) -> np.ndarray:
        return self.at_rest[self.window[::-1] if self.reverse else self.window]


def _attempt(cfg: ArrowConfig, rng: np.random.Generator, event: str, reverse: bool) -> Sample:
    """draw (colours, the event's bodies) -> simulate (the event, a window of it, rendered) ->
    validate -> label."""
    colors = sample_colors(cfg.scene, rng, 4)
    bodies, facts = _event_bodies(cfg, rng, event, colors)
    run = simulate(cfg, rng, event, reverse, colors, bodies, facts)
    validate(cfg, run)
    return label(cfg, rng, run)


def simulate(cfg: ArrowConfig, rng, event: str, reverse: bool, colors, bodies, facts) -> Run:
    """The scene (its camera and lights drawn here), the whole event, and a window of it with
    motion in it, rendered in the order shown."""
    r = cfg.render
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
    return Run(event, reverse, colors, facts, sim, rollout, at_rest, start, pattern, shown, rendering, r.num_frames)


def validate(cfg: ArrowConfig, run: Run) -> None:
    px = run.rendering.visible_px["object"]
    if (px >= min_visible_px(cfg.render, cfg.visible_px)).mean() < 0.5:
        raise Rejected("the main object is visible in fewer than half of the frames")


def label(cfg: ArrowConfig, rng, run: Run) -> Sample:
    r, event, reverse = cfg.render, run.event, run.reverse
    correct, other = (REVERSE, FORWARD) if reverse else (FORWARD, REVERSE)
    options, answer = balanced_options(correct, [other], rng, 2)
    think = _think(event, run.colors[0], run.facts, reverse)
    question = Question(QUESTION, options, answer, f"{TASK}/{event}", think=think)
    shown_rest = run.at_rest_shown
    labels = {
        "event": event,
        "reversed": reverse,
        "window_start_frame": int(run.start),
        "physical_rest_pattern": list(run.pattern),
        "starts_at_rest": bool(shown_rest[0]),
        "ends_at_rest": bool(shown_rest[-1]),
        "object_color": run.colors[0],
        "frames": {
            "physical_time_s": rounded(run.shown.times, 4),
            "at_rest": shown_rest.tolist(),
            "object_visible_px": run.rendering.visible_px["object"].tolist(),
            "object_position": rounded(run.shown.position("object")),
        },
    }
    key = scene_key(TASK, event, rounded(run.rollout.position("object")[0]))
    # trajectory stays in physical order (USD export); frames are what the model sees
    return Sample(
        task=TASK, variant=event, frames=run.rendering.frames, fps=r.fps, questions=[question],
        labels=labels, scene_key=key, sim=run.sim, trajectory=run.rollout.select(run.window),
    )  # fmt: skip


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

"""Object permanence, occluder set-up: a ball rolls toward a wall, and may hide behind it.

The ball starts rolling (rolling friction slows it: at a constant rate with the config's
`hard_friction`, more like a drag under MuJoCo's soft default); its start speed is solved from
calibration runs so that it stops where the variant wants it: short of the wall, behind it,
past it, or out of view. Labels are then read back from the simulation, and a run
whose outcome is not what the variant asked for is rejected rather than mislabelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from cosmos_ros.sim.physics import Simulation, speeds
from cosmos_ros.sim.render import render
from cosmos_ros.sim.sample import Rejected, Sample, scene_key
from cosmos_ros.sim.scenarios.common import (
    HARD_FRICTION,
    MocapPath,
    base_scene,
    in_view,
    is_parked,
    min_visible_px,
    mocap_control,
    park,
    pixel_track,
    rounded,
)  # fmt: skip
from cosmos_ros.sim.scenarios.permanence_qa import TASK, location_question, plausibility_question, states
from cosmos_ros.sim.scene import Body, Geom, rgba, sample_colors

if TYPE_CHECKING:
    from cosmos_ros.sim.scenarios.permanence import PermanenceConfig

PLACES = {
    "short": "It stopped before reaching the wall",
    "behind": "It is hidden behind the wall",
    "past": "It rolled past the wall and stopped in view",
    "out": "It rolled out of view",
}
REST_SPEED = 0.02  # m/s
WALL_LIFT_S = 0.4


def _stop_distance(scene, radius: float, speed: float) -> float:
    """How far the ball rolls from `speed` before it stops (a calibration run, no rendering)."""
    sim = Simulation(scene)
    sim.set_velocity("ball", (speed, 0.0, 0.0), (0.0, speed / radius, 0.0))
    trajectory = sim.run(10.0, 120)
    start = trajectory.position("ball")[0, 0]
    return float(trajectory.position("ball")[-1, 0] - start)


@dataclass(frozen=True)
class Draw:
    """One run's random choices, drawn from the clip's generator in a fixed order."""

    variant: str
    kind: str  # short | stay | pass | exit | vanish
    motion: str  # how the ball rolls: short | stay | pass | exit
    direction: float  # +1 rolls right, -1 left
    ball_color: str
    wall_color: str
    radius: float
    half_width: float
    height: float
    reveal: bool  # the wall is lifted at the end
    roll: float  # rolling friction
    wall_x: float
    path_y: float
    start_x: float
    target_x: float  # where the ball should stop
    reveal_delay: float  # s after the ball stops


@dataclass
class Run:
    """The simulated run: the scene, its physics, and (once rendered) what the camera saw."""

    scene: object
    sim: Simulation
    physical: object  # trajectory without the vanishing
    speed: float
    where: str  # where the ball ended: short | behind | past | out
    stop_frame: int
    reveal_t: float | None
    trajectory: object = None  # the filmed trajectory (the vanishing applied)
    rendering: object = None
    vanish_frame: int = -1


def generate(cfg: PermanenceConfig, rng: np.random.Generator, variant: str) -> Sample:
    """draw -> simulate -> validate the motion -> render -> validate the frames -> label."""
    chosen = draw(cfg, rng, variant)
    run = simulate(cfg, rng, chosen)
    validate_motion(cfg, chosen, run)  # physics first: no rendering for draws that miss
    film(cfg, chosen, run)
    visibility = validate_frames(cfg, chosen, run)
    return label(cfg, rng, chosen, run, visibility)


def draw(cfg: PermanenceConfig, rng: np.random.Generator, variant: str) -> Draw:
    kind = variant.removeprefix("occluder_")
    motion = kind if kind != "vanish" else ("stay", "pass", "exit")[int(rng.integers(3))]
    direction = 1.0 if rng.random() < 0.5 else -1.0
    ball_color, wall_color = sample_colors(cfg.scene, rng, 2)
    radius = cfg.ball_radius.sample(rng)
    half_width = cfg.wall_half_width.sample(rng)
    height = cfg.wall_height.sample(rng)
    reveal = (kind == "vanish" and motion == "stay") or (
        kind in ("stay", "pass", "short") and rng.random() < cfg.reveal_probability
    )
    roll = cfg.rolling_friction.sample(rng)
    if reveal:  # the upper half of the range: the ball must stop in time for the wall to lift
        roll = (roll + cfg.rolling_friction.high) / 2
    wall_x = cfg.wall_x.sample(rng)
    path_y = cfg.path_y.sample(rng)
    start_x = wall_x - direction * cfg.start_distance.sample(rng)
    stop_offset = {  # from the wall's centre, along the roll
        "short": (-(half_width + cfg.short_gap.high), -(half_width + radius + cfg.short_gap.low)),
        "stay": (-(half_width - radius - cfg.behind_margin), half_width - radius - cfg.behind_margin),
        "pass": (half_width + radius + cfg.past_gap.low, half_width + radius + cfg.past_gap.high),
        "exit": (cfg.exit_distance.low, cfg.exit_distance.high),
    }[motion]
    target_x = wall_x + direction * rng.uniform(*stop_offset)
    reveal_delay = cfg.reveal_delay_s.sample(rng)
    return Draw(
        variant=variant, kind=kind, motion=motion, direction=direction, ball_color=ball_color,
        wall_color=wall_color, radius=radius, half_width=half_width, height=height, reveal=reveal,
        roll=roll, wall_x=wall_x, path_y=path_y, start_x=start_x, target_x=target_x,
        reveal_delay=reveal_delay,
    )  # fmt: skip


def _wall_pos(d: Draw) -> tuple:
    return (d.wall_x, 0.0, d.height / 2)


def _run(cfg: PermanenceConfig, scene, d: Draw, speed: float, reveal_t=None, edits=None):
    """The ball sent off at `speed`; the wall lifted from reveal_t if given. (sim, trajectory)"""
    wall_pos = _wall_pos(d)
    keys = [(0.0, wall_pos)]
    if reveal_t is not None:
        keys += [(reveal_t, wall_pos), (reveal_t + WALL_LIFT_S, np.add(wall_pos, (0.0, 0.0, d.height + 0.35)))]
    sim = Simulation(scene, TASK)
    sim.set_velocity("ball", (d.direction * speed, 0.0, 0.0), (0.0, d.direction * speed / d.radius, 0.0))
    r = cfg.render
    return sim, sim.run(r.fps, r.num_frames, control=mocap_control(sim, {"wall": MocapPath(keys)}), edits=edits)


def simulate(cfg: PermanenceConfig, rng: np.random.Generator, d: Draw) -> Run:
    """The scene (its camera and lights drawn here) and the physics: the start speed solved so
    the ball stops at target_x, then when it stops and when the wall lifts."""
    friction = (1.0, 0.005, d.roll)
    ball = Body(
        "ball",
        [Geom("sphere", (d.radius,), rgba(d.ball_color), friction=friction, condim=6)],
        (d.start_x, d.path_y, d.radius),
        color_name=d.ball_color,
    )
    wall = Body(
        "wall",
        [Geom("box", (d.half_width, 0.03, d.height / 2), rgba(d.wall_color))],
        _wall_pos(d),
        kind="mocap",
        color_name=d.wall_color,
    )
    scene = base_scene(
        cfg, rng, [ball, wall], tracked=("ball",), lookat=(d.wall_x, 0.1, 0.12),
        floor_friction=friction, floor_condim=6, options_xml=HARD_FRICTION if cfg.hard_friction else "",
    )  # fmt: skip
    speed = float(np.sqrt(abs(d.target_x - d.start_x) / max(_stop_distance(scene, d.radius, 1.0), 1e-6)))
    # The ball never touches the wall, so lifting it cannot change the roll: simulate without
    # the lift to learn when the ball stops, then schedule the lift after that.
    sim, physical = _run(cfg, scene, d, speed)
    if d.motion != "exit":  # one correction: stopping distance grows with the square of the speed
        travelled = abs(physical.position("ball")[-1, 0] - d.start_x)
        speed *= float(np.sqrt(abs(d.target_x - d.start_x) / max(travelled, 1e-3)))
        sim, physical = _run(cfg, scene, d, speed)
    r = cfg.render
    final_pixel = pixel_track(scene, physical, "ball", r)[-1:]
    where = _location(
        physical.position("ball")[-1], d.wall_x, d.direction, d.half_width, d.radius, in_view(final_pixel, r)[0]
    )
    moving = speeds(physical, sim.model) > REST_SPEED
    stop_frame = int(np.flatnonzero(moving)[-1]) + 1 if moving.any() else 0
    reveal_t = stop_frame / r.fps + d.reveal_delay if d.reveal else None
    return Run(scene, sim, physical, speed, where, stop_frame, reveal_t)


def validate_motion(cfg: PermanenceConfig, d: Draw, run: Run) -> None:
    """Rejected when the ball did not do what the variant asked, or stops too late to reveal."""
    asked = {"stay": "behind", "pass": "past", "exit": "out", "short": "short"}[d.motion]
    if run.where != asked:
        raise Rejected(f"the ball ended {run.where}, the variant asked for {asked}")
    if d.reveal and run.reveal_t + WALL_LIFT_S > cfg.render.duration_s - 0.25:
        raise Rejected("the ball stops too late to lift the wall in the clip")


def film(cfg: PermanenceConfig, d: Draw, run: Run) -> None:
    """The run as filmed: the wall lift simulated, the ball taken away for a vanish (while hidden,
    found on a coarse render), then rendered."""
    r = cfg.render
    sim, physical = run.sim, run.physical
    if d.reveal:
        sim, physical = _run(cfg, run.scene, d, run.speed, run.reveal_t)
    reveal_frame = int(np.ceil(run.reveal_t * r.fps)) if d.reveal else r.num_frames
    trajectory = physical
    if d.kind == "vanish":
        coarse = render(sim, physical, r.width // 2, r.height // 2, rgb=False).visible_px["ball"]
        min_hidden = max(1, int(np.ceil(cfg.min_hidden_s * r.fps)))
        run.vanish_frame = _vanish_frame(coarse, d.motion, reveal_frame, min_hidden)
        sim, trajectory = _run(cfg, run.scene, d, run.speed, run.reveal_t, {run.vanish_frame: park(sim, "ball")})
    run.sim, run.physical, run.trajectory = sim, physical, trajectory
    run.rendering = render(sim, trajectory, r.width, r.height)


def validate_frames(cfg: PermanenceConfig, d: Draw, run: Run) -> dict:
    """Rejected when the camera does not show the story the labels will tell; else the per-frame
    visibility the labels use."""
    r = cfg.render
    px = run.rendering.visible_px["ball"]
    position = run.trajectory.position("ball")
    exists = ~is_parked(position)
    threshold = min_visible_px(r, cfg.visible_px)
    visible = px >= threshold
    min_hidden = max(1, int(np.ceil(cfg.min_hidden_s * r.fps)))
    hidden_run = _longest_run(~visible & exists)
    motion, kind = d.motion, d.kind
    checks = [
        (visible[0], "the ball is not visible at the start"),
        (((px > 0) & (px < threshold)).sum() <= len(px) // 2, "the ball is mostly half-visible"),
        (not 0 < px[-1] < threshold, "the last frame shows only a sliver of the ball"),
        (run.where != "out" or px[-1] == 0, "the ball counted out of view is still visible"),
        (
            motion == "short" or kind == "vanish" or hidden_run >= min_hidden,
            "the ball is never hidden for long",
        ),
        (motion != "short" or hidden_run == 0, "the ball hides although it stops short"),
        (motion != "stay" or d.reveal or not visible[-1], "a ball behind the wall is visible at the end"),
        (kind != "vanish" or not visible[run.vanish_frame - 1], "the ball vanished in plain view"),
    ]
    failed = [why for ok, why in checks if not ok]
    if failed:
        raise Rejected(failed[0])
    return {"px": px, "position": position, "exists": exists, "visible": visible}


def label(cfg: PermanenceConfig, rng: np.random.Generator, d: Draw, run: Run, seen: dict) -> Sample:
    """Questions (with their reasoning) and labels, from the physics and what the camera saw."""
    r = cfg.render
    px, position, exists, visible = seen["px"], seen["position"], seen["exists"], seen["visible"]
    plausible = d.kind != "vanish"
    where, reveal, reveal_t = run.where, d.reveal, run.reveal_t
    hidden_at = int(np.flatnonzero(~visible)[0]) if (~visible).any() else -1
    think = _think(d.ball_color, where, plausible, d.motion, reveal, hidden_at / r.fps, d.kind)
    questions = [plausibility_question(plausible, think, rng)]
    if plausible and not reveal:
        question = f"Where is the {d.ball_color} ball at the end of the video?"
        questions.append(location_question(question, PLACES, where, think, rng))
    pixels = pixel_track(run.scene, run.trajectory, "ball", r)
    no = np.zeros(len(px), bool)
    labels = {
        "mode": "occluder",
        "motion": d.motion,
        "direction": "right" if d.direction > 0 else "left",
        "plausible": plausible,
        "reveal": reveal,
        "reveal_time_s": round(reveal_t, 3) if reveal else None,
        "stop_frame": run.stop_frame,
        "vanish_frame": run.vanish_frame,
        "final_location": where if plausible else None,
        "ball_color": d.ball_color,
        "ball_radius": round(d.radius, 4),
        "final_frame_ball_visible": bool(visible[-1]),
        "frames": {
            "ball_visible_px": px.tolist(),
            "ball_exists": exists.tolist(),
            "ball_position": rounded(position),
            "ball_pixel": rounded(pixels, 1),
            "ball_state": states(exists, visible, no, no),
        },
    }
    key = scene_key(
        TASK, "occluder", round(d.start_x, 3), round(d.wall_x, 3), round(d.radius, 3), round(run.speed, 3)
    )
    return Sample(
        task=TASK, variant=d.variant, frames=run.rendering.frames, fps=r.fps, questions=questions,
        labels=labels, scene_key=key, sim=run.sim, trajectory=run.trajectory,
    )  # fmt: skip


def _location(final, wall_x, direction, half_width, radius, visible_in_frame) -> str:
    offset = (final[0] - wall_x) * direction
    if not visible_in_frame:
        return "out"
    if offset < -(half_width + radius):
        return "short"
    if abs(offset) <= half_width - radius:
        return "behind"
    if offset > half_width + radius:
        return "past"
    return "edge"


def _longest_run(mask: np.ndarray) -> int:
    best = run = 0
    for value in mask:
        run = run + 1 if value else 0
        best = max(best, run)
    return best


def _vanish_frame(hidden_px: np.ndarray, motion: str, reveal_frame: int, min_hidden: int) -> int:
    """A frame inside the first hidden stretch at which the ball can disappear unseen.

    For 'pass' and 'exit' the unperturbed ball must come back into view afterwards (so its
    absence is visible); for 'stay' it must still be hidden when the wall starts to lift."""
    hidden = hidden_px == 0
    if not hidden.any():
        raise Rejected("the ball never hides")
    first = int(np.flatnonzero(hidden)[0])
    last = first
    while last + 1 < len(hidden) and hidden[last + 1]:
        last += 1
    if motion == "stay":
        last = min(last, reveal_frame - 1)
    elif last >= len(hidden) - 3:
        raise Rejected("the unperturbed ball would not come back into view in time")
    if last - first + 1 < min_hidden:
        raise Rejected("the ball is hidden too briefly to vanish unseen")
    return first + 1 + (last - first - 1) // 2


def _think(color, where, plausible, motion, reveal, hidden_s, kind) -> str:
    seen = f"The {color} ball rolls toward the wall, slowing down as it goes."
    if motion == "short":
        story = " It stops before it reaches the wall and stays in view."
    else:
        story = f" It goes behind the wall at about {hidden_s:.1f} s."
    if kind == "vanish":
        if motion == "stay":
            return (
                seen + story + " It was slow enough to stop there, yet when the wall is lifted the floor "
                "behind it is empty. A ball cannot vanish while hidden, so this is not physically plausible."
            )
        return (
            seen + story + " It was still fast enough to come out on the other side, but it never "
            "reappears. A ball cannot vanish while hidden, so this is not physically plausible."
        )
    ends = {
        "behind": " It had slowed so much that it stops behind the wall: it is still there, only hidden.",
        "past": " It comes out on the other side and stops in view.",
        "out": " It comes out on the other side and keeps rolling until it leaves the view.",
        "short": "",
    }[where]
    shown = " When the wall is lifted, the ball is where it stopped." if reveal and where == "behind" else ""
    return (
        seen
        + story
        + ends
        + shown
        + " Nothing appears or disappears without a cause, so the video is plausible."
    )

"""Object permanence, occluder set-up: a ball rolls toward a wall, and may hide behind it.

The ball starts rolling (rolling friction slows it at a constant rate); its start speed is
solved from a calibration run so that it stops where the variant wants it: short of the wall,
behind it, past it, or out of view. Labels are then read back from the simulation, and a run
whose outcome is not what the variant asked for is rejected rather than mislabelled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from cosmos_ros.sim.physics import Simulation, speeds
from cosmos_ros.sim.render import render
from cosmos_ros.sim.sample import Rejected, Sample, scene_key
from cosmos_ros.sim.scenarios.common import (
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


def generate(cfg: PermanenceConfig, rng: np.random.Generator, variant: str) -> Sample:
    r = cfg.render
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
    wall_x = rng.uniform(-0.15, 0.15)
    path_y = rng.uniform(0.30, 0.45)
    start_x = wall_x - direction * rng.uniform(0.8, 1.0)
    stop_offset = {
        "short": (-(half_width + 0.55), -(half_width + radius + 0.08)),
        "stay": (-(half_width - radius - 0.06), half_width - radius - 0.06),
        "pass": (half_width + radius + 0.1, half_width + radius + 0.45),
        "exit": (2.6, 3.6),
    }[motion]
    target_x = wall_x + direction * rng.uniform(*stop_offset)
    reveal_delay = rng.uniform(0.15, 0.4)  # after the ball stops

    friction = (1.0, 0.005, roll)
    ball = Body(
        "ball",
        [Geom("sphere", (radius,), rgba(ball_color), friction=friction, condim=6)],
        (start_x, path_y, radius),
        color_name=ball_color,
    )
    wall_pos = (wall_x, 0.0, height / 2)
    wall = Body(
        "wall",
        [Geom("box", (half_width, 0.03, height / 2), rgba(wall_color))],
        wall_pos,
        kind="mocap",
        color_name=wall_color,
    )
    scene = base_scene(
        cfg, rng, [ball, wall], tracked=("ball",), lookat=(wall_x, 0.1, 0.12),
        floor_friction=friction, floor_condim=6,
    )  # fmt: skip
    speed = float(np.sqrt(abs(target_x - start_x) / max(_stop_distance(scene, radius, 1.0), 1e-6)))
    lifted = np.add(wall_pos, (0.0, 0.0, height + 0.35))

    def simulate(speed, reveal_t=None, edits=None):
        keys = [(0.0, wall_pos)]
        if reveal_t is not None:
            keys += [(reveal_t, wall_pos), (reveal_t + WALL_LIFT_S, lifted)]
        sim = Simulation(scene, TASK)
        sim.set_velocity("ball", (direction * speed, 0.0, 0.0), (0.0, direction * speed / radius, 0.0))
        return sim, sim.run(
            r.fps, r.num_frames, control=mocap_control(sim, {"wall": MocapPath(keys)}), edits=edits
        )

    # The ball never touches the wall, so lifting it cannot change the roll: simulate without
    # the lift to learn when the ball stops, then schedule the lift after that.
    sim, physical = simulate(speed)
    if motion != "exit":  # one correction: stopping distance grows with the square of the speed
        travelled = abs(physical.position("ball")[-1, 0] - start_x)
        speed *= float(np.sqrt(abs(target_x - start_x) / max(travelled, 1e-3)))
        sim, physical = simulate(speed)
    final_pixel = pixel_track(scene, physical, "ball", r)[-1:]
    where = _location(
        physical.position("ball")[-1], wall_x, direction, half_width, radius, in_view(final_pixel, r)[0]
    )
    asked = {"stay": "behind", "pass": "past", "exit": "out", "short": "short"}[motion]
    if where != asked:  # physics first: no rendering for draws that miss
        raise Rejected(f"the ball ended {where}, the variant asked for {asked}")
    moving = speeds(physical, sim.model) > REST_SPEED
    stop_frame = int(np.flatnonzero(moving)[-1]) + 1 if moving.any() else 0
    reveal_t = stop_frame / r.fps + reveal_delay if reveal else None
    if reveal:
        if reveal_t + WALL_LIFT_S > r.duration_s - 0.25:
            raise Rejected("the ball stops too late to lift the wall in the clip")
        sim, physical = simulate(speed, reveal_t)
    reveal_frame = int(np.ceil(reveal_t * r.fps)) if reveal else r.num_frames

    threshold = min_visible_px(r, cfg.visible_px)
    min_hidden = max(1, int(np.ceil(cfg.min_hidden_s * r.fps)))
    vanish_frame = -1
    if kind == "vanish":
        coarse = render(sim, physical, r.width // 2, r.height // 2, rgb=False).visible_px["ball"]
        vanish_frame = _vanish_frame(coarse, motion, reveal_frame, min_hidden)
        sim, trajectory = simulate(speed, reveal_t, {vanish_frame: park(sim, "ball")})
    else:
        trajectory = physical
    rendering = render(sim, trajectory, r.width, r.height)
    px = rendering.visible_px["ball"]
    position = trajectory.position("ball")
    pixels = pixel_track(scene, trajectory, "ball", r)
    exists = ~is_parked(position)
    visible = px >= threshold
    hidden_run = _longest_run(~visible & exists)
    checks = [
        (visible[0], "the ball is not visible at the start"),
        (((px > 0) & (px < threshold)).sum() <= len(px) // 2, "the ball is mostly half-visible"),
        (not 0 < px[-1] < threshold, "the last frame shows only a sliver of the ball"),
        (where != "out" or px[-1] == 0, "the ball counted out of view is still visible"),
        (
            motion == "short" or kind == "vanish" or hidden_run >= min_hidden,
            "the ball is never hidden for long",
        ),
        (motion != "short" or hidden_run == 0, "the ball hides although it stops short"),
        (motion != "stay" or reveal or not visible[-1], "a ball behind the wall is visible at the end"),
        (kind != "vanish" or not visible[vanish_frame - 1], "the ball vanished in plain view"),
    ]
    failed = [why for ok, why in checks if not ok]
    if failed:
        raise Rejected(failed[0])

    plausible = kind != "vanish"
    hidden_at = int(np.flatnonzero(~visible)[0]) if (~visible).any() else -1
    think = _think(ball_color, where, plausible, motion, reveal, hidden_at / r.fps, kind)
    questions = [plausibility_question(plausible, think, rng)]
    if plausible and not reveal:
        question = f"Where is the {ball_color} ball at the end of the video?"
        questions.append(location_question(question, PLACES, where, think, rng))
    no = np.zeros(len(px), bool)
    labels = {
        "mode": "occluder",
        "motion": motion,
        "direction": "right" if direction > 0 else "left",
        "plausible": plausible,
        "reveal": reveal,
        "reveal_time_s": round(reveal_t, 3) if reveal else None,
        "stop_frame": stop_frame,
        "vanish_frame": vanish_frame,
        "final_location": where if plausible else None,
        "ball_color": ball_color,
        "ball_radius": round(radius, 4),
        "final_frame_ball_visible": bool(visible[-1]),
        "frames": {
            "ball_visible_px": px.tolist(),
            "ball_exists": exists.tolist(),
            "ball_position": rounded(position),
            "ball_pixel": rounded(pixels, 1),
            "ball_state": states(exists, visible, no, no),
        },
    }
    key = scene_key(TASK, "occluder", round(start_x, 3), round(wall_x, 3), round(radius, 3), round(speed, 3))
    return Sample(
        task=TASK, variant=variant, frames=rendering.frames, fps=r.fps, questions=questions,
        labels=labels, scene_key=key, sim=sim, trajectory=trajectory,
    )


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

"""Object permanence, container set-up: two identical cups, one comes down over the ball.

In "carried" runs the cups swap places along arcs; the ball is pushed along by the walls of its
cup (contacts in the simulation, not a scripted attachment), so where it ends up is physics.
Runs end with the cups down (question: under which cup is the ball?) or lifted (question: is
this plausible?). Violations edit the state while every ball is covered: the ball vanishes,
jumps under the other cup, or a second ball appears under the empty one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from cosmos_ros.sim.physics import Simulation
from cosmos_ros.sim.render import render
from cosmos_ros.sim.sample import Rejected, Sample, scene_key
from cosmos_ros.sim.scenarios.common import (
    PARKING,
    MocapPath,
    base_scene,
    is_parked,
    min_visible_px,
    mocap_control,
    park,
    pixel_track,
    place,
    rounded,
)  # fmt: skip
from cosmos_ros.sim.scenarios.permanence_qa import TASK, location_question, plausibility_question, states
from cosmos_ros.sim.scene import Body, Geom, rgba, sample_colors

if TYPE_CHECKING:
    from cosmos_ros.sim.scenarios.permanence import PermanenceConfig

WALL = 0.025  # cup wall thickness, m
STIFF = (0.004, 1.0)  # stiff contacts: a ball pushed by a moving wall must not sink into it
PLACES = {
    "left": "Under the left cup",
    "right": "Under the right cup",
    "neither": "Under neither cup",
}
VIOLATIONS = ("vanish", "teleport", "appear")


def _cup(name: str, half: float, height: float, color: str, xy) -> Body:
    """An upside-down open box: a lid and four walls, origin at the rim (on the floor when down)."""
    c = rgba(color)
    kw = {"solref": STIFF}
    geoms = [
        Geom("box", (half, half, WALL / 2), c, pos=(0, 0, height - WALL / 2), **kw),
        Geom("box", (WALL / 2, half, height / 2), c, pos=(half - WALL / 2, 0, height / 2), **kw),
        Geom("box", (WALL / 2, half, height / 2), c, pos=(-(half - WALL / 2), 0, height / 2), **kw),
        Geom("box", (half - WALL, WALL / 2, height / 2), c, pos=(0, half - WALL / 2, height / 2), **kw),
        Geom("box", (half - WALL, WALL / 2, height / 2), c, pos=(0, -(half - WALL / 2), height / 2), **kw),
    ]
    return Body(name, geoms, (*xy, 0.0), kind="mocap", color_name=color)


def generate(cfg: PermanenceConfig, rng: np.random.Generator, variant: str) -> Sample:
    r = cfg.render
    kind = variant.removeprefix("container_")
    swap = kind == "carried" or (kind in VIOLATIONS and rng.random() < 0.5)
    reveal = kind in VIOLATIONS or rng.random() < cfg.reveal_probability
    ball_color, cup_color = sample_colors(cfg.scene, rng, 2)
    half, height, radius = (
        cfg.cup_half_size.sample(rng),
        cfg.cup_height.sample(rng),
        cfg.cup_ball_radius.sample(rng),
    )
    separation, center = rng.uniform(0.6, 0.85), (rng.uniform(-0.1, 0.1), rng.uniform(0.0, 0.2))
    homes = [
        np.array([center[0] - separation / 2, center[1]]),
        np.array([center[0] + separation / 2, center[1]]),
    ]
    covering = int(rng.integers(2))  # the cup that comes down over the ball
    ball_xy = homes[covering] + rng.uniform(-1, 1, 2) * 0.4 * (half - WALL - radius)
    hover = 2 * radius + rng.uniform(0.12, 0.18)
    duration = r.duration_s
    # The schedule scales with the clip: cover, (swap), wait, (lift), each a share of it.
    t_down = duration * rng.uniform(0.05, 0.12)
    t_covered = t_down + 0.15 * duration
    t_swap = t_covered + 0.05 * duration
    t_swapped = t_swap + duration * rng.uniform(0.28, 0.32)
    t_lift = duration * (1 - rng.uniform(0.22, 0.27))
    lift_s = 0.12 * duration

    ball_geom = Geom(
        "sphere", (radius,), rgba(ball_color), friction=(1.0, 0.005, 0.01), solref=STIFF, condim=6
    )
    bodies = [
        Body("ball", [ball_geom], (*ball_xy, radius), color_name=ball_color),
        _cup("cup_0", half, height, cup_color, homes[0] + (0, 0)),
        _cup("cup_1", half, height, cup_color, homes[1] + (0, 0)),
    ]
    tracked = ["ball"]
    if kind == "appear":
        bodies.append(Body("ball_2", [ball_geom], (*PARKING, radius), color_name=ball_color))
        tracked.append("ball_2")
    scene = base_scene(cfg, rng, bodies, tracked=tracked, lookat=(center[0], center[1], 0.1), floor_condim=6,
                       floor_friction=(1.0, 0.005, 0.01))  # fmt: skip
    for body in bodies[1:3]:
        body.pos = (body.pos[0], body.pos[1], hover)

    ends = [homes[1], homes[0]] if swap else homes
    paths = {}
    for i, side in ((0, -1.0), (1, 1.0)):
        up, down = (*homes[i], hover), (*homes[i], 0.001)
        keys = [(0.0, up), (t_down, up), (t_covered, down)]
        if swap:  # cup 0 passes in front, cup 1 behind, clear of each other
            middle = (*((homes[0] + homes[1]) / 2 + (0.0, side * (half * 1.3 + 0.05))), 0.001)
            keys += [(t_swap, down), ((t_swap + t_swapped) / 2, middle), (t_swapped, (*ends[i], 0.001))]
        final = (*ends[i], 0.001)
        keys += [(t_lift, final)]
        if reveal:
            keys += [(t_lift + lift_s, (*ends[i], hover + 0.1))]
        paths[f"cup_{i}"] = MocapPath(keys)

    edit_frame = int(np.ceil(((t_swapped if swap else t_covered) + 0.03 * duration) * r.fps))
    if edit_frame >= int(t_lift * r.fps):
        raise Rejected("no frame with every ball covered")
    sim = Simulation(scene, TASK)
    other_cup = ends[1 - covering]
    edits = {}
    if kind == "vanish":
        edits[edit_frame] = park(sim, "ball")
    elif kind == "teleport":
        edits[edit_frame] = place(sim, "ball", (*other_cup, radius))
    elif kind == "appear":
        edits[edit_frame] = place(sim, "ball_2", (*other_cup, radius))
    trajectory = sim.run(r.fps, r.num_frames, control=mocap_control(sim, paths), edits=edits)
    rendering = render(sim, trajectory, r.width, r.height)
    threshold = min_visible_px(r, cfg.visible_px)
    px = rendering.visible_px["ball"]
    visible = px >= threshold

    position = trajectory.position("ball")
    exists = ~is_parked(position)
    cup_xy = np.stack([trajectory.position(f"cup_{i}")[:, :2] for i in range(2)], 1)  # (T, 2, 2)
    cup_down = np.stack([trajectory.position(f"cup_{i}")[:, 2] < 0.02 for i in range(2)], 1)  # (T, 2)
    inside = np.all(np.abs(cup_xy - position[:, None, :2]) < half - WALL, axis=2) & exists[:, None]  # (T, 2)
    contained = np.any(inside & cup_down, axis=1)
    cup_speed = np.linalg.norm(np.gradient(cup_xy, axis=0), axis=2) * r.fps  # (T, 2)
    carried = np.any(inside & cup_down & (cup_speed > 0.05), axis=1)
    covered = slice(int(np.ceil((t_covered + 0.02 * duration) * r.fps)), int(t_lift * r.fps))
    final_cup = int(np.argmax(inside[-1])) if inside[-1].any() else -1
    checks = [
        (visible[0], "the ball is not visible before the cups come down"),
        (not px[covered].any(), "the covered ball shows through"),
        (kind != "carried" or bool(carried.any()), "the cup did not carry the ball"),
        (
            kind in ("vanish", "teleport") or final_cup == covering,
            "the ball is not under its own cup at the end",
        ),
        (not reveal or kind == "vanish" or visible[-1], "the lifted cup does not show the ball"),
        (
            kind != "appear" or rendering.visible_px["ball_2"][-1] >= threshold,
            "the appearing ball is not visible",
        ),
    ]
    failed = [why for ok, why in checks if not ok]
    if failed:
        raise Rejected(failed[0])

    plausible = kind not in VIOLATIONS
    pixels = pixel_track(scene, trajectory, "ball", r)
    cup_u = [pixel_track(scene, trajectory, f"cup_{i}", r)[-1, 0] for i in range(2)]
    where = "neither" if final_cup < 0 else ("left" if cup_u[final_cup] < cup_u[1 - final_cup] else "right")
    think = _think(ball_color, swap, reveal, kind, where)
    questions = []
    if reveal:
        questions.append(plausibility_question(plausible, think, rng))
    else:
        question = f"Under which cup is the {ball_color} ball at the end of the video?"
        questions.append(location_question(question, PLACES, where, think, rng))
    labels = {
        "mode": "container",
        "kind": kind,
        "swap": swap,
        "plausible": plausible,
        "reveal": reveal,
        "edit_frame": edit_frame if edits else -1,
        "final_location": where if plausible else None,
        "ball_color": ball_color,
        "final_frame_ball_visible": bool(visible[-1]),
        "frames": {
            "ball_visible_px": px.tolist(),
            "ball_exists": exists.tolist(),
            "ball_position": rounded(position),
            "ball_pixel": rounded(pixels, 1),
            "ball_state": states(exists, visible, contained, carried),
            "cup_positions": rounded(cup_xy),
        },
    }
    if kind == "appear":
        labels["frames"]["ball_2_visible_px"] = rendering.visible_px["ball_2"].tolist()
    key = scene_key(
        TASK, "container", round(float(ball_xy[0]), 3), round(float(ball_xy[1]), 3), round(separation, 3)
    )
    return Sample(
        task=TASK, variant=variant, frames=rendering.frames, fps=r.fps, questions=questions,
        labels=labels, scene_key=key, sim=sim, trajectory=trajectory,
    )


def _think(color, swap, reveal, kind, where) -> str:
    text = (
        f"The {color} ball lies on the floor and a cup comes down over it; "
        "an identical cup covers the empty floor."
    )
    if swap:
        text += " The cups then swap places; the walls of the covering cup push the ball along with it."
    if kind == "vanish":
        return (
            text + " When the cups are lifted there is no ball at all. A ball cannot vanish from under a "
            "cup, so this is not physically plausible."
        )
    if kind == "teleport":
        return (
            text + " When the cups are lifted the ball is under the other cup, which it never reached. "
            "This is not physically plausible."
        )
    if kind == "appear":
        return (
            text + " When the cups are lifted there are two balls, though only one went under a cup. "
            "This is not physically plausible."
        )
    if reveal:
        return text + " When the cups are lifted, the ball is under the cup that covered it: plausible."
    return text + f" The ball is hidden but still exists, under the {where} cup."

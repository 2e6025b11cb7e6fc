"""Object permanence, container set-up: two identical cups, one comes down over the ball.

In "carried" runs the cups swap places along arcs; the ball is pushed along by the walls of its
cup (contacts in the simulation, not a scripted attachment), so where it ends up is physics.
Runs end with the cups down (question: under which cup is the ball?) or lifted (question: is
this plausible?). Violations edit the state while every ball is covered: the ball vanishes,
jumps under the other cup, or a second ball appears under the empty one.
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class Draw:
    """One run's random choices, drawn from the clip's generator in a fixed order."""

    variant: str
    kind: str  # stay | carried | vanish | teleport | appear
    swap: bool  # the cups change places
    reveal: bool  # the cups are lifted at the end
    ball_color: str
    cup_color: str
    half: float  # cup half size
    height: float  # cup height
    radius: float  # ball radius
    separation: float
    center: tuple  # (x, y) between the cups
    covering: int  # the cup that comes down over the ball
    ball_xy: np.ndarray
    hover: float  # the cups' height before they come down
    t_down: float  # s: the cups start down
    t_covered: float  # s: the cups are down
    t_swap: float  # s: the swap starts (if any)
    t_swapped: float  # s: the swap is done
    t_lift: float  # s: the cups lift (if reveal)

    @property
    def homes(self) -> list:
        return [
            np.array([self.center[0] - self.separation / 2, self.center[1]]),
            np.array([self.center[0] + self.separation / 2, self.center[1]]),
        ]


def generate(cfg: PermanenceConfig, rng: np.random.Generator, variant: str) -> Sample:
    """draw -> simulate (scene, cup paths, the violation's edit, render) -> validate -> label."""
    chosen = draw(cfg, rng, variant)
    run = simulate(cfg, rng, chosen)
    validate(cfg, chosen, run)
    return label(cfg, rng, chosen, run)


def draw(cfg: PermanenceConfig, rng: np.random.Generator, variant: str) -> Draw:
    duration = cfg.render.duration_s
    kind = variant.removeprefix("container_")
    swap = kind == "carried" or (kind in VIOLATIONS and rng.random() < cfg.violation_swap_probability)
    reveal = kind in VIOLATIONS or rng.random() < cfg.reveal_probability
    ball_color, cup_color = sample_colors(cfg.scene, rng, 2)
    half, height, radius = (
        cfg.cup_half_size.sample(rng),
        cfg.cup_height.sample(rng),
        cfg.cup_ball_radius.sample(rng),
    )
    separation = cfg.cup_separation.sample(rng)
    center = (cfg.cup_center_x.sample(rng), cfg.cup_center_y.sample(rng))
    homes = [
        np.array([center[0] - separation / 2, center[1]]),
        np.array([center[0] + separation / 2, center[1]]),
    ]
    covering = int(rng.integers(2))
    ball_xy = homes[covering] + rng.uniform(-1, 1, 2) * cfg.ball_offset * (half - WALL - radius)
    hover = 2 * radius + cfg.cup_hover.sample(rng)
    # The schedule scales with the clip: cover, (swap), wait, (lift), each a share of it.
    t_down = duration * cfg.cover_start.sample(rng)
    t_covered = t_down + 0.15 * duration
    t_swap = t_covered + 0.05 * duration
    t_swapped = t_swap + duration * cfg.swap_share.sample(rng)
    t_lift = duration * (1 - cfg.lift_before_end.sample(rng))
    return Draw(
        variant=variant, kind=kind, swap=swap, reveal=reveal, ball_color=ball_color, cup_color=cup_color,
        half=half, height=height, radius=radius, separation=separation, center=center, covering=covering,
        ball_xy=ball_xy, hover=hover, t_down=t_down, t_covered=t_covered, t_swap=t_swap, t_swapped=t_swapped,
        t_lift=t_lift,
    )  # fmt: skip


@dataclass
class Run:
    scene: object
    sim: Simulation
    trajectory: object
    rendering: object
    ends: list  # where each cup ends
    edit_frame: int
    edited: bool
    seen: dict = None  # per frame: what the ball and cups did, what the camera saw (_observe)


def simulate(cfg: PermanenceConfig, rng: np.random.Generator, d: Draw) -> Run:
    """The scene (its camera and lights drawn here), the cups' paths, the violation's edit while
    every ball is covered, the physics and the rendering."""
    r = cfg.render
    homes = d.homes
    t_covered, t_swap, lift_s = d.t_covered, d.t_swap, 0.12 * r.duration_s
    ball_geom = Geom(
        "sphere", (d.radius,), rgba(d.ball_color), friction=(1.0, 0.005, 0.01), solref=STIFF, condim=6
    )
    bodies = [
        Body("ball", [ball_geom], (*d.ball_xy, d.radius), color_name=d.ball_color),
        _cup("cup_0", d.half, d.height, d.cup_color, homes[0] + (0, 0)),
        _cup("cup_1", d.half, d.height, d.cup_color, homes[1] + (0, 0)),
    ]
    tracked = ["ball"]
    if d.kind == "appear":
        bodies.append(Body("ball_2", [ball_geom], (*PARKING, d.radius), color_name=d.ball_color))
        tracked.append("ball_2")
    scene = base_scene(cfg, rng, bodies, tracked=tracked, lookat=(d.center[0], d.center[1], 0.1), floor_condim=6,
                       floor_friction=(1.0, 0.005, 0.01))  # fmt: skip
    for body in bodies[1:3]:
        body.pos = (body.pos[0], body.pos[1], d.hover)

    ends = [homes[1], homes[0]] if d.swap else homes
    paths = {}
    for i, side in ((0, -1.0), (1, 1.0)):
        up, down = (*homes[i], d.hover), (*homes[i], 0.001)
        keys = [(0.0, up), (d.t_down, up), (t_covered, down)]
        if d.swap:  # cup 0 passes in front, cup 1 behind, clear of each other
            middle = (*((homes[0] + homes[1]) / 2 + (0.0, side * (d.half * 1.3 + 0.05))), 0.001)
            keys += [(t_swap, down), ((t_swap + d.t_swapped) / 2, middle), (d.t_swapped, (*ends[i], 0.001))]
        final = (*ends[i], 0.001)
        keys += [(d.t_lift, final)]
        if d.reveal:
            keys += [(d.t_lift + lift_s, (*ends[i], d.hover + 0.1))]
        paths[f"cup_{i}"] = MocapPath(keys)

    edit_frame = int(np.ceil(((d.t_swapped if d.swap else t_covered) + 0.03 * r.duration_s) * r.fps))
    if edit_frame >= int(d.t_lift * r.fps):
        raise Rejected("no frame with every ball covered")
    sim = Simulation(scene, TASK)
    other_cup = ends[1 - d.covering]
    edits = {}
    if d.kind == "vanish":
        edits[edit_frame] = park(sim, "ball")
    elif d.kind == "teleport":
        edits[edit_frame] = place(sim, "ball", (*other_cup, d.radius))
    elif d.kind == "appear":
        edits[edit_frame] = place(sim, "ball_2", (*other_cup, d.radius))
    trajectory = sim.run(r.fps, r.num_frames, control=mocap_control(sim, paths), edits=edits)
    rendering = render(sim, trajectory, r.width, r.height)
    run = Run(scene, sim, trajectory, rendering, ends, edit_frame, bool(edits))
    run.seen = _observe(cfg, d, run)
    return run


def _observe(cfg: PermanenceConfig, d: Draw, run: Run) -> dict:
    """Per frame: where the ball is, whether it exists, which cup holds it, is it carried, and
    how much of it the camera sees (the threshold that counts as visible too)."""
    r = cfg.render
    threshold = min_visible_px(r, cfg.visible_px)
    px = run.rendering.visible_px["ball"]
    position = run.trajectory.position("ball")
    exists = ~is_parked(position)
    cup_xy = np.stack([run.trajectory.position(f"cup_{i}")[:, :2] for i in range(2)], 1)  # (T, 2, 2)
    cup_down = np.stack([run.trajectory.position(f"cup_{i}")[:, 2] < 0.02 for i in range(2)], 1)  # (T, 2)
    inside = np.all(np.abs(cup_xy - position[:, None, :2]) < d.half - WALL, axis=2) & exists[:, None]  # (T, 2)
    cup_speed = np.linalg.norm(np.gradient(cup_xy, axis=0), axis=2) * r.fps  # (T, 2)
    return {
        "threshold": threshold,
        "px": px,
        "visible": px >= threshold,
        "position": position,
        "exists": exists,
        "cup_xy": cup_xy,
        "contained": np.any(inside & cup_down, axis=1),
        "carried": np.any(inside & cup_down & (cup_speed > 0.05), axis=1),
        "final_cup": int(np.argmax(inside[-1])) if inside[-1].any() else -1,
    }


def validate(cfg: PermanenceConfig, d: Draw, run: Run) -> None:
    """Rejected when the physics or the camera does not tell the story the labels will."""
    r, seen = cfg.render, run.seen
    threshold, px, visible = seen["threshold"], seen["px"], seen["visible"]
    covered = slice(int(np.ceil((d.t_covered + 0.02 * r.duration_s) * r.fps)), int(d.t_lift * r.fps))
    kind = d.kind
    checks = [
        (visible[0], "the ball is not visible before the cups come down"),
        (not px[covered].any(), "the covered ball shows through"),
        (kind != "carried" or bool(seen["carried"].any()), "the cup did not carry the ball"),
        (
            kind in ("vanish", "teleport") or seen["final_cup"] == d.covering,
            "the ball is not under its own cup at the end",
        ),
        (not d.reveal or kind == "vanish" or visible[-1], "the lifted cup does not show the ball"),
        (
            kind != "appear" or run.rendering.visible_px["ball_2"][-1] >= threshold,
            "the appearing ball is not visible",
        ),
    ]
    failed = [why for ok, why in checks if not ok]
    if failed:
        raise Rejected(failed[0])


def label(cfg: PermanenceConfig, rng: np.random.Generator, d: Draw, run: Run) -> Sample:
    """Questions (with their reasoning) and labels, from the physics and what the camera saw."""
    r, seen = cfg.render, run.seen
    px, visible = seen["px"], seen["visible"]
    final_cup, kind = seen["final_cup"], d.kind
    plausible = kind not in VIOLATIONS
    pixels = pixel_track(run.scene, run.trajectory, "ball", r)
    cup_u = [pixel_track(run.scene, run.trajectory, f"cup_{i}", r)[-1, 0] for i in range(2)]
    where = "neither" if final_cup < 0 else ("left" if cup_u[final_cup] < cup_u[1 - final_cup] else "right")
    think = _think(d.ball_color, d.swap, d.reveal, kind, where)
    questions = []
    if d.reveal:
        questions.append(plausibility_question(plausible, think, rng))
    else:
        question = f"Under which cup is the {d.ball_color} ball at the end of the video?"
        questions.append(location_question(question, PLACES, where, think, rng))
    labels = {
        "mode": "container",
        "kind": kind,
        "swap": d.swap,
        "plausible": plausible,
        "reveal": d.reveal,
        "edit_frame": run.edit_frame if run.edited else -1,
        "final_location": where if plausible else None,
        "ball_color": d.ball_color,
        "final_frame_ball_visible": bool(visible[-1]),
        "frames": {
            "ball_visible_px": px.tolist(),
            "ball_exists": seen["exists"].tolist(),
            "ball_position": rounded(seen["position"]),
            "ball_pixel": rounded(pixels, 1),
            "ball_state": states(seen["exists"], visible, seen["contained"], seen["carried"]),
            "cup_positions": rounded(seen["cup_xy"]),
        },
    }
    if kind == "appear":
        labels["frames"]["ball_2_visible_px"] = run.rendering.visible_px["ball_2"].tolist()
    key = scene_key(
        TASK, "container", round(float(d.ball_xy[0]), 3), round(float(d.ball_xy[1]), 3), round(d.separation, 3)
    )
    return Sample(
        task=TASK, variant=d.variant, frames=run.rendering.frames, fps=r.fps, questions=questions,
        labels=labels, scene_key=key, sim=run.sim, trajectory=run.trajectory,
    )  # fmt: skip


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

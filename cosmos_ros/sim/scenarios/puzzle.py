"""Spatial puzzle: a rendered video whose frames are cut into 2x2 patches and shuffled.

The scene (objects on a checker floor, a ball rolling through) is rendered, every frame is cut
into four patches, and the patches are permuted (the same way in every frame). Two questions:

- "arrangement": four options list, for each position of the original (top-left, top-right,
  bottom-left, bottom-right), which shuffled patch belongs there; exactly one restores the
  original.
- "corner": which shuffled patch was one named corner of the original (options patch 1-4).
  Every question has the same four options, so with `option_order: sorted` the answer letter is
  a property of the video alone.

Correct by construction, and checked: the correct arrangement rebuilds the rendered frames
exactly, and its seams are more continuous by a margin than those of every arrangement the
question must tell it from (the other options; for "corner", every arrangement with another
patch at that corner), so the answer is recoverable from the pixels (draws where a wrong patch
would fit as well, e.g. one of bare floor, are rejected).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from cosmos_ros.sim.config import Range, RenderConfig, TaskConfig
from cosmos_ros.sim.physics import Simulation
from cosmos_ros.sim.render import render
from cosmos_ros.sim.sample import Question, Rejected, Sample, balanced_options, scene_key
from cosmos_ros.sim.scenarios.common import base_scene, draw_sample
from cosmos_ros.sim.scene import Body, Geom, rgba, sample_colors

TASK = "spatial_puzzle"
QUESTION = (
    "The frames of this video were cut into 2x2 patches and the patches were shuffled. In the "
    "shuffled video, patch 1 is top-left, 2 is top-right, 3 is bottom-left and 4 is bottom-right. "
    "Which patches, read in the order top-left, top-right, bottom-left, bottom-right, restore the "
    "original video?"
)
CORNER_QUESTION = (
    "The frames of this video were cut into 2x2 patches and the patches were shuffled. In the "
    "shuffled video, patch 1 is top-left, 2 is top-right, 3 is bottom-left and 4 is bottom-right. "
    "Which patch shows the {corner} of the original video?"
)
CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")
PATCH_OPTIONS = tuple(f"patch {k}" for k in range(1, 5))
PERMUTATIONS = [p for p in itertools.permutations(range(4)) if p != (0, 1, 2, 3)]
# every answer to the arrangement question: shuffled patch (1-based) per original position
ARRANGEMENTS = [tuple(p + 1 for p in perm) for perm in itertools.permutations(range(4))]


def _default_variants() -> dict[str, float]:
    return {"static": 1.0, "moving": 1.0}


@dataclass(frozen=True)
class PuzzleConfig(TaskConfig):
    task: str = TASK
    variants: dict[str, float] = field(default_factory=_default_variants)
    render: RenderConfig = RenderConfig(num_frames=16)
    num_objects: Range = Range(3, 6)
    object_size: Range = Range(0.08, 0.16)
    object_x: Range = Range(-0.7, 0.7)  # where objects are placed on the floor, m
    object_y: Range = Range(-0.5, 0.6)
    moving_vx: Range = Range(-0.8, 0.8)  # "moving": object 0's start velocity, m/s
    moving_vy: Range = Range(-0.4, 0.4)
    min_patch_std: float = 6.0  # a quarter with less grey-level spread is too uniform to place
    seam_margin: float = 1.15  # best distractor's seam cost / the correct one's, at least
    question: str = "arrangement"  # or "corner"
    corners: tuple[str, ...] = CORNERS  # asked about by "corner" questions, one drawn per clip

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.question not in ("arrangement", "corner"):
            raise ValueError(
                f"spatial_puzzle question must be 'arrangement' or 'corner', got {self.question!r}"
            )
        if not self.corners or set(self.corners) - set(CORNERS):
            raise ValueError(
                f"spatial_puzzle corners must be among {list(CORNERS)}, got {list(self.corners)}"
            )
        if set(self.variants) - {"static", "moving"}:
            raise ValueError(
                f"spatial_puzzle variants are 'static' and 'moving', got {sorted(self.variants)}"
            )


def patches(frames: np.ndarray) -> list[np.ndarray]:
    """(T, H, W, 3) → the four (T, H/2, W/2, 3) patches in reading order."""
    h, w = frames.shape[1] // 2, frames.shape[2] // 2
    return [frames[:, :h, :w], frames[:, :h, w:], frames[:, h:, :w], frames[:, h:, w:]]


def assemble(parts: list[np.ndarray]) -> np.ndarray:
    top = np.concatenate([parts[0], parts[1]], axis=2)
    bottom = np.concatenate([parts[2], parts[3]], axis=2)
    return np.concatenate([top, bottom], axis=1)


def shuffle(frames: np.ndarray, order) -> np.ndarray:
    """Shuffled frames whose patch i is the original's patch order[i]."""
    parts = patches(frames)
    return assemble([parts[i] for i in order])


def restore(shuffled: np.ndarray, option) -> np.ndarray:
    """Rebuild frames from an option: option[j] is the 1-based shuffled patch for position j."""
    parts = patches(shuffled)
    return assemble([parts[k - 1] for k in option])


def option_text(option) -> str:
    return ", ".join(str(k) for k in option)


def parse_option(text: str) -> tuple[int, ...]:
    return tuple(int(k) for k in text.split(","))


def seam_cost(frames: np.ndarray) -> float:
    """Mean absolute colour jump across the vertical and horizontal centre lines."""
    f = frames.astype(np.float32)
    h, w = f.shape[1] // 2, f.shape[2] // 2
    vertical = np.abs(f[:, :, w - 1] - f[:, :, w]).mean()
    horizontal = np.abs(f[:, h - 1] - f[:, h]).mean()
    return float(vertical + horizontal)


def generate(cfg: PuzzleConfig, seed: int, variant: str | None = None) -> Sample:
    return draw_sample(cfg, seed, variant, lambda rng, chosen: _attempt(cfg, rng, chosen))


def _attempt(cfg: PuzzleConfig, rng: np.random.Generator, variant: str) -> Sample:
    """draw (the objects) -> simulate (scene, motion, render) -> shuffle and validate the patches
    -> ask (the question and its rivals) -> validate the seams -> label."""
    bodies = draw(cfg, rng)
    sim, trajectory, original = simulate(cfg, rng, bodies, variant)
    order = PERMUTATIONS[int(rng.integers(len(PERMUTATIONS)))]
    shuffled = shuffle(original, order)
    # position j of the original holds original patch j, which sits at shuffled index order.index(j)
    correct = tuple(order.index(j) + 1 for j in range(4))
    if not np.array_equal(restore(shuffled, correct), original):
        raise AssertionError("puzzle construction error: the correct arrangement does not restore the frames")
    if min(float(p.std()) for p in patches(original)) < cfg.min_patch_std:
        raise Rejected("a patch is nearly uniform")
    asked = ask(cfg, rng, correct)
    cost = seam_cost(original)
    best_rival = min(seam_cost(restore(shuffled, a)) for a in asked["rivals"])
    if best_rival < cfg.seam_margin * cost:
        raise Rejected("a wrong arrangement has seams about as continuous as the right one")
    question = Question(asked["text"], asked["options"], asked["answer"], f"{TASK}/{variant}", think=asked["think"])
    labels = {
        "shuffle_order": list(order),
        "correct_option": list(correct),
        "seam_cost": round(cost, 3),
        "best_rival_seam_cost": round(best_rival, 3),
        "corner": asked["corner"],
        "moving": variant == "moving",
        "num_objects": len(bodies),
    }
    key = scene_key(TASK, [round(float(v), 3) for b in bodies for v in b.pos])
    sample = Sample(
        task=TASK, variant=variant, frames=shuffled, fps=cfg.render.fps, questions=[question],
        labels=labels, scene_key=key, sim=sim, trajectory=trajectory,
    )  # fmt: skip
    sample.original_frames = original  # kept in memory only, for checks
    return sample


def draw(cfg: PuzzleConfig, rng: np.random.Generator) -> list[Body]:
    """The objects on the floor: count, colours, shapes, sizes, places."""
    count = int(round(cfg.num_objects.sample(rng)))
    colors = sample_colors(cfg.scene, rng, min(count, len(cfg.scene.colors)))
    bodies, placed = [], []  # placed: (xy, footprint radius) of the objects so far
    for i in range(count):
        shape = ("sphere", "box", "cylinder")[int(rng.integers(3))]
        size = cfg.object_size.sample(rng)
        geom_size = {"sphere": (size,), "box": (size, size, size), "cylinder": (size * 0.8, size)}[shape]
        footprint = {"sphere": size, "box": size * np.sqrt(2), "cylinder": size * 0.8}[shape]
        xy = _clear_spot(cfg, rng, footprint, placed)
        placed.append((xy, footprint))
        color = colors[i % len(colors)]
        bodies.append(
            Body(f"object_{i}", [Geom(shape, geom_size, rgba(color))], (*xy, size), color_name=color)
        )
    return bodies


def _clear_spot(cfg: PuzzleConfig, rng: np.random.Generator, footprint: float, placed: list) -> np.ndarray:
    """A place on the floor whose footprint overlaps no object placed before: objects that start
    inside each other are pushed apart by the contact solver, gently in MuJoCo's soft contacts,
    violently in a position-based engine replaying the exported stage. A place is drawn again
    only when it overlaps, so a seed whose layout was clear keeps its clip."""
    for _ in range(50):
        xy = rng.uniform((cfg.object_x.low, cfg.object_y.low), (cfg.object_x.high, cfg.object_y.high))
        if all(np.linalg.norm(xy - other) >= footprint + radius for other, radius in placed):
            return xy
    raise Rejected("no place on the floor clear of the other objects")


def simulate(cfg: PuzzleConfig, rng: np.random.Generator, bodies: list[Body], variant: str):
    """(sim, trajectory, the rendered frames): the scene (its camera and lights drawn here), one
    object sent sliding in "moving" clips."""
    r = cfg.render
    scene = base_scene(cfg, rng, bodies, lookat=(0.0, 0.05, 0.1))
    sim = Simulation(scene, TASK)
    if variant == "moving":
        vx, vy = cfg.moving_vx, cfg.moving_vy
        sim.set_velocity("object_0", tuple(rng.uniform((vx.low, vy.low, 0.0), (vx.high, vy.high, 0.0))))
    trajectory = sim.run(r.fps, r.num_frames)
    return sim, trajectory, render(sim, trajectory, r.width, r.height).frames


def ask(cfg: PuzzleConfig, rng: np.random.Generator, correct: tuple) -> dict:
    """The question, its options and answer, the reasoning, and the rival arrangements."""
    if cfg.question == "corner":
        corner = cfg.corners[int(rng.integers(len(cfg.corners)))]
        at = CORNERS.index(corner)
        think = (
            f"Only with patch {correct[at]} at the {corner} do the floor pattern, the horizon and the "
            "objects continue across both centre lines."
        )
        return {
            "text": CORNER_QUESTION.format(corner=corner), "options": PATCH_OPTIONS, "answer": correct[at] - 1,
            "rivals": [a for a in ARRANGEMENTS if a[at] != correct[at]], "think": think, "corner": corner,
        }  # fmt: skip
    texts = [option_text(a) for a in ARRANGEMENTS if a != correct]
    options, answer = balanced_options(option_text(correct), texts, rng, 4)
    think = (
        f"Placing patches {options[answer]} at top-left, top-right, bottom-left and bottom-right "
        "makes the floor pattern, the horizon and the objects continue across both centre lines; "
        "every other option leaves a visible break."
    )
    return {
        "text": QUESTION, "options": options, "answer": answer,
        "rivals": [parse_option(o) for i, o in enumerate(options) if i != answer], "think": think, "corner": None,
    }  # fmt: skip

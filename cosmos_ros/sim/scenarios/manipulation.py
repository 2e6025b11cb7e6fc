"""Manipulation: a gantry gripper picks and places, or pushes, blocks onto a coloured pad.

Variants ask for an outcome — success, missed grasp, drop, collision, wrong object, missed push
— and perturb the script accordingly (grasp off target, hand opened mid-carry, carry too low
through another block, the wrong block picked). The outcome label is then read back from the
simulation (was the block lifted, where did every block end up, what else moved), and a run
whose physics disagrees with the variant is rejected, never relabelled by intent.

Questions: did the robot fail (the reasoner's failure prompt), what went wrong, and the next
subtask after a prefix of a successful run (the reasoner's next-subtask prompt).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from cosmos_ros.core.prompts import FAILED_CHOICE, FAILURE_OPTIONS
from cosmos_ros.core.types import TaskKind
from cosmos_ros.sim import gripper
from cosmos_ros.sim.config import CameraConfig, Range, RenderConfig, SceneConfig, TaskConfig
from cosmos_ros.sim.gripper import Script
from cosmos_ros.sim.physics import Simulation
from cosmos_ros.sim.render import render
from cosmos_ros.sim.sample import Question, Rejected, Sample, balanced_options, scene_key
from cosmos_ros.sim.scenarios import manipulation_motion as motion
from cosmos_ros.sim.scenarios.common import base_scene, draw_sample, min_visible_px, rounded
from cosmos_ros.sim.scene import Body, Geom, rgba, sample_colors

TASK = "manipulation"
MODES = {
    "success": "Nothing went wrong; the task succeeded",
    "missed_grasp": "The gripper closed without catching the block",
    "drop": "The block slipped out of the gripper and fell",
    "collision": "The robot knocked into another block",
    "wrong_object": "The robot moved the wrong block",
    "missed_push": "The gripper went past the block without pushing it",
}
WHAT_WENT_WRONG = "The robot was asked to {task}. What went wrong, if anything?"
# move above, lower, grasp, lift, carry, lower onto, release, back up / behind, lower, push, lift
PICK_PHASE_WEIGHTS = (0.9, 0.5, 0.4, 0.5, 1.0, 0.5, 0.3, 0.5)
PUSH_PHASE_WEIGHTS = (0.9, 0.5, 1.6, 0.5)


def _default_variants() -> dict[str, float]:
    return {
        "pick_success": 2.0, "pick_missed_grasp": 1.0, "pick_drop": 1.0, "pick_collision": 1.0,
        "pick_wrong_object": 1.0, "push_success": 1.0, "push_missed_push": 0.7,
    }  # fmt: skip


@dataclass(frozen=True)
class ManipulationConfig(TaskConfig):
    task: str = TASK
    variants: dict[str, float] = field(default_factory=_default_variants)
    render: RenderConfig = RenderConfig(num_frames=48)  # 6 s: an unhurried pick and place
    scene: SceneConfig = SceneConfig(
        camera=CameraConfig(
            distance=Range(0.95, 1.25), elevation_deg=Range(-50.0, -35.0), azimuth_deg=Range(-20.0, 20.0)
        )
    )
    block_half_size: Range = Range(0.022, 0.028)
    pad_half_size: Range = Range(0.07, 0.09)
    num_blocks: Range = Range(2, 3)
    carry_height: Range = Range(0.26, 0.34)  # palm height while carrying
    visible_px: int = 30  # the gripper at 256x256, in every frame
    # Relative phase durations (the script fills the clip); each is scaled by U(1 - j, 1 + j).
    pick_phase_weights: tuple[float, ...] = PICK_PHASE_WEIGHTS
    push_phase_weights: tuple[float, ...] = PUSH_PHASE_WEIGHTS
    phase_jitter: float = 0.0
    mode_options: int = 4  # options of "what went wrong"; 5 = every outcome the skill can have
    # Questions as the reasoner meets the live stream: `stream_windows` videos per clip, each the
    # last `window_frames` frames (fewer near the start) up to a random frame, asking the next
    # subtask (options: the plan, in order) and whether the robot has failed by then. Windows
    # ending within `failure_margin_frames` after the failure shows are not asked about failure.
    # 0 = a prefix ending at a subtask boundary (successes only) and the whole clip instead.
    stream_windows: int = 0
    window_frames: int = 12
    failure_margin_frames: int = 2
    # This share of each episode's windows ends late (the rest end anywhere): in a failed episode
    # after the failure shows, more "yes, it failed" answers than a uniform draw gives; in a
    # succeeded one after a moment drawn from `late_from` (fractions of the clip, where failures
    # show), so that how far an episode has come does not give the verdict away. 0 = all uniform.
    late_window_share: float = 0.0
    late_from: Range = Range(0.4, 0.65)
    # Where things go (table coordinates, m): the pad's centre and the blocks are drawn in these
    # boxes until every block is block_gap from the others and pad_half + pad_gap from the pad.
    pad_x: Range = Range(-0.3, 0.3)
    pad_y: Range = Range(-0.05, 0.25)
    block_x: Range = Range(-0.32, 0.32)
    block_y: Range = Range(-0.1, 0.28)
    block_gap: float = 0.14
    pad_gap: float = 0.1
    block_yaw: Range = Range(-0.4, 0.4)  # rad
    collision_at: Range = Range(0.45, 0.55)  # collision: the other block this far along the carry
    collision_jitter: float = 0.01  # m, each way, off that line
    grasp_miss: Range = Range(0.025, 0.04)  # missed grasp: the fingers close this far off the block
    drop_at: Range = Range(0.25, 0.5)  # drop: the hand opens this far into the carry
    push_miss: Range = Range(0.06, 0.08)  # missed push: the palm passes this far to the side

    def __post_init__(self) -> None:
        super().__post_init__()
        if set(self.variants) - set(_default_variants()):
            raise ValueError(
                f"unknown manipulation variants {sorted(set(self.variants) - set(_default_variants()))}"
            )
        for name, expected in (("pick_phase_weights", PICK_PHASE_WEIGHTS), ("push_phase_weights", PUSH_PHASE_WEIGHTS)):
            weights = getattr(self, name)
            if len(weights) != len(expected) or min(weights) <= 0:
                raise ValueError(f"{name} needs {len(expected)} positive weights, got {list(weights)}")
        checks = [
            (0 <= self.phase_jitter < 1, f"phase_jitter must be in [0, 1), got {self.phase_jitter}"),
            (2 <= self.mode_options <= 5, f"mode_options must be 2..5, got {self.mode_options}"),
            (self.stream_windows >= 0, f"stream_windows must be >= 0, got {self.stream_windows}"),
            (self.window_frames >= 2, f"window_frames must be >= 2, got {self.window_frames}"),
            (self.failure_margin_frames >= 0, "failure_margin_frames must be >= 0"),
            (0 <= self.late_window_share <= 1, f"late_window_share must be in [0, 1], got {self.late_window_share}"),
            (0 <= self.late_from.low and self.late_from.high < 1,
             f"late_from must be fractions of the clip in [0, 1), got {self.late_from}"),
        ]
        problems = [message for ok, message in checks if not ok]
        if problems:
            raise ValueError("manipulation: " + "; ".join(problems))


def generate(cfg: ManipulationConfig, seed: int, variant: str | None = None) -> Sample:
    return draw_sample(cfg, seed, variant, lambda rng, chosen: _attempt(cfg, rng, chosen))


@dataclass(frozen=True)
class Draw:
    """One episode's random choices (the scene's camera and lights aside), in a fixed order."""

    variant: str
    skill: str  # pick | push
    mode: str  # the outcome asked for
    count: int  # blocks
    zone_color: str
    block_colors: list
    half: float  # block half size
    pad_half: float
    blocks_xy: list
    pad_xy: np.ndarray
    yaws: list  # each block's yaw, rad
    phases: list  # the gripper's script
    target: int  # the task's block
    handled: int  # the block the robot actually goes for

    def name(self, i: int) -> str:
        return f"{self.block_colors[i]} block"

    @property
    def zone(self) -> str:
        return f"{self.zone_color} pad"

    @property
    def task_text(self) -> str:
        verb, preposition = ("put", "on") if self.skill == "pick" else ("push", "onto")
        return f"{verb} the {self.name(self.target)} {preposition} the {self.zone}"


@dataclass
class Run:
    scene: object
    sim: Simulation
    script: Script
    trajectory: object
    rendering: object = None
    facts: dict = field(default_factory=dict)


def _attempt(cfg: ManipulationConfig, rng: np.random.Generator, variant: str) -> Sample:
    """draw -> simulate -> validate the outcome -> render -> validate the frames -> label."""
    chosen = draw(cfg, rng, variant)
    run = simulate(cfg, rng, chosen)
    validate_outcome(chosen, run)  # physics first: no rendering for runs that miss
    r = cfg.render
    run.rendering = render(run.sim, run.trajectory, r.width, r.height)
    validate_frames(cfg, chosen, run)
    return label(cfg, rng, chosen, run)


def draw(cfg: ManipulationConfig, rng: np.random.Generator, variant: str) -> Draw:
    r = cfg.render
    skill, mode = variant.split("_", 1)
    count = max(2, int(round(cfg.num_blocks.sample(rng))))
    if mode in ("collision", "wrong_object"):
        count = max(count, 2)
    colors = sample_colors(cfg.scene, rng, count + 1)
    zone_color, block_colors = colors[0], colors[1:]
    half = cfg.block_half_size.sample(rng)
    pad_half = cfg.pad_half_size.sample(rng)
    blocks_xy, pad_xy = motion.layout(cfg, rng, count, pad_half, mode == "collision")
    target = 0
    handled = 1 if mode == "wrong_object" else 0
    yaws = [cfg.block_yaw.sample(rng) for _ in blocks_xy]
    weights = np.array(cfg.pick_phase_weights if skill == "pick" else cfg.push_phase_weights)
    if cfg.phase_jitter:
        weights = weights * rng.uniform(1 - cfg.phase_jitter, 1 + cfg.phase_jitter, len(weights))
    durations = list(weights / weights.sum() * (r.duration_s - 0.3))  # scripts fill the clip
    # Subtasks are the planner's steps, so they name the task's block even when the robot
    # (wrong_object) carries them out on another one.
    name, zone = f"{block_colors[target]} block", f"{zone_color} pad"
    script = motion.pick_script if skill == "pick" else motion.push_script
    phases = script(cfg, rng, blocks_xy[handled], pad_xy, half, name, zone, mode, durations)
    return Draw(
        variant=variant, skill=skill, mode=mode, count=count, zone_color=zone_color, block_colors=block_colors,
        half=half, pad_half=pad_half, blocks_xy=blocks_xy, pad_xy=pad_xy, yaws=yaws, phases=phases,
        target=target, handled=handled,
    )  # fmt: skip


def simulate(cfg: ManipulationConfig, rng: np.random.Generator, d: Draw) -> Run:
    """The scene (its camera and lights drawn here) and the scripted run."""
    bodies = [
        Body(
            "pad",
            [Geom("box", (d.pad_half, d.pad_half, 0.001), rgba(d.zone_color), collide=False)],
            (*d.pad_xy, 0.001),
            kind="static",
            color_name=d.zone_color,
        )
    ]
    for i, (xy, yaw) in enumerate(zip(d.blocks_xy, d.yaws)):
        geom = Geom("box", (d.half, d.half, d.half), rgba(d.block_colors[i]), friction=(1.2, 0.01, 0.001), condim=4)
        bodies.append(
            Body(
                f"block_{i}",
                [geom],
                (*xy, d.half),
                (np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)),
                mass=0.05,
                color_name=d.block_colors[i],
            )
        )
    script = Script(d.phases, start_delay=0.2)
    tracked = ("gripper", *(f"block_{i}" for i in range(d.count)))
    scene = base_scene(
        cfg, rng, bodies, tracked=tracked, lookat=(0.0, 0.08, 0.08),
        worldbody_xml=gripper.WORLDBODY, model_xml=gripper.MODEL, options_xml=gripper.OPTIONS,
    )  # fmt: skip
    sim = Simulation(scene, TASK)
    gripper.home_qpos(sim.model, sim.data)
    r = cfg.render
    return Run(scene, sim, script, sim.run(r.fps, r.num_frames, control=script.control))


def validate_outcome(d: Draw, run: Run) -> None:
    """Rejected when the physics gave another outcome than the variant asked for."""
    outcome, run.facts = motion.read_outcome(
        run.trajectory, d.count, d.target, d.handled, d.half, d.pad_xy, d.pad_half, d.skill
    )
    if outcome != d.mode:
        raise Rejected(f"the run ended as {outcome}, the variant asked for {d.mode}")


def validate_frames(cfg: ManipulationConfig, d: Draw, run: Run) -> None:
    visible = run.rendering.visible_px
    if (visible["gripper"] < min_visible_px(cfg.render, cfg.visible_px)).any():
        raise Rejected("the gripper leaves the view")
    if any((visible[f"block_{i}"] == 0).all() for i in range(d.count)):
        raise Rejected("a block is never visible")


def label(cfg: ManipulationConfig, rng: np.random.Generator, d: Draw, run: Run) -> Sample:
    """The questions (with their reasoning) and the per-frame labels."""
    r, mode, trajectory, phases = cfg.render, d.mode, run.trajectory, d.phases
    task_text = d.task_text
    subtasks = list(dict.fromkeys(p.subtask for p in phases))  # in order, drop's split phase once
    frame_phase = [run.script.phase_at(t) for t in trajectory.times]
    frame_subtask = [phases[i].subtask if i >= 0 else "" for i in frame_phase]
    frame_subtask_index = [subtasks.index(s) if s else -1 for s in frame_subtask]
    failed = mode != "success"
    failure_frame = (
        motion.failure_frame(mode, trajectory, d.count, d.target, d.handled, d.half, d.pad_xy) if failed else None
    )
    reason = _reason(mode, d.name(d.target), d.name(d.handled), d.zone)
    relevant = [m for m in MODES if m != ("missed_grasp" if d.skill == "push" else "missed_push")]
    options, answer = balanced_options(
        MODES[mode], [MODES[m] for m in relevant if m != mode], rng, cfg.mode_options
    )
    questions = [
        Question(
            WHAT_WENT_WRONG.format(task=task_text), options, answer, f"{TASK}/failure_mode", think=reason
        )
    ]
    videos = {}
    if cfg.stream_windows:
        stream = _stream_questions(cfg, rng, task_text, subtasks, frame_subtask_index, failure_frame, reason)
        questions += stream[0]
        videos.update(stream[1])
    else:
        verdict = FAILED_CHOICE if failed else 1 - FAILED_CHOICE
        questions.insert(0, _failure_question(task_text, verdict, reason))
    if not failed and not cfg.stream_windows:
        boundary, video = _next_subtask_video(rng, run.script, subtasks, r)
        videos[video] = (0, boundary[0])
        correct = subtasks[boundary[1] + 1]
        n = min(4, len(subtasks))
        sub_options, sub_answer = balanced_options(correct, [s for s in subtasks if s != correct], rng, n)
        think = f"The robot has just finished: {subtasks[boundary[1]]}. Next it should {correct}."
        category = f"{TASK}/next_subtask"
        next_question = Question("next subtask", sub_options, sub_answer, category, kind=TaskKind.NEXT_SUBTASK)
        questions.append(replace(next_question, task=task_text, think=think, video=video))
    count, rendering = d.count, run.rendering
    labels = {
        "task_text": task_text,
        "skill": d.skill,
        "outcome": mode,
        "failed": failed,
        "target_block": d.name(d.target),
        "handled_block": d.name(d.handled),
        "zone": d.zone,
        "subtasks": subtasks,
        "failure_frame": failure_frame,  # first frame that shows the failure; None on success
        **run.facts,
        "frames": {
            "subtask": frame_subtask,
            "subtask_index": frame_subtask_index,
            "gripper_position": rounded(trajectory.position("gripper")),
            "block_positions": rounded(
                np.stack([trajectory.position(f"block_{i}") for i in range(count)], 1)
            ),
            "block_visible_px": [rendering.visible_px[f"block_{i}"].tolist() for i in range(count)],
        },
    }
    key = scene_key(TASK, [round(float(v), 3) for xy in d.blocks_xy for v in xy], round(float(d.pad_xy[0]), 3))
    return Sample(
        task=TASK, variant=d.variant, frames=rendering.frames, fps=r.fps, questions=questions,
        labels=labels, scene_key=key, sim=run.sim, trajectory=trajectory, videos=videos,
    )  # fmt: skip


def _failure_question(task_text: str, verdict: int, think: str, video: str = "clip") -> Question:
    question = f"Did the robot fail to complete the task: '{task_text}'?"
    return Question(
        question, FAILURE_OPTIONS, verdict, f"{TASK}/failure", kind=TaskKind.FAILURE, task=task_text, think=think,
        video=video,
    )  # fmt: skip


def _stream_questions(cfg, rng, task_text, subtasks, frame_subtask_index, failure_frame, reason):
    """Questions about windows of the clip as the reasoner sees the live stream (config
    `stream_windows`): the next subtask after the one running at the window's last frame, and
    whether the failure (if any) has shown by then."""
    questions, videos = [], {}
    frames = cfg.render.num_frames
    for k in range(cfg.stream_windows):
        low = 2
        if cfg.late_window_share and rng.random() < cfg.late_window_share:
            event = failure_frame
            if event is None:  # a moment where failures show, matched so the time gives nothing away
                event = int(cfg.late_from.sample(rng) * frames)
            low = min(event + cfg.failure_margin_frames + 1, frames)
        end = int(rng.integers(low, frames + 1))  # exclusive: the last frame is end - 1
        video = f"window_{k}"
        asked = []
        current = frame_subtask_index[end - 1]
        if 0 <= current < len(subtasks) - 1:
            think = f"The robot is doing: {subtasks[current]}. Next it should {subtasks[current + 1]}."
            asked.append(
                Question("next subtask", tuple(subtasks), current + 1, f"{TASK}/next_subtask",
                         kind=TaskKind.NEXT_SUBTASK, task=task_text, think=think, video=video)
            )  # fmt: skip
        if failure_frame is None or end - 1 < failure_frame:
            think = "So far the robot has done what the task needs."
            asked.append(_failure_question(task_text, 1 - FAILED_CHOICE, think, video))
        elif end - 1 >= failure_frame + cfg.failure_margin_frames:
            asked.append(_failure_question(task_text, FAILED_CHOICE, reason, video))
        if asked:
            questions += asked
            videos[video] = (max(0, end - cfg.window_frames), end)
    return questions, videos


def _next_subtask_video(rng, script: Script, subtasks: list[str], r) -> tuple[tuple[int, int], str]:
    """A prefix of the clip that ends as subtask k ends: (end frame, k), and its video name."""
    ends = []
    for k, subtask in enumerate(subtasks[:-1]):
        last = max(i for i, p in enumerate(script.phases) if p.subtask == subtask)
        frame = int(np.floor(script.starts[last + 1] * r.fps)) + 1
        if 4 <= frame <= r.num_frames:
            ends.append((frame, k))
    if not ends:
        raise Rejected("no subtask boundary leaves a prefix of at least 4 frames")
    end = ends[int(rng.integers(len(ends)))]
    return end, f"upto_{end[1]}"


def _reason(mode, target, handled, zone) -> str:
    story = {
        "success": f"The gripper moves the {target} onto the {zone} and lets go; the block stays there.",
        "missed_grasp": f"The fingers close beside the {target}, not on it; when the gripper rises the block "
        "stays on the table.",
        "drop": f"The gripper lifts the {target}, but the fingers open on the way and the block falls short "
        f"of the {zone}.",
        "collision": f"Carrying the {target} too low, the robot knocks another block out of place.",
        "wrong_object": f"The robot places the {handled} on the {zone}, but the task was about the {target}.",
        "missed_push": f"The gripper sweeps past the {target} without touching it; the block never reaches "
        f"the {zone}.",
    }[mode]
    return story + (" The task succeeded." if mode == "success" else " The robot failed.")

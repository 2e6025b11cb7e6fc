"""The scenario registry: task name → config class and generator, and config loading.

cfg = load_config("arrow_of_time")          # sim/arrow_of_time.yaml, or the code defaults
sample = generate(cfg, index=7)             # clip 7 of this config: same index, same clip
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from cosmos_ros import resources
from cosmos_ros.core.types import TaskKind
from cosmos_ros.sim.config import (
    RenderConfig,
    TaskConfig,
    clip_seed,
    from_plain,
    read_yaml,
)
from cosmos_ros.sim.sample import Question, Sample
from cosmos_ros.sim.scenarios import arrow, manipulation, permanence, puzzle

TASKS = {
    "object_permanence": (permanence.PermanenceConfig, permanence.generate),
    "arrow_of_time": (arrow.ArrowConfig, arrow.generate),
    "spatial_puzzle": (puzzle.PuzzleConfig, puzzle.generate),
    "manipulation": (manipulation.ManipulationConfig, manipulation.generate),
}


def scenario_dirs() -> list[Path]:
    """Where scenario YAML may be: the source tree's sim/, then installed share/cosmos_ros/sim
    (cosmos_ros.resources)."""
    return resources.data_dirs("sim")


def load_config(name_or_path: str | Path, **render: float) -> TaskConfig:
    """A task name (its YAML from scenario_dirs(), else the code defaults) or a YAML path.

    render overrides RenderConfig fields (width, height, fps, num_frames)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ValueError(f"scenario config {path} does not exist")
        data = read_yaml(path)
    elif str(name_or_path) in TASKS:
        found = [
            d / f"{name_or_path}.yaml" for d in scenario_dirs() if (d / f"{name_or_path}.yaml").is_file()
        ]
        data = read_yaml(found[0]) if found else {"task": str(name_or_path)}
    else:
        raise ValueError(f"unknown scenario {name_or_path!r}: give one of {sorted(TASKS)} or a .yaml path")
    task = data.get("task")
    if task not in TASKS:
        raise ValueError(f"{name_or_path}: task must be one of {sorted(TASKS)}, got {task!r}")
    cfg = from_plain(TASKS[task][0], data, str(path if path.suffix else name_or_path))
    overrides = {k: v for k, v in render.items() if v is not None}
    if overrides:
        cfg = dataclasses.replace(cfg, render=dataclasses.replace(cfg.render, **overrides))
    return cfg


def generate(
    cfg: TaskConfig, index: int = 0, *, seed: int | None = None, variant: str | None = None, **kw
) -> Sample:
    """Clip `index` of the config (its seed is clip_seed(task, cfg.seed, index)), or an explicit seed."""
    _, generator = TASKS[cfg.task]
    sample = generator(cfg, clip_seed(cfg.task, cfg.seed, index) if seed is None else seed, variant, **kw)
    if cfg.option_order == "sorted":
        sample = dataclasses.replace(sample, questions=[sorted_options(q) for q in sample.questions])
    return sample


def sorted_options(question: Question) -> Question:
    """The question with its options in alphabetical order (free-form kinds keep theirs)."""
    if question.kind != TaskKind.QUESTION:
        return question  # next_subtask / failure options are the prompt builders' fixed lists
    options = tuple(sorted(question.options))
    return dataclasses.replace(
        question, options=options, answer=options.index(question.options[question.answer])
    )


__all__ = ["TASKS", "RenderConfig", "generate", "load_config", "scenario_dirs"]

"""Scenario configs: seeded dataclasses read from the YAML files in the top-level `sim/` folder.

A config says what may vary (ranges, colour names, variant weights); a scenario generator draws
one concrete clip from it with `numpy.random.Generator(clip_seed(...))`. Same config + same clip
index → same clip, on any machine. Configs never hold simulator objects.

YAML shapes: a range is `[low, high]` (or one number for a fixed value), variant weights are a
mapping `name: weight`. Unknown keys are errors that name the key and the config they were in.
"""

from __future__ import annotations

import dataclasses
import hashlib
import typing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from cosmos_ros import resources

# The scenario families (cosmos_ros.sim.scenarios.TASKS maps each to its config and generator).
TASK_NAMES = ("object_permanence", "arrow_of_time", "spatial_puzzle", "manipulation")

# Top-level sim/ of the source tree: scenario YAML and USD examples that users edit.
SCENARIO_DIR = resources.SOURCE_ROOT / "sim"

# Colour names used in questions ("the red ball") → linear RGB. Picked to stay distinct
# from each other and from the muted floor colours under any of the sampled lighting.
COLORS: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.10, 0.10),
    "green": (0.10, 0.70, 0.15),
    "blue": (0.12, 0.25, 0.90),
    "yellow": (0.95, 0.85, 0.10),
    "orange": (0.95, 0.50, 0.05),
    "purple": (0.55, 0.15, 0.75),
    "cyan": (0.10, 0.80, 0.85),
    "magenta": (0.90, 0.20, 0.65),
}


@dataclass(frozen=True)
class Range:
    """A closed interval sampled uniformly; low == high is a fixed value."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError(f"range [{self.low}, {self.high}] has low > high")

    def sample(self, rng: np.random.Generator) -> float:
        return float(self.low) if self.low == self.high else float(rng.uniform(self.low, self.high))


@dataclass(frozen=True)
class RenderConfig:
    width: int = 256
    height: int = 256
    fps: float = 8.0
    num_frames: int = 32

    def __post_init__(self) -> None:
        if self.width < 16 or self.height < 16 or self.width % 2 or self.height % 2:
            raise ValueError(f"render size must be even and >= 16, got {self.width}x{self.height}")
        if self.fps <= 0 or self.num_frames < 2:
            raise ValueError(f"render needs fps > 0 and num_frames >= 2, got {self.fps}, {self.num_frames}")

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps


@dataclass(frozen=True)
class CameraConfig:
    """Camera on a sphere around a look-at point: azimuth 0 looks along +y, elevation < 0 looks down."""

    distance: Range = Range(2.0, 2.6)
    azimuth_deg: Range = Range(-15.0, 15.0)
    elevation_deg: Range = Range(-28.0, -16.0)
    fovy_deg: Range = Range(42.0, 50.0)
    lookat_jitter: float = 0.05


@dataclass(frozen=True)
class LightingConfig:
    """One directional key light (with shadow) plus the headlight as fill."""

    intensity: Range = Range(0.5, 0.9)
    ambient: Range = Range(0.15, 0.35)
    azimuth_deg: Range = Range(-60.0, 60.0)
    elevation_deg: Range = Range(45.0, 80.0)


@dataclass(frozen=True)
class SceneConfig:
    camera: CameraConfig = CameraConfig()
    lighting: LightingConfig = LightingConfig()
    colors: tuple[str, ...] = tuple(COLORS)
    # False: objects take the colours in the listed order (the first object the first colour),
    # a narrowing for small models that cannot yet bind a colour word to pixels.
    shuffle_colors: bool = True
    floor_brightness: Range = Range(0.35, 0.7)

    def __post_init__(self) -> None:
        unknown = [c for c in self.colors if c not in COLORS]
        if unknown or len(self.colors) < 3:
            raise ValueError(
                f"scene.colors must name at least 3 of {sorted(COLORS)}, got {list(self.colors)}"
            )


@dataclass(frozen=True)
class TaskConfig:
    """Fields every scenario has; subclasses add their own."""

    task: str = ""
    seed: int = 0
    render: RenderConfig = RenderConfig()
    scene: SceneConfig = SceneConfig()
    variants: dict[str, float] = field(default_factory=dict)
    max_attempts: int = 40  # draws before a degenerate-sample streak is an error
    # "shuffled": the correct option at a uniformly random letter (no letter prior to learn);
    # "sorted": options in alphabetical order, the same order for the same set every time (a small
    # model then need not learn which letter carries which text; see model/cosmos-reason1-tiny).
    option_order: str = "shuffled"

    def __post_init__(self) -> None:
        if self.option_order not in ("shuffled", "sorted"):
            raise ValueError(
                f"{self.task}: option_order must be 'shuffled' or 'sorted', got {self.option_order!r}"
            )
        if (
            not self.variants
            or any(w < 0 for w in self.variants.values())
            or sum(self.variants.values()) <= 0
        ):
            raise ValueError(
                f"{self.task}: variants must map names to non-negative weights, got {self.variants}"
            )

    def fingerprint(self) -> str:
        """A short hash of everything that shapes the clips; stored with each clip for resuming."""
        text = yaml.safe_dump(to_plain(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def clip_seed(task: str, base_seed: int, index: int) -> int:
    """The seed of clip `index`: independent streams per task, base seed and index."""
    digest = hashlib.sha256(f"{task}:{base_seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def clip_id(task: str, index: int) -> str:
    return f"{task}_{index:06d}"


def pick_variant(weights: dict[str, float], rng: np.random.Generator) -> str:
    names = sorted(weights)
    p = np.array([weights[n] for n in names], float)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def to_plain(value):
    """Dataclasses, ranges and tuples → plain YAML/JSON values."""
    if isinstance(value, Range):
        return [value.low, value.high]
    if dataclasses.is_dataclass(value):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value


def from_plain(cls, data, where: str, base=None):
    """Builds dataclass `cls` from a YAML mapping, converting ranges, tuples and nested configs.

    The mapping overrides `base` (default: cls's own defaults) field by field, nested configs
    included: `render: {width: 84}` changes the width and keeps the task's fps and frame count."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping for {cls.__name__}, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown} for {cls.__name__}; known: {sorted(names)}")
    try:
        base = cls() if base is None else base
    except TypeError:  # a class with required fields: nothing to override
        base = None
    kwargs = {}
    for name, value in data.items():
        inner = getattr(base, name, None)
        if dataclasses.is_dataclass(inner) and isinstance(value, dict):
            kwargs[name] = from_plain(type(inner), value, f"{where}.{name}", base=inner)
        else:
            kwargs[name] = _convert(hints[name], value, f"{where}.{name}")
    try:
        return dataclasses.replace(base, **kwargs) if base is not None else cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from exc


def _convert(hint, value, where: str):
    if hint is Range:
        if isinstance(value, (int, float)):
            return Range(float(value), float(value))
        if (
            isinstance(value, (list, tuple))
            and len(value) == 2
            and all(isinstance(v, (int, float)) for v in value)
        ):
            return Range(float(value[0]), float(value[1]))
        raise ValueError(f"{where}: expected [low, high] or a number, got {value!r}")
    if dataclasses.is_dataclass(hint):
        return from_plain(hint, value, where)
    origin = typing.get_origin(hint)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        return tuple(value)
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected a mapping, got {value!r}")
        return {str(k): float(v) for k, v in value.items()}
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint in (int, str, bool) and not isinstance(value, hint):
        raise ValueError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


def read_yaml(path: Path, _seen: tuple[Path, ...] = ()) -> dict:
    """A scenario file's mapping. `extends: other.yaml` (relative to the file) starts from that
    file's mapping, and this file's keys override it, nested mappings key by key: a variant of a
    scenario restates only what differs."""
    path = Path(path).resolve()
    if path in _seen:
        raise ValueError(f"{path}: 'extends' loops back to itself ({' -> '.join(p.name for p in _seen)})")
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read scenario config {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a scenario config is a mapping with a 'task:' key")  # noqa: TRY004
    parent = data.pop("extends", None)
    if parent is not None:
        if not isinstance(parent, str):
            raise ValueError(f"{path}: 'extends' names one scenario file, got {parent!r}")
        data = merged(read_yaml(path.parent / parent, (*_seen, path)), data)
    if "task" not in data:
        raise ValueError(f"{path}: a scenario config is a mapping with a 'task:' key")
    return data


def merged(base: dict, override: dict) -> dict:
    """base with override's keys put over it; where both hold a mapping, merged the same way."""
    out = dict(base)
    for key, value in override.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = merged(out[key], value) if both else value
    return out

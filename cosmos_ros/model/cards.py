"""Model cards: the YAML files under `model/presets/` that say what each preset is.

A card is the source users edit; this module turns one into its family's preset dataclass
(`ModelPreset` dense, `HybridPreset` hybrid, `Qwen3VLPreset` qwen3_vl). Keys map one to one onto the dataclass fields, unknown keys are refused
with the file and the allowed keys named, and lists become tuples. Cards are searched in
`$COSMOS_ROS_PRESET_PATH` (os.pathsep-separated folders) first, then in `model/presets` of the
source tree and of the installed share/ folders; the first card with a name wins.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from pathlib import Path

import yaml

from cosmos_ros import resources
from cosmos_ros.model.dense_config import ModelPreset
from cosmos_ros.model.families import FAMILIES
from cosmos_ros.model.hybrid_config import HybridPreset
from cosmos_ros.model.qwen3vl_config import Qwen3VLPreset

Preset = ModelPreset | HybridPreset | Qwen3VLPreset

PRESET_PATH_ENV = "COSMOS_ROS_PRESET_PATH"
SECTIONS = ("text", "vision", "video")  # a card's nested mappings: its family card's fields of these names


class CardError(ValueError):
    """A model card that cannot be read as a preset."""


def preset_directories() -> list[Path]:
    """Folders that may hold cards, in lookup order; only those that exist."""
    candidates = [Path(p) for p in os.environ.get(PRESET_PATH_ENV, "").split(os.pathsep) if p]
    candidates += resources.data_dirs("model/presets")
    seen, found = set(), []
    for c in candidates:
        if c.is_dir() and c.resolve() not in seen:
            seen.add(c.resolve())
            found.append(c)
    return found


def _fields(cls, values: dict, where: str) -> dict:
    """`values` checked against the dataclass `cls`: unknown keys refused, lists made tuples."""
    if not isinstance(values, dict):
        raise CardError(f"{where} must be a mapping, got {type(values).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise CardError(f"{where}: unknown keys {unknown}; allowed: {sorted(known)}")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}


def preset_from_card(card: dict, where: str = "card") -> Preset:
    """A preset from a parsed card (the mapping a YAML file holds)."""
    if not isinstance(card, dict):
        raise CardError(f"{where} must be a mapping with name, family, text, vision, ...")
    family = card.get("family")
    if family not in FAMILIES:
        raise CardError(f"{where}: family must be one of {sorted(FAMILIES)}, got {family!r}")
    preset_cls = FAMILIES[family].load("card")
    hints = typing.get_type_hints(preset_cls)
    sections = {name: hints[name] for name in SECTIONS}
    values = _fields(preset_cls, {k: v for k, v in card.items() if k != "family"}, where)
    for key, section_cls in sections.items():
        if key in values:
            values[key] = section_cls(**_fields(section_cls, dict(values[key] or {}), f"{where}: {key}"))
    if "token_ids" in values:
        values["token_ids"] = dict(values["token_ids"])
    try:
        return preset_cls(**values)
    except TypeError as exc:  # a required section or key is absent
        raise CardError(f"{where}: {exc}") from None
    except ValueError as exc:
        raise CardError(f"{where}: {exc}") from None


def read_card(path: str | Path) -> Preset:
    """The preset a YAML card file describes."""
    path = Path(path)
    try:
        card = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CardError(f"cannot read model card {path}: {exc}") from None
    return preset_from_card(card, str(path))


def load_cards(directories: list[Path] | None = None) -> dict[str, Preset]:
    """Every card in the preset folders, by name; a name in an earlier folder hides later ones."""
    presets: dict[str, Preset] = {}
    for directory in preset_directories() if directories is None else directories:
        local: dict[str, Path] = {}
        for path in sorted(directory.glob("*.yaml")):
            preset = read_card(path)
            if preset.name in local:
                raise CardError(f"preset {preset.name!r} is defined twice: {local[preset.name]} and {path}")
            local[preset.name] = path
            presets.setdefault(preset.name, preset)
    return presets

"""The README's parameter tables and launch/reasoner.params.yaml agree with the nodes' own
tables (cosmos_ros/nodes/reasoner_params.py, each node's PARAMETERS): one source of truth, the
others checked."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
import yaml

from cosmos_ros.nodes import params
from cosmos_ros.nodes.reasoner_params import PARAMETERS, RANGES

ROOT = Path(__file__).resolve().parents[2]


def shown(value) -> str:
    """A default as the README writes it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(v or '""' for v in value) + "]"
    if isinstance(value, str):
        return value or '""'
    return repr(value)


def readme_defaults() -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| name | default | |", text.index("### `reasoner`")):]
    rows = {}
    for line in table.splitlines()[2:]:
        if not line.startswith("| `"):
            break
        names, defaults = [cell.strip() for cell in line.split("|")[1:3]]
        names = re.findall(r"`([^`]+)`", names)
        values = [v.strip().strip("`") for v in re.split(r",\s(?![^\[]*\])", defaults)]
        assert len(names) == len(values), line
        rows.update(zip(names, values))
    return rows


def test_the_readme_table_lists_every_parameter_with_the_nodes_default():
    documented = readme_defaults()
    assert set(documented) == set(PARAMETERS)
    wrong = {n: (documented[n], shown(d)) for n, (d, *_) in PARAMETERS.items() if documented[n] != shown(d)}
    assert not wrong


def test_the_readme_states_each_declared_range():
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| name | default | |", text.index("### `reasoner`")):]
    table = table[: table.index("\n\n")]
    for name in ("window_s", "fps", "max_frames", "rate_hz", "failure_confirmations"):
        low, high = RANGES[name]
        assert f"{low:g}..{high:g}" in table, name


def test_the_shipped_params_file_holds_only_what_differs_from_the_defaults():
    data = yaml.safe_load((ROOT / "launch" / "reasoner.params.yaml").read_text())
    values = data["/**"]["ros__parameters"]
    assert set(values) <= set(PARAMETERS)
    same = [name for name, value in values.items() if value == PARAMETERS[name][0]]
    assert not same, f"{same} restate the node's defaults"


@pytest.mark.parametrize("node", ["video_camera", "planner_listener", "sim_camera", "evaluator", "bag_record"])
def test_the_readme_shows_each_other_nodes_table_as_the_node_declares_it(node):
    module = importlib.import_module(f"cosmos_ros.nodes.{node}")
    expected = params.markdown_table(module.PARAMETERS, getattr(module, "RANGES", {}), getattr(module, "CHOICES", {}))
    text = (ROOT / "README.md").read_text()
    section = text[text.index(f"### `{node}`") :]
    section = section[: section.index("\n### ", 1)] if "\n### " in section[1:] else section
    assert expected in section, f"README's ### `{node}` needs this table (from the node's PARAMETERS):\n{expected}"

"""Helpers the launch tests share: write a launch file, and read a resolved node the way the
node itself would see it (rcl's reading of its --ros-args)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import yaml

from cosmos_ros.launch import Graph, NodeProcess


def write_launch(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def ros_args(command: list[str]) -> list[tuple[str, str]]:
    """The (flag, value) pairs after the last --ros-args: ('-r', 'from:=to'), ('--params-file', ...)."""
    rest = command[len(command) - command[::-1].index("--ros-args") :]
    assert len(rest) % 2 == 0, rest
    return list(zip(rest[::2], rest[1::2]))


def by_label(graph: Graph) -> dict[str, NodeProcess]:
    return {node.label: node for node in graph.nodes}


def node_parameters(node: NodeProcess) -> dict:
    """The parameter overrides the node starts with, as rcl applies them: every --params-file in
    order (its `/**` entry and the entry of the node's full name), then -p rules, later ones win."""
    values: dict = {}
    for flag, value in ros_args(node.command):
        if flag == "--params-file":
            document = node.parameter_files.get(value) or yaml.safe_load(Path(value).read_text())
            for key in ("/**", node.label):
                values.update(document.get(key, {}).get("ros__parameters", {}))
        elif flag == "-p":
            name, _, text = value.partition(":=")
            values[name] = yaml.safe_load(text)
    return values

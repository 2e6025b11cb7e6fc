"""Every shipped launch file gives every node parameter the type the node declares.

rclpy refuses a parameter override of another type than the declared default's (a STRING for a
STRING_ARRAY kills the node at start), and under ros2 launch a quoted literal such as
`value: "[camera]"` is a string. The declared types are read from the node sources (the
reasoner's PARAMETERS table, the others' declare_parameter calls) without importing rclpy.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from launch_files import node_parameters

from cosmos_ros.launch import EXECUTABLES, find_launch_file, load_graph

ROOT = Path(__file__).resolve().parents[2]
LAUNCH_DIR = ROOT / "launch"
YAML_FILES = sorted(p.name for p in LAUNCH_DIR.glob("*.launch.yaml"))
# The invocations the files' own comments and the README advertise, besides the defaults.
DOCUMENTED_ARGUMENTS = [
    ("reasoner.launch.yaml", {"cameras": "[front, wrist]", "task": "stack the cubes"}),
    ("sim_demo.launch.yaml", {"scenario": "spatial_puzzle", "size": "84"}),
    ("sim_eval.launch.yaml", {"scenario": "arrow_of_time", "num_questions": "20", "periodic": "true"}),
]


def declared_defaults(module: str, seen: frozenset = frozenset()) -> dict:
    """name -> default value, as the node module declares them: a PARAMETERS table of
    (default, description, read_only) or declare_parameter("name", default) calls, looked up in
    the cosmos_ros.nodes modules it imports when it has neither (the lifecycle reasoner reuses
    the reasoner's table)."""
    tree = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text())
    defaults = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "PARAMETERS" for t in node.targets):
            defaults.update({name: entry[0] for name, entry in ast.literal_eval(node.value).items()})
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "declare_parameter":
            try:
                defaults[ast.literal_eval(node.args[0])] = ast.literal_eval(node.args[1])
            except ValueError:
                pass  # declared from a table, not from literals
    if defaults:
        return defaults
    for node in tree.body:
        imported = isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cosmos_ros.nodes.")
        if imported and node.module not in seen:
            defaults.update(declared_defaults(node.module, seen | {module}))
    return defaults


def ros_type(value) -> str:
    if isinstance(value, list):
        return f"{ros_type(value[0])}_ARRAY"
    return {bool: "BOOL", int: "INTEGER", float: "DOUBLE", str: "STRING"}[type(value)]


def shipped_nodes():
    for name, arguments in [(name, {}) for name in YAML_FILES] + DOCUMENTED_ARGUMENTS:
        for node in load_graph(find_launch_file(str(LAUNCH_DIR / name)), arguments, env={}).nodes:
            executable = next(exe for exe, module in EXECUTABLES.items() if module in node.command)
            given = " ".join(f"{k}:={v}" for k, v in arguments.items())
            yield pytest.param(node, executable, id=f"{name} {given}:{node.label}".replace("  ", " "))


def test_the_declared_types_are_found_for_every_node():
    for executable, module in EXECUTABLES.items():
        assert declared_defaults(module), executable


@pytest.mark.parametrize("node, executable", list(shipped_nodes()))
def test_every_parameter_a_shipped_launch_file_sets_has_the_declared_type(node, executable):
    declared = declared_defaults(EXECUTABLES[executable])
    given = node_parameters(node)
    assert set(given) <= set(declared), f"undeclared parameters {sorted(set(given) - set(declared))}"
    wrong = {
        name: f"{value!r} is {ros_type(value)}, declared {ros_type(declared[name])}"
        for name, value in given.items()
        if ros_type(value) != ros_type(declared[name])
    }
    assert not wrong


@pytest.mark.parametrize("python_file", sorted(LAUNCH_DIR.glob("*.launch.py")), ids=lambda p: p.name)
def test_each_python_launch_file_includes_its_yaml_twin_so_both_launchers_run_one_graph(python_file):
    twin = python_file.name.replace(".launch.py", ".launch.yaml")
    assert (LAUNCH_DIR / twin).is_file()
    source = python_file.read_text()
    assert f'"{twin}"' in source and "IncludeLaunchDescription" in source

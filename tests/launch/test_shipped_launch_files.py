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


def _module_source(module: str) -> ast.Module:
    return ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text())


def declared_defaults(executable: str) -> dict:
    """name -> default value, as the node's source declares them."""
    tree = _module_source(EXECUTABLES[executable])
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "PARAMETERS" for t in node.targets):
            return {name: entry[0] for name, entry in ast.literal_eval(node.value).items()}
    defaults = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "declare_parameter":
            defaults[ast.literal_eval(node.args[0])] = ast.literal_eval(node.args[1])
    if not defaults and "self._declare_parameters()" in ast.unparse(tree):
        return declared_defaults("reasoner")  # the lifecycle reasoner declares the reasoner's table
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
    for executable in EXECUTABLES:
        assert declared_defaults(executable), executable


@pytest.mark.parametrize("node, executable", list(shipped_nodes()))
def test_every_parameter_a_shipped_launch_file_sets_has_the_declared_type(node, executable):
    declared = declared_defaults(executable)
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

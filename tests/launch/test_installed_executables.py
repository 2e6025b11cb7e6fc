"""A pip install provides lib/cosmos_ros/<executable> for every node, as a colcon install does,
so `ros2 run cosmos_ros reasoner` and launch_ros find the nodes (both look there, through the
ament index). Checked against this environment's (editable) install."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from ament_index_python.packages import get_package_prefix

from cosmos_ros.launch import EXECUTABLES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def executable_path(monkeypatch):
    """Where ros2 run looks: <the package's prefix in the ament index>/lib/<package>/<name>."""
    if not os.environ.get("AMENT_PREFIX_PATH"):
        monkeypatch.setenv("AMENT_PREFIX_PATH", sys.prefix)  # what a ROS user's setup.bash would add
    return lambda name: Path(get_package_prefix("cosmos_ros")) / "lib" / "cosmos_ros" / name


def test_the_node_scripts_the_launcher_and_cmake_know_are_the_same():
    cmake = (ROOT / "CMakeLists.txt").read_text()
    installed = re.search(r"install\(PROGRAMS(.*?)DESTINATION", cmake, re.DOTALL).group(1).split()
    nodes = [p.name for p in (ROOT / "scripts").iterdir() if not p.suffix]  # not gpu_check.sh & co
    assert sorted(nodes) == sorted(EXECUTABLES)
    assert sorted(Path(p).name for p in installed) == sorted(EXECUTABLES)


@pytest.mark.parametrize("name", sorted(EXECUTABLES))
def test_each_node_is_an_executable_in_lib_cosmos_ros_run_by_this_environments_python(name, executable_path):
    path = executable_path(name)
    assert path.is_file() and os.access(path, os.X_OK), f"{path} missing; reinstall with pip install -e ."
    shebang, _, body = path.read_text().partition("\n")
    assert shebang == f"#!{Path(sys.prefix) / 'bin' / 'python'}"
    assert f"from {EXECUTABLES[name]} import main" in body


def test_an_installed_node_runs_and_reports_a_bad_parameter_in_one_fatal_line(executable_path):
    result = subprocess.run(
        [str(executable_path("planner_listener")), "--ros-args", "-p", "min_confidence:=abc"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 2, output
    (fatal,) = output.splitlines()
    assert "[FATAL]" in fatal and "min_confidence" in fatal

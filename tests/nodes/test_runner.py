"""run_node: a node refusing its parameters logs one fatal line and exits 2, whatever the refusal."""

from __future__ import annotations

import pytest

pytest.importorskip(
    "rclpy", reason="rclpy is not installed (the ROS 2 wheels: pip install -r requirements.txt)"
)


@pytest.mark.parametrize(
    "node, args",
    [
        ("sim_camera", ["-p", "width:=abc"]),  # wrong type: rclpy's ParameterException
        ("sim_camera", ["-p", "encoding:=yuv"]),  # the node's own ValueError
        ("reasoner", ["-p", "window_s:=-1.0"]),
    ],
)
def test_a_node_with_refused_parameters_exits_2_without_a_traceback(node, args, capfd):
    import importlib

    main = importlib.import_module(f"cosmos_ros.nodes.{node}").main
    assert main(["--ros-args", *args]) == 2
    err = capfd.readouterr().err
    assert "FATAL" in err and "Traceback" not in err and "AttributeError" not in err

"""Specification of the pip launcher: ROS 2 YAML launch files resolved into node command lines,
and run as processes that stop together.

Only the run_graph tests start processes, and those are tiny Python scripts, not ROS nodes.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import pytest
from launch_files import by_label, node_parameters, ros_args, write_launch

from cosmos_ros.launch import (
    Graph,
    LaunchError,
    NodeProcess,
    find_launch_file,
    load_graph,
    parse_arguments,
    run_graph,
)


@pytest.fixture(scope="module")
def demo() -> Graph:
    return load_graph(find_launch_file("camera_demo"), {}, env={})


# ---- the shipped launch files --------------------------------------------------------------------


def test_demo_resolves_a_camera_a_reasoner_and_a_planner_in_the_demo_namespace(demo):
    assert [node.label for node in demo.nodes] == ["/demo/camera", "/demo/reasoner", "/demo/planner"]


def test_demo_runs_the_reasoner_as_a_module_of_this_interpreter(demo):
    command = by_label(demo)["/demo/reasoner"].command
    assert command[:3] == [sys.executable, "-m", "cosmos_ros.nodes.reasoner"]
    assert command[3] == "--ros-args"


def test_demo_names_and_namespaces_the_reasoner_as_launch_ros_does(demo):
    args = ros_args(by_label(demo)["/demo/reasoner"].command)
    assert ("-r", "__node:=reasoner") in args
    assert ("-r", "__ns:=/demo") in args


def test_demo_passes_the_shipped_reasoner_params_file_before_the_overrides(demo):
    reasoner = by_label(demo)["/demo/reasoner"]
    shipped, overrides = [value for flag, value in ros_args(reasoner.command) if flag == "--params-file"]
    assert Path(shipped).name == "reasoner.params.yaml" and Path(shipped).is_file()
    # later files win in ROS 2: the launch file's values must come after the shipped file
    assert reasoner.parameter_files[overrides]["/demo/reasoner"]["ros__parameters"]["rate_hz"] == 0.5
    assert node_parameters(reasoner)["model"] == "tiny-dense"


def test_demo_remaps_the_planner_onto_the_reasoner_topics(demo):
    args = ros_args(by_label(demo)["/demo/planner"].command)
    assert ("-r", "next_subtask:=reasoner/next_subtask") in args
    assert ("-r", "failure:=reasoner/failure") in args


def test_demo_declares_its_arguments_with_defaults_and_descriptions(demo):
    default, description = demo.arguments["model"]
    assert default == "tiny-dense" and description
    assert {"namespace", "source", "engine", "device", "rate_hz"} <= set(demo.arguments)


def test_reasoner_launch_file_resolves_one_reasoner_at_the_root_namespace():
    graph = load_graph(find_launch_file("reasoner"), {}, env={})
    (node,) = graph.nodes
    assert node.label == "/reasoner"
    assert ("-r", "__ns:=/") in ros_args(node.command)  # launch_ros passes an empty namespace as /
    assert node_parameters(node)["cameras"] == ["camera"]


# ---- launch arguments ----------------------------------------------------------------------------


def test_a_launch_argument_overrides_its_default():
    graph = load_graph(find_launch_file("camera_demo"), {"model": "/some/dir"}, env={})
    assert node_parameters(by_label(graph)["/demo/reasoner"])["model"] == "/some/dir"


def test_the_namespace_argument_moves_every_node():
    graph = load_graph(find_launch_file("camera_demo"), {"namespace": "robot1"}, env={})
    assert [node.label for node in graph.nodes] == ["/robot1/camera", "/robot1/reasoner", "/robot1/planner"]
    for node in graph.nodes:
        assert ("-r", "__ns:=/robot1") in ros_args(node.command)


def test_an_unknown_argument_is_refused_by_name():
    with pytest.raises(LaunchError, match="modle"):
        load_graph(find_launch_file("camera_demo"), {"modle": "tiny-dense"}, env={})


def test_a_required_argument_left_out_is_refused_by_name(tmp_path):
    file = write_launch(
        tmp_path,
        "robot.launch.yaml",
        """
        launch:
        - arg: {name: robot}
        - node: {pkg: cosmos_ros, exec: reasoner, namespace: "$(var robot)"}
        """,
    )
    with pytest.raises(LaunchError, match=r"'robot' is required.*robot:=VALUE"):
        load_graph(file, {}, env={})
    assert load_graph(file, {"robot": "r2"}, env={}).nodes[0].label == "/r2/reasoner"


def test_parse_arguments_splits_name_and_value_at_the_first_separator():
    assert parse_arguments(["model:=tiny-dense", "cameras:=[front, wrist]", "task:=a:=b", "empty:="]) == {
        "model": "tiny-dense",
        "cameras": "[front, wrist]",
        "task": "a:=b",
        "empty": "",
    }


@pytest.mark.parametrize("item", ["model=tiny-dense", "model", ":=value"])
def test_parse_arguments_rejects_items_that_are_not_name_colon_equals_value(item):
    with pytest.raises(LaunchError, match="name:=value"):
        parse_arguments([item])


# ---- launch file syntax --------------------------------------------------------------------------


def test_an_unsupported_action_is_refused_by_name(tmp_path):
    file = write_launch(
        tmp_path,
        "timer.launch.yaml",
        """
        launch:
        - timer: {period: 1.0}
        """,
    )
    with pytest.raises(LaunchError, match="'timer' is not supported"):
        load_graph(file, {}, env={})


def test_an_unsupported_node_attribute_is_refused_by_name(tmp_path):
    file = write_launch(
        tmp_path,
        "respawn.launch.yaml",
        """
        launch:
        - node: {pkg: cosmos_ros, exec: reasoner, respawn: "true"}
        """,
    )
    with pytest.raises(LaunchError, match="respawn"):
        load_graph(file, {}, env={})


def test_a_file_without_a_launch_list_is_refused(tmp_path):
    file = write_launch(tmp_path, "empty.launch.yaml", "nodes: []\n")
    with pytest.raises(LaunchError, match="launch:"):
        load_graph(file, {}, env={})


def test_an_unsupported_substitution_is_refused_by_name(tmp_path):
    file = write_launch(
        tmp_path,
        "command.launch.yaml",
        """
        launch:
        - node: {pkg: cosmos_ros, exec: reasoner, name: "$(command hostname)"}
        """,
    )
    with pytest.raises(LaunchError, match=r"unsupported substitution \$\(command\)"):
        load_graph(file, {}, env={})


def env_launch(tmp_path: Path, substitution: str) -> Path:
    return write_launch(
        tmp_path,
        "env.launch.yaml",
        f"""
        launch:
        - node:
            pkg: cosmos_ros
            exec: reasoner
            param:
            - {{name: device, value: "{substitution}"}}
        """,
    )


def device_param(graph: Graph) -> str:
    (node,) = graph.nodes
    return node_parameters(node)["device"]


def test_env_substitution_reads_the_given_environment(tmp_path):
    graph = load_graph(env_launch(tmp_path, "$(env ROBOT_DEVICE cpu)"), {}, env={"ROBOT_DEVICE": "cuda:1"})
    assert device_param(graph) == "cuda:1"


def test_env_substitution_falls_back_to_its_default(tmp_path):
    graph = load_graph(env_launch(tmp_path, "$(env ROBOT_DEVICE cpu)"), {}, env={})
    assert device_param(graph) == "cpu"


def test_env_substitution_without_default_requires_the_variable(tmp_path):
    with pytest.raises(LaunchError, match="ROBOT_DEVICE is not set"):
        load_graph(env_launch(tmp_path, "$(env ROBOT_DEVICE)"), {}, env={})


def test_var_substitution_of_an_undeclared_name_is_refused_by_name(tmp_path):
    with pytest.raises(LaunchError, match=r"\$\(var robot_device\) is not declared"):
        load_graph(env_launch(tmp_path, "$(var robot_device)"), {}, env={})


def test_let_and_set_env_feed_later_actions(tmp_path):
    file = write_launch(
        tmp_path,
        "let.launch.yaml",
        """
        launch:
        - let: {name: accel, value: "cuda"}
        - set_env: {name: ROBOT_DEVICE, value: "$(var accel):0"}
        - node:
            pkg: cosmos_ros
            exec: reasoner
            param:
            - {name: device, value: "$(env ROBOT_DEVICE)"}
            env:
            - {name: ROBOT_ID, value: "7"}
        """,
    )
    graph = load_graph(file, {}, env={"PATH": "/usr/bin"})
    assert device_param(graph) == "cuda:0"
    assert graph.nodes[0].env == {"PATH": "/usr/bin", "ROBOT_DEVICE": "cuda:0", "ROBOT_ID": "7"}


@pytest.mark.parametrize(
    ("condition", "value", "runs"),
    [
        ("if: \"$(not-equals '$(var record)' '')\"", "", False),
        ("if: \"$(not-equals '$(var record)' '')\"", "/tmp/run 1", True),
        ("unless: \"$(equals $(var record) TRUE)\"", "true", False),
        ("unless: \"$(equals $(var record) 1.0)\"", "1", False),
        ("if: \"$(var record)\"", "1", True),
        ("if: \"$(var record)\"", "False", False),
    ],
)
def test_if_and_unless_decide_whether_a_node_runs(tmp_path, condition, value, runs):
    file = write_launch(
        tmp_path,
        "cond.launch.yaml",
        f"""
        launch:
        - arg: {{name: record, default: ""}}
        - node:
            {condition}
            pkg: cosmos_ros
            exec: bag_record
        """,
    )
    graph = load_graph(file, {"record": value})
    assert len(graph.nodes) == int(runs)


def test_a_condition_that_is_not_a_boolean_is_refused_with_its_value(tmp_path):
    file = write_launch(
        tmp_path,
        "cond.launch.yaml",
        """
        launch:
        - node: {if: "$(env MAYBE)", pkg: cosmos_ros, exec: reasoner}
        """,
    )
    with pytest.raises(LaunchError, match="gave 'yes'; expected true, false, 1 or 0"):
        load_graph(file, {}, env={"MAYBE": "yes"})


def test_a_missing_params_file_is_refused_by_path(tmp_path):
    file = write_launch(
        tmp_path,
        "params.launch.yaml",
        """
        launch:
        - node:
            pkg: cosmos_ros
            exec: reasoner
            param:
            - from: "$(dirname)/missing.params.yaml"
        """,
    )
    with pytest.raises(LaunchError, match="missing.params.yaml not found"):
        load_graph(file, {}, env={})


def test_an_executable_of_another_package_is_looked_up_in_the_ament_prefixes(tmp_path):
    driver = tmp_path / "prefix" / "lib" / "usb_cam" / "usb_cam_node_exe"
    driver.parent.mkdir(parents=True)
    driver.write_text("")
    file = write_launch(
        tmp_path,
        "driver.launch.yaml",
        """
        launch:
        - node: {pkg: usb_cam, exec: usb_cam_node_exe, name: cam}
        """,
    )
    (node,) = load_graph(file, {}, env={"AMENT_PREFIX_PATH": str(tmp_path / "prefix")}).nodes
    assert node.command == [str(driver), "--ros-args", "-r", "__node:=cam"]
    with pytest.raises(LaunchError, match="'usb_cam_node_exe' of package 'usb_cam' not found"):
        load_graph(file, {}, env={})


# ---- include -------------------------------------------------------------------------------------


@pytest.fixture
def child(tmp_path) -> Path:
    return write_launch(
        tmp_path,
        "child.launch.yaml",
        """
        launch:
        - arg: {name: who}
        - arg: {name: robot, default: "solo"}
        - node: {pkg: cosmos_ros, exec: reasoner, name: "$(var who)", namespace: "$(var robot)"}
        """,
    )


def test_include_passes_its_args_to_the_included_file(tmp_path, child):
    parent = write_launch(
        tmp_path,
        "parent.launch.yaml",
        """
        launch:
        - arg: {name: name, default: "thinker"}
        - include:
            file: "$(dirname)/child.launch.yaml"
            arg:
            - {name: who, value: "$(var name)"}
        """,
    )
    assert [n.label for n in load_graph(parent, {}, env={}).nodes] == ["/solo/thinker"]
    assert [n.label for n in load_graph(parent, {"name": "sage"}, env={}).nodes] == ["/solo/sage"]


def test_arguments_given_on_the_command_line_reach_included_files(tmp_path, child):
    parent = write_launch(
        tmp_path,
        "parent.launch.yaml",
        """
        launch:
        - arg: {name: robot, default: "r1"}
        - include:
            file: "$(dirname)/child.launch.yaml"
            arg:
            - {name: who, value: "reasoner"}
        """,
    )
    assert [n.label for n in load_graph(parent, {"robot": "r2"}, env={}).nodes] == ["/r2/reasoner"]


def test_an_include_arg_wins_over_the_same_argument_on_the_command_line(tmp_path, child):
    parent = write_launch(
        tmp_path,
        "parent.launch.yaml",
        """
        launch:
        - arg: {name: who, default: "anyone"}
        - include:
            file: "$(dirname)/child.launch.yaml"
            arg:
            - {name: who, value: "fixed"}
        """,
    )
    assert [n.label for n in load_graph(parent, {"who": "cli"}, env={}).nodes] == ["/solo/fixed"]


def test_the_graph_lists_the_top_level_arguments_and_accepts_those_of_included_files(tmp_path, child):
    parent = write_launch(
        tmp_path,
        "parent.launch.yaml",
        """
        launch:
        - include:
            file: "$(dirname)/child.launch.yaml"
            arg:
            - {name: who, value: "reasoner"}
        """,
    )
    assert load_graph(parent, {}, env={}).arguments == {}
    assert [n.label for n in load_graph(parent, {"robot": "r2"}, env={}).nodes] == ["/r2/reasoner"]
    with pytest.raises(LaunchError, match="unknown arguments"):
        load_graph(parent, {"robto": "r2"}, env={})


def test_an_included_file_sees_the_including_files_variables_as_ros2_launch_does(tmp_path, child):
    parent = write_launch(
        tmp_path,
        "parent.launch.yaml",
        """
        launch:
        - arg: {name: robot, default: "r1"}
        - include:
            file: "$(dirname)/child.launch.yaml"
            arg:
            - {name: who, value: "reasoner"}
        """,
    )
    assert [n.label for n in load_graph(parent, {}, env={}).nodes] == ["/r1/reasoner"]


def test_includes_that_recurse_are_refused(tmp_path):
    file = write_launch(
        tmp_path,
        "loop.launch.yaml",
        """
        launch:
        - include: {file: "$(dirname)/loop.launch.yaml"}
        """,
    )
    with pytest.raises(LaunchError, match="nested more than 8 deep"):
        load_graph(file, {}, env={})


# ---- finding launch files ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["demo", "demo.launch.yaml", "demo.launch.py"])
def test_find_launch_file_accepts_the_short_and_file_names(name):
    assert find_launch_file(name).name == "demo.launch.yaml"


def test_find_launch_file_accepts_a_path(tmp_path):
    file = write_launch(tmp_path, "mine.launch.yaml", "launch: []\n")
    assert find_launch_file(str(file)) == file.resolve()


def test_find_launch_file_with_an_unknown_name_lists_the_available_ones():
    with pytest.raises(LaunchError, match=r"'nope'.*available: camera_demo, demo, reasoner"):
        find_launch_file("nope")


# ---- running a graph -----------------------------------------------------------------------------


class Sink:
    """A thread-safe text sink: the launcher writes from one pump thread per node."""

    def __init__(self):
        self._parts: list[str] = []
        self._lock = threading.Lock()

    def write(self, text: str) -> None:
        with self._lock:
            self._parts.append(text)

    def flush(self) -> None:
        pass

    @property
    def text(self) -> str:
        with self._lock:
            return "".join(self._parts)


POLITE_NODE = """
import signal, sys, time
def bye(*_):
    print("bye", flush=True)
    sys.exit(0)
signal.signal(signal.SIGINT, bye)
print("hello from", sys.argv[1], flush=True)
while True:
    time.sleep(0.02)
"""

STUBBORN_NODE = """
import signal, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
print("not stopping", flush=True)
while True:
    time.sleep(0.02)
"""


def script_node(label: str, script: str, *args: str) -> NodeProcess:
    return NodeProcess(label=label, command=[sys.executable, "-c", script, *args], env=dict(os.environ))


def test_run_graph_streams_labelled_output_and_stops_nodes_with_sigint():
    sink = Sink()
    graph = Graph(nodes=[script_node("/a", POLITE_NODE, "a"), script_node("/b", POLITE_NODE, "b")])
    assert run_graph(graph, duration_s=1.5, sink=sink, grace_s=5.0) == 0
    lines = sink.text.splitlines()
    assert "[/a] hello from a" in lines and "[/b] hello from b" in lines
    assert "[/a] bye" in lines and "[/b] bye" in lines
    assert any(line.startswith("[launch] started 2 nodes") for line in lines)
    assert all(node.process.returncode == 0 for node in graph.nodes)


def test_run_graph_escalates_to_sigterm_when_a_node_ignores_sigint():
    sink = Sink()
    graph = Graph(nodes=[script_node("/stubborn", STUBBORN_NODE)])
    code = run_graph(graph, duration_s=0.5, sink=sink, grace_s=0.3)
    assert code == -signal.SIGTERM
    assert "[/stubborn] not stopping" in sink.text
    assert "/stubborn ignored SIGINT" in sink.text


def test_a_node_that_exits_stops_the_graph_with_its_exit_code():
    sink = Sink()
    graph = Graph(
        nodes=[
            script_node("/polite", POLITE_NODE, "p"),
            script_node("/crash", "import sys, time; time.sleep(0.3); sys.exit(3)"),
        ]
    )
    assert run_graph(graph, duration_s=30.0, sink=sink, grace_s=5.0) == 3
    assert "[/polite] bye" in sink.text
    assert "/crash exited with code 3" in sink.text


def test_a_node_that_dies_is_named_with_its_last_words_in_one_line():
    sink = Sink()
    dying = "import sys; print('[FATAL] [reasoner]: cameras has the wrong type', flush=True); sys.exit(2)"
    graph = Graph(nodes=[script_node("/polite", POLITE_NODE, "p"), script_node("/demo/reasoner", dying)])
    assert run_graph(graph, duration_s=30.0, sink=sink, grace_s=5.0) == 2
    (line,) = [line for line in sink.text.splitlines() if "/demo/reasoner exited" in line]
    assert line.startswith("[launch] /demo/reasoner exited with code 2 after ")
    assert line.endswith(": [FATAL] [reasoner]: cameras has the wrong type -- stopping the graph")


def test_run_graph_writes_the_parameter_files_for_the_nodes_and_removes_them_after(tmp_path):
    sink = Sink()
    graph = Graph(parameter_dir=tmp_path / "params")
    path = str(graph.parameter_dir / "node.yaml")
    node = script_node("/cat", "import sys; print(open(sys.argv[1]).read().replace(chr(10), ' '))", path)
    node.parameter_files[path] = {"/cat": {"ros__parameters": {"flag": "true", "n": 2}}}
    graph.nodes.append(node)
    assert run_graph(graph, duration_s=5.0, sink=sink, grace_s=1.0) == 0
    assert "[/cat] /cat:   ros__parameters:     flag: 'true'     n: 2" in sink.text
    assert not graph.parameter_dir.exists()


def test_run_graph_gives_nodes_the_transport_profile_and_unbuffered_output(monkeypatch):
    for name in ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_BUILTIN_TRANSPORTS",
                 "COSMOS_ROS_TRANSPORT", "RMW_IMPLEMENTATION", "PYTHONUNBUFFERED"):
        monkeypatch.delenv(name, raising=False)
    sink = Sink()
    script = "import os; print(os.environ['FASTDDS_DEFAULT_PROFILES_FILE'], os.environ['PYTHONUNBUFFERED'])"
    graph = Graph(nodes=[script_node("/env", script)])
    assert run_graph(graph, duration_s=5.0, sink=sink, grace_s=1.0) == 0
    from cosmos_ros.transport import PROFILE_PATH

    assert f"[/env] {PROFILE_PATH} 1" in sink.text.splitlines()


def test_run_graph_restores_the_signal_handlers():
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    run_graph(Graph(nodes=[script_node("/quick", "pass")]), duration_s=2.0, sink=Sink(), grace_s=1.0)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_sim_demo_plays_held_out_tiny_clips_to_the_shipped_trained_model_in_its_input_format():
    from cosmos_ros.sim.scenarios import load_config

    graph = load_graph(find_launch_file("sim_demo"), {"scenario": "object_permanence"}, env={})
    nodes = by_label(graph)
    assert list(nodes) == ["/demo/camera", "/demo/reasoner", "/demo/evaluator"]
    camera = node_parameters(nodes["/demo/camera"])
    reasoner = node_parameters(nodes["/demo/reasoner"])
    scenario = load_config(camera["scenario"])  # the installed sim/tiny config, as trained on
    assert scenario.task == "object_permanence" and (camera["width"], camera["height"]) == (56, 56)
    assert int(camera["seed"]) != scenario.seed  # clips the model was not trained on
    model = Path(reasoner["model"])
    assert model.name == "cosmos-reason1-tiny" and (model / "model.safetensors").is_file()
    # a whole 4 s clip at the 4 fps / 16 frames the model was trained with
    assert float(reasoner["window_s"]) >= scenario.render.duration_s
    assert float(reasoner["fps"]) == scenario.render.fps
    assert int(reasoner["max_frames"]) == scenario.render.num_frames

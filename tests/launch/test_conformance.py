"""Conformance of `cosmos-ros launch` with ROS 2's launch / launch_ros YAML frontend.

Each expectation is what `ros2 launch` does with the same file, as documented by launch_ros and
launch (the YAML/XML frontend docs, launch_ros's test_node_frontend.py, launch's type_utils and
substitution grammar), restated here as a table: construct → the node's command line and the
parameter values and types the node starts with. A node's parameters are read the way rcl reads
its --ros-args (launch_files.node_parameters).
"""

from __future__ import annotations

import pytest
from launch_files import node_parameters, ros_args, write_launch

from cosmos_ros.launch import LaunchError, load_graph


def one_node(tmp_path, body: str, arguments=None, env=None):
    file = write_launch(tmp_path, "probe.launch.yaml", body)
    (node,) = load_graph(file, arguments or {}, env=env or {}).nodes
    return node


def parameter_of(tmp_path, lets: dict[str, str], value_yaml: str):
    """The value the node gets for `param: {name: p, value: <value_yaml>}` after `let`s."""
    lets_yaml = "".join(f"- let: {{name: {k}, value: {v!r}}}\n" for k, v in lets.items())
    body = f"launch:\n{lets_yaml}- node:\n    pkg: cosmos_ros\n    exec: reasoner\n    name: r\n    namespace: ns\n"
    body += f"    param:\n    - {{name: p, value: {value_yaml}}}\n"
    return node_parameters(one_node(tmp_path, body))["p"]


# (construct, let values, the YAML of `value:`, what the node gets)
PARAMETER_TABLE = [
    # a quoted literal without $(...) stays a string, whatever it looks like
    ("quoted true stays a string", {}, '"true"', "true"),
    ("quoted int stays a string", {}, '"15"', "15"),
    ("quoted float stays a string", {}, '"30.0"', "30.0"),
    ("quoted list stays a string", {}, '"[a, b]"', "[a, b]"),
    ("quoted empty string", {}, "''", ""),
    # YAML scalars and lists keep their YAML type
    ("yaml bool", {}, "true", True),
    ("yaml int", {}, "15", 15),
    ("yaml float", {}, "30.0", 30.0),
    ("yaml list of str", {}, "[a, b]", ["a", "b"]),
    ("yaml list of int", {}, "[2, 5, 8]", [2, 5, 8]),
    ("yaml list of float", {}, "[2., 5., 8.]", [2.0, 5.0, 8.0]),
    ("yaml list of quoted digits", {}, "['2', '5', '8']", ["2", "5", "8"]),
    ("list items with quotes inside stay as written", {}, "[\"'2'\", \"'5'\"]", ["'2'", "'5'"]),
    # a value with a substitution is substituted, then read as YAML
    ("substituted int", {"x": "15"}, '"$(var x)"', 15),
    ("substituted float", {"x": "30.0"}, '"$(var x)"', 30.0),
    ("substituted bool", {"x": "false"}, '"$(var x)"', False),
    ("substituted list", {"x": "[2, 5, 8]"}, '"$(var x)"', [2, 5, 8]),
    ("substituted list of names", {"x": "[camera]"}, '"$(var x)"', ["camera"]),
    ("substituted quoted list stays a string", {"x": "'[2, 5, 8]'"}, '"$(var x)"', "[2, 5, 8]"),
    ("substituted quoted int stays a string", {"x": "'15'"}, '"$(var x)"', "15"),
    ("substituted word", {"x": "camera"}, '"$(var x)"', "camera"),
    ("substituted into text", {"x": "7"}, '"robot_$(var x)"', "robot_7"),
    ("empty after substitution is the empty string", {"x": ""}, '"$(var x)"', ""),
    ("quoted empty after substitution", {"x": "''"}, '"$(var x)"', ""),
    ("substitution inside a list item", {"x": "front"}, '["$(var x)", wrist]', ["front", "wrist"]),
    # a backslash escapes the next character, as in launch's grammar
    ("escaped dollar is literal text", {}, r'"\\$(var x)"', "$(var x)"),
]


@pytest.mark.parametrize(
    "lets, value_yaml, expected", [row[1:] for row in PARAMETER_TABLE], ids=[row[0] for row in PARAMETER_TABLE]
)
def test_a_parameter_value_has_the_type_launch_ros_gives_it(tmp_path, lets, value_yaml, expected):
    value = parameter_of(tmp_path, lets, value_yaml)
    assert value == expected
    assert type(value) is type(expected)
    if isinstance(expected, list):
        assert [type(v) for v in value] == [type(v) for v in expected]


REFUSED_VALUES = [
    ("list of mixed types", {}, "[1, a]"),
    ("list of int and float", {}, "[1, 2.5]"),
    ("a mapping", {}, "{a: 1}"),
    ("substituted null", {"x": "null"}, '"$(var x)"'),
    ("substituted mapping", {"x": "{a: 1}"}, '"$(var x)"'),
    ("substituted mixed list", {"x": "[1, a]"}, '"$(var x)"'),
]


@pytest.mark.parametrize(
    "lets, value_yaml", [row[1:] for row in REFUSED_VALUES], ids=[row[0] for row in REFUSED_VALUES]
)
def test_a_parameter_value_launch_ros_refuses_is_refused_naming_the_parameter(tmp_path, lets, value_yaml):
    with pytest.raises(LaunchError, match="parameter 'p'"):
        parameter_of(tmp_path, lets, value_yaml)


def test_nested_params_become_dotted_names(tmp_path):
    node = one_node(
        tmp_path,
        """
        launch:
        - node:
            pkg: cosmos_ros
            exec: reasoner
            param:
            - name: group
              param:
              - {name: inner, param: [{name: leaf, value: 2}]}
              - {name: other, value: "x"}
        """,
    )
    assert node_parameters(node) == {"group.inner.leaf": 2, "group.other": "x"}


# ---- how parameters are passed -------------------------------------------------------------------


def test_parameters_go_in_a_file_keyed_by_the_full_node_name_not_on_the_command_line(tmp_path):
    node = one_node(
        tmp_path,
        """
        launch:
        - node:
            pkg: cosmos_ros
            exec: reasoner
            name: thinker
            namespace: robot
            param:
            - {name: task, value: "true"}
        """,
    )
    assert not any(flag == "-p" for flag, _ in ros_args(node.command))
    (path,) = [value for flag, value in ros_args(node.command) if flag == "--params-file"]
    assert node.parameter_files[path] == {"/robot/thinker": {"ros__parameters": {"task": "true"}}}


@pytest.mark.parametrize(
    "attributes", ["namespace: robot", "name: thinker", ""], ids=["no name", "no namespace", "neither"]
)
def test_parameters_of_a_node_without_both_name_and_namespace_are_keyed_by_the_wildcard(tmp_path, attributes):
    node = one_node(
        tmp_path,
        f"""
        launch:
        - node:
            pkg: cosmos_ros
            exec: reasoner
            {attributes}
            param:
            - {{name: task, value: go}}
        """,
    )
    (document,) = node.parameter_files.values()
    assert document == {"/**": {"ros__parameters": {"task": "go"}}}


def test_parameter_files_and_values_keep_their_order_so_later_ones_win(tmp_path):
    params = tmp_path / "base.yaml"
    params.write_text("/**:\n  ros__parameters:\n    task: from_file\n    device: cpu\n")
    node = one_node(
        tmp_path,
        """
        launch:
        - node:
            pkg: cosmos_ros
            exec: reasoner
            param:
            - {name: task, value: first}
            - from: "$(dirname)/base.yaml"
            - {name: device, value: cuda}
        """,
    )
    files = [value for flag, value in ros_args(node.command) if flag == "--params-file"]
    assert len(files) == 3 and files[1] == str(params)
    assert node_parameters(node) == {"task": "from_file", "device": "cuda"}


# ---- the command line ----------------------------------------------------------------------------


def test_the_command_line_is_args_then_ros_args_then_name_namespace_parameters_remaps(tmp_path):
    node = one_node(
        tmp_path,
        """
        launch:
        - let: {name: who, value: "a b"}
        - node:
            pkg: cosmos_ros
            exec: reasoner
            name: thinker
            namespace: robot
            args: "--flag $(var who) last"
            ros_args: "--log-level debug"
            param: [{name: task, value: go}]
            remap: [{from: image, to: camera/image}]
        """,
    )
    (path,) = node.parameter_files
    assert node.command[3:] == [
        "--flag", "a b", "last",
        "--ros-args", "--log-level", "debug",
        "--ros-args", "-r", "__node:=thinker", "-r", "__ns:=/robot", "--params-file", path,
        "-r", "image:=camera/image",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "namespace, expected",
    [('""', "/"), ("robot", "/robot"), ("/robot", "/robot"), ("robot/", "/robot"), ("a/b", "/a/b")],
)
def test_a_given_namespace_is_made_absolute_and_passed_even_when_empty(tmp_path, namespace, expected):
    node = one_node(
        tmp_path, f"launch:\n- node: {{pkg: cosmos_ros, exec: reasoner, name: r, namespace: {namespace}}}\n"
    )
    assert ("-r", f"__ns:={expected}") in ros_args(node.command)
    assert node.label == ("/r" if expected == "/" else f"{expected}/r")


def test_a_node_without_namespace_gets_no_namespace_rule(tmp_path):
    node = one_node(tmp_path, "launch:\n- node: {pkg: cosmos_ros, exec: reasoner, name: r}\n")
    assert not any(value.startswith("__ns:=") for _, value in ros_args(node.command))


def test_an_invalid_namespace_is_refused(tmp_path):
    with pytest.raises(LaunchError, match="namespace '/my robot'"):
        one_node(tmp_path, "launch:\n- node: {pkg: cosmos_ros, exec: reasoner, namespace: my robot}\n")


# ---- substitutions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "substitution, env, expected",
    [
        ("$(env X 'two words')", {}, "two words"),
        ('$(env X \\"two words\\")', {}, "two words"),
        ("$(env X 'two words')", {"X": "set"}, "set"),
        ("$(env X '')", {}, ""),
        ("$(env $(var name) fallback)", {"ROBOT": "r2"}, "r2"),
        ("$(env X $(var name))", {}, "ROBOT"),
    ],
)
def test_env_substitution_takes_quoted_and_nested_arguments(tmp_path, substitution, env, expected):
    node = one_node(
        tmp_path,
        f"""
        launch:
        - let: {{name: name, value: ROBOT}}
        - node:
            pkg: cosmos_ros
            exec: reasoner
            param: [{{name: device, value: "{substitution}"}}]
        """,
        env=env,
    )
    assert node_parameters(node)["device"] == expected


def test_an_unclosed_substitution_is_refused(tmp_path):
    with pytest.raises(LaunchError, match="expected '\\)'"):
        parameter_of(tmp_path, {"x": "1"}, '"$(var x"')


# ---- arguments and include scoping ---------------------------------------------------------------


@pytest.fixture
def child(tmp_path):
    return write_launch(
        tmp_path,
        "child.launch.yaml",
        """
        launch:
        - arg: {name: robot, default: "r1"}
        - let: {name: made_by_child, value: "child_$(var robot)"}
        - node: {pkg: cosmos_ros, exec: reasoner, name: inner}
        """,
    )


def test_what_an_included_file_sets_is_visible_in_the_including_file_after_the_include(tmp_path, child):
    parent = write_launch(
        tmp_path,
        "parent.launch.yaml",
        """
        launch:
        - include:
            file: "$(dirname)/child.launch.yaml"
            arg: [{name: passed, value: "p"}]
        - node: {pkg: cosmos_ros, exec: reasoner, name: "outer_$(var robot)", namespace: "$(var made_by_child)_$(var passed)"}
        """,
    )
    labels = [node.label for node in load_graph(parent, {}, env={}).nodes]
    assert labels == ["/inner", "/child_r1_p/outer_r1"]


def test_a_command_line_argument_reaches_an_argument_declared_only_by_an_included_file(tmp_path, child):
    parent = write_launch(
        tmp_path,
        "parent.launch.yaml",
        """
        launch:
        - include: {file: "$(dirname)/child.launch.yaml"}
        - node: {pkg: cosmos_ros, exec: reasoner, name: outer, namespace: "$(var robot)"}
        """,
    )
    graph = load_graph(parent, {"robot": "r7"}, env={})
    assert [node.label for node in graph.nodes] == ["/inner", "/r7/outer"]


def test_an_included_file_whose_required_argument_the_include_does_not_pass_is_refused(tmp_path):
    write_launch(tmp_path, "needs.launch.yaml", "launch:\n- arg: {name: who}\n")
    parent = write_launch(
        tmp_path,
        "parent.launch.yaml",
        """
        launch:
        - let: {name: who, value: "set but not passed"}
        - include: {file: "$(dirname)/needs.launch.yaml"}
        """,
    )
    with pytest.raises(LaunchError, match="'who' is required and the include"):
        load_graph(parent, {}, env={})


def test_an_argument_default_must_be_a_string_as_in_launch_yaml(tmp_path):
    file = write_launch(tmp_path, "num.launch.yaml", "launch:\n- arg: {name: fps, default: 15}\n")
    with pytest.raises(LaunchError, match="'default' must be a string"):
        load_graph(file, {}, env={})


def test_an_argument_outside_its_choices_is_refused(tmp_path):
    file = write_launch(
        tmp_path,
        "choice.launch.yaml",
        "launch:\n- arg: {name: engine, default: torch, choice: [{value: torch}, {value: onnxruntime}]}\n",
    )
    assert load_graph(file, {"engine": "onnxruntime"}, env={}).nodes == []
    with pytest.raises(LaunchError, match="'engine' is 'tvm'; expected one of \\['torch', 'onnxruntime'\\]"):
        load_graph(file, {"engine": "tvm"}, env={})


# ---- where cosmos-ros launch is deliberately stricter ----------------------------------------------


def test_an_undeclared_argument_is_refused_saying_ros2_launch_would_ignore_it(tmp_path):
    file = write_launch(tmp_path, "a.launch.yaml", "launch:\n- arg: {name: model, default: tiny}\n")
    with pytest.raises(LaunchError, match=r"unknown arguments \['typo'\].*ros2 launch would silently ignore"):
        load_graph(file, {"typo": "2"}, env={})


def test_a_missing_parameter_file_is_refused_saying_ros2_launch_would_only_warn(tmp_path):
    with pytest.raises(LaunchError, match=r"missing.yaml not found \(ros2 launch would only warn"):
        one_node(
            tmp_path,
            """
            launch:
            - node:
                pkg: cosmos_ros
                exec: reasoner
                param: [{from: "$(dirname)/missing.yaml"}]
            """,
        )

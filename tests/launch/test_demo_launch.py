"""The robot-loop demo graph (launch/demo.launch.yaml, what `cosmos-ros demo` runs), resolved
without starting it: who talks to whom, and the reasoner in the input format the shipped model
was trained on."""

from __future__ import annotations

import pytest
from launch_files import by_label, node_parameters, ros_args

from cosmos_ros.cli import main
from cosmos_ros.launch import find_launch_file, load_graph
from cosmos_ros.sim.scenarios import load_config


@pytest.fixture(scope="module")
def graph():
    return load_graph(find_launch_file("demo"), {"seed": "77", "duration": "12", "report": "/tmp/r.json"}, env={})


def test_the_demo_is_a_simulated_robot_a_reasoner_a_planner_and_an_evaluator(graph):
    assert [n.label for n in graph.nodes] == ["/demo/camera", "/demo/reasoner", "/demo/planner", "/demo/evaluator"]


def test_the_sim_camera_plays_live_episodes_from_the_seed_and_plays_the_planner(graph):
    camera = by_label(graph)["/demo/camera"]
    values = node_parameters(camera)
    assert values["mode"] == "episodes" and values["seed"] == 77 and values["gap_s"] == 0.0
    # the pauses between episodes vary by up to one answer period: answers do not lock to one phase
    rate = node_parameters(by_label(graph)["/demo/reasoner"])["rate_hz"]
    assert values["gap_jitter_s"] >= 1.0 / rate
    assert values["scenario"].endswith("sim/tiny/manipulation.yaml")
    assert ("-r", "task:=reasoner/task") in ros_args(camera.command)


def test_the_reasoner_takes_its_task_from_the_planner_and_clips_as_the_model_was_trained(graph):
    values = node_parameters(by_label(graph)["/demo/reasoner"])
    assert values["task"] == ""  # no periodic answer before the planner's TaskContext
    scenario = load_config("sim/tiny/manipulation.yaml")
    frames = scenario.window_frames
    assert values["max_frames"] == frames and values["fps"] == scenario.render.fps
    # the resampling grid end, end - 1/fps, ... holds exactly `frames` points inside window_s
    assert (frames - 1) / values["fps"] <= values["window_s"] < frames / values["fps"]
    assert values["model"].endswith("model/cosmos-reason1-tiny")


def test_the_evaluator_reports_after_the_duration_to_the_report_path(graph):
    evaluator = by_label(graph)["/demo/evaluator"]
    values = node_parameters(evaluator)
    assert values["duration_s"] == 12 and values["report_path"] == "/tmp/r.json"
    remaps = ros_args(evaluator.command)
    assert ("-r", "ground_truth:=camera/ground_truth") in remaps
    assert ("-r", "next_subtask:=reasoner/next_subtask") in remaps and ("-r", "failure:=reasoner/failure") in remaps


def test_the_planner_listens_to_the_answers_and_the_task(graph):
    remaps = ros_args(by_label(graph)["/demo/planner"].command)
    assert ("-r", "task:=reasoner/task") in remaps and ("-r", "next_subtask:=reasoner/next_subtask") in remaps


def test_demo_refuses_a_scenario_it_has_no_graph_for(capsys):
    assert main(["demo", "scenario:=juggling", "--duration", "1"]) == 2
    assert "juggling" in capsys.readouterr().err


def test_the_shipped_model_takes_the_demo_camera_s_frames_at_full_size():
    """The model was trained on the scenario's frames unshrunk: its processor's pixel budget must
    hold them, or the demo would answer about smaller frames than the model learned from."""
    import json

    scenario = load_config("sim/tiny/manipulation.yaml")
    processor = json.loads(open("model/cosmos-reason1-tiny/video_preprocessor_config.json").read())
    assert scenario.render.width * scenario.render.height <= processor["size"]["longest_edge"]

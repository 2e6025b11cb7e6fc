"""Specification of the `cosmos-ros` front door's launch-related commands (no process is started)."""

from __future__ import annotations

from pathlib import Path

from cosmos_ros.cli import main
from cosmos_ros.transport import PROFILE_PATH


def test_launch_show_args_lists_the_arguments_with_their_defaults(capsys):
    assert main(["launch", "demo", "--show-args"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Arguments of demo.launch.yaml:")
    assert "seed:=9100" in out and "namespace:=demo" in out and "duration:=" in out
    assert "model preset or checkpoint directory" in out


def test_launch_of_an_unknown_file_exits_2_listing_the_available_ones(capsys):
    assert main(["launch", "nope"]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "demo" in err and "reasoner" in err


def test_launch_with_a_malformed_argument_exits_2_naming_it(capsys):
    assert main(["launch", "demo", "model=tiny-dense", "--show-args"]) == 2
    assert "model=tiny-dense" in capsys.readouterr().err


def test_launch_with_an_unknown_argument_exits_2_naming_it(capsys):
    assert main(["launch", "demo", "modle:=tiny-dense", "--show-args"]) == 2
    assert "modle" in capsys.readouterr().err


def test_transport_profile_prints_the_path_of_the_shipped_profile(capsys):
    assert main(["transport-profile"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path == PROFILE_PATH and path.is_file()

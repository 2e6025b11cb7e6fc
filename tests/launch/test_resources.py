"""One lookup for installed data (cosmos_ros.resources): the source tree first, then this
environment's share/cosmos_ros, then colcon prefixes; launch files, presets, scenarios and
benchmarks are all found through it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cosmos_ros import cli, resources
from cosmos_ros.launch import share_directories
from cosmos_ros.model.cards import preset_directories
from cosmos_ros.sim.scenarios import scenario_dirs


@pytest.fixture
def prefix(tmp_path, monkeypatch):
    """A colcon-style install prefix holding share/cosmos_ros with one benchmark and one scenario."""
    share = tmp_path / "install" / "share" / "cosmos_ros"
    (share / "bench").mkdir(parents=True)
    (share / "sim").mkdir()
    (share / "package.xml").write_text("<package/>")
    (share / "bench" / "hello.py").write_text(
        "import sys\nfrom pathlib import Path\nPath(sys.argv[1]).write_text('ran ' + ' '.join(sys.argv[2:]))\n"
    )
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path / "install"))
    return share


def test_the_source_tree_comes_first_and_a_colcon_prefix_after_it(prefix):
    roots = resources.share_roots()
    assert roots[0] == resources.SOURCE_ROOT and roots[-1] == prefix
    assert resources.data_dirs("bench")[-1] == prefix / "bench"


def test_a_folder_without_package_xml_is_not_a_root(prefix):
    (prefix / "package.xml").unlink()
    assert prefix not in resources.share_roots()


def test_every_kind_of_data_is_looked_up_through_the_same_roots(prefix):
    (prefix / "launch").mkdir()
    (prefix / "model" / "presets").mkdir(parents=True)
    assert share_directories("cosmos_ros")[-1] == prefix
    assert preset_directories()[-1] == prefix / "model" / "presets"
    assert scenario_dirs()[-1] == prefix / "sim"


def test_bench_runs_a_benchmark_found_only_in_an_installed_share(prefix, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no bench/ here, and hello is in no source tree
    monkeypatch.setattr(sys, "argv", list(sys.argv))  # the runner replaces argv for the script
    out = tmp_path / "out.txt"
    assert cli.main(["bench", "hello", str(out), "--quick"]) == 0
    assert out.read_text() == "ran --quick"


def test_an_unknown_benchmark_lists_the_installed_ones(prefix, capsys):
    assert cli.main(["bench", "nope"]) == 2
    assert "hello" in capsys.readouterr().err


@pytest.mark.skipif(
    not (Path(sys.prefix) / "share" / "cosmos_ros" / "package.xml").is_file(),
    reason="this environment has no installed share/cosmos_ros (not pip-installed)",
)
def test_the_install_ships_the_benchmarks_beside_the_launch_files():
    share = Path(sys.prefix) / "share" / "cosmos_ros"
    assert (share / "launch").is_dir()
    assert sorted(p.name for p in (share / "bench").glob("*.py")) == sorted(
        p.name for p in (resources.SOURCE_ROOT / "bench").glob("*.py")
    )

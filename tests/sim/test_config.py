import dataclasses
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import yaml

from cosmos_ros.sim.config import TASK_NAMES, Range, _convert, clip_seed, from_plain, read_yaml, to_plain
from cosmos_ros.sim.scenarios import TASKS, load_config
from cosmos_ros.sim.scenarios.permanence import PermanenceConfig


@pytest.mark.parametrize("task", sorted(TASKS))
def test_shipped_yaml_matches_the_code_defaults(task):
    config_class, _ = TASKS[task]
    assert load_config(task) == config_class()


SIM = Path(__file__).resolve().parents[2] / "sim"


def restated(default, data: dict, prefix: str = "") -> list[str]:
    """The keys of a YAML mapping whose value is the default it overrides (nested configs too)."""
    hints, found = typing.get_type_hints(type(default)), []
    for key, value in data.items():
        if key == "task" and not prefix:
            continue
        inner = getattr(default, key)
        if dataclasses.is_dataclass(inner) and isinstance(value, dict):
            found += restated(inner, value, f"{prefix}{key}.")
        elif _convert(hints[key], value, key) == inner:
            found.append(prefix + key)
    return found


@pytest.mark.parametrize(
    "path", sorted([*SIM.glob("*.yaml"), *SIM.glob("tiny/*.yaml")]), ids=lambda p: p.name
)
def test_shipped_scenario_files_only_override_the_code_defaults(path):
    data = read_yaml(path)
    assert restated(TASKS[data["task"]][0](), data) == []


def test_a_nested_override_keeps_the_tasks_other_defaults():
    from cosmos_ros.sim.scenarios.manipulation import ManipulationConfig

    cfg = from_plain(
        ManipulationConfig, {"render": {"width": 112}, "scene": {"camera": {"fovy_deg": 40}}}, "t"
    )
    assert (cfg.render.width, cfg.render.num_frames) == (112, 48)  # 48: manipulation's, not RenderConfig's 32
    default = ManipulationConfig().scene.camera
    assert cfg.scene.camera == dataclasses.replace(default, fovy_deg=Range(40.0, 40.0))


def test_show_config_prints_every_field_with_the_files_overrides():
    done = subprocess.run(
        [sys.executable, "-m", "cosmos_ros.cli", "gen-data", "--tasks", str(SIM / "tiny" / "spatial_puzzle.yaml"),
         "--show-config"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    shown = yaml.safe_load(done.stdout)
    assert shown == to_plain(load_config(SIM / "tiny" / "spatial_puzzle.yaml"))
    assert shown["question"] == "corner" and shown["render"]["num_frames"] == 16 and "object_x" in shown


def test_unknown_keys_are_errors_that_name_the_key():
    with pytest.raises(ValueError, match="ball_radus"):
        from_plain(PermanenceConfig, {"task": "object_permanence", "ball_radus": [0.1, 0.2]}, "test.yaml")


def test_ranges_read_from_pairs_or_single_numbers():
    cfg = from_plain(PermanenceConfig, {"task": "object_permanence", "ball_radius": 0.12}, "test.yaml")
    assert cfg.ball_radius == Range(0.12, 0.12)


def test_render_overrides_replace_only_the_given_fields():
    cfg = load_config("arrow_of_time", width=64, num_frames=None)
    assert (cfg.render.width, cfg.render.height, cfg.render.num_frames) == (64, 256, 32)


def test_clip_seeds_are_stable_and_distinct_per_task_and_index():
    seeds = {clip_seed(task, 0, i) for task in TASKS for i in range(200)}
    assert len(seeds) == 800
    assert clip_seed("arrow_of_time", 0, 5) == clip_seed("arrow_of_time", 0, 5)


def test_the_light_task_list_names_every_registered_scenario():
    assert tuple(TASKS) == TASK_NAMES


def test_the_tiny_model_scenarios_narrow_only_nuisances_and_keep_the_physics():
    from pathlib import Path

    from cosmos_ros.sim.scenarios.arrow import ArrowConfig

    folder = Path(__file__).resolve().parents[2] / "sim" / "tiny"
    permanence = load_config(str(folder / "object_permanence.yaml"))
    arrow = load_config(str(folder / "arrow_of_time.yaml"))
    assert isinstance(permanence, PermanenceConfig) and isinstance(arrow, ArrowConfig)
    for cfg in (permanence, arrow):
        camera = cfg.scene.camera
        assert camera.distance.low == camera.distance.high and camera.lookat_jitter == 0
        assert (cfg.render.width, cfg.render.height, cfg.render.fps) == (56, 56, 4.0)
    # the plausible and the impossible occluder runs both stay in the mix
    assert permanence.variants["occluder_vanish"] > 0 and permanence.variants["occluder_stay"] > 0
    assert permanence.rolling_friction == PermanenceConfig().rolling_friction
    assert arrow.reverse_probability == ArrowConfig().reverse_probability


def test_sorted_option_order_keeps_the_answer_text_and_leaves_fixed_lists_alone():
    from cosmos_ros.sim.sample import Question
    from cosmos_ros.sim.scenarios import sorted_options

    q = Question("Which?", ("In reverse", "Forward"), answer=0, category="arrow_of_time/falling")
    s = sorted_options(q)
    assert s.options == ("Forward", "In reverse") and s.options[s.answer] == "In reverse"
    failure = Question("Did it fail?", ("yes", "no"), answer=1, category="failure", kind="failure")
    assert sorted_options(failure) is failure
    with pytest.raises(ValueError, match="option_order"):
        from_plain(PermanenceConfig, {"task": "object_permanence", "option_order": "random"}, "test.yaml")


def test_the_tiny_model_scenarios_ask_with_sorted_options():
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "sim" / "tiny"
    for name in ("object_permanence", "arrow_of_time", "spatial_puzzle"):
        assert load_config(str(folder / f"{name}.yaml")).option_order == "sorted"
    assert load_config("arrow_of_time").option_order == "shuffled"


def test_a_scenario_that_extends_another_restates_only_what_differs(tmp_path):
    (tmp_path / "base.yaml").write_text(
        "task: manipulation\nseed: 300\nrender: {width: 112, height: 112}\nvariants: {pick_success: 3.0, pick_drop: 1.0}\n"
    )
    (tmp_path / "more_drops.yaml").write_text("extends: base.yaml\nseed: 500\nvariants: {pick_drop: 2.5}\n")
    cfg = load_config(tmp_path / "more_drops.yaml")
    assert (cfg.seed, cfg.render.width, cfg.render.height) == (500, 112, 112)
    assert cfg.variants == {"pick_success": 3.0, "pick_drop": 2.5}  # merged key by key
    assert load_config(tmp_path / "base.yaml").variants["pick_drop"] == 1.0


def test_an_extends_loop_or_a_missing_parent_is_named(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\ntask: manipulation\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(ValueError, match="loops back"):
        read_yaml(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("extends: absent.yaml\n")
    with pytest.raises(ValueError, match="absent.yaml"):
        read_yaml(tmp_path / "c.yaml")


def test_the_shipped_failure_mix_is_the_robot_scenario_with_its_own_seed_and_weights():
    base, more = (load_config(SIM / "tiny" / f"{n}.yaml") for n in ("manipulation", "manipulation_failures"))
    assert more.seed != base.seed and more.render == base.render and more.scene == base.scene
    share = {name: cfg.variants["push_missed_push"] / sum(cfg.variants.values()) for name, cfg in
             (("base", base), ("more", more))}  # fmt: skip
    assert share["more"] > 2 * share["base"]

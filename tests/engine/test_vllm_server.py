"""engine:=openai against a real vLLM server (tests/vllm_server.py: `cosmos-ros serve --device
cpu` on 127.0.0.1 with the shipped tiny model): the same greedy answers as our torch engine, a
flood queued with nothing lost, and a wrong model, a wrong URL or a refused key a clear error.
Skipped, with the reason, where there is no vLLM environment or its video path cannot run."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from cosmos_ros.core.prompts import failure_prompt, next_subtask_prompt
from cosmos_ros.core.types import Clip
from cosmos_ros.engine.openai_engine import OpenAIEngine, RemoteEngineError
from cosmos_ros.engine.torch_engine import TorchEngine

pytestmark = [pytest.mark.slow, pytest.mark.vllm]
pytest.importorskip("openai")
from openai_server import decode_video_url  # the same JPEG decoding the comparison needs
from vllm_server import KEY_ENV, NAME, SHIPPED


@pytest.fixture(scope="module")
def local():
    return TorchEngine(str(SHIPPED))


def remote(server, name: str = NAME, **kw) -> OpenAIEngine:
    return OpenAIEngine(name, server_url=kw.pop("url", server.url), api_key_env=KEY_ENV, **kw)


def clip_of(seed: int, frames: int = 8) -> Clip:
    pixels = np.random.default_rng(seed).integers(0, 256, (frames, 112, 112, 3), dtype=np.uint8)
    return Clip(frames=pixels, stamps=np.arange(frames) / 4.0, fps=4.0)


def _as_sent(engine: OpenAIEngine, clip: Clip) -> Clip:
    """The clip as the server decodes it (JPEG on the wire)."""
    from cosmos_ros.engine.openai_engine import video_part

    part, fps = video_part(clip, engine.video_format)
    return decode_video_url(part["video_url"]["url"], fps)


@pytest.mark.parametrize("seed", [0, 1])
def test_greedy_answers_equal_the_torch_engines(vllm_server, local, seed):
    engine = remote(vllm_server)
    prompt = failure_prompt("put the red block on the green pad")
    streamed = []
    answer = engine.reason(clip_of(seed), prompt, max_new_tokens=48, on_token=streamed.append)
    expected = local.reason(_as_sent(engine, clip_of(seed)), prompt, max_new_tokens=48)
    assert answer.text == expected.text and "".join(streamed) == answer.text
    assert answer.num_prompt_tokens == expected.num_prompt_tokens
    assert engine._media_kwargs  # the clip's own fps was taken (cosmos-ros serve trusts its robots)


def test_a_flood_beyond_one_at_a_time_is_queued_and_nothing_is_lost(vllm_server):
    engine = remote(vllm_server)
    prompt = next_subtask_prompt("stack the blocks", ["grasp the red block", "place it"])
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda s: engine.reason(clip_of(s), prompt, max_new_tokens=16), range(6)))
    assert len(answers) == 6 and all(a.text for a in answers)


def test_a_model_the_server_does_not_serve_is_a_clear_error(vllm_server):
    with pytest.raises(RemoteEngineError, match=r"HTTP 404.*'cosmos-reason1-7b'"):
        remote(vllm_server, "cosmos-reason1-7b", max_retries=0).reason(clip_of(0), failure_prompt("x"), max_new_tokens=4)


def test_a_wrong_url_is_a_clear_error_that_names_it(vllm_server):
    wrong_path = vllm_server.url.replace("/v1", "/v2")
    with pytest.raises(RemoteEngineError, match=rf"{wrong_path}.*HTTP 404"):
        remote(vllm_server, url=wrong_path, max_retries=0).reason(clip_of(0), failure_prompt("x"), max_new_tokens=4)
    nobody = "http://127.0.0.1:9/v1"  # the discard port: nothing listens
    with pytest.raises(RemoteEngineError, match=rf"cannot reach {nobody}"):
        remote(vllm_server, url=nobody, max_retries=0).reason(clip_of(0), failure_prompt("x"), max_new_tokens=4)


def test_a_refused_key_is_a_clear_error_naming_its_variable(vllm_server, monkeypatch):
    monkeypatch.setenv("WRONG_FLEET_KEY", "not-the-key")
    engine = OpenAIEngine(NAME, server_url=vllm_server.url, api_key_env="WRONG_FLEET_KEY", max_retries=0)
    with pytest.raises(RemoteEngineError, match=r"refused the API key \(HTTP 401; the key comes from \$WRONG_FLEET_KEY"):
        engine.reason(clip_of(0), failure_prompt("x"), max_new_tokens=4)

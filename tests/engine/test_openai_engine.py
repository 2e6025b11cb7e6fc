"""engine:=openai against an OpenAI-compatible server on 127.0.0.1 (tests/openai_server.py, which
answers with our torch engine): the same answers as the local engine, streamed, with
confidence; 429 / 503 are BUSY, every other failure an error that names the URL and the cause;
a server that comes back is used again."""

from __future__ import annotations

import math
import socket

import numpy as np
import pytest

from cosmos_ros.core.prompts import REASONING_AFTER_THINK, failure_prompt, next_subtask_prompt
from cosmos_ros.core.types import Clip
from cosmos_ros.engine.base import EngineBusyError, create_engine
from cosmos_ros.core.answers import parse_answer
from cosmos_ros.engine.openai_engine import OpenAIEngine, RemoteEngineError, ThinkTags, answer_format_of
from cosmos_ros.engine.torch_engine import TorchEngine
from cosmos_ros.resources import data_dirs

pytest.importorskip("openai")
from openai_server import ChatServer, decode_video_url

SHIPPED = data_dirs("model")[0] / "cosmos-reason1-tiny"


@pytest.fixture(scope="module")
def local():
    return TorchEngine(str(SHIPPED))


@pytest.fixture
def server(local):
    server = ChatServer(local, "cosmos-reason1-tiny").start()
    yield server
    server.stop()
    assert not server.errors, server.errors


def clip_of(frames=6, seed=0, fps=4.0) -> Clip:
    pixels = np.random.default_rng(seed).integers(0, 256, (frames, 112, 112, 3), dtype=np.uint8)
    return Clip(frames=pixels, stamps=10.0 + np.arange(frames) / fps, fps=fps)


def engine_for(server, **kw) -> OpenAIEngine:
    return OpenAIEngine(server.served_model, server_url=server.url, **{"max_retries": 0, **kw})


def test_answers_equal_the_local_engines_on_the_clip_the_server_received(server, local):
    engine = engine_for(server)
    clip, prompt = clip_of(), failure_prompt("put the red block on the green pad")
    streamed = []
    remote = engine.reason(clip, prompt, max_new_tokens=48, on_token=streamed.append)
    request = server.requests[-1]
    video = request["messages"][1]["content"][0]["video_url"]["url"]
    received = decode_video_url(video, fps=4.0)  # JPEG on the wire: compare on what arrived
    expected = local.reason(received, prompt, max_new_tokens=48)
    assert remote.text == expected.text and "".join(streamed) == remote.text
    assert remote.num_prompt_tokens == expected.num_prompt_tokens > 0
    assert remote.finish_reason == expected.finish_reason
    assert math.isclose(remote.confidence, expected.confidence, rel_tol=1e-6) or (
        math.isnan(remote.confidence) and math.isnan(expected.confidence)
    )
    assert remote.model_id.startswith("cosmos-reason1-tiny@") and remote.answer_format == "tags"


def test_the_request_is_in_cosmos_conventions_with_every_frame_at_the_clips_rate(server):
    engine = engine_for(server)
    prompt = next_subtask_prompt("stack the blocks", ["grasp the red block", "place it"])
    engine.reason(clip_of(frames=7, fps=5.0), prompt, max_new_tokens=4, temperature=0.0)
    request = server.requests[-1]
    system, user = request["messages"]
    assert system == {"role": "system", "content": prompt.system}
    assert [part["type"] for part in user["content"]] == ["video_url", "text"]  # media first
    assert user["content"][1]["text"] == prompt.text
    url = user["content"][0]["video_url"]["url"]
    assert url.startswith("data:video/jpeg;base64,") and url.count(",") == 7  # every frame
    assert request["media_io_kwargs"] == {"video": {"fps": 5.0, "num_frames": -1}}
    assert request["temperature"] == 0.0 and request["stream"] is True and request["logprobs"] is True


def test_a_server_that_refuses_per_request_media_settings_is_asked_without_them(server, caplog):
    server.mode = "no_media_kwargs"
    engine = engine_for(server)
    prompt = next_subtask_prompt("stack the blocks", ["grasp the red block", "place it"])
    with caplog.at_level("WARNING", logger="cosmos_ros.engine.openai_engine"):
        first = engine.reason(clip_of(fps=5.0), prompt, max_new_tokens=24)
        second = engine.reason(clip_of(seed=1, fps=5.0), prompt, max_new_tokens=24)
    assert first.text and second.text
    assert server.attempts == 3  # refused once, then asked without them, and so on
    assert all("media_io_kwargs" not in request for request in server.requests)
    warnings = [r.getMessage() for r in caplog.records if "per-request media settings" in r.getMessage()]
    assert len(warnings) == 1 and server.url.rstrip("/") in warnings[0] and "(5)" in warnings[0]


def test_other_bad_requests_are_not_retried_without_media_settings(server, monkeypatch):
    engine = engine_for(server)
    prompt = next_subtask_prompt("stack the blocks", ["grasp the red block", "place it"])
    with pytest.raises(RemoteEngineError, match="HTTP 400"):
        engine.reason(clip_of(), prompt, max_new_tokens=10**9)  # the server's own refusal, named
    assert server.attempts == 1


def test_a_reason2_model_is_asked_and_read_in_its_own_format(local):
    assert answer_format_of("nvidia/Cosmos-Reason2-8B") == answer_format_of("qwen3-vl") == "after_think"
    assert answer_format_of("nvidia/Cosmos-Reason1-7B") == "tags"
    server = ChatServer(local, "Cosmos-Reason2-2B").start()
    try:
        reasoning = engine_for(server).reason(clip_of(), failure_prompt("open the drawer"), max_new_tokens=4)
        assert server.requests[-1]["messages"][1]["content"][1]["text"].endswith(REASONING_AFTER_THINK)
        assert reasoning.answer_format == "after_think"
    finally:
        server.stop()


def test_a_reasoning_parsers_split_reply_is_read_as_the_model_wrote_it(local):
    server = ChatServer(local, "m", reasoning_parser=True).start()
    try:
        clip, prompt = clip_of(seed=3), failure_prompt("put the red block on the green pad")
        remote = engine_for(server).reason(clip, prompt, max_new_tokens=64)
        received = decode_video_url(server.requests[-1]["messages"][1]["content"][0]["video_url"]["url"], fps=4.0)
        expected = local.reason(received, prompt, max_new_tokens=64)
        mine, theirs = parse_answer(remote.text, prompt.options), parse_answer(expected.text, prompt.options)
        assert (mine.status, mine.choice_index, mine.think) == (theirs.status, theirs.choice_index, theirs.think)
        assert mine.choice_index >= 0  # the shipped model answers this one
    finally:
        server.stop()


def test_streamed_reasoning_goes_back_inside_think_tags_in_order():
    from openai.types.chat.chat_completion_chunk import ChoiceDelta

    tags = ThinkTags()
    parts = [{"reasoning_content": "the cube"}, {"reasoning": " slipped"}, {"content": "A"}, {"content": "."}]
    text = "".join(tags.delta(ChoiceDelta.model_validate(p)) for p in parts)
    assert text == "<think>\nthe cube slipped\n</think>\n\nA."
    plain = ThinkTags()  # a server without a reasoning parser: the text passes as it is
    assert plain.delta(ChoiceDelta.model_validate({"content": "<think>\nx\n</think>\n\nB"})) == "<think>\nx\n</think>\n\nB"


def test_without_a_name_the_servers_only_model_is_used(server):
    engine = OpenAIEngine("", server_url=server.url, max_retries=0)
    engine.reason(clip_of(), failure_prompt("lift the box"), max_new_tokens=2)
    assert server.requests[-1]["model"] == "cosmos-reason1-tiny"


@pytest.mark.parametrize("status", ["429", "503"])
def test_a_server_at_capacity_is_busy_after_bounded_retries(server, status):
    server.mode = status
    engine = engine_for(server, max_retries=1)
    with pytest.raises(EngineBusyError, match=f"{server.url}.*HTTP {status}"):
        engine.reason(clip_of(), failure_prompt("lift the box"), max_new_tokens=2)
    assert server.attempts == 2  # the first try and one retry, with the client's backoff


def test_a_refused_key_names_the_variable_it_came_from(local, monkeypatch):
    server = ChatServer(local, "m", api_key="right").start()
    try:
        monkeypatch.setenv("ROBOT_KEY", "wrong")
        with pytest.raises(RemoteEngineError, match=r"refused the API key \(HTTP 401; the key comes from \$ROBOT_KEY\)"):
            engine_for(server, api_key_env="ROBOT_KEY").reason(clip_of(), failure_prompt("x"), max_new_tokens=2)
        monkeypatch.setenv("ROBOT_KEY", "right")
        assert engine_for(server, api_key_env="ROBOT_KEY").reason(clip_of(), failure_prompt("x"), max_new_tokens=2)
    finally:
        server.stop()


def test_a_model_the_server_does_not_serve_is_named(server):
    engine = OpenAIEngine("cosmos-reason1-7b", server_url=server.url, max_retries=0)
    with pytest.raises(RemoteEngineError, match=r"HTTP 404.*'cosmos-reason1-7b'"):
        engine.reason(clip_of(), failure_prompt("x"), max_new_tokens=2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_server_is_an_error_then_used_once_it_is_up(local):
    port = _free_port()
    engine = OpenAIEngine("m", server_url=f"http://127.0.0.1:{port}/v1", max_retries=0, connect_timeout_s=1.0)
    with pytest.raises(RemoteEngineError, match=f"cannot reach http://127.0.0.1:{port}/v1"):
        engine.reason(clip_of(), failure_prompt("x"), max_new_tokens=2)
    server = ChatServer(local, "m", port=port).start()
    try:
        assert engine.reason(clip_of(), failure_prompt("x"), max_new_tokens=2).text
    finally:
        server.stop()


def test_a_server_that_stops_answering_times_out(server):
    server.mode = "stall"
    engine = engine_for(server, read_timeout_s=0.5)
    with pytest.raises(RemoteEngineError, match="did not answer in time"):
        engine.reason(clip_of(), failure_prompt("x"), max_new_tokens=2)


def test_bad_settings_are_refused_before_any_request():
    with pytest.raises(ValueError, match="server_url must be an http"):
        create_engine("openai", "m", server_url="gpu-box:8000")
    with pytest.raises(ValueError, match="video_format"):
        OpenAIEngine("m", server_url="http://127.0.0.1:1/v1", video_format="gif")


def test_a_robot_on_the_remote_engine_loads_no_torch():
    """A robot that cannot hold a model should not hold torch either (≈ 200 MB of it)."""
    import subprocess
    import sys

    code = """
import sys
import numpy as np
from cosmos_ros.nodes import reasoner  # the node, as a robot runs it
from cosmos_ros.core.answers import parse_answer
from cosmos_ros.core.prompts import failure_prompt
from cosmos_ros.core.types import Clip
from cosmos_ros.engine.base import create_engine
from cosmos_ros.engine.openai_engine import RemoteEngineError

engine = create_engine("openai", "cosmos-reason1-tiny", server_url="http://127.0.0.1:9/v1", max_retries=0)
clip = Clip(frames=np.zeros((4, 32, 32, 3), np.uint8), stamps=np.arange(4) / 4.0, fps=4.0)
try:
    engine.reason(clip, failure_prompt("put the red block on the green pad"), max_new_tokens=8)
except RemoteEngineError:
    pass  # nothing listens there: the request was built and sent all the same
parse_answer("<think>\\n</think>\\n\\n<answer>\\nA\\n</answer>", ["yes", "no"])
loaded = sorted(m for m in ("torch", "transformers") if m in sys.modules)
print(" ".join(loaded) or "none")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == "none", done.stdout

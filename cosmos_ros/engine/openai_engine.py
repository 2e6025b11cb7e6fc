"""The remote backend: a model served once, for many robots, behind the OpenAI chat-completions API
(vLLM's `vllm serve`, TensorRT-LLM's `trtllm-serve`, NVIDIA NIM).

    engine = create_engine("openai", "", server_url="http://gpu-box:8000/v1")
    engine.reason(clip, prompt, max_new_tokens=256, on_token=print)

The same `Engine.reason` contract as the local backends:

- the clip goes as one video content part, its frames JPEG-encoded in one data URL
  (`data:video/jpeg;base64,<f1>,<f2>,...`: every frame kept) or as an mp4 (`video_format`), with
  its own frame rate (`media_io_kwargs`, so the server neither resamples nor re-times it);
- the prompt in our Cosmos conventions: system turn, then the user turn with the video before
  the text, the reasoning add-on worded for the model line (`answer_format`: Cosmos-Reason2's
  answer follows </think>);
- greedy (temperature 0) or sampled with a seed; the reply streams, each delta to `on_token`
  (the Reason action's feedback), and the answer tokens' logprobs give the confidence.

Failures never kill the caller's node: connect and read timeouts and bounded retries with
backoff are the `openai` client's own; HTTP 429 and 503 raise `EngineBusyError` (the worker
answers the request BUSY); an unreachable server, a wrong URL, a model the server does not serve
or a refused API key raise `RemoteEngineError` naming the URL and the cause (ERROR). Nothing is
contacted at construction, so a robot that starts before its server answers ERROR until the
server is up, then answers.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np

from cosmos_ros.core.prompts import for_answer_format
from cosmos_ros.core.types import Clip, Prompt, Reasoning
from cosmos_ros.engine.base import Engine, EngineBusyError
from cosmos_ros.engine.decoding import answer_confidence

_log = logging.getLogger(__name__)

DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
VIDEO_FORMATS = ("jpeg", "mp4")
# served names of Cosmos-Reason2 / Qwen3-VL checkpoints: their answer follows </think>
_AFTER_THINK_NAMES = re.compile(r"reason[-_ ]?2|qwen3", re.IGNORECASE)


class RemoteEngineError(RuntimeError):
    """The server could not answer: unreachable, wrong URL or model, refused credentials."""


def answer_format_of(served_model: str) -> str:
    """Where a served model writes its answer, from its name: "after_think" for Cosmos-Reason2 /
    Qwen3-VL, "tags" (Cosmos-Reason1) otherwise."""
    return "after_think" if _AFTER_THINK_NAMES.search(served_model or "") else "tags"


def encode_jpeg_frames(frames: np.ndarray, quality: int = 90) -> list[str]:
    """(T, H, W, 3) uint8 RGB → base64 JPEG of each frame."""
    import cv2

    out = []
    for frame in frames:
        ok, data = cv2.imencode(".jpg", np.ascontiguousarray(frame[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise ValueError(f"cannot JPEG-encode a frame of shape {frame.shape}")
        out.append(base64.b64encode(data.tobytes()).decode("ascii"))
    return out


def encode_mp4(frames: np.ndarray, fps: float) -> str:
    """(T, H, W, 3) uint8 RGB → base64 of an mp4 (OpenCV's mp4v) at `fps`."""
    import tempfile

    import cv2

    with tempfile.NamedTemporaryFile(suffix=".mp4") as file:
        height, width = frames.shape[1:3]
        writer = cv2.VideoWriter(file.name, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        if not writer.isOpened():
            raise ValueError("OpenCV cannot write mp4 here")
        for frame in frames:
            writer.write(np.ascontiguousarray(frame[..., ::-1]))
        writer.release()
        return base64.b64encode(open(file.name, "rb").read()).decode("ascii")


def video_part(clip: Clip, video_format: str = "jpeg") -> tuple[dict, float]:
    """The clip as an OpenAI `video_url` content part, and the frame rate it is sent at."""
    fps = clip.rate(4.0)  # Clip.rate, not the processors' module: a remote robot needs no torch
    if video_format == "jpeg":
        url = "data:video/jpeg;base64," + ",".join(encode_jpeg_frames(clip.frames))
    elif video_format == "mp4":
        url = "data:video/mp4;base64," + encode_mp4(clip.frames, fps)
    else:
        raise ValueError(f"video_format must be one of {VIDEO_FORMATS}, got {video_format!r}")
    return {"type": "video_url", "video_url": {"url": url}}, fps


def chat_messages(prompt: Prompt, video: dict, answer_format: str) -> list[dict]:
    """System turn, user turn with the video before the text (Cosmos convention)."""
    prompt = for_answer_format(prompt, answer_format)
    return [
        {"role": "system", "content": prompt.system},
        {"role": "user", "content": [video, {"type": "text", "text": prompt.text}]},
    ]


class OpenAIEngine(Engine):
    """model: the served model's name as the server knows it (`vllm serve DIR
    --served-model-name NAME`); "" asks the server (`/v1/models`) and takes its only model.

    server_url: the API's base URL, e.g. http://gpu-box:8000/v1. api_key_env: the environment
    variable holding the API key (a server without keys takes any). answer_format: "tags" /
    "after_think"; None reads it from the served name (`answer_format_of`). video_format:
    "jpeg" (one data URL of JPEG frames) or "mp4". connect_timeout_s / read_timeout_s: per
    attempt (a read covers the wait between streamed tokens); max_retries: attempts after the
    first on a connection error, 408, 429 or 5xx, with the client's exponential backoff.
    device and the local engines' keywords do not apply (a fallback passes none of them).
    """

    def __init__(
        self,
        model: str = "",
        device: str = "cpu",
        *,
        server_url: str,
        api_key_env: str = DEFAULT_API_KEY_ENV,
        answer_format: str | None = None,
        video_format: str = "jpeg",
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 120.0,
        max_retries: int = 2,
        seed: int = 0,
    ):
        import openai

        if not server_url or not re.match(r"^https?://", server_url):
            raise ValueError(f"server_url must be an http(s) URL such as http://gpu-box:8000/v1, got {server_url!r}")
        if video_format not in VIDEO_FORMATS:
            raise ValueError(f"video_format must be one of {VIDEO_FORMATS}, got {video_format!r}")
        self.server_url = server_url.rstrip("/")
        self.served_model = model or ""
        self.video_format = video_format
        self.seed = seed
        self._answer_format = answer_format
        self._client = openai.OpenAI(
            base_url=self.server_url,
            api_key=os.environ.get(api_key_env) or "EMPTY",  # vLLM without --api-key takes any key
            timeout=openai.Timeout(read_timeout_s, connect=connect_timeout_s),
            max_retries=max_retries,
        )
        self._api_key_env = api_key_env
        self._lock = threading.Lock()
        self._media_kwargs = True  # per-request media settings (the clip's fps); off once a server refuses them
        digest = hashlib.sha256(f"{self.server_url} {self.served_model}".encode()).hexdigest()[:8]
        self._model_id = f"{self.served_model or 'served'}@{digest}"

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def answer_format(self) -> str:
        return self._answer_format or answer_format_of(self.served_model)

    def close(self) -> None:
        self._client.close()

    def _model_name(self) -> str:
        """The served model: the one asked for, else the server's only one (asked once)."""
        with self._lock:
            if not self.served_model:
                models = [m.id for m in self._call(lambda: list(self._client.models.list()))]
                if len(models) != 1:
                    raise RemoteEngineError(
                        f"{self.server_url} serves {len(models)} models ({', '.join(models) or 'none'}); "
                        "name one with the served model name"
                    )
                self.served_model = models[0]
            return self.served_model

    def _call(self, request: Callable):
        """`request()`, its failures in our terms: EngineBusyError or RemoteEngineError."""
        import openai

        try:
            return request()
        except openai.RateLimitError as exc:
            raise EngineBusyError(f"{self.server_url} is at capacity (HTTP 429): {_detail(exc)}") from exc
        except openai.AuthenticationError as exc:
            raise RemoteEngineError(
                f"{self.server_url} refused the API key (HTTP 401; the key comes from ${self._api_key_env}): "
                f"{_detail(exc)}"
            ) from exc
        except openai.NotFoundError as exc:
            raise RemoteEngineError(
                f"{self.server_url} has no such model or route (HTTP 404) for model {self.served_model!r}: "
                f"{_detail(exc)}"
            ) from exc
        except openai.APIStatusError as exc:
            if exc.status_code == 503:
                raise EngineBusyError(f"{self.server_url} is unavailable (HTTP 503): {_detail(exc)}") from exc
            raise RemoteEngineError(f"{self.server_url} answered HTTP {exc.status_code}: {_detail(exc)}") from exc
        except openai.APITimeoutError as exc:
            raise RemoteEngineError(f"{self.server_url} did not answer in time: {exc}") from exc
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            raise RemoteEngineError(f"cannot reach {self.server_url}: {cause}") from exc

    def _open_stream(self, request: dict, fps: float):
        """The streamed completion. A server that refuses per-request media settings (vLLM
        started without --trust-request-mm-kwargs answers HTTP 400 naming media_io_kwargs) is
        asked again without them, from then on: it then times each clip at its own video fps
        (`cosmos-ros serve` sets Cosmos-Reason's 4), which is said once in the log."""
        try:
            return self._call(lambda: self._client.chat.completions.create(**request))
        except RemoteEngineError as exc:
            if "extra_body" not in request or "HTTP 400" not in str(exc) or "media_io_kwargs" not in str(exc):
                raise
        self._media_kwargs = False
        _log.warning(
            "%s refuses per-request media settings: clips go without their fps (%.3g), so the server "
            "times them at its own default; start it with --trust-request-mm-kwargs (cosmos-ros serve does) "
            "to send each clip's rate",
            self.server_url,
            fps,
        )
        request = {k: v for k, v in request.items() if k != "extra_body"}
        return self._call(lambda: self._client.chat.completions.create(**request))

    def _chunks(self, stream):
        """The stream's chunks as they arrive; a connection lost mid-stream is a RemoteEngineError."""
        iterator = iter(stream)
        while True:
            try:
                chunk = self._call(lambda: next(iterator))
            except StopIteration:
                return
            except (EngineBusyError, RemoteEngineError):
                raise
            except Exception as exc:  # the HTTP client's own read errors (connection reset, ...)
                raise RemoteEngineError(f"{self.server_url} dropped the reply mid-stream: {exc}") from exc
            yield chunk

    def reason(
        self,
        clip: Clip,
        prompt: Prompt,
        *,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        on_token: Callable[[str], None] | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        stop: Sequence[str] = (),
    ) -> Reasoning:
        """See `Engine.reason`. None for max_new_tokens / temperature / top_p: 256 tokens, greedy,
        1.0. stop: strings that end the text (the server keeps them out; they are put back, as
        the local engines keep them)."""
        start = time.perf_counter()
        video, fps = video_part(clip, self.video_format)
        answer_format = self.answer_format
        messages = chat_messages(prompt, video, answer_format)
        preprocess_s = time.perf_counter() - start
        temperature = 0.0 if temperature is None else float(temperature)
        request = {
            "model": self._model_name(),
            "messages": messages,
            "max_tokens": 256 if max_new_tokens is None else int(max_new_tokens),
            "temperature": temperature,
            "top_p": 1.0 if top_p is None or temperature == 0 else float(top_p),
            "seed": self.seed if seed is None else int(seed),
            "stream": True,
            "stream_options": {"include_usage": True},
            "logprobs": True,
            **({"stop": list(stop)} if stop else {}),
        }
        if self._media_kwargs:
            # every frame, at the clip's own rate: no resampling or re-timing on the server
            request["extra_body"] = {"media_io_kwargs": {"video": {"fps": fps, "num_frames": -1}}}
        text, spans, probs = "", [], []
        finish, usage, first_token, matched = "length", None, None, None
        thinking = ThinkTags()
        stream = self._open_stream(request, fps)
        with stream:
            for chunk in self._chunks(stream):
                if chunk.usage is not None:
                    usage = chunk.usage
                for choice in chunk.choices:
                    delta = thinking.delta(choice.delta)
                    logprobs = choice.logprobs.content if choice.logprobs and choice.logprobs.content else []
                    span = (len(text), len(text) + len(delta))
                    for item in logprobs:
                        spans.append(span)
                        probs.append(float(np.exp(item.logprob)))
                    if delta:
                        first_token = first_token or time.perf_counter()
                        text += delta
                        if on_token is not None:
                            on_token(delta)
                    if choice.finish_reason:
                        finish = "stop" if choice.finish_reason == "stop" else "length"
                        matched = getattr(choice, "stop_reason", None)  # vLLM names the stop string it hit
        if stop and finish == "stop" and isinstance(matched, str) and matched in stop:
            text += matched
            if on_token is not None:
                on_token(matched)
        end = time.perf_counter()
        first_token = first_token or end
        return Reasoning(
            text=text,
            confidence=answer_confidence(text, spans, probs, answer_format),
            num_prompt_tokens=usage.prompt_tokens if usage else 0,
            num_generated_tokens=usage.completion_tokens if usage else len(probs),
            latency_s=end - start,
            model_id=self.model_id,
            finish_reason=finish,
            token_probs=probs,
            stages={"preprocess": preprocess_s, "prefill": first_token - start - preprocess_s, "decode": end - first_token},
            answer_format=answer_format,
        )


class ThinkTags:
    """A server run with a reasoning parser (vLLM's `--reasoning-parser qwen3`) streams the
    reasoning apart from the answer (`reasoning_content`, or `reasoning` in newer vLLM); this
    puts it back inside <think> tags, in order, so the text reads as the model wrote it."""

    def __init__(self):
        self.state = "before"  # before any reasoning, inside it, after it

    def delta(self, delta) -> str:
        extra = getattr(delta, "model_extra", None) or {}
        reasoning = extra.get("reasoning_content") or extra.get("reasoning") or ""
        content = delta.content or ""
        out = ""
        if reasoning:
            out += "<think>\n" if self.state == "before" else ""
            self.state = "inside"
            out += reasoning
        if content:
            out += "\n</think>\n\n" if self.state == "inside" else ""
            self.state = "after" if self.state != "before" else "before"
            out += content
        return out


def _detail(exc) -> str:
    """The server's own error message where its body has one (OpenAI: {"error": {"message"}})."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error")
        message = error.get("message") if isinstance(error, dict) else body.get("message")
        if message:
            return str(message)
    return str(getattr(exc, "message", exc))

"""A small OpenAI-compatible chat-completions server for tests, backed by one of our torch engines.

It speaks the part of the API `engine:=openai` uses, the way vLLM answers it: `GET /v1/models`,
`POST /v1/chat/completions` with a `video_url` data URL of JPEG frames (or an mp4), streamed as
server-sent events with per-token logprobs and a final usage chunk. It checks the bearer key
(401), the model name (404) and can be told to answer 429 / 503 or to stall, so the client's
error handling is exercised against real HTTP. The real-server tests (`tests/engine/
test_vllm_server.py`) run the same client against vLLM itself.
"""

from __future__ import annotations

import base64
import json
import math
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

from cosmos_ros.core.types import Clip, Prompt


def decode_video_url(url: str, fps: float) -> Clip:
    """A `data:video/jpeg;base64,<f1>,<f2>,...` URL → the clip of its frames at `fps`."""
    head, _, payload = url.partition(",")
    if head != "data:video/jpeg;base64":
        raise ValueError(f"this test server reads JPEG-frame video URLs only, got {head!r}")
    frames = []
    for part in payload.split(","):
        image = cv2.imdecode(np.frombuffer(base64.b64decode(part), np.uint8), cv2.IMREAD_COLOR)
        frames.append(image[..., ::-1])
    return Clip(frames=np.stack(frames), stamps=np.arange(len(frames)) / fps)


class ChatServer:
    """`ChatServer(engine, "served-name").start()` → serving on http://127.0.0.1:<port>/v1.

    mode: "ok", "429", "503", "stall" (never answers) or "no_media_kwargs" (refuses per-request
    media settings with HTTP 400, as vLLM does unless started with --trust-request-mm-kwargs),
    switchable while it runs. Each request
    it answered is kept in `requests` (the parsed JSON body)."""

    def __init__(self, engine, served_model: str, *, api_key: str | None = None, port: int = 0,
                 reasoning_parser: bool = False):  # fmt: skip
        """reasoning_parser: stream the think block as `reasoning_content`, the answer as
        `content`, as vLLM does with `--reasoning-parser qwen3`."""
        self.engine, self.served_model, self.api_key = engine, served_model, api_key
        self.reasoning_parser = reasoning_parser
        self.mode = "ok"
        self.max_model_len = 4096
        self.attempts = 0  # chat requests received, answered or not
        self.errors: list[BaseException] = []  # what went wrong handling a request (tests assert none)
        self.requests: list[dict] = []
        self.lock = threading.Lock()  # one generation at a time, as a one-slot server
        self._port = port
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}/v1"

    def start(self) -> ChatServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                if not server._authorized(self):
                    return
                if self.path.rstrip("/") == "/v1/models":
                    return server._json(self, 200, {"object": "list", "data": [{"id": server.served_model, "object": "model"}]})
                server._json(self, 404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self):
                if not server._authorized(self):
                    return
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return server._json(self, 404, {"error": {"message": f"no route {self.path}"}})
                server._complete(self, body)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                error = sys.exc_info()[1]
                if not isinstance(error, (BrokenPipeError, ConnectionResetError)):  # a client that left early
                    server.errors.append(error)

        self._httpd = Server(("127.0.0.1", self._port), Handler)
        self._httpd.daemon_threads = True
        self._port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def _authorized(self, handler) -> bool:
        if self.api_key is None or handler.headers.get("Authorization") == f"Bearer {self.api_key}":
            return True
        self._json(handler, 401, {"error": {"message": "Invalid API key", "type": "authentication_error"}})
        return False

    @staticmethod
    def _json(handler, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _complete(self, handler, body: dict) -> None:
        self.attempts += 1
        if self.mode in ("429", "503"):
            message = "Too many requests" if self.mode == "429" else "Service unavailable"
            return self._json(handler, int(self.mode), {"error": {"message": message}})
        if self.mode == "stall":
            threading.Event().wait(60)
            return None
        if self.mode == "no_media_kwargs" and "media_io_kwargs" in body:  # vLLM without --trust-request-mm-kwargs
            message = ("Per-request media_io_kwargs are disabled by default because they can change multimodal "
                       "media loading resource usage. Start the server with --trust-request-mm-kwargs only when "
                       "clients are trusted. (parameter=media_io_kwargs)")  # fmt: skip
            return self._json(handler, 400, {"error": {"message": message, "type": "BadRequestError"}})
        if body.get("model") != self.served_model:
            return self._json(handler, 404, {"error": {"message": f"The model `{body.get('model')}` does not exist."}})
        if body.get("max_tokens", 0) > self.max_model_len:  # vLLM's check of the context length
            message = f"max_tokens ({body['max_tokens']}) is larger than the model's context ({self.max_model_len})"
            return self._json(handler, 400, {"error": {"message": message, "type": "BadRequestError"}})
        self.requests.append(body)
        system, user = body["messages"][0], body["messages"][1]
        video = next(p for p in user["content"] if p["type"] == "video_url")
        text = next(p for p in user["content"] if p["type"] == "text")
        fps = body.get("media_io_kwargs", {}).get("video", {}).get("fps", 4.0)
        clip = decode_video_url(video["video_url"]["url"], fps)
        prompt = Prompt(text=text["text"], system=system["content"])
        with self.lock:
            deltas: list[str] = []
            reasoning = self.engine.reason(
                clip, prompt, max_new_tokens=body["max_tokens"], temperature=body["temperature"],
                on_token=deltas.append, seed=body.get("seed"),
            )  # fmt: skip
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()

        def send(payload) -> None:
            data = f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n".encode()
            handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            handler.wfile.flush()

        probs = reasoning.token_probs if len(reasoning.token_probs) == len(deltas) else [None] * len(deltas)
        base = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 0, "model": self.served_model}
        split = re.fullmatch(r"<think>\n(.*?)\n</think>\n\n(.*)", reasoning.text, re.DOTALL)
        if self.reasoning_parser and split:
            for field, part in (("reasoning_content", split.group(1)), ("content", split.group(2))):
                send({**base, "choices": [{"index": 0, "delta": {field: part}, "logprobs": None, "finish_reason": None}]})
            deltas, probs = [], []
        for delta, prob in zip(deltas, probs):
            logprobs = None if prob is None else {"content": [{"token": delta, "logprob": math.log(max(prob, 1e-300)),
                                                               "bytes": list(delta.encode()), "top_logprobs": []}]}  # fmt: skip
            send({**base, "choices": [{"index": 0, "delta": {"content": delta}, "logprobs": logprobs, "finish_reason": None}]})
        finish = "stop" if reasoning.finish_reason == "stop" else "length"
        send({**base, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}]})
        usage = {"prompt_tokens": reasoning.num_prompt_tokens, "completion_tokens": reasoning.num_generated_tokens,
                 "total_tokens": reasoning.num_prompt_tokens + reasoning.num_generated_tokens}  # fmt: skip
        send({**base, "choices": [], "usage": usage})
        send("[DONE]")
        handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()
        return None

"""A real vLLM server for tests: `cosmos-ros serve --device cpu` on 127.0.0.1 with the shipped tiny
model, its API key from KEY_ENV. vLLM lives in its own virtual environment:
$COSMOS_ROS_VLLM_PYTHON, else .vllm/bin/python in the repository (`.ci/vllm_env` makes it).
`python_or_skip()` skips, with the reason, where there is none or where its video path cannot run
(vLLM's Qwen2.5-VL imports torchvision, which fails to import beside a mismatched torch)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from cosmos_ros.resources import data_dirs

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = data_dirs("model")[0] / "cosmos-reason1-tiny"
NAME = "cosmos-reason1-tiny"
KEY_ENV = "COSMOS_ROS_TEST_VLLM_KEY"  # the server's key and its robots' (engine:=openai api_key_env)
KEY = "fleet-test-key"


def vllm_python() -> tuple[str | None, str]:
    """(the vLLM environment's python, "") or (None, why there is none that can serve here)."""
    python = os.environ.get("COSMOS_ROS_VLLM_PYTHON") or str(ROOT / ".vllm" / "bin" / "python")
    if not Path(python).is_file():
        return (
            None,
            f"no vLLM environment (set COSMOS_ROS_VLLM_PYTHON or run .ci/vllm_env to create {ROOT / '.vllm'})",
        )
    check = subprocess.run([python, "-c", "import vllm, torchvision.transforms.v2"], capture_output=True, text=True,
                           timeout=300, check=False)  # fmt: skip
    if check.returncode != 0:
        last = (check.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"vLLM at {python} cannot run a video model here: {last}"
    return python, ""


def python_or_skip() -> str:
    python, why = vllm_python()
    if python is None:
        pytest.skip(why)
    return python


class EarlyServer:
    """A server started in the background as soon as the run knows a test will need it, so that
    vLLM's minute or more of start-up overlaps the tests before that one. `result()` waits for it:
    the server, or that test's skip (no vLLM here) or failure (it did not come up)."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.server: VllmServer | None = None
        self.why = self.error = ""
        self.stopping = False
        self.thread = threading.Thread(target=self._start, name="vllm-start", daemon=True)
        self.thread.start()

    def _start(self) -> None:
        python, self.why = vllm_python()
        if python is None or self.stopping:
            return
        self.server = VllmServer(python, self.log_dir)
        try:
            self.server.start()
        except (OSError, pytest.fail.Exception) as e:  # start() fails the test with the server's log
            self.error = str(e)

    def result(self) -> VllmServer:
        self.thread.join()
        if self.why:
            pytest.skip(self.why)
        if self.error:
            pytest.fail(self.error)
        return self.server

    def stop(self) -> None:
        """Stops the server, also one still starting (a run that ended before any test used it)."""
        self.stopping = True
        if self.server is not None:
            self.server.stop()
        self.thread.join(timeout=60)


class VllmServer:
    """`VllmServer(python, log_dir).start()`; `stop()` kills it (and its engine processes),
    `start()` again serves on the same port."""

    def __init__(self, python: str, log_dir: Path):
        self.python, self.log = python, log_dir / "serve.log"
        self.cache = log_dir / "cache"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 300.0) -> VllmServer:
        command = [sys.executable, "-m", "cosmos_ros.cli", "serve", str(SHIPPED), "--device", "cpu",
                   "--host", "127.0.0.1", "--port", str(self.port), "--max-model-len", "4096",
                   "--vllm-python", self.python, "--api-key-env", KEY_ENV]  # fmt: skip
        env = {**os.environ, "XDG_CACHE_HOME": str(self.cache), KEY_ENV: KEY}
        with open(self.log, "a") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            try:
                request = urllib.request.Request(
                    f"{self.url}/models", headers={"Authorization": f"Bearer {KEY}"}
                )
                urllib.request.urlopen(request, timeout=2).read()
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    tail = self.log.read_text(errors="replace")[-3000:]
                    self.stop()
                    pytest.fail(f"vLLM did not come up on {self.url}:\n{tail}")
                time.sleep(1)

    def stop(self) -> None:
        """SIGTERM to the server's process group, SIGKILL after 30 s; returns once the port is free."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # engine processes left behind
        except ProcessLookupError:
            pass
        self.process = None

"""Harness for cross-process ROS 2 tests: each test module gets its own ROS_DOMAIN_ID, the nodes
under test run as separate processes, and a probe node in the test process listens and asks."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy (ROS 2 wheels) is not installed")
pytest.importorskip("cosmos_ros.msg", reason="cosmos_ros interfaces are not built (pip install -e .)")

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402

from cosmos_ros.transport import configure_transport  # noqa: E402

HERE = Path(__file__).resolve().parent
pytestmark = pytest.mark.ros


def unique_domain_id() -> int:
    # 1..101 and 150..232 are valid domain ids on Linux with default ports; spread runs apart.
    return random.Random(os.getpid() ^ time.monotonic_ns()).randint(120, 230)


def child_env(domain_id: int) -> dict[str, str]:
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(domain_id)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH", "")) if p)
    configure_transport(env)
    return env


class Process:
    """A child process whose output is collected line by line."""

    def __init__(self, command: list[str], env: dict[str, str]):
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in iter(self.proc.stdout.readline, ""):
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=2)
        return self.proc.returncode


class Probe:
    """An rclpy node in the test process, on its own context and domain, spun in a thread."""

    def __init__(self, domain_id: int):
        configure_transport()
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("probe", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # context shut down mid-spin
                return

    def collect(self, msg_type, topic: str, qos=None) -> list:
        received: list = []
        qos = qos or QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(msg_type, topic, received.append, qos)
        return received

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=1)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        self._thread.join(timeout=2)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_future(future, timeout: float, what: str):
    wait_for(future.done, timeout, what)
    return future.result()


def call_idempotent(client, request, timeout: float, what: str, attempt_s: float = 3.0):
    """Calls a service whose request may be sent again (a query) until it answers. A first call made
    as soon as wait_for_service returns can lose its response: the server's request reader has
    matched, its response writer not yet the client's reader, so the request is served and the
    answer dropped. Another call after a few seconds gets through; so does a server whose executor
    was still busy starting."""
    deadline = time.monotonic() + timeout
    while True:
        future = client.call_async(request)
        attempt_end = min(deadline, time.monotonic() + attempt_s)
        while time.monotonic() < attempt_end:
            if future.done():
                return future.result()
            time.sleep(0.05)
        client.remove_pending_request(future)
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def diagnostic_values(arrays, name_suffix: str) -> dict[str, str]:
    """Key/values of the newest DiagnosticStatus whose name ends with name_suffix."""
    for array in reversed(arrays):
        for status in array.status:
            if status.name.endswith(name_suffix):
                return {kv.key: kv.value for kv in status.values}
    return {}


def start_node(module: str, env: dict[str, str], *ros_args: str) -> Process:
    return Process([sys.executable, "-m", module, "--ros-args", *ros_args], env)

"""The reasoner under bad input, in its own process: it never dies, counts and logs each cause
once, and keeps answering. Frames come from this test process; the engine is the scripted
plugin in scripted_engine.py so answers are fast and predictable."""

from __future__ import annotations

import array
import random
import threading
import time

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import DescribeParameters, SetParameters
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosharness import (
    Probe,
    child_env,
    diagnostic_values,
    start_node,
    unique_domain_id,
    wait_for,
    wait_future,
)
from sensor_msgs.msg import Image

from cosmos_ros.msg import SubtaskPrediction
from cosmos_ros.srv import Reason as ReasonService

pytestmark = [pytest.mark.ros, pytest.mark.slow]
Status = ReasonService.Response


def image(stamp, width=32, height=24, encoding="bgr8", data=None, step=None) -> Image:
    msg = Image(height=height, width=width, encoding=encoding, step=width * 3 if step is None else step)
    msg.header.stamp = stamp
    buf = array.array("B")
    buf.frombytes(np.full(msg.step * height, 90, np.uint8).tobytes() if data is None else data)
    msg.data = buf
    return msg


class Camera:
    """Publishes good frames at 20 Hz from the probe until paused."""

    def __init__(self, probe: Probe):
        self.probe = probe
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.pub = probe.node.create_publisher(Image, "/cam/image_raw", qos)
        self.running = threading.Event()
        self.running.set()
        self.offset_s = 0  # added to the stamps: a camera whose clock restarts behind or ahead
        self._stop = False
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def now(self):
        stamp = self.probe.node.get_clock().now().to_msg()
        stamp.sec += self.offset_s
        return stamp

    def _loop(self) -> None:
        while not self._stop:
            if self.running.is_set():
                self.pub.publish(image(self.now()))
            time.sleep(0.05)

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=2)


@pytest.fixture(scope="module")
def rig():
    domain = unique_domain_id()
    probe = Probe(domain)
    diagnostics = probe.collect(DiagnosticArray, "/diagnostics")
    predictions = probe.collect(SubtaskPrediction, "/reasoner/next_subtask")
    reasoner = start_node(
        "cosmos_ros.nodes.reasoner",
        child_env(domain),
        "-p", "cameras:=[cam]",
        "-p", "task:=stack the cubes",
        "-p", "subtask_options:=[pick the red cube, place it on the blue cube]",
        "-p", "engine:=scripted_engine:create",
        "-p", "rate_hz:=4.0",
        "-p", "stale_timeout_s:=3.0",
        "-p", "max_pending_requests:=8",
        "-p", "ingest_mode:=all",  # every frame: these tests count what happens to each one
    )  # fmt: skip
    camera = Camera(probe)
    client = probe.node.create_client(ReasonService, "/reasoner/reason", qos_profile=QoSProfile(depth=256))
    try:
        assert client.wait_for_service(timeout_sec=20), reasoner.output
        wait_for(
            lambda: any(p.status == SubtaskPrediction.STATUS_OK for p in predictions), 30, "a first answer"
        )
        # steady state: the first frames after discovery may be lost on the best-effort path
        wait_for(lambda: int(camera_values(diagnostics).get("accepted", "0")) >= 40, 20, "40 frames received")
        yield probe, camera, client, reasoner, diagnostics, predictions
    finally:
        camera.close()
        probe.close()
        code = reasoner.stop()
        assert code == 0, reasoner.output[-3000:]


def ask(client, question: str, **fields) -> ReasonService.Response:
    request = ReasonService.Request(question=question, **fields)
    return wait_future(client.call_async(request), 30, f"an answer to {question!r}")


def camera_values(diagnostics) -> dict[str, str]:
    return diagnostic_values(diagnostics, "camera cam")


def test_periodic_answers_carry_the_parsed_choice(rig):
    *_, predictions = rig
    ok = [p for p in predictions if p.status == SubtaskPrediction.STATUS_OK][-1]
    assert ok.choice_index == 0 and ok.subtask == "pick the red cube"
    assert ok.reasoning == "the ball rolls behind the box"
    assert ok.confidence == pytest.approx(0.9)
    assert ok.model_id == "scripted@0"


BAD_FRAMES = {
    "unknown_encoding": lambda stamp: image(stamp, encoding="bgr9"),
    "size_mismatch": lambda stamp: image(stamp, data=b"\x00" * 100),
    "empty": lambda stamp: image(stamp, width=0, height=0, data=b""),
    "too_large": lambda stamp: image(stamp, width=16384, height=16384, data=b"\x00" * 64),
    "bad_step": lambda stamp: image(stamp, step=10, data=b"\x00" * 240),
    "bad_aspect": lambda stamp: image(stamp, width=100000, height=1),  # the engine would refuse it
    "too_small": lambda stamp: image(stamp, width=4, height=4),
}


def test_malformed_frames_are_counted_per_cause_and_logged_once(rig):
    probe, camera, client, reasoner, diagnostics, _ = rig
    for _ in range(5):
        for make in BAD_FRAMES.values():
            camera.pub.publish(make(camera.now()))
            time.sleep(0.04)  # the subscription keeps 5 frames: do not outrun it

    def counted() -> bool:
        values = camera_values(diagnostics)
        return all(values.get(f"decode_errors.{cause}") == "5" for cause in BAD_FRAMES)

    wait_for(counted, 10, f"decode error counts, last: {camera_values(diagnostics)}")
    logged = [line for line in reasoner.lines if "dropping frames" in line]
    for cause in BAD_FRAMES:
        assert sum(f"({cause})" in line for line in logged) == 1, f"{cause}: {logged}"
    assert ask(client, "Is the cube on the table?", options=["yes", "no"]).status == Status.STATUS_OK


def test_nan_depth_frames_are_accepted_without_errors(rig):
    _, camera, client, _, diagnostics, _ = rig
    before = int(camera_values(diagnostics).get("accepted", "0"))
    depth = np.full((24, 32), np.nan, np.float32)
    depth[::2] = np.inf
    depth[1, :5] = 1.5
    for _ in range(3):
        camera.pub.publish(image(camera.now(), encoding="32FC1", step=32 * 4, data=depth.tobytes()))
        time.sleep(0.05)
    wait_for(
        lambda: int(camera_values(diagnostics).get("accepted", "0")) >= before + 3, 10, "accepted frames"
    )
    assert "decode_errors.bad_data" not in camera_values(diagnostics)


def test_out_of_order_stamps_are_counted_not_buffered(rig):
    _, camera, client, _, diagnostics, _ = rig

    def reordered() -> int:
        values = camera_values(diagnostics)
        return int(values.get("out_of_order", "0")) + int(values.get("duplicates", "0"))

    camera.running.clear()  # the newest frame stays put while the late ones arrive
    try:
        time.sleep(0.2)
        before = ask(client, "Which stamps does the clip hold?", window_s=1.0)
        assert before.status == Status.STATUS_OK, before.status_message
        assert before.reasoning.endswith(" 0.000000")  # stamps before the newest, listed by the engine
        end = before.clip_end
        # 0.25 s before the newest frame, on the 4 fps grid: the clip would take it if it were buffered
        stamp = Time(sec=end.sec, nanosec=end.nanosec - 250_000_000)
        if end.nanosec < 250_000_000:
            stamp = Time(sec=end.sec - 1, nanosec=end.nanosec + 750_000_000)
        counted = reordered()
        for _ in range(4):
            camera.pub.publish(image(stamp))
            time.sleep(0.02)
        wait_for(lambda: reordered() >= counted + 4, 10, "out-of-order counts")
        after = ask(client, "Which stamps does the clip hold?", window_s=1.0)
        assert after.status == Status.STATUS_OK, after.status_message
        assert (after.clip_end.sec, after.clip_end.nanosec) == (before.clip_end.sec, before.clip_end.nanosec)
        assert after.reasoning == before.reasoning
        assert "-0.250000" not in after.reasoning
    finally:
        camera.running.set()


def test_engine_failure_answers_error_and_the_next_request_is_served(rig):
    _, _, client, reasoner, diagnostics, _ = rig
    for _ in range(2):
        failed = ask(client, "Will it explode?")
        assert failed.status == Status.STATUS_ERROR
        assert "RuntimeError: scripted failure" in failed.status_message
    assert ask(client, "What is the robot holding?").status == Status.STATUS_OK
    wait_for(
        lambda: diagnostic_values(diagnostics, "engine").get("errors.engine.RuntimeError") == "2",
        5,
        "error count",
    )
    assert sum("scripted failure" in line for line in reasoner.lines) == 1  # logged once per cause


def test_a_hundred_concurrent_requests_are_all_answered(rig):
    _, _, client, _, _, _ = rig
    futures = [client.call_async(ReasonService.Request(question=f"question {i}?")) for i in range(100)]
    wait_for(lambda: all(f.done() for f in futures), 60, "100 answers")
    statuses = [f.result().status for f in futures]
    assert set(statuses) <= {Status.STATUS_OK, Status.STATUS_BUSY}
    assert statuses.count(Status.STATUS_OK) >= 8
    busy = [f.result() for f in futures if f.result().status == Status.STATUS_BUSY]
    assert all("try again" in r.status_message for r in busy)


def test_invalid_requests_are_refused_with_a_reason(rig):
    _, _, client, _, _, _ = rig
    unknown = ask(client, "Where?", cameras=["wrist"])
    assert unknown.status == Status.STATUS_INVALID and "wrist" in unknown.status_message
    blank = ask(client, "Which?", options=["a", " "])
    assert blank.status == Status.STATUS_INVALID


def wait_for_fresh(diagnostics) -> None:
    """Waits for a diagnostics message published after this call (they come at 1 Hz)."""
    count = len(diagnostics)
    wait_for(lambda: len(diagnostics) > count, 5, "fresh diagnostics")


def test_a_silent_camera_makes_answers_stale_and_stops_inference(rig):
    _, camera, client, _, diagnostics, predictions = rig
    camera.running.clear()
    try:
        wait_for(lambda: predictions[-1].status == SubtaskPrediction.STATUS_STALE, 10, "a STALE prediction")
        wait_for_fresh(diagnostics)
        inferences = diagnostic_values(diagnostics, "engine")["inferences"]
        time.sleep(1.5)
        wait_for_fresh(diagnostics)
        assert diagnostic_values(diagnostics, "engine")["inferences"] == inferences
        assert predictions[-1].status == SubtaskPrediction.STATUS_STALE
        assert "cam" in predictions[-1].status_message
        assert ask(client, "Anything new?").status == Status.STATUS_STALE
        assert camera_values(diagnostics)["stale"] == "True"
    finally:
        camera.running.set()
    wait_for(
        lambda: predictions[-1].status == SubtaskPrediction.STATUS_OK, 10, "answers after the camera returns"
    )
    assert float(camera_values(diagnostics)["rate_hz"]) == 0.0  # silent: no rate left over


# ---- hostile parameters and fields ------------------------------------------------------------


def set_parameter(probe, name: str, value: float):
    client = probe.node.create_client(SetParameters, "/reasoner/set_parameters")
    try:
        assert client.wait_for_service(timeout_sec=10)
        param = Parameter(
            name=name, value=ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)
        )
        response = wait_future(
            client.call_async(SetParameters.Request(parameters=[param])), 10, f"set {name}"
        )
        return response.results[0]
    finally:
        probe.node.destroy_client(client)


@pytest.mark.parametrize(
    "name, value",
    [("rate_hz", 1e-12), ("rate_hz", 1000.0), ("fps", float("inf")), ("fps", 1e300), ("window_s", 1e9)],
)
def test_a_parameter_out_of_its_range_is_refused_and_the_node_lives_on(rig, name, value):
    probe, _, client, reasoner, _, _ = rig
    result = set_parameter(probe, name, value)
    assert not result.successful and name in result.reason
    assert reasoner.proc.poll() is None, reasoner.output[-2000:]
    assert ask(client, "Still there?").status == Status.STATUS_OK


def test_numeric_parameters_declare_their_ranges(rig):
    probe, *_ = rig
    client = probe.node.create_client(DescribeParameters, "/reasoner/describe_parameters")
    try:
        assert client.wait_for_service(timeout_sec=10)
        request = DescribeParameters.Request(names=["rate_hz", "max_frames"])
        rate, frames = wait_future(client.call_async(request), 10, "descriptors").descriptors
    finally:
        probe.node.destroy_client(client)
    assert (rate.floating_point_range[0].from_value, rate.floating_point_range[0].to_value) == (0.01, 10.0)
    assert frames.integer_range[0].from_value == 1 and frames.integer_range[0].to_value >= 16


@pytest.mark.parametrize("window_s", [float("inf"), 3.4e38, 1e9])
def test_a_request_with_an_absurd_window_is_answered_invalid(rig, window_s):
    _, _, client, _, _, _ = rig
    response = ask(client, "How long?", window_s=window_s)
    assert response.status == Status.STATUS_INVALID and "window_s" in response.status_message


# ---- clocks that jump --------------------------------------------------------------------------


def test_one_frame_stamped_a_year_ahead_does_not_blind_the_camera(rig):
    _, camera, client, reasoner, diagnostics, _ = rig
    jumps = int(camera_values(diagnostics).get("clock_jumps", "0"))
    ahead = camera.now()
    ahead.sec += 365 * 24 * 3600
    camera.pub.publish(image(ahead))
    wait_for(
        lambda: int(camera_values(diagnostics).get("clock_jumps", "0")) >= jumps + 2,
        10,
        "the jump out and back",
    )
    assert ask(client, "After the odd frame?").status == Status.STATUS_OK
    assert any("clock jumped" in line for line in reasoner.lines)


def test_a_camera_whose_clock_restarts_behind_recovers_without_a_restart(rig):
    _, camera, client, _, diagnostics, _ = rig
    jumps = int(camera_values(diagnostics).get("clock_jumps", "0"))
    camera.offset_s = -3600  # a rebooted driver, a replayed bag
    try:
        wait_for(lambda: int(camera_values(diagnostics).get("clock_jumps", "0")) > jumps, 10, "a clock jump")
        time.sleep(0.5)
        assert ask(client, "And now?").status == Status.STATUS_OK
    finally:
        camera.offset_s = 0
    wait_for(lambda: int(camera_values(diagnostics).get("clock_jumps", "0")) > jumps + 1, 10, "the jump back")


def test_stamp_zero_frames_do_not_enter_the_latency_statistics(rig):
    _, camera, _, _, diagnostics, _ = rig
    for _ in range(10):
        camera.pub.publish(image(Time()))
        time.sleep(0.05)
    wait_for_fresh(diagnostics)
    wait_for_fresh(diagnostics)
    assert float(camera_values(diagnostics)["latency_p95_s"]) < 5.0


# ---- fuzz --------------------------------------------------------------------------------------

FUZZ_SECONDS = 8.0


def test_fuzzed_requests_and_frame_headers_are_all_answered_and_the_node_recovers(rig):
    _, camera, client, reasoner, _, _ = rig
    rng = random.Random(16)
    floats = [0.0, 0.5, 4.0, 600.0, 601.0, -1.0, 3.4e38, float("inf"), float("-inf"), float("nan")]
    words = ["", " ", "ball", "A", "é", "<answer>", "🤖", "?" * 300]
    futures = []
    deadline = time.monotonic() + FUZZ_SECONDS
    while time.monotonic() < deadline:
        stamp = camera.now()
        stamp.sec = rng.choice([stamp.sec, 0, stamp.sec - 3600, stamp.sec + 3600, 2**31 - 1, stamp.sec - 1])
        stamp.nanosec = rng.randrange(10**9)
        frame = image(stamp, width=rng.choice([8, 32, 640]), height=rng.choice([1, 8, 24]))
        frame.header.frame_id = rng.choice(["", "cam", "é" * 50])
        camera.pub.publish(frame)
        request = ReasonService.Request(
            question="".join(rng.choice(words) for _ in range(rng.randint(0, 4))),
            options=[rng.choice(words) for _ in range(rng.choice([0, 2, 5]))],
            cameras=rng.choice([[], ["cam"], ["wrist"], [""], ["cam", "cam"]]),
            window_s=rng.choice(floats),
            max_new_tokens=rng.choice([0, 1, 32768, 32769, 2**32 - 1]),
        )
        futures.append(client.call_async(request))
        time.sleep(0.05)
    wait_for(lambda: all(f.done() for f in futures), 60, f"{len(futures)} answers")
    statuses = {f.result().status for f in futures}
    assert Status.STATUS_ERROR not in statuses, [f.result().status_message for f in futures][:10]
    assert reasoner.proc.poll() is None and "Traceback" not in reasoner.output
    time.sleep(1.5)  # let the camera's own frames make it fresh again
    assert ask(client, "Is the cube on the table?", options=["yes", "no"]).status == Status.STATUS_OK

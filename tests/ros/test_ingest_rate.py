"""The reasoner takes only the frames its clips need (ingest_fps, by default 4 x the clip fps):
the others are skipped by stamp, never decoded, and counted as skipped rather than dropped, while
every clip still gets frames at its fps."""

from __future__ import annotations

import time

import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from cosmos_ros.srv import Reason as ReasonService
import rosharness as ros
from test_reasoner_robustness import image

pytestmark = [pytest.mark.ros, pytest.mark.slow]

PERIOD_NS = 20_000_000  # a 50 Hz camera


@pytest.mark.parametrize(
    ("mode", "spacing_s"),
    [("auto", 0.08), ("stamp", 0.06)],  # auto = latest here (wall time): spacing 40..80 ms, by timer
)
def test_a_fast_camera_is_taken_at_the_ingest_rate_and_clips_keep_their_fps(mode, spacing_s):
    domain = ros.unique_domain_id()
    probe = ros.Probe(domain)
    diagnostics = probe.collect(DiagnosticArray, "/diagnostics")
    reasoner = ros.start_node(
        "cosmos_ros.nodes.reasoner", ros.child_env(domain),
        "-p", "cameras:=[cam]", "-p", "engine:=scripted_engine:create", "-p", "camera_reliability:=reliable",
        "-p", "fps:=4.0", "-p", "window_s:=2.0", "-p", "max_frames:=16", "-p", f"ingest_mode:={mode}",
    )  # fmt: skip
    pub = probe.node.create_publisher(
        Image, "/cam/image_raw", QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    )
    client = probe.node.create_client(ReasonService, "/reasoner/reason")
    try:
        assert client.wait_for_service(timeout_sec=20), reasoner.output
        ros.wait_for(lambda: pub.get_subscription_count() > 0, 20, "the reasoner's subscription")
        start = 1_700_000_000 * 1_000_000_000
        for i in range(150):  # 3 s of a 50 Hz camera, every 10th frame malformed
            stamp = Time(sec=(start + i * PERIOD_NS) // 10**9, nanosec=(start + i * PERIOD_NS) % 10**9)
            pub.publish(image(stamp, encoding="bgr9") if i % 10 == 5 else image(stamp))
            time.sleep(0.02)

        request = ReasonService.Request(question="stamps: where is the cube?", options=["left", "right"])
        response = ros.wait_future(client.call_async(request), 30, "an answer")
        offsets = [
            float(s) for s in response.reasoning.split()
        ]  # clip stamps, seconds before its end (2 s at 4 fps)
        steps = [b - a for a, b in zip(offsets, offsets[1:])]
        # each pick lies within half the taken frames' spacing of its grid point (+ jitter)
        assert len(offsets) == 9 and all(abs(step - 0.25) <= spacing_s + 0.01 for step in steps), str(offsets)

        def values() -> dict[str, str]:
            return ros.diagnostic_values(diagnostics, "camera cam")

        def settled() -> bool:  # counts no longer change (a reliable depth-5 reader may lose a few)
            before = values().get("received")
            time.sleep(1.2)  # /diagnostics comes once a second
            return before is not None and before == values().get("received") and int(before) > 0

        ros.wait_for(settled, 15, f"the counts to settle, last: {values()}")
        counts = {k: int(values()[k]) for k in ("received", "skipped", "accepted", "decode_errors")}
        # 4 x 4 fps = 16 Hz of a 50 Hz camera: about one frame in three taken (stamp: every third)
        assert counts["received"] >= 130, counts
        assert counts["accepted"] + counts["decode_errors"] + counts["skipped"] == counts["received"], counts
        assert 0.6 <= counts["skipped"] / counts["received"] <= 0.7, counts
        assert (
            1 <= counts["decode_errors"] <= 15
        )  # the malformed frames that were due (of 15), read and counted
        assert values()["out_of_order"] == "0"

        assert f"taking frames by {'latest' if mode == 'auto' else mode} at 16 fps" in reasoner.output
    finally:
        probe.close()
        assert reasoner.stop() == 0, reasoner.output[-3000:]

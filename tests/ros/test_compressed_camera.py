"""A reasoner fed by image_transport's compressed topic (JPEG) from two cameras answers about
both cameras tiled into one clip."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import Header

from cosmos_ros.core.codec import rgb8_to_compressed_fields
from cosmos_ros.msg import SubtaskPrediction
from rosharness import Probe, child_env, start_node, unique_domain_id, wait_for

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_two_compressed_cameras_are_aligned_into_one_clip():
    domain = unique_domain_id()
    probe = Probe(domain)
    predictions = probe.collect(SubtaskPrediction, "/arm/reasoner/next_subtask")
    reasoner = start_node(
        "cosmos_ros.nodes.reasoner",
        child_env(domain),
        "-r", "__ns:=/arm",
        "-p", "cameras:=[front, wrist]",
        "-p", "image_transport:=compressed",
        "-p", "task:=open the drawer",
        "-p", "engine:=scripted_engine:create",
        "-p", "rate_hz:=4.0",
    )  # fmt: skip
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    publishers = {
        name: probe.node.create_publisher(CompressedImage, f"/arm/{name}/image_raw/compressed", qos)
        for name in ("front", "wrist")
    }
    jpeg = rgb8_to_compressed_fields(np.full((48, 64, 3), (200, 40, 40), np.uint8), "jpeg")
    stop = threading.Event()

    def publish() -> None:
        while not stop.is_set():
            stamp = probe.node.get_clock().now().to_msg()
            for name, pub in publishers.items():  # both cameras share the stamp: perfectly aligned
                pub.publish(
                    CompressedImage(header=_header(stamp, name), format=jpeg["format"], data=jpeg["data"])
                )
            time.sleep(0.1)

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    try:
        # the first tick may come when only one frame pair has arrived: wait for a clip of several
        def usable(p) -> bool:
            return p.status == SubtaskPrediction.STATUS_OK and p.num_frames >= 2

        wait_for(lambda: any(usable(p) for p in predictions), 30, "an OK answer about several frames")
        ok = next(p for p in predictions if usable(p))
        assert ok.cameras == ["front", "wrist"]
        assert ok.header.frame_id == "front_frame"
        assert ok.num_frames >= 2
    finally:
        stop.set()
        thread.join(timeout=2)
        probe.close()
        assert reasoner.stop() == 0, reasoner.output[-2000:]


def _header(stamp, name: str) -> Header:
    return Header(stamp=stamp, frame_id=f"{name}_frame")

"""bag_record: writes topics to a new rosbag2 (MCAP) recording, without ROS 2's rosbag2.

    cosmos-ros bag record OUT [TOPIC ...] [--all] [--storage mcap|sqlite3] [--duration S]
    ros2 run cosmos_ros bag_record --ros-args -p output:=OUT -p topics:="[/cam/image_raw]"

Topics are subscribed as they appear (their type and QoS read from the graph, so a recorder
started before the cameras still records them) and written as the CDR bytes that arrive, each
with its receive time on the node's clock (sim time with `use_sim_time:=true`) and with its
type's full definition, ours included, so `ros2 bag info`, `ros2 bag play`, Foxglove and
`cosmos-ros bag play` all read the result. The subscription matches what the publishers offer:
reliable only if all are, transient local only if all are (a latched TaskContext is recorded
even when it was published before the recorder started). The recording is closed (summary and
metadata.yaml written) on Ctrl-C, SIGTERM or after `duration_s`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

from cosmos_ros.nodes import params
from cosmos_ros.nodes.bag_io import BagError, BagWriter, message_class
from cosmos_ros.nodes.runner import run_node

PARAMETERS = {
    "output": ("", "the new bag directory to write; must not exist yet", True),
    "topics": ([""], 'topics to record (relative names resolve in the node\'s namespace); [""] = none', True),
    "all": (False, "record every topic that appears, except /rosout and /parameter_events", True),
    "storage": ("mcap", "storage format: mcap or sqlite3", True),
    "duration_s": (0.0, "close the recording and exit after this many seconds; 0 = until stopped", True),
}
RANGES = {"duration_s": (0.0, 1.0e7)}
CHOICES = {"storage": ("mcap", "sqlite3")}
DISCOVERY_PERIOD_S = 0.5
NOT_RECORDED = ("/rosout", "/parameter_events")
_INFINITE_NS = 2**63 - 1


def bag_qos(profile) -> Qos:
    """A publisher's rclpy QoS as rosbag2 writes it into the bag's metadata."""

    def duration(d) -> QosTime:
        ns = d.nanoseconds
        if ns >= _INFINITE_NS:  # rmw's "infinite", written as rosbag2 does
            return QosTime(2147483647, 4294967295)
        return QosTime(*divmod(ns, 1_000_000_000))

    return Qos(
        history=QosHistory.__members__.get(profile.history.name, QosHistory.UNKNOWN),
        depth=int(profile.depth),
        reliability=QosReliability.__members__.get(profile.reliability.name, QosReliability.UNKNOWN),
        durability=QosDurability.__members__.get(profile.durability.name, QosDurability.UNKNOWN),
        deadline=duration(profile.deadline),
        lifespan=duration(profile.lifespan),
        liveliness=QosLiveliness.__members__.get(profile.liveliness.name, QosLiveliness.UNKNOWN),
        liveliness_lease_duration=duration(profile.liveliness_lease_duration),
        avoid_ros_namespace_conventions=bool(profile.avoid_ros_namespace_conventions),
    )


def subscription_qos(offered: Sequence) -> QoSProfile:
    """A subscription every offered profile matches: reliable / transient local only if all are."""
    reliable = bool(offered) and all(p.reliability == ReliabilityPolicy.RELIABLE for p in offered)
    latched = bool(offered) and all(p.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in offered)
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=100,  # bursts wait here rather than being lost while a chunk is written
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


class BagRecorder(Node):
    def __init__(self, **kwargs):
        super().__init__("bag_recorder", **kwargs)
        values = params.declare(self, PARAMETERS, ranges=RANGES, choices=CHOICES)
        if not values.output:
            raise ValueError("bag_recorder needs output:=<new bag directory>")
        wanted = [t for t in values.topics if t]
        if not wanted and not values.all:
            raise ValueError("bag_recorder needs topics:=[...] or all:=true")
        self.wanted = {self.resolve_topic_name(t) for t in wanted}
        self.record_all = values.all
        try:
            self.writer = BagWriter(values.output, values.storage)
        except BagError as exc:
            raise ValueError(str(exc)) from exc
        self.output = values.output
        self.subscriptions_by_topic: dict[str, object] = {}
        self.failed: dict[str, str] = {}  # topic -> why it is not recorded
        self.closed = False
        self.create_timer(DISCOVERY_PERIOD_S, self._discover)
        if values.duration_s > 0:
            self.create_timer(values.duration_s, self._finish)
        self._discover()
        names = "every topic" if self.record_all else ", ".join(sorted(self.wanted))
        self.get_logger().info(f"recording {names} to {self.output} ({values.storage})")

    def _discover(self) -> None:
        """Subscribes each wanted topic that has appeared with a publisher."""
        for topic, types in self.get_topic_names_and_types():
            if topic in self.subscriptions_by_topic or topic in self.failed:
                continue
            if not (topic in self.wanted or (self.record_all and topic not in NOT_RECORDED)):
                continue
            offered = [info.qos_profile for info in self.get_publishers_info_by_topic(topic)]
            if not offered:
                continue  # only subscribers so far: its publishers' QoS is not known yet
            if len(types) > 1:
                self.get_logger().warning(
                    f"{topic} is published with several types {types}; recording {types[0]}"
                )
            try:
                self._subscribe(topic, types[0], offered)
            except (BagError, ImportError, AttributeError) as exc:
                self.failed[topic] = f"{type(exc).__name__}: {exc}"
                self.get_logger().error(f"not recording {topic} ({types[0]}): {exc}")

    def _subscribe(self, topic: str, msgtype: str, offered: Sequence) -> None:
        cls = message_class(msgtype)
        self.writer.add_topic(topic, msgtype, [bag_qos(p) for p in offered])
        self.subscriptions_by_topic[topic] = self.create_subscription(
            cls, topic, lambda data, t=topic: self._write(t, data), subscription_qos(offered), raw=True
        )
        self.get_logger().info(f"recording {topic} ({msgtype})")

    def _write(self, topic: str, data: bytes) -> None:
        if not self.closed:
            self.writer.write(topic, self.get_clock().now().nanoseconds, data)

    def _finish(self) -> None:
        self.close()
        self.context.try_shutdown()  # ends the spin; main() exits 0

    def close(self) -> None:
        """Writes the summary and metadata.yaml; the bag is complete after this."""
        if self.closed:
            return
        self.closed = True
        self.writer.close()
        counts = ", ".join(f"{t} {n}" for t, n in self.writer.counts.items()) or "nothing"
        missing = sorted(self.wanted - set(self.subscriptions_by_topic))
        self.get_logger().info(
            f"wrote {self.output}: {counts}" + (f"; never seen: {', '.join(missing)}" if missing else "")
        )

    def destroy_node(self) -> None:
        self.close()
        super().destroy_node()


def command_line(argv: Sequence[str]) -> list[str]:
    """`cosmos-ros bag record OUT [TOPIC ...] [--all] [--storage S] [--duration S]` as the node's
    --ros-args."""
    import argparse

    p = argparse.ArgumentParser(prog="cosmos-ros bag record", description=__doc__.split("\n\n")[0])
    p.add_argument("output", help="the new bag directory")
    p.add_argument("topics", nargs="*", help="topics to record")
    p.add_argument("--all", action="store_true", help="record every topic")
    p.add_argument("--storage", choices=CHOICES["storage"], default="mcap")
    p.add_argument("--duration", type=float, default=0.0, metavar="S", help="stop after S seconds")
    args = p.parse_args(argv)
    topics = ["-p", "topics:=[" + ",".join(f'"{t}"' for t in args.topics) + "]"] if args.topics else []
    return [
        "--ros-args",
        "-p", f"output:={args.output}",
        *topics,
        "-p", f"all:={'true' if args.all else 'false'}",
        "-p", f"storage:={args.storage}",
        "-p", f"duration_s:={float(args.duration)}",
    ]  # fmt: skip


def main(args=None) -> int:
    return run_node(BagRecorder, "bag_recorder", args=args)


if __name__ == "__main__":
    sys.exit(main())

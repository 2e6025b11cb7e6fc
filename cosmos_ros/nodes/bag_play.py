"""bag_play: publishes a rosbag2 recording with its original timing, without ROS 2's rosbag2.

    cosmos-ros bag play BAG [--topics T ...] [--rate R] [--loop] [--clock] [--delay S]
                            [--wait-for-subscribers S]

Each message goes out as the CDR bytes it was recorded as, at its recorded receive time (scaled
by `--rate`), on a publisher with the QoS its publishers offered when it was recorded (so a
transient-local topic such as the reasoner's `~/task` reaches late joiners as it did live).
With `--clock` the playback time also goes out on /clock, before each message and every 25 ms
between them, for nodes running with `use_sim_time:=true`.

What cannot be played is named and skipped, and the rest plays: a topic whose type is not
installed here, a damaged or cut-off file (see bag_io). A topic named like a camera image
(`.../image_raw`, `.../compressed`) whose type is not the image type subscribers there expect is
played as recorded, with a warning that image subscribers will not receive it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from cosmos_ros.nodes.bag_io import Bag, BagError, Topic, message_class, open_bag

CLOCK_PERIOD_S = 0.025  # /clock between messages: 40 Hz, as ros2 bag play --clock publishes
IMAGE_TYPES = {"image_raw": "sensor_msgs/msg/Image", "compressed": "sensor_msgs/msg/CompressedImage"}


@dataclass
class PlayStats:
    published: dict[str, int] = field(default_factory=dict)  # topic -> messages
    skipped: dict[str, str] = field(default_factory=dict)  # topic -> why
    warnings: list[str] = field(default_factory=list)
    wall_s: float = 0.0  # playing time
    bag_s: float = 0.0  # the recorded time span played

    @property
    def total(self) -> int:
        return sum(self.published.values())


def publisher_qos(topic: Topic) -> QoSProfile:
    """The recorded publishers' QoS: best effort / transient local only when every one offered
    it (what all of their subscribers can match), the recorded depth for transient-local topics
    (late joiners get what they got live), else at least 10."""
    offered = topic.qos
    best_effort = bool(offered) and all(q.reliability.name == "BEST_EFFORT" for q in offered)
    latched = bool(offered) and all(q.durability.name == "TRANSIENT_LOCAL" for q in offered)
    depth = max([q.depth for q in offered if q.depth > 0], default=1 if latched else 10)
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth if latched else max(depth, 10),
        reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


def image_type_warning(topic: Topic) -> str:
    """Why image subscribers will not get `topic`, or ''."""
    suffix = topic.name.rstrip("/").rsplit("/", 1)[-1]
    expected = IMAGE_TYPES.get(suffix)
    if expected is None or topic.msgtype == expected:
        return ""
    return (
        f"topic {topic.name} holds {topic.msgtype}, not {expected}: nodes subscribing images there "
        f"(the reasoner) will not receive it; it is played as {topic.msgtype}"
    )


def select_topics(bag: Bag, names: Sequence[str] | None) -> list[Topic]:
    """The bag's topics to play (all when names is empty); BagError for a name not in the bag."""
    if not names:
        return list(bag.topics.values())
    missing = [n for n in names if n not in bag.topics]
    if missing:
        raise BagError(
            f"{bag.path} has no topic {', '.join(missing)}; it has {', '.join(sorted(bag.topics))}"
        )
    return [bag.topics[n] for n in names]


class BagPlayer:
    """Publishes one bag through `node`; `play` returns when it has played (or `stop()` is true)."""

    def __init__(self, node: Node, bag: Bag, topics: Sequence[str] | None = None, *, clock: bool = False):
        self.node, self.bag = node, bag
        self.stats = PlayStats(warnings=list(bag.problems))
        self.publishers = {}
        for topic in select_topics(bag, topics):
            try:
                cls = message_class(topic.msgtype)
            except (ImportError, AttributeError, ValueError) as exc:
                package = topic.msgtype.split("/")[0]
                self.stats.skipped[topic.name] = (
                    f"type {topic.msgtype} is not installed here ({type(exc).__name__}: {exc}); "
                    f"pip install ros-{package.replace('_', '-')} or source the workspace that has it"
                )
                continue
            warning = image_type_warning(topic)
            if warning:
                self.stats.warnings.append(warning)
            self.publishers[topic.name] = node.create_publisher(cls, topic.name, publisher_qos(topic))
            self.stats.published[topic.name] = 0
        self.clock = None
        if clock:
            from rosgraph_msgs.msg import Clock

            self._clock_msg = Clock
            self.clock = node.create_publisher(Clock, "/clock", QoSProfile(depth=10))

    def wait_for_subscribers(self, timeout_s: float, stop: Callable[[], bool] = lambda: False) -> list[str]:
        """Waits until every played topic has a matched subscriber (or timeout_s); returns the
        topics that still have none. Discovery takes a moment, and a message published before
        it completes is lost to that subscriber."""
        deadline = time.monotonic() + timeout_s
        while not stop():
            lonely = [t for t, p in self.publishers.items() if p.get_subscription_count() == 0]
            if not lonely or time.monotonic() > deadline:
                return lonely
            time.sleep(0.05)
        return []

    def wait_for_acks(self, timeout_s: float) -> None:
        """Lets reliable subscribers receive the last messages before the publishers go away (a
        player that exits right after its last publish would otherwise lose them)."""
        from rclpy.duration import Duration

        deadline = time.monotonic() + timeout_s
        for publisher in self.publishers.values():
            if publisher.qos_profile.reliability == ReliabilityPolicy.RELIABLE:
                publisher.wait_for_all_acked(Duration(seconds=max(0.0, deadline - time.monotonic())))

    def play(
        self, *, rate: float = 1.0, delay_s: float = 0.0, stop: Callable[[], bool] = lambda: False
    ) -> PlayStats:
        """One pass over the bag at `rate` times its recorded speed, after `delay_s`."""
        if not rate > 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        self._wait(time.monotonic() + delay_s, None, stop)
        started = time.monotonic()
        first = last = None
        for record in self.bag.messages(self.publishers):
            if stop():
                break
            first = record.timestamp_ns if first is None else first
            due = started + max(0, record.timestamp_ns - first) * 1e-9 / rate
            self._wait(due, (started, first, rate, record.timestamp_ns), stop)
            if self.clock is not None:
                self._tick(record.timestamp_ns)
            self.publishers[record.topic].publish(record.data)
            self.stats.published[record.topic] += 1
            last = record.timestamp_ns
        self.stats.wall_s += time.monotonic() - started
        self.stats.bag_s += 0.0 if first is None else (last - first) * 1e-9
        for problem in self.bag.problems:  # found while reading (a file cut off midway)
            if problem not in self.stats.warnings:
                self.stats.warnings.append(problem)
        return self.stats

    def _wait(self, due: float, timeline, stop: Callable[[], bool]) -> None:
        """Sleeps until `due`, publishing the playback time on /clock meanwhile when asked."""
        while not stop():
            left = due - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, CLOCK_PERIOD_S))
            if self.clock is not None and timeline is not None:
                started, first, rate, cap = timeline
                self._tick(min(cap, first + int((time.monotonic() - started) * rate * 1e9)))

    def _tick(self, stamp_ns: int) -> None:
        msg = self._clock_msg()
        msg.clock.sec, msg.clock.nanosec = divmod(int(stamp_ns), 1_000_000_000)
        self.clock.publish(msg)


def report(stats: PlayStats, out=sys.stderr) -> None:
    for warning in stats.warnings:
        print(f"warning: {warning}", file=out)
    for topic, why in stats.skipped.items():
        print(f"skipped {topic}: {why}", file=out)
    per_topic = ", ".join(f"{t} {n}" for t, n in stats.published.items())
    print(
        f"played {stats.total} messages ({per_topic}) spanning {stats.bag_s:.2f} s of the recording "
        f"in {stats.wall_s:.2f} s",
        file=out,
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cosmos-ros bag play", description=__doc__.split("\n\n")[0])
    p.add_argument("bag", help="a rosbag2 directory, or a .mcap / .db3 file")
    p.add_argument("--topics", nargs="+", metavar="TOPIC", help="play only these topics (default: all)")
    p.add_argument("--rate", type=float, default=1.0, help="speed factor (default 1: the recorded timing)")
    p.add_argument("--loop", action="store_true", help="play again from the start until stopped")
    p.add_argument("--clock", action="store_true", help="publish the playback time on /clock")
    p.add_argument("--delay", type=float, default=0.0, metavar="S", help="wait S seconds before playing")
    p.add_argument(
        "--wait-for-subscribers", type=float, default=0.0, metavar="S",
        help="first wait up to S seconds until every played topic has a subscriber",
    )  # fmt: skip
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.rate > 0:
        print(f"bag play: --rate must be > 0, got {args.rate}", file=sys.stderr)
        return 2
    try:
        bag = open_bag(args.bag)
    except BagError as exc:
        print(f"bag play: {exc}", file=sys.stderr)
        return 2
    import rclpy

    from cosmos_ros.transport import configure_transport

    configure_transport()
    rclpy.init(args=[])
    player = None
    try:
        player = BagPlayer(rclpy.create_node("bag_player"), bag, args.topics, clock=args.clock)
        if not player.publishers:
            print("bag play: nothing to play", file=sys.stderr)
            return 1
        if args.wait_for_subscribers > 0:
            lonely = player.wait_for_subscribers(args.wait_for_subscribers, stop=lambda: not rclpy.ok())
            if lonely:
                player.stats.warnings.append(
                    f"no subscriber after {args.wait_for_subscribers:g} s on {', '.join(lonely)}"
                )
        delay = args.delay
        while True:
            player.play(rate=args.rate, delay_s=delay, stop=lambda: not rclpy.ok())
            delay = 0.0
            if not args.loop or not rclpy.ok():
                break
        player.wait_for_acks(timeout_s=5.0)
    except BagError as exc:
        print(f"bag play: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass  # Ctrl-C ends the playback; what was played is reported below
    finally:
        if player is not None:
            report(player.stats)
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

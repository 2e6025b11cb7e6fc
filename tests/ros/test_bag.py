"""Record and replay across processes: `cosmos-ros bag play` keeps a bag's timing and QoS,
`cosmos-ros bag record` keeps every message (ours included), a damaged bag plays what is intact,
and the reasoner on sim time answers a replayed bag the same way twice."""

from __future__ import annotations

import statistics
import sys
import threading
import time

import pytest
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message, serialize_message
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CompressedImage, Image

from cosmos_ros.msg import FailureDetection, SubtaskPrediction, TaskContext
from cosmos_ros.nodes.bag_io import BagWriter, open_bag
from cosmos_ros.nodes.bag_play import BagPlayer
from rosharness import Probe, Process, child_env, start_node, unique_domain_id, wait_for

pytestmark = [pytest.mark.ros, pytest.mark.slow]

LATCHED = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)
RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
T0_NS = 1_700_000_000 * 1_000_000_000  # a wall-clock-like start, as a real recording has


def frame(i: int, stamp_ns: int, size=(24, 32)) -> Image:
    height, width = size
    msg = Image(height=height, width=width, encoding="rgb8", step=width * 3)
    msg.data = bytes([(i * 37 + k) % 256 for k in range(3)]) * (height * width)
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    msg.header.frame_id = "cam"
    return msg


def camera_bag(path, storage="mcap", frames=20, period_ns=50_000_000, task_text=None) -> list[int]:
    """Frames on /cam/image_raw every period_ns (and a TaskContext first when task_text is
    given), recorded at their stamps; returns the frame stamps."""
    writer = BagWriter(path, storage)
    writer.add_topic("/cam/image_raw", "sensor_msgs/msg/Image")
    if task_text is not None:
        from cosmos_ros.nodes.bag_record import bag_qos

        writer.add_topic("/reasoner/task", "cosmos_ros/msg/TaskContext", [bag_qos(LATCHED)])
        msg = TaskContext(
            task_id="ep-1", task=task_text, candidate_subtasks=["grasp the block", "lift the block"]
        )
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(T0_NS, 1_000_000_000)
        writer.write("/reasoner/task", T0_NS - 1, serialize_message(msg))
    stamps = [T0_NS + i * period_ns for i in range(frames)]
    for i, stamp in enumerate(stamps):
        writer.write("/cam/image_raw", stamp, serialize_message(frame(i, stamp)))
    writer.close()
    return stamps


def play(env, bag, *args) -> Process:
    return Process([sys.executable, "-m", "cosmos_ros.cli", "bag", "play", str(bag), *args], env)


class Arrivals:
    """Images on a topic with their arrival times (monotonic)."""

    def __init__(self, probe: Probe, topic="/cam/image_raw", msg_type=Image, qos=RELIABLE):
        self.items: list[tuple[float, object]] = []
        self.lock = threading.Lock()
        probe.node.create_subscription(msg_type, topic, self._on, qos)

    def _on(self, msg) -> None:
        with self.lock:
            self.items.append((time.monotonic(), msg))

    def stamps_ns(self) -> list[int]:
        return [m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec for _, m in self.items]

    def gaps(self) -> list[float]:
        times = [t for t, _ in self.items]
        return [b - a for a, b in zip(times, times[1:])]


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_play_keeps_the_recorded_timing(tmp_path, storage):
    stamps = camera_bag(tmp_path / "bag", storage)
    domain = unique_domain_id()
    probe = Probe(domain)
    try:
        images = Arrivals(probe)
        clock: list[Clock] = probe.collect(Clock, "/clock")
        player = play(
            child_env(domain), tmp_path / "bag", "--wait-for-subscribers", "20", "--delay", "0.3", "--clock"
        )
        wait_for(lambda: player.proc.poll() is not None, 30, "the player to finish")
        assert player.proc.returncode == 0, player.output
        time.sleep(0.3)
        assert images.stamps_ns() == stamps, player.output
        gaps = images.gaps()
        assert abs(statistics.median(gaps) - 0.05) < 0.015, gaps
        assert abs(sum(gaps) - 0.95) < 0.15, sum(gaps)
        ticks = [c.clock.sec * 1_000_000_000 + c.clock.nanosec for c in clock]
        assert ticks == sorted(ticks) and ticks[0] >= stamps[0] and ticks[-1] == stamps[-1]
        assert len(ticks) >= len(stamps)  # one before each message, more between them
        assert "played 20 messages" in player.output

        fast = play(
            child_env(domain),
            tmp_path / "bag",
            "--wait-for-subscribers",
            "20",
            "--delay",
            "0.3",
            "--rate",
            "2",
        )
        images.items.clear()
        wait_for(lambda: fast.proc.poll() is not None, 30, "the player to finish")
        time.sleep(0.3)
        assert len(images.items) == 20, fast.output
        assert abs(sum(images.gaps()) - 0.475) < 0.12, sum(images.gaps())
    finally:
        probe.close()


def test_record_then_play_keeps_every_message(tmp_path):
    domain = unique_domain_id()
    env = child_env(domain)
    probe = Probe(domain)
    out = tmp_path / "run"
    try:
        camera = probe.node.create_publisher(Image, "/cam/image_raw", RELIABLE)
        planner = probe.node.create_publisher(TaskContext, "/reasoner/task", LATCHED)
        task = TaskContext(
            task_id="ep-7", task="put the red block on the pad", candidate_subtasks=["grasp", "place"]
        )
        planner.publish(task)  # before the recorder starts: transient local brings it over
        recorder = Process(
            [
                sys.executable,
                "-m",
                "cosmos_ros.cli",
                "bag",
                "record",
                str(out),
                "/cam/image_raw",
                "/reasoner/task",
            ],
            env,
        )
        wait_for(
            lambda: "recording /cam/image_raw (" in recorder.output and "recording /reasoner/task (" in recorder.output,
            30, "the recorder to subscribe",
        )  # fmt: skip
        time.sleep(0.5)
        probe.node.destroy_publisher(planner)  # from here on the task can only come from the player
        sent = []
        for i in range(30):
            msg = frame(i, T0_NS + i * 50_000_000)
            camera.publish(msg)
            sent.append(msg)
            time.sleep(0.05)
        time.sleep(1.0)
        assert recorder.stop() == 0, recorder.output
        assert f"wrote {out}" in recorder.output

        bag = open_bag(out)
        assert bag.problems == [] and bag.storage == "mcap"
        # compared as messages: CDR padding bytes are not part of a message and may differ
        recorded = [deserialize_message(r.data, Image) for r in bag.messages(["/cam/image_raw"])]
        assert recorded == sent
        [recorded_task] = [r.data for r in bag.messages(["/reasoner/task"])]
        assert deserialize_message(recorded_task, TaskContext) == task
        assert bag.topics["/reasoner/task"].qos[0].durability.name == "TRANSIENT_LOCAL"
        info = Process([sys.executable, "-m", "cosmos_ros.cli", "bag", "info", str(out)], env)
        assert info.proc.wait(30) == 0
        info.stop()
        assert "cosmos_ros/msg/TaskContext" in info.output and "messages: 31" in info.output

        images = Arrivals(probe)
        tasks = probe.collect(TaskContext, "/reasoner/task", LATCHED)
        player = play(env, out, "--wait-for-subscribers", "20", "--delay", "0.3")
        wait_for(lambda: player.proc.poll() is not None, 30, "the player to finish")
        time.sleep(0.3)
        assert player.proc.returncode == 0, player.output
        assert [m for _, m in images.items] == sent
        assert [t.task_id for t in tasks] == ["ep-7"]
    finally:
        probe.close()


def test_a_damaged_bag_plays_what_is_intact_and_names_the_rest(tmp_path):
    stamps = camera_bag(tmp_path / "bag", frames=40, period_ns=20_000_000)
    writer_dir = tmp_path / "bag"
    file = next(writer_dir.glob("*.mcap"))
    with open(file, "r+b") as f:
        f.truncate(file.stat().st_size // 2)
    recovered = sum(1 for _ in open_bag(writer_dir).messages())
    assert 0 < recovered < 40
    domain = unique_domain_id()
    probe = Probe(domain)
    try:
        images = Arrivals(probe)
        player = play(child_env(domain), writer_dir, "--wait-for-subscribers", "20", "--delay", "0.3")
        wait_for(lambda: player.proc.poll() is not None, 30, "the player to finish")
        time.sleep(0.3)
        assert player.proc.returncode == 0, player.output
        assert images.stamps_ns() == stamps[:recovered]
        assert f"cut off at byte {file.stat().st_size}" in player.output
        assert f"played {recovered} messages" in player.output
    finally:
        probe.close()


def test_topics_that_cannot_be_played_as_expected_are_named(tmp_path):
    writer = BagWriter(tmp_path / "bag")
    writer.add_topic("/cam/image_raw", "sensor_msgs/msg/CompressedImage")  # not what /image_raw carries
    writer.add_topic("/tf", "tf2_msgs/msg/TFMessage")  # a type this environment lacks
    writer.add_topic("/cam2/image_raw", "sensor_msgs/msg/Image")
    compressed = CompressedImage(format="jpeg", data=b"\xff\xd8\xff")
    no_transforms = b"\x00\x01\x00\x00" + bytes(4)
    for i in range(5):
        writer.write("/cam/image_raw", T0_NS + i * 10_000_000, serialize_message(compressed))
        writer.write("/tf", T0_NS + i * 10_000_000 + 1, no_transforms)
        writer.write("/cam2/image_raw", T0_NS + i * 10_000_000 + 2, serialize_message(frame(i, T0_NS)))
    writer.close()
    probe = Probe(unique_domain_id())
    try:
        player = BagPlayer(probe.node, open_bag(tmp_path / "bag"))
        assert set(player.publishers) == {"/cam/image_raw", "/cam2/image_raw"}
        assert "tf2_msgs/msg/TFMessage is not installed here" in player.stats.skipped["/tf"]
        [warning] = player.stats.warnings
        assert "/cam/image_raw holds sensor_msgs/msg/CompressedImage, not sensor_msgs/msg/Image" in warning
        images = Arrivals(probe, "/cam2/image_raw")
        cam2 = player.publishers["/cam2/image_raw"]
        wait_for(lambda: cam2.get_subscription_count() > 0, 20, "the probe's subscription to /cam2")
        assert player.wait_for_subscribers(1.0) == ["/cam/image_raw"]  # nobody listens there
        time.sleep(0.3)
        stats = player.play(rate=10.0)
        time.sleep(0.3)
        assert stats.published == {"/cam/image_raw": 5, "/cam2/image_raw": 5}
        assert len(images.items) == 5
        with pytest.raises(Exception, match="has no topic /nope"):
            BagPlayer(probe.node, open_bag(tmp_path / "bag"), ["/nope"])
    finally:
        probe.close()


def _answers_of_one_replay(bag, domain, *params: str, rate: str = "1") -> list[tuple]:
    env = child_env(domain)
    probe = Probe(domain)
    reasoner = None
    try:
        subtasks = probe.collect(SubtaskPrediction, "/reasoner/next_subtask")
        failures = probe.collect(FailureDetection, "/reasoner/failure")
        reasoner = start_node(
            "cosmos_ros.nodes.reasoner", env,
            "-p", "use_sim_time:=true",
            "-p", "cameras:=[cam]",
            "-p", "window_s:=1.0",
            "-p", "fps:=4.0",
            "-p", "max_frames:=4",
            "-p", "camera_reliability:=reliable",
            *params,
        )  # fmt: skip
        wait_for(lambda: "engine ready" in reasoner.output, 120, "the reasoner's engine")
        player = play(env, bag, "--clock", "--rate", rate, "--wait-for-subscribers", "20", "--delay", "0.3")
        wait_for(lambda: player.proc.poll() is not None, 120, "the player to finish")
        time.sleep(1.0 / float(rate))
        assert player.proc.returncode == 0, player.output
    finally:
        probe.close()
        if reasoner is not None:
            assert reasoner.stop() == 0, reasoner.output[-3000:]

    def key(m):
        return (m.task_id, m.clip_start.sec, m.clip_start.nanosec, m.clip_end.sec, m.clip_end.nanosec,
                m.num_frames, m.reasoning, m.answer, m.status)  # fmt: skip

    return [("subtask", *key(m)) for m in subtasks] + [("failure", *key(m)) for m in failures]


def test_the_reasoner_on_sim_time_answers_a_replayed_bag_the_same_way_twice(tmp_path):
    # "stamps" makes the scripted engine think the clip's frame stamps: the answers show the window
    camera_bag(tmp_path / "bag", frames=60, period_ns=100_000_000, task_text="stamps: stack the blocks")
    scripted = ("-p", "engine:=scripted_engine:create", "-p", "rate_hz:=2.0")
    first = _answers_of_one_replay(tmp_path / "bag", unique_domain_id(), *scripted)
    second = _answers_of_one_replay(tmp_path / "bag", unique_domain_id(), *scripted)
    assert first == second
    subtasks = [a for a in first if a[0] == "subtask"]
    # one answer per 0.5 s period entered after the first frame: 5.9 s of frames -> 11
    assert len(subtasks) == 11, first
    assert all(a[1] == "ep-1" and a[-1] == SubtaskPrediction.STATUS_OK for a in first)
    ends = [(a[4], a[5]) for a in subtasks]
    # each clip ends at the last frame before a multiple of 0.5 s: 0.4 s, 0.9 s, ... after T0
    t0_sec = T0_NS // 1_000_000_000
    assert ends == [(t0_sec + (k * 5 + 4) // 10, ((k * 5 + 4) % 10) * 100_000_000) for k in range(11)]


def test_the_shipped_model_answers_a_replayed_bag_the_same_way_twice(tmp_path):
    from cosmos_ros.resources import data_dirs

    model = data_dirs("model")[0] / "cosmos-reason1-tiny"
    camera_bag(tmp_path / "bag", frames=70, period_ns=100_000_000, task_text="stack the blocks")
    # one answer pair every 2 s of sim time: the CPU model answers these small frames in ~0.2 s
    params = (
        "-p",
        "engine:=torch",
        "-p",
        f"model:={model}",
        "-p",
        "rate_hz:=0.5",
        "-p",
        "max_new_tokens:=24",
    )
    first = _answers_of_one_replay(tmp_path / "bag", unique_domain_id(), *params)
    second = _answers_of_one_replay(tmp_path / "bag", unique_domain_id(), *params)
    assert first == second
    assert len([a for a in first if a[0] == "subtask"]) == 3, first  # periods entered at 2, 4, 6 s
    assert all(a[1] == "ep-1" and a[-2] and a[-1] == SubtaskPrediction.STATUS_OK for a in first)
    t0_sec = T0_NS // 1_000_000_000
    assert [(a[4], a[5]) for a in first[:3]] == [(t0_sec + s, 900_000_000) for s in (1, 3, 5)]


def test_loop_plays_the_bag_until_stopped(tmp_path):
    stamps = camera_bag(tmp_path / "bag", frames=10, period_ns=20_000_000)
    domain = unique_domain_id()
    probe = Probe(domain)
    try:
        images = Arrivals(probe)
        player = play(child_env(domain), tmp_path / "bag", "--loop", "--wait-for-subscribers", "20")
        wait_for(lambda: len(images.items) >= 35, 30, "three passes over the bag")
        assert player.stop() == 0, player.output
        received = images.stamps_ns()
        assert received[:30] == stamps * 3  # each pass plays the whole bag from its start
        assert "played" in player.output
    finally:
        probe.close()

"""rosbag2 files without ROS 2's rosbag2: what open_bag reads, what BagWriter writes, and how a
damaged recording is read up to where it breaks."""

from __future__ import annotations

import shutil

import pytest
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import Reader
from sensor_msgs.msg import Image

from cosmos_ros.msg import TaskContext
from cosmos_ros.nodes.bag_io import BagError, BagWriter, describe, message_class, open_bag, typestore_for

IMAGE, TASK = "sensor_msgs/msg/Image", "cosmos_ros/msg/TaskContext"
INFINITE = QosTime(2147483647, 4294967295)
LATCHED = Qos(
    QosHistory.KEEP_LAST, 1, QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL,
    INFINITE, INFINITE, QosLiveliness.AUTOMATIC, INFINITE, False,
)  # fmt: skip


def image(i: int) -> bytes:
    msg = Image(height=24, width=32, encoding="rgb8", step=96, data=bytes([i % 256]) * (24 * 96))
    msg.header.stamp.sec, msg.header.stamp.nanosec = 100 + i // 10, (i % 10) * 100_000_000
    msg.header.frame_id = "cam"
    return serialize_message(msg)


def task(i: int) -> bytes:
    return serialize_message(
        TaskContext(task_id=f"ep-{i}", task="stack the blocks", candidate_subtasks=["a", "b"])
    )


def write_bag(path, storage="mcap", frames=40):
    """40 frames at 10 Hz on /cam/image_raw and a task every 10 frames; returns what was written."""
    writer = BagWriter(path, storage)
    writer.add_topic("/cam/image_raw", IMAGE)
    writer.add_topic("/reasoner/task", TASK, [LATCHED])
    written = []
    for i in range(frames):
        if i % 10 == 0:
            written.append(("/reasoner/task", 100_000_000_000 + i * 100_000_000 - 1, task(i)))
        written.append(("/cam/image_raw", 100_000_000_000 + i * 100_000_000, image(i)))
    for topic, stamp, data in written:
        writer.write(topic, stamp, data)
    writer.close()
    return written


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_a_written_bag_reads_back_message_for_message(tmp_path, storage):
    written = write_bag(tmp_path / "bag", storage)
    bag = open_bag(tmp_path / "bag")
    assert bag.storage == storage and bag.problems == []
    assert {t.name: (t.msgtype, t.count) for t in bag.topics.values()} == {
        "/cam/image_raw": (IMAGE, 40),
        "/reasoner/task": (TASK, 4),
    }
    assert bag.topics["/reasoner/task"].qos == (LATCHED,)
    assert bag.start_ns == written[0][1] and bag.end_ns == written[-1][1]
    read = [(r.topic, r.timestamp_ns, r.data) for r in bag.messages()]
    assert read == written
    assert [r.topic for r in bag.messages(["/reasoner/task"])] == ["/reasoner/task"] * 4
    first = deserialize_message(read[1][2], Image)
    assert (first.width, first.height, first.header.frame_id, first.header.stamp.sec) == (32, 24, "cam", 100)


def test_the_bag_carries_our_message_definitions_for_other_tools(tmp_path):
    write_bag(tmp_path / "bag")
    with Reader(tmp_path / "bag") as reader:  # a reader that knows nothing of cosmos_ros
        connection = next(c for c in reader.connections if c.msgtype == TASK)
        assert "string[] candidate_subtasks" in connection.msgdef.data
        assert "MSG: std_msgs/Header" in connection.msgdef.data
        store = typestore_for([])  # the standard types only: ours must come from the definition
        assert TASK not in store.fielddefs
        from rosbags.typesys import get_types_from_msg

        store.register(get_types_from_msg(connection.msgdef.data.split("=" * 80)[0], TASK))
        _, _, data = next(m for m in reader.messages([connection]))
        decoded = store.deserialize_cdr(data, TASK)
    assert (decoded.task_id, decoded.task, list(decoded.candidate_subtasks)) == (
        "ep-0",
        "stack the blocks",
        ["a", "b"],
    )


def test_a_cut_off_mcap_plays_its_complete_messages(tmp_path):
    written = write_bag(tmp_path / "bag")
    file = next((tmp_path / "bag").glob("*.mcap"))
    size = file.stat().st_size
    for keep in (0.3, 0.7):
        torn = tmp_path / f"torn{keep}"
        shutil.copytree(tmp_path / "bag", torn)
        cut = int(size * keep)
        with open(torn / file.name, "r+b") as f:
            f.truncate(cut)
        bag = open_bag(torn)
        read = [(r.topic, r.timestamp_ns, r.data) for r in bag.messages()]
        assert 0 < len(read) < len(written)
        assert read == written[: len(read)]  # every message read is whole, in order
        # a message is lost only where the file ended inside it
        assert len(read) >= len(written) * keep - 3, (len(read), keep)
        assert any(f"cut off at byte {cut}" in p for p in bag.problems), bag.problems
        assert bag.topics["/cam/image_raw"].count == sum(1 for r in read if r[0] == "/cam/image_raw")


def test_a_recording_without_metadata_is_read_from_its_storage_file(tmp_path):
    written = write_bag(tmp_path / "bag")
    (tmp_path / "bag" / "metadata.yaml").unlink()
    bag = open_bag(tmp_path / "bag")
    assert [(r.topic, r.timestamp_ns, r.data) for r in bag.messages()] == written
    assert any("no metadata.yaml" in p for p in bag.problems)
    single = open_bag(next((tmp_path / "bag").glob("*.mcap")))  # a storage file on its own
    assert sum(t.count for t in single.topics.values()) == len(written)


def test_a_cut_off_sqlite_file_is_named_with_how_to_salvage_it(tmp_path):
    write_bag(tmp_path / "bag", "sqlite3")
    file = next((tmp_path / "bag").glob("*.db3"))
    with open(file, "r+b") as f:
        f.truncate(file.stat().st_size // 2)
    with pytest.raises(BagError, match=rf"{file.name}.*\.recover"):
        open_bag(tmp_path / "bag")


def test_what_is_not_a_bag_is_refused_by_name(tmp_path):
    with pytest.raises(BagError, match="no such bag"):
        open_bag(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BagError, match="not a rosbag2 bag"):
        open_bag(tmp_path / "empty")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(BagError, match="expected .mcap or .db3"):
        open_bag(tmp_path / "notes.txt")
    (tmp_path / "fake.mcap").write_bytes(b"not an mcap file at all")
    with pytest.raises(BagError, match="bad magic"):
        open_bag(tmp_path / "fake.mcap")
    write_bag(tmp_path / "bag")
    with pytest.raises(BagError, match="exists already"):
        BagWriter(tmp_path / "bag")


def test_a_type_without_a_definition_is_named(tmp_path):
    with pytest.raises(BagError, match="no_such_msgs/msg/Thing"):
        typestore_for(["no_such_msgs/msg/Thing"])
    with pytest.raises(ImportError):
        message_class("no_such_msgs/msg/Thing")
    assert message_class(TASK) is TaskContext


def test_describe_lists_topics_counts_and_problems(tmp_path):
    write_bag(tmp_path / "bag")
    (tmp_path / "bag" / "metadata.yaml").unlink()
    text = describe(open_bag(tmp_path / "bag"))
    assert "messages: 44" in text and "duration: 3.900 s" in text
    assert "/cam/image_raw       40  sensor_msgs/msg/Image" in text
    assert "problem:" in text and "no metadata.yaml" in text

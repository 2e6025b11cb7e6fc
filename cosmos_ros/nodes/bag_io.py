"""rosbag2 recordings without ROS 2's rosbag2_py: open, read and write them with `rosbags`.

`open_bag` takes what `ros2 bag record` leaves behind: a bag directory (metadata.yaml + MCAP
or sqlite3 files), a single .mcap / .db3 file, or a directory whose recording was cut off before
metadata.yaml was written. Messages come out as raw CDR bytes, which rclpy publishes as they
are. A torn MCAP file (a recorder killed, a full disk) has no summary at its end, which
`rosbags` needs; `_TornMcap` then reads it front to back and keeps every complete message, even
those in the unfinished last chunk, and the bag's `problems` say at which byte it stopped.

`typestore_for` gives the message definitions a written bag carries (so `ros2 bag info`,
Foxglove and rosbags can decode it): the standard ROS 2 types from rosbags' Kilted store, any
other type (ours: cosmos_ros/msg/...) parsed from its installed share/<pkg>/msg/<Name>.msg.

Pure Python: nothing here imports rclpy.
"""

from __future__ import annotations

import importlib
import mmap
import struct
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rosbags.interfaces import Qos
from rosbags.rosbag2 import Reader, ReaderError, StoragePlugin, Writer
from rosbags.rosbag2.metadata import parse_qos
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from cosmos_ros import resources

STORAGE_SUFFIXES = {".mcap": "mcap", ".db3": "sqlite3"}
_MCAP_MAGIC = b"\x89MCAP0\r\n"


class BagError(RuntimeError):
    """A path that holds no readable rosbag2 recording; the message says what was found."""


@dataclass(frozen=True)
class Topic:
    name: str
    msgtype: str  # e.g. "sensor_msgs/msg/Image"
    count: int  # messages on record (for a torn file: found so far, -1 before reading)
    qos: tuple[Qos, ...] = ()  # the publishers' offered profiles, as recorded


@dataclass(frozen=True)
class Record:
    topic: str
    timestamp_ns: int  # when the recorder received it (what playback timing follows)
    data: bytes  # the serialized (CDR) message


@dataclass
class Bag:
    """An opened recording: its topics, time span and what could not be read."""

    path: Path
    storage: str  # "mcap" | "sqlite3"
    topics: dict[str, Topic]
    start_ns: int
    end_ns: int
    problems: list[str] = field(default_factory=list)
    _sources: list = field(default_factory=list, repr=False)

    def messages(self, topics: Collection[str] | None = None) -> Iterator[Record]:
        """Records in recorded order (by timestamp within each file), optionally of some topics.
        A read error mid-file ends that file's records and is added to `problems`."""
        wanted = None if topics is None else set(topics)
        for source in self._sources:
            yield from source.records(wanted, self.problems)


def message_class(msgtype: str):
    """The Python class of "pkg/msg/Name" (ImportError / AttributeError when not installed)."""
    package, kind, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


def open_bag(path: str | Path) -> Bag:
    """Opens a bag directory, a .mcap or .db3 file, or a directory without metadata.yaml."""
    path = Path(path)
    if not path.exists():
        raise BagError(f"{path}: no such bag (expected a rosbag2 directory or a .mcap / .db3 file)")
    problems: list[str] = []
    if path.is_dir() and (path / "metadata.yaml").is_file():
        try:
            return _assemble(path, [_Rosbags(path)], problems)
        except ReaderError:
            pass  # a damaged storage file: read the files one by one below, each problem named
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in STORAGE_SUFFIXES)
        if not files:
            raise BagError(f"{path}: no metadata.yaml and no .mcap or .db3 file in it; not a rosbag2 bag")
        if not (path / "metadata.yaml").is_file():
            problems.append(
                f"{path}: no metadata.yaml (was the recording cut off?); reading its storage files"
            )
    elif path.suffix in STORAGE_SUFFIXES:
        files = [path]
    else:
        raise BagError(f"{path}: not a rosbag2 storage file (expected .mcap or .db3)")
    sources = [s for s in (_open_file(f, problems) for f in files) if s is not None]
    if not sources:
        raise BagError("; ".join(problems))
    return _assemble(path, sources, problems)


def _assemble(path: Path, sources: list, problems: list[str]) -> Bag:
    topics: dict[str, Topic] = {}
    for source in sources:
        for topic in source.topics:
            known = topics.get(topic.name)
            if known is not None and known.msgtype != topic.msgtype:
                problems.append(
                    f"topic {topic.name}: recorded as {known.msgtype} and {topic.msgtype}; keeping the first"
                )
                continue
            count = topic.count if known is None else known.count + topic.count
            topics[topic.name] = Topic(
                topic.name, topic.msgtype, count, topic.qos or (known.qos if known else ())
            )
    starts = [s.start_ns for s in sources if s.start_ns is not None]
    ends = [s.end_ns for s in sources if s.end_ns is not None]
    storage = sources[0].storage if sources else "mcap"
    return Bag(path, storage, topics, min(starts, default=0), max(ends, default=0), problems, sources)


def _open_file(path: Path, problems: list[str]):
    """A reader of one storage file, or None (and a problem) when nothing of it can be read."""
    try:
        return _Rosbags(path)
    except ReaderError as exc:
        if path.suffix == ".mcap":
            problems.append(
                f"{path}: no MCAP summary ({exc}): the recording was not closed; reading it front to back"
            )
            torn = _TornMcap(path)
            if torn.stop:
                problems.append(torn.stop)
            return torn
        # SQLite cannot open a file cut short; `sqlite3 FILE .recover` can salvage rows of it
        problems.append(f"{path}: cannot be read ({exc}); skipped (try: sqlite3 {path.name} .recover)")
        return None


class _Rosbags:
    """A bag or storage file rosbags can open."""

    def __init__(self, path: Path) -> None:
        self.reader = Reader(path)
        self.reader.open()
        self.path = path
        self.storage = "sqlite3" if path.suffix == ".db3" or any(path.glob("*.db3")) else "mcap"
        self.topics = [
            Topic(c.topic, c.msgtype, c.msgcount, tuple(c.ext.offered_qos_profiles))
            for c in self.reader.connections
        ]
        count = self.reader.message_count
        self.start_ns = self.reader.start_time if count else None
        self.end_ns = self.reader.end_time - 1 if count else None

    def records(self, wanted: set[str] | None, problems: list[str]) -> Iterator[Record]:
        connections = [c for c in self.reader.connections if wanted is None or c.topic in wanted]
        if not connections:
            return
        done = 0
        try:
            for connection, timestamp, data in self.reader.messages(connections=connections):
                yield Record(connection.topic, timestamp, bytes(data))
                done += 1
        except Exception as exc:  # a damaged page or chunk ends this file, not the playback
            problems.append(
                f"{self.path}: reading stopped after {done} messages: {type(exc).__name__}: {exc}"
            )


class _TornMcap:
    """An MCAP file read record by record from the front: what a recorder finished writing.

    Follows the MCAP format (mcap.dev/spec): magic, then records of an opcode byte, a u64 length
    and a body. Schemas (0x03) and channels (0x04) come before their messages (0x05), inside or
    outside chunks (0x06). An uncompressed chunk cut short still yields its complete messages;
    a compressed one can only be used whole."""

    storage = "mcap"

    def __init__(self, path: Path) -> None:
        self.path = path
        with path.open("rb") as file:
            if file.read(len(_MCAP_MAGIC)) != _MCAP_MAGIC:
                raise BagError(f"{path}: not an MCAP file (bad magic)")
            # mapped, not read: a recording of many gigabytes is paged in as it is scanned
            self.data = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        self.channels: dict[int, tuple[str, str, tuple[Qos, ...]]] = {}  # id -> topic, type, qos
        self.schemas: dict[int, str] = {}
        self.counts: dict[int, int] = {}
        self.start_ns = self.end_ns = None
        self.stop = ""  # why the scan ended early
        for _ in self._scan():  # one pass for the topics and the span
            pass
        self.topics = [Topic(t, m, self.counts.get(i, 0), q) for i, (t, m, q) in self.channels.items()]

    def records(self, wanted: set[str] | None, problems: list[str]) -> Iterator[Record]:
        for channel, timestamp, data in self._scan():
            topic = self.channels[channel][0]
            if wanted is None or topic in wanted:
                yield Record(topic, timestamp, data)
        if self.stop and self.stop not in problems:
            problems.append(self.stop)

    def _scan(self) -> Iterator[tuple[int, int, bytes]]:
        data, pos = self.data, len(_MCAP_MAGIC)
        self.counts = counts = {}
        while True:
            if pos + 9 > len(data):
                self._stopped(f"the file ends inside the record header at byte {pos}")
                break
            opcode, length = data[pos], struct.unpack_from("<Q", data, pos + 1)[0]
            body_start = pos + 9
            if opcode == 0x0F:  # data end: the summary follows
                break
            complete = body_start + length <= len(data)
            if opcode == 0x06:
                yield from self._chunk(data, body_start, min(body_start + length, len(data)), counts)
            elif complete:
                yield from self._record(opcode, data[body_start : body_start + length], counts)
            if not complete:
                self._stopped(f"the {'chunk' if opcode == 0x06 else 'record'} at byte {pos} is cut short")
                break
            pos = body_start + length

    def _chunk(self, data: bytes, start: int, end: int, counts: dict) -> Iterator:
        if end - start < 32:
            return
        compression_len = struct.unpack_from("<I", data, start + 28)[0]
        compression = data[start + 32 : start + 32 + compression_len].decode()
        records_at = start + 32 + compression_len + 8
        if compression:
            if end < records_at:
                return
            size = struct.unpack_from("<Q", data, records_at - 8)[0]
            if records_at + size > end:
                return  # a compressed chunk cut short cannot be decompressed
            inner = _decompress(compression, data[records_at : records_at + size])
        else:
            inner = data[records_at:end]
        pos = 0
        while pos + 9 <= len(inner):
            opcode, length = inner[pos], struct.unpack_from("<Q", inner, pos + 1)[0]
            if pos + 9 + length > len(inner):
                break
            yield from self._record(opcode, inner[pos + 9 : pos + 9 + length], counts)
            pos += 9 + length

    def _record(self, opcode: int, body: bytes, counts: dict) -> Iterator[tuple[int, int, bytes]]:
        if opcode == 0x03:
            schema_id = struct.unpack_from("<H", body)[0]
            name, _ = _string(body, 2)
            self.schemas[schema_id] = name
        elif opcode == 0x04:
            channel_id, schema_id = struct.unpack_from("<HH", body)
            topic, at = _string(body, 4)
            _, at = _string(body, at)  # message encoding
            qos = ()
            metadata_end = at + 4 + struct.unpack_from("<I", body, at)[0]
            at += 4
            while at < metadata_end:
                key, at = _string(body, at)
                value, at = _string(body, at)
                if key == "offered_qos_profiles":
                    qos = tuple(parse_qos(value))
            self.channels[channel_id] = (topic, self.schemas.get(schema_id, ""), qos)
        elif opcode == 0x05:
            channel_id, _, log_time = struct.unpack_from("<HIQ", body)
            if channel_id in self.channels:
                counts[channel_id] = counts.get(channel_id, 0) + 1
                self.start_ns = log_time if self.start_ns is None else min(self.start_ns, log_time)
                self.end_ns = log_time if self.end_ns is None else max(self.end_ns, log_time)
                yield channel_id, log_time, body[22:]

    def _stopped(self, why: str) -> None:
        found = sum(self.counts.values()) if self.counts else 0
        self.stop = (
            f"{self.path} is cut off at byte {len(self.data)}: {why}; {found} complete messages before it"
        )


def _string(body: bytes, at: int) -> tuple[str, int]:
    size = struct.unpack_from("<I", body, at)[0]
    return body[at + 4 : at + 4 + size].decode(), at + 4 + size


def _decompress(compression: str, data: bytes) -> bytes:
    if compression == "zstd":
        try:
            from compression import zstd  # Python 3.14
        except ImportError:
            from backports import zstd
        return zstd.decompress(data)
    if compression == "lz4":
        import lz4.frame

        return lz4.frame.decompress(data)
    raise BagError(f"unknown MCAP chunk compression {compression!r}")


def describe(bag: Bag) -> str:
    """What `ros2 bag info` tells: storage, span, messages per topic with type, and problems."""
    span = (bag.end_ns - bag.start_ns) * 1e-9 if bag.topics else 0.0
    lines = [
        f"bag:      {bag.path}",
        f"storage:  {bag.storage}",
        f"duration: {span:.3f} s",
        f"start:    {bag.start_ns * 1e-9:.9f}",
        f"messages: {sum(max(t.count, 0) for t in bag.topics.values())}",
        "topics:",
    ]
    width = max((len(t) for t in bag.topics), default=0)
    lines += [f"  {t.name:<{width}}  {t.count:>7}  {t.msgtype}" for t in bag.topics.values()]
    lines += [f"problem: {p}" for p in bag.problems]
    return "\n".join(lines)


# ---- writing ----------------------------------------------------------------------------------


def typestore_for(msgtypes: Collection[str]) -> Typestore:
    """rosbags' ROS 2 Kilted types plus every type of `msgtypes` (and what they use) that it
    lacks, read from the installed share/<pkg>/msg/<Name>.msg. BagError names a type whose
    definition is nowhere to be found."""
    store = get_typestore(Stores.ROS2_KILTED)
    pending = [t for t in msgtypes if t not in store.fielddefs]
    while pending:
        msgtype = pending.pop()
        if msgtype in store.fielddefs:
            continue
        store.register(get_types_from_msg(_definition(msgtype), msgtype))
        pending += [t for t in _referenced(store, msgtype) if t not in store.fielddefs]
    return store


def _definition(msgtype: str) -> str:
    package, kind, name = msgtype.split("/")
    for root in resources.share_roots(package):
        file = root / kind / f"{name}.msg"
        if file.is_file():
            return file.read_text()
    raise BagError(f"no definition of {msgtype}: {package}/{kind}/{name}.msg is in no share directory")


def _referenced(store: Typestore, msgtype: str) -> list[str]:
    """The message types `msgtype`'s fields use (nested, arrays, sequences)."""
    found = []
    for _, (node_type, detail) in store.fielddefs[msgtype][1]:
        if node_type.name == "NAME":
            found.append(detail)
        elif node_type.name in ("ARRAY", "SEQUENCE") and detail[0][0].name == "NAME":
            found.append(detail[0][1])
    return found


class BagWriter:
    """Writes raw messages to a new rosbag2 directory (MCAP by default), one connection per
    topic, with each type's definition so other tools can read it."""

    def __init__(self, path: str | Path, storage: str = "mcap") -> None:
        plugins = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
        if storage not in plugins:
            raise ValueError(f"storage must be mcap or sqlite3, got {storage!r}")
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f"{self.path} exists already; choose a new directory for the recording")
        self._writer = Writer(self.path, version=9, storage_plugin=plugins[storage])
        self._writer.open()
        self._connections: dict[str, object] = {}
        self.counts: dict[str, int] = {}

    def add_topic(self, topic: str, msgtype: str, qos: Collection[Qos] = ()) -> None:
        store = typestore_for([msgtype])
        self._connections[topic] = self._writer.add_connection(
            topic, msgtype, typestore=store, offered_qos_profiles=list(qos)
        )
        self.counts[topic] = 0

    def write(self, topic: str, timestamp_ns: int, data: bytes) -> None:
        self._writer.write(self._connections[topic], int(timestamp_ns), data)
        self.counts[topic] += 1

    def close(self) -> None:
        self._writer.close()

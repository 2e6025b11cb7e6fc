"""Running a resolved launch graph: one process per node, their output streamed with the node's
name, their parameter files written just before they start, and all of them stopped together."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cosmos_ros.transport import configure_transport


@dataclass
class NodeProcess:
    """One node of the graph, resolved: the command line and environment to run it with, and the
    parameter files its command line names, written by run_graph just before the node starts."""

    label: str
    command: list[str]
    env: dict[str, str]
    parameter_files: dict[str, dict] = field(default_factory=dict)  # path -> YAML document
    process: subprocess.Popen | None = None
    last_line: str = ""


def _fresh_parameter_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"cosmos_ros_launch_{os.getpid()}_{secrets.token_hex(4)}"


@dataclass
class Graph:
    nodes: list[NodeProcess] = field(default_factory=list)
    arguments: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (default, description)
    parameter_dir: Path = field(default_factory=_fresh_parameter_dir)


def write_parameter_files(graph: Graph) -> bool:
    """Writes the nodes' parameter files into graph.parameter_dir; False when there are none."""
    documents = {path: doc for node in graph.nodes for path, doc in node.parameter_files.items()}
    if not documents:
        return False
    # mkdir without exist_ok: a directory someone else made under that name is not ours to use.
    graph.parameter_dir.mkdir(mode=0o700)
    for path, document in documents.items():
        Path(path).write_text(yaml.safe_dump(document, default_flow_style=False, sort_keys=False))
    return True


def _pump(node: NodeProcess, sink) -> None:
    for line in iter(node.process.stdout.readline, ""):
        if line.strip():
            node.last_line = line.strip()
        sink.write(f"[{node.label}] {line}")
        sink.flush()
    node.process.stdout.close()


def _exit_reason(code: int) -> str:
    return f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"


def run_graph(graph: Graph, *, duration_s: float | None = None, sink=None, grace_s: float = 10.0) -> int:
    """Starts every node, streams their output, stops them all on Ctrl-C / SIGTERM / timeout or
    when any node exits (naming the node and its last output line when it failed). Returns 0
    when all stopped cleanly, else the first non-zero code."""
    sink = sink or sys.stdout
    note = configure_transport(env := {})
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    pumps: dict[int, threading.Thread] = {}
    reported: set[int] = set()
    wrote_parameters = False
    try:
        wrote_parameters = write_parameter_files(graph)
        started = time.monotonic()
        for node in graph.nodes:
            node.env.setdefault("PYTHONUNBUFFERED", "1")
            for key, value in env.items():
                node.env.setdefault(key, value)
            node.process = subprocess.Popen(
                node.command,
                env=node.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,  # we deliver the signals, once, in order
            )
            pumps[id(node)] = threading.Thread(target=_pump, args=(node, sink), daemon=True)
            pumps[id(node)].start()
        sink.write(f"[launch] started {len(graph.nodes)} nodes; transport: {note}\n")
        deadline = time.monotonic() + duration_s if duration_s else None
        while not stop.is_set():
            exited = [n for n in graph.nodes if n.process.poll() is not None]
            if exited:
                first = exited[0]
                if first.process.returncode not in (0, -signal.SIGINT):
                    pumps[id(first)].join(timeout=2)  # its last words, before we quote them
                    sink.write(
                        f"[launch] {first.label} {_exit_reason(first.process.returncode)} after "
                        f"{time.monotonic() - started:.1f} s: {first.last_line or '(no output)'}"
                        " -- stopping the graph\n"
                    )
                    reported.add(id(first))
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            stop.wait(0.2)
    finally:
        codes = _shutdown(graph, grace_s, sink, reported)
        for pump in pumps.values():
            pump.join(timeout=2)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if wrote_parameters:
            shutil.rmtree(graph.parameter_dir, ignore_errors=True)
    bad = [c for c in codes if c not in (0, -signal.SIGINT)]
    return bad[0] if bad else 0


def _shutdown(graph: Graph, grace_s: float, sink, reported: set[int]) -> list[int]:
    alive = [n for n in graph.nodes if n.process is not None and n.process.poll() is None]
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        for node in alive:
            try:
                node.process.send_signal(sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace_s
        while alive and time.monotonic() < deadline:
            alive = [n for n in alive if n.process.poll() is None]
            time.sleep(0.05)
        if not alive:
            break
        sink.write(f"[launch] {', '.join(n.label for n in alive)} ignored {signal.Signals(sig).name}\n")
        grace_s = 3.0
    codes = []
    for node in graph.nodes:
        if node.process is not None:
            code = node.process.wait()
            if code not in (0, -signal.SIGINT) and id(node) not in reported:
                sink.write(f"[launch] {node.label} exited with {code}\n")
            codes.append(code)
    return codes

"""The pip-install launcher: runs the graphs of launch/*.launch.yaml without ROS 2's launch tools.

The launch files are ROS 2 YAML launch files (`ros2 launch cosmos_ros demo.launch.yaml` reads
the very same file), so a graph has one source of truth. This reads the subset our files use:

    launch:                          # list of actions, run in order
    - arg: {name, default, description}
    - let: {name, value}
    - set_env: {name, value}
    - include: {file, arg: [{name, value}]}
    - node: {pkg, exec, name, namespace, output, args, param: [{name, value} | {from}],
             remap: [{from, to}], env: [{name, value}]}

with the substitutions $(var NAME), $(env NAME [DEFAULT]), $(find-pkg-share PKG) and
$(dirname). Anything else is refused with an error naming it, rather than silently skipped.

Each node runs as its own process with `--ros-args` built exactly as launch_ros builds them
(`-r __node:=`, `-r __ns:=`, `--params-file`, `-p name:=value`, `-r from:=to`). Ctrl-C (or
SIGTERM) sends SIGINT to every node, waits, then escalates to SIGTERM and SIGKILL.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cosmos_ros.transport import configure_transport

PACKAGE = "cosmos_ros"
# Our executables run as modules of this interpreter: no PATH lookups, no stale copies.
EXECUTABLES = {
    "reasoner": "cosmos_ros.nodes.reasoner",
    "reasoner_lifecycle": "cosmos_ros.nodes.reasoner_lifecycle",
    "video_camera": "cosmos_ros.nodes.video_camera",
    "planner_listener": "cosmos_ros.nodes.planner_listener",
    "sim_camera": "cosmos_ros.nodes.sim_camera",
    "evaluator": "cosmos_ros.nodes.evaluator",
}
_SUBSTITUTION = re.compile(r"\$\(([a-z-]+)((?:\s+[^)\s]+)*)\s*\)")


class LaunchError(ValueError):
    """A launch file or argument the launcher cannot run; the message says which and why."""


def share_directories(package: str) -> list[Path]:
    """Where `package`'s share/ may be, the copy that belongs to this code first: the source
    tree (editable install), this environment's share/, then AMENT_PREFIX_PATH."""
    candidates = []
    if package == PACKAGE:
        candidates.append(Path(__file__).resolve().parent.parent)
    candidates.append(Path(sys.prefix) / "share" / package)
    candidates += [
        Path(p) / "share" / package for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p
    ]
    return [
        c
        for c in candidates
        if (c / "package.xml").is_file() and (package != PACKAGE or (c / "launch").is_dir())
    ]


def find_launch_file(name: str) -> Path:
    """`demo`, `demo.launch.yaml` or a path → the YAML launch file."""
    path = Path(name).expanduser()
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path.resolve()
    stem = name.removesuffix(".yaml").removesuffix(".py").removesuffix(".launch")
    for share in share_directories(PACKAGE):
        candidate = share / "launch" / f"{stem}.launch.yaml"
        if candidate.is_file():
            return candidate
    available = sorted(
        {
            p.name.removesuffix(".launch.yaml")
            for s in share_directories(PACKAGE)
            for p in (s / "launch").glob("*.launch.yaml")
        }
    )
    raise LaunchError(f"no launch file {name!r}; available: {', '.join(available) or 'none found'}")


@dataclass
class NodeProcess:
    """One node of the graph, resolved: the command line and environment to run it with."""

    label: str
    command: list[str]
    env: dict[str, str]
    process: subprocess.Popen | None = None


@dataclass
class Graph:
    nodes: list[NodeProcess] = field(default_factory=list)
    arguments: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (default, description)


class _Context:
    def __init__(self, file: Path, arguments: dict[str, str], env: dict[str, str]):
        self.file = file
        self.variables: dict[str, str] = {}
        self.given = dict(arguments)
        self.env = env

    def substitute(self, value) -> str:
        if isinstance(value, (list, tuple)):
            return "[" + ", ".join(self.substitute(v) for v in value) + "]"
        if not isinstance(value, str):
            return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
        return _SUBSTITUTION.sub(self._one, value)

    def _one(self, match: re.Match) -> str:
        kind, args = match.group(1), match.group(2).split()
        if kind == "var":
            if args[0] not in self.variables:
                raise LaunchError(f"{self.file.name}: $(var {args[0]}) is not declared")
            return self.variables[args[0]]
        if kind == "env":
            if args[0] in self.env:
                return self.env[args[0]]
            if len(args) > 1:
                return args[1]
            raise LaunchError(f"{self.file.name}: environment variable {args[0]} is not set")
        if kind == "find-pkg-share":
            shares = share_directories(args[0])
            if not shares:
                raise LaunchError(f"{self.file.name}: package {args[0]!r} not found")
            return str(shares[0])
        if kind == "dirname":
            return str(self.file.parent)
        raise LaunchError(f"{self.file.name}: unsupported substitution $({kind})")


def _node_command(spec: dict, ctx: _Context) -> NodeProcess:
    unknown = set(spec) - {"pkg", "exec", "name", "namespace", "output", "args", "param", "remap", "env"}
    if unknown:
        raise LaunchError(f"{ctx.file.name}: node attributes {sorted(unknown)} are not supported here")
    pkg, exe = ctx.substitute(spec["pkg"]), ctx.substitute(spec["exec"])
    if pkg == PACKAGE and exe in EXECUTABLES:
        command = [sys.executable, "-m", EXECUTABLES[exe]]
    else:
        found = [
            Path(p) / "lib" / pkg / exe
            for p in ctx.env.get("AMENT_PREFIX_PATH", "").split(os.pathsep)
            if p and (Path(p) / "lib" / pkg / exe).is_file()
        ]
        if not found:
            raise LaunchError(f"{ctx.file.name}: executable {exe!r} of package {pkg!r} not found")
        command = [str(found[0])]
    if "args" in spec:
        command += shlex.split(ctx.substitute(spec["args"]))
    command.append("--ros-args")
    name = ctx.substitute(spec["name"]) if "name" in spec else exe
    if "name" in spec:
        command += ["-r", f"__node:={name}"]
    namespace = ctx.substitute(spec.get("namespace", "")).strip("/")
    if namespace:
        command += ["-r", f"__ns:=/{namespace}"]
    for param in spec.get("param", []):
        if "from" in param:
            path = Path(ctx.substitute(param["from"]))
            if not path.is_file():
                raise LaunchError(f"{ctx.file.name}: parameter file {path} not found")
            command += ["--params-file", str(path)]
        else:
            command += ["-p", f"{ctx.substitute(param['name'])}:={ctx.substitute(param['value'])}"]
    for remap in spec.get("remap", []):
        command += ["-r", f"{ctx.substitute(remap['from'])}:={ctx.substitute(remap['to'])}"]
    env = dict(ctx.env)
    for item in spec.get("env", []):
        env[ctx.substitute(item["name"])] = ctx.substitute(item["value"])
    label = f"/{namespace}/{name}" if namespace else f"/{name}"
    return NodeProcess(label=label, command=command, env=env)


def load_graph(file: Path, arguments: dict[str, str], env: dict[str, str] | None = None) -> Graph:
    """Resolves a YAML launch file into the node processes it would start."""
    env = dict(os.environ if env is None else env)
    graph = Graph()
    _load(Path(file), arguments, env, graph, depth=0)
    return graph


def _load(file: Path, arguments: dict[str, str], env: dict[str, str], graph: Graph, depth: int) -> None:
    if depth > 8:
        raise LaunchError(f"{file.name}: includes nested more than 8 deep")
    try:
        document = yaml.safe_load(file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise LaunchError(f"cannot read launch file {file}: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("launch"), list):
        raise LaunchError(f"{file}: expected a top-level 'launch:' list")
    ctx = _Context(file, arguments, env)
    for entry in document["launch"]:
        if not isinstance(entry, dict) or len(entry) != 1:
            raise LaunchError(f"{file.name}: each action must be a one-key mapping, got {entry!r}")
        ((kind, spec),) = entry.items()
        if kind == "arg":
            name = spec["name"]
            if depth == 0:
                graph.arguments[name] = (str(spec.get("default", "")), spec.get("description", ""))
            if name in ctx.given:
                ctx.variables[name] = ctx.given[name]
            elif "default" in spec:
                ctx.variables[name] = ctx.substitute(spec["default"])
            else:
                raise LaunchError(f"{file.name}: argument {name!r} is required (pass {name}:=VALUE)")
        elif kind == "let":
            ctx.variables[spec["name"]] = ctx.substitute(spec["value"])
        elif kind == "set_env":
            env[ctx.substitute(spec["name"])] = ctx.substitute(spec["value"])
        elif kind == "include":
            included = Path(ctx.substitute(spec["file"]))
            args = {a["name"]: ctx.substitute(a["value"]) for a in spec.get("arg", [])}
            # As in ros2 launch, the included file sees the launch configurations set so far.
            _load(included, {**ctx.given, **ctx.variables, **args}, env, graph, depth + 1)
        elif kind == "node":
            graph.nodes.append(_node_command(spec, ctx))
        else:
            raise LaunchError(f"{file.name}: action {kind!r} is not supported by cosmos-ros launch")
    if depth == 0:
        unknown = set(arguments) - set(graph.arguments)
        if unknown:
            raise LaunchError(
                f"{file.name}: unknown arguments {sorted(unknown)}; it takes {sorted(graph.arguments) or 'none'}"
            )


def _pump(stream, label: str, sink) -> None:
    for line in iter(stream.readline, ""):
        sink.write(f"[{label}] {line}")
        sink.flush()
    stream.close()


def run_graph(graph: Graph, *, duration_s: float | None = None, sink=None, grace_s: float = 10.0) -> int:
    """Starts every node, streams their output, stops them all on Ctrl-C / SIGTERM / timeout or
    when any node exits. Returns 0 when all stopped cleanly, else the first non-zero code."""
    sink = sink or sys.stdout
    note = configure_transport(env := {})
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    pumps = []
    try:
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
            pump = threading.Thread(target=_pump, args=(node.process.stdout, node.label, sink), daemon=True)
            pump.start()
            pumps.append(pump)
        sink.write(f"[launch] started {len(graph.nodes)} nodes; transport: {note}\n")
        deadline = time.monotonic() + duration_s if duration_s else None
        while not stop.is_set():
            if any(n.process.poll() is not None for n in graph.nodes):
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            stop.wait(0.2)
    finally:
        codes = _shutdown(graph, grace_s, sink)
        for pump in pumps:
            pump.join(timeout=2)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    bad = [c for c in codes if c not in (0, -signal.SIGINT)]
    return bad[0] if bad else 0


def _shutdown(graph: Graph, grace_s: float, sink) -> list[int]:
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
            if code not in (0, -signal.SIGINT):
                sink.write(f"[launch] {node.label} exited with {code}\n")
            codes.append(code)
    return codes


def parse_arguments(items: list[str]) -> dict[str, str]:
    """['model:=tiny-dense', ...] → {'model': 'tiny-dense'}."""
    arguments = {}
    for item in items:
        name, sep, value = item.partition(":=")
        if not sep or not name:
            raise LaunchError(f"launch arguments look like name:=value, got {item!r}")
        arguments[name] = value
    return arguments

"""The pip-install launcher: runs the graphs of launch/*.launch.yaml without ROS 2's launch tools.

The launch files are ROS 2 YAML launch files (`ros2 launch cosmos_ros demo.launch.yaml` reads
the very same file), so a graph has one source of truth. This reads a subset of the format:

    launch:                          # list of actions, run in order
    - arg: {name, default, description, choice: [{value}]}
    - let: {name, value}
    - set_env: {name, value}
    - include: {file, arg: [{name, value}]}
    - node: {pkg, exec, name, namespace, output, args, ros_args,
             param: [{name, value} | {name, param: [...]} | {from}],
             remap: [{from, to}], env: [{name, value}]}

with the substitutions $(var NAME), $(env NAME [DEFAULT]), $(find-pkg-share PKG) and
$(dirname), and gives each construct the meaning launch / launch_ros give it (see README,
"Launch", and tests/launch/test_conformance.py). Anything else is refused with an error naming
it, rather than silently skipped. Two things are refused on purpose where ros2 launch carries on:
a command-line argument no file of the graph declares (ros2 launch ignores it) and a missing
`from:` parameter file (ros2 launch warns and starts the node without it).

Each node runs as its own process with `--ros-args` built as launch_ros builds them
(`-r __node:=`, `-r __ns:=`, `--params-file`, `-r from:=to`); name/value parameters go into a
parameter file keyed by the node's full name, written when the graph starts, as launch_ros
does, so rcl reads their types from YAML exactly as under ros2 launch. Ctrl-C (or SIGTERM)
sends SIGINT to every node, waits, then escalates to SIGTERM and SIGKILL.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import yaml

# The front door of the launcher: reading files here, running them in launch_process.
from cosmos_ros import resources
from cosmos_ros.launch_process import Graph, NodeProcess, run_graph
from cosmos_ros.launch_values import (
    LaunchError,
    Substitution,
    parameter_value,
    parse_template,
    perform,
    same_value,
    split_command_line,
)

__all__ = ["Graph", "LaunchError", "NodeProcess", "find_launch_file", "load_graph", "parse_arguments",
           "run_graph", "share_directories"]

PACKAGE = resources.PACKAGE
# Our executables run as modules of this interpreter: no PATH lookups, no stale copies.
EXECUTABLES = {
    "reasoner": "cosmos_ros.nodes.reasoner",
    "reasoner_lifecycle": "cosmos_ros.nodes.reasoner_lifecycle",
    "video_camera": "cosmos_ros.nodes.video_camera",
    "planner_listener": "cosmos_ros.nodes.planner_listener",
    "sim_camera": "cosmos_ros.nodes.sim_camera",
    "evaluator": "cosmos_ros.nodes.evaluator",
    "bag_record": "cosmos_ros.nodes.bag_record",
}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # rcl's rule for a node name and a namespace token
_MAX_INCLUDE_DEPTH = 8


def share_directories(package: str) -> list[Path]:
    """Where `package`'s share/ may be, the copy that belongs to this code first (see
    cosmos_ros.resources); for this package, only the roots that hold launch files."""
    roots = resources.share_roots(package)
    return [root for root in roots if package != PACKAGE or (root / "launch").is_dir()]


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


class _Launch:
    """What every file of one graph shares. Like ros2 launch, an include does not scope launch
    configurations or the environment: what an included file sets stays set after it."""

    def __init__(self, arguments: dict[str, str], env: dict[str, str], graph: Graph):
        self.configurations = dict(arguments)
        self.env = env
        self.graph = graph
        self.declared: set[str] = set()


class _File:
    """One launch file being read: its actions run in order against the shared _Launch."""

    def __init__(self, path: Path, launch: _Launch, passed: set[str], depth: int):
        self.path, self.launch, self.passed, self.depth = path, launch, passed, depth

    def fail(self, why: str) -> LaunchError:
        return LaunchError(f"{self.path.name}: {why}")

    # ---- values ----------------------------------------------------------------------------

    def resolve(self, sub: Substitution) -> str:
        args = [perform(a, self.resolve) for a in sub.arguments]
        expected = {
            "var": (1, 1), "env": (1, 2), "find-pkg-share": (1, 1), "dirname": (0, 0), "equals": (2, 2),
            "not-equals": (2, 2),
        }  # fmt: skip
        if sub.kind not in expected:
            supported = ", ".join(f"$({k})" for k in expected)
            raise self.fail(f"unsupported substitution $({sub.kind}); supported: {supported}")
        low, high = expected[sub.kind]
        if not low <= len(args) <= high:
            raise self.fail(f"$({sub.kind}) takes {low}..{high} arguments, got {args}")
        if sub.kind == "var":
            if args[0] not in self.launch.configurations:
                raise self.fail(f"$(var {args[0]}) is not declared (no arg or let sets it before this point)")
            return self.launch.configurations[args[0]]
        if sub.kind == "env":
            if args[0] in self.launch.env:
                return self.launch.env[args[0]]
            if len(args) > 1:
                return args[1]
            raise self.fail(f"environment variable {args[0]} is not set and $(env {args[0]}) has no default")
        if sub.kind in ("equals", "not-equals"):
            return str(same_value(*args) == (sub.kind == "equals")).lower()
        if sub.kind == "find-pkg-share":
            shares = share_directories(args[0])
            if not shares:
                raise self.fail(f"package {args[0]!r} not found")
            return str(shares[0])
        return str(self.path.parent)

    def text(self, spec: dict, key: str, what: str) -> str:
        """A string attribute with substitutions. Like launch_yaml, a YAML number or bool is
        refused here rather than converted: `default: 15` is an error, `default: "15"` is not."""
        if key not in spec:
            raise self.fail(f"{what} needs '{key}'")
        value = spec[key]
        if not isinstance(value, str):
            raise self.fail(f"{what} '{key}' must be a string, got {value!r} ({type(value).__name__}); quote it")
        return perform(parse_template(value), self.resolve)

    def literal(self, spec: dict, key: str, what: str) -> str:
        if not isinstance(spec.get(key), str):
            raise self.fail(f"{what} '{key}' must be a string, got {spec.get(key)!r}")
        return spec[key]

    def check_keys(self, spec, allowed: set[str], what: str) -> None:
        if not isinstance(spec, dict):
            raise self.fail(f"{what} must be a mapping, got {spec!r}")
        unknown = set(spec) - allowed
        if unknown:
            raise self.fail(
                f"{what} attributes {sorted(unknown)} are not supported here; supported: {sorted(allowed)}"
            )

    def entries(self, spec: dict, key: str, what: str) -> list[dict]:
        value = spec.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(f"{what} '{key}' must be a list of mappings, got {value!r}")
        return value

    # ---- actions ---------------------------------------------------------------------------

    def run(self) -> None:
        if self.depth > _MAX_INCLUDE_DEPTH:
            raise self.fail(f"includes nested more than {_MAX_INCLUDE_DEPTH} deep")
        try:
            document = yaml.safe_load(self.path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise LaunchError(f"cannot read launch file {self.path}: {exc}") from exc
        if not isinstance(document, dict) or not isinstance(document.get("launch"), list):
            raise LaunchError(f"{self.path}: expected a top-level 'launch:' list")
        actions = {"arg": self.arg, "let": self.let, "set_env": self.set_env, "include": self.include,
                   "node": self.node}
        for entry in document["launch"]:
            if not isinstance(entry, dict) or len(entry) != 1:
                raise self.fail(f"each action must be a one-key mapping, got {entry!r}")
            ((kind, spec),) = entry.items()
            if kind not in actions:
                raise self.fail(f"action {kind!r} is not supported by cosmos-ros launch")
            if isinstance(spec, dict) and kind in ("node", "include", "let", "set_env"):
                spec = dict(spec)
                if not self.condition(spec.pop("if", None), spec.pop("unless", None), kind):
                    continue
            actions[kind](spec)

    def condition(self, when, unless, what: str) -> bool:
        """An action's `if` / `unless`, as launch's IfCondition / UnlessCondition evaluate them:
        the text after substitutions must be true/1 or false/0 (any case)."""
        result = True
        for key, expression, wanted in (("if", when, True), ("unless", unless, False)):
            if expression is None:
                continue
            value = self.text({key: expression}, key, what).strip().lower()
            if value not in ("true", "1", "false", "0"):
                raise self.fail(f"{what} '{key}: {expression}' gave {value!r}; expected true, false, 1 or 0")
            result = result and (value in ("true", "1")) == wanted
        return result

    def arg(self, spec) -> None:
        self.check_keys(spec, {"name", "default", "description", "choice"}, "arg")
        name = self.literal(spec, "name", "arg")
        default = self.literal(spec, "default", f"arg {name!r}") if "default" in spec else None
        self.launch.declared.add(name)
        if self.depth == 0:
            self.launch.graph.arguments[name] = (default or "", str(spec.get("description", "")))
        if default is None and name not in self.passed:
            if self.depth == 0:
                raise self.fail(f"argument {name!r} is required (pass {name}:=VALUE)")
            raise self.fail(f"argument {name!r} is required and the include of this file does not pass it")
        if name not in self.launch.configurations:
            self.launch.configurations[name] = perform(parse_template(default), self.resolve)
        choices = [self.literal(c, "value", f"arg {name!r} choice") for c in self.entries(spec, "choice", "arg")]
        value = self.launch.configurations[name]
        if choices and value not in choices:
            raise self.fail(f"argument {name!r} is {value!r}; expected one of {choices}")

    def let(self, spec) -> None:
        self.check_keys(spec, {"name", "value"}, "let")
        self.launch.configurations[self.text(spec, "name", "let")] = self.text(spec, "value", "let")

    def set_env(self, spec) -> None:
        self.check_keys(spec, {"name", "value"}, "set_env")
        self.launch.env[self.text(spec, "name", "set_env")] = self.text(spec, "value", "set_env")

    def include(self, spec) -> None:
        self.check_keys(spec, {"file", "arg"}, "include")
        path = Path(self.text(spec, "file", "include"))
        if path.suffix not in (".yaml", ".yml"):
            raise self.fail(f"include of {path.name}: cosmos-ros launch reads YAML launch files only")
        passed = set()
        # As in launch, the include's arguments are set in the including file's scope, one after
        # the other, before the included file runs.
        for item in self.entries(spec, "arg", "include"):
            self.check_keys(item, {"name", "value"}, "include arg")
            name = self.text(item, "name", "include arg")
            self.launch.configurations[name] = self.text(item, "value", f"include arg {name!r}")
            passed.add(name)
        _File(path, self.launch, passed, self.depth + 1).run()

    def node(self, spec) -> None:
        allowed = {"pkg", "exec", "name", "namespace", "output", "args", "ros_args", "param", "remap", "env"}
        self.check_keys(spec, allowed, "node")
        exe = self.text(spec, "exec", "node")
        command = self.executable(self.text(spec, "pkg", "node") if "pkg" in spec else None, exe)
        for key in ("args", "ros_args"):
            if key in spec:
                words = split_command_line(parse_template(self.literal(spec, key, "node")), self.resolve)
                command += ["--ros-args", *words] if key == "ros_args" else words
        command.append("--ros-args")
        name = namespace = None
        if "name" in spec:
            name = self.text(spec, "name", "node")
            if not _NAME.fullmatch(name):
                raise self.fail(f"node name {name!r} is not a valid ROS name (letters, digits, _; not a digit first)")
            command += ["-r", f"__node:={name}"]
        if "namespace" in spec:
            namespace = _absolute_namespace(self.text(spec, "namespace", "node"))
            if namespace != "/" and not all(_NAME.fullmatch(t) for t in namespace[1:].split("/")):
                raise self.fail(f"namespace {namespace!r} is not a valid ROS namespace")
            command += ["-r", f"__ns:={namespace}"]
        label = _full_name(namespace or "/", name or exe)
        # launch_ros keys a node's parameters by its full name only when both are given.
        key = label if name is not None and namespace is not None else "/**"
        node = NodeProcess(label=label, command=command, env=dict(self.launch.env))
        for index, source in enumerate(self.parameter_sources(self.entries(spec, "param", "node"))):
            if isinstance(source, Path):
                command += ["--params-file", str(source)]
            else:
                stem = label.strip("/").replace("/", ".") or "root"
                path = self.launch.graph.parameter_dir / f"{len(self.launch.graph.nodes):02d}.{stem}.{index}.yaml"
                node.parameter_files[str(path)] = {key: {"ros__parameters": source}}
                command += ["--params-file", str(path)]
        for remap in self.entries(spec, "remap", "node"):
            self.check_keys(remap, {"from", "to"}, "remap")
            command += ["-r", f"{self.text(remap, 'from', 'remap')}:={self.text(remap, 'to', 'remap')}"]
        for item in self.entries(spec, "env", "node"):
            self.check_keys(item, {"name", "value"}, "node env")
            node.env[self.text(item, "name", "node env")] = self.text(item, "value", "node env")
        self.launch.graph.nodes.append(node)

    def executable(self, pkg: str | None, exe: str) -> list[str]:
        if pkg is None:
            return [exe]
        if pkg == PACKAGE and exe in EXECUTABLES:
            return [sys.executable, "-m", EXECUTABLES[exe]]
        for prefix in self.launch.env.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
            if prefix and (Path(prefix) / "lib" / pkg / exe).is_file():
                return [str(Path(prefix) / "lib" / pkg / exe)]
        raise self.fail(f"executable {exe!r} of package {pkg!r} not found")

    def parameter_sources(self, entries: list[dict]) -> list[Path | dict]:
        """The node's parameters in file order: `from:` files, and mappings of the name/value
        entries between them (consecutive ones share one mapping; later names win either way)."""
        sources: list[Path | dict] = []
        for entry in entries:
            if "from" in entry:
                self.check_keys(entry, {"from"}, "param with 'from'")
                path = Path(self.text(entry, "from", "param"))
                if not path.is_file():
                    raise self.fail(
                        f"parameter file {path} not found (ros2 launch would only warn and start the node "
                        "without it; cosmos-ros launch refuses, so a wrong path cannot go unnoticed)"
                    )
                sources.append(path)
            elif sources and isinstance(sources[-1], dict):
                sources[-1].update(self.named_parameters([entry], prefix=""))
            else:
                sources.append(self.named_parameters([entry], prefix=""))
        return sources

    def named_parameters(self, entries: list[dict], prefix: str) -> dict:
        """`{name, value}` and nested `{name, param: [...]}` → {'group.name': typed value}."""
        values = {}
        for entry in entries:
            self.check_keys(entry, {"name", "value", "param"}, "param")
            name = prefix + self.text(entry, "name", "param")
            if ("value" in entry) == ("param" in entry):
                raise self.fail(f"param {name!r} needs exactly one of 'value' or nested 'param'")
            if "value" in entry:
                try:
                    values[name] = parameter_value(entry["value"], name, self.resolve)
                except LaunchError as exc:
                    raise self.fail(str(exc)) from exc
            else:
                values.update(self.named_parameters(self.entries(entry, "param", f"param {name!r}"), name + "."))
        return values


def _absolute_namespace(namespace: str) -> str:
    """launch_ros: trailing slashes go, a relative namespace is made absolute, '' becomes '/'."""
    if namespace != "/":
        namespace = namespace.rstrip("/")
    return namespace if namespace.startswith("/") else "/" + namespace


def _full_name(namespace: str, name: str) -> str:
    return f"/{name}" if namespace == "/" else f"{namespace}/{name}"


def load_graph(file: Path, arguments: dict[str, str], env: dict[str, str] | None = None) -> Graph:
    """Resolves a YAML launch file into the node processes it would start."""
    graph = Graph()
    launch = _Launch(arguments, dict(os.environ if env is None else env), graph)
    file = Path(file).resolve()
    # ros2 launch passes the command-line arguments to the top file as an include passes its own.
    _File(file, launch, set(arguments), depth=0).run()
    unknown = set(arguments) - launch.declared
    if unknown:
        raise LaunchError(
            f"{file.name}: unknown arguments {sorted(unknown)}; the graph takes {sorted(launch.declared) or 'none'} "
            "(ros2 launch would silently ignore them; cosmos-ros launch refuses them so a typo cannot "
            "run the defaults)"
        )
    return graph


def parse_arguments(items: list[str]) -> dict[str, str]:
    """['model:=tiny-dense', ...] → {'model': 'tiny-dense'}."""
    arguments = {}
    for item in items:
        name, sep, value = item.partition(":=")
        if not sep or not name:
            raise LaunchError(f"launch arguments look like name:=value, got {item!r}")
        arguments[name] = value
    return arguments

"""Many robots, one server: N reasoner nodes sharing one vLLM server vs the same N nodes each
with its own local engine, on the same machine and model.

Each robot is two processes in its own namespace (/robot0, /robot1, ...): a video_camera (the
synthetic scene, 320x240 at 15 Hz) and a reasoner answering its periodic questions (next subtask,
then failure) on the last 2.9 s at 4 fps, the clips the shipped model was trained on. Periodic
ticks that come while an answer is running collapse into one, so with `--rate-hz` above what an
engine keeps up with, every reasoner answers back to back and answers per second is capacity.

- remote: every reasoner runs `engine:=openai` against one vLLM server that `cosmos-ros serve`
  starts here (vLLM in its own virtual environment: `--vllm-python`, else
  $COSMOS_ROS_VLLM_PYTHON, else .vllm/bin/python in the checkout; `--device cpu` on a machine
  without a GPU).
- local: every reasoner loads the model itself (`--local-engine`, torch by default), with the
  cores split among them (`OMP_NUM_THREADS`, `--local-threads`): left to itself, torch gives each
  process every core, and N such processes thrash.

Measured for each N in `--nodes`, after a warm-up: answers per second (all robots together, OK
and UNCERTAIN answers; ERROR and BUSY are counted apart), clip → answer latency p50 / p95 (the
clip's newest frame's capture stamp to this process receiving the answer, one host clock) and the
total RSS of every reasoner, plus the server and its worker processes for remote, sampled at the
end of each run (the robots' own share apart: what each robot's computer holds).

    python bench/fleet.py [--nodes 1,2,4,8] [--duration 40] [--mode both|remote|local]
                          [--vllm-python PY] [--device cpu|cuda] [--quick]
    cosmos-ros bench fleet [same arguments]

The last line printed is `{"bench": "fleet", "machine": ..., "metrics": {...}}` with, for each N,
`remote_answers_per_s_N`, `local_answers_per_s_N`, `remote_p50_s_N`, `remote_p95_s_N`,
`local_p50_s_N`, `local_p95_s_N`, `remote_rss_mb_N` and `local_rss_mb_N` (totals), and
`remote_robots_rss_mb_N`, `local_robots_rss_mb_N` and `remote_server_rss_mb_N`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import socket
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import Child, ProbeNode, _interrupt, machine_description, reasoner_params_file, use_transport

from cosmos_ros.resources import data_dirs

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = data_dirs("model")[0] / "cosmos-reason1-tiny"
TASK = "put the red block on the green pad"
SUBTASKS = ("reach the red block", "grasp the red block", "carry it to the green pad", "release it")
KINDS = ("next_subtask", "failure")
ANSWERED = (0, 1, 2)  # OK, NONE, UNCERTAIN: the model answered
STATUS_ERROR, STATUS_BUSY = 4, 5
console = Console(highlight=False)
if not console.is_terminal:
    console.width = 140


class Fleet(ProbeNode):
    """This process's ROS side: every robot's answers, as a planner receives them, and each
    reasoner's engine status from /diagnostics."""

    def __init__(self, robots: int):
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        from cosmos_ros.msg import FailureDetection, SubtaskPrediction

        super().__init__("fleet_bench_planner", threads=2)
        self.measuring = False
        self.latencies: list[float] = []
        self.counts = {"answered": 0, "error": 0, "busy": 0, "other": 0}
        self.engines: dict[str, tuple[str, bool, str]] = {}  # node -> (model id, failed, message)
        self._error_level = DiagnosticStatus.ERROR
        qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        for robot in range(robots):
            for kind, msg_type in zip(KINDS, (SubtaskPrediction, FailureDetection)):
                self.node.create_subscription(
                    msg_type, f"/robot{robot}/reasoner/{kind}", self._on_answer, qos
                )
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)
        self.start()

    def _on_answer(self, msg) -> None:
        now = self.node.get_clock().now().nanoseconds
        capture = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        with self._lock:
            if not self.measuring:
                return
            if msg.status in ANSWERED and capture:
                self.counts["answered"] += 1
                self.latencies.append((now - capture) / 1e9)
            elif msg.status == STATUS_BUSY:
                self.counts["busy"] += 1
            elif msg.status == STATUS_ERROR:
                self.counts["error"] += 1
            else:  # STALE: no fresh frames
                self.counts["other"] += 1

    def _on_diagnostics(self, msg) -> None:
        with self._lock:
            for status in msg.status:
                if status.name.endswith(": engine"):
                    node = status.name.rsplit(": ", 1)[0]
                    self.engines[node] = (
                        status.hardware_id,
                        status.level == self._error_level,
                        status.message,
                    )

    def settled(self, robots: int) -> bool:
        """Every reasoner's engine has loaded (or failed to)."""
        with self._lock:
            done = [
                e for n, e in self.engines.items() if n.startswith("/robot") and (e[0] != "unloaded" or e[1])
            ]
            return len(done) >= robots

    def failures(self) -> list[str]:
        with self._lock:
            return [f"{node}: {message}" for node, (_, failed, message) in self.engines.items() if failed]

    def window(self, measuring: bool) -> None:
        with self._lock:
            self.measuring = measuring
            if measuring:
                self.latencies, self.counts = [], dict.fromkeys(self.counts, 0)


def process_tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, MB."""
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
                    break
            for task in Path(f"/proc/{current}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args, env: dict, logs: Path) -> tuple[Child, str]:
    """`cosmos-ros serve` on 127.0.0.1; returns once the server lists its models."""
    port = free_port()
    command = [sys.executable, "-m", "cosmos_ros.cli", "serve", str(args.model), "--device", args.device,
               "--host", "127.0.0.1", "--port", str(port), "--max-model-len", "4096"]  # fmt: skip
    if args.vllm_python:
        command += ["--vllm-python", args.vllm_python]
    server = Child("server", command, {**env, "XDG_CACHE_HOME": str(logs / "cache")}, logs)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + args.server_timeout
    console.print(f"[dim]starting vLLM on {url} ...[/]")
    while True:
        try:
            urllib.request.urlopen(f"{url}/models", timeout=2).read()
            return server, url
        except OSError:
            if server.proc.poll() is not None or time.monotonic() > deadline:
                tail = server.log_tail(25)
                server.stop()
                raise RuntimeError(f"vLLM did not come up on {url}\n{tail}") from None
            time.sleep(1.0)


def reasoner_command(args, robot: int, url: str | None) -> list[str]:
    command = [sys.executable, "-m", "cosmos_ros.nodes.reasoner", "--ros-args", "-r", f"__ns:=/robot{robot}"]
    command += ["--params-file", str(reasoner_params_file())]
    command += [
        "-p",
        "cameras:=[cam]",
        "-p",
        f"task:={TASK}",
        "-p",
        "subtask_options:=[" + ", ".join(SUBTASKS) + "]",
    ]
    command += [
        "-p",
        f"rate_hz:={args.rate_hz}",
        "-p",
        "window_s:=2.9",
        "-p",
        "fps:=4.0",
        "-p",
        "max_frames:=12",
    ]
    command += ["-p", f"max_new_tokens:={args.max_new_tokens}"]
    if url is None:
        command += ["-p", f"engine:={args.local_engine}", "-p", f"model:={args.model}"]
    else:
        command += [
            "-p",
            "engine:=openai",
            "-p",
            f"server_url:={url}",
            "-p",
            f"served_model:={Path(args.model).name}",
        ]
    return command


def camera_command(robot: int) -> list[str]:
    return [sys.executable, "-m", "cosmos_ros.nodes.video_camera", "--ros-args", "-r", f"__ns:=/robot{robot}",
            "-r", "__node:=cam", "-r", "image_raw:=cam/image_raw", "-p", "fps:=15.0", "-p", "frame_id:=cam"]  # fmt: skip


def measure(args, robots: int, env: dict, logs: Path, url: str | None, server: Child | None) -> dict:
    """One run: `robots` cameras and reasoners, warm-up, then `args.duration` seconds measured."""
    children: list[Child] = []
    fleet = None
    try:
        fleet = Fleet(robots)
        # local engines share the cores as an operator would split them (torch would otherwise give
        # each process every core, and N such processes thrash); a remote reasoner barely computes
        reasoner_env = env if url else {**env, "OMP_NUM_THREADS": str(local_threads(args, robots))}
        for robot in range(robots):
            tag = f"{'remote' if url else 'local'}{robots}_robot{robot}"
            children.append(Child(f"{tag}_reasoner", reasoner_command(args, robot, url), reasoner_env, logs))
            children.append(Child(f"{tag}_camera", camera_command(robot), env, logs))
        reasoners = children[::2]
        deadline = time.monotonic() + 120.0 + 30.0 * robots
        while not fleet.settled(robots):
            dead = [c.label for c in reasoners if c.proc.poll() is not None]
            if dead or time.monotonic() > deadline:
                tails = "\n".join(c.log_tail() for c in reasoners)
                raise RuntimeError(f"reasoners not ready ({', '.join(dead) or 'timed out'})\n{tails}")
            time.sleep(0.2)
        if fleet.failures():
            raise RuntimeError("engines failed to load: " + "; ".join(fleet.failures()))
        time.sleep(args.warmup)  # a full window buffered, first answers out, caches warm
        fleet.window(True)
        started = time.monotonic()
        time.sleep(args.duration)
        fleet.window(False)
        elapsed = time.monotonic() - started
        robots_rss = sum(process_tree_rss_mb(c.proc.pid) for c in reasoners)
        server_rss = process_tree_rss_mb(server.proc.pid) if server is not None else 0.0
        with fleet._lock:
            latencies, counts = list(fleet.latencies), dict(fleet.counts)
        return {"answers_per_s": counts["answered"] / elapsed, "p50_s": percentile(latencies, 50),
                "p95_s": percentile(latencies, 95), "rss_mb": robots_rss + server_rss,
                "robots_rss_mb": robots_rss, "server_rss_mb": server_rss, **counts, "load_1m": os.getloadavg()[0]}  # fmt: skip
    finally:
        for child in reversed(children):
            child.stop()
        if fleet is not None:
            fleet.close()


def local_threads(args, robots: int) -> int:
    """Intra-op threads of each local engine: --local-threads, else the cores split among them."""
    return args.local_threads or max(1, (os.cpu_count() or 1) // robots)


def percentile(values, q: float) -> float:
    return float(np.percentile(values, q)) if values else math.nan


def run_mode(mode: str, args, env: dict, logs: Path) -> dict[int, dict]:
    server, url = (None, None)
    results: dict[int, dict] = {}
    try:
        if mode == "remote":
            server, url = start_server(args, env, logs)
        for robots in args.nodes:
            console.print(f"[dim]{mode}: {robots} robot(s), {args.duration:g} s measured ...[/]")
            results[robots] = measure(args, robots, env, logs, url, server)
            r = results[robots]
            console.print(f"[dim]  {r['answers_per_s']:.2f} answers/s, p95 {r['p95_s']:.2f} s, "
                          f"{r['rss_mb']:.0f} MB, {r['error']} errors, {r['busy']} busy, {r['other']} stale[/]")  # fmt: skip
    finally:
        if server is not None:
            server.stop(grace_s=30.0)
    return results


def report(results: dict[str, dict[int, dict]], args) -> dict:
    metrics: dict = {"model": Path(args.model).name, "local_engine": args.local_engine, "device": args.device,
                     "rate_hz_per_robot": args.rate_hz, "duration_s": args.duration}  # fmt: skip
    table = Table(title=f"fleet: {Path(args.model).name}, one camera per robot, periodic answers at {args.rate_hz:g} Hz "
                        f"per robot, {args.duration:g} s each")  # fmt: skip
    for column in (
        "engine",
        "robots",
        "answers/s",
        "p50 s",
        "p95 s",
        "RSS MB",
        "robots' MB",
        "errors",
        "busy",
        "load",
    ):
        table.add_column(column, justify="left" if column == "engine" else "right")
    for mode, by_n in results.items():
        for robots, r in by_n.items():
            for key in ("answers_per_s", "p50_s", "p95_s", "rss_mb", "robots_rss_mb"):
                metrics[f"{mode}_{key}_{robots}"] = r[key]
            if mode == "remote":
                metrics[f"remote_server_rss_mb_{robots}"] = r["server_rss_mb"]
            if mode == "local":
                metrics[f"local_threads_{robots}"] = local_threads(args, robots)
            metrics[f"{mode}_errors_{robots}"] = r["error"]
            metrics[f"{mode}_busy_{robots}"] = r["busy"]
            table.add_row(mode, str(robots), f"{r['answers_per_s']:.2f}", f"{r['p50_s']:.2f}", f"{r['p95_s']:.2f}",
                          f"{r['rss_mb']:.0f}", f"{r['robots_rss_mb']:.0f}", str(r["error"]), str(r["busy"]), f"{r['load_1m']:.1f}")  # fmt: skip
    both = [n for n in args.nodes if n in results.get("remote", {}) and n in results.get("local", {})]
    for robots in both:
        remote, local = results["remote"][robots], results["local"][robots]
        if local["answers_per_s"] > 0:
            metrics[f"remote_vs_local_answers_per_s_{robots}"] = (
                remote["answers_per_s"] / local["answers_per_s"]
            )
        if local["rss_mb"] > 0:
            metrics[f"remote_vs_local_rss_{robots}"] = remote["rss_mb"] / local["rss_mb"]
    console.print(table)
    return {k: (round(v, 3) if isinstance(v, float) and math.isfinite(v) else v) for k, v in metrics.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", default="1,2,4,8", help="robot counts, comma-separated (default 1,2,4,8)")
    parser.add_argument("--duration", type=float, default=40.0, help="seconds measured per run (default 40)")
    parser.add_argument("--warmup", type=float, default=8.0, help="seconds before measuring (default 8)")
    parser.add_argument("--quick", action="store_true", help="robots 1,2; 15 s each")
    parser.add_argument("--mode", choices=("both", "remote", "local"), default="both")
    parser.add_argument(
        "--rate-hz",
        type=float,
        default=4.0,
        help="periodic ticks per second per robot (default 4: above what an engine keeps up with)",
    )
    parser.add_argument(
        "--model", default=str(SHIPPED), help="checkpoint both sides use (default: the shipped one)"
    )
    parser.add_argument("--local-engine", default="torch", help="the local reasoners' engine (default torch)")
    parser.add_argument(
        "--local-threads",
        type=int,
        default=0,
        help="intra-op threads of each local engine (default: the cores split among the robots)",
    )
    parser.add_argument(
        "--device", choices=("cpu", "cuda"), default="cpu", help="the server's vLLM build (default cpu)"
    )
    parser.add_argument("--vllm-python", default=None, help="the Python that has vLLM (default $COSMOS_ROS_VLLM_PYTHON, "
                                                              "else .vllm/bin/python)")  # fmt: skip
    parser.add_argument(
        "--server-timeout", type=float, default=300.0, help="seconds for vLLM to come up (default 300)"
    )
    parser.add_argument("--max-new-tokens", type=int, default=24, help="generation budget (default 24)")
    parser.add_argument("--domain-id", type=int, help="ROS_DOMAIN_ID (default: 100..200)")
    args = parser.parse_args(argv)
    if args.quick:
        args.nodes, args.duration = "1,2", 15.0
    try:
        args.nodes = sorted({int(n) for n in str(args.nodes).split(",") if n.strip()})
    except ValueError:
        parser.error(f"--nodes: comma-separated counts, got {args.nodes!r}")
    if not args.nodes or min(args.nodes) < 1 or min(args.duration, args.rate_hz) <= 0:
        parser.error("--nodes must be >= 1, --duration and --rate-hz > 0")
    if args.mode != "local" and args.vllm_python is None and not os.environ.get("COSMOS_ROS_VLLM_PYTHON"):
        local_venv = ROOT / ".vllm" / "bin" / "python"
        args.vllm_python = str(local_venv) if local_venv.is_file() else None
    signal.signal(signal.SIGTERM, _interrupt)
    domain_id = args.domain_id if args.domain_id is not None else random.randint(100, 200)
    env, transport = use_transport("project", domain_id)
    load_before = os.getloadavg()[0]
    console.print(f"[dim]ROS_DOMAIN_ID={domain_id}; transport: {transport}; load {load_before:.2f}[/]")
    modes = ("remote", "local") if args.mode == "both" else (args.mode,)
    results: dict[str, dict[int, dict]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="cosmos_ros_fleet_") as logs:
            for mode in modes:
                results[mode] = run_mode(mode, args, env, Path(logs))
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        return 130
    except RuntimeError as exc:
        console.print(f"[red]fleet: {exc}[/]")
        return 1
    metrics = {"load_1m_before": round(load_before, 2), **report(results, args)}
    print(json.dumps({"bench": "fleet", "machine": machine_description(), "metrics": metrics}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

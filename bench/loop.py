"""The robot loop's latency, end to end: camera capture → the answer a planner receives.

The real reasoner node (a child process, the shipped model by default) watches one simulated
camera publishing 1280x720 bgr8 at 30 Hz (bench/ingest.py's lean publisher child), answers its
periodic questions (next subtask, then failure) at `--rate-hz`, and gets a Reason service request
every `--request-period` seconds from this process, which also subscribes to the answers as a
planner would. Measured:

- periodic answers: capture → receipt, from the newest frame's header stamp (its capture time)
  to the planner's receipt (the same host clock), p50 / p95 per question;
- requests: request → response, p50 / p95, and how many were answered BUSY;
- where the time goes: the reasoner's own p50 per stage from /diagnostics (clip cut from the
  buffer, preprocess, prefill, decode, parse, publish); what the stages leave of capture →
  receipt is waiting: the newest frame's age when its clip was cut (frames are taken at the
  reasoner's ingest rate; each question cuts its own clip just before it runs) and the hand-offs
  between threads and processes.

    python bench/loop.py [--duration 60] [--rate-hz 0.5] [--request-period 1] [--engine torch]
                         [--model model/cosmos-reason1-tiny] [--precision int8] [--quick]
    cosmos-ros bench loop [same arguments]

The last line printed is `{"bench": "loop", "machine": ..., "metrics": {...}}`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import (
    FPS,
    Child,
    DiagnosticsProbe,
    ProbeNode,
    _interrupt,
    machine_description,
    reasoner_params_file,
    use_transport,
)

ROOT = Path(__file__).resolve().parents[1]
CAMERA = "cam"
TASK = "put the red block on the green pad"
SUBTASKS = ("reach the red block", "grasp the red block", "carry it to the green pad", "release it")
STAGES = ("clip", "preprocess", "prefill", "decode", "parse", "publish")
console = Console(highlight=False)
if not console.is_terminal:
    console.width = 140


class Planner(ProbeNode):
    """This process's ROS side: subscribes to the answers, calls ~/reason on a period."""

    def __init__(self):
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        from cosmos_ros.msg import FailureDetection, SubtaskPrediction
        from cosmos_ros.srv import Reason

        super().__init__("loop_bench_planner", threads=2)
        self.answers: dict[str, list[tuple[float, int]]] = {"next_subtask": [], "failure": []}
        self.requests: list[tuple[float, int]] = []  # (seconds to the response, status)
        qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        for kind, msg_type in (("next_subtask", SubtaskPrediction), ("failure", FailureDetection)):
            self.node.create_subscription(
                msg_type, f"/reasoner/{kind}", lambda m, k=kind: self._on_answer(k, m), qos
            )
        self.client = self.node.create_client(Reason, "/reasoner/reason")
        self._request_type = Reason.Request
        self.measuring = False
        self.start()

    def _on_answer(self, kind: str, msg) -> None:
        now = self.node.get_clock().now().nanoseconds
        capture = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        if self.measuring and capture:
            with self._lock:
                self.answers[kind].append(((now - capture) / 1e9, msg.status))

    def ask(self) -> None:
        """One request; its time to the response is recorded when the response comes."""
        sent = time.monotonic()
        future = self.client.call_async(self._request_type(question="Is the gripper holding the red block?",
                                                            options=["yes", "no"]))  # fmt: skip

        def done(f, sent=sent) -> None:
            if f.exception() is None:
                with self._lock:
                    self.requests.append((time.monotonic() - sent, f.result().status))

        future.add_done_callback(done)


def reasoner_command(args) -> list[str]:
    command = [sys.executable, "-m", "cosmos_ros.nodes.reasoner", "--ros-args"]
    command += ["--params-file", str(reasoner_params_file())]
    command += ["-p", f"cameras:=[{CAMERA}]", "-p", f"task:={TASK}"]
    command += ["-p", "subtask_options:=[" + ", ".join(SUBTASKS) + "]"]
    command += [
        "-p",
        f"rate_hz:={args.rate_hz}",
        "-p",
        f"engine:={args.engine}",
        "-p",
        f"model:={args.model}",
    ]
    command += ["-p", f"window_s:={args.window_s}", "-p", f"max_new_tokens:={args.max_new_tokens}"]
    if args.precision:
        command += ["-p", f"precision:={args.precision}"]
    return command


def measure(args, domain_id: int) -> dict:
    env, transport = use_transport("project", domain_id)
    count = max(1, round((args.duration + args.window_s + 5) * FPS))
    children: list[Child] = []
    diagnostics = planner = None
    with tempfile.TemporaryDirectory(prefix="cosmos_ros_loop_") as logs:
        try:
            reasoner = Child("reasoner", reasoner_command(args), env, Path(logs))
            children.append(reasoner)
            diagnostics, planner = DiagnosticsProbe(), Planner()
            console.print(
                f"[dim]ROS_DOMAIN_ID={domain_id}; transport: {transport}; loading {args.model} ...[/]"
            )
            diagnostics.wait_for(
                lambda: reasoner.proc.poll() is not None or diagnostics.engine_settled, 300.0, "its engine"
            )
            if reasoner.proc.poll() is not None or diagnostics.engine.get("failed"):
                raise RuntimeError(f"the reasoner's engine did not load\n{reasoner.log_tail()}")
            camera = Child(CAMERA, [sys.executable, str(Path(__file__).with_name("ingest.py")), "--publisher",
                                    CAMERA, "--frames", str(count)], env, Path(logs), talks=True)  # fmt: skip
            children.append(camera)
            camera.expect("matched", 90.0)
            if not planner.client.wait_for_service(timeout_sec=30):
                raise RuntimeError("no /reasoner/reason service")
            camera.send("go")
            time.sleep(args.window_s + 2.0)  # a full window buffered, and the first answers out
            console.print(f"[dim]measuring {args.duration:g} s: periodic at {args.rate_hz:g} Hz, "
                          f"a request every {args.request_period:g} s[/]")  # fmt: skip
            planner.measuring = True
            start = time.monotonic()
            next_request = start
            while time.monotonic() < start + args.duration:
                if time.monotonic() >= next_request:
                    planner.ask()
                    next_request += args.request_period
                time.sleep(0.01)
            planner.measuring = False
            time.sleep(3.0)  # responses in flight; a fresh /diagnostics
            stages = {s: float(diagnostics.engine.get(f"stage.{s}_p50_s", "nan")) for s in STAGES}
            return {"answers": planner.answers, "requests": planner.requests, "stages": stages,
                    "load_1m": os.getloadavg()[0], "model_id": diagnostics.engine.get("model_id", "?")}  # fmt: skip
        finally:
            for child in reversed(children):
                child.stop()
            for probe in (planner, diagnostics):
                if probe is not None:
                    probe.close()


def percentile(values, q: float) -> float:
    return float(np.percentile(values, q)) if values else math.nan


def report(result: dict, args) -> dict:
    metrics = {"model_id": result["model_id"], "engine": args.engine, "precision": args.precision or "default",
               "rate_hz": args.rate_hz, "request_period_s": args.request_period, "load_1m_after": result["load_1m"]}  # fmt: skip
    table = Table(title=f"robot loop: {result['model_id']} ({args.engine}), camera 720p at {FPS:g} Hz, "
                        f"{args.duration:g} s")  # fmt: skip
    for column in ("measure", "n", "p50 ms", "p95 ms"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    for kind, samples in result["answers"].items():
        times = [t for t, _ in samples]
        metrics[f"{kind}_answers"] = len(times)
        metrics[f"{kind}_capture_to_receipt_p50_ms"] = 1e3 * percentile(times, 50)
        metrics[f"{kind}_capture_to_receipt_p95_ms"] = 1e3 * percentile(times, 95)
        table.add_row(f"periodic {kind}: capture → receipt", str(len(times)),
                      f"{metrics[f'{kind}_capture_to_receipt_p50_ms']:.0f}", f"{metrics[f'{kind}_capture_to_receipt_p95_ms']:.0f}")  # fmt: skip
    times = [t for t, _ in result["requests"]]
    busy = sum(1 for _, status in result["requests"] if status == 5)
    metrics.update(requests=len(times), requests_busy=busy, request_to_response_p50_ms=1e3 * percentile(times, 50),
                   request_to_response_p95_ms=1e3 * percentile(times, 95))  # fmt: skip
    table.add_row(f"request → response ({busy} BUSY)", str(len(times)), f"{metrics['request_to_response_p50_ms']:.0f}",
                  f"{metrics['request_to_response_p95_ms']:.0f}")  # fmt: skip
    stage_total = 0.0
    for stage, seconds in result["stages"].items():
        metrics[f"stage_{stage}_p50_ms"] = 1e3 * seconds
        stage_total += 0.0 if math.isnan(seconds) else seconds
        table.add_row(f"  stage {stage} (reasoner, per answer)", "", f"{1e3 * seconds:.1f}", "")
    first = metrics.get("next_subtask_capture_to_receipt_p50_ms", math.nan)
    metrics["waiting_p50_ms"] = (
        first - 1e3 * stage_total
    )  # frame age at the cut + queue, for the first question
    table.add_row("  waiting (next subtask p50 less its stages)", "", f"{metrics['waiting_p50_ms']:.0f}", "")
    console.print(table)
    return {k: (round(v, 3) if isinstance(v, float) and math.isfinite(v) else v) for k, v in metrics.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=60.0, help="seconds measured (default 60)")
    parser.add_argument("--quick", action="store_true", help="15 s measured")
    parser.add_argument(
        "--rate-hz", type=float, default=0.5, help="periodic answers per second (default 0.5)"
    )
    parser.add_argument(
        "--request-period", type=float, default=1.0, help="seconds between requests (default 1)"
    )
    parser.add_argument("--engine", default="torch", help="reasoner engine (default torch)")
    parser.add_argument(
        "--model",
        default=str(ROOT / "model" / "cosmos-reason1-tiny"),
        help="model (default: the shipped one)",
    )
    parser.add_argument("--precision", default="", help="reasoner precision (default: the engine's)")
    parser.add_argument("--window-s", type=float, default=3.0, help="clip seconds (default 3)")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="generation budget (default 64)")
    parser.add_argument("--domain-id", type=int, help="ROS_DOMAIN_ID (default: 100..200)")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration = 15.0
    if min(args.duration, args.rate_hz, args.request_period, args.window_s) <= 0:
        parser.error("--duration, --rate-hz, --request-period and --window-s must be > 0")
    signal.signal(signal.SIGTERM, _interrupt)
    domain_id = args.domain_id if args.domain_id is not None else random.randint(100, 200)
    load_before = os.getloadavg()[0]
    try:
        metrics = {"load_1m_before": round(load_before, 2), **report(measure(args, domain_id), args)}
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        return 130
    print(json.dumps({"bench": "loop", "machine": machine_description(), "metrics": metrics}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

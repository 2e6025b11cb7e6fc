"""The reasoner's health as diagnostic_msgs/DiagnosticArray: one status per camera, one for the engine."""

from __future__ import annotations

import math

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from cosmos_ros.core.frames import CameraStats, FrameBuffer
from cosmos_ros.nodes.tasks import TaskInput
from cosmos_ros.nodes.worker import ReasoningWorker, Settings, WorkerStats


def _kv(key: str, value) -> KeyValue:
    if isinstance(value, float):
        value = "nan" if math.isnan(value) else f"{value:.4g}"
    return KeyValue(key=key, value=str(value))


def _percentile(values, q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else float("nan")


def camera_status(
    node_name: str,
    camera: str,
    stats: CameraStats | None,
    decode_errors: dict[str, int],
    stale: bool,
    latencies_s: list[float] = (),
    skipped: int = 0,
) -> DiagnosticStatus:
    status = DiagnosticStatus(name=f"{node_name}: camera {camera}", hardware_id=camera)
    stats = stats or CameraStats()
    errors = sum(decode_errors.values())
    if stale:
        status.level, status.message = DiagnosticStatus.WARN, "stale: no recent frames"
    elif errors or stats.out_of_order or stats.duplicates:
        status.level, status.message = DiagnosticStatus.WARN, "receiving, some frames rejected"
    elif stats.clock_jumps:
        status.level, status.message = DiagnosticStatus.WARN, "receiving; the camera's clock jumped"
    else:
        status.level, status.message = DiagnosticStatus.OK, "receiving"
    status.values = [
        _kv("rate_hz", float(stats.rate_hz)),
        _kv("received", stats.received + errors + skipped),
        _kv("skipped", skipped),  # not taken by design (ingest_fps), never decoded
        _kv("accepted", stats.accepted),
        _kv("out_of_order", stats.out_of_order),
        _kv("duplicates", stats.duplicates),
        _kv("evicted", stats.evicted),
        _kv("expired", stats.expired),
        _kv("clock_jumps", stats.clock_jumps),
        _kv("decode_errors", errors),
        *(_kv(f"decode_errors.{cause}", n) for cause, n in sorted(decode_errors.items())),
        _kv("latency_p50_s", _percentile(latencies_s, 50)),
        _kv("latency_p95_s", _percentile(latencies_s, 95)),
        _kv("last_stamp", float(stats.last_stamp)),
        _kv("stale", stale),
    ]
    return status


def engine_status(
    node_name: str, stats: WorkerStats, queue_depth: int, model_id: str, engine_error: str
) -> DiagnosticStatus:
    status = DiagnosticStatus(name=f"{node_name}: engine", hardware_id=model_id or "unloaded")
    errors = sum(stats.errors.values())
    if engine_error:
        status.level, status.message = DiagnosticStatus.ERROR, engine_error
    elif errors:
        status.level, status.message = DiagnosticStatus.WARN, f"{errors} inference errors"
    else:
        status.level, status.message = DiagnosticStatus.OK, "ok"
    status.values = [
        _kv("model_id", model_id),
        _kv("inferences", stats.inferences),
        _kv("periodic_runs", stats.periodic_runs),
        _kv("requests_done", stats.requests_done),
        _kv("queue_depth", queue_depth),
        _kv("busy_rejections", stats.busy_rejections),
        _kv("engine_busy", stats.busy),
        _kv("stale_skips", stats.stale),
        _kv("errors", errors),
        *(_kv(f"errors.{cause}", n) for cause, n in sorted(stats.errors.items())),
        _kv("latency_last_s", stats.last_latency_s),
        _kv("latency_p50_s", _percentile(stats.latencies, 50)),
        _kv("latency_p95_s", _percentile(stats.latencies, 95)),
        *(_kv(f"stage.{stage}_p50_s", _percentile(times, 50)) for stage, times in list(stats.stages.items())),
    ]
    return status


def diagnostic_array(stamp, statuses: list[DiagnosticStatus]) -> DiagnosticArray:
    array = DiagnosticArray()
    array.header.stamp = stamp
    array.status = statuses
    return array


def task_status(node_name: str, tasks: TaskInput, settings: Settings) -> DiagnosticStatus:
    """What the periodic answers are about, and the TaskContext messages refused."""
    status = DiagnosticStatus(name=f"{node_name}: task", hardware_id=settings.task_id or "parameters")
    refused = sum(tasks.refused.values())
    if refused:
        status.level, status.message = DiagnosticStatus.WARN, f"{refused} task messages refused"
    else:
        status.level, status.message = DiagnosticStatus.OK, "ok" if settings.task else "no task: no periodic answers"
    status.values = [
        _kv("task_id", settings.task_id),
        _kv("task", settings.task),
        _kv("source", "topic" if tasks.current is not None else "parameters"),
        _kv("received", tasks.received),
        _kv("refused", refused),
        *(_kv(f"refused.{cause}", n) for cause, n in sorted(tasks.refused.items())),
    ]
    return status


def reasoner_statuses(
    node_name: str,
    buffer: FrameBuffer,
    worker: ReasoningWorker,
    tasks: TaskInput,
    now: float,
    *,
    decode_errors: dict[str, dict[str, int]],
    latencies_s: dict,
    skipped: dict[str, int],
) -> list[DiagnosticStatus]:
    """Everything the reasoner reports once a second: each camera, the engine, the task."""
    settings = worker.settings
    stats = buffer.all_stats(now)
    statuses = [
        camera_status(
            node_name,
            camera,
            stats.get(camera),
            dict(decode_errors.get(camera, {})),
            buffer.is_stale(camera, now, settings.stale_timeout_s),
            list(latencies_s.get(camera, ())),
            skipped.get(camera, 0),
        )
        for camera in settings.cameras
    ]
    statuses.append(engine_status(node_name, worker.stats, worker.queue_depth, worker.model_id, worker.engine_error))
    statuses.append(task_status(node_name, tasks, settings))
    return statuses

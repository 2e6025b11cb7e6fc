"""The reasoner's parameters: defaults, descriptions, declared ranges and checks.

Every numeric parameter has a declared range (`ros2 param describe /reasoner rate_hz` shows it,
and rclpy refuses values outside it, at start-up and at run time) and must be finite. The ranges
keep the node alive whatever is set: rate_hz bounds the timer period both ways (1e-12 Hz would
overflow it, 1000 Hz would spin a core on ticks), and clip memory depends on buffer_capacity and
max_frames, never on window_s x fps.
"""

from __future__ import annotations

from rcl_interfaces.msg import ParameterDescriptor

from cosmos_ros.engine.base import PRECISIONS as ENGINE_PRECISIONS
from cosmos_ros.nodes import params
from cosmos_ros.nodes.worker import MAX_NEW_TOKENS, MAX_WINDOW_S, Settings

# name: (default, description, read_only). Read-only ones shape subscriptions or the model.
PARAMETERS = {
    "cameras": (["camera"], "camera names; subscribes <name>/image_raw for each", True),
    "image_transport": ("raw", "'raw' (sensor_msgs/Image) or 'compressed' (CompressedImage)", True),
    "camera_reliability": ("best_effort", "'best_effort' (matches any publisher) or 'reliable'", True),
    "task": ("", "the task until a TaskContext arrives on ~/task; empty = no periodic answers", False),
    "subtask_options": ([""], "candidate next subtasks until a TaskContext arrives; [''] = free-form", False),
    "failure_subtask": ("", "the subtask to check for failure until a TaskContext arrives; empty = whole task", False),
    "window_s": (4.0, "seconds of video per clip", False),
    "fps": (4.0, "frames per second the clip is resampled to (Cosmos-Reason1: 4)", False),
    "max_frames": (16, "most frames per clip", False),
    "rate_hz": (0.5, "periodic answers per second", False),
    "engine": ("torch", "torch | onnxruntime | tensorrt | openai (a shared server) | module:factory", True),
    "model": ("tiny-dense", "model preset name or checkpoint directory (local engines)", True),
    "server_url": ("", "engine openai: the server's API base URL, e.g. http://gpu-box:8000/v1", True),
    "served_model": ("", "engine openai: the model name the server serves; '' = its only model", True),
    "api_key_env": ("OPENAI_API_KEY", "engine openai: the environment variable holding the API key", True),
    "device": ("cpu", "torch device for the engine (cpu, cuda, cuda:1)", True),
    "precision": (
        "",
        "the weights' precision; '' = the engine's default. torch: fp32, bf16, fp16; onnxruntime: "
        "fp32, int8 (8-bit weights, quantized once and cached); tensorrt: fp16, bf16, fp32, int8, fp8 "
        "(8-bit MatMuls from a calibrated Q/DQ export, cached; fp8 on compute capability 8.9+)",
        True,
    ),
    "max_new_tokens": (256, "generation budget per answer", False),
    "temperature": (0.0, "0 = greedy (recommended for serving)", False),
    "stale_timeout_s": (2.0, "a camera silent for longer is STALE: no inference on old frames", False),
    "clock_jump_s": (
        1.0,
        "a stamp this far behind a camera's newest, or ahead of it by more than the time elapsed, "
        "is a clock jump: that camera's frames restart from it",
        True,
    ),
    "buffer_capacity": (128, "frames kept per camera", True),
    "ingest_max_side": (640, "frames are downscaled on arrival so their longer side is at most this", True),
    "ingest_mode": (
        "auto",
        "how frames beyond ingest_fps are left out: latest (DDS keeps only the newest; least CPU), "
        "stamp (chosen by stamp: replays repeat), all (every frame decoded); auto = stamp on sim "
        "time, else latest",
        True,
    ),
    "ingest_fps": (0.0, "frames taken per second per camera (latest, stamp); 0 = 4 x fps", False),
    "publish_subtask": (True, "publish ~/next_subtask periodically", False),
    "publish_failure": (True, "publish ~/failure periodically", False),
    "failure_confirmations": (
        1,
        "FAILURE is published once this many periodic answers in a row about one task said so "
        "(the ones before go out UNCERTAIN); 1 = every answer stands alone",
        False,
    ),
    "max_pending_requests": (8, "queued service/action requests before answering BUSY", True),
}

# name: (lowest, highest), both allowed. Floats where the default is a float, else integers.
RANGES = {
    "window_s": (0.1, MAX_WINDOW_S),
    "fps": (0.1, 30.0),
    "max_frames": (1, 256),
    "rate_hz": (0.01, 10.0),
    "max_new_tokens": (1, MAX_NEW_TOKENS),
    "temperature": (0.0, 10.0),
    "stale_timeout_s": (0.1, 3600.0),
    "clock_jump_s": (0.05, 3600.0),
    "buffer_capacity": (1, 1024),
    "ingest_max_side": (28, 4096),
    "ingest_fps": (0.0, 1000.0),
    "max_pending_requests": (1, 1024),
    "failure_confirmations": (1, 32),
}


CHOICES = {
    "image_transport": ("raw", "compressed"),
    "camera_reliability": ("best_effort", "reliable"),
    "ingest_mode": ("auto", "latest", "stamp", "all"),
    "precision": ("", "fp32", "bf16", "fp16", "int8", "fp8"),
}


def descriptor(name: str, default, description: str, read_only: bool) -> ParameterDescriptor:
    """The descriptor to declare `name` with: its description, and its range if it has one."""
    return params.descriptor(name, default, description, read_only, RANGES)


def validate(values: dict) -> str:
    """Returns why the parameter values are unusable, or '' when they are fine."""
    problems = params.problems(values, RANGES, CHOICES)
    if not [c for c in values["cameras"] if c]:
        problems.append("cameras must name at least one camera")
    engine, precision = values["engine"], values["precision"]
    if precision and precision in CHOICES["precision"] and precision not in ENGINE_PRECISIONS.get(engine, (precision,)):
        problems.append(f"the {engine} engine runs precision {', '.join(ENGINE_PRECISIONS[engine])}, not {precision!r}")
    ingest, fps = values["ingest_fps"], values["fps"]
    if engine == "openai" and not values["server_url"].startswith(("http://", "https://")):
        problems.append(f"engine openai needs server_url, an http(s) URL such as http://gpu-box:8000/v1 (got {values['server_url']!r})")
    if not problems and 0 < ingest < fps:
        problems.append(f"ingest_fps {ingest:g} is below fps {fps:g}: clips would miss frames; use 0 (4 x fps) or >= fps")
    return "; ".join(problems)


def ingest_rate_hz(values: dict) -> float:
    """Frames taken per second per camera: ingest_fps, or 4 x the clip fps when it is 0."""
    return values["ingest_fps"] or 4.0 * values["fps"]


def timer_period_ns(rate_hz: float) -> int:
    """The periodic timer's period for rate_hz, which validate has bounded."""
    return round(1e9 / rate_hz)


def settings_from(values: dict) -> Settings:
    return Settings(
        cameras=tuple(c for c in values["cameras"] if c),
        task=values["task"],
        subtask_options=tuple(o for o in values["subtask_options"] if o),
        failure_subtask=values["failure_subtask"],
        window_s=values["window_s"],
        fps=values["fps"],
        max_frames=values["max_frames"],
        max_new_tokens=values["max_new_tokens"],
        temperature=values["temperature"],
        stale_timeout_s=values["stale_timeout_s"],
        publish_subtask=values["publish_subtask"],
        publish_failure=values["publish_failure"],
    )

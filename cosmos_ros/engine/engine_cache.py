"""Where exports and TensorRT engines are kept, and when a kept one can be reused.

    $COSMOS_ROS_CACHE (default ~/.cache/cosmos_ros)
      onnx/<name>-<hash>-opset18/          manifest.json + vision/prefill/decode .onnx (+ .data)
      onnx/<name>-<hash>-opset18-int8/     the same graphs with int8 weights (`onnx_quantize`)
      onnx/<name>-<hash>-opset18-qdq-fp8/  ... with Q/DQ int8 or fp8 MatMuls, for TensorRT (`qdq_quantize`)
      tensorrt/<name>-<hash>-<gpu>-trt<version>-<precision>-<key>/
                                           engine.json + vision/prefill/decode .engine
      tensorrt/timing-<gpu>-trt<version>.cache   TensorRT's timing cache, shared by builds

An ONNX export depends only on the weights (their hash is in the model id) and the opset; a
TensorRT engine also on the GPU model, the TensorRT version, the precision and the optimization
profiles, so all of them go into its key. Everything here is path, file and string logic — no
torch, onnxruntime or tensorrt — so hit / miss decisions are testable anywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from cosmos_ros.engine.manifest import FORMAT_VERSION, GRAPHS, MANIFEST_FILE

CACHE_ENV = "COSMOS_ROS_CACHE"
ENGINE_META_FILE = "engine.json"


def cache_root(environ: dict[str, str] | None = None) -> Path:
    """$COSMOS_ROS_CACHE, else $XDG_CACHE_HOME/cosmos_ros, else ~/.cache/cosmos_ros."""
    environ = os.environ if environ is None else environ
    if environ.get(CACHE_ENV):
        return Path(environ[CACHE_ENV]).expanduser()
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "cosmos_ros"


def slug(text: str) -> str:
    """A file-name-safe form: 'NVIDIA H100 80GB HBM3' → 'nvidia-h100-80gb-hbm3'."""
    return re.sub(r"[^a-z0-9._]+", "-", text.lower()).strip("-") or "unnamed"


def onnx_export_dir(root: Path, model_id: str, opset: int, precision: str = "fp32") -> Path:
    """The cache folder of one model's ONNX export (fp32), or of its int8 form."""
    suffix = "" if precision == "fp32" else f"-{slug(precision)}"
    return Path(root) / "onnx" / f"{slug(model_id)}-opset{opset}{suffix}"


def build_atomically(directory: Path, build: Callable[[Path], object]) -> Path:
    """Fills `directory` by `build(staging)` in a temporary folder beside it, then renames that
    into place: an interrupted build is never mistaken for a finished one."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=directory.name + ".", dir=directory.parent))
    try:
        build(staging)
        if directory.exists():
            shutil.rmtree(directory)
        staging.rename(directory)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return directory


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _code_version(*names: str) -> str:
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in names:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:8]


def exporter_version() -> str:
    """8 hex digits over the code that shapes an export (the graph wrappers and the exporter):
    a cached export made by other code is not reused."""
    return _code_version("onnx_graphs.py", "onnx_export.py")


def quantizer_version(precision: str = "int8") -> str:
    """8 hex digits over the code that makes a quantized export (`precision`: 'int8' for
    onnxruntime's, 'qdq-int8' / 'qdq-fp8' for TensorRT's) from an fp32 one."""
    if precision.startswith("qdq-"):
        return _code_version("onnx_quantize.py", "qdq_quantize.py")
    return _code_version("onnx_quantize.py")


def export_is_reusable(
    directory: Path, model_id: str, opset: int, exporter: str | None = None, *, precision: str = "fp32"
) -> bool:
    """A cached export is reused when its manifest is of this format, names the same model,
    opset, precision and exporter version (default: this code's) — an int8 one also this code's
    quantizer version — and every graph file it lists is present."""
    manifest = _read_json(Path(directory) / MANIFEST_FILE)
    if not manifest or manifest.get("format_version") != FORMAT_VERSION:
        return False
    if manifest.get("model_id") != model_id or manifest.get("opset") != opset:
        return False
    if manifest.get("precision", "fp32") != precision:
        return False
    versions = manifest.get("versions") or {}
    if versions.get("exporter") != (exporter or exporter_version()):
        return False
    if precision != "fp32" and versions.get("quantizer") != quantizer_version(precision):
        return False
    graphs = manifest.get("graphs") or {}
    return all(name in graphs and (Path(directory) / graphs[name]["file"]).is_file() for name in GRAPHS)


def tensorrt_cache_key(model_id: str, gpu_name: str, trt_version: str, precision: str, profiles: dict) -> str:
    """16 hex digits over everything an engine depends on."""
    payload = json.dumps(
        {"model_id": model_id, "gpu": gpu_name, "tensorrt": trt_version, "precision": precision,
         "profiles": profiles, "format": FORMAT_VERSION},
        sort_keys=True,
    )  # fmt: skip
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def tensorrt_engine_dir(
    root: Path, model_id: str, gpu_name: str, trt_version: str, precision: str, profiles: dict
) -> Path:
    key = tensorrt_cache_key(model_id, gpu_name, trt_version, precision, profiles)
    name = f"{slug(model_id)}-{slug(gpu_name)}-trt{slug(trt_version)}-{precision}-{key}"
    return Path(root) / "tensorrt" / name


def timing_cache_path(root: Path, gpu_name: str, trt_version: str) -> Path:
    return Path(root) / "tensorrt" / f"timing-{slug(gpu_name)}-trt{slug(trt_version)}.cache"


def engines_are_reusable(directory: Path, key: str) -> bool:
    """Kept engines are reused when their metadata carries the same key and every engine file is there."""
    meta = _read_json(Path(directory) / ENGINE_META_FILE)
    if not meta or meta.get("key") != key:
        return False
    return all((Path(directory) / f"{name}.engine").is_file() for name in GRAPHS)

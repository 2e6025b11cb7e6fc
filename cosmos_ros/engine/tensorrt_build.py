"""`cosmos-ros build-engine`: TensorRT engines from an ONNX export, kept in the engine cache.

    directory = build_engines("exports/cosmos-reason1-7b", precision="bf16")

One engine per graph (vision, prefill, decode), parsed from the same ONNX files onnxruntime runs,
built with fp16 or bf16 enabled (the export is fp32; TensorRT picks lower precision per layer) —
or, for int8 and fp8, parsed from the Q/DQ export (`qdq_quantize`: every weight MatMul quantized
explicitly, calibrated), with int8 or fp8 enabled beside fp16 for the layers Q/DQ leaves out —
one optimization profile per engine whose ranges cover the clip lengths and prompt / cache
lengths in `Profiles`, and a timing cache shared by every build on the same GPU + TensorRT.
Engines land in `engine_cache.tensorrt_engine_dir(...)` keyed by model hash + GPU name +
TensorRT version + precision + profiles; a build whose key is already there is skipped.

The profile arithmetic (`label_ranges`, `profile_shapes`) is pure Python and runs anywhere;
only `build_engines` needs the `tensorrt` package and a GPU.
"""

from __future__ import annotations

import importlib.util
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from cosmos_ros.engine.base import PRECISIONS as ENGINE_PRECISIONS
from cosmos_ros.engine.base import EngineUnavailableError
from cosmos_ros.engine.engine_cache import (
    ENGINE_META_FILE,
    cache_root,
    engines_are_reusable,
    tensorrt_cache_key,
    tensorrt_engine_dir,
    timing_cache_path,
)
from cosmos_ros.engine.manifest import GRAPHS, GraphSpec, Manifest

PRECISIONS = ENGINE_PRECISIONS["tensorrt"]
QUANTIZED = ("int8", "fp8")  # built from a Q/DQ export, not from the fp32 one
FP8_MIN_CAPABILITY = (8, 9)  # fp8 tensor cores: Ada, Hopper and newer


def builder_flags(precision: str) -> tuple[str, ...]:
    """Names of the `trt.BuilderFlag`s a build of `precision` sets. The quantized precisions run
    their Q/DQ MatMuls in 8 bits and everything else in fp16."""
    flags = {"fp32": (), "fp16": ("FP16",), "bf16": ("BF16",), "int8": ("FP16", "INT8"), "fp8": ("FP16", "FP8")}
    if precision not in flags:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return flags[precision]


def check_export_precision(export_precision: str, precision: str) -> None:
    """An engine of `precision` is built from an export of the matching kind: fp32 for fp32 /
    fp16 / bf16, 'qdq-int8' for int8, 'qdq-fp8' for fp8 (onnxruntime's 'int8' export uses an
    operator TensorRT does not parse)."""
    wanted = f"qdq-{precision}" if precision in QUANTIZED else "fp32"
    if export_precision != wanted:
        raise ValueError(
            f"a TensorRT {precision} engine is built from a {wanted} export, not a {export_precision} one"
            + ("; give the fp32 export or the model and the Q/DQ export is made and cached"
               if precision in QUANTIZED else "; give the fp32 export")
        )  # fmt: skip
INSTALL_HINT = (
    "pip install 'cosmos_ros[tensorrt]' (tensorrt-cu12) on a machine with an NVIDIA GPU and CUDA torch"
)


@dataclass(frozen=True)
class Profiles:
    """(min, opt, max) of what varies at run time; TensorRT tunes kernels for `opt`."""

    batch: tuple[int, int, int] = (1, 1, 4)
    frames: tuple[int, int, int] = (1, 8, 32)  # frames per clip
    sequence: tuple[int, int, int] = (1, 2048, 8192)  # prompt tokens (video tokens included)
    new_tokens: int = 1024  # decode steps beyond the longest prompt


def missing_for_tensorrt(device: str) -> list[str]:
    """What stops TensorRT from running here, each item naming the missing piece; [] when nothing."""
    missing = []
    if importlib.util.find_spec("tensorrt") is None:
        missing.append(f"the 'tensorrt' Python package ({INSTALL_HINT})")
    import torch

    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        missing.append(
            f"a CUDA GPU visible to torch (torch {torch.__version__} is {build}; torch.cuda.is_available() is False)"
        )
    if not str(device).startswith("cuda"):
        missing.append(f"device='cuda[:N]' (got {device!r}): TensorRT engines run on NVIDIA GPUs only")
    return missing


def require_fp8(device: str) -> None:
    """fp8 engines need fp8 tensor cores (compute capability 8.9 or newer)."""
    import torch

    capability = torch.cuda.get_device_capability(torch.device(device))
    if tuple(capability) < FP8_MIN_CAPABILITY:
        name = torch.cuda.get_device_name(torch.device(device))
        raise EngineUnavailableError(
            f"precision fp8 needs a GPU of compute capability {FP8_MIN_CAPABILITY[0]}.{FP8_MIN_CAPABILITY[1]} "
            f"or newer (Ada, Hopper, Blackwell); {name} is {capability[0]}.{capability[1]}: use int8 or fp16"
        )


def require_tensorrt(device: str) -> None:
    missing = missing_for_tensorrt(device)
    if missing:
        raise EngineUnavailableError("the tensorrt engine cannot run here; missing: " + "; ".join(missing))


def _round_up(value: int, multiple: int) -> int:
    return math.ceil(value / multiple) * multiple


def label_ranges(
    manifest: Manifest, config: dict, processor: dict, profiles: Profiles
) -> dict[str, list[int]]:
    """(min, opt, max) of every dynamic-axis label of the export, from clip and prompt ranges.

    config: the export's config.json; processor: its video_preprocessor_config.json.
    """
    multiple = manifest.graphs["prefill"].sequence_multiple
    sequence = [_round_up(v, multiple) for v in profiles.sequence]
    ranges = {
        "batch": list(profiles.batch),
        "sequence": sequence,
        "past": [sequence[0], sequence[1], sequence[2] + profiles.new_tokens],
    }
    if manifest.family == "hybrid":
        per_frame = config["image_seq_length"]
        low, opt, high = profiles.frames
        ranges["frames"] = [
            low,
            opt * profiles.batch[1],
            high * profiles.batch[2],
        ]  # frames of the whole batch
        ranges["media"] = [f * per_frame for f in ranges["frames"]]
    elif manifest.family == "qwen3_vl":
        ranges |= _qwen3_vl_ranges(config["vision_config"], processor, profiles)
    else:
        vision = config["vision_config"]
        merge, patch, temporal = (
            vision["spatial_merge_size"],
            vision["patch_size"],
            vision["temporal_patch_size"],
        )
        size = processor.get("size", {})
        per_merged = (patch * merge) ** 2
        tokens = (
            size.get("shortest_edge", per_merged) // per_merged,
            size.get("longest_edge", per_merged) // per_merged,
        )
        grids = [math.ceil(f / temporal) for f in profiles.frames]
        merged = [
            grids[0] * max(1, tokens[0]),
            grids[1] * max(1, tokens[1]),
            grids[2] * max(1, tokens[1]) * profiles.batch[2],
        ]
        unit = merge * merge
        ranges["merged"] = merged
        ranges["patches"] = [m * unit for m in merged]
        ranges["media"] = merged
        # Attention blocks: one per grid frame (all its patches), one per window (at most
        # side² merged patches; windows at a frame's edge are cut short).
        side = vision["window_size"] // patch // merge
        largest = max(1, tokens[1])
        frames = [grids[0], grids[1], grids[2] * profiles.batch[2]]
        ranges["grid_frames"] = frames
        ranges["frame_patches"] = [max(1, tokens[0]) * unit, largest * unit, largest * unit]
        window = min(side * side, largest) * unit
        ranges["window_patches"] = [unit, window, window]
        # ceil(h/s)·ceil(w/s) windows for an h × w frame, at most this for h·w ≤ largest
        # (h + w ≤ largest + 1: the thinnest frame has the most windows).
        most = (largest + (side - 1) * (largest + 1) + (side - 1) ** 2) // side**2
        ranges["windows"] = [frames[0], frames[1] * math.ceil(largest / side**2), frames[2] * most]
    return ranges


def _qwen3_vl_ranges(vision: dict, processor: dict, profiles: Profiles) -> dict[str, list[int]]:
    """Qwen3-VL's vision axes. Its pixel budget is the whole clip's (frames x height x width within
    size.shortest_edge..longest_edge), spread over the frames (at most max_video_tokens merged
    patches per frame with qwen-vl-utils' cap, never below 1.05 x shortest_edge per frame); one
    attention block per temporal patch, no windows."""
    merge, patch, temporal = vision["spatial_merge_size"], vision["patch_size"], vision["temporal_patch_size"]
    per_merged = (patch * merge) ** 2
    size = processor.get("size", {})
    shortest = size.get("shortest_edge", per_merged)
    longest = size.get("longest_edge", per_merged * temporal)
    floor = math.ceil(1.05 * shortest / per_merged)  # merged patches per frame, at least
    largest = longest // (temporal * per_merged)  # a two-frame clip's frame takes half the budget
    if processor.get("cap_pixels_per_frame", True):
        largest = min(largest, processor.get("max_video_tokens", 768))
    largest = max(1, floor, largest)
    opt = max(1, min(largest, longest // (per_merged * max(profiles.frames[1], temporal))))
    grids = [math.ceil(f / temporal) for f in profiles.frames]
    frames = [grids[0], grids[1], grids[2] * profiles.batch[2]]
    merged = [grids[0], grids[1] * opt, frames[2] * largest]
    unit = merge * merge
    return {
        "merged": merged,
        "patches": [m * unit for m in merged],
        "media": merged,
        "grid_frames": frames,
        "frame_patches": [unit, opt * unit, largest * unit],
    }


def _dim(value, ranges: dict[str, list[int]], which: int) -> int:
    if isinstance(value, int):
        return value
    label, _, offset = value.partition(" + ")
    if label not in ranges:
        raise ValueError(f"no profile range for the dynamic axis {value!r}")
    return ranges[label][which] + (int(offset) if offset else 0)


def profile_shapes(spec: GraphSpec, ranges: dict[str, list[int]]) -> dict[str, tuple[tuple[int, ...], ...]]:
    """{input name: (min shape, opt shape, max shape)} for one graph's optimization profile."""
    return {
        t.name: tuple(tuple(_dim(d, ranges, which) for d in t.shape) for which in range(3))
        for t in spec.inputs
    }


def _gpu_and_version(device: str) -> tuple[str, str]:
    import tensorrt as trt
    import torch

    return torch.cuda.get_device_name(torch.device(device)), trt.__version__


def engine_dir_for(
    export_dir: Path, precision: str, profiles: Profiles, device: str, root: Path | None
) -> tuple[Path, str, dict]:
    manifest = Manifest.load(export_dir)
    config = json.loads((Path(export_dir) / "config.json").read_text())
    processor_file = Path(export_dir) / "video_preprocessor_config.json"
    processor = json.loads(processor_file.read_text()) if processor_file.is_file() else {}
    ranges = label_ranges(manifest, config, processor, profiles)
    gpu, version = _gpu_and_version(device)
    key = tensorrt_cache_key(manifest.model_id, gpu, version, precision, ranges)
    return (
        tensorrt_engine_dir(root or cache_root(), manifest.model_id, gpu, version, precision, ranges),
        key,
        ranges,
    )


def build_engines(
    export_dir: str | Path,
    *,
    precision: str = "fp16",
    profiles: Profiles | None = None,
    device: str = "cuda",
    root: Path | None = None,
    workspace_gb: float | None = None,
    progress=None,
) -> Path:
    """Engines for the three graphs of an export (built on a cache miss); returns their folder."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    require_tensorrt(device)
    if precision == "fp8":
        require_fp8(device)
    import tensorrt as trt

    profiles = profiles or Profiles()
    import torch

    export_dir = Path(export_dir)
    manifest = Manifest.load(export_dir)
    check_export_precision(manifest.precision, precision)
    directory, key, ranges = engine_dir_for(export_dir, precision, profiles, device, root)
    if engines_are_reusable(directory, key):
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    gpu, version = _gpu_and_version(device)
    timing_file = timing_cache_path(root or cache_root(), gpu, version)
    logger = trt.Logger(trt.Logger.WARNING)
    torch.cuda.set_device(torch.device(device))
    builder = trt.Builder(logger)
    built = {}
    for graph in GRAPHS:
        task = progress.add_task(f"TensorRT {precision} {graph}", total=3) if progress else None
        start = time.perf_counter()
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(manifest.graph_path(export_dir, graph))):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError(f"TensorRT could not parse the {graph} graph: {errors}")
        if progress:
            progress.advance(task)
        config = builder.create_builder_config()
        if workspace_gb:
            config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * 2**30))
        for flag in builder_flags(precision):
            config.set_flag(getattr(trt.BuilderFlag, flag))
        timing = config.create_timing_cache(timing_file.read_bytes() if timing_file.is_file() else b"")
        config.set_timing_cache(timing, ignore_mismatch=False)
        profile = builder.create_optimization_profile()
        for name, (low, opt, high) in profile_shapes(manifest.graphs[graph], ranges).items():
            profile.set_shape(name, low, opt, high)
        config.add_optimization_profile(profile)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise RuntimeError(f"TensorRT failed to build the {graph} engine (see its log above)")
        if progress:
            progress.advance(task)
        (directory / f"{graph}.engine").write_bytes(bytes(serialized))
        timing_file.write_bytes(bytes(config.get_timing_cache().serialize()))
        if progress:
            progress.advance(task)
        built[graph] = {"size_bytes": (directory / f"{graph}.engine").stat().st_size,
                        "build_s": time.perf_counter() - start}  # fmt: skip
    meta = {"key": key, "model_id": manifest.model_id, "gpu": gpu, "tensorrt": version, "precision": precision,
            "profiles": asdict(profiles), "ranges": ranges, "export_dir": str(export_dir.resolve()), "graphs": built}  # fmt: skip
    (directory / ENGINE_META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return directory

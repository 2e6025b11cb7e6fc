"""Checkpoints: HF-layout directories (config.json + safetensors + tokenizer files), local only.

    save_checkpoint(model, "ckpt/", tokenizer=tok, video_processor=proc, max_shard_size="2GB")
    model = load_model("ckpt/", dtype="bf16", device="cuda")

Both families: `qwen2_5_vl` (dense) and `internvl` (hybrid, Nemotron-H text model). Loading
checks the directory first and fails with a `CheckpointError` naming what is wrong: pickle
weight files (`*.bin`, `*.pt`, `*.pth`, `*.pkl` can run code when loaded; convert them to
safetensors first), a truncated safetensors file (and the first tensor past its end), an index
that disagrees with its shards, and — after transformers has matched names — missing,
unexpected and mis-shaped tensors, by name. Weights are memory-mapped by safetensors as they
load; on a GPU with `accelerate` installed they go straight to the device (`device_map`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from transformers import AutoConfig
from transformers.utils import logging as hf_logging

from cosmos_ros.model.config import Preset, get_preset, model_class
from cosmos_ros.model.families import MODEL_TYPES, family_of
from cosmos_ros.model.tokenizer import build_tiny_tokenizer
from cosmos_ros.model.weights import (
    PICKLE_SUFFIXES,
    CheckpointError,
    TensorEntry,
    check_weight_files,
    refuse_pickles,
    stored_name,
)

__all__ = [
    "PICKLE_SUFFIXES",
    "SUPPORTED_MODEL_TYPES",
    "CheckpointError",
    "build_model",
    "check_checkpoint_dir",
    "checkpoint_id",
    "checkpoint_info",
    "create_tiny_checkpoint",
    "load_model",
    "preset_id",
    "resolve_dtype",
    "save_checkpoint",
]

SUPPORTED_MODEL_TYPES = tuple(MODEL_TYPES)  # the family registry's
DTYPES = {
    "fp32": torch.float32, "float32": torch.float32,
    "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
    "fp16": torch.float16, "float16": torch.float16, "half": torch.float16,
}  # fmt: skip
_FULL_HASH_LIMIT = 64 * 2**20  # hash whole weight files below this; sample larger ones
_SAMPLE_CHUNKS, _SAMPLE_BYTES = 64, 64 * 2**10
_MAX_NAMED = 8  # tensors named per kind of problem before "... and N more"


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No tqdm bars and no load report from transformers: problems become our CheckpointError,
    and nodes log to stderr."""
    was_enabled, verbosity = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if was_enabled:
            hf_logging.enable_progress_bar()


def resolve_dtype(dtype: torch.dtype | str | None, device: torch.device | str = "cpu") -> torch.dtype:
    """'fp32' / 'bf16' / 'fp16' (or the torch dtype); None: bf16 on CUDA, fp32 elsewhere."""
    if dtype is None:
        return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype.lower() in DTYPES:
        return DTYPES[dtype.lower()]
    raise ValueError(f"dtype must be one of {', '.join(DTYPES)} (or the torch dtype), got {dtype!r}")


def build_model(
    preset: str | Path | Preset,
    seed: int = 0,
    *,
    dtype: torch.dtype | str | None = None,
    device: torch.device | str = "cpu",
):
    """A randomly initialised model of `preset`, identical for the same seed, created directly on
    `device` in `dtype` (fp32 by default on CPU); the global RNG is left as it was."""
    preset = get_preset(preset)
    device = torch.device(device)
    dtype = resolve_dtype(dtype, device)
    rng_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=rng_devices), device:
        torch.manual_seed(seed)
        model = model_class(preset)._from_config(preset.to_hf_config(), dtype=dtype)
    return model.eval()




def save_checkpoint(
    model,
    path: str | Path,
    *,
    tokenizer=None,
    video_processor=None,
    max_shard_size: int | str = "5GB",
) -> Path:
    """Write `model` in HF layout: config.json, generation_config.json and safetensors weights —
    one `model.safetensors`, or shards of at most `max_shard_size` plus
    `model.safetensors.index.json` — and, when given, the tokenizer files and
    `video_preprocessor_config.json`."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    with _quiet_transformers():
        model.save_pretrained(path, max_shard_size=max_shard_size)
        if tokenizer is not None:
            tokenizer.save_pretrained(path)
    if video_processor is not None:
        (path / "video_preprocessor_config.json").write_text(
            json.dumps(video_processor.to_hf_dict(), indent=2) + "\n"
        )
    return path


def create_tiny_checkpoint(
    path: str | Path, seed: int = 0, preset: str = "tiny-dense", max_shard_size: int | str = "5GB"
) -> Path:
    """Write a random-init tiny checkpoint of any family: config, weights, tokenizer, video processor config."""
    spec = get_preset(preset)
    if not spec.offline_tokenizer:
        raise ValueError(f"preset {spec.name!r} is not a tiny preset with an offline tokenizer")
    tokenizer = build_tiny_tokenizer(family=spec.family)
    processor = family_of(spec).load("preset_processor")(spec, tokenizer)
    return save_checkpoint(
        build_model(spec, seed), path, tokenizer=tokenizer, video_processor=processor.media, max_shard_size=max_shard_size
    )


def checkpoint_info(path: str | Path) -> dict:
    """What a checkpoint directory holds, from its config and the safetensors headers alone (no
    weights read): family, parameter count, bytes and dtypes of the stored tensors, shards, and
    which tokenizer / processor / generation files it carries."""
    path = Path(path)
    tensors = _checked_tensors(path)
    config = json.loads((path / "config.json").read_text())

    dtypes: dict[str, int] = {}
    for entry in tensors.values():
        dtypes[entry.dtype] = dtypes.get(entry.dtype, 0) + math.prod(entry.shape)
    files = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "chat_template.json",
             "preprocessor_config.json", "video_preprocessor_config.json", "generation_config.json")  # fmt: skip
    return {
        "checkpoint": str(path),
        "model_id": checkpoint_id(path),
        "model_type": config["model_type"],
        "family": MODEL_TYPES[config["model_type"]].name,
        "architectures": config.get("architectures", []),
        "parameters": sum(dtypes.values()),
        "parameters_by_dtype": dtypes,
        "bytes": sum(entry.end - entry.begin for entry in tensors.values()),
        "tensors": len(tensors),
        "weight_files": sorted({entry.file for entry in tensors.values()}),
        "files": [name for name in files if (path / name).is_file()],
    }


def check_checkpoint_dir(path: str | Path) -> Path:
    """The directory, if it is a loadable safetensors checkpoint; a CheckpointError naming the problem if not."""
    _checked_tensors(Path(path))
    return Path(path)


def _checked_tensors(path: Path) -> dict[str, TensorEntry]:
    if not path.is_dir():
        raise CheckpointError(f"checkpoint directory {path} does not exist")
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{path} has no config.json; expected a Hugging Face checkpoint directory")
    refuse_pickles(path)
    try:
        model_type = json.loads((path / "config.json").read_text()).get("model_type")
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path / 'config.json'} is not valid JSON: {exc}") from None
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise CheckpointError(
            f"{path}: model_type {model_type!r} is not supported; expected one of {SUPPORTED_MODEL_TYPES}"
        )
    return check_weight_files(path)


def _named(items: list[str]) -> str:
    more = len(items) - _MAX_NAMED
    return "\n  ".join(items[:_MAX_NAMED] + ([f"... and {more} more"] if more > 0 else []))


def _as_stored(name: str, tensors: dict[str, TensorEntry]) -> str:
    """`'stored name' in file` (and the model's name when loading renamed it)."""
    entry = stored_name(name, tensors)
    if entry is None:
        return repr(name)
    return f"{entry.name!r} in {entry.file}" + (f" (model name {name!r})" if entry.name != name else "")


def _loading_problems(model, info: dict, tensors: dict[str, TensorEntry], strict: bool) -> list[str]:
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    problems = [
        f"tensor {_as_stored(name, tensors)} has shape {list(ckpt)} in the checkpoint, the model expects {list(want)}"
        for name, ckpt, want in sorted(info.get("mismatched_keys") or ())
    ]
    if strict:
        problems += [
            f"missing tensor {name!r} (the model expects shape {list(expected.get(name, ()))})"
            for name in sorted(info.get("missing_keys") or ())
        ]
        problems += [
            f"unexpected tensor {_as_stored(n, tensors)}" for n in sorted(info.get("unexpected_keys") or ())
        ]
    return problems


def load_model(
    path: str | Path,
    dtype: torch.dtype | str | None = torch.float32,
    device: str | torch.device = "cpu",
    *,
    strict: bool = True,
):
    """Load a safetensors checkpoint of either family from a local directory (never downloads), in eval mode.

    dtype: 'fp32' / 'bf16' / 'fp16' (None: bf16 on CUDA, fp32 elsewhere). strict: missing and
    unexpected tensors are errors (mis-shaped ones always are), not silently re-initialised.
    """
    path = Path(path)
    tensors = _checked_tensors(path)
    device = torch.device(device)
    dtype = resolve_dtype(dtype, device)
    config = AutoConfig.from_pretrained(str(path), local_files_only=True)
    kwargs = {}
    if device.type == "cuda" and importlib.util.find_spec("accelerate") is not None:
        kwargs["device_map"] = {"": str(device)}  # shards straight to the GPU, no full CPU copy
    with _quiet_transformers():
        model, info = model_class(config).from_pretrained(
            str(path),
            config=config,
            dtype=dtype,
            local_files_only=True,
            use_safetensors=True,
            output_loading_info=True,
            ignore_mismatched_sizes=True,  # reported below, by name, instead of a bare RuntimeError
            # transformers >= 5.25 swaps layers for kernels fetched from the Hugging Face hub by
            # default: a robot offline fails there, and code from the hub would run unreviewed.
            # The hybrid family's Mamba kernels are chosen by mamba_kernels, from installed packages.
            use_kernels=False,
            **kwargs,
        )
    problems = _loading_problems(model, info, tensors, strict)
    if problems:
        raise CheckpointError(
            f"{path} does not match its config.json (model_type {config.model_type}):\n  {_named(problems)}"
        )
    return model.to(device).eval()


def _file_digest(path: Path, digest: hashlib._Hash) -> None:
    size = path.stat().st_size
    digest.update(f"{path.name}:{size}".encode())
    with path.open("rb") as f:
        if size <= _FULL_HASH_LIMIT:
            digest.update(f.read())
            return
        # Large weights: sample evenly spaced chunks; enough to tell fine-tunes apart without reading 16 GB.
        for i in range(_SAMPLE_CHUNKS):
            f.seek(i * (size - _SAMPLE_BYTES) // (_SAMPLE_CHUNKS - 1))
            digest.update(f.read(_SAMPLE_BYTES))


def checkpoint_id(path: str | Path) -> str:
    """`<dir name>@<8 hex>`: the hash covers config.json and the safetensors weights."""
    path = Path(path)
    digest = hashlib.sha256((path / "config.json").read_bytes())
    for weights in sorted(path.glob("*.safetensors")):
        _file_digest(weights, digest)
    return f"{path.resolve().name}@{digest.hexdigest()[:8]}"


def preset_id(preset: str | Path | Preset, seed: int) -> str:
    """`<preset>@<8 hex>` for an in-memory random-init model: the hash covers the config and seed."""
    preset = get_preset(preset)
    payload = json.dumps({"preset": preset.as_dict(), "seed": seed}, sort_keys=True, default=str)
    return f"{preset.name}@{hashlib.sha256(payload.encode()).hexdigest()[:8]}"

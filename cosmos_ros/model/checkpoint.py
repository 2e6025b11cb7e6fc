"""Checkpoints: HF-layout directories (config.json + safetensors + tokenizer files), local only.

Pickle-based weight files (`*.bin`, `*.pt`, `*.pth`, `*.pkl`) can run code when loaded, so a
directory holding one is refused: convert it to safetensors first.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from transformers import Qwen2_5_VLForConditionalGeneration
from transformers.utils import logging as hf_logging

from cosmos_ros.model.config import ModelPreset, get_preset
from cosmos_ros.model.processor import VideoProcessor
from cosmos_ros.model.tokenizer import build_tiny_tokenizer

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl")
SUPPORTED_MODEL_TYPES = ("qwen2_5_vl",)
_FULL_HASH_LIMIT = 64 * 2**20  # hash whole weight files below this; sample larger ones
_SAMPLE_CHUNKS, _SAMPLE_BYTES = 64, 64 * 2**10


class CheckpointError(ValueError):
    """A checkpoint directory that cannot be loaded as it is."""


@contextmanager
def _quiet_progress() -> Iterator[None]:
    """No tqdm bars from transformers while saving/loading: nodes log to stderr."""
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def build_model(preset: str | ModelPreset, seed: int = 0) -> Qwen2_5_VLForConditionalGeneration:
    """A randomly initialised model of `preset`, identical for the same seed; the global RNG is left as it was."""
    preset = get_preset(preset) if isinstance(preset, str) else preset
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2_5_VLForConditionalGeneration(preset.to_hf_config())
    return model.eval()


def create_tiny_checkpoint(path: str | Path, seed: int = 0, preset: str = "tiny-dense") -> Path:
    """Write a random-init tiny checkpoint: config.json, model.safetensors, tokenizer, video processor config."""
    spec = get_preset(preset)
    if not spec.offline_tokenizer:
        raise ValueError(f"preset {preset!r} is not a tiny preset with an offline tokenizer")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model = build_model(spec, seed)
    with _quiet_progress():
        model.save_pretrained(path)
    build_tiny_tokenizer().save_pretrained(path)
    video = VideoProcessor.from_preset(spec)
    (path / "video_preprocessor_config.json").write_text(json.dumps(video.to_hf_dict(), indent=2) + "\n")
    return path


def check_checkpoint_dir(path: str | Path) -> Path:
    """The directory, if it is a loadable safetensors checkpoint; a CheckpointError naming the problem if not."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint directory {path} does not exist")
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{path} has no config.json; expected a Hugging Face checkpoint directory")
    pickles = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise CheckpointError(
            f"{path} holds pickle weight files {pickles}, which can run code when loaded; "
            "only safetensors checkpoints are accepted (convert with safetensors.torch.save_file)"
        )
    if not list(path.glob("*.safetensors")):
        raise CheckpointError(f"{path} has no *.safetensors weights")
    model_type = json.loads((path / "config.json").read_text()).get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise CheckpointError(
            f"{path}: model_type {model_type!r} is not supported; expected one of {SUPPORTED_MODEL_TYPES}"
        )
    return path


def load_model(
    path: str | Path, dtype: torch.dtype | str = torch.float32, device: str | torch.device = "cpu"
) -> Qwen2_5_VLForConditionalGeneration:
    """Load a safetensors checkpoint from a local directory (never downloads), in eval mode."""
    path = check_checkpoint_dir(path)
    dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    with _quiet_progress():
        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(
            str(path), dtype=dtype, local_files_only=True, use_safetensors=True
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


def preset_id(preset: str | ModelPreset, seed: int) -> str:
    """`<preset>@<8 hex>` for an in-memory random-init model: the hash covers the config and seed."""
    preset = get_preset(preset) if isinstance(preset, str) else preset
    payload = json.dumps({"preset": preset.as_dict(), "seed": seed}, sort_keys=True, default=str)
    return f"{preset.name}@{hashlib.sha256(payload.encode()).hexdigest()[:8]}"

"""Safetensors weight files, checked before anything is loaded.

A safetensors file is an 8-byte little-endian header length, a JSON header giving each tensor's
dtype, shape and [begin, end) byte range, then the data. Reading only the headers tells whether
a file is cut short (an interrupted copy or download) and which tensor lies beyond its end, and
whether `model.safetensors.index.json` and the shards agree — far clearer than the loader's
"incomplete metadata" once it is half way through a 16 GB checkpoint.
"""

from __future__ import annotations

import fnmatch
import json
import math
from dataclasses import dataclass
from pathlib import Path

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl")
# What transformers' Trainer writes into a checkpoint folder besides the model: its arguments,
# optimizer, LR scheduler, AMP scaler and RNG states. Not weights; never loaded by cosmos_ros.
TRAINER_STATE_PICKLES = ("training_args.bin", "optimizer.pt", "optimizer.bin", "scheduler.pt", "scaler.pt",
                         "rng_state.pth", "rng_state_*.pth")  # fmt: skip
_MAX_HEADER_BYTES = 100 * 2**20  # what the safetensors library itself accepts
_DTYPE_BYTES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1,
}  # fmt: skip


class CheckpointError(ValueError):
    """A checkpoint directory that cannot be loaded as it is; the message names the file or tensor."""


@dataclass(frozen=True)
class TensorEntry:
    name: str
    file: str
    dtype: str
    shape: tuple[int, ...]
    begin: int  # byte offsets into the data section
    end: int


def stored_name(model_name: str, tensors: dict[str, TensorEntry]) -> TensorEntry | None:
    """The checkpoint tensor that transformers loaded under `model_name`.

    Loading renames older layouts (Qwen2.5-VL's `model.layers.*` → `model.language_model.layers.*`,
    InternVL's `language_model.model.*` → `model.language_model.*`), so the stored name is the
    one sharing the longest dotted suffix with the model's name — if that suffix is unambiguous
    and at least two parts long.
    """
    if model_name in tensors:
        return tensors[model_name]
    parts = model_name.split(".")

    def shared(name: str) -> int:
        other = name.split(".")
        n = 0
        while n < min(len(parts), len(other)) and parts[-1 - n] == other[-1 - n]:
            n += 1
        return n

    scores = sorted(((shared(n), n) for n in tensors), reverse=True)
    if not scores or scores[0][0] < 2 or (len(scores) > 1 and scores[1][0] == scores[0][0]):
        return None
    return tensors[scores[0][1]]


def refuse_pickles(path: Path) -> None:
    """Pickle weight files run code when loaded: a directory holding one is refused outright.
    The training state a Hugging Face Trainer saves beside the weights (`TRAINER_STATE_PICKLES`)
    is not weights and is never read here, so it is left alone."""
    pickles = sorted(
        p.name
        for p in path.iterdir()
        if p.suffix in PICKLE_SUFFIXES and not any(fnmatch.fnmatch(p.name, g) for g in TRAINER_STATE_PICKLES)
    )
    if pickles:
        raise CheckpointError(
            f"{path} holds pickle weight files {pickles}, which can run code when loaded; "
            "only safetensors checkpoints are accepted (convert with safetensors.torch.save_file, "
            "or transformers' save_pretrained, on a machine you trust)"
        )


def read_header(path: Path) -> dict[str, TensorEntry]:
    """The tensors a safetensors file declares, after checking that the file holds all their bytes."""
    size = path.stat().st_size
    with path.open("rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise CheckpointError(
                f"{path.name} is truncated: {size} bytes, not even the 8-byte header length"
            )
        header_len = int.from_bytes(prefix, "little")
        if header_len > _MAX_HEADER_BYTES:
            raise CheckpointError(f"{path.name} is not a safetensors file: header length {header_len} bytes")
        if 8 + header_len > size:
            raise CheckpointError(
                f"{path.name} is truncated: its header needs {header_len} bytes but the file has {size - 8} after "
                "the length; copy the file again"
            )
        raw = f.read(header_len)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(
            f"{path.name} is not a safetensors file: unreadable JSON header ({exc})"
        ) from None
    data_bytes = size - 8 - header_len
    entries = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = spec["dtype"], tuple(spec["shape"]), spec["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(
                f"{path.name}: header entry for tensor {name!r} is malformed: {spec}"
            ) from None
        expected = math.prod(shape) * _DTYPE_BYTES.get(dtype, 0)
        if dtype in _DTYPE_BYTES and end - begin != expected:
            raise CheckpointError(
                f"{path.name}: tensor {name!r} is {dtype}{list(shape)} ({expected} bytes) but its header "
                f"gives {end - begin} bytes"
            )
        entries[name] = TensorEntry(name, path.name, dtype, shape, begin, end)
    beyond = [e for e in entries.values() if e.end > data_bytes]
    if beyond:
        first = min(beyond, key=lambda e: e.begin)
        raise CheckpointError(
            f"{path.name} is truncated: tensor {first.name!r} ({first.dtype}{list(first.shape)}) needs data "
            f"bytes {first.begin}..{first.end} but the file holds {data_bytes} "
            f"({len(beyond)} of {len(entries)} tensors incomplete); copy the file again"
        )
    return entries


def check_weight_files(path: Path) -> dict[str, TensorEntry]:
    """Every tensor of the checkpoint, by name, after checking each file and the index.

    The weights are `model.safetensors`, or the shards `model.safetensors.index.json` lists (the
    layout `save_pretrained` writes and transformers reads).
    """
    index_file = path / INDEX_FILE
    if index_file.is_file():
        try:
            weight_map: dict[str, str] = json.loads(index_file.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{index_file} is not a safetensors index (no weight_map): {exc}") from None
        shard_names = sorted(set(weight_map.values()))
        absent = [n for n in shard_names if not (path / n).is_file()]
        if absent:
            tensor = next(t for t, n in weight_map.items() if n == absent[0])
            raise CheckpointError(
                f"{INDEX_FILE} puts tensor {tensor!r} in {absent[0]}, which is not in {path} "
                f"(missing shards: {absent})"
            )
    elif (path / SINGLE_FILE).is_file():
        weight_map, shard_names = None, [SINGLE_FILE]
    else:
        present = sorted(p.name for p in path.glob("*.safetensors"))
        raise CheckpointError(
            f"{path} has no {SINGLE_FILE} and no {INDEX_FILE}"
            + (
                f" (found {present}; shards need their index)"
                if present
                else "; expected safetensors weights"
            )
        )
    tensors: dict[str, TensorEntry] = {}
    for shard in shard_names:
        for name, entry in read_header(path / shard).items():
            if name in tensors:
                raise CheckpointError(f"tensor {name!r} is stored twice (in {shard} and another shard)")
            if weight_map is not None and weight_map.get(name) != shard:
                raise CheckpointError(
                    f"tensor {name!r} is in {shard} but {INDEX_FILE} puts it in {weight_map.get(name)}"
                )
            tensors[name] = entry
    if weight_map is not None:
        lost = sorted(set(weight_map) - set(tensors))
        if lost:
            raise CheckpointError(
                f"{INDEX_FILE} lists tensor {lost[0]!r} in {weight_map[lost[0]]}, but that file does not hold it"
                + (f" ({len(lost)} such tensors)" if len(lost) > 1 else "")
            )
    return tensors

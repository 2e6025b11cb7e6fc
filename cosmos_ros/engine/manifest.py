"""`manifest.json`: what an export directory holds, written by `cosmos-ros export`, read by the
onnxruntime and TensorRT backends.

    {"format_version": 1, "model_id": "tiny-dense@1a2b3c4d", "family": "dense", "opset": 18,
     "dtype": "float32", "precision": "fp32", "graphs": {"vision": {...}, "prefill": {...}, "decode": {...}}, ...}

Each graph names its file (weights beside it as ONNX external data), its inputs and outputs
with dtype and shape (an int per fixed axis, a label per dynamic one: "batch", "sequence",
"past", "past + 1", "frames", ...), its size, export time and the largest difference from torch
measured when it was verified. A backend checks the names it finds in a graph or engine against
the manifest and refuses to run on a mismatch (`ManifestMismatchError`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
GRAPHS = ("vision", "prefill", "decode")


class ManifestError(ValueError):
    """An export directory whose manifest is missing, unreadable or from another format."""


class ManifestMismatchError(ManifestError):
    """A graph or engine whose inputs / outputs are not the ones its manifest lists."""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # numpy name: "float32", "int64", ...
    shape: tuple[int | str, ...]  # ints are fixed axes, strings label dynamic ones


@dataclass
class GraphSpec:
    file: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    size_bytes: int = 0  # graph + external data
    export_s: float = 0.0
    max_abs_diff: float | None = None  # against torch, over the verification runs
    sequence_multiple: int = 1  # prefill: prompt lengths must be a multiple of this (left-padded)

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    def check_names(self, graph: str, inputs: list[str], outputs: list[str], where: str) -> None:
        """Refuse a graph / engine whose binding names differ from this spec's."""
        problems = []
        for kind, want, got in (
            ("inputs", self.input_names, inputs),
            ("outputs", self.output_names, outputs),
        ):
            missing = [n for n in want if n not in got]
            extra = [n for n in got if n not in want]
            if missing:
                problems.append(f"{kind} missing from {where}: {missing}")
            if extra:
                problems.append(f"{kind} in {where} but not in the manifest: {extra}")
        if problems:
            raise ManifestMismatchError(
                f"{graph} graph does not match its manifest ({'; '.join(problems)}); "
                "re-export the model (cosmos-ros export) and rebuild engines from that export"
            )


@dataclass
class Manifest:
    model_id: str  # `<name>@<8 hex>` of the source weights
    family: str  # "dense" or "hybrid"
    opset: int
    dtype: str
    graphs: dict[str, GraphSpec]
    cache_layout: list[tuple[int, str]]  # (layer, "attention" | "mamba") of every stateful layer
    eos_token_id: int | list[int] | None
    media_token_id: int
    versions: dict[str, str] = field(default_factory=dict)  # torch, transformers, onnx, onnxruntime
    precision: str = "fp32"  # of the weights: "fp32", or "int8" (`onnx_quantize`)
    format_version: int = FORMAT_VERSION

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / MANIFEST_FILE
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> Manifest:
        path = Path(directory) / MANIFEST_FILE
        if not path.is_file():
            raise ManifestError(f"{directory} is not an export directory: it has no {MANIFEST_FILE}")
        try:
            raw = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{path} is not valid JSON: {exc}") from None
        if raw.get("format_version") != FORMAT_VERSION:
            raise ManifestError(
                f"{path} has format_version {raw.get('format_version')!r}; this cosmos_ros reads "
                f"{FORMAT_VERSION}: re-export the model"
            )
        try:
            graphs = {
                name: GraphSpec(
                    **{k: v for k, v in g.items() if k not in ("inputs", "outputs")},
                    inputs=[TensorSpec(t["name"], t["dtype"], tuple(t["shape"])) for t in g["inputs"]],
                    outputs=[TensorSpec(t["name"], t["dtype"], tuple(t["shape"])) for t in g["outputs"]],
                )
                for name, g in raw["graphs"].items()
            }
            fields = {k: v for k, v in raw.items() if k != "graphs"}
            fields["cache_layout"] = [tuple(x) for x in fields["cache_layout"]]
            manifest = cls(graphs=graphs, **fields)
        except (KeyError, TypeError) as exc:
            raise ManifestError(f"{path} is not a cosmos_ros export manifest: {exc}") from None
        absent = [name for name in GRAPHS if name not in manifest.graphs]
        if absent:
            raise ManifestError(f"{path} lists no {absent} graph(s); expected {list(GRAPHS)}")
        return manifest

    def graph_path(self, directory: str | Path, graph: str) -> Path:
        path = Path(directory) / self.graphs[graph].file
        if not path.is_file():
            raise ManifestError(f"{path} is missing: the export in {directory} is incomplete; export again")
        return path

"""`cosmos-ros export PRESET|DIR OUT/`: ONNX graphs of either family, verified against torch.

    manifest = export_model("tiny-dense", "out/")       # vision.onnx, prefill.onnx, decode.onnx, ...
    directory = ensure_export("tiny-hybrid")            # the same, kept in the engine cache

Each graph (see `onnx_graphs`) is captured with `torch.export` (non-strict, dynamic shapes; a
failure to keep an axis dynamic is an error, never a silent specialization), converted to ONNX
at a fixed opset with weights as external data, labelled (dynamic axes get the names the
manifest uses), checked with `onnx.checker`, then run with onnxruntime on the export example
and on a second example of other sizes (another frame count, batch size and prompt length)
and compared with torch. Only then is it listed as ok in `manifest.json`.

Exports are fp32 (the TensorRT builder lowers precision itself); the model is built on CPU.
The hybrid's Mamba-2 layers are exported through transformers' PyTorch path; its prefill takes
prompt lengths in multiples of the Mamba chunk size (the runtime left-pads, which the masks
already handle), because the chunked scan does not export for arbitrary lengths.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from cosmos_ros.engine.engine_cache import (
    build_atomically,
    cache_root,
    export_is_reusable,
    exporter_version,
    onnx_export_dir,
)
from cosmos_ros.engine.manifest import GraphSpec, Manifest, TensorSpec
from cosmos_ros.engine.onnx_graphs import cache_layout
from cosmos_ros.engine.onnx_jobs import GraphJob
from cosmos_ros.model.bundle import ModelBundle, load_bundle, write_generation_defaults
from cosmos_ros.model.families import family_of
from cosmos_ros.model.mamba_kernels import mamba_implementation

OPSET = 18
TOLERANCE = 1e-4  # max |ORT - torch|, relative to the largest reference value when that exceeds 1
STEPS = ("trace", "convert", "save", "check", "verify")


class ExportError(RuntimeError):
    """A graph that did not export, did not pass onnx.checker or disagrees with torch."""


def model_id_of(source: str | Path, seed: int = 0) -> str:
    """The id an engine of `source` reports, without building the model: the preset's hash of
    config + seed, or the checkpoint's hash of config + weights."""
    from cosmos_ros.model.checkpoint import checkpoint_id, preset_id
    from cosmos_ros.model.config import PRESETS

    if str(source) in PRESETS or str(source).endswith((".yaml", ".yml")):
        return preset_id(str(source), seed)
    return checkpoint_id(source)


def _relabel(path: Path, labels: dict[str, dict[int, str]]) -> None:
    """Give the dynamic axes of graph inputs and outputs the manifest's labels (torch names them
    s0, s1...), and divide by square roots instead of multiplying by their reciprocals."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    for value in [*model.graph.input, *model.graph.output]:
        for axis, label in labels.get(value.name, {}).items():
            dim = value.type.tensor_type.shape.dim[axis]
            dim.ClearField("dim_value")
            dim.dim_param = label
    _divide_by_square_roots(model.graph)
    onnx.save(model, str(path))


def _divide_by_square_roots(graph) -> None:
    """`x * Reciprocal(Sqrt(v))` (how `torch.rsqrt` exports) → `x / Sqrt(v)`: the form in which
    onnxruntime fuses RMSNorm into one SimplifiedLayerNormalization kernel; the same value to
    rounding. Reciprocals that still have other readers stay."""
    from onnx import helper

    producer = {out: node for node in graph.node for out in node.output}
    readers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    graph_outputs = {value.name for value in graph.output}
    for node in list(graph.node):
        if node.op_type != "Reciprocal" or node.output[0] in graph_outputs:
            continue
        root = producer.get(node.input[0])
        if root is None or root.op_type != "Sqrt":
            continue
        kept = False
        for reader in readers.get(node.output[0], []):
            if reader.op_type != "Mul" or list(reader.input).count(node.output[0]) != 1:
                kept = True
                continue
            other = next(name for name in reader.input if name != node.output[0])
            divide = helper.make_node("Div", [other, node.input[0]], list(reader.output), name=reader.name)
            position = list(graph.node).index(reader)
            graph.node.remove(reader)
            graph.node.insert(position, divide)
        if not kept:
            graph.node.remove(node)


def _specs(path: Path) -> tuple[list[TensorSpec], list[TensorSpec]]:
    import onnx
    from onnx import helper

    model = onnx.load(str(path), load_external_data=False)

    def spec(value) -> TensorSpec:
        tensor = value.type.tensor_type
        shape = tuple(d.dim_param or d.dim_value for d in tensor.shape.dim)
        return TensorSpec(value.name, str(helper.tensor_dtype_to_np_dtype(tensor.elem_type)), shape)

    return [spec(v) for v in model.graph.input], [spec(v) for v in model.graph.output]


def verify(session, job: GraphJob, tolerance: float) -> float:
    """Max |onnxruntime - torch| over every output of both examples; ExportError above tolerance."""
    worst = 0.0
    for args in (job.example, job.check):
        with torch.inference_mode():
            expected = job.module(*args)
        expected = expected if isinstance(expected, tuple) else (expected,)
        feeds = {name: a.numpy() for name, a in zip(job.module.input_names, args)}
        got = session.run(list(job.module.output_names), feeds)
        for name, want, have in zip(job.module.output_names, expected, got):
            if tuple(want.shape) != tuple(have.shape):
                raise ExportError(
                    f"{job.name}: output {name} is {have.shape} in onnxruntime, {tuple(want.shape)} in torch"
                )
            diff = float(np.abs(want.float().numpy() - have).max()) if want.numel() else 0.0
            scale = max(1.0, float(want.abs().max())) if want.numel() else 1.0
            if diff > tolerance * scale:
                raise ExportError(
                    f"{job.name}: output {name} differs from torch by {diff:.3g} (tolerance {tolerance * scale:.3g})"
                )
            worst = max(worst, diff)
    return worst


def _export_graph(
    job: GraphJob, directory: Path, opset: int, tolerance: float, advance: Callable
) -> GraphSpec:
    import onnx
    import onnxruntime as ort

    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.export's own pytree deprecations
            program = torch.export.export(
                job.module,
                job.example,
                dynamic_shapes=job.dynamic_shapes,
                strict=False,
                prefer_deferred_runtime_asserts_over_guards=True,
            )
    except Exception as exc:
        raise ExportError(f"{job.name}: torch.export failed: {exc}") from exc
    advance()
    onnx_program = torch.onnx.export(
        program, (), opset_version=opset, dynamo=True, optimize=True, verbose=False,
        input_names=list(job.module.input_names), output_names=list(job.module.output_names),
    )  # fmt: skip
    advance()
    path = directory / f"{job.name}.onnx"
    onnx_program.save(str(path), external_data=True)
    _relabel(path, job.labels)
    advance()
    onnx.checker.check_model(str(path))
    advance()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = verify(session, job, tolerance)
    advance()
    inputs, outputs = _specs(path)
    size = sum(p.stat().st_size for p in directory.glob(f"{job.name}.onnx*"))
    return GraphSpec(
        path.name, inputs, outputs, size, time.perf_counter() - start, worst, job.sequence_multiple
    )


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import transformers

    return {"exporter": exporter_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}  # fmt: skip


def export_bundle(
    bundle: ModelBundle,
    out_dir: str | Path,
    *,
    opset: int = OPSET,
    tolerance: float = TOLERANCE,
    progress=None,
) -> Manifest:
    """Export a built fp32 CPU model (see `export_model`). `progress`: a rich Progress, or None."""
    if next(bundle.model.parameters()).dtype != torch.float32:
        raise ValueError("export needs the fp32 model (the TensorRT builder lowers precision itself)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    family = family_of(bundle.family)
    if not family.exportable:
        raise ValueError(f"the {family.name} family ({family.summary}) has no ONNX export")
    graphs = {}
    # the graphs trace PyTorch code, never Mamba kernels (a model without Mamba layers is unaffected)
    with mamba_implementation(False), torch.inference_mode(False):
        jobs = family.load("export_jobs")(bundle)
        for job in jobs:
            task = progress.add_task(f"{bundle.model_id} {job.name}", total=len(STEPS)) if progress else None

            def advance(task=task):
                if progress is not None:
                    progress.advance(task)

            graphs[job.name] = _export_graph(job, out, opset, tolerance, advance)
    config = bundle.model.config
    bundle.tokenizer.save_pretrained(out)
    config.save_pretrained(out)
    if bundle.generation:
        write_generation_defaults(out, bundle.generation)
    media = bundle.processor.media
    (out / "video_preprocessor_config.json").write_text(json.dumps(media.to_hf_dict(), indent=2))
    manifest = Manifest(
        model_id=bundle.model_id,
        family=bundle.family,
        opset=opset,
        dtype="float32",
        graphs=graphs,
        cache_layout=cache_layout(config),
        eos_token_id=config.get_text_config().eos_token_id,
        media_token_id=getattr(config, family.media_token),
        versions=_versions(),
    )
    manifest.save(out)
    return manifest


def export_model(
    source: str | Path, out_dir: str | Path, *, seed: int = 0, opset: int = OPSET,
    tolerance: float = TOLERANCE, progress=None,
) -> Manifest:  # fmt: skip
    """Export a preset (random init from `seed`) or a checkpoint directory into `out_dir`."""
    bundle = load_bundle(source, device="cpu", dtype="fp32", seed=seed)
    return export_bundle(bundle, out_dir, opset=opset, tolerance=tolerance, progress=progress)


def ensure_export(
    source: str | Path, *, seed: int = 0, opset: int = OPSET, root: Path | None = None, progress=None
) -> Path:
    """The cached export of `source` (see `engine_cache`), exported first on a miss. Written to a
    temporary folder and renamed, so an interrupted export is never mistaken for a finished one."""
    model_id = model_id_of(source, seed)
    directory = onnx_export_dir(root or cache_root(), model_id, opset)
    if export_is_reusable(directory, model_id, opset):
        return directory
    return build_atomically(
        directory, lambda staging: export_model(source, staging, seed=seed, opset=opset, progress=progress)
    )

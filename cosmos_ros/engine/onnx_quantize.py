"""int8 weights for the onnxruntime backend: an fp32 export in, an export of the same graphs out.

    directory = ensure_int8_export(ensure_export("tiny-dense"))   # kept in the engine cache
    quantize_export("exports/tiny-dense", "exports/tiny-dense-int8")
    cosmos-ros export tiny-dense exports/tiny-dense-int8 --precision int8

Decoding one token reads every weight once, so an fp32 model decodes at most at the machine's
memory bandwidth divided by four bytes per parameter. In the decode graph every MatMul whose
second input is a weight becomes onnxruntime's `MatMulNBits` with 8-bit weights: symmetric, one
fp32 scale per block of BLOCK_SIZE input features (no coarser than one per output channel of a
128-wide layer, so an outlier costs only its block), and int8 activations inside the kernel (accuracy level 4; level 1, fp32
compute, dequantizes every weight each step and decoded 6x slower). What is not a weight MatMul
(embedding lookup, norms, attention over the cache, the Mamba scan) stays fp32, the vision and
prefill graphs stay fp32 (see QUANTIZED_GRAPHS), and so does everything the graphs take and
give: the manifest's inputs and outputs are the fp32 export's, so the runtime is the same code.

The export records `precision: "int8"` and the quantizer's version; the cached int8 export of a
model is reused while both it and the fp32 export it came from are current (`engine_cache`).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from pathlib import Path

from cosmos_ros.engine.base import PRECISIONS as ENGINE_PRECISIONS
from cosmos_ros.engine.engine_cache import (
    build_atomically,
    cache_root,
    export_is_reusable,
    onnx_export_dir,
    quantizer_version,
)
from cosmos_ros.engine.manifest import GRAPHS, MANIFEST_FILE, Manifest

PRECISIONS = ENGINE_PRECISIONS["onnxruntime"]
BITS = 8
# One fp32 scale per 128 input features. Blocks of 32 kept an outlier's cost smaller but made the
# kernel rescale four times as often: on the 2-core Xeon (VNNI) the decode ran 1.72x fp32 with
# blocks of 32, 1.92x with 128 and 1.93x with 256 (bench/engines.py's model, interleaved runs).
BLOCK_SIZE = 128
ACCURACY_LEVEL = 4  # int8 activations in the kernel (onnxruntime's CompMinimum = int8)
# Decoding a token reads every weight for one row of activations: bandwidth-bound, where 8-bit
# weights pay. Vision and prefill multiply hundreds of rows per weight: compute-bound, and on a
# CPU without int8 dot-product instructions (AVX2 only) onnxruntime's 8-bit kernel took 1.9x the
# fp32 time for them (bench/engines.py), so they stay fp32.
QUANTIZED_GRAPHS = ("decode",)


def gemm_as_matmul(model) -> int:
    """Rewrites each Gemm of a weight (the vision tower's linear layers export so) as MatMul + Add,
    which the 8-bit quantizer takes; returns how many. Only the plain form (alpha = beta = 1, A not
    transposed, B an initializer) is rewritten; the result is the same function."""
    from onnx import helper, numpy_helper

    graph = model.graph
    weights = {init.name: init for init in graph.initializer}
    rewritten = 0
    for node in list(graph.node):
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type != "Gemm" or node.input[1] not in weights:
            continue
        if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 or attrs.get("transA", 0):
            continue
        b = numpy_helper.to_array(weights[node.input[1]])
        name = f"{node.name or node.output[0]}.weight"
        graph.initializer.append(numpy_helper.from_array((b.T if attrs.get("transB", 0) else b).copy(), name))
        has_bias = len(node.input) > 2 and node.input[2]
        product = f"{node.output[0]}.matmul" if has_bias else node.output[0]
        replacement = [
            helper.make_node("MatMul", [node.input[0], name], [product], name=f"{node.name}.matmul")
        ]
        if has_bias:
            bias = helper.make_node(
                "Add", [product, node.input[2]], [node.output[0]], name=f"{node.name}.bias"
            )
            replacement.append(bias)
        position = list(graph.node).index(node)
        graph.node.remove(node)
        for offset, new in enumerate(replacement):
            graph.node.insert(position + offset, new)
        rewritten += 1
    drop_unused_initializers(graph)
    return rewritten


def drop_unused_initializers(graph) -> None:
    """Removes the initializers no node reads (weights a rewrite replaced)."""
    used = {i for n in graph.node for i in n.input}
    kept = [init for init in graph.initializer if init.name in used]
    if len(kept) < len(graph.initializer):
        del graph.initializer[:]
        graph.initializer.extend(kept)


def quantize_graph(source: Path, target: Path) -> int:
    """Writes `target` (weights as external data beside it): `source` with its weight MatMuls in
    8 bits. Returns how many MatMuls were quantized."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    model = onnx.load(str(source))
    gemm_as_matmul(model)
    config = DefaultWeightOnlyQuantConfig(
        block_size=BLOCK_SIZE, is_symmetric=True, accuracy_level=ACCURACY_LEVEL, bits=BITS
    )
    quantizer = MatMulNBitsQuantizer(model, algo_config=config)
    chatty = logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer")
    level = chatty.level
    chatty.setLevel(logging.WARNING)  # it logs a line per node at INFO
    try:
        quantizer.process()
    finally:
        chatty.setLevel(level)
    quantized = quantizer.model.model
    count = sum(node.op_type == "MatMulNBits" for node in quantized.graph.node)
    onnx.save_model(quantized, str(target), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=target.name + ".data", size_threshold=1024)  # fmt: skip
    return count


def copy_beside_graphs(source_dir: Path, out: Path, manifest: Manifest) -> None:
    """Copies what an export holds beside its graphs and manifest (tokenizer, configs, processor
    files) into `out`, made if missing."""
    out.mkdir(parents=True, exist_ok=True)
    graph_files = {manifest.graph_path(source_dir, g).name for g in GRAPHS}
    for path in source_dir.iterdir():
        is_graph = any(path.name == f or path.name.startswith(f + ".") for f in graph_files)
        if path.is_file() and not is_graph and path.name != MANIFEST_FILE:
            shutil.copy2(path, out / path.name)


def quantized_spec(spec, target: Path, start: float):
    """A quantized graph's manifest entry: its size on disk (graph and external data), the time
    since `start`, and no max |Δ| against torch: quantized graphs are compared in accuracy."""
    size = sum(p.stat().st_size for p in target.parent.glob(f"{target.name}*"))
    return dataclasses.replace(spec, size_bytes=size, export_s=time.perf_counter() - start, max_abs_diff=None)


def quantize_export(source_dir: str | Path, out_dir: str | Path, *, progress=None) -> Manifest:
    """Writes the int8 export of the fp32 export in `source_dir` to `out_dir`: the quantized
    graphs, the same tokenizer, configs and processor files, and its manifest."""
    source_dir, out = Path(source_dir), Path(out_dir)
    manifest = Manifest.load(source_dir)
    if manifest.precision != "fp32":
        raise ValueError(f"{source_dir} is already a {manifest.precision} export; quantize the fp32 export")
    if out.resolve() == source_dir.resolve():
        raise ValueError("the int8 export needs its own directory, not the fp32 export's")
    copy_beside_graphs(source_dir, out, manifest)
    graphs = {}
    task = progress.add_task(f"{manifest.model_id} int8", total=len(GRAPHS)) if progress else None
    for name in GRAPHS:
        spec = manifest.graphs[name]
        source, target = manifest.graph_path(source_dir, name), out / spec.file
        if name not in QUANTIZED_GRAPHS:
            for path in source_dir.glob(f"{source.name}*"):  # the graph and its external data
                shutil.copy2(path, out / path.name)
            graphs[name] = spec
        else:
            start = time.perf_counter()
            quantize_graph(source, target)
            graphs[name] = quantized_spec(spec, target, start)
        if progress is not None:
            progress.advance(task)
    quantized = dataclasses.replace(
        manifest,
        graphs=graphs,
        precision="int8",
        versions={**manifest.versions, "quantizer": quantizer_version()},
    )
    quantized.save(out)
    return quantized


def ensure_int8_export(export_dir: str | Path, *, root: Path | None = None, progress=None) -> Path:
    """The cached int8 export of the fp32 export in `export_dir`, quantized first on a miss."""
    source = Manifest.load(export_dir)
    directory = onnx_export_dir(root or cache_root(), source.model_id, source.opset, "int8")
    exporter = source.versions.get("exporter")
    if export_is_reusable(directory, source.model_id, source.opset, exporter, precision="int8"):
        return directory
    return build_atomically(
        directory, lambda staging: quantize_export(export_dir, staging, progress=progress)
    )

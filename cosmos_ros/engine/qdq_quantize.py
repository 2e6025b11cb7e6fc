"""Q/DQ exports for TensorRT's int8 and fp8 engines: an fp32 export in, the same graphs with
QuantizeLinear / DequantizeLinear around every weight MatMul out, calibrated on real answers.

    directory = ensure_qdq_export(ensure_export("tiny-dense"), "fp8")     # kept in the engine cache
    engine = create_engine("tensorrt", "ckpt/", device="cuda", precision="int8")   # builds from it
    cosmos-ros export exports/7b exports/7b-qdq-fp8 --precision qdq-fp8 --calibration-data data/robot

TensorRT 10 quantizes explicitly: a layer runs in int8 or fp8 where the ONNX graph says so with
Q/DQ nodes (its implicit int8 calibrator is deprecated), and the rest in fp16. The onnxruntime
backend's int8 export (`onnx_quantize`) uses onnxruntime's own `MatMulNBits` operator, which
TensorRT does not parse, so the TensorRT precisions get graphs of standard ONNX operators:

- every MatMul whose second input is a weight (the vision tower's Gemms rewritten as MatMul
  first), in all three graphs: on a GPU, 8-bit tensor cores speed up the compute-bound vision and
  prefill as well as the bandwidth-bound decode. Attention over the cache, norms, embeddings and
  the Mamba scan keep their precision.
- weights: symmetric, one scale per output channel (int8 in [-127, 127], as TensorRT requires;
  fp8 E4M3).
- activations into those MatMuls: symmetric, one scale per tensor, from the values met while the
  fp32 export answers calibration clips (int8: the largest magnitude seen; fp8, whose exponent
  covers a wide range, by onnxruntime's distribution method, the only one it offers for fp8).

Calibration feeds are recorded from the fp32 export answering `calibration` (clip, prompt) pairs
on onnxruntime (CPU): every vision and prefill call and decode steps up to a byte budget. The
default set is a synthetic scene (a ball rolling over a gradient) asked the reasoner's two
questions; give clips of your own cameras (`calibration_from_data`) for ranges that match them.

fp8 needs opset 19 (onnxruntime's quantizer raises the opset itself) and a GPU of compute
capability 8.9 or newer (Ada, Hopper, Blackwell) to build; the graphs also run on onnxruntime's
CPU provider, which emulates the rounding, so their accuracy is testable without a GPU.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from cosmos_ros.engine.engine_cache import (
    build_atomically,
    cache_root,
    export_is_reusable,
    onnx_export_dir,
    quantizer_version,
)
from cosmos_ros.engine.manifest import GRAPHS, Manifest
from cosmos_ros.engine.onnx_quantize import (
    copy_beside_graphs,
    drop_unused_initializers,
    gemm_as_matmul,
    quantized_spec,
)

QDQ_PRECISIONS = ("qdq-int8", "qdq-fp8")  # an export's precision; TensorRT's names: int8, fp8
CALIBRATION_CLIPS = 8
# Decode steps carry the whole KV cache as inputs: for a 7B at 2k tokens ~170 MB a step. Record
# them up to this many bytes per graph (vision and prefill calls are recorded whole up to it too).
CALIBRATION_BYTES = 1 << 30


def export_precision(tensorrt_precision: str) -> str:
    """'int8' → 'qdq-int8', 'fp8' → 'qdq-fp8'."""
    name = f"qdq-{tensorrt_precision}"
    if name not in QDQ_PRECISIONS:
        raise ValueError(f"no Q/DQ export for precision {tensorrt_precision!r}; one of int8, fp8")
    return name


def synthetic_calibration(
    size: tuple[int, int] = (448, 448), frames: int = 8, fps: float = 4.0, clips: int = CALIBRATION_CLIPS
):
    """`clips` (Clip, Prompt) pairs of the synthetic scene, each a later stretch of it, asked in
    turn the reasoner's next-subtask and failure questions."""
    import itertools

    from cosmos_ros.core.prompts import failure_prompt, next_subtask_prompt
    from cosmos_ros.core.types import Clip
    from cosmos_ros.nodes.video_camera import pattern_frames

    width, height = size
    scene = pattern_frames(width, height, fps)
    prompts = (
        next_subtask_prompt("put the red ball in the box", ["pick up the red ball", "open the box", "stop"]),
        failure_prompt("put the red ball in the box", "pick up the red ball"),
    )
    pairs = []
    for index in range(clips):
        stack = np.stack(list(itertools.islice(scene, frames)))
        stamps = (index * frames + np.arange(frames)) / fps
        pairs.append((Clip(frames=stack, stamps=stamps, fps=fps), prompts[index % len(prompts)]))
    return pairs


def calibration_from_data(data_dirs: Sequence[str | Path], *, split: str = "val", clips: int = CALIBRATION_CLIPS,
                          fps: float = 4.0, max_frames: int = 16):  # fmt: skip
    """(Clip, Prompt) pairs of the first `clips` distinct clips of a `cosmos-ros gen-data` folder's
    split (or any folder of the same layout: your own camera's clips and questions)."""
    from cosmos_ros.core.types import Prompt
    from cosmos_ros.training.data import read_split, read_video

    pairs, seen = [], set()
    for record in read_split([str(d) for d in data_dirs], split):
        if record.video in seen:
            continue
        seen.add(record.video)
        try:
            clip = read_video(record.video, fps, max_frames)
        except ValueError:
            continue  # an unreadable clip calibrates nothing; the next one does
        pairs.append((clip, Prompt(text=record.prompt_text, options=record.options)))
        if len(pairs) == clips:
            break
    if not pairs:
        raise ValueError(f"no readable clip in the {split!r} split of {', '.join(map(str, data_dirs))}")
    return pairs


class FeedRecorder:
    """Stands between the exported runner and its backend, keeping a numpy copy of each graph's
    feeds until the graph has used up `max_bytes`."""

    def __init__(self, backend, max_bytes: int = CALIBRATION_BYTES):
        self.backend, self.max_bytes = backend, max_bytes
        self.feeds: dict[str, list[dict[str, np.ndarray]]] = {graph: [] for graph in GRAPHS}
        self.bytes = dict.fromkeys(GRAPHS, 0)

    def run(self, graph: str, feeds: dict) -> dict:
        if self.bytes[graph] < self.max_bytes:
            arrays = {name: self._numpy(graph, name, value) for name, value in feeds.items()}
            self.feeds[graph].append(arrays)
            self.bytes[graph] += sum(a.nbytes for a in arrays.values())
        return self.backend.run(graph, feeds)

    def to_torch(self, value):
        return self.backend.to_torch(value)

    def _numpy(self, graph: str, name: str, value) -> np.ndarray:
        array = value.numpy() if hasattr(value, "numpy") else np.asarray(value)
        if self.backend.input_types[graph][name] == "tensor(int64)":
            array = array.astype(np.int64, copy=False)
        return np.ascontiguousarray(array).copy()


def record_calibration_feeds(export_dir: str | Path, pairs: Iterable, *, max_new_tokens: int = 16,
                             max_bytes: int = CALIBRATION_BYTES) -> dict[str, list[dict[str, np.ndarray]]]:  # fmt: skip
    """{graph: [feeds, ...]}: what the fp32 export's three graphs were given while it answered
    each (clip, prompt), greedily, on onnxruntime's CPU provider."""
    from cosmos_ros.engine.onnx_engine import OnnxRuntimeEngine

    engine = OnnxRuntimeEngine(export_dir, "cpu", precision="fp32")
    try:
        recorder = FeedRecorder(engine.runner.backend, max_bytes)
        engine.runner.backend = recorder
        for clip, prompt in pairs:
            engine.reason(clip, prompt, max_new_tokens=max_new_tokens, temperature=0.0)
    finally:
        engine.close()
    empty = [graph for graph, feeds in recorder.feeds.items() if not feeds]
    if empty:
        raise ValueError(f"calibration ran none of the graphs {empty}; give at least one clip")
    return recorder.feeds


class _Feeds:
    """onnxruntime's CalibrationDataReader over recorded feeds (duck-typed: get_next, rewind)."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]):
        self._feeds, self._next = feeds, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._next >= len(self._feeds):
            return None
        self._next += 1
        return self._feeds[self._next - 1]

    def rewind(self) -> None:
        self._next = 0


def weight_matmul_nodes(model) -> list:
    """The MatMul nodes whose second input is an initializer (a weight)."""
    weights = {init.name for init in model.graph.initializer}
    return [n for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in weights]


def weight_matmuls(model) -> list[str]:
    """Names of the MatMul nodes whose second input is an initializer (a weight)."""
    return [n.name for n in weight_matmul_nodes(model)]


# The largest magnitude each type holds: int8 symmetric as TensorRT requires ([-127, 127]), fp8
# E4M3 (finite range ±448). Scales are amax / QMAX, as TensorRT's own calibration sets them.
QMAX = {"qdq-int8": 127.0, "qdq-fp8": 448.0}


def activation_ranges(model_path: Path, feeds: list[dict[str, np.ndarray]], tensors: set[str]) -> dict[str, float]:
    """{tensor: largest magnitude} of `tensors` (activations of the model at `model_path`) over
    `feeds`, by onnxruntime's MinMax calibrator, given the feeds one at a time: they differ in
    shape (prompt and cache lengths), and memory stays at one feed's values."""
    from onnxruntime.quantization.calibrate import CalibrationMethod, create_calibrator

    with tempfile.TemporaryDirectory(prefix="cosmos_ros_calib.") as scratch:
        calibrator = create_calibrator(
            model_path, ["MatMul"], augmented_model_path=str(Path(scratch) / "augmented.onnx"),
            calibrate_method=CalibrationMethod.MinMax, use_external_data_format=True,
            extra_options={"symmetric": True},
        )  # fmt: skip
        for feed in feeds:
            calibrator.collect_data(_Feeds([feed]))
        ranges = calibrator.compute_data()
    found = {}
    for name in tensors:
        if name in ranges.data:
            low, high = ranges.data[name].range_value
            found[name] = float(max(np.abs(np.asarray(low)).max(), np.abs(np.asarray(high)).max()))
    return found


def _quantize(values: np.ndarray, scale: np.ndarray, precision: str) -> np.ndarray:
    scaled = values / scale
    if precision == "qdq-int8":
        return np.clip(np.rint(scaled), -127, 127).astype(np.int8)
    from ml_dtypes import float8_e4m3fn

    return np.clip(scaled, -448.0, 448.0).astype(float8_e4m3fn)


def insert_qdq(model, amax: dict[str, float], precision: str) -> list[str]:
    """Puts Q/DQ on both inputs of every weight MatMul of `model` (in place) whose activation has
    a calibrated range in `amax`: the weight stored in 8 bits with one scale per output channel
    (axis 1 of the (in, out) weight), behind a DequantizeLinear; the activation through a
    QuantizeLinear / DequantizeLinear pair with one scale. Returns the MatMuls quantized."""
    from onnx import TensorProto, helper, numpy_helper

    qmax = QMAX[precision]
    zero_type = TensorProto.INT8 if precision == "qdq-int8" else TensorProto.FLOAT8E4M3FN
    weights = {init.name: init for init in model.graph.initializer}
    done, new_nodes, activation_qdq = [], [], {}
    for node in model.graph.node:
        weight = weights.get(node.input[1]) if node.op_type == "MatMul" else None
        if weight is None or node.input[0] not in amax or len(weight.dims) != 2:
            new_nodes.append(node)
            continue
        w = numpy_helper.to_array(weight).astype(np.float32)
        channel_amax = np.abs(w).max(axis=0)
        w_scale = (np.where(channel_amax > 0, channel_amax, 1.0) / qmax).astype(np.float32)
        prefix = node.name or node.output[0]
        names = {k: f"{prefix}.{k}" for k in ("w_q", "w_scale", "w_zero", "w_deq")}
        model.graph.initializer.extend([
            numpy_helper.from_array(_quantize(w, w_scale, precision), names["w_q"]),
            numpy_helper.from_array(w_scale, names["w_scale"]),
            helper.make_tensor(names["w_zero"], zero_type, [w.shape[1]], [0] * w.shape[1]),
        ])  # fmt: skip
        new_nodes.append(helper.make_node(
            "DequantizeLinear", [names["w_q"], names["w_scale"], names["w_zero"]], [names["w_deq"]],
            name=f"{prefix}.w_dequantize", axis=1,
        ))  # fmt: skip
        source = node.input[0]
        if source not in activation_qdq:  # one pair per activation, shared by the MatMuls it feeds
            base = f"{source}.qdq"
            scale = np.array(max(amax[source], 1e-8) / qmax, dtype=np.float32)
            model.graph.initializer.extend([
                numpy_helper.from_array(scale, f"{base}.scale"),
                helper.make_tensor(f"{base}.zero", zero_type, [], [0]),
            ])  # fmt: skip
            new_nodes.append(helper.make_node(
                "QuantizeLinear", [source, f"{base}.scale", f"{base}.zero"], [f"{base}.q"], name=f"{base}.quantize"
            ))  # fmt: skip
            new_nodes.append(helper.make_node(
                "DequantizeLinear", [f"{base}.q", f"{base}.scale", f"{base}.zero"], [f"{base}.dq"],
                name=f"{base}.dequantize",
            ))  # fmt: skip
            activation_qdq[source] = f"{base}.dq"
        node.input[0], node.input[1] = activation_qdq[source], names["w_deq"]
        new_nodes.append(node)
        done.append(node.name)
    del model.graph.node[:]
    model.graph.node.extend(new_nodes)
    drop_unused_initializers(model.graph)
    if precision == "qdq-fp8":  # float8 QuantizeLinear / DequantizeLinear are opset 19
        for opset in model.opset_import:
            if opset.domain in ("", "ai.onnx") and opset.version < 19:
                opset.version = 19
    return done


def quantize_graph_qdq(source: Path, target: Path, feeds: list[dict[str, np.ndarray]], precision: str) -> int:
    """Writes `target` (weights as external data beside it): `source` with Q/DQ around each
    weight MatMul, its activation's range calibrated on `feeds`. precision: 'qdq-int8' |
    'qdq-fp8'. Returns how many MatMuls were quantized."""
    import onnx

    if precision not in QDQ_PRECISIONS:
        raise ValueError(f"precision must be one of {QDQ_PRECISIONS}, got {precision!r}")
    model = onnx.load(str(source))
    gemm_as_matmul(model)
    inputs = {n.input[0] for n in weight_matmul_nodes(model)}
    with tempfile.TemporaryDirectory(prefix="cosmos_ros_qdq.") as scratch:
        # the calibrator reads a file: a model proto over 2 GB cannot be passed whole
        staged = Path(scratch) / source.name
        onnx.save_model(model, str(staged), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=staged.name + ".data", size_threshold=1024)  # fmt: skip
        amax = activation_ranges(staged, feeds, inputs)
        model = onnx.load(str(staged))  # saving moved the weights out of the proto, into scratch
    done = insert_qdq(model, amax, precision)
    onnx.save_model(model, str(target), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=target.name + ".data", size_threshold=1024)  # fmt: skip
    return len(done)


def quantized_matmuls(model) -> list[str]:
    """Names of the MatMuls whose weight comes through a DequantizeLinear."""
    dequantized = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in dequantized]


def qdq_export(source_dir: str | Path, out_dir: str | Path, precision: str, *, calibration=None,
               progress=None) -> Manifest:  # fmt: skip
    """Writes the Q/DQ export (`precision` 'qdq-int8' | 'qdq-fp8') of the fp32 export in
    `source_dir` to `out_dir`: the quantized graphs, the same tokenizer, configs and processor
    files, and its manifest. calibration: (Clip, Prompt) pairs; None: `synthetic_calibration` at
    the export's frame size."""
    source_dir, out = Path(source_dir), Path(out_dir)
    manifest = Manifest.load(source_dir)
    if manifest.precision != "fp32":
        raise ValueError(f"{source_dir} is a {manifest.precision} export; quantize the fp32 export")
    if out.resolve() == source_dir.resolve():
        raise ValueError("the Q/DQ export needs its own directory, not the fp32 export's")
    if precision not in QDQ_PRECISIONS:
        raise ValueError(f"precision must be one of {QDQ_PRECISIONS}, got {precision!r}")
    if calibration is None:
        calibration = synthetic_calibration(_frame_size(source_dir))
    task = progress.add_task(f"{manifest.model_id} {precision}", total=len(GRAPHS) + 1) if progress else None
    feeds = record_calibration_feeds(source_dir, calibration)
    if progress is not None:
        progress.advance(task)
    copy_beside_graphs(source_dir, out, manifest)
    graphs = {}
    for name in GRAPHS:
        spec = manifest.graphs[name]
        start = time.perf_counter()
        quantize_graph_qdq(manifest.graph_path(source_dir, name), out / spec.file, feeds[name], precision)
        graphs[name] = quantized_spec(spec, out / spec.file, start)
        if progress is not None:
            progress.advance(task)
    quantized = dataclasses.replace(
        manifest,
        graphs=graphs,
        precision=precision,
        versions={**manifest.versions, "quantizer": quantizer_version(precision),
                  "calibration": f"{len(calibration)} clips"},
    )  # fmt: skip
    quantized.save(out)
    return quantized


def _frame_size(export_dir: Path) -> tuple[int, int]:
    """A frame size the export's processor keeps as it is: the side of its largest square frame
    within its pixel budget, at most 448, in whole merged patches."""
    import json

    config = json.loads((export_dir / "config.json").read_text())
    vision = config.get("vision_config", {})
    unit = vision.get("patch_size", 14) * vision.get("spatial_merge_size", 2)
    processor_file = export_dir / "video_preprocessor_config.json"
    processor = json.loads(processor_file.read_text()) if processor_file.is_file() else {}
    budget = processor.get("size", {}).get("longest_edge", 448 * 448)
    side = min(448, int(budget**0.5)) // unit * unit
    return (max(unit, side), max(unit, side))


def ensure_qdq_export(export_dir: str | Path, precision: str, *, root: Path | None = None, progress=None) -> Path:
    """The cached Q/DQ export ('qdq-int8' | 'qdq-fp8', or TensorRT's 'int8' | 'fp8') of the fp32
    export in `export_dir`, with the default calibration; made first on a miss."""
    precision = precision if precision in QDQ_PRECISIONS else export_precision(precision)
    source = Manifest.load(export_dir)
    directory = onnx_export_dir(root or cache_root(), source.model_id, source.opset, precision)
    exporter = source.versions.get("exporter")
    if export_is_reusable(directory, source.model_id, source.opset, exporter, precision=precision):
        return directory
    return build_atomically(
        directory, lambda staging: qdq_export(export_dir, staging, precision, progress=progress)
    )

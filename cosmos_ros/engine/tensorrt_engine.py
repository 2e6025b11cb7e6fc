"""The TensorRT backend: engines built from the ONNX export, the shared decode loop, CUDA streams.

    engine = create_engine("tensorrt", "ckpt/", device="cuda", precision="bf16")
    engine = create_engine("tensorrt", "ckpt/", device="cuda", precision="fp8")   # Q/DQ, calibrated
    engine = create_engine("tensorrt", "ckpt/", device="cuda", fallback="onnxruntime")

`model` is an export directory, or a preset / checkpoint (exported into the cache first, as the
onnxruntime backend does); engines are built on a cache miss (`tensorrt_build`). On a machine
without TensorRT, without a GPU or with a CPU-only torch, construction fails at once with an
`EngineUnavailableError` that lists exactly what is missing; `create_engine(..., fallback=...)`
picks another backend only when the caller asks for one.

Buffers are torch CUDA tensors; every graph runs with `execute_async_v3` on one CUDA stream of
the engine, so a decode step's KV cache is consumed by the next step in stream order without a
host round trip; only the logits are copied to the host, after the stream is synchronized.
Binding names of every engine are checked against the manifest (`ManifestMismatchError`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from cosmos_ros.engine.exported_runner import ExportedRunner
from cosmos_ros.engine.generation import DecodingEngine
from cosmos_ros.engine.manifest import GRAPHS, MANIFEST_FILE, Manifest
from cosmos_ros.engine.tensorrt_build import Profiles, build_engines, require_tensorrt


def _torch_dtype(trt, dtype) -> torch.dtype:
    return {
        trt.float32: torch.float32, trt.float16: torch.float16, trt.bfloat16: torch.bfloat16,
        trt.int64: torch.int64, trt.int32: torch.int32, trt.bool: torch.bool, trt.int8: torch.int8,
    }[dtype]  # fmt: skip


class TensorRTGraphs:
    """The three engines, each with one execution context, run on one CUDA stream."""

    def __init__(self, engine_dir: Path, manifest: Manifest, device: torch.device):
        import tensorrt as trt

        self.trt, self.device = trt, device
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engines, self.contexts, self.inputs, self.outputs = {}, {}, {}, {}
        for graph in GRAPHS:
            path = Path(engine_dir) / f"{graph}.engine"
            engine = self.runtime.deserialize_cuda_engine(path.read_bytes())
            if engine is None:
                raise RuntimeError(f"{path} does not deserialize with TensorRT {trt.__version__}; rebuild it")
            names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
            inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
            outputs = [n for n in names if n not in inputs]
            manifest.graphs[graph].check_names(graph, inputs, outputs, str(path))
            self.engines[graph], self.contexts[graph] = engine, engine.create_execution_context()
            self.inputs[graph], self.outputs[graph] = inputs, outputs
        self.stream = torch.cuda.Stream(device)

    def run(self, graph: str, feeds: dict) -> dict:
        engine, context = self.engines[graph], self.contexts[graph]
        with torch.cuda.stream(self.stream):
            held = {}
            for name in self.inputs[graph]:
                dtype = _torch_dtype(self.trt, engine.get_tensor_dtype(name))
                tensor = feeds[name].to(self.device, dtype, non_blocking=True).contiguous()
                held[name] = tensor
                context.set_input_shape(name, tuple(tensor.shape))
                context.set_tensor_address(name, tensor.data_ptr())
            outputs = {}
            for name in self.outputs[graph]:
                shape = tuple(context.get_tensor_shape(name))
                dtype = _torch_dtype(self.trt, engine.get_tensor_dtype(name))
                outputs[name] = torch.empty(shape, dtype=dtype, device=self.device)
                context.set_tensor_address(name, outputs[name].data_ptr())
            if not context.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError(f"TensorRT failed to run the {graph} engine")
            for tensor in held.values():
                tensor.record_stream(self.stream)
        return outputs

    def to_torch(self, value: torch.Tensor) -> torch.Tensor:
        self.stream.synchronize()
        return value.float()


def resolve_tensorrt_export(model: str | Path, precision: str, seed: int, root: Path | None, progress=None) -> Path:
    """The export a TensorRT `precision` engine is built from: fp16 / bf16 / fp32 from the fp32
    graphs (TensorRT lowers precision itself); int8 / fp8 from a Q/DQ export — the directory
    given when it is one, else the fp32 export's, made and cached on first use."""
    from cosmos_ros.engine.onnx_engine import resolve_export
    from cosmos_ros.engine.qdq_quantize import QDQ_PRECISIONS, ensure_qdq_export
    from cosmos_ros.engine.tensorrt_build import QUANTIZED, check_export_precision

    if (Path(model) / MANIFEST_FILE).is_file():
        saved = Manifest.load(model).precision
        if saved in QDQ_PRECISIONS:
            check_export_precision(saved, precision)
            return Path(model)
    # an fp32 export (onnxruntime's int8 one is refused: TensorRT does not parse MatMulNBits)
    fp32 = resolve_export(model, seed, root, progress, precision="fp32")
    if precision in QUANTIZED:
        return ensure_qdq_export(fp32, precision, root=root, progress=progress)
    return fp32


class TensorRTEngine(DecodingEngine):
    """`model`: an export directory, preset or checkpoint. precision: 'fp16' | 'bf16' | 'fp32', or
    'int8' | 'fp8' (8-bit MatMuls from the model's Q/DQ export, `qdq_quantize`, made with the
    default calibration and cached; or give a Q/DQ export directory made with your own clips).
    profiles: the batch / frame / sequence ranges the engines are built for. cache_dir overrides
    $COSMOS_ROS_CACHE."""

    family: str

    def __init__(
        self,
        model: str | Path,
        device: str = "cuda",
        *,
        seed: int = 0,
        precision: str = "fp16",
        profiles: Profiles | None = None,
        cache_dir: str | Path | None = None,
        progress=None,
    ):
        require_tensorrt(device)  # before anything slow: a missing piece is named at once
        profiles = profiles or Profiles()
        from transformers import AutoConfig

        from cosmos_ros.model.bundle import checkpoint_processor, read_generation_defaults
        from cosmos_ros.model.tokenizer import load_tokenizer

        root = Path(cache_dir) if cache_dir else None
        self.export_dir = resolve_tensorrt_export(model, precision, seed, root, progress)
        self.manifest = Manifest.load(self.export_dir)
        self.family = self.manifest.family
        self.engine_dir = build_engines(
            self.export_dir,
            precision=precision,
            profiles=profiles,
            device=device,
            root=root,
            progress=progress,
        )
        config = AutoConfig.from_pretrained(str(self.export_dir), local_files_only=True)
        self.tokenizer = load_tokenizer(self.export_dir, self.family)
        self.processor = checkpoint_processor(self.export_dir, config, self.tokenizer)
        self.device = torch.device(device)
        graphs = TensorRTGraphs(self.engine_dir, self.manifest, self.device)
        self.runner = ExportedRunner(self.manifest, config, graphs)
        self._setup_decoding(self.manifest.eos_token_id, seed, read_generation_defaults(self.export_dir))

    @property
    def model_id(self) -> str:
        return self.manifest.model_id

    def close(self) -> None:
        with self._lock:
            self.runner = None

"""The onnxruntime backend: the exported graphs, the torch engine's decode loop.

    engine = create_engine("onnxruntime", "tiny-dense")         # exported on first use, then cached
    engine = create_engine("onnxruntime", "exports/tiny-dense")  # an export directory
    engine = create_engine("onnxruntime", "ckpt/", device="cuda")
    engine = create_engine("onnxruntime", "tiny-dense", precision="int8")  # int8 weights, cached too

Given a preset or a checkpoint directory rather than an export, the engine exports it into the
engine cache (`engine_cache`: $COSMOS_ROS_CACHE, default ~/.cache/cosmos_ros) under the model's
hash and reuses that export afterwards. Sessions run on CPUExecutionProvider, or on
CUDAExecutionProvider for device "cuda[:N]" (onnxruntime-gpu). Decoding uses IO binding: the KV
cache / Mamba states a step produces stay as onnxruntime values (on the GPU with CUDA) and are
bound as the next step's inputs without a copy through numpy; only the logits come to the host,
where the shared loop (`generation`) chooses tokens exactly as the torch backend does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cosmos_ros.engine.base import EngineUnavailableError
from cosmos_ros.engine.exported_runner import ExportedRunner
from cosmos_ros.engine.generation import DecodingEngine
from cosmos_ros.engine.manifest import MANIFEST_FILE, GraphSpec, Manifest


def providers_for(device: str) -> tuple[list, str, int]:
    """(onnxruntime providers, IO binding device type, device id) for 'cpu' or 'cuda[:N]'."""
    import onnxruntime as ort

    target = torch.device(device)
    if target.type == "cpu":
        return ["CPUExecutionProvider"], "cpu", 0
    if target.type != "cuda":
        raise ValueError(f"the onnxruntime engine runs on 'cpu' or 'cuda[:N]', not {device!r}")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise EngineUnavailableError(
            f"device {device!r}: this onnxruntime ({ort.__version__}) has no CUDAExecutionProvider "
            f"(available: {', '.join(ort.get_available_providers())}); pip install onnxruntime-gpu, "
            "or use device='cpu'"
        )
    index = target.index or 0
    return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"], "cuda", index


def open_session(path: Path, spec: GraphSpec, graph: str, providers: list, num_threads: int | None):
    """An InferenceSession whose input and output names are checked against the manifest."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if num_threads:
        options.intra_op_num_threads = num_threads
    # Spinning worker threads wait hot between ops; on a small shared CPU they starve torch and
    # other processes and halved decode speed in bench/engines.py.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=providers)
    spec.check_names(
        graph, [i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()], str(path)
    )
    return session


class OrtGraphs:
    """Runs the three sessions with IO binding; outputs stay OrtValues on the session's device."""

    def __init__(self, sessions: dict, device_type: str, device_id: int):
        self.sessions, self.device_type, self.device_id = sessions, device_type, device_id
        self.input_types = {graph: {i.name: i.type for i in s.get_inputs()} for graph, s in sessions.items()}
        # asked once: onnxruntime builds the NodeArg list anew on every get_outputs() call
        self.output_names = {graph: [o.name for o in s.get_outputs()] for graph, s in sessions.items()}

    def run(self, graph: str, feeds: dict) -> dict:
        import onnxruntime as ort

        session = self.sessions[graph]
        binding = session.io_binding()
        for name, value in feeds.items():
            if isinstance(value, ort.OrtValue):
                binding.bind_ortvalue_input(name, value)
            else:
                array = value.numpy() if isinstance(value, torch.Tensor) else value
                if self.input_types[graph][name] == "tensor(int64)":
                    array = array.astype(np.int64, copy=False)
                binding.bind_cpu_input(name, np.ascontiguousarray(array))
        names = self.output_names[graph]
        for name in names:
            # The logits go to the host for sampling; states stay where the next step reads them.
            device = "cpu" if name == "logits" else self.device_type
            binding.bind_output(name, device, self.device_id if device != "cpu" else 0)
        session.run_with_iobinding(binding)
        return dict(zip(names, binding.get_outputs()))

    @staticmethod
    def to_torch(value) -> torch.Tensor:
        return torch.from_numpy(value.numpy())


def resolve_export(
    model: str | Path, seed: int, cache_dir: Path | None, progress=None, precision: str | None = None
) -> Path:
    """An export directory as given, or the cached export of a preset / checkpoint (made on a miss);
    precision 'int8': the cached int8 form of that fp32 export (quantized on a miss). None: the
    given export as it is, fp32 for a preset or checkpoint."""
    from cosmos_ros.engine.onnx_quantize import PRECISIONS, ensure_int8_export

    if precision is not None and precision not in PRECISIONS:
        raise ValueError(
            f"the onnxruntime engine runs precision {' or '.join(PRECISIONS)}, not {precision!r}"
        )
    path = Path(model)
    if path.is_dir() and (path / MANIFEST_FILE).is_file():
        saved = Manifest.load(path).precision
        if precision in (None, saved):
            return path
        if saved != "fp32":
            raise ValueError(
                f"{path} is a {saved} export; for precision {precision!r} give the fp32 export it came from"
            )
    else:
        from cosmos_ros.engine.onnx_export import ensure_export

        path = ensure_export(model, seed=seed, root=cache_dir, progress=progress)
    return ensure_int8_export(path, root=cache_dir, progress=progress) if precision == "int8" else path


# A small model's 8-bit decode step is hundreds of small kernels over a quarter of fp32's bytes;
# with workers that sleep between kernels (no spinning, see open_session), waking a second one
# for each costs more than it gives: one thread decoded 236 tok/s, two 200, on the 2-core Xeon
# (bench/engines.py's model: 50 MB of decode graph), while fp32's bandwidth-bound step needs both
# cores (104 tok/s with two, 82 with one). A large model's step (7.6 GB for a 7B in 8 bits) needs
# every core to draw the memory bandwidth, so one thread only below SMALL_DECODE_BYTES (not
# measured between the two).
SMALL_DECODE_BYTES = 256 * 2**20


def graph_bytes(path: Path) -> int:
    """Bytes of a graph file and its external data (`<graph>.onnx.data` beside it)."""
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


class OnnxRuntimeEngine(DecodingEngine):
    """`model`: an export directory (`cosmos-ros export`), a preset name / YAML card or a
    checkpoint directory (exported into the cache on first use). device: 'cpu' or 'cuda[:N]'.
    seed: a preset's weights and the sampling generator. num_threads: onnxruntime intra-op
    threads per session (None: its default). cache_dir: overrides $COSMOS_ROS_CACHE.
    precision: 'fp32', or 'int8' for 8-bit weights (`onnx_quantize`: about a quarter of the bytes
    per decoded token); None runs an export directory as it was saved, a model in fp32.
    decode_threads: intra-op threads of the decode graph (None: one for a small model's 8-bit
    weights on a CPU, see SMALL_DECODE_BYTES; else num_threads)."""

    family: str

    def __init__(
        self,
        model: str | Path,
        device: str = "cpu",
        *,
        seed: int = 0,
        num_threads: int | None = None,
        cache_dir: str | Path | None = None,
        precision: str | None = None,
        progress=None,
        decode_threads: int | None = None,
    ):
        from transformers import AutoConfig

        from cosmos_ros.model.bundle import checkpoint_processor, read_generation_defaults
        from cosmos_ros.model.tokenizer import load_tokenizer

        providers, device_type, device_id = providers_for(device)
        root = Path(cache_dir) if cache_dir else None
        self.export_dir = resolve_export(model, seed, root, progress, precision)
        self.manifest = Manifest.load(self.export_dir)
        self.precision = self.manifest.precision
        self.family = self.manifest.family
        config = AutoConfig.from_pretrained(str(self.export_dir), local_files_only=True)
        self.tokenizer = load_tokenizer(self.export_dir, self.family)
        self.processor = checkpoint_processor(self.export_dir, config, self.tokenizer)
        if decode_threads is None:
            small = graph_bytes(self.manifest.graph_path(self.export_dir, "decode")) <= SMALL_DECODE_BYTES
            decode_threads = 1 if self.precision == "int8" and device_type == "cpu" and small else num_threads
        sessions = {
            graph: open_session(
                self.manifest.graph_path(self.export_dir, graph), spec, graph, providers,
                decode_threads if graph == "decode" else num_threads,
            )
            for graph, spec in self.manifest.graphs.items()
        }  # fmt: skip
        self.providers = sessions["decode"].get_providers()
        self.device = torch.device("cpu")  # where logits are sampled
        self.runner = ExportedRunner(self.manifest, config, OrtGraphs(sessions, device_type, device_id))
        self._setup_decoding(self.manifest.eos_token_id, seed, read_generation_defaults(self.export_dir))

    @property
    def model_id(self) -> str:
        return self.manifest.model_id

    def close(self) -> None:
        with self._lock:
            self.runner = None

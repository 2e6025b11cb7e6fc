"""The engine interface: the one call nodes make, whatever backend runs the model.

    engine = create_engine("torch", "tiny-dense")
    reasoning = engine.reason(clip, prompt, max_new_tokens=256, on_token=print)

Backends are imported only when asked for, so importing this module costs neither torch nor
onnxruntime nor tensorrt.
"""

from __future__ import annotations

import abc
import importlib
import importlib.util
import inspect
import logging
from collections.abc import Callable

from cosmos_ros.core.types import Clip, Prompt, Reasoning


class EngineUnavailableError(NotImplementedError):
    """The asked-for backend cannot run here: a package is missing or the backend is not built yet."""


class EngineBusyError(RuntimeError):
    """The engine is at capacity right now (a shared server's HTTP 429 / 503): ask again later.
    The reasoner answers the request BUSY, not ERROR."""


class Engine(abc.ABC):
    """Runs one model on clips. `reason` may be called from one worker thread at a time or several
    (implementations serialize calls); it blocks until generation ends."""

    @abc.abstractmethod
    def reason(
        self,
        clip: Clip,
        prompt: Prompt,
        *,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        on_token: Callable[[str], None] | None = None,
    ) -> Reasoning:
        """Generate the model's answer to `prompt` about `clip`.

        temperature 0 decodes greedily; above 0 samples (seeded per engine). None for either:
        the model's own default (a checkpoint's generation_config.json), else 256 tokens, greedy. `on_token` receives
        the generated text as it decodes, in deltas that are whole characters; the deltas
        concatenate to `Reasoning.text`. Backends may accept further keyword-only options (the
        torch engine: `top_p`, `seed`, `stop`); callers that want any backend pass only these.
        """

    @property
    @abc.abstractmethod
    def model_id(self) -> str:
        """Names the exact weights: `<name>@<short hash>`."""

    def close(self) -> None:
        """Release the model; the engine must not be used afterwards."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _require(kind: str, module: str, install: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise EngineUnavailableError(f"the {kind} engine needs the {module!r} package: {install}")


def create_engine(
    kind: str,
    model: str,
    device: str = "cpu",
    *,
    fallback: str | None = None,
    precision: str | None = None,
    **kw,
) -> Engine:
    """An engine of backend `kind` for `model`: a tiny preset name or YAML card ('tiny-dense',
    'tiny-hybrid'; random init, built in memory) or a checkpoint directory of either family
    (Qwen2.5-VL dense, InternVL + Nemotron-H hybrid); onnxruntime also takes an export directory
    (`cosmos-ros export`), tensorrt an export or engine directory (`cosmos-ros build-engine`).
    Extra keywords go to the backend's constructor (torch: dtype, seed, num_threads,
    use_mamba_kernels, strict; onnxruntime: seed, num_threads, cache_dir; tensorrt: seed,
    precision, cache_dir).

    precision: the weights' precision, one knob for every backend — torch 'fp32' | 'bf16' | 'fp16'
    (its dtype), onnxruntime 'fp32' | 'int8' (8-bit weights), tensorrt 'fp16' | 'bf16' | 'fp32';
    None: the backend's default. A plugin gets it as `precision=` when it is set.

    fallback: a backend kind to use instead when `kind` cannot run here (EngineUnavailableError,
    e.g. no TensorRT or no GPU) — only when asked; the fallback gets the keywords its constructor
    accepts and the reason is logged as a warning (a precision the fallback does not run is
    dropped, with a warning)."""
    try:
        return _create(kind, model, device, **_with_precision(kind, precision, kw))
    except EngineUnavailableError as exc:
        if not fallback or fallback == kind:
            raise
        fallback_device = "cpu" if str(device).startswith("cuda") and not _cuda_available() else device
        logging.getLogger(__name__).warning(
            "%s engine unavailable (%s); falling back to the %s engine on %s",
            kind,
            exc,
            fallback,
            fallback_device,
        )
        if precision is not None and precision not in PRECISIONS.get(fallback, (precision,)):
            logging.getLogger(__name__).warning(
                "the %s engine does not run precision %r; it runs its default", fallback, precision
            )
            precision = None
        return _create(
            fallback, model, fallback_device, **_with_precision(fallback, precision, _accepted(fallback, kw))
        )


PRECISIONS = {"torch": ("fp32", "bf16", "fp16"), "onnxruntime": ("fp32", "int8"),
              "tensorrt": ("fp16", "bf16", "fp32", "int8", "fp8")}  # fmt: skip


def _with_precision(kind: str, precision: str | None, kw: dict) -> dict:
    """The constructor keywords with `precision` as the backend names it (torch: dtype)."""
    if precision is None:
        return kw
    if kind in PRECISIONS and precision not in PRECISIONS[kind]:
        hint = "; int8 weights: engine onnxruntime" if precision == "int8" else ""
        raise ValueError(
            f"the {kind} engine runs precision {', '.join(PRECISIONS[kind])}, not {precision!r}{hint}"
        )
    return {**kw, "dtype" if kind == "torch" else "precision": precision}


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


# kind -> (module, class, packages it needs with how to install them): creation and fallback both
# read this one table. TensorRT's constructor names what it lacks itself (a GPU too, not only
# packages), so it lists none here.
BACKENDS = {
    "torch": ("cosmos_ros.engine.torch_engine", "TorchEngine", ()),
    "onnxruntime": (
        "cosmos_ros.engine.onnx_engine",
        "OnnxRuntimeEngine",
        (("onnxruntime", "pip install onnxruntime (or onnxruntime-gpu)"), ("onnx", "pip install onnx")),
    ),
    "tensorrt": ("cosmos_ros.engine.tensorrt_engine", "TensorRTEngine", ()),
    "openai": (
        "cosmos_ros.engine.openai_engine",
        "OpenAIEngine",
        (("openai", "pip install 'cosmos_ros[remote]' (or pip install openai)"),),
    ),
}
ENGINE_KINDS = tuple(BACKENDS)


def _backend_class(kind: str) -> type[Engine]:
    module, name, packages = BACKENDS[kind]
    for package, install in packages:
        _require(kind, package, install)
    return getattr(importlib.import_module(module), name)


def _accepted(kind: str, kw: dict) -> dict:
    """The keywords the fallback backend's constructor takes."""
    if kind not in BACKENDS:
        return kw
    parameters = inspect.signature(_backend_class(kind)).parameters
    return {k: v for k, v in kw.items() if k in parameters}


def _create(kind: str, model: str, device: str, **kw) -> Engine:
    if kind in BACKENDS:
        return _backend_class(kind)(model, device=device, **kw)
    if ":" in kind:
        return _plugin_engine(kind, model, device, **kw)
    raise ValueError(
        f"unknown engine kind {kind!r}; expected one of {', '.join(ENGINE_KINDS)} or 'module:factory'"
    )


def _plugin_engine(kind: str, model: str, device: str, **kw) -> Engine:
    """'package.module:factory' — a user's own Engine: factory(model, device=..., **kw) -> Engine."""
    module_name, _, attribute = kind.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise EngineUnavailableError(
            f"engine {kind!r}: cannot import {attribute} from {module_name}: {exc}"
        ) from exc
    engine = factory(model, device=device, **kw)
    if not isinstance(engine, Engine):
        raise TypeError(f"engine factory {kind!r} returned {type(engine).__name__}, not a cosmos_ros Engine")
    return engine

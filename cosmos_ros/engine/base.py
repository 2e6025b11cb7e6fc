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
from collections.abc import Callable

from cosmos_ros.core.types import Clip, Prompt, Reasoning

ENGINE_KINDS = ("torch", "onnxruntime", "tensorrt")


class EngineUnavailableError(NotImplementedError):
    """The asked-for backend cannot run here: a package is missing or the backend is not built yet."""


class Engine(abc.ABC):
    """Runs one model on clips. `reason` may be called from one worker thread at a time or several
    (implementations serialize calls); it blocks until generation ends."""

    @abc.abstractmethod
    def reason(
        self,
        clip: Clip,
        prompt: Prompt,
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        on_token: Callable[[str], None] | None = None,
    ) -> Reasoning:
        """Generate the model's answer to `prompt` about `clip`.

        temperature 0 decodes greedily; above 0 samples (seeded per engine). `on_token` receives
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


def create_engine(kind: str, model: str, device: str = "cpu", **kw) -> Engine:
    """An engine of backend `kind` for `model`: a tiny preset name or YAML card ('tiny-dense',
    'tiny-hybrid'; random init, built in memory) or a checkpoint directory of either family
    (Qwen2.5-VL dense, InternVL + Nemotron-H hybrid). Extra keywords go to the backend's
    constructor (torch: dtype, seed, num_threads, use_mamba_kernels, strict)."""
    if kind == "torch":
        from cosmos_ros.engine.torch_engine import TorchEngine

        return TorchEngine(model, device=device, **kw)
    if kind == "onnxruntime":
        _require(kind, "onnxruntime", "pip install onnxruntime (or onnxruntime-gpu)")
        raise EngineUnavailableError("the onnxruntime engine is not implemented yet; use kind='torch'")
    if ":" in kind:
        return _plugin_engine(kind, model, device, **kw)
    if kind == "tensorrt":
        _require(kind, "tensorrt", "pip install tensorrt-cu12 on a machine with an NVIDIA GPU")
        raise EngineUnavailableError("the tensorrt engine is not implemented yet; use kind='torch'")
    raise ValueError(
        f"unknown engine kind {kind!r}; expected one of {', '.join(ENGINE_KINDS)} or 'module:factory'"
    )


def _plugin_engine(kind: str, model: str, device: str, **kw) -> Engine:
    """'package.module:factory' — a user's own Engine: factory(model, device=..., **kw) -> Engine."""
    module_name, _, attribute = kind.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise EngineUnavailableError(f"engine {kind!r}: cannot import {attribute} from {module_name}: {exc}") from exc
    engine = factory(model, device=device, **kw)
    if not isinstance(engine, Engine):
        raise TypeError(f"engine factory {kind!r} returned {type(engine).__name__}, not a cosmos_ros Engine")
    return engine

"""The reference backend: transformers' models in PyTorch, decoded by an explicit loop.

Both families — dense (Qwen2.5-VL, Cosmos-Reason1-7B) and hybrid (InternVL + Nemotron-H,
Cosmos-Reason1-56B) — run the same loop (`generation.DecodingEngine`, shared with the
onnxruntime and TensorRT backends); `runners` holds what differs. The loop (rather than
`model.generate`) makes each step's choice and probability plain to see: one prefill over video +
prompt for a left-padded batch of clips, then one token per row per forward with the KV / SSM
cache. Rows stop on their own (stop token or stop string); the batch ends when all have.

    engine = TorchEngine("tiny-hybrid")
    engine.reason(clip, prompt, max_new_tokens=256, stop=("</answer>",), on_token=print)
    engine.reason_batch([clip_a, clip_b], [prompt, prompt], max_new_tokens=64)
    engine.score_yes_no(clip, Prompt("Did the robot drop the cube? Answer yes or no."))
"""

from __future__ import annotations

from pathlib import Path

import torch

from cosmos_ros.core.types import Clip, Prompt
from cosmos_ros.engine.generation import STOP_TOKENS, DecodingEngine, Generation
from cosmos_ros.engine.runners import Runner
from cosmos_ros.model.bundle import ModelBundle, load_bundle
from cosmos_ros.model.families import family_of

__all__ = ["STOP_TOKENS", "Generation", "TorchEngine"]


class TorchEngine(DecodingEngine):
    """`model`: a tiny preset name or YAML card ('tiny-dense', 'tiny-hybrid'; random init from
    `seed`) or a checkpoint directory of either family.

    dtype: 'fp32' / 'bf16' / 'fp16' (None: bf16 on CUDA, fp32 on CPU). seed: weights of a preset
    and the sampling generator (temperature > 0) when a call passes no seed of its own.
    num_threads: torch's intra-op threads (process-wide; left alone when None).
    use_mamba_kernels: hybrid only — None uses mamba-ssm / causal-conv1d when installed and on
    CUDA, True insists (error naming what is missing), False forces PyTorch.
    strict: missing / unexpected checkpoint tensors are errors.
    """

    def __init__(
        self,
        model: str | Path,
        device: str = "cpu",
        *,
        dtype: torch.dtype | str | None = None,
        seed: int = 0,
        num_threads: int | None = None,
        use_mamba_kernels: bool | None = None,
        strict: bool = True,
    ):
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        bundle = load_bundle(model, device=device, dtype=dtype, seed=seed, strict=strict)
        self._setup(bundle, torch.device(device), seed, use_mamba_kernels)

    @classmethod
    def from_bundle(
        cls, bundle: ModelBundle, *, seed: int = 0, use_mamba_kernels: bool | None = None
    ) -> TorchEngine:
        """An engine around an already built model (e.g. a random-init full-size preset for a benchmark)."""
        engine = cls.__new__(cls)
        engine._setup(bundle, next(bundle.model.parameters()).device, seed, use_mamba_kernels)
        return engine

    def _setup(
        self, bundle: ModelBundle, device: torch.device, seed: int, use_mamba_kernels: bool | None
    ) -> None:
        self.device = device
        self.dtype = next(bundle.model.parameters()).dtype
        self.family = bundle.family
        self._model = bundle.model.eval()
        self._model_id = bundle.model_id
        self.tokenizer = bundle.tokenizer
        self.processor = bundle.processor
        runner: Runner = family_of(bundle.family).load("runner")(
            self._model, device, self.dtype, use_mamba_kernels
        )
        self.runner, self.use_mamba_kernels = runner, runner.use_mamba_kernels
        self._setup_decoding(self._model.config.get_text_config().eos_token_id, seed, bundle.generation)

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def model(self):
        if self._model is None:
            raise RuntimeError("engine is closed")
        return self._model

    def close(self) -> None:
        with self._lock:
            self._model = self.runner = None

    @torch.inference_mode()
    def prompt_logits(self, clip: Clip, prompt: Prompt) -> torch.Tensor:
        """Next-token logits at every prompt position, (L, V) float32: the backends' parity reference."""
        return self.inputs_logits(self.prepare(clip, prompt))

    @torch.inference_mode()
    def inputs_logits(self, inputs) -> torch.Tensor:
        """Next-token logits at every position of prepared inputs, (L, V) float32, in one forward
        without a cache: the reference that cached decoding must reproduce."""
        with self._lock:
            logits, _ = self._prefill([inputs], cache=None, logits_to_keep=0)
        return logits[0].float()

"""The reference backend: transformers' Qwen2.5-VL model in PyTorch, decoded by an explicit loop.

The loop (rather than `model.generate`) makes each step's choice and probability plain to see:
one prefill over video + prompt, then one token per forward with the KV cache. Positions are
computed here — 3-D mRoPE for the prompt from `get_rope_index`, then `cache length + rope delta`
for every new token — so nothing depends on state the model keeps between calls.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from transformers import DynamicCache

from cosmos_ros.core.types import Clip, Prompt, Reasoning
from cosmos_ros.engine.base import Engine
from cosmos_ros.engine.decoding import IncrementalDecoder, answer_confidence
from cosmos_ros.model.checkpoint import CheckpointError, build_model, checkpoint_id, load_model, preset_id
from cosmos_ros.model.config import PRESETS, get_preset
from cosmos_ros.model.processor import ReasonProcessor, VideoInputs, VideoProcessor
from cosmos_ros.model.tokenizer import build_tiny_tokenizer, load_tokenizer

STOP_TOKENS = ("<|im_end|>", "<|endoftext|>")


@dataclass
class Generation:
    """Raw decode result: the tokens chosen (stop token excluded) and their probabilities."""

    token_ids: list[int]
    token_probs: list[
        float
    ]  # softmax at temperature 1 of the chosen token, whatever the sampling temperature
    finish_reason: str  # "stop" or "length"
    num_generated_tokens: int  # forwards that produced a token, the stop token included


def _resolve_dtype(dtype: torch.dtype | str | None, device: torch.device) -> torch.dtype:
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, dtype) if isinstance(dtype, str) else dtype


class TorchEngine(Engine):
    """`model`: a preset with an offline tokenizer ('tiny-dense'; random init from `seed`) or a
    checkpoint directory. `seed` also seeds sampling (temperature > 0). `num_threads` sets
    torch's intra-op threads (process-wide; left alone when None)."""

    def __init__(
        self,
        model: str | Path,
        device: str = "cpu",
        *,
        dtype: torch.dtype | str | None = None,
        seed: int = 0,
        num_threads: int | None = None,
    ):
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        self.device = torch.device(device)
        self.dtype = _resolve_dtype(dtype, self.device)
        if str(model) in PRESETS:
            preset = get_preset(str(model))
            if not preset.offline_tokenizer:
                raise ValueError(
                    f"preset {preset.name!r} has no offline tokenizer and is too large to random-init for use; "
                    "pass the directory of a downloaded checkpoint (e.g. nvidia/Cosmos-Reason1-7B) instead"
                )
            hf_model = build_model(preset, seed)
            tokenizer = build_tiny_tokenizer()
            video = VideoProcessor.from_preset(preset)
            self._model_id = preset_id(preset, seed)
        else:
            if not Path(model).exists():
                raise CheckpointError(
                    f"{str(model)!r} is neither a model preset ({', '.join(PRESETS)}) "
                    "nor an existing checkpoint directory"
                )
            hf_model = load_model(model, self.dtype, self.device)
            tokenizer = load_tokenizer(model)
            vision = hf_model.config.vision_config
            # Pixel budget and fps: the checkpoint's video_preprocessor_config.json, else the 7B defaults.
            defaults = replace(
                VideoProcessor.from_preset(get_preset("cosmos-reason1-7b")),
                patch_size=vision.patch_size,
                temporal_patch_size=vision.temporal_patch_size,
                merge_size=vision.spatial_merge_size,
            )
            video = VideoProcessor.from_pretrained(model, base=defaults)
            self._model_id = checkpoint_id(model)
        self._model = hf_model.to(self.device, self.dtype).eval()
        self.tokenizer = tokenizer
        self.processor = ReasonProcessor(tokenizer, video, self._model.config.video_token_id)
        eos = self._model.config.text_config.eos_token_id
        stop = {tokenizer.convert_tokens_to_ids(t) for t in STOP_TOKENS} | {tokenizer.eos_token_id}
        stop |= set(eos) if isinstance(eos, list) else {eos}
        self.stop_token_ids = frozenset(t for t in stop if t is not None and t != tokenizer.unk_token_id)
        self._generator = torch.Generator(self.device).manual_seed(seed)
        self._lock = threading.Lock()

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
            self._model = None

    def prepare(self, clip: Clip, prompt: Prompt) -> VideoInputs:
        return self.processor(clip, prompt)

    def _prefill(self, inputs: VideoInputs, cache: DynamicCache | None, logits_to_keep: int = 1):
        kwargs = inputs.model_kwargs(self.device, self.dtype)
        position_ids, rope_deltas = self.model.model.get_rope_index(
            kwargs["input_ids"],
            kwargs["mm_token_type_ids"],
            video_grid_thw=kwargs["video_grid_thw"],
            second_per_grid_ts=kwargs["second_per_grid_ts"],
        )
        out = self.model(
            **kwargs,
            position_ids=position_ids,
            cache=cache,
            use_cache=cache is not None,
            logits_to_keep=logits_to_keep,
        )
        return out.logits[0], rope_deltas  # logits: (logits_to_keep or L, V)

    @torch.inference_mode()
    def prompt_logits(self, clip: Clip, prompt: Prompt) -> torch.Tensor:
        """Next-token logits at every prompt position, (L, V) float32: the backends' parity reference."""
        with self._lock:
            logits, _ = self._prefill(self.prepare(clip, prompt), cache=None, logits_to_keep=0)
        return logits.float()

    def _choose(self, logits: torch.Tensor, temperature: float) -> tuple[int, float]:
        probs = torch.softmax(logits.float(), dim=-1)
        if temperature == 0.0:
            token = int(torch.argmax(logits))
        else:
            tempered = torch.softmax(logits.float() / temperature, dim=-1)
            token = int(torch.multinomial(tempered, 1, generator=self._generator))
        return token, float(probs[token])

    @torch.inference_mode()
    def generate(
        self,
        inputs: VideoInputs,
        *,
        max_new_tokens: int,
        temperature: float = 0.0,
        on_token_id: Callable[[int], None] | None = None,
    ) -> Generation:
        """Decode up to `max_new_tokens` tokens (the stop token counts as one). Takes no lock:
        threads share an engine through `reason`."""
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
        if not temperature >= 0.0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        ids: list[int] = []
        probs: list[float] = []
        if max_new_tokens == 0:
            return Generation(ids, probs, "length", 0)
        cache = DynamicCache(config=self.model.config)
        logits, rope_deltas = self._prefill(inputs, cache)
        seq_len = inputs.num_prompt_tokens
        for step in range(max_new_tokens):
            token, prob = self._choose(logits[-1], temperature)
            if token in self.stop_token_ids:
                return Generation(ids, probs, "stop", step + 1)
            ids.append(token)
            probs.append(prob)
            if on_token_id is not None:
                on_token_id(token)
            if step + 1 == max_new_tokens:
                break
            position_ids = (seq_len + rope_deltas).view(1, 1, 1).expand(3, 1, 1)  # (3 mRoPE axes, B, 1)
            out = self.model(
                input_ids=torch.tensor([[token]], device=self.device),
                position_ids=position_ids,
                cache=cache,
                use_cache=True,
            )
            logits = out.logits[0]
            seq_len += 1
        return Generation(ids, probs, "length", max_new_tokens)

    def reason(
        self,
        clip: Clip,
        prompt: Prompt,
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        on_token: Callable[[str], None] | None = None,
    ) -> Reasoning:
        with self._lock:
            start = time.perf_counter()
            inputs = self.prepare(clip, prompt)
            decoder = IncrementalDecoder(self.tokenizer)

            def stream(token_id: int) -> None:
                delta = decoder.push(token_id)
                if delta and on_token is not None:
                    on_token(delta)

            gen = self.generate(
                inputs, max_new_tokens=max_new_tokens, temperature=temperature, on_token_id=stream
            )
            tail = decoder.flush()
            if tail and on_token is not None:
                on_token(tail)
            return Reasoning(
                text=decoder.text,
                confidence=answer_confidence(decoder.text, decoder.spans, gen.token_probs),
                num_prompt_tokens=inputs.num_prompt_tokens,
                num_generated_tokens=gen.num_generated_tokens,
                latency_s=time.perf_counter() - start,
                model_id=self.model_id,
                finish_reason=gen.finish_reason,
                token_probs=gen.token_probs,
            )

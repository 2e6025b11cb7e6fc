"""The reference backend: transformers' models in PyTorch, decoded by an explicit loop.

Both families — dense (Qwen2.5-VL, Cosmos-Reason1-7B) and hybrid (InternVL + Nemotron-H,
Cosmos-Reason1-56B) — run the same loop; `runners` holds what differs. The loop (rather than
`model.generate`) makes each step's choice and probability plain to see: one prefill over video +
prompt for a left-padded batch of clips, then one token per row per forward with the KV / SSM
cache. Rows stop on their own (stop token or stop string); the batch ends when all have.

    engine = TorchEngine("tiny-hybrid")
    engine.reason(clip, prompt, max_new_tokens=256, stop=("</answer>",), on_token=print)
    engine.reason_batch([clip_a, clip_b], [prompt, prompt], max_new_tokens=64)
    engine.score_yes_no(clip, Prompt("Did the robot drop the cube? Answer yes or no."))
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import DynamicCache

from cosmos_ros.core.types import Clip, Prompt, Reasoning
from cosmos_ros.engine.base import Engine
from cosmos_ros.engine.decoding import TextStream, answer_confidence
from cosmos_ros.engine.runners import DenseRunner, HybridRunner
from cosmos_ros.engine.sampling import check_sampling, choose_tokens
from cosmos_ros.model.bundle import ModelBundle, load_bundle
from cosmos_ros.model.mamba_kernels import resolve_use_mamba_kernels

STOP_TOKENS = ("<|im_end|>", "<|endoftext|>")


@dataclass
class Generation:
    """Raw decode result: the tokens chosen (stop token excluded) and their probabilities."""

    token_ids: list[int]
    token_probs: list[float]  # softmax at temperature 1 of the chosen token, whatever the sampling
    finish_reason: str  # "stop" or "length"
    num_generated_tokens: int  # forwards that produced a token, the stop token included


class TorchEngine(Engine):
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
        if bundle.family == "hybrid":
            self.use_mamba_kernels = resolve_use_mamba_kernels(use_mamba_kernels, device)
            self.runner = HybridRunner(self._model, device, self.dtype, self.use_mamba_kernels)
        else:
            if use_mamba_kernels:
                raise ValueError("use_mamba_kernels=True: the dense family has no Mamba layers")
            self.use_mamba_kernels = False
            self.runner = DenseRunner(self._model, device, self.dtype)
        tokenizer = self.tokenizer
        eos = self._model.config.get_text_config().eos_token_id
        stop = {tokenizer.convert_tokens_to_ids(t) for t in STOP_TOKENS} | {tokenizer.eos_token_id}
        stop |= set(eos) if isinstance(eos, list) else {eos}
        self.stop_token_ids = frozenset(t for t in stop if t is not None and t != tokenizer.unk_token_id)
        pad = tokenizer.pad_token_id
        self.pad_token_id = pad if pad is not None else min(self.stop_token_ids)
        self._generator = torch.Generator(device).manual_seed(seed)
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
            self._model = self.runner = None

    def prepare(self, clip: Clip, prompt: Prompt, assistant_prefix: str = ""):
        """Model inputs for one clip (`VideoInputs` dense, `HybridInputs` hybrid)."""
        return self.processor(clip, prompt, assistant_prefix)

    def _prefill(self, items: list, cache: DynamicCache | None, logits_to_keep: int):
        runner = self._open_runner()
        return runner.prefill(runner.collate(items, self.pad_token_id), cache, logits_to_keep)

    def _open_runner(self) -> DenseRunner | HybridRunner:
        if self.runner is None:
            raise RuntimeError("engine is closed")
        return self.runner

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

    def _first_token(self, word: str) -> int:
        ids = self.tokenizer.encode(word, add_special_tokens=False)
        if not ids:
            raise ValueError(f"{word!r} encodes to no tokens")
        return ids[0]

    @torch.inference_mode()
    def score_yes_no(
        self, clip: Clip, prompt: Prompt, *, assistant_prefix: str = "", yes: str = "Yes", no: str = "No"
    ) -> float:
        """Probability of `yes` against `no` as the model's next token once the assistant turn has
        opened (and begun with `assistant_prefix`, e.g. "<answer>\\n" for a model trained to
        reason first): the two-way softmax of the logits of each word's first token. One forward,
        no decoding — the Cosmos-Reason1 reward-model pattern, cheap enough for per-second checks."""
        yes_id, no_id = self._first_token(yes), self._first_token(no)
        if yes_id == no_id:
            raise ValueError(
                f"{yes!r} and {no!r} start with the same token {yes_id}; pick words that differ at once"
            )
        with self._lock:
            logits, _ = self._prefill(
                [self.prepare(clip, prompt, assistant_prefix)], cache=None, logits_to_keep=1
            )
        pair = logits[0, -1, [yes_id, no_id]].float()
        return float(torch.softmax(pair, dim=0)[0])

    @torch.inference_mode()
    def generate(
        self,
        inputs,
        *,
        max_new_tokens: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
        generator: torch.Generator | None = None,
        on_token_id: Callable[[int], bool | None] | None = None,
        ignore_stop_tokens: bool = False,
    ) -> Generation:
        """Decode one prepared clip; see `generate_batch`."""
        callback = None if on_token_id is None else (lambda _row, token_id: on_token_id(token_id))
        return self.generate_batch(
            [inputs],
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            generator=generator,
            on_token_id=callback,
            ignore_stop_tokens=ignore_stop_tokens,
        )[0]

    @torch.inference_mode()
    def generate_batch(
        self,
        items: Sequence,
        *,
        max_new_tokens: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
        generator: torch.Generator | None = None,
        on_token_id: Callable[[int, int], bool | None] | None = None,
        ignore_stop_tokens: bool = False,
    ) -> list[Generation]:
        """Decode up to `max_new_tokens` per row (a stop token counts as one). `on_token_id(row,
        token_id)` sees every kept token and ends that row by returning True (a stop string).
        `ignore_stop_tokens` decodes exactly `max_new_tokens` (benchmarks). Takes no lock: threads
        share an engine through `reason` / `reason_batch`."""
        check_sampling(max_new_tokens, temperature, top_p)
        runner = self._open_runner()
        results = [Generation([], [], "length", 0) for _ in items]
        if max_new_tokens == 0 or not items:
            return results
        generator = generator or self._generator
        cache = DynamicCache(config=self.model.config)
        batch = runner.collate(list(items), self.pad_token_id)
        attention_mask = batch["attention_mask"]
        logits, state = runner.prefill(batch, cache, logits_to_keep=1)
        logits = logits[:, -1]  # (B, V)
        active = [True] * len(items)
        for step in range(max_new_tokens):
            tokens, probs = choose_tokens(logits, temperature, top_p, generator)
            for row, (token, prob) in enumerate(zip(tokens.tolist(), probs.tolist())):
                if not active[row]:
                    continue
                result = results[row]
                result.num_generated_tokens = step + 1
                if token in self.stop_token_ids and not ignore_stop_tokens:
                    result.finish_reason, active[row] = "stop", False
                    continue
                result.token_ids.append(token)
                result.token_probs.append(prob)
                if on_token_id is not None and on_token_id(row, token):
                    result.finish_reason, active[row] = "stop", False
            if not any(active) or step + 1 == max_new_tokens:
                break
            # Finished rows keep decoding their last choice; their outputs are ignored.
            attention_mask = torch.cat([attention_mask, attention_mask.new_ones(len(items), 1)], dim=1)
            logits = runner.decode(tokens, attention_mask, cache, state)
        return results

    def reason(
        self,
        clip: Clip,
        prompt: Prompt,
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        on_token: Callable[[str], None] | None = None,
        top_p: float = 1.0,
        seed: int | None = None,
        stop: Sequence[str] = (),
    ) -> Reasoning:
        """See `Engine.reason`. top_p: nucleus sampling when temperature > 0. seed: this call's
        sampling seed (None: the engine's generator, seeded at construction). stop: strings that
        end the text, kept in it (e.g. "</answer>"); finish_reason is then "stop"."""
        callback = None if on_token is None else (lambda _row, delta: on_token(delta))
        return self.reason_batch(
            [clip],
            [prompt],
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            on_token=callback,
            top_p=top_p,
            seed=seed,
            stop=stop,
        )[0]

    def reason_batch(
        self,
        clips: Sequence[Clip],
        prompts: Sequence[Prompt],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        on_token: Callable[[int, str], None] | None = None,
        top_p: float = 1.0,
        seed: int | None = None,
        stop: Sequence[str] = (),
    ) -> list[Reasoning]:
        """`reason` for several clips in one left-padded batch; greedy results equal one-by-one
        calls. `on_token(row, delta)` streams each row's text; every result carries the batch's latency."""
        if len(clips) != len(prompts) or not clips:
            raise ValueError(
                f"need one prompt per clip and at least one clip, got {len(clips)} clips, {len(prompts)} prompts"
            )
        check_sampling(max_new_tokens, temperature, top_p)
        with self._lock:
            start = time.perf_counter()
            items = [self.prepare(c, p) for c, p in zip(clips, prompts)]
            streams = [TextStream(self.tokenizer, stop) for _ in items]

            def emit(row: int, delta: str) -> None:
                if delta and on_token is not None:
                    on_token(row, delta)

            def push(row: int, token_id: int) -> bool:
                emit(row, streams[row].push(token_id))
                return streams[row].stopped

            generator = None if seed is None else torch.Generator(self.device).manual_seed(seed)
            generations = self.generate_batch(
                items,
                max_new_tokens=max_new_tokens,
                temperature=temperature,
                top_p=top_p,
                generator=generator,
                on_token_id=push,
            )
            for row, stream in enumerate(streams):
                emit(row, stream.flush())
            latency = time.perf_counter() - start
            return [
                Reasoning(
                    text=stream.text,
                    confidence=answer_confidence(stream.text, stream.spans, gen.token_probs),
                    num_prompt_tokens=inputs.num_prompt_tokens,
                    num_generated_tokens=gen.num_generated_tokens,
                    latency_s=latency,
                    model_id=self.model_id,
                    finish_reason=gen.finish_reason,
                    token_probs=gen.token_probs,
                )
                for stream, gen, inputs in zip(streams, generations, items)
            ]

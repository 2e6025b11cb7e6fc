"""The decode loop every backend shares: stop tokens, greedy / sampled choice, streaming, confidence.

A backend supplies a runner with four calls — `collate(items, pad_token_id)`, `new_cache()`,
`prefill(batch, cache, logits_to_keep) -> (logits (B, keep, V), state)` and `decode(tokens (B,),
attention_mask (B, L + steps), cache, state) -> logits (B, V)` — plus `prepare(clip, prompt)`; the
loop below (one prefill for a left-padded batch, then one token per row per step, rows stopping on
their own) is then the same for torch, onnxruntime and TensorRT, so greedy results and streamed
text agree by construction. Logits are torch tensors on the host or the backend's device.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from cosmos_ros.core.types import Clip, Prompt, Reasoning
from cosmos_ros.engine.base import Engine
from cosmos_ros.engine.decoding import TextStream, answer_confidence
from cosmos_ros.engine.sampling import check_sampling, choose_tokens

STOP_TOKENS = ("<|im_end|>", "<|endoftext|>")


@dataclass
class Generation:
    """Raw decode result: the tokens chosen (stop token excluded) and their probabilities."""

    token_ids: list[int]
    token_probs: list[float]  # softmax at temperature 1 of the chosen token, whatever the sampling
    finish_reason: str  # "stop" or "length"
    num_generated_tokens: int  # forwards that produced a token, the stop token included
    prefill_s: float = 0.0  # the batch's collate + prefill (vision and prompt)
    decode_s: float = 0.0  # the batch's decode steps after it


def stop_token_ids(tokenizer, *eos_token_ids: int | list[int] | None) -> frozenset[int]:
    """The chat stop tokens the tokenizer knows, its EOS and each given EOS: an id, a list of
    ids or None, as config.json and generation_config.json write `eos_token_id`."""
    stop = {tokenizer.convert_tokens_to_ids(t) for t in STOP_TOKENS} | {tokenizer.eos_token_id}
    for eos in eos_token_ids:
        stop |= set(eos) if isinstance(eos, (list, tuple)) else {eos}
    return frozenset(t for t in stop if t is not None and t != tokenizer.unk_token_id)


FALLBACK_GENERATION = {"max_new_tokens": 256, "temperature": 0.0, "top_p": 1.0}


class DecodingEngine(Engine):
    """An `Engine` whose subclass sets `tokenizer`, `processor`, `runner`, `device` (where the
    sampling generator lives) and calls `_setup_decoding(eos_token_id, seed, generation)`.

    `generation`: the checkpoint's generation defaults (`bundle.read_generation_defaults`):
    what `reason` uses for a max_new_tokens / temperature / top_p the caller leaves at None
    (else 256 tokens, greedy); its eos_token_id ids stop decoding too."""

    tokenizer: object
    processor: object
    runner: object
    device: torch.device

    def _setup_decoding(
        self, eos_token_id: int | list[int] | None, seed: int, generation: dict | None = None
    ) -> None:
        generation = dict(generation or {})
        extra_eos = generation.pop("eos_token_id", None)
        self.generation_defaults = {**FALLBACK_GENERATION, **generation}
        self.stop_token_ids = stop_token_ids(self.tokenizer, eos_token_id, extra_eos)
        pad = self.tokenizer.pad_token_id
        self.pad_token_id = pad if pad is not None else min(self.stop_token_ids)
        self._generator = torch.Generator(self.device).manual_seed(seed)
        self._lock = threading.Lock()

    @property
    def answer_format(self) -> str:
        """Where this model writes its answer (the processor's family convention; see
        `core.answers`): "tags" (Cosmos-Reason1) or "after_think" (Cosmos-Reason2)."""
        return self.processor.answer_format

    def prepare(self, clip: Clip, prompt: Prompt, assistant_prefix: str = ""):
        """Model inputs for one clip (`VideoInputs` dense and qwen3vl, `HybridInputs` hybrid);
        the processor words the prompt the way its family was trained to be asked."""
        return self.processor(clip, prompt, assistant_prefix)

    def _open_runner(self):
        if self.runner is None:
            raise RuntimeError("engine is closed")
        return self.runner

    def _prefill(self, items: list, cache, logits_to_keep: int):
        runner = self._open_runner()
        return runner.prefill(runner.collate(items, self.pad_token_id), cache, logits_to_keep)

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
        start = time.perf_counter()
        cache = runner.new_cache()
        batch = runner.collate(list(items), self.pad_token_id)
        attention_mask = batch["attention_mask"]
        logits, state = runner.prefill(batch, cache, logits_to_keep=1)
        logits = logits[:, -1]  # (B, V)
        prefilled = time.perf_counter()
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
        end = time.perf_counter()
        for result in results:
            result.prefill_s, result.decode_s = prefilled - start, end - prefilled
        return results

    def reason(
        self,
        clip: Clip,
        prompt: Prompt,
        *,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        on_token: Callable[[str], None] | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        stop: Sequence[str] = (),
    ) -> Reasoning:
        """See `Engine.reason`. top_p: nucleus sampling when temperature > 0. None for any of
        max_new_tokens, temperature, top_p: the checkpoint's generation_config.json, else 256,
        greedy, 1.0. seed: this call's sampling seed (None: the engine's generator, seeded at
        construction). stop: strings that end the text, kept in it (e.g. "</answer>");
        finish_reason is then "stop"."""
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
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        on_token: Callable[[int, str], None] | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        stop: Sequence[str] = (),
    ) -> list[Reasoning]:
        """`reason` for several clips in one left-padded batch; greedy results equal one-by-one
        calls. `on_token(row, delta)` streams each row's text; every result carries the batch's latency."""
        if len(clips) != len(prompts) or not clips:
            raise ValueError(
                f"need one prompt per clip and at least one clip, got {len(clips)} clips, {len(prompts)} prompts"
            )
        defaults = self.generation_defaults
        max_new_tokens = defaults["max_new_tokens"] if max_new_tokens is None else max_new_tokens
        temperature = defaults["temperature"] if temperature is None else temperature
        top_p = defaults["top_p"] if top_p is None else top_p
        check_sampling(max_new_tokens, temperature, top_p)
        with self._lock:
            start = time.perf_counter()
            items = [self.prepare(c, p) for c, p in zip(clips, prompts)]
            preprocess_s = time.perf_counter() - start
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
            answer_format = self.answer_format
            return [
                Reasoning(
                    text=stream.text,
                    confidence=answer_confidence(stream.text, stream.spans, gen.token_probs, answer_format),
                    num_prompt_tokens=inputs.num_prompt_tokens,
                    num_generated_tokens=gen.num_generated_tokens,
                    latency_s=latency,
                    model_id=self.model_id,
                    finish_reason=gen.finish_reason,
                    token_probs=gen.token_probs,
                    stages={"preprocess": preprocess_s, "prefill": gen.prefill_s, "decode": gen.decode_s},
                    answer_format=answer_format,
                )
                for stream, gen, inputs in zip(streams, generations, items)
            ]

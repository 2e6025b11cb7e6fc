"""Sampling completions and scoring their tokens, for GRPO and evaluation (dense / Qwen2.5-VL family).

`sample` runs one prefill over a left-padded prompt batch and then one token per step with the KV
cache — the same position rule as the serving engine (3-D mRoPE from the model's own
`get_rope_index`, then `valid length + rope delta` per new token), so what GRPO optimises and what
the engine serves agree. `completion_logprobs` scores prompt + completion in one forward with the
completion right-padded after the left-padded prompt.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import DynamicCache

from cosmos_ros.model.positions import rope_index


@dataclass
class Completions:
    tokens: torch.Tensor  # (B, T) long, pad after the stop token
    mask: torch.Tensor  # (B, T) float, 1 on generated tokens (stop token included)
    texts: list[str]  # decoded, without the stop token


@torch.no_grad()
def sample(model, batch: dict, tokenizer, *, max_new_tokens: int, temperature: float,
           generator: torch.Generator | None = None) -> Completions:  # fmt: skip
    """Generate from a left-padded prompt batch; temperature 0 is greedy. Stops at EOS (<|im_end|>)."""
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id
    position_ids, rope_deltas = rope_index(model, batch)
    cache = DynamicCache(config=model.config)
    prompt = {k: batch[k] for k in ("input_ids", "attention_mask", "mm_token_type_ids",
                                    "pixel_values_videos", "video_grid_thw", "second_per_grid_ts") if k in batch}  # fmt: skip
    logits = model(**prompt, position_ids=position_ids, cache=cache, use_cache=True, logits_to_keep=1).logits[
        :, -1
    ]
    next_position = batch["attention_mask"].sum(dim=1) + rope_deltas.view(-1)  # (B,)
    attention = batch["attention_mask"]
    rows = logits.shape[0]
    done = torch.zeros(rows, dtype=torch.bool, device=logits.device)
    out = []
    for _ in range(max_new_tokens):
        if temperature > 0:
            probs = torch.softmax(logits.float() / temperature, dim=-1)
            token = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        else:
            token = logits.argmax(dim=-1)
        token = torch.where(done, torch.full_like(token, pad), token)
        out.append(token)
        done |= token == eos
        if bool(done.all()):
            break
        attention = torch.cat([attention, torch.ones_like(attention[:, :1])], dim=1)
        logits = model(
            input_ids=token[:, None],
            attention_mask=attention,
            position_ids=next_position.view(1, -1, 1).expand(3, -1, 1),
            cache=cache,
            use_cache=True,
        ).logits[:, -1]
        next_position = next_position + 1
    tokens = torch.stack(out, dim=1)  # (B, T)
    is_eos = (tokens == eos).long()
    after_stop = (is_eos.cumsum(dim=1) - is_eos) > 0  # strictly after the first EOS
    mask = (~after_stop).float()
    texts = []
    for row, keep in zip(tokens, mask):
        ids = [int(t) for t, k in zip(row, keep) if k and int(t) != eos]
        texts.append(tokenizer.decode(ids, skip_special_tokens=False))
    return Completions(tokens, mask, texts)


def completion_logprobs(model, batch: dict, completions: Completions) -> torch.Tensor:
    """log π(token) of each completion token under `model`, (B, T) float32 (0 where mask is 0)."""
    tokens, mask = completions.tokens, completions.mask
    prompt_len = batch["input_ids"].shape[1]
    full = {
        "input_ids": torch.cat([batch["input_ids"], tokens], dim=1),
        "attention_mask": torch.cat([batch["attention_mask"], mask.long()], dim=1),
        "mm_token_type_ids": torch.cat([batch["mm_token_type_ids"], torch.zeros_like(tokens)], dim=1),
        "pixel_values_videos": batch["pixel_values_videos"],
        "video_grid_thw": batch["video_grid_thw"],
        **({"second_per_grid_ts": batch["second_per_grid_ts"]} if "second_per_grid_ts" in batch else {}),
    }
    position_ids, _ = rope_index(model, full)
    logits = model(**full, position_ids=position_ids, use_cache=False).logits  # (B, P + T, V)
    logits = logits[:, prompt_len - 1 : -1].float()  # predicts tokens[:, 0..T-1]
    logp = torch.log_softmax(logits, dim=-1).gather(-1, tokens[..., None]).squeeze(-1)
    return logp * mask


def repeat_batch(batch: dict, times: int) -> dict:
    """Each row of a prompt batch `times` times in a row (a GRPO group), videos repeated alike."""
    out = {k: batch[k].repeat_interleave(times, dim=0)
           for k in ("input_ids", "attention_mask", "mm_token_type_ids", "video_grid_thw", "second_per_grid_ts")
           if k in batch}  # fmt: skip
    patches = (batch["video_grid_thw"].prod(dim=1)).tolist()
    chunks = torch.split(batch["pixel_values_videos"], patches)
    out["pixel_values_videos"] = torch.cat([c for c in chunks for _ in range(times)])
    return out

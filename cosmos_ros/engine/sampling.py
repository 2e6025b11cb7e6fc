"""Choosing the next token from logits: greedy, or sampled with temperature and top-p (nucleus).

Whatever the sampling, the probability recorded for a chosen token is the model's own
(softmax at temperature 1, unfiltered): confidence reports what the model believed, not how we sampled.
"""

from __future__ import annotations

import torch


def check_sampling(max_new_tokens: int, temperature: float, top_p: float) -> None:
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if not temperature >= 0.0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")


def top_p_filter(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """(B, V) probabilities → the smallest most-likely set whose mass reaches `top_p`, renormalized.

    A token is kept while the mass of the tokens ranked above it is below `top_p`, so the most
    likely token always survives.
    """
    ranked, order = probs.sort(dim=-1, descending=True)
    keep_ranked = (ranked.cumsum(dim=-1) - ranked) < top_p
    keep = torch.zeros_like(keep_ranked).scatter(-1, order, keep_ranked)
    kept = probs * keep
    return kept / kept.sum(dim=-1, keepdim=True)


def choose_tokens(
    logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, V) logits → (chosen token ids (B,), their probabilities under the model (B,))."""
    logits = logits.float()
    probs = torch.softmax(logits, dim=-1)
    if temperature == 0.0:
        tokens = torch.argmax(logits, dim=-1)
    else:
        weights = torch.softmax(logits / temperature, dim=-1)
        if top_p < 1.0:
            weights = top_p_filter(weights, top_p)
        tokens = torch.multinomial(weights, 1, generator=generator).squeeze(1)
    return tokens, probs.gather(1, tokens[:, None]).squeeze(1)

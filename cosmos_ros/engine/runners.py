"""What differs between the model families when the torch engine runs a batch.

The decode loop in `torch_engine` is the same for all; a runner collates a batch (left padding,
so every row's next token is in the last column), runs the prefill and then one decode step at
a time with a KV (and, for the hybrid, Mamba conv/SSM) cache:

- `DenseRunner` (Qwen2.5-VL): 3-D mRoPE positions for the prompt from the model's own
  `get_rope_index` (which skips left padding given the mask), then `real length + rope delta`
  per row for each new token. Computed here so nothing depends on state the model keeps
  between calls. transformers quirks: `mm_token_type_ids` must be passed or the 3-D positions
  are silently skipped; `second_per_grid_ts` is passed per video.
- `Qwen3VLRunner` (Qwen3-VL): the same, with Qwen3-VL's positions (time is in the prompt's
  timestamps, so no `second_per_grid_ts`).
- `HybridRunner` (InternVL + Nemotron-H): Nemotron-H's attention has no rotary positions and
  its Mamba-2 layers zero the masked (padding) steps, so the attention mask is all it needs;
  every forward runs under the chosen Mamba-2 implementation (kernels or PyTorch).
"""

from __future__ import annotations

from typing import Protocol

import torch
from transformers import DynamicCache

from cosmos_ros.model.hybrid_processor import HybridInputs, collate_hybrid_inputs
from cosmos_ros.model.mamba_kernels import mamba_implementation, resolve_use_mamba_kernels
from cosmos_ros.model.positions import rope_index
from cosmos_ros.model.processor import VideoInputs, collate_video_inputs


class Runner(Protocol):
    """What the decode loop asks of a family (the registry's `runner` entry). Constructed as
    `Runner(model, device, dtype, use_mamba_kernels)`; a family without Mamba layers refuses
    use_mamba_kernels=True."""

    family: str
    use_mamba_kernels: bool

    def collate(self, items: list, pad_token_id: int) -> dict[str, torch.Tensor]:
        """Left-padded batch of the family processor's inputs, on the runner's device and dtype."""
        ...

    def new_cache(self) -> DynamicCache: ...

    def prefill(self, batch: dict, cache, logits_to_keep: int = 1) -> tuple[torch.Tensor, dict]:
        """Logits (B, logits_to_keep or L, V) and the per-row state the decode steps need."""
        ...

    def decode(self, tokens: torch.Tensor, attention_mask: torch.Tensor, cache, state: dict) -> torch.Tensor:
        """tokens (B,) → next logits (B, V); `attention_mask` (B, L + steps) already covers `tokens`."""
        ...


class DenseRunner:
    family = "dense"
    use_mamba_kernels = False

    def __init__(
        self, model, device: torch.device, dtype: torch.dtype, use_mamba_kernels: bool | None = None
    ):
        if use_mamba_kernels:
            raise ValueError("use_mamba_kernels=True: the dense family has no Mamba layers")
        self.model, self.device, self.dtype = model, device, dtype

    def collate(self, items: list[VideoInputs], pad_token_id: int) -> dict[str, torch.Tensor]:
        batch = collate_video_inputs(items, pad_token_id)
        batch["pixel_values_videos"] = batch["pixel_values_videos"].to(self.dtype)
        return {k: v.to(self.device) for k, v in batch.items()}

    def new_cache(self) -> DynamicCache:
        return DynamicCache(config=self.model.config)

    def prefill(self, batch: dict, cache, logits_to_keep: int = 1) -> tuple[torch.Tensor, dict]:
        """Logits (B, logits_to_keep or L, V) and the per-row state the decode steps need."""
        position_ids, rope_deltas = rope_index(self.model, batch)  # (3, B, L), (B, 1)
        out = self.model(
            **batch,
            position_ids=position_ids,
            cache=cache,
            use_cache=cache is not None,
            logits_to_keep=logits_to_keep,
        )
        next_position = batch["attention_mask"].sum(dim=1) + rope_deltas.view(-1)  # (B,)
        return out.logits, {"next_position": next_position}

    def decode(self, tokens: torch.Tensor, attention_mask: torch.Tensor, cache, state: dict) -> torch.Tensor:
        """tokens (B,) → next logits (B, V); `attention_mask` (B, L + steps) already covers `tokens`."""
        position = state["next_position"]
        position_ids = position.view(1, -1, 1).expand(3, -1, 1)  # (3 mRoPE axes, B, 1)
        out = self.model(
            input_ids=tokens[:, None],
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            use_cache=True,
        )
        state["next_position"] = position + 1
        return out.logits[:, -1]


class Qwen3VLRunner(DenseRunner):
    """Qwen3-VL: the dense runner's mRoPE bookkeeping (transformers' own `get_rope_index`, which
    gives each frame one temporal index, time being in the prompt's timestamps); DeepStack
    features are added inside the model's prefill. Its inputs carry no `second_per_grid_ts`."""

    family = "qwen3_vl"


class HybridRunner:
    family = "hybrid"

    def __init__(
        self, model, device: torch.device, dtype: torch.dtype, use_mamba_kernels: bool | None = None
    ):
        """use_mamba_kernels: None uses mamba-ssm / causal-conv1d where installed and on CUDA."""
        self.model, self.device, self.dtype = model, device, dtype
        self.use_mamba_kernels = resolve_use_mamba_kernels(use_mamba_kernels, device)

    def implementation(self):
        return mamba_implementation(self.use_mamba_kernels)

    def collate(self, items: list[HybridInputs], pad_token_id: int) -> dict[str, torch.Tensor]:
        batch = collate_hybrid_inputs(items, pad_token_id)
        batch["pixel_values"] = batch["pixel_values"].to(self.dtype)
        return {k: v.to(self.device) for k, v in batch.items()}

    def new_cache(self) -> DynamicCache:
        return DynamicCache(config=self.model.config)

    def prefill(self, batch: dict, cache, logits_to_keep: int = 1) -> tuple[torch.Tensor, dict]:
        with self.implementation():
            out = self.model(**batch, cache=cache, use_cache=cache is not None, logits_to_keep=logits_to_keep)
        return out.logits, {}

    def decode(self, tokens: torch.Tensor, attention_mask: torch.Tensor, cache, state: dict) -> torch.Tensor:
        with self.implementation():
            out = self.model(
                input_ids=tokens[:, None], attention_mask=attention_mask, cache=cache, use_cache=True
            )
        return out.logits[:, -1]

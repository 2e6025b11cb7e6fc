"""3-D mRoPE positions of the Qwen-VL families (dense: Qwen2.5-VL, qwen3vl: Qwen3-VL), computed
one way for serving and training."""

from __future__ import annotations

import torch


def rope_index(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(position_ids (3, B, L), rope_deltas (B, 1)) for a Qwen2_5_VLForConditionalGeneration or
    Qwen3VLForConditionalGeneration and a processor batch: see `rope_positions`."""
    return rope_positions(model.model.get_rope_index, batch)


def rope_positions(get_rope_index, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """`get_rope_index` (a model's, or `onnx_graphs.RopeIndex`'s on the config alone) of a batch.
    transformers' get_rope_index skips left padding given the attention mask; it needs
    mm_token_type_ids, and Qwen2.5-VL also second_per_grid_ts (absolute-time positions), or the
    video positions come out wrong. Qwen3-VL takes time from the timestamps in the text, so its
    batches have no such key."""
    timing = {"second_per_grid_ts": batch["second_per_grid_ts"]} if "second_per_grid_ts" in batch else {}
    return get_rope_index(
        batch["input_ids"],
        batch["mm_token_type_ids"],
        video_grid_thw=batch["video_grid_thw"],
        attention_mask=batch["attention_mask"],
        **timing,
    )

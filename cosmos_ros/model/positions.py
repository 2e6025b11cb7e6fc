"""3-D mRoPE positions of the dense (Qwen2.5-VL) family, computed one way for serving and training."""

from __future__ import annotations

import torch


def rope_index(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(position_ids (3, B, L), rope_deltas (B, 1)) for a Qwen2_5_VLForConditionalGeneration and a
    processor batch. transformers' get_rope_index skips left padding given the attention mask; it
    needs mm_token_type_ids and second_per_grid_ts or the video positions come out wrong."""
    return model.model.get_rope_index(
        batch["input_ids"],
        batch["mm_token_type_ids"],
        video_grid_thw=batch["video_grid_thw"],
        second_per_grid_ts=batch["second_per_grid_ts"],
        attention_mask=batch["attention_mask"],
    )

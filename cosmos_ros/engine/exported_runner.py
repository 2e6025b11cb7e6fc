"""The runner of the exported graphs, shared by the onnxruntime and TensorRT backends.

It plays the part `runners.DenseRunner` / `Qwen3VLRunner` / `HybridRunner` play for torch — collate a left-padded
batch, prefill, decode one token per row — on the three graphs of an export directory, so the
decode loop in `generation` runs unchanged on either backend. What the graphs leave outside is
computed here, exactly as the torch runner computes it: the vision indices
(`onnx_graphs.dense_vision_inputs`, `qwen3_vision_inputs`) and 3-D mRoPE positions
(`get_rope_index` on the config alone) of the Qwen-VL families, Qwen3-VL's DeepStack features
passed from the vision graph to the prefill, and, for the hybrid, the left padding of prompts to
the Mamba chunk size.

A backend provides `run(graph, feeds) -> {output name: value}` (values stay in the backend's own
form between steps: OrtValues, CUDA tensors) and `to_torch(value)` for the logits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cosmos_ros.engine.manifest import Manifest
from cosmos_ros.engine.onnx_graphs import RopeIndex, dense_vision_inputs, qwen3_vision_inputs
from cosmos_ros.model.families import family_of
from cosmos_ros.model.hybrid_processor import collate_hybrid_inputs
from cosmos_ros.model.positions import rope_positions
from cosmos_ros.model.processor import collate_video_inputs


class ExportedRunner:
    def __init__(self, manifest: Manifest, config, backend):
        self.family = manifest.family
        self.dense = family_of(manifest.family).mrope  # the Qwen-VL layout: mRoPE, video patches
        self.deepstack = manifest.family == "qwen3_vl"
        self.backend = backend
        self.config = config
        self.rope_index = RopeIndex(config) if self.dense else None
        self.sequence_multiple = manifest.graphs["prefill"].sequence_multiple

    def collate(self, items: list, pad_token_id: int) -> dict[str, torch.Tensor]:
        if self.dense:
            batch = collate_video_inputs(items, pad_token_id)
            batch["pixel_values_videos"] = batch["pixel_values_videos"].float()
            return batch
        batch = collate_hybrid_inputs(items, pad_token_id)
        batch["pixel_values"] = batch["pixel_values"].float()
        # The exported chunked Mamba scan takes lengths in multiples of its chunk: more left padding.
        pad = -batch["input_ids"].shape[1] % self.sequence_multiple
        batch["input_ids"] = F.pad(batch["input_ids"], (pad, 0), value=pad_token_id)
        batch["attention_mask"] = F.pad(batch["attention_mask"], (pad, 0))
        return batch

    def new_cache(self) -> None:
        return None  # the state travels in `state["past"]`

    def _vision(self, batch: dict) -> dict:
        """The prefill's media inputs: media_embeds (and deepstack_embeds for Qwen3-VL)."""
        if self.dense:
            inputs = qwen3_vision_inputs if self.deepstack else dense_vision_inputs
            extra = inputs(batch["video_grid_thw"], self.config.vision_config)
            feeds = {"pixel_values": batch["pixel_values_videos"], **extra}
        else:
            feeds = {"pixel_values": batch["pixel_values"]}
        out = self.backend.run("vision", feeds)
        return {name: out[name] for name in ("media_embeds", "deepstack_embeds") if name in out}

    def prefill(self, batch: dict, cache, logits_to_keep: int = 1) -> tuple[torch.Tensor, dict]:
        """Logits (B, 1, V) at the last position and the state the decode steps need."""
        if logits_to_keep != 1:
            raise NotImplementedError(
                "the exported prefill graph returns the last position's logits only (logits_to_keep=1); "
                "use the torch engine for logits at every position"
            )
        feeds = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], **self._vision(batch)}
        state = {}
        if self.dense:
            positions, deltas = rope_positions(self.rope_index.get_rope_index, batch)
            feeds["position_ids"] = positions  # (3, B, L)
            state["next_position"] = batch["attention_mask"].sum(dim=1) + deltas.view(-1)  # (B,)
        out = self.backend.run("prefill", feeds)
        state["past"] = self._carry(out)
        return self.backend.to_torch(out["logits"])[:, None], state

    def decode(self, tokens: torch.Tensor, attention_mask: torch.Tensor, cache, state: dict) -> torch.Tensor:
        """tokens (B,) → next logits (B, V); `attention_mask` (B, L + steps) already covers `tokens`."""
        feeds = {"input_ids": tokens[:, None], "attention_mask": attention_mask, **state["past"]}
        if self.dense:
            position = state["next_position"]
            feeds["position_ids"] = position.view(1, -1, 1).expand(3, -1, 1).contiguous()
            state["next_position"] = position + 1
        out = self.backend.run("decode", feeds)
        state["past"] = self._carry(out)
        return self.backend.to_torch(out["logits"])

    @staticmethod
    def _carry(outputs: dict) -> dict:
        """present.* outputs become the next step's past.* inputs."""
        return {
            f"past.{name[len('present.') :]}": value
            for name, value in outputs.items()
            if name.startswith("present.")
        }

"""The graphs an ONNX export writes, per model family: for each, the module, two example inputs
of different sizes (one to trace, one to verify with), its dynamic axes and their labels."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.export import Dim

from cosmos_ros.core.types import Clip, Prompt
from cosmos_ros.engine.onnx_graphs import (
    DenseVisionGraph,
    HybridVisionGraph,
    LanguageGraph,
    Qwen3VisionGraph,
    RopeIndex,
    dense_vision_inputs,
    qwen3_vision_inputs,
)
from cosmos_ros.model.bundle import ModelBundle
from cosmos_ros.model.hybrid_processor import collate_hybrid_inputs
from cosmos_ros.model.positions import rope_positions
from cosmos_ros.model.processor import collate_video_inputs

MAX_BATCH = 64


@dataclass
class GraphJob:
    """One graph to export: the module, an example to trace, a second example of other sizes to
    verify with, dynamic shapes, and the label of each dynamic axis of every input and output."""

    name: str
    module: torch.nn.Module
    example: tuple[torch.Tensor, ...]
    check: tuple[torch.Tensor, ...]
    dynamic_shapes: tuple
    labels: dict[str, dict[int, str]]
    sequence_multiple: int = 1


def _example_items(bundle: ModelBundle) -> tuple:
    """Two clips of different lengths and prompts of different lengths."""
    rng = np.random.default_rng(0)

    def clip(frames: int) -> Clip:
        pixels = rng.integers(0, 256, (frames, 64, 64, 3), dtype=np.uint8)
        return Clip(frames=pixels, stamps=np.arange(frames) / 4.0, cameras=("export",))

    short = bundle.processor(clip(2), Prompt("What should the robot do next?"))
    long = bundle.processor(clip(4), Prompt("Did the robot drop the cube? Answer yes or no, then explain."))
    return short, long


def _state_labels(names, past_label: str) -> dict[str, dict[int, str]]:
    return {
        n: ({0: "batch", 2: past_label} if n.endswith((".key", ".value")) else {0: "batch"}) for n in names
    }


def _past_shapes(names, batch, past) -> list[dict]:
    return [{0: batch, 2: past} if n.endswith((".key", ".value")) else {0: batch} for n in names]


def _language_jobs(model, prefill_inputs: Callable, chunk: int, dense: bool) -> list[GraphJob]:
    """Prefill and decode jobs; `prefill_inputs(rows)` gives (prefill args, next positions | None)."""
    prefill, decode = LanguageGraph(model, "prefill"), LanguageGraph(model, "decode")
    batch = Dim("batch", min=1, max=MAX_BATCH)
    sequence = chunk * Dim("chunks", min=1) if chunk > 1 else Dim("sequence", min=1)
    media = Dim("media", min=1)
    prefill_shapes = ({0: batch, 1: sequence}, {0: batch, 1: sequence}, {0: media})
    prefill_shapes += ({1: batch, 2: sequence},) if dense else ()
    prefill_shapes += ({1: media},) if prefill.deepstack else ()
    prefill_labels = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
                      "media_embeds": {0: "media"}, "position_ids": {1: "batch", 2: "sequence"},
                      "deepstack_embeds": {1: "media"},
                      "logits": {0: "batch"}, **_state_labels(prefill.output_names[1:], "sequence")}  # fmt: skip

    def decode_args(args, next_position):
        with torch.inference_mode():
            logits, *states = prefill(*args)
        tokens = logits.argmax(-1)[:, None]
        mask = torch.cat([args[1], torch.ones_like(tokens)], dim=1)
        positions = (next_position.view(1, -1, 1).expand(3, -1, 1).contiguous(),) if dense else ()
        return (tokens, mask, *positions, *states)

    example, example_next = prefill_inputs([0, 1])
    check, check_next = prefill_inputs([1])
    past = Dim("past", min=1)
    decode_shapes = ({0: batch}, {0: batch, 1: past + 1}) + (({1: batch},) if dense else ())
    decode_shapes += tuple(_past_shapes(decode.past_names, batch, past))
    decode_labels = {"input_ids": {0: "batch"}, "attention_mask": {0: "batch", 1: "past + 1"},
                     "position_ids": {1: "batch"}, "logits": {0: "batch"},
                     **_state_labels(decode.past_names, "past"),
                     **_state_labels(decode.output_names[1:], "past + 1")}  # fmt: skip
    return [
        GraphJob("prefill", prefill, example, check, (prefill_shapes,), prefill_labels, chunk),
        GraphJob("decode", decode, decode_args(example, example_next), decode_args(check, check_next),
                 (decode_shapes,), decode_labels),
    ]  # fmt: skip


def _vision_example(grids: list[list[int]], vision_config, inputs=dense_vision_inputs) -> tuple[torch.Tensor, ...]:
    """Vision graph inputs for clips of these (t, h, w) patch grids, with random pixels; `inputs`
    computes the rest from the grids (`dense_vision_inputs`, `qwen3_vision_inputs`)."""
    grid_thw = torch.tensor(grids)
    channels = vision_config.in_channels * vision_config.temporal_patch_size * vision_config.patch_size**2
    pixels = torch.randn(
        int(grid_thw.prod(dim=1).sum()), channels, generator=torch.Generator().manual_seed(0)
    )
    return (pixels, *inputs(grid_thw, vision_config).values())


def _mrope_prefill_inputs(bundle: ModelBundle, items: tuple, vision, vision_inputs) -> Callable:
    """`prefill_inputs(rows)` of a Qwen-VL family: the rows' clips through the vision graph (whose
    outputs after media_embeds, e.g. DeepStack's, follow the positions), 3-D positions from the
    config alone, and each row's next position."""
    model = bundle.model

    def prefill_inputs(rows):
        batch = collate_video_inputs([items[i] for i in rows], bundle.tokenizer.pad_token_id or 0)
        extra = vision_inputs(batch["video_grid_thw"], model.config.vision_config)
        with torch.inference_mode():
            out = vision(batch["pixel_values_videos"].float(), *extra.values())
        media, *more = out if isinstance(out, tuple) else (out,)
        positions, deltas = rope_positions(RopeIndex(model.config).get_rope_index, batch)
        next_position = batch["attention_mask"].sum(dim=1) + deltas.view(-1)
        return (batch["input_ids"], batch["attention_mask"], media, positions, *more), next_position

    return prefill_inputs


def dense_jobs(bundle: ModelBundle) -> list[GraphJob]:
    model, items = bundle.model, _example_items(bundle)
    vision = DenseVisionGraph(model)
    vision_config = model.config.vision_config
    unit = vision_config.spatial_merge_size**2

    # Grids with several windows per frame, windows cut short at the frame's edge and frames of
    # two sizes, so every block axis is dynamic and differs from every other in the example.
    side = vision_config.spatial_merge_size
    window = vision_config.window_size // vision_config.patch_size // side  # merged patches per side
    example = [[1, (window + 1) * side, (2 * window - 1) * side], [2, (window + 2) * side, window * side]]
    check = [[2, max(window - 1, 1) * side, (window + 1) * side]]
    merged = Dim("merged", min=1)
    patches = unit * merged
    frame_blocks = {0: Dim("grid_frames", min=1), 1: Dim("frame_patches", min=1)}
    window_blocks = {0: Dim("windows", min=1), 1: Dim("window_patches", min=1)}
    vision_job = GraphJob(
        "vision", vision, _vision_example(example, vision_config), _vision_example(check, vision_config),
        ({0: patches}, {0: patches}, {0: merged}, {0: merged}, frame_blocks, frame_blocks, {0: patches},
         window_blocks, window_blocks, {0: patches}),
        {"pixel_values": {0: "patches"}, "rotary_position_ids": {0: "patches"}, "window_index": {0: "merged"},
         "reverse_window_index": {0: "merged"},
         "frame_block_index": {0: "grid_frames", 1: "frame_patches"},
         "frame_block_mask": {0: "grid_frames", 1: "frame_patches"}, "frame_unblock_index": {0: "patches"},
         "window_block_index": {0: "windows", 1: "window_patches"},
         "window_block_mask": {0: "windows", 1: "window_patches"}, "window_unblock_index": {0: "patches"},
         "media_embeds": {0: "merged"}},
    )  # fmt: skip
    prefill_inputs = _mrope_prefill_inputs(bundle, items, vision, dense_vision_inputs)
    return [vision_job, *_language_jobs(model, prefill_inputs, 1, dense=True)]


def qwen3_vl_jobs(bundle: ModelBundle) -> list[GraphJob]:
    model, items = bundle.model, _example_items(bundle)
    vision = Qwen3VisionGraph(model)
    vision_config = model.config.vision_config
    side = vision_config.spatial_merge_size
    # Frames of different sizes and counts, so every axis is dynamic and differs from the others.
    example = [[1, 3 * side, 2 * side], [2, 2 * side, 4 * side]]
    check = [[2, side, 3 * side]]
    patches = side * side * Dim("merged", min=1)
    frame_blocks = {0: Dim("grid_frames", min=1), 1: Dim("frame_patches", min=1)}
    vision_job = GraphJob(
        "vision", vision, _vision_example(example, vision_config, qwen3_vision_inputs),
        _vision_example(check, vision_config, qwen3_vision_inputs),
        ({0: patches}, {0: patches}, {0: patches}, {0: patches}, frame_blocks, frame_blocks, {0: patches}),
        {"pixel_values": {0: "patches"}, "rotary_position_ids": {0: "patches"}, "position_index": {0: "patches"},
         "position_weights": {0: "patches"}, "frame_block_index": {0: "grid_frames", 1: "frame_patches"},
         "frame_block_mask": {0: "grid_frames", 1: "frame_patches"}, "frame_unblock_index": {0: "patches"},
         "media_embeds": {0: "merged"}, "deepstack_embeds": {1: "merged"}},
    )  # fmt: skip
    prefill_inputs = _mrope_prefill_inputs(bundle, items, vision, qwen3_vision_inputs)
    return [vision_job, *_language_jobs(model, prefill_inputs, 1, dense=True)]


def hybrid_jobs(bundle: ModelBundle) -> list[GraphJob]:
    model, items = bundle.model, _example_items(bundle)
    vision = HybridVisionGraph(model)
    chunk = model.config.text_config.chunk_size
    pad_id = bundle.tokenizer.pad_token_id or 0

    def batch_of(rows):
        return collate_hybrid_inputs([items[i] for i in rows], pad_id)

    vision_job = GraphJob(
        "vision", vision, (batch_of([0, 1])["pixel_values"].float(),), (batch_of([1])["pixel_values"].float(),),
        ({0: Dim("frames", min=1)},), {"pixel_values": {0: "frames"}, "media_embeds": {0: "media"}},
    )  # fmt: skip

    def prefill_inputs(rows):
        batch = batch_of(rows)
        with torch.inference_mode():
            media = vision(batch["pixel_values"].float())
        pad = -batch["input_ids"].shape[1] % chunk
        ids, mask = (
            F.pad(batch["input_ids"], (pad, 0), value=pad_id),
            F.pad(batch["attention_mask"], (pad, 0)),
        )
        return (ids, mask, media), None

    return [vision_job, *_language_jobs(model, prefill_inputs, chunk, dense=False)]



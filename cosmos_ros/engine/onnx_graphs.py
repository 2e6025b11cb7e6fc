"""The three graphs we export, as torch modules with plain tensor inputs and outputs.

Each wraps transformers' own submodules (composed, not copied); what the wrappers add is only what
an exported graph cannot take from Python at run time:

- `DenseVisionGraph` (Qwen2.5-VL): rotary positions, window order and the two attention
  segmentations (one block per frame for the full-attention layers, one per window for the
  others) are inputs computed outside the graph by `dense_vision_inputs` from `video_grid_thw`.
  transformers splits attention by `cu_seqlens.tolist()`, which an export bakes in; here each
  segmentation comes as a padded gather index (blocks, longest block) with a key mask for the
  padding and the index that puts the blocks' rows back in sequence order, so attention runs
  batched over blocks — as cheap as transformers' per-window loop, with dynamic shapes.
- `Qwen3VisionGraph` (Qwen3-VL): the same batched per-frame attention, with the learned position
  grid's bilinear resampling as gather indices and weights from outside
  (`qwen3_vision_inputs`), and DeepStack's merged features of the chosen blocks as a second
  output, stacked (layers, N / merge², hidden).
- `HybridVisionGraph` (InternVL): vision tower + pixel shuffle + projector as they are.
- `LanguageGraph`: prefill (video embeddings scattered over the media tokens, all positions in,
  last position's logits out) or one decode step, with the KV cache — and the hybrid's Mamba-2
  conv / SSM states — as explicit inputs (`past.*`) and outputs (`present.*`). The causal +
  padding mask is built in the graph from the 2-D `attention_mask`; mRoPE `position_ids` (dense,
  qwen3_vl) come from outside (the torch runner's `get_rope_index`); Qwen3-VL's prefill also takes
  the DeepStack features, added to the first layers' outputs at the media tokens. Attention runs as
  `grouped_query_attention`: transformers' sdpa path repeats every key / value head for its
  query heads when traced (`repeat_kv`), a copy of the whole cache per layer and step.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AttentionInterface
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import (
    Qwen2_5_VLModel,
    apply_rotary_pos_emb_vision,
)
from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLModel
from transformers.vision_utils import (
    get_vision_cu_seqlens,
    get_vision_interpolation_indices_and_weights,
    get_vision_position_ids,
    get_vision_window_index,
)

from cosmos_ros.model.families import family_of

ATTENTION, MAMBA = "attention", "mamba"


def cache_layout(config) -> list[tuple[int, str]]:
    """(layer index, kind) of every layer that carries state between decode steps, in order."""
    text = config.get_text_config()
    kinds = getattr(text, "layers_block_type", None)
    if kinds is None:  # dense: every layer is attention
        return [(i, ATTENTION) for i in range(text.num_hidden_layers)]
    names = {"full_attention": ATTENTION, "linear_attention": MAMBA}
    return [(i, names[k]) for i, k in enumerate(kinds) if k in names]


def state_names(config, prefix: str) -> list[str]:
    """`past.3.key`, `past.3.value` per attention layer; `past.0.conv`, `past.0.ssm` per Mamba layer."""
    names = []
    for layer, kind in cache_layout(config):
        parts = ("key", "value") if kind == ATTENTION else ("conv", "ssm")
        names += [f"{prefix}.{layer}.{part}" for part in parts]
    return names


def attention_blocks(cu_seqlens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Contiguous segments (cumulative boundaries, S + 1) as padded blocks for batched attention:
    index (S, longest) of each block's positions (padding repeats the block's first), key mask
    (S, longest) bool, False on padding, and unblock (cu_seqlens[-1],): the row of the flattened
    (S · longest) blocks that holds each position."""
    starts = cu_seqlens[:-1].long()
    lengths = cu_seqlens[1:].long() - starts
    offsets = torch.arange(int(lengths.max()))
    mask = offsets[None, :] < lengths[:, None]  # (S, longest)
    index = torch.where(mask, starts[:, None] + offsets[None, :], starts[:, None])
    block = torch.repeat_interleave(torch.arange(len(lengths)), lengths)  # (N,)
    unblock = block * len(offsets) + torch.arange(len(block)) - starts[block]
    return index, mask, unblock


def dense_vision_inputs(grid_thw: torch.Tensor, vision_config) -> dict[str, torch.Tensor]:
    """Everything `DenseVisionGraph` needs besides the pixels, from the clips' (n, 3) grids — the
    same helpers transformers' vision encoder calls, run here so no graph reads `grid_thw`."""
    merge = vision_config.spatial_merge_size
    unit = merge * merge
    positions = get_vision_position_ids(grid_thw, merge)  # (N, 2)
    window_index, cu_window = get_vision_window_index(
        grid_thw, merge, vision_config.window_size, vision_config.patch_size
    )
    n = positions.shape[0]
    in_window_order = positions.reshape(n // unit, unit, 2)[window_index].reshape(n, 2)
    # Windows never cross frames, so each frame is a contiguous run in window order too.
    frames = attention_blocks(get_vision_cu_seqlens(grid_thw))
    windows = attention_blocks(cu_window)
    return {
        "rotary_position_ids": in_window_order.long(),
        "window_index": window_index.long(),
        "reverse_window_index": torch.argsort(window_index).long(),
        **dict(zip(("frame_block_index", "frame_block_mask", "frame_unblock_index"), frames)),
        **dict(zip(("window_block_index", "window_block_mask", "window_unblock_index"), windows)),
    }


def qwen3_vision_inputs(grid_thw: torch.Tensor, vision_config) -> dict[str, torch.Tensor]:
    """Everything `Qwen3VisionGraph` needs besides the pixels, from the clips' (n, 3) grids, by the
    helpers Qwen3-VL's vision encoder calls (bilinear, corners aligned, merge-block order)."""
    merge = vision_config.spatial_merge_size
    index, weights = get_vision_interpolation_indices_and_weights(
        grid_thw, int(vision_config.num_position_embeddings**0.5), mode="bilinear",
        align_corners=True, spatial_merge_size=merge,
    )  # fmt: skip
    frames = attention_blocks(get_vision_cu_seqlens(grid_thw))
    return {
        "rotary_position_ids": get_vision_position_ids(grid_thw, merge).long(),
        "position_index": index.long(),
        "position_weights": weights.float(),
        **dict(zip(("frame_block_index", "frame_block_mask", "frame_unblock_index"), frames)),
    }


class RopeIndex:
    """A Qwen-VL family's `get_rope_index` without the model: it reads only the config
    (Qwen2.5-VL's, or Qwen3-VL's for a qwen3_vl config)."""

    def __init__(self, config):
        self.config = config
        model = Qwen3VLModel if family_of(config).name == "qwen3_vl" else Qwen2_5_VLModel
        self._rope_index = model.get_rope_index
        self._vision_positions = model.get_vision_position_ids

    def get_rope_index(self, *args, **kwargs):
        return self._rope_index(self, *args, **kwargs)

    def get_vision_position_ids(self, *args, **kwargs):
        return self._vision_positions(self, *args, **kwargs)


def _rows(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x[index] for an index of any shape, as one flat row gather (ONNX Gather, not GatherND)."""
    return x.index_select(0, index.reshape(-1)).reshape(*index.shape, *x.shape[1:])


class AttentionBlocks:
    """One segmentation of the vision sequence, ready for `_block_attention`: the padded block
    index (S, L), an additive key bias (S, 1, 1, L) that hides the padding, the rotary cos / sin
    gathered into block order (S, L, head_dim) and the unblock index (N,)."""

    def __init__(self, index, mask, unblock, cos, sin):
        zero = torch.zeros((), dtype=cos.dtype)
        self.index, self.unblock = index, unblock
        self.bias = torch.where(mask, zero, torch.finfo(cos.dtype).min)[:, None, None, :]
        self.cos, self.sin = _rows(cos, index), _rows(sin, index)


def _block_attention(attn, x: torch.Tensor, blocks: AttentionBlocks) -> torch.Tensor:
    """Attention of x (N, C) within each block, every block at once: (S, heads, L, L) scores."""
    count, length = blocks.index.shape
    qkv = _rows(attn.qkv(x), blocks.index).reshape(count, length, 3, attn.num_heads, -1)
    q, k, v = qkv.unbind(2)  # (S, L, heads, d)
    q, k = apply_rotary_pos_emb_vision(q, k, blocks.cos, blocks.sin)
    scores = (q.transpose(1, 2) * attn.scaling) @ k.permute(0, 2, 3, 1) + blocks.bias  # (S, heads, L, L)
    out = scores.softmax(dim=-1) @ v.transpose(1, 2)  # (S, heads, L, d)
    out = out.transpose(1, 2).reshape(count * length, -1).index_select(0, blocks.unblock)  # (N, C)
    return attn.proj(out)


class DenseVisionGraph(nn.Module):
    """Qwen2.5-VL vision tower + merger: (N, C·tp·p²) patches → (N / merge², hidden) embeddings.

    The patch embedding's Conv3d has kernel = stride = one patch, so it runs as the matmul it is
    (onnxruntime's Conv is several times slower on these shapes)."""

    input_names = (
        "pixel_values", "rotary_position_ids", "window_index", "reverse_window_index",
        "frame_block_index", "frame_block_mask", "frame_unblock_index",
        "window_block_index", "window_block_mask", "window_unblock_index",
    )  # fmt: skip
    output_names = ("media_embeds",)

    def __init__(self, model):
        super().__init__()
        self.visual = model.model.visual

    def forward(self, pixel_values, rotary_position_ids, window_index, reverse_window_index,
                frame_block_index, frame_block_mask, frame_unblock_index,
                window_block_index, window_block_mask, window_unblock_index):  # fmt: skip
        v = self.visual
        weight = v.patch_embed.proj.weight
        x = F.linear(pixel_values.to(weight.dtype), weight.reshape(weight.shape[0], -1))  # (N, C)
        n = x.shape[0]
        x = _rows(x.reshape(n // v.spatial_merge_unit, -1), window_index).reshape(n, -1)
        cos, sin = v.rotary_pos_emb(x, rotary_position_ids)  # (N, head_dim) each
        frames = AttentionBlocks(frame_block_index, frame_block_mask, frame_unblock_index, cos, sin)
        windows = AttentionBlocks(window_block_index, window_block_mask, window_unblock_index, cos, sin)
        for i, block in enumerate(v.blocks):
            blocks = frames if i in v.fullatt_block_indexes else windows
            x = x + _block_attention(block.attn, block.norm1(x), blocks)
            x = x + block.mlp(block.norm2(x))
        return _rows(v.merger(x), reverse_window_index)  # (N / merge², hidden), back in patch order


class Qwen3VisionGraph(nn.Module):
    """Qwen3-VL vision tower, merger and DeepStack mergers: (N, C·tp·p²) patches →
    media_embeds (N / merge², hidden) and deepstack_embeds (layers, N / merge², hidden)."""

    input_names = (
        "pixel_values", "rotary_position_ids", "position_index", "position_weights",
        "frame_block_index", "frame_block_mask", "frame_unblock_index",
    )  # fmt: skip
    output_names = ("media_embeds", "deepstack_embeds")

    def __init__(self, model):
        super().__init__()
        self.visual = model.model.visual

    def forward(self, pixel_values, rotary_position_ids, position_index, position_weights,
                frame_block_index, frame_block_mask, frame_unblock_index):  # fmt: skip
        v = self.visual
        proj = v.patch_embed.proj
        x = F.linear(pixel_values.to(proj.weight.dtype), proj.weight.reshape(proj.weight.shape[0], -1), proj.bias)
        x = x + (v.pos_embed(position_index) * position_weights[:, :, None].to(x.dtype)).sum(1)
        cos, sin = v.rotary_pos_emb(x, rotary_position_ids)  # (N, head_dim) each
        frames = AttentionBlocks(frame_block_index, frame_block_mask, frame_unblock_index, cos, sin)
        deepstack = []
        for i, block in enumerate(v.blocks):
            x = x + _block_attention(block.attn, block.norm1(x), frames)
            x = x + block.mlp(block.norm2(x))
            if i in v.deepstack_visual_indexes:
                deepstack.append(v.deepstack_merger_list[v.deepstack_visual_indexes.index(i)](x))
        return v.merger(x), torch.stack(deepstack)


class HybridVisionGraph(nn.Module):
    """InternViT + pixel shuffle + projector: (T, 3, S, S) frames → (T · tokens_per_frame, hidden)."""

    input_names = ("pixel_values",)
    output_names = ("media_embeds",)

    def __init__(self, model):
        super().__init__()
        self.model = model.model
        self.feature_layer = model.config.vision_feature_layer
        self.select_strategy = model.config.vision_feature_select_strategy

    def forward(self, pixel_values):
        features = self.model.get_image_features(
            pixel_values,
            vision_feature_layer=self.feature_layer,
            vision_feature_select_strategy=self.select_strategy,
        ).pooler_output  # (T, tokens_per_frame, hidden)
        return features.reshape(-1, features.shape[-1])


class ExplicitCache:
    """Stands in for transformers' cache inside an exported forward: reads `past.*` tensors and
    collects `present.*` ones. Decode-step Mamba updates write into clones of the past states
    (transformers updates them in place), so inputs are never mutated."""

    def __init__(self, past: dict[str, torch.Tensor] | None):
        self.past = past or {}
        self.present: dict[str, torch.Tensor] = {}

    # attention layers
    def update(self, key, value, layer_idx, *args, **kwargs):
        if f"{layer_idx}.key" in self.past:
            key = torch.cat([self.past[f"{layer_idx}.key"], key], dim=2)
            value = torch.cat([self.past[f"{layer_idx}.value"], value], dim=2)
        self.present[f"{layer_idx}.key"], self.present[f"{layer_idx}.value"] = key, value
        return key, value

    # Mamba-2 layers
    def _state(self, layer_idx: int, part: str):
        past = self.past.get(f"{layer_idx}.{part}")
        if past is None:
            return None
        self.present[f"{layer_idx}.{part}"] = state = past.clone()
        return state

    def get_conv_state(self, layer_idx, state_idx=0):
        return self._state(layer_idx, "conv")

    def get_recurrent_state(self, layer_idx, state_idx=0):
        return self._state(layer_idx, "ssm")

    def is_recording_past(self, layer_idx):
        return False

    def get_recurrent_states_to_keep(self, layer_idx=None):
        """No intermediate SSM states are kept (transformers >= 5.25 asks before a chunked scan)."""
        return 0

    def increase_count(self, layer_idx, state_idx=0):
        """transformers >= 5.25 counts a decode step's in-place conv update here; that update
        writes into the clone `_state` registered as present, and the graph counts no tokens."""

    def update_conv_state(self, states, layer_idx, conv_kernel_size, **kwargs):
        # Prefill: always left-pad by the kernel (zeros = causal padding, so the conv is unchanged)
        # rather than only when the prompt is shorter than it, which would branch on the length.
        padded = F.pad(states, (conv_kernel_size, 0))
        self.present[f"{layer_idx}.conv"] = padded[..., -conv_kernel_size:]
        return padded

    def update_recurrent_state(self, state, layer_idx, **kwargs):
        self.present[f"{layer_idx}.ssm"] = state
        return state


def scatter_media(embeds: torch.Tensor, is_media: torch.Tensor, media: torch.Tensor, add: bool = False) -> torch.Tensor:
    """`masked_scatter` of media rows over the media tokens, in row-major order, as gather + where
    (`add`: added to them instead, as DeepStack does). embeds (B, L, H), is_media (B, L) bool,
    media (N, H) with N = is_media.sum()."""
    index = (is_media.reshape(-1).long().cumsum(0) - 1).clamp(min=0)  # (B·L,) the row each position reads
    gathered = media[index].reshape(embeds.shape).to(embeds.dtype)
    return torch.where(is_media[..., None], embeds + gathered if add else gathered, embeds)


GROUPED_ATTENTION = "cosmos_ros_grouped"


def grouped_query_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """A transformers attention function: the query heads of each key / value head attend as one
    group against it, so keys and values are read where they are, never repeated per query head.
    query (B, H, Q, d), key / value (B, G, K, d), additive mask (B, 1, Q, K) → (B, Q, H, d)."""
    batch, heads, length, dim = query.shape
    groups = key.shape[1]
    scale = dim**-0.5 if scaling is None else scaling
    grouped = query.reshape(batch, groups, heads // groups, length, dim) * scale
    scores = grouped @ key[:, :, None].transpose(-1, -2)  # (B, G, H / G, Q, K)
    if attention_mask is not None:
        scores = scores + attention_mask[:, :, None]
    out = scores.softmax(dim=-1) @ value[:, :, None]  # (B, G, H / G, Q, d)
    return out.reshape(batch, heads, length, dim).transpose(1, 2), None


AttentionInterface.register(GROUPED_ATTENTION, grouped_query_attention)


@contextmanager
def attention_implementation(config, name: str):
    """Run a model under another registered attention function, restoring its own afterwards."""
    previous = config._attn_implementation
    config._attn_implementation = name
    try:
        yield
    finally:
        config._attn_implementation = previous


def causal_mask(attention_mask: torch.Tensor, query_length: int, dtype: torch.dtype) -> torch.Tensor:
    """(B, K) 0/1 padding mask → (B, 1, Q, K) additive mask for the last Q of K positions.

    Masked scores get the dtype's minimum, not -inf: a padding query then attends uniformly
    instead of producing NaN that would reach later layers' keys and values.
    """
    key_length = attention_mask.shape[1]
    keys = torch.arange(key_length, device=attention_mask.device)
    queries = torch.arange(query_length, device=attention_mask.device) + (key_length - query_length)
    allowed = (keys[None, :] <= queries[:, None])[None, None] & attention_mask[:, None, None, :].bool()
    zero = torch.zeros((), dtype=dtype, device=attention_mask.device)
    return torch.where(allowed, zero, torch.finfo(dtype).min)


class LanguageGraph(nn.Module):
    """The language model of either family, prefill (`step="prefill"`) or one decode step.

    prefill inputs: input_ids (B, L), attention_mask (B, L), media_embeds (N, H)
                    [+ position_ids (3, B, L), dense and qwen3_vl]
                    [+ deepstack_embeds (layers, N, H), qwen3_vl]
    decode inputs:  input_ids (B, 1), attention_mask (B, P + 1) [+ position_ids (3, B, 1)], past.*
    outputs:        logits (B, V) float32 at the last position, present.*
    """

    def __init__(self, model, step: str):
        super().__init__()
        if step not in ("prefill", "decode"):
            raise ValueError(f"step must be 'prefill' or 'decode', got {step!r}")
        config = model.config
        self.step = step
        family = family_of(config)
        self.dense = family.mrope  # mRoPE: position_ids are an input
        vision = getattr(config, "vision_config", None)
        self.deepstack = len(getattr(vision, "deepstack_visual_indexes", ()) or ()) if step == "prefill" else 0
        self.text = model.model.language_model
        self.lm_head = model.lm_head
        self.media_token_id = getattr(config, family.media_token)
        self.past_names = state_names(config, "past")
        self.input_names = ("input_ids", "attention_mask")
        self.input_names += ("media_embeds",) if step == "prefill" else ()
        self.input_names += ("position_ids",) if self.dense else ()
        self.input_names += ("deepstack_embeds",) if self.deepstack else ()
        self.input_names += tuple(self.past_names) if step == "decode" else ()
        self.output_names = ("logits", *state_names(config, "present"))

    def forward(self, *inputs: torch.Tensor):
        named = dict(zip(self.input_names, inputs))
        past = {name.removeprefix("past."): named[name] for name in self.past_names if name in named}
        cache = ExplicitCache(past)
        with attention_implementation(self.text.config, GROUPED_ATTENTION):
            logits = self._logits(named, cache)
        names = [n.removeprefix("present.") for n in self.output_names[1:]]
        return (logits, *(cache.present[n] for n in names))

    def _logits(self, named: dict, cache: ExplicitCache) -> torch.Tensor:
        input_ids, attention_mask = named["input_ids"], named["attention_mask"]
        embed = self.text.embed_tokens if self.dense else self.text.embeddings
        hidden = embed(input_ids)  # (B, L, H)
        is_media = input_ids == self.media_token_id
        if self.step == "prefill":
            hidden = scatter_media(hidden, is_media, named["media_embeds"])
        mask = causal_mask(attention_mask, hidden.shape[1], hidden.dtype)
        if self.dense:
            position_embeddings = self.text.rotary_emb(hidden, named["position_ids"])
            for i, layer in enumerate(self.text.layers):
                hidden = layer(hidden, attention_mask=mask, position_embeddings=position_embeddings,
                               cache=cache, use_cache=True)  # fmt: skip
                if i < self.deepstack:  # Qwen3-VL adds each DeepStack feature after its layer
                    hidden = scatter_media(hidden, is_media, named["deepstack_embeds"][i], add=True)
            hidden = self.text.norm(hidden[:, -1:])
        else:
            # Mamba layers zero padded steps in the prompt; a decode step has none (transformers
            # passes no mask there either).
            recurrent_mask = attention_mask if self.step == "prefill" else None
            for layer in self.text.layers:
                layer_mask = mask if layer.block_type == "full_attention" else recurrent_mask
                hidden = layer(hidden, attention_mask=layer_mask, cache=cache, use_cache=True)
            hidden = self.text.norm_f(hidden[:, -1:])
        return self.lm_head(hidden)[:, 0].float()  # (B, V)

"""The inputs computed outside the exported graphs."""

import torch

from cosmos_ros.engine.onnx_graphs import attention_blocks


def test_attention_blocks_pad_short_segments_and_mask_the_padding():
    index, mask, _ = attention_blocks(torch.tensor([0, 3, 4, 8]))
    assert index.tolist() == [[0, 1, 2, 0], [3, 3, 3, 3], [4, 5, 6, 7]]
    assert mask.tolist() == [[True, True, True, False], [True, False, False, False], [True] * 4]


def test_unblocking_the_flattened_blocks_restores_sequence_order():
    index, _, unblock = attention_blocks(torch.tensor([0, 3, 4, 8]))
    assert index.reshape(-1)[unblock].tolist() == list(range(8))

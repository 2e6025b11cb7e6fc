"""Exports of the tiny presets, shared by the engine tests.

Exporting the three tiny presets takes a minute or two on two cores, so the tests share one export
per preset, kept in pytest's cache folder (`.pytest_cache/d/cosmos_ros_engines`) through the
same engine cache the onnxruntime backend uses: keyed by model hash, opset and exporter code, so
any change to the weights or to the exporter exports again.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def engine_cache(request, tmp_path_factory):
    """pytest's cache folder, or a session temp folder where the cache plugin is off
    (`-p no:cacheprovider`, as scripts/gpu_check.sh runs)."""
    cache = getattr(request.config, "cache", None)
    return cache.mkdir("cosmos_ros_engines") if cache is not None else tmp_path_factory.mktemp("cosmos_ros_engines")


@pytest.fixture(scope="session")
def exports(engine_cache):
    """{"tiny-dense": export dir, "tiny-hybrid": ..., "cosmos-reason2-tiny": ...}, exported on the first run."""
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")
    pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx)")
    from cosmos_ros.engine.onnx_export import ensure_export

    return {
        preset: ensure_export(preset, root=engine_cache)
        for preset in ("tiny-dense", "tiny-hybrid", "cosmos-reason2-tiny")
    }


@pytest.fixture(scope="session")
def step_logits():
    """logits_of(engine, inputs): the first decode step's logits after the prefill's greedy token."""
    import torch

    def logits_of(engine, inputs):
        runner = engine.runner
        batch = runner.collate([inputs], engine.pad_token_id)
        logits, state = runner.prefill(batch, runner.new_cache(), logits_to_keep=1)
        token = logits[:, -1].argmax(dim=-1)
        mask = torch.cat([batch["attention_mask"], batch["attention_mask"].new_ones(1, 1)], dim=1)
        return runner.decode(token, mask, None, state)[0]

    return logits_of

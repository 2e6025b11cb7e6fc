"""Exports of the tiny presets, shared by the engine tests.

Exporting the three tiny presets takes a minute or two on two cores, so the tests share one export
per preset, kept in pytest's cache folder (`.pytest_cache/d/cosmos_ros_engines`) through the
same engine cache the onnxruntime backend uses: keyed by model hash, opset and exporter code, so
any change to the weights or to the exporter exports again.
"""

from __future__ import annotations

import pytest

from cosmos_ros.resources import data_dirs

SHIPPED = str(data_dirs("model")[0] / "cosmos-reason1-tiny")


@pytest.fixture(scope="session")
def engine_cache(request, tmp_path_factory):
    """pytest's cache folder, or a session temp folder where the cache plugin is off
    (`-p no:cacheprovider`, as scripts/gpu_check.sh runs)."""
    cache = getattr(request.config, "cache", None)
    return (
        cache.mkdir("cosmos_ros_engines")
        if cache is not None
        else tmp_path_factory.mktemp("cosmos_ros_engines")
    )


@pytest.fixture(scope="session")
def exports(engine_cache):
    """{"tiny-dense": export dir, "tiny-hybrid": ..., "cosmos-reason2-tiny": ...}, exported on the first run."""
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")
    pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx)")
    from cosmos_ros.engine.onnx_export import ensure_export

    presets = ("tiny-dense", "tiny-hybrid", "cosmos-reason2-tiny")
    export_in_parallel([*presets, SHIPPED], engine_cache)  # the shipped model's: for the quantizer tests
    return {preset: ensure_export(preset, root=engine_cache) for preset in presets}


def export_in_parallel(sources: list[str], root) -> None:
    """Exports the uncached ones two at a time: torch.export's tracing is single-threaded Python, so
    on two cores a clean checkout's first run exports in about half the time."""
    import concurrent.futures
    import functools
    import multiprocessing

    from cosmos_ros.engine.onnx_export import (
        OPSET,
        ensure_export,
        export_is_reusable,
        model_id_of,
        onnx_export_dir,
    )

    def cached(source: str) -> bool:
        model_id = model_id_of(source)
        return export_is_reusable(onnx_export_dir(root, model_id, OPSET), model_id, OPSET)

    missing = [s for s in sources if not cached(s)]
    if len(missing) < 2:
        return
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
        list(pool.map(functools.partial(ensure_export, root=root), missing))


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

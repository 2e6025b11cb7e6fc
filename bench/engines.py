"""Engine speed: the onnxruntime (and, on a GPU, TensorRT) backends against torch, in one run.

CPU (default), on one ≈55M-parameter dense model (Qwen2.5-VL architecture, random init, the
`bench-50m` config below) exported once into the engine cache:
- decode tokens/s of the onnxruntime backend vs transformers' `model.generate` (greedy, KV
  cache, stop tokens ignored; decode rate = tokens after the first / their time);
- vision + projector latency, onnxruntime vs torch eager, for an 8-frame clip.
GPU (--device cuda), on the 7B-shaped preset (random init):
- vision + projector, TensorRT (bf16) vs torch eager bf16, 8 frames 448²;
- clip → answer latency (preprocess + prefill + --new-tokens decode), TensorRT vs transformers
  `generate` bf16.
Without a GPU the GPU part is skipped with a message.

    python bench/engines.py [--device cpu|cuda] [--frames 8] [--size 224] [--new-tokens 64] [--repeats 3]
    cosmos-ros bench engines [same arguments]

The last line printed is `{"bench": "engines", "machine": ..., "metrics": {...}}`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cosmos_ros.core.types import Prompt
from cosmos_ros.engine.engine_cache import cache_root, export_is_reusable, onnx_export_dir
from cosmos_ros.engine.onnx_export import OPSET, export_bundle
from cosmos_ros.engine.onnx_graphs import dense_vision_inputs
from cosmos_ros.model.bundle import ModelBundle, make_processor
from cosmos_ros.model.checkpoint import build_model, preset_id
from cosmos_ros.model.config import (
    ModelPreset,
    TextConfig,
    VideoDefaults,
    VisionConfig,
    get_preset,
    model_info,
)
from cosmos_ros.model.dense_config import TINY_TOKEN_IDS
from cosmos_ros.model.tokenizer import build_tiny_tokenizer
from model import full_size_bundle, machine_description, make_clip

PROMPT = Prompt("What should the robot do next? Answer with <think></think><answer></answer>.")
console = Console(highlight=False)
if not console.is_terminal:
    console.width = 140

# ≈55M parameters: a 12-layer 512-wide Qwen2 LM with a 4-block vision tower; the offline tokenizer's vocab.
BENCH_50M = ModelPreset(
    name="bench-50m",
    text=TextConfig(hidden_size=512, num_layers=12, num_heads=8, num_kv_heads=4, intermediate_size=1536,
                    vocab_size=4096, mrope_section=(8, 12, 12)),
    vision=VisionConfig(depth=4, hidden_size=384, num_heads=6, intermediate_size=1536, fullatt_block_indexes=(3,)),
    video=VideoDefaults(min_pixels=224 * 224, max_pixels=224 * 224, fps=4.0),
    token_ids=dict(TINY_TOKEN_IDS),
    offline_tokenizer=True,
)  # fmt: skip


def bench_bundle(preset: ModelPreset, device="cpu", dtype=torch.float32) -> ModelBundle:
    tokenizer = build_tiny_tokenizer(family="dense")
    model = build_model(preset, 0, dtype=dtype, device=device)
    return ModelBundle(model, tokenizer, make_processor(preset, tokenizer), preset_id(preset, 0), "dense")


def cached_export(bundle: ModelBundle) -> Path:
    directory = onnx_export_dir(cache_root(), bundle.model_id, OPSET)
    if not export_is_reusable(directory, bundle.model_id, OPSET):
        console.print(f"exporting {bundle.model_id} to {directory} (once; later runs reuse it)")
        export_bundle(bundle, directory)
    return directory


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def hf_decode_rate(model, inputs, new_tokens: int, repeats: int, device="cpu", dtype=torch.float32) -> float:
    """Tokens/s of transformers' generate after the first token: (N) / (t(N + 1) - t(1))."""
    kwargs = inputs.model_kwargs(device, dtype)

    def generate(n):
        with torch.inference_mode():
            model.generate(**kwargs, max_new_tokens=n, min_new_tokens=n, do_sample=False)
        if device != "cpu":
            torch.cuda.synchronize()

    first = median_time(lambda: generate(1), repeats)
    full = median_time(lambda: generate(new_tokens + 1), repeats)
    return new_tokens / (full - first)


def engine_decode_rate(engine, inputs, new_tokens: int, repeats: int) -> float:
    """Tokens/s of our loop after the first token, stamped as tokens arrive."""
    rates = []
    for run in range(repeats + 1):
        stamps = []
        engine.generate(inputs, max_new_tokens=new_tokens + 1, ignore_stop_tokens=True,
                        on_token_id=lambda _t, stamps=stamps: stamps.append(time.perf_counter()))  # fmt: skip
        if run:
            rates.append(new_tokens / (stamps[-1] - stamps[0]))
    return statistics.median(rates)


def cpu_runs(args) -> dict:
    from cosmos_ros.engine.onnx_engine import OnnxRuntimeEngine
    from cosmos_ros.engine.torch_engine import TorchEngine

    bundle = bench_bundle(BENCH_50M)
    parameters = model_info(BENCH_50M)["parameters"]
    export_dir = cached_export(bundle)
    ort_engine = OnnxRuntimeEngine(export_dir, num_threads=args.threads or None)
    clip = make_clip(args.frames, args.size)
    inputs = bundle.processor(clip, PROMPT)
    # Both sides run in turn on a machine that may be shared: the load says how far to trust them.
    results = {"parameters_m": parameters / 1e6, "prompt_tokens": inputs.num_prompt_tokens,
               "load_1m_before": os.getloadavg()[0]}  # fmt: skip

    results["ort_decode_tok_s"] = engine_decode_rate(ort_engine, inputs, args.new_tokens, args.repeats)
    results["transformers_decode_tok_s"] = hf_decode_rate(bundle.model, inputs, args.new_tokens, args.repeats)
    results["torch_engine_decode_tok_s"] = engine_decode_rate(
        TorchEngine.from_bundle(bundle), inputs, args.new_tokens, args.repeats
    )

    graphs = ort_engine.runner.backend
    extra = dense_vision_inputs(inputs.video_grid_thw, bundle.model.config.vision_config)
    feeds = {"pixel_values": inputs.pixel_values_videos, **extra}
    results["ort_vision_ms"] = 1e3 * median_time(lambda: graphs.run("vision", feeds), args.repeats)

    def torch_vision():
        with torch.inference_mode():
            bundle.model.model.get_video_features(inputs.pixel_values_videos, inputs.video_grid_thw)

    results["torch_vision_ms"] = 1e3 * median_time(torch_vision, args.repeats)
    results["load_1m_after"] = os.getloadavg()[0]
    return results


def gpu_runs(args) -> dict:
    from cosmos_ros.engine.tensorrt_build import missing_for_tensorrt

    missing = missing_for_tensorrt(args.device)
    if missing:
        console.print(f"[yellow]GPU part skipped: {'; '.join(missing)}[/]")
        return {}
    from cosmos_ros.engine.tensorrt_build import Profiles
    from cosmos_ros.engine.tensorrt_engine import TensorRTEngine

    preset = dataclasses.replace(get_preset("cosmos-reason1-7b"), token_ids=dict(TINY_TOKEN_IDS))
    export_dir = cached_export(bench_bundle(preset))  # fp32 on the CPU: ≈33 GB of host memory for the 7B
    gpu = full_size_bundle(preset, torch.device(args.device))  # bf16 reference on the GPU
    engine = TensorRTEngine(export_dir, device=args.device, precision="bf16",
                            profiles=Profiles(frames=(1, args.frames, 32)))  # fmt: skip
    clip = make_clip(8, 448)
    inputs = gpu.processor(clip, PROMPT)
    extra = dense_vision_inputs(inputs.video_grid_thw, gpu.model.config.vision_config)
    feeds = {"pixel_values": inputs.pixel_values_videos, **extra}
    graphs = engine.runner.backend

    def trt_vision():
        graphs.to_torch(graphs.run("vision", feeds)["media_embeds"])

    def torch_vision():
        with torch.inference_mode():
            gpu.model.model.get_video_features(inputs.pixel_values_videos.to(args.device, torch.bfloat16),
                                               inputs.video_grid_thw.to(args.device))  # fmt: skip
        torch.cuda.synchronize()

    results = {"trt_vision_ms": 1e3 * median_time(trt_vision, args.repeats),
               "torch_bf16_vision_ms": 1e3 * median_time(torch_vision, args.repeats)}  # fmt: skip

    def trt_answer():
        engine.generate(engine.prepare(clip, PROMPT), max_new_tokens=args.new_tokens, ignore_stop_tokens=True)

    def hf_answer():
        kwargs = gpu.processor(clip, PROMPT).model_kwargs(args.device, torch.bfloat16)
        with torch.inference_mode():
            gpu.model.generate(
                **kwargs, max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, do_sample=False
            )
        torch.cuda.synchronize()

    results["trt_clip_to_answer_ms"] = 1e3 * median_time(trt_answer, args.repeats)
    results["transformers_clip_to_answer_ms"] = 1e3 * median_time(hf_answer, args.repeats)
    return results


def metrics_of(cpu: dict, gpu: dict) -> dict:
    metrics = {k: round(v, 3) if isinstance(v, float) else v for k, v in {**cpu, **gpu}.items()}
    if cpu:
        metrics["ort_vs_transformers_decode_speedup"] = round(
            cpu["ort_decode_tok_s"] / cpu["transformers_decode_tok_s"], 3
        )
        metrics["ort_vs_torch_vision_speedup"] = round(cpu["torch_vision_ms"] / cpu["ort_vision_ms"], 3)
    if gpu:
        metrics["trt_vs_torch_bf16_vision_speedup"] = round(
            gpu["torch_bf16_vision_ms"] / gpu["trt_vision_ms"], 3
        )
        metrics["trt_vs_transformers_clip_to_answer_speedup"] = round(
            gpu["transformers_clip_to_answer_ms"] / gpu["trt_clip_to_answer_ms"], 3
        )
    return metrics


def report(metrics: dict, args) -> None:
    table = Table(title=f"engines: {args.frames} frames {args.size}², {args.new_tokens} new tokens")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        table.add_row(name, f"{value:,.3f}" if isinstance(value, float) else str(value))
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", help="cpu, or cuda[:N] to add the TensorRT part")
    parser.add_argument("--frames", type=int, default=8, help="frames per clip (default 8)")
    parser.add_argument("--size", type=int, default=224, help="CPU clip side in pixels (default 224)")
    parser.add_argument("--new-tokens", type=int, default=64, help="tokens decoded per run (default 64)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (default 3)")
    parser.add_argument(
        "--threads", type=int, default=0, help="intra-op threads, torch and onnxruntime (default: theirs)"
    )
    args = parser.parse_args(argv)
    if min(args.frames, args.size, args.new_tokens, args.repeats) < 1:
        parser.error("--frames, --size, --new-tokens and --repeats must be >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    cpu = cpu_runs(args)
    gpu = gpu_runs(args) if args.device.startswith("cuda") else {}
    if not args.device.startswith("cuda"):
        console.print(
            "[yellow]GPU part (TensorRT vs torch bf16, 7B clip → answer) skipped: run with --device cuda[/]"
        )
    metrics = metrics_of(cpu, gpu)
    report(metrics, args)
    device = torch.device(args.device if torch.cuda.is_available() else "cpu")
    console.file.flush()
    print(
        json.dumps({"bench": "engines", "machine": machine_description(device), "metrics": metrics}),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

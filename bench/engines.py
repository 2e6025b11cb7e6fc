"""Engine speed: the onnxruntime (and, on a GPU, TensorRT) backends against torch, in one run.

CPU (default), on one ≈55M-parameter dense model (Qwen2.5-VL architecture, random init, the
`bench-50m` config below) exported once into the engine cache:
- decode tokens/s of the onnxruntime backend, fp32 and int8 weights, vs transformers'
  `model.generate` and vs our torch engine (greedy, KV cache, stop tokens ignored; decode rate =
  tokens after the first / their time; the engines' runs interleaved so a load change hits all);
- fp32 decode against the memory wall: weight bytes read per token × tokens/s as a fraction of
  the copy bandwidth measured here (bytes read + written per second by a 256 MiB numpy copy);
- vision + projector latency, onnxruntime fp32 and int8 vs torch eager, for an 8-frame clip;
- held-out accuracy of the shipped model (model/cosmos-reason1-tiny) through onnxruntime fp32
  and int8 on simulated episodes from a seed no training used (generated once into the cache,
  or `--heldout DIR,...`); `--no-accuracy` skips it. Also through the Q/DQ graphs TensorRT
  builds its int8 and fp8 engines from (`qdq_quantize`, default calibration), emulated on the
  CPU by onnxruntime: their accuracy, not their speed, is what a CPU can tell.
GPU (--device cuda), on the 7B-shaped preset (random init):
- vision + projector, TensorRT (bf16) vs torch eager bf16, 8 frames 448²;
- clip → answer latency (preprocess + prefill + --new-tokens decode), TensorRT vs transformers
  `generate` bf16.
Without a GPU the GPU part is skipped with a message.

    python bench/engines.py [--device cpu|cuda] [--frames 8] [--size 224] [--new-tokens 64] [--repeats 3]
                            [--heldout DIR,DIR | --no-accuracy] [--heldout-episodes 60]
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


def hf_decode_round(model, inputs, new_tokens: int, device="cpu", dtype=torch.float32):
    """One measurement of transformers' generate after the first token: N / (t(N + 1) - t(1))."""
    kwargs = inputs.model_kwargs(device, dtype)

    def generate(n):
        start = time.perf_counter()
        with torch.inference_mode():
            model.generate(**kwargs, max_new_tokens=n, min_new_tokens=n, do_sample=False)
        if device != "cpu":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    return lambda: new_tokens / (generate(new_tokens + 1) - generate(1))


def engine_decode_round(engine, inputs, new_tokens: int):
    """One measurement of our loop after the first token, stamped as tokens arrive."""

    def measure():
        stamps = []
        engine.generate(inputs, max_new_tokens=new_tokens + 1, ignore_stop_tokens=True,
                        on_token_id=lambda _t: stamps.append(time.perf_counter()))  # fmt: skip
        return new_tokens / (stamps[-1] - stamps[0])

    return measure


def interleaved_rates(rounds: dict, repeats: int) -> dict[str, float]:
    """Each measurement's median over `repeats` rounds (after a warm-up round) in which every one
    runs in turn, so a change of load on a shared machine falls on all of them alike."""
    rates: dict[str, list[float]] = {name: [] for name in rounds}
    for run in range(repeats + 1):
        for name, measure in rounds.items():
            rate = measure()
            if run:
                rates[name].append(rate)
    return {name: statistics.median(values) for name, values in rates.items()}


def copy_bandwidth_gb_s(repeats: int, size_mib: int = 256) -> float:
    """Memory traffic of a large numpy copy: bytes read + bytes written per second, best of runs."""
    import numpy as np

    source = np.ones(size_mib * 2**18, np.float32)
    target = np.empty_like(source)
    np.copyto(target, source)
    best = min(_timed(lambda: np.copyto(target, source)) for _ in range(max(3, repeats)))
    return 2 * source.nbytes / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def decode_weight_bytes(export_dir: Path) -> int:
    """Bytes of the decode graph's weights every token reads: its initializers, less the embedding
    table (a lookup reads one row of it)."""
    import onnx

    model = onnx.load(str(export_dir / "decode.onnx"), load_external_data=False)
    gathered = {n.input[0] for n in model.graph.node if n.op_type == "Gather"}
    total = 0
    for init in model.graph.initializer:
        if init.name in gathered:
            continue
        size = next((int(e.value) for e in init.external_data if e.key == "length"), None)
        total += size if size is not None else len(init.raw_data)
    return total


def heldout_dirs(args) -> list[Path]:
    """The --heldout data folders, or simulated episodes of seed 9700 generated once into the cache."""
    if args.heldout:
        return [Path(d) for d in args.heldout.split(",")]
    import subprocess

    root = cache_root() / "bench" / f"heldout-seed9700-{args.heldout_episodes}"
    sims = Path(__file__).resolve().parents[1] / "sim" / "tiny"
    sets = {"robot168": "manipulation.yaml", "easy56": "object_permanence.yaml,arrow_of_time.yaml"}
    dirs = []
    for name, tasks in sets.items():
        out = root / name
        if not (out / "test.jsonl").is_file():
            console.print(f"generating held-out episodes into {out} (once; later runs reuse them)")
            count = args.heldout_episodes if name == "robot168" else max(1, args.heldout_episodes // 3)
            tasks = ",".join(str(sims / t) for t in tasks.split(","))
            subprocess.run([sys.executable, "-m", "cosmos_ros.cli", "gen-data", "--no-usd", "--workers", "2",
                            "--tasks", tasks, "--n", str(count), "--seed", "9700", "--splits", "0,0,1",
                            "--out", str(out)], check=True, env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")})  # fmt: skip
        dirs.append(out)
    return dirs


def accuracy_runs(args) -> dict:
    """Held-out accuracy of the shipped model through onnxruntime: fp32 and int8 weights, and
    TensorRT's int8 and fp8 Q/DQ graphs (emulated)."""
    from cosmos_ros.engine.onnx_engine import OnnxRuntimeEngine
    from cosmos_ros.engine.onnx_export import ensure_export
    from cosmos_ros.engine.qdq_quantize import ensure_qdq_export
    from cosmos_ros.training.data import read_records
    from cosmos_ros.training.evaluate import engine_answers, summarize

    records = [r for d in heldout_dirs(args) for r in read_records(d / "test.jsonl")]
    model = Path(__file__).resolve().parents[1] / "model" / "cosmos-reason1-tiny"
    results = {"heldout_questions": len(records)}
    for precision in ("fp32", "int8", "qdq_int8", "qdq_fp8"):
        if precision.startswith("qdq"):
            export = ensure_qdq_export(ensure_export(model), precision.replace("_", "-"))
            engine = OnnxRuntimeEngine(export)
        else:
            engine = OnnxRuntimeEngine(model, precision=precision)
        answered, texts = engine_answers(
            engine, records, fps=engine.processor.video.default_fps, max_new_tokens=24
        )
        scores = summarize(answered, texts, depth=2)
        results[f"heldout_{precision}_accuracy"] = scores["all"]["accuracy"]
        for category in ("manipulation/next_subtask", "manipulation/failure"):
            if category in scores:
                results[f"heldout_{precision}_{category.split('/')[1]}_accuracy"] = scores[category][
                    "accuracy"
                ]
        if "failure_f1" in scores.get("manipulation/failure", {}):
            results[f"heldout_{precision}_failure_f1"] = scores["manipulation/failure"]["failure_f1"]
    return results


def cpu_runs(args) -> dict:
    from cosmos_ros.engine.onnx_engine import OnnxRuntimeEngine
    from cosmos_ros.engine.onnx_quantize import ensure_int8_export
    from cosmos_ros.engine.torch_engine import TorchEngine

    bundle = bench_bundle(BENCH_50M)
    parameters = model_info(BENCH_50M)["parameters"]
    export_dir = cached_export(bundle)
    int8_dir = ensure_int8_export(export_dir)
    ort_engine = OnnxRuntimeEngine(export_dir, num_threads=args.threads or None)
    int8_engine = OnnxRuntimeEngine(int8_dir, num_threads=args.threads or None)
    clip = make_clip(args.frames, args.size)
    inputs = bundle.processor(clip, PROMPT)
    # Both sides run in turn on a machine that may be shared: the load says how far to trust them.
    results = {"parameters_m": parameters / 1e6, "prompt_tokens": inputs.num_prompt_tokens,
               "load_1m_before": os.getloadavg()[0]}  # fmt: skip

    engines = {"ort": ort_engine, "ort_int8": int8_engine, "torch_engine": TorchEngine.from_bundle(bundle)}
    rounds = {name: engine_decode_round(engine, inputs, args.new_tokens) for name, engine in engines.items()}
    rounds["transformers"] = hf_decode_round(bundle.model, inputs, args.new_tokens)
    rates = interleaved_rates(rounds, args.repeats)
    results.update({f"{name}_decode_tok_s": rate for name, rate in rates.items()})
    results["copy_bandwidth_gb_s"] = copy_bandwidth_gb_s(args.repeats)
    results["fp32_decode_weight_mb"] = decode_weight_bytes(export_dir) / 1e6
    results["int8_decode_weight_mb"] = decode_weight_bytes(int8_dir) / 1e6

    extra = dense_vision_inputs(inputs.video_grid_thw, bundle.model.config.vision_config)
    feeds = {"pixel_values": inputs.pixel_values_videos, **extra}
    for name, engine in (("ort", ort_engine), ("ort_int8", int8_engine)):
        graphs = engine.runner.backend
        results[f"{name}_vision_ms"] = 1e3 * median_time(
            lambda graphs=graphs: graphs.run("vision", feeds), args.repeats
        )

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
        metrics["ort_int8_vs_fp32_decode_speedup"] = round(
            cpu["ort_int8_decode_tok_s"] / cpu["ort_decode_tok_s"], 3
        )
        metrics["torch_engine_vs_transformers_decode_speedup"] = round(
            cpu["torch_engine_decode_tok_s"] / cpu["transformers_decode_tok_s"], 3
        )
        metrics["ort_fp32_decode_of_copy_bandwidth"] = round(
            cpu["fp32_decode_weight_mb"] * 1e6 * cpu["ort_decode_tok_s"] / (cpu["copy_bandwidth_gb_s"] * 1e9),
            3,
        )
        metrics["ort_vs_torch_vision_speedup"] = round(cpu["torch_vision_ms"] / cpu["ort_vision_ms"], 3)
        metrics["ort_int8_vs_torch_vision_speedup"] = round(
            cpu["torch_vision_ms"] / cpu["ort_int8_vision_ms"], 3
        )
        for precision in ("int8", "qdq_int8", "qdq_fp8"):
            if f"heldout_{precision}_accuracy" in cpu:
                metrics[f"{precision}_vs_fp32_heldout_accuracy_points"] = round(
                    100 * (cpu[f"heldout_{precision}_accuracy"] - cpu["heldout_fp32_accuracy"]), 2
                )
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
    parser.add_argument(
        "--heldout", default="", help="comma-separated gen-data folders for the accuracy part"
    )
    parser.add_argument(
        "--heldout-episodes", type=int, default=60, help="episodes generated when --heldout is not given"
    )
    parser.add_argument(
        "--no-accuracy", action="store_true", help="skip the held-out accuracy of int8 vs fp32"
    )
    args = parser.parse_args(argv)
    if min(args.frames, args.size, args.new_tokens, args.repeats) < 1:
        parser.error("--frames, --size, --new-tokens and --repeats must be >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    cpu = cpu_runs(args)
    if not args.no_accuracy:
        cpu.update(accuracy_runs(args))
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

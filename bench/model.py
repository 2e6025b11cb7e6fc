"""Model speed: prefill latency, decode tokens/s and batching gain of both families, in one run.

CPU (default): tiny-dense and tiny-hybrid, random init, on an 8-frame 448² clip.
GPU (--device cuda): cosmos-reason1-7b random-init bf16 on the same clip, and the hybrid at the
56B's widths with as many of its 118 layers as fit the card (--hybrid-layers, default: the
largest prefix of its layer pattern whose bf16 weights take at most 60% of GPU memory), once with
the mamba-ssm / causal-conv1d kernels (when installed) and once with transformers' PyTorch Mamba-2.
Random weights decode arbitrary tokens, so stop tokens are ignored: every run decodes exactly
--new-tokens tokens. Peak memory is torch's allocator peak over the measurements of that model.

    python bench/model.py [--device cpu|cuda] [--frames 8] [--size 448] [--new-tokens 32] [--batch 4]
    cosmos-ros bench model [same arguments]

The last line printed is the JSON summary `{"bench": "model", "machine": ..., "metrics": ...}`.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import transformers
from rich.console import Console
from rich.table import Table

from cosmos_ros.core.types import Clip, Prompt
from cosmos_ros.engine.torch_engine import TorchEngine
from cosmos_ros.model.bundle import ModelBundle, load_bundle, make_processor
from cosmos_ros.model.checkpoint import build_model, preset_id
from cosmos_ros.model.config import TINY_TOKEN_IDS, get_preset, model_info
from cosmos_ros.model.mamba_kernels import missing_packages
from cosmos_ros.model.tokenizer import build_tiny_tokenizer

PROMPT = Prompt(
    "What should the robot do next? Answer the question with provided options in the following format: "
    "<think>\nyour reasoning\n</think>\n\n<answer>\nyour answer\n</answer>."
)

console = Console(highlight=False)
if not console.is_terminal:
    console.width = 140  # keep the tables whole when the output goes to a file or a pipe


def machine_description(device: torch.device) -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    return (
        f"{cpu}, {os.cpu_count()} cores{gpu}, {platform.system()} {platform.release()}, Python "
        f"{platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}"
    )


def make_clip(frames: int, size: int) -> Clip:
    pixels = np.random.default_rng(0).integers(0, 256, (frames, size, size, 3), dtype=np.uint8)
    return Clip(frames=pixels, stamps=np.arange(frames) / 4.0, cameras=("bench",))


def full_size_bundle(preset, device: torch.device) -> ModelBundle:
    """A random-init bf16 model of a full-size preset; the offline tokenizer's ids stand in for the
    real tokenizer's (random weights make every id alike), so no download is needed."""
    family_ids = TINY_TOKEN_IDS if preset.family == "dense" else get_preset("tiny-hybrid").token_ids
    preset = dataclasses.replace(preset, token_ids=dict(family_ids))
    tokenizer = build_tiny_tokenizer(family=preset.family)
    model = build_model(preset, dtype=torch.bfloat16, device=device)
    return ModelBundle(
        model, tokenizer, make_processor(preset, tokenizer), preset_id(preset, 0), preset.family
    )


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def generation_times(engine: TorchEngine, items: list, new_tokens: int, repeats: int) -> tuple[float, float]:
    """Median (time to the first token, time of the following `new_tokens` decode steps), in
    seconds, over `repeats` runs after one warm-up; each run is stamped as its tokens arrive
    (choosing a token reads it back to the host, so GPU work is finished by then)."""
    firsts, decodes = [], []
    for run in range(repeats + 1):
        stamps: list[float] = []

        def stamp(row: int, _token: int, stamps: list[float] = stamps) -> None:
            if row == 0:
                stamps.append(time.perf_counter())

        sync(engine.device)
        start = time.perf_counter()
        engine.generate_batch(
            items, max_new_tokens=new_tokens + 1, ignore_stop_tokens=True, on_token_id=stamp
        )
        if run:
            firsts.append(stamps[0] - start)
            decodes.append(stamps[-1] - stamps[0])
    return statistics.median(firsts), statistics.median(decodes)


def measure(engine: TorchEngine, clip: Clip, args) -> dict:
    """Preprocessing, prefill (vision + projector + LLM over the prompt, first token chosen),
    decode rate of one clip and of a batch of `args.batch` copies, peak memory."""
    device = engine.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    inputs = engine.prepare(clip, PROMPT)
    preprocess = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        engine.prepare(clip, PROMPT)
        preprocess.append(time.perf_counter() - start)
    prefill, decode = generation_times(engine, [inputs], args.new_tokens, args.repeats)
    _, batch_decode = generation_times(engine, [inputs] * args.batch, args.new_tokens, args.repeats)
    return {
        "prompt_tokens": inputs.num_prompt_tokens,
        "preprocess_ms": statistics.median(preprocess) * 1e3,
        "prefill_ms": prefill * 1e3,
        "decode_tok_s": args.new_tokens / decode,
        f"batch{args.batch}_decode_tok_s": args.batch * args.new_tokens / batch_decode,
        "peak_mem_gb": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
    }


def hybrid_layers_that_fit(device: torch.device) -> int:
    """The longest prefix of the 56B's layer pattern whose bf16 weights take <= 60% of GPU memory."""
    full = get_preset("cosmos-reason1-56b")
    budget = 0.6 * torch.cuda.get_device_properties(device).total_memory
    for layers in (118, 88, 59, 44, 30, 15):  # every prefix keeps an attention layer
        if model_info(truncated_hybrid(full, layers))["bytes_bf16"] <= budget:
            return layers
    return 15


def truncated_hybrid(full, layers: int):
    """The 56B with only the first `layers` letters of its pattern (the first attention layer is the 9th)."""
    return dataclasses.replace(
        full,
        name=f"{full.name}-first{layers}",
        text=dataclasses.replace(full.text, layers=full.text.layers[:layers]),
    )


def cpu_runs(args, clip: Clip) -> dict[str, dict]:
    results = {}
    for preset in ("tiny-dense", "tiny-hybrid"):
        bundle = load_bundle(preset, device="cpu")
        engine = TorchEngine.from_bundle(bundle)
        results[preset] = {"parameters": model_info(preset)["parameters"], **measure(engine, clip, args)}
        engine.close()
    return results


def gpu_runs(args, clip: Clip, device: torch.device) -> dict[str, dict]:
    results = {}
    dense = get_preset("cosmos-reason1-7b")
    bundle = full_size_bundle(dense, device)
    results[dense.name] = {
        "parameters": model_info(dense)["parameters"],
        **measure(TorchEngine.from_bundle(bundle), clip, args),
    }
    del bundle
    gc.collect()
    torch.cuda.empty_cache()

    layers = args.hybrid_layers or hybrid_layers_that_fit(device)
    hybrid = truncated_hybrid(get_preset("cosmos-reason1-56b"), layers)
    parameters = model_info(hybrid)["parameters"]
    bundle = full_size_bundle(hybrid, device)  # one set of weights for both Mamba-2 implementations
    for label, use_kernels in (("PyTorch Mamba-2", False), ("mamba-ssm kernels", True)):
        if use_kernels and (missing := missing_packages()):
            console.print(
                f"[yellow]mamba-ssm kernels not measured: {', '.join(missing)} do not import here[/]"
            )
            continue
        engine = TorchEngine.from_bundle(bundle, use_mamba_kernels=use_kernels)
        results[f"{hybrid.name} ({label})"] = {"parameters": parameters, **measure(engine, clip, args)}
    return results


def report(results: dict[str, dict], args) -> None:
    table = Table(
        title=f"{args.frames} frames of {args.size}x{args.size}, {args.new_tokens} new tokens, device {args.device}"
    )
    columns = ("model", "parameters", "prompt tokens", "preprocess ms", "prefill ms", "decode tok/s",
               f"batch {args.batch} decode tok/s", "peak GB")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column == "model" else "right")
    for name, r in results.items():
        peak = "-" if r["peak_mem_gb"] is None else f"{r['peak_mem_gb']:.1f}"
        table.add_row(
            name, f"{r['parameters'] / 1e6:,.1f} M", str(r["prompt_tokens"]), f"{r['preprocess_ms']:.1f}",
            f"{r['prefill_ms']:.1f}", f"{r['decode_tok_s']:.1f}", f"{r[f'batch{args.batch}_decode_tok_s']:.1f}", peak,
        )  # fmt: skip
    console.print(table)


def metrics_of(results: dict[str, dict], args) -> dict:
    metrics = {}
    for name, r in results.items():
        key = name.replace(" (PyTorch Mamba-2)", "_torch_mamba").replace(
            " (mamba-ssm kernels)", "_mamba_kernels"
        )
        key = key.replace("-", "_").replace(".", "_")
        for field, value in r.items():
            if value is not None:
                metrics[f"{key}_{field}"] = round(value, 3) if isinstance(value, float) else value
        metrics[f"{key}_batch{args.batch}_vs_single_decode_throughput"] = round(
            r[f"batch{args.batch}_decode_tok_s"] / r["decode_tok_s"], 3
        )
    torch_key = next((k for k in results if k.endswith("(PyTorch Mamba-2)")), None)
    kernel_key = next((k for k in results if k.endswith("(mamba-ssm kernels)")), None)
    if torch_key and kernel_key:
        metrics["hybrid_mamba_kernels_vs_torch_decode_speedup"] = round(
            results[kernel_key]["decode_tok_s"] / results[torch_key]["decode_tok_s"], 3
        )
        metrics["hybrid_mamba_kernels_vs_torch_prefill_speedup"] = round(
            results[torch_key]["prefill_ms"] / results[kernel_key]["prefill_ms"], 3
        )
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", help="cpu (tiny presets) or cuda[:N] (full presets)")
    parser.add_argument("--frames", type=int, default=8, help="frames in the clip (default 8)")
    parser.add_argument("--size", type=int, default=448, help="frame side in pixels (default 448)")
    parser.add_argument("--new-tokens", type=int, default=32, help="tokens decoded per run (default 32)")
    parser.add_argument("--batch", type=int, default=4, help="clips in the batched run (default 4)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed runs per measurement, after a warm-up (default 3)"
    )
    parser.add_argument(
        "--hybrid-layers",
        type=int,
        default=0,
        help="GPU: first layers of the 56B pattern to keep, >= 9 (default: what fits)",
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="torch intra-op threads on CPU (default: torch's choice)"
    )
    args = parser.parse_args(argv)
    if min(args.frames, args.size, args.new_tokens, args.batch, args.repeats) < 1:
        parser.error("--frames, --size, --new-tokens, --batch and --repeats must be >= 1")
    if args.hybrid_layers and not 9 <= args.hybrid_layers <= 118:
        parser.error("--hybrid-layers must be 9..118 (the 9th layer is the first attention layer)")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA GPU is visible to torch here")
    if args.threads:
        torch.set_num_threads(args.threads)
    clip = make_clip(args.frames, args.size)
    with torch.inference_mode():
        results = gpu_runs(args, clip, device) if device.type == "cuda" else cpu_runs(args, clip)
    report(results, args)
    summary = {"bench": "model", "machine": machine_description(device), "metrics": metrics_of(results, args)}
    console.file.flush()
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

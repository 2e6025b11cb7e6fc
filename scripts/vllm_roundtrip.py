"""A real vLLM serving a model-shaped random checkpoint, one engine:=openai round trip through it.

For scripts/gpu_check.sh: the checkpoint is written here, laid out as the released one (sharded
bf16 safetensors + index, tokenizer, processor and generation configs), with the preset's widths
and depth (Cosmos-Reason1-7B by default) and random weights, whose vocabulary ids are our offline
tokenizer's so no download is needed. `cosmos-ros serve` starts vLLM on it (the Python that has
vLLM: `--vllm-python`, $COSMOS_ROS_VLLM_PYTHON or this one), the OpenAI engine asks one question
about a synthetic clip, and one JSON line reports the times and the token counts.

    python scripts/vllm_roundtrip.py [--preset cosmos-reason1-7b] [--device cuda] [--out FILE]
    python scripts/vllm_roundtrip.py --preset tiny-dense --device cpu    # the same path on a CPU
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np


def write_checkpoint(preset_name: str, path: Path, device: str) -> Path:
    """`preset_name`'s shapes, random weights in bf16 (fp32 on a CPU), our offline tokenizer's ids."""
    from cosmos_ros.model.checkpoint import build_model, save_checkpoint
    from cosmos_ros.model.config import get_preset
    from cosmos_ros.model.families import family_of
    from cosmos_ros.model.tokenizer import build_tiny_tokenizer

    spec = get_preset(preset_name)
    tiny = {"dense": "tiny-dense", "hybrid": "tiny-hybrid", "qwen3_vl": "cosmos-reason2-tiny"}[family_of(spec).name]
    spec = dataclasses.replace(spec, token_ids=dict(get_preset(tiny).token_ids))
    tokenizer = build_tiny_tokenizer(family=spec.family)
    processor = family_of(spec).load("preset_processor")(spec, tokenizer)
    model = build_model(spec, dtype="bfloat16" if device == "cuda" else "float32", device=device)
    return save_checkpoint(model, path, tokenizer=tokenizer, video_processor=processor.media, max_shard_size="4GB")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="cosmos-reason1-7b", help="model shape (default cosmos-reason1-7b)")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--vllm-python", default=None, help="the Python that has vLLM (default: $COSMOS_ROS_VLLM_PYTHON, else this one)")
    parser.add_argument("--timeout", type=float, default=420.0, help="seconds for vLLM to come up (default 420)")
    parser.add_argument("--workdir", default=None, help="where the checkpoint goes (default: a temporary folder)")
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    python = args.vllm_python or os.environ.get("COSMOS_ROS_VLLM_PYTHON") or sys.executable
    check = subprocess.run([python, "-c", "import vllm"], capture_output=True, text=True, check=False)
    if check.returncode != 0:
        reason = (check.stderr.strip().splitlines() or ["?"])[-1]
        print(f"vllm_roundtrip: no vLLM at {python}: {reason}", file=sys.stderr)
        return 3

    from cosmos_ros.core.prompts import next_subtask_prompt
    from cosmos_ros.core.types import Clip
    from cosmos_ros.engine.openai_engine import OpenAIEngine

    result: dict = {"preset": args.preset, "device": args.device}
    with tempfile.TemporaryDirectory(prefix="cosmos_ros_vllm_", dir=args.workdir) as work:
        started = time.perf_counter()
        checkpoint = write_checkpoint(args.preset, Path(work) / args.preset, args.device)
        result["checkpoint_s"] = time.perf_counter() - started
        result["checkpoint_gb"] = sum(f.stat().st_size for f in checkpoint.glob("*.safetensors")) / 1e9
        port = free_port()
        command = [sys.executable, "-m", "cosmos_ros.cli", "serve", str(checkpoint), "--device", args.device,
                   "--host", "127.0.0.1", "--port", str(port), "--max-model-len", "4096", "--vllm-python", python,
                   "--", "--enforce-eager"]  # fmt: skip
        if args.device == "cpu":
            command.pop()  # --device cpu is eager already
            command.pop()
        log = Path(work) / "serve.log"
        env = {**os.environ, "XDG_CACHE_HOME": str(Path(work) / "cache")}
        with open(log, "w") as out:
            server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        url = f"http://127.0.0.1:{port}/v1"
        try:
            started = time.perf_counter()
            while True:
                try:
                    urllib.request.urlopen(f"{url}/models", timeout=2).read()
                    break
                except OSError:
                    if server.poll() is not None or time.perf_counter() - started > args.timeout:
                        print(log.read_text(errors="replace")[-4000:], file=sys.stderr)
                        print(f"vllm_roundtrip: vLLM did not come up on {url}", file=sys.stderr)
                        return 1
                    time.sleep(1)
            result["server_ready_s"] = time.perf_counter() - started
            engine = OpenAIEngine(checkpoint.name, server_url=url)
            frames = np.random.default_rng(0).integers(0, 256, (8, 448, 448, 3), dtype=np.uint8)
            clip = Clip(frames=frames, stamps=np.arange(8) / 4.0, fps=4.0)
            prompt = next_subtask_prompt("put the red block on the green pad", ["grasp it", "place it"])
            tokens: list[str] = []
            for round_ in ("first", "second"):  # the second without vLLM's first-request warm-up
                answer = engine.reason(clip, prompt, max_new_tokens=32, on_token=tokens.append)
                result[f"{round_}_latency_s"] = answer.latency_s
            result.update(prompt_tokens=answer.num_prompt_tokens, generated_tokens=answer.num_generated_tokens,
                          streamed_chunks=len(tokens), decode_tok_s=answer.num_generated_tokens / max(answer.stages["decode"], 1e-9))  # fmt: skip
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
    line = json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()})
    print(line)
    if args.out:
        Path(args.out).write_text(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Lightning SFT step time vs a bare torch loop: same model, same batch, same optimizer and clipping.

    python bench/train.py [--steps 20] [--batch 8] [--preset tiny-dense]      (or: cosmos-ros bench train)

Both sides run `SFTModule.loss` on one fixed batch (synthetic frames, the real processor and
prompt) with AdamW + warmup/cosine and gradient clipping at 1.0; the bare loop is what the Trainer
does minus the Trainer. Timings interleave the two (A B A B …, median of `--repeats` runs) so a
noisy shared machine affects both alike. Last line: {"bench": "train", "machine": ..., "metrics": {...}}.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from cosmos_ros.core.prompts import mcq_prompt
from cosmos_ros.core.types import Clip
from cosmos_ros.training.data import Record, collate_examples, encode_example
from cosmos_ros.training.sft import SFTModule


def fixed_batch(module: SFTModule, size: int) -> dict:
    rng = np.random.default_rng(0)
    prompt = mcq_prompt("Could the events in this video happen in the real world?", ("No", "Yes"))
    examples = []
    for i in range(size):
        frames = rng.integers(0, 255, (16, 56, 56, 3), dtype=np.uint8)
        clip = Clip(frames, np.arange(16) / 4.0)
        reply = f"<think>\nThe ball rolls behind the wall.\n</think>\n\n<answer>\n{'AB'[i % 2]}\n</answer>"
        record = Record(None, prompt.text, reply, prompt.options, "AB"[i % 2], "bench")
        examples.append(encode_example(module.processor, clip, record, format_weight=0.03))
    batch = collate_examples(examples, module.tokenizer.pad_token_id)
    batch["records"] = [e.record for e in examples]
    return batch


class _Repeat(torch.utils.data.Dataset):
    def __init__(self, batch, n):
        self.batch, self.n = batch, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return self.batch


def time_lightning(batch: dict, steps: int) -> float:
    module = SFTModule(lr=1e-3, warmup_steps=5)
    loader = DataLoader(_Repeat(batch, steps + 2), batch_size=None, collate_fn=lambda b: b)
    times = []

    class Clock(L.Callback):  # start to start: the whole loop (fetch, hooks, logging), not just the step
        def on_train_batch_start(self, *args):
            now = time.perf_counter()
            if hasattr(self, "t"):
                times.append(now - self.t)
            self.t = now

    trainer = L.Trainer(
        accelerator="cpu", max_steps=steps + 2, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, gradient_clip_val=1.0, callbacks=[Clock()],
    )  # fmt: skip
    trainer.fit(module, train_dataloaders=loader)
    return statistics.median(times[1:])  # first steps warm up allocators


def time_bare(batch: dict, steps: int) -> float:
    module = SFTModule(lr=1e-3, warmup_steps=5)
    module.model.train()
    optimizer = torch.optim.AdamW(module.model.parameters(), lr=1e-3, weight_decay=0.01, betas=(0.9, 0.95))
    times = []
    for _ in range(steps + 2):
        t = time.perf_counter()
        loss, _ = module.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.model.parameters(), 1.0)
        optimizer.step()
        times.append(time.perf_counter() - t)
    return statistics.median(times[2:])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    template = SFTModule()
    batch = fixed_batch(template, args.batch)
    lightning_s, bare_s = [], []
    for _ in range(args.repeats):
        bare_s.append(time_bare(batch, args.steps))
        lightning_s.append(time_lightning(batch, args.steps))
    bare, light = statistics.median(bare_s), statistics.median(lightning_s)
    overhead = light / bare - 1
    print(f"{'loop':<12}{'step ms (median)':>18}")
    print(f"{'bare torch':<12}{bare * 1e3:>18.1f}")
    print(f"{'lightning':<12}{light * 1e3:>18.1f}")
    print(f"overhead: {overhead * 100:+.1f}% (goal <= 10%)")
    machine = f"{platform.machine()} {torch.get_num_threads()} threads, torch {torch.__version__}"
    metrics = {"bare_step_ms": round(bare * 1e3, 2), "lightning_step_ms": round(light * 1e3, 2),
               "lightning_vs_bare_overhead": round(overhead, 4), "batch": args.batch, "tokens": int(batch["input_ids"].numel())}  # fmt: skip
    print(json.dumps({"bench": "train", "machine": machine, "metrics": metrics}))


if __name__ == "__main__":
    main()

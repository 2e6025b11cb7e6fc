"""SFT (see also test_sft) and GRPO on the qwen3_vl family (Cosmos-Reason2's architecture), taught in its own format:
the same reasoning, the answer straight after </think>."""

from __future__ import annotations

import lightning as L
import torch

from cosmos_ros.core.answers import format_reward
from cosmos_ros.training.datamodule import VideoQADataModule
from cosmos_ros.training.grpo import GRPOModule

MODEL = "cosmos-reason2-tiny"


def test_the_reply_is_taught_in_the_reason2_layout(toy_data):
    dm = VideoQADataModule(str(toy_data), model=MODEL, batch_size=2)
    batch = next(iter(dm.train_dataloader()))
    tokenizer = dm.processor.tokenizer
    row = batch["labels"][0]
    reply = tokenizer.decode(row[row >= 0])
    assert "<answer>" not in reply and reply.endswith(tokenizer.eos_token)
    assert format_reward(reply.removesuffix(tokenizer.eos_token), "after_think") == 1.0
    letters = tokenizer.decode(batch["input_ids"][0][batch["answer_mask"][0]])
    assert letters == batch["records"][0].answer  # the weighted answer tokens are the letter after </think>


def test_grpo_runs_its_rollouts_and_rewards_in_the_reason2_format(toy_data):
    module = GRPOModule(model=MODEL, group_size=4, max_new_tokens=4, temperature=1.0, lr=1e-3)
    assert module.processor.answer_format == "after_think"
    dm = VideoQADataModule(str(toy_data), model=MODEL, batch_size=2)
    trainer = L.Trainer(max_epochs=1, limit_train_batches=2, accelerator="cpu", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0)  # fmt: skip
    trainer.fit(module, datamodule=dm)
    metrics = trainer.callback_metrics
    assert 0.0 <= float(metrics["train/reward"]) <= 1.5 and "train/format_reward" in metrics
    assert all(torch.isfinite(p).all() for p in module.model.parameters())

"""SFT: the loss falls on a fixed batch; the LR schedule; a killed run resumes exactly; export loads."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from cosmos_ros.training.datamodule import VideoQADataModule
from cosmos_ros.training.sft import SFTModule, warmup_cosine


@pytest.mark.parametrize("model", ["tiny-dense", "cosmos-reason2-tiny"])
def test_a_few_sft_steps_lower_the_loss_on_a_fixed_batch(toy_data, model):
    dm = VideoQADataModule(str(toy_data), model=model, batch_size=4)
    batch = next(iter(dm.train_dataloader()))
    module = SFTModule(model=model, lr=3e-3)
    optimizer = torch.optim.AdamW(module.model.parameters(), lr=3e-3)
    first, _ = module.loss(batch)
    for _ in range(5):
        loss, _ = module.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    last, _ = module.loss(batch)
    assert last.item() < 0.7 * first.item()


def test_warmup_then_cosine_to_the_floor():
    assert warmup_cosine(0, 10, 100, 0.1) == pytest.approx(0.1)
    assert warmup_cosine(9, 10, 100, 0.1) == pytest.approx(1.0)
    assert warmup_cosine(55, 10, 100, 0.1) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert warmup_cosine(100, 10, 100, 0.1) == pytest.approx(0.1)


class _Kill(Callback):
    def __init__(self, at_step: int):
        self.at_step = at_step

    def on_train_batch_start(self, trainer, *args):
        if trainer.global_step == self.at_step:
            raise SystemExit("killed")


def _fit(root, data, steps, callbacks=(), ckpt_path=None):
    torch.manual_seed(0)
    module = SFTModule(lr=3e-3, warmup_steps=2)
    trainer = L.Trainer(
        max_steps=steps, default_root_dir=root, logger=False, enable_progress_bar=False,
        enable_model_summary=False, use_distributed_sampler=False, gradient_clip_val=1.0,
        callbacks=[ModelCheckpoint(root / "checkpoints", save_last=True, every_n_train_steps=2), *callbacks],
    )  # fmt: skip
    dm = VideoQADataModule(str(data), batch_size=4, format_weight=0.1)
    trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path)
    return module, trainer


def test_a_killed_run_resumes_to_the_same_weights_and_metrics(toy_data, tmp_path):
    whole, whole_trainer = _fit(tmp_path / "a", toy_data, 4)
    with pytest.raises(SystemExit):  # dies mid-epoch (3 batches per epoch) after the step-2 checkpoint
        _fit(tmp_path / "b", toy_data, 4, callbacks=[_Kill(at_step=3)])
    resumed, resumed_trainer = _fit(
        tmp_path / "b", toy_data, 4, ckpt_path=tmp_path / "b/checkpoints/last.ckpt"
    )
    assert resumed_trainer.global_step == whole_trainer.global_step == 4
    for (name, a), (_, b) in zip(whole.model.named_parameters(), resumed.model.named_parameters()):
        assert torch.equal(a, b), name
    loss = whole_trainer.callback_metrics["train/loss"]
    assert resumed_trainer.callback_metrics["train/loss"].item() == loss.item()


def test_the_export_loads_in_the_torch_engine_with_the_same_logits(toy_data, tmp_path):
    from cosmos_ros.core.prompts import mcq_prompt
    from cosmos_ros.core.types import Clip
    from cosmos_ros.engine import create_engine
    from cosmos_ros.training.data import read_video

    module = SFTModule(seed=3)
    module.export(tmp_path / "export")
    engine = create_engine("torch", tmp_path / "export")
    clip = read_video(toy_data / "clips/toy/toy_001.mp4", 4.0, 16)
    prompt = mcq_prompt("Which way does the square move?", ("to the left", "to the right"))
    inputs = module.processor(Clip(clip.frames, clip.stamps), prompt)
    from cosmos_ros.model.processor import collate_video_inputs
    from cosmos_ros.training.sft import forward_logits

    with torch.no_grad():
        ours = forward_logits(module.model.eval(), collate_video_inputs([inputs], 0))[0]
    assert torch.allclose(engine.prompt_logits(clip, prompt), ours, atol=1e-4)
    # and it generates from them: the first greedy token is the module's own argmax there
    reasoning = engine.reason(clip, prompt, max_new_tokens=4)
    assert reasoning.num_generated_tokens >= 1
    first = module.processor.tokenizer.decode([int(ours[-1].argmax())])
    assert reasoning.text.startswith(first)


def test_lora_trains_adapters_only_and_exports_merged_weights(toy_data, tmp_path):
    pytest.importorskip("peft")
    from cosmos_ros.model.checkpoint import load_model

    module = SFTModule(lora={"r": 4, "alpha": 8}, gradient_checkpointing=True)
    trainable = [n for n, p in module.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    batch = next(iter(VideoQADataModule(str(toy_data), batch_size=2).train_dataloader()))
    loss, _ = module.loss(batch)
    loss.backward()
    assert all(p.grad is not None for p in module.model.parameters() if p.requires_grad)
    module.export(tmp_path / "export")
    merged = load_model(tmp_path / "export", "fp32", "cpu")
    assert not any("lora_" in n for n, _ in merged.named_parameters())

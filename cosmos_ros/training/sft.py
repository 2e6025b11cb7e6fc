"""Supervised fine-tuning of a Cosmos-Reason1 preset or checkpoint as a LightningModule.

    module = SFTModule(model="tiny-dense", lr=1e-3, warmup_steps=50)
    L.Trainer(max_steps=600).fit(module, VideoQADataModule("data/sim"))

AdamW, linear warmup then cosine decay to `min_lr_ratio` · lr, per step; gradient clipping is the
Trainer's (`gradient_clip_val`); bf16 through the Trainer's `precision: bf16-mixed` on GPU.
`gradient_checkpointing` trades compute for memory; `lora` (a dict of peft `LoraConfig` fields, e.g.
`{r: 16, alpha: 32, target_modules: [q_proj, v_proj]}`) trains adapters only — for the 7B.
The loss is the per-token weighted cross entropy of `datamodule.weighted_token_loss`.
"""

from __future__ import annotations

import math

import lightning as L
import torch

from cosmos_ros.model.positions import rope_index
from cosmos_ros.training.datamodule import weighted_token_loss

MODEL_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids", "pixel_values_videos",
              "video_grid_thw", "second_per_grid_ts")  # fmt: skip


def load_trainable(source: str, seed: int = 0, dtype: str | None = None):
    """(model, tokenizer, processor, family) of a preset (random init from `seed`) or a checkpoint
    dir, of a family the registry marks trainable (SFT and GRPO alike)."""
    from cosmos_ros.model.bundle import load_bundle
    from cosmos_ros.model.families import family_of, resolve_source

    kind, resolved = resolve_source(source)
    if kind == "preset" and not family_of(resolved).trainable:  # refused before building its weights
        _refuse_untrainable(source, family_of(resolved).name)
    bundle = load_bundle(source, seed=seed, dtype=dtype or "fp32")
    if not family_of(bundle.family).trainable:
        _refuse_untrainable(source, bundle.family)
    return bundle.model.train(), bundle.tokenizer, bundle.processor, bundle.family


def _refuse_untrainable(source, family: str):
    from cosmos_ros.model.families import FAMILIES

    trainable = ", ".join(f"{f.name} ({f.summary})" for f in FAMILIES.values() if f.trainable)
    raise ValueError(f"training supports the families {trainable}; {str(source)!r} is {family}")


def apply_lora(model, lora: dict):
    """Wrap `model` with peft LoRA adapters (peft is optional: an ImportError names the extra)."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("lora needs peft: pip install 'cosmos_ros[train]' (or pip install peft)") from exc
    cfg = dict(lora)
    cfg.setdefault("target_modules", ["q_proj", "k_proj", "v_proj", "o_proj"])
    cfg["lora_alpha"] = cfg.pop("alpha", cfg.pop("lora_alpha", 2 * cfg.get("r", 8)))
    return get_peft_model(model, LoraConfig(**cfg))


def warmup_cosine(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """LR multiplier: linear 0→1 over `warmup` steps, then cosine 1→min_ratio at `total`."""
    if step < warmup:
        return (step + 1) / max(1, warmup)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def model_inputs(batch: dict, dtype: torch.dtype) -> dict:
    """The forward's keyword arguments, with explicit 3-D mRoPE positions (needs `model.model`)."""
    inputs = {k: batch[k] for k in MODEL_KEYS if k in batch}  # no second_per_grid_ts for Qwen3-VL
    inputs["pixel_values_videos"] = inputs["pixel_values_videos"].to(dtype)
    return inputs


def target_span(batch: dict) -> int:
    """Columns from the first position whose next token carries loss to the end (rows are
    left-padded, so every reply ends in the last column): the only logits the loss needs."""
    weighted = (batch["loss_weights"] > 0).any(dim=0).nonzero()
    return int(batch["loss_weights"].shape[1] - weighted[0] + 1) if len(weighted) else 1


def forward_logits(model, batch: dict, keep: int = 0) -> torch.Tensor:
    """(B, keep or L, V) logits of the last `keep` positions (0: all); positions computed as the
    serving engine computes them. Keeping only the reply's logits skips most of the LM head."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    inputs = model_inputs(batch, next(model.parameters()).dtype)
    position_ids, _ = rope_index(base, inputs)
    return model(**inputs, position_ids=position_ids, use_cache=False, logits_to_keep=keep).logits


class OptimizerMixin:
    """AdamW + warmup/cosine for any module with hparams lr, weight_decay, warmup_steps, min_lr_ratio."""

    def configure_optimizers(self):
        hp = self.hparams
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=hp.lr, weight_decay=hp.weight_decay, betas=(0.9, 0.95))
        total = (
            self.trainer.estimated_stepping_batches if self.trainer.max_steps < 0 else self.trainer.max_steps
        )
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_cosine(step, hp.warmup_steps, int(total), hp.min_lr_ratio)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


class SFTModule(OptimizerMixin, L.LightningModule):
    """model: preset name / YAML card (random init from `seed`) or checkpoint directory."""

    def __init__(
        self,
        model: str = "tiny-dense",
        seed: int = 0,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        warmup_steps: int = 50,
        min_lr_ratio: float = 0.1,
        gradient_checkpointing: bool = False,
        lora: dict | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.model, self.tokenizer, self.processor, self.family = load_trainable(model, seed)
        if gradient_checkpointing:
            self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if lora:
            self.model = apply_lora(self.model, lora)

    def loss(self, batch: dict) -> tuple[torch.Tensor, dict]:
        keep = target_span(batch)
        logits = forward_logits(self.model, batch, keep)
        labels, weights = batch["labels"][:, -keep:], batch["loss_weights"][:, -keep:]
        loss = weighted_token_loss(logits, labels, weights)
        with torch.no_grad():  # accuracy on weighted target tokens under teacher forcing: a cheap signal
            target = weights[:, 1:] > 0
            hit = (logits[:, :-1].argmax(-1) == labels[:, 1:]) & target
            token_acc = hit.sum() / target.sum().clamp_min(1)
            answer = batch["answer_mask"][:, -keep:][:, 1:]
            answer_hit = (logits[:, :-1].argmax(-1) == batch["input_ids"][:, -keep:][:, 1:]) & answer
            answer_acc = answer_hit.sum() / answer.sum().clamp_min(1)
        return loss, {"token_acc": token_acc, "answer_acc": answer_acc}

    def training_step(self, batch, batch_idx):
        if batch is None:  # every clip of the batch was unreadable
            return None
        loss, extra = self.loss(batch)
        size = len(batch["records"])
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        self.log("train/token_acc", extra["token_acc"], batch_size=size)
        self.log("train/answer_acc", extra["answer_acc"], batch_size=size)
        return loss

    def validation_step(self, batch, batch_idx):
        if batch is None:
            return
        loss, extra = self.loss(batch)
        size = len(batch["records"])
        self.log("val/loss", loss, prog_bar=True, batch_size=size, sync_dist=True)
        self.log("val/token_acc", extra["token_acc"], batch_size=size, sync_dist=True)
        self.log("val/answer_acc", extra["answer_acc"], prog_bar=True, batch_size=size, sync_dist=True)

    def export(self, path) -> None:
        from cosmos_ros.training.export import export_model

        export_model(self.model, self.tokenizer, self.processor, path)

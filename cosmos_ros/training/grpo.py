"""GRPO with rule rewards (Cosmos-Reason1's RL stage) as a LightningModule.

Per prompt: G completions at `temperature`; reward = accuracy_reward_weight · accuracy_reward +
format_reward_weight · format_reward (both from `cosmos_ros.core.answers`, the parser every engine uses);
advantage (r − mean) / (std + 1e-6) within the group; then `ppo_epochs` updates of the clipped
objective min(ρ·A, clip(ρ, 1−ε_low, 1+ε_high)·A), ρ = π/π_old per token, averaged over all
completion tokens of the batch (token-mean), plus β · KL(π‖π_ref) (k3 estimator) when β > 0.
Groups whose rewards are all equal carry no signal (advantage 0) and are counted; with
`drop_zero_signal_groups` (default) they are also left out of the token mean, where they would
only dilute the others, and a batch with no signal at all makes no update: AdamW would otherwise
still move every weight by its momentum and decay, a step that no reward asked for.
"""

from __future__ import annotations

import copy

import lightning as L
import torch

from cosmos_ros.core.answers import AnswerStatus, accuracy_reward, format_reward, parse_answer
from cosmos_ros.training.rollout import completion_logprobs, repeat_batch, sample
from cosmos_ros.training.sft import OptimizerMixin, apply_lora, load_trainable


def group_advantages(rewards: torch.Tensor, group_size: int, eps: float = 1e-6) -> torch.Tensor:
    """(N·G,) rewards, groups contiguous → (r − group mean) / (group std + eps); std unbiased=False."""
    groups = rewards.view(-1, group_size)
    mean = groups.mean(dim=1, keepdim=True)
    std = groups.std(dim=1, unbiased=False, keepdim=True)
    return ((groups - mean) / (std + eps)).view(-1)


def signal_mask(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """(N·G,) rewards, groups contiguous → (N·G,) bool: whether the completion's group has unequal rewards."""
    groups = rewards.view(-1, group_size)
    return (groups != groups[:, :1]).any(dim=1).repeat_interleave(group_size)


def clipped_policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                        eps_low: float = 0.2, eps_high: float = 0.2, ref_logp: torch.Tensor | None = None,
                        beta: float = 0.0) -> tuple[torch.Tensor, dict]:  # fmt: skip
    """Token-mean clipped surrogate (negated, to minimise). logp/old_logp/mask (B, T), advantages (B,)."""
    ratio = torch.exp(logp - old_logp)
    adv = advantages[:, None]
    surrogate = torch.min(ratio * adv, torch.clamp(ratio, 1 - eps_low, 1 + eps_high) * adv)
    per_token = -surrogate
    stats = {}
    if beta > 0 and ref_logp is not None:
        log_r = ref_logp - logp
        kl = torch.exp(log_r) - log_r - 1  # k3: unbiased, non-negative
        per_token = per_token + beta * kl
        stats["kl"] = (kl * mask).sum() / mask.sum().clamp_min(1)
    loss = (per_token * mask).sum() / mask.sum().clamp_min(1)
    clipped = ((ratio - 1).abs() > torch.where(adv > 0, eps_high, eps_low)).float()
    stats["clip_fraction"] = (clipped * mask).sum() / mask.sum().clamp_min(1)
    return loss, stats


def score(
    texts: list[str],
    records: list,
    group_size: int,
    accuracy_reward_weight: float,
    format_reward_weight: float,
    answer_format: str = "tags",
) -> dict:
    """Reward components per completion; records has one entry per prompt (groups contiguous).
    answer_format: the model's (its processor's): Cosmos-Reason1 "tags" or Reason2 "after_think"."""
    acc, fmt, none = [], [], []
    for i, text in enumerate(texts):
        record = records[i // group_size]
        acc.append(accuracy_reward(text, record.answer, record.options, answer_format))
        fmt.append(format_reward(text, answer_format))
        none.append(float(parse_answer(text, record.options, answer_format).status is AnswerStatus.NONE))
    acc_t, fmt_t = torch.tensor(acc), torch.tensor(fmt)
    return {"reward": accuracy_reward_weight * acc_t + format_reward_weight * fmt_t, "accuracy": acc_t, "format": fmt_t,
            "none": torch.tensor(none)}  # fmt: skip


class GRPOModule(OptimizerMixin, L.LightningModule):
    """model: usually the SFT export directory. Batches come from VideoQADataModule (prompts + references)."""

    def __init__(
        self,
        model: str = "tiny-dense",
        seed: int = 0,
        group_size: int = 8,
        temperature: float = 0.9,
        max_new_tokens: int = 48,
        accuracy_reward_weight: float = 1.0,
        format_reward_weight: float = 1.0,
        eps_low: float = 0.2,
        eps_high: float = 0.2,
        beta: float = 0.0,
        ppo_epochs: int = 2,
        lr: float = 1e-4,
        weight_decay: float = 0.0,
        warmup_steps: int = 5,
        min_lr_ratio: float = 0.1,
        gradient_clip_val: float = 1.0,
        lora: dict | None = None,
        drop_zero_signal_groups: bool = True,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.model, self.tokenizer, self.processor, self.family = load_trainable(model, seed)
        self.reference = None
        if beta > 0:
            self.reference = copy.deepcopy(self.model).eval().requires_grad_(False)
        if lora:
            self.model = apply_lora(self.model, lora)
        self.generator = torch.Generator().manual_seed(seed)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["grpo_generator"] = self.generator.get_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "grpo_generator" in checkpoint:
            self.generator.set_state(checkpoint["grpo_generator"])

    def state_dict(self, *args, **kwargs):
        state = super().state_dict(*args, **kwargs)
        return {k: v for k, v in state.items() if not k.startswith("reference.")}

    def load_state_dict(self, state_dict, strict: bool = True, **kwargs):
        return super().load_state_dict(
            state_dict, strict=False if self.reference is not None else strict, **kwargs
        )

    def rollout(self, batch: dict):
        hp = self.hparams
        prompts = repeat_batch(prompt_only(batch), hp.group_size)
        was_training = self.model.training
        self.model.eval()
        completions = sample(self.model, prompts, self.tokenizer, max_new_tokens=hp.max_new_tokens,
                             temperature=hp.temperature, generator=self.generator)  # fmt: skip
        self.model.train(was_training)
        return prompts, completions

    def training_step(self, batch, batch_idx):
        if batch is None:
            return None
        hp = self.hparams
        prompts, completions = self.rollout(batch)
        scores = score(
            completions.texts,
            batch["records"],
            hp.group_size,
            hp.accuracy_reward_weight,
            hp.format_reward_weight,
            self.processor.answer_format,
        )
        advantages = group_advantages(scores["reward"], hp.group_size)
        signal = signal_mask(scores["reward"], hp.group_size)
        mask = completions.mask * signal[:, None] if hp.drop_zero_signal_groups else completions.mask
        # every DDP process updates when any has signal (they all-reduce gradients in step)
        updated = self.trainer.strategy.reduce_boolean_decision(bool(mask.any()), all=False)
        loss, stats = torch.zeros(()), {"clip_fraction": torch.zeros(())}
        if updated:
            loss, stats = self.update(prompts, completions, advantages, mask)
        size = len(batch["records"])
        metrics = {
            "train/reward": scores["reward"].mean(), "train/accuracy_reward": scores["accuracy"].mean(),
            "train/format_reward": scores["format"].mean(), "train/none_fraction": scores["none"].mean(),
            "train/response_length": completions.mask.sum(1).mean(), "train/loss": loss.detach(),
            "train/clip_fraction": stats["clip_fraction"],
            "train/zero_signal_groups": 1 - signal.float().mean(),
            "train/updated": float(updated),
        }  # fmt: skip
        if "kl" in stats:
            metrics["train/kl"] = stats["kl"]
        self.log_dict(metrics, batch_size=size, prog_bar=False)
        self.log("reward", metrics["train/reward"], prog_bar=True, batch_size=size, logger=False)
        return loss.detach()

    def update(self, prompts, completions, advantages, mask):
        """`ppo_epochs` clipped-objective updates on one rollout; the loss and stats of the last."""
        hp = self.hparams
        with torch.no_grad():
            old_logp = completion_logprobs(self.model, prompts, completions)
            ref_logp = (
                completion_logprobs(self.reference, prompts, completions)
                if self.reference is not None
                else None
            )
        optimizer, schedule = self.optimizers(), self.lr_schedulers()
        for _ in range(hp.ppo_epochs):
            logp = completion_logprobs(self.model, prompts, completions)
            loss, stats = clipped_policy_loss(logp, old_logp, advantages, mask, hp.eps_low, hp.eps_high,
                                              ref_logp, hp.beta)  # fmt: skip
            optimizer.zero_grad()
            self.manual_backward(loss)
            self.clip_gradients(
                optimizer, gradient_clip_val=hp.gradient_clip_val, gradient_clip_algorithm="norm"
            )
            optimizer.step()
            schedule.step()  # per update: trainer.max_steps counts updates (training steps × ppo_epochs)
        return loss.detach(), stats

    def validation_step(self, batch, batch_idx):
        if batch is None:
            return
        prompts = prompt_only(batch)
        completions = sample(self.model, prompts, self.tokenizer, max_new_tokens=self.hparams.max_new_tokens,
                             temperature=0.0)  # fmt: skip
        scores = score(completions.texts, batch["records"], 1, 1.0, 0.0, self.processor.answer_format)
        size = len(batch["records"])
        self.log("val/accuracy", scores["accuracy"].mean(), prog_bar=True, batch_size=size, sync_dist=True)
        self.log("val/format_reward", scores["format"].mean(), batch_size=size, sync_dist=True)

    def export(self, path) -> None:
        from cosmos_ros.training.export import export_model

        export_model(self.model, self.tokenizer, self.processor, path)


def prompt_only(batch: dict) -> dict:
    """A training batch (left-padded prompt + reference reply per row) → its prompts alone,
    left-padded again so every row's next token is in the last column."""
    from cosmos_ros.model.processor import left_pad

    out = {k: batch[k] for k in ("pixel_values_videos", "video_grid_thw", "second_per_grid_ts") if k in batch}
    width = batch["input_ids"].shape[1]
    for key in ("input_ids", "attention_mask", "mm_token_type_ids"):
        rows = []
        for row, prompt_len in enumerate(batch["prompt_lengths"].tolist()):
            start = width - int(batch["attention_mask"][row].sum())
            rows.append(batch[key][row, start : start + prompt_len][None])
        out[key] = left_pad(rows, 0)
    return out

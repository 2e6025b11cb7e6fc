"""GRPO pieces: group advantages, the clipped token-mean objective, rewards from core, a step on a toy reward."""

from __future__ import annotations

import pytest
import torch

from cosmos_ros.core.answers import accuracy_reward, format_reward
from cosmos_ros.training.data import Record
from cosmos_ros.training.grpo import clipped_policy_loss, group_advantages, score, signal_mask


def test_advantages_are_normalized_within_each_group():
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 2.0, 2.0, 0.0, 0.0])
    # group 1: mean 0.25, std sqrt(3)/4; group 2: mean 1, std 1
    s = 3**0.5 / 4
    expected = torch.tensor([0.75 / s, -0.25 / s, -0.25 / s, -0.25 / s, 1.0, 1.0, -1.0, -1.0])
    assert torch.allclose(group_advantages(rewards, 4), expected, atol=1e-5)


def test_a_group_with_equal_rewards_has_zero_advantage():
    assert torch.equal(group_advantages(torch.tensor([1.0, 1.0, 1.0]), 3), torch.zeros(3))


def test_clipped_loss_is_the_token_mean_surrogate_inside_the_trust_region():
    logp = torch.tensor([[-1.0, -2.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    loss, stats = clipped_policy_loss(logp, logp, torch.tensor([2.0]), mask)
    assert loss.item() == pytest.approx(-2.0)  # ratio 1: −mean(A) over the two real tokens
    assert stats["clip_fraction"].item() == 0.0


def test_clipping_stops_the_gradient_beyond_one_plus_epsilon():
    old = torch.zeros(1, 2)
    logp = torch.log(torch.tensor([[1.5, 1.1]])).requires_grad_()
    loss, stats = clipped_policy_loss(logp, old, torch.tensor([1.0]), torch.ones(1, 2))
    loss.backward()
    assert logp.grad[0, 0] == 0 and logp.grad[0, 1] != 0  # 1.5 > 1.2 is clipped, 1.1 is not
    assert loss.item() == pytest.approx(-(1.2 + 1.1) / 2)
    assert stats["clip_fraction"].item() == 0.5


def test_kl_term_is_zero_at_the_reference_and_positive_away_from_it():
    logp = torch.tensor([[-1.0, -1.0]])
    _, at_ref = clipped_policy_loss(logp, logp, torch.zeros(1), torch.ones(1, 2), ref_logp=logp, beta=0.1)
    _, away = clipped_policy_loss(logp, logp, torch.zeros(1), torch.ones(1, 2), ref_logp=logp - 0.5, beta=0.1)
    assert at_ref["kl"].item() == 0.0 and away["kl"].item() > 0


def test_rewards_are_the_core_rewards_weighted():
    record = Record(video=None, prompt_text="", reply="", options=("left", "right"), answer="B", category="t")
    texts = [
        "<think>\nr\n</think>\n\n<answer>\nB\n</answer>",  # right and strict
        "<think>\nr\n</think>\n<answer>\nB\n</answer>",  # right, missing blank line
        "<think>\nr\n</think>\n\n<answer>\nA\n</answer>",  # wrong, strict
        "<answer>\nnone\n</answer>",
    ]
    scores = score(texts, [record], 4, accuracy_reward_weight=1.0, format_reward_weight=0.5)
    for i, text in enumerate(texts):
        expected = accuracy_reward(text, "B", record.options) + 0.5 * format_reward(text)
        assert scores["reward"][i].item() == pytest.approx(expected)
    assert scores["reward"].tolist() == [1.5, 1.0, 0.5, 0.0]
    assert scores["none"].tolist() == [0, 0, 0, 1]


def test_a_grpo_step_raises_a_toy_reward(toy_data):
    """Reward: 1 when the first generated token is the one a cold (T = 0.3) random model samples most
    often — about a third of the samples at first. A few GRPO updates make it more common."""
    from cosmos_ros.training.datamodule import VideoQADataModule
    from cosmos_ros.training.grpo import GRPOModule, prompt_only
    from cosmos_ros.training.rollout import completion_logprobs, repeat_batch, sample

    torch.manual_seed(0)
    module = GRPOModule(model="tiny-dense", group_size=8, max_new_tokens=3, temperature=1.0, lr=3e-3)
    dm = VideoQADataModule(str(toy_data), batch_size=2)
    batch = next(iter(dm.train_dataloader()))
    prompts = repeat_batch(prompt_only(batch), 8)
    optimizer = torch.optim.Adam(module.model.parameters(), lr=3e-3)

    def rollout(seed):
        out = sample(
            module.model,
            prompts,
            module.tokenizer,
            max_new_tokens=2,
            temperature=0.3,
            generator=torch.Generator().manual_seed(seed),
        )
        return out

    target = int(torch.mode(rollout(0).tokens[:, 0]).values)

    def reward_of(out):
        return (out.tokens[:, 0] == target).float()

    before = torch.stack([reward_of(rollout(100 + s)).mean() for s in range(3)]).mean()
    for step in range(6):
        out = rollout(step)
        advantages = group_advantages(reward_of(out), 8)
        with torch.no_grad():
            old = completion_logprobs(module.model, prompts, out)
        for _ in range(2):
            logp = completion_logprobs(module.model, prompts, out)
            loss, _ = clipped_policy_loss(logp, old, advantages, out.mask)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    after = torch.stack([reward_of(rollout(100 + s)).mean() for s in range(3)]).mean()
    assert after > before + 0.1, (before, after)


def test_signal_mask_marks_the_groups_whose_rewards_differ():
    rewards = torch.tensor([1.5, 1.5, 1.5, 0.5, 1.5, 0.5, 0.0, 0.0, 0.0])
    assert signal_mask(rewards, 3).tolist() == [False] * 3 + [True] * 3 + [False] * 3


@pytest.mark.parametrize("rewards", [[1.0] * 8 + [0.0] * 8, [1.0] * 8 + [0.0, 1.0] * 4])
def test_a_rollout_without_signal_makes_no_update(toy_data, monkeypatch, rewards):
    """All groups equal: no optimizer step (AdamW would still move every weight by momentum and
    decay). One group with signal: one step, and the loss is its token mean alone."""
    import lightning as L

    from cosmos_ros.training import grpo
    from cosmos_ros.training.datamodule import VideoQADataModule

    def constant_score(texts, records, group_size, *weights):
        r = torch.tensor(rewards)
        return {"reward": r, "accuracy": r, "format": torch.ones_like(r), "none": torch.zeros_like(r)}

    monkeypatch.setattr(grpo, "score", constant_score)
    seen = []
    loss_fn = grpo.clipped_policy_loss
    monkeypatch.setattr(
        grpo, "clipped_policy_loss", lambda *a, **k: seen.append(a[3].clone()) or loss_fn(*a, **k)
    )
    torch.manual_seed(0)
    module = grpo.GRPOModule(model="tiny-dense", group_size=8, max_new_tokens=3, ppo_epochs=1, lr=1e-2)
    before = {k: v.clone() for k, v in module.model.state_dict().items()}
    trainer = L.Trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=0, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        accelerator="cpu")  # fmt: skip
    trainer.fit(module, VideoQADataModule(str(toy_data), batch_size=2))
    changed = any(not torch.equal(v, before[k]) for k, v in module.model.state_dict().items())
    with_signal = len(set(rewards[8:])) > 1  # the first group is always all equal
    assert trainer.global_step == int(with_signal) and changed == with_signal
    if with_signal:
        (mask,) = seen
        assert mask[:8].sum() == 0 and mask[8:].sum() > 0  # the equal group is left out of the mean
    else:
        assert seen == []

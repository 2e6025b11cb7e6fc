"""`cosmos-ros train`: LightningCLI run from the shipped YAML, exporting the best validated weights."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from cosmos_ros.training.cli import main

CONFIG = Path(__file__).resolve().parents[2] / "training" / "sft_tiny.yaml"


def sft_args(data: Path, root: Path, max_steps: int) -> list[str]:
    return [
        "train", "sft", "--config", str(CONFIG), f"--data.data_dirs=[{data}]", "--data.val_split=test",
        "--data.batch_size=4", "--data.eval_batch_size=4", "--data.hflip_categories=[toy]",
        f"--trainer.max_steps={max_steps}", "--trainer.val_check_interval=2", "--trainer.log_every_n_steps=1",
        f"--trainer.default_root_dir={root}", "--model.warmup_steps=1", "--checkpoint_every=2",
        "--select=val/answer_acc",
    ]  # fmt: skip


def logged_rounds(log: Path) -> list[tuple[int, float]]:
    rows = log.read_text().splitlines()
    header = rows[0].split(",")
    step, column = header.index("step"), header.index("val/answer_acc")
    cells = [r.split(",") for r in rows[1:]]
    return [(int(c[step]), float(c[column])) for c in cells if c[column]]


def last_summary(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_select_exports_the_weights_of_the_best_validation_round(toy_data, tmp_path, capsys):
    root = tmp_path / "run"
    assert main(sft_args(toy_data, root, 6)) == 0
    selected = last_summary(capsys)["selected"]
    assert selected["metric"] == "val/answer_acc" and selected["step"] in (2, 4, 6)
    rounds = logged_rounds(root / "logs/version_0/metrics.csv")
    assert len(rounds) == 3  # the last step's round ran in the fit: no extra one after it
    assert selected["value"] == max(value for _, value in rounds)
    best = torch.load(root / "best/best.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    exported = load_file(root / "export/model.safetensors")
    name = next(k for k in exported if "embed_tokens" in k)
    source = next(v for k, v in best.items() if k.endswith(name.split("model.", 1)[-1]))
    assert torch.equal(exported[name], source)


def test_final_weights_between_rounds_are_validated_and_may_be_the_ones_exported(toy_data, tmp_path, capsys):
    root = tmp_path / "run"
    assert main(sft_args(toy_data, root, 5)) == 0  # rounds after steps 2 and 4; step 5 ends the fit
    selected = last_summary(capsys)["selected"]
    rounds = logged_rounds(root / "logs/version_0/metrics.csv")
    assert len(rounds) == 3, rounds  # 2, 4 and the final weights'
    assert selected["value"] == max(value for _, value in rounds)
    exported = load_file(root / "export/model.safetensors")
    best = torch.load(root / "best/best.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    if selected["step"] == 5:  # the final weights won: exported as they are, reloaded from no checkpoint
        step4 = torch.load(root / "checkpoints/last.ckpt", map_location="cpu", weights_only=True)
        assert step4["global_step"] == 4  # no checkpoint holds step 5's weights
        assert not same_weights(exported, best) and not same_weights(exported, step4["state_dict"])
    else:
        assert same_weights(exported, best)


def same_weights(exported: dict, state_dict: dict) -> bool:
    """Every exported tensor equals the checkpoint's. The checkpoint's names carry the module's
    prefix and the export's are HF's, so each is matched by its name's ending where only one
    checkpoint tensor has that ending (most; "model.norm.weight" ends many)."""
    pairs = []
    for name, tensor in exported.items():
        matches = [v for k, v in state_dict.items() if k.endswith(name.split("model.", 1)[-1])]
        if len(matches) == 1:
            pairs.append((tensor, matches[0]))
    assert len(pairs) > len(exported) // 2, "too few tensors matched to compare"
    return all(torch.equal(a, b) for a, b in pairs)


def test_a_stopped_run_resumed_elsewhere_validates_its_final_weights_and_keeps_its_best(
    toy_data, tmp_path, capsys
):
    import shutil

    root = tmp_path / "run"
    assert main(sft_args(toy_data, root, 4)) == 0
    first = last_summary(capsys)["selected"]
    # As if stopped during the last step's round: the last checkpoint was written before it ran.
    state = torch.load(root / "checkpoints/last.ckpt", map_location="cpu", weights_only=True)
    step = next(v for k, v in state["callbacks"].items() if "ValidatedStep" in k)["step"]
    assert step == 2  # the round after step 4 came after last.ckpt
    moved = tmp_path / "moved"
    shutil.move(root, moved)  # Lightning then restores only the best path (now gone), not its score
    assert main([*sft_args(toy_data, moved, 4), "--resume=auto"]) == 0
    again = last_summary(capsys)["selected"]
    rerun = logged_rounds(moved / "logs/version_1/metrics.csv")
    assert len(rerun) == 1  # the final weights, validated once more
    assert again["value"] == max(first["value"], rerun[0][1])

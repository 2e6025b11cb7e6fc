"""`cosmos-ros train`: LightningCLI run from the shipped YAML, exporting the best validated weights."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from cosmos_ros.training.cli import main

CONFIG = Path(__file__).resolve().parents[2] / "training" / "sft_tiny.yaml"


def test_select_exports_the_weights_of_the_best_validation_round(toy_data, tmp_path, capsys):
    root = tmp_path / "run"
    args = [
        "train", "sft", "--config", str(CONFIG), f"--data.data_dirs=[{toy_data}]", "--data.val_split=test",
        "--data.batch_size=4", "--data.eval_batch_size=4", "--data.hflip_categories=[toy]",
        "--trainer.max_steps=6", "--trainer.val_check_interval=2", "--trainer.log_every_n_steps=1",
        f"--trainer.default_root_dir={root}", "--model.warmup_steps=1", "--checkpoint_every=2",
        "--select=val/answer_acc",
    ]  # fmt: skip
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    selected = summary["selected"]
    assert selected["metric"] == "val/answer_acc" and selected["step"] in (2, 4, 6)
    rows = (root / "logs/version_0/metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    column = header.index("val/answer_acc")
    logged = [float(r.split(",")[column]) for r in rows[1:] if r.split(",")[column]]
    assert selected["value"] == max(logged)
    best = torch.load(root / "best/best.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    exported = load_file(root / "export/model.safetensors")
    name = next(k for k in exported if "embed_tokens" in k)
    source = next(v for k, v in best.items() if k.endswith(name.split("model.", 1)[-1]))
    assert torch.equal(exported[name], source)

"""gen-data: files, splits without leakage, resuming, corrupt clips regenerated."""

from __future__ import annotations

import json

import pytest

from cosmos_ros.sim.cli import main as gen_data
from cosmos_ros.sim.dataset import check_clip, generate_dataset, leakage, load_annotations, split_of
from cosmos_ros.sim.video import read_mp4


@pytest.fixture(scope="module")
def dataset(configs, tmp_path_factory):
    out = tmp_path_factory.mktemp("dataset")
    chosen = [configs["arrow_of_time"], configs["manipulation"]]
    report = generate_dataset(chosen, 3, out)
    return out, chosen, report


def test_every_clip_has_a_video_annotation_and_usd(dataset):
    out, configs, report = dataset
    assert report.generated == 6 and not report.failed
    for annotation in load_annotations(out, configs, 3):
        for video in annotation["videos"].values():
            assert read_mp4(out / video["path"]).shape[0] == video["frames"]
        assert (out / annotation["usd"]["path"]).is_file()


def test_qa_lines_are_in_the_cosmos_conversation_shape(dataset):
    out, _, _ = dataset
    lines = [
        json.loads(line)
        for split in ("train", "val", "test")
        for line in (out / f"{split}.jsonl").read_text().splitlines()
    ]
    assert lines
    for record in lines:
        assert {"video", "question", "options", "answer", "category", "think", "conversations"} <= set(record)
        assert (out / record["video"]).is_file()
        human, gpt = record["conversations"]
        assert human["value"].startswith("<video>\n") and f"\n{record['answer']}. " in human["value"]
        assert gpt["value"].endswith(f"<answer>\n{record['answer']}\n</answer>")


def test_the_card_counts_categories_and_answers(dataset):
    out, _, _ = dataset
    card = json.loads((out / "card.json").read_text())
    assert card["clips"] == 6 and card["leakage"] == []
    assert sum(card["clips_per_split"].values()) == 6
    assert any(c.startswith("manipulation/") for c in card["answer_letters"])
    assert "Shortcut probes" in (out / "README.md").read_text()


def test_splits_follow_the_seed_and_do_not_leak(dataset):
    out, configs, _ = dataset
    annotations = load_annotations(out, configs, 3)
    assert all(a["split"] == split_of(a["seed"]) for a in annotations)
    assert leakage(annotations) == []
    twin = dict(annotations[0], split="test" if annotations[0]["split"] != "test" else "train")
    assert leakage(annotations + [twin])


def test_a_rerun_keeps_intact_clips(dataset):
    out, configs, _ = dataset
    report = generate_dataset(configs, 3, out)
    assert report.skipped == 6 and report.generated == 0


def test_a_corrupt_clip_is_detected_and_regenerated(dataset):
    out, configs, _ = dataset
    cfg = configs[0]
    annotation = load_annotations(out, [cfg], 1)[0]
    video = out / annotation["videos"]["clip"]["path"]
    original = video.read_bytes()
    video.write_bytes(original[: len(original) // 2])  # a truncated write
    assert "corrupt" in check_clip(out, cfg, 0)
    report = generate_dataset(configs, 3, out)
    assert report.generated == 1 and "arrow_of_time_000000" in report.regenerated
    assert video.read_bytes() == original  # same seed, same clip
    assert check_clip(out, cfg, 0) == ""


def test_a_half_written_clip_is_regenerated(dataset):
    out, configs, _ = dataset
    cfg = configs[1]
    (out / "annotations" / cfg.task / f"{cfg.task}_000002.json").unlink()  # died before the annotation
    report = generate_dataset(configs, 3, out)
    assert report.generated == 1 and report.skipped == 5


def test_the_command_line_writes_a_contact_sheet_per_task(tmp_path):
    command = ["gen-data", "--tasks", "spatial_puzzle", "--n", "1", "--out", str(tmp_path)]
    code = gen_data([*command, "--width", "64", "--height", "64", "--frames", "4", "--preview", "--no-usd"])
    assert code == 0
    assert (tmp_path / "preview" / "spatial_puzzle.png").is_file()
    assert gen_data(["gen-data", "--tasks", "juggling", "--n", "1", "--out", str(tmp_path)]) == 2

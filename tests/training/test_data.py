"""VideoQADataModule: records, loss masks, bad lines and clips counted, bucketed global batches."""

from __future__ import annotations

import json
import shutil

import torch

from cosmos_ros.training.data import IGNORE, parse_record, read_records, shorten_think
from cosmos_ros.training.datamodule import BucketBatchSampler, VideoQADataModule


def test_loss_is_on_the_assistant_turn_only(toy_data):
    dm = VideoQADataModule(str(toy_data), batch_size=4)
    batch = next(iter(dm.train_dataloader()))
    for row, prompt_len in enumerate(batch["prompt_lengths"].tolist()):
        start = batch["input_ids"].shape[1] - int(batch["attention_mask"][row].sum())
        targets = (batch["labels"][row] != IGNORE).nonzero().flatten()
        assert int(targets[0]) == start + prompt_len  # first target: first reply token
        assert int(targets[-1]) == batch["input_ids"].shape[1] - 1  # through the end-of-turn token
        assert (batch["mm_token_type_ids"][row, start + prompt_len :] == 0).all()


def test_answer_only_weights_mark_exactly_the_answer_letter(toy_data):
    dm = VideoQADataModule(str(toy_data), batch_size=4, answer_weight=1.0, format_weight=0.0)
    batch = next(iter(dm.train_dataloader()))
    tok = dm.processor.tokenizer
    for row, record in enumerate(batch["records"]):
        marked = batch["labels"][row][batch["loss_weights"][row] > 0]
        assert tok.decode(marked.tolist()) == record.answer


def test_bad_lines_are_skipped_and_counted(toy_data, tmp_path):
    shutil.copytree(toy_data / "clips", tmp_path / "clips")
    good = (toy_data / "train.jsonl").read_text().splitlines()
    no_conversation = json.dumps({"video": "clips/toy/toy_000.mp4", "answer": "A"})
    (tmp_path / "train.jsonl").write_text(
        "\n".join([good[0], "{not json", no_conversation, "[1, 2]", good[1]]) + "\n"
    )
    dm = VideoQADataModule(str(tmp_path), batch_size=2)
    assert len(dm.dataset("train")) == 2
    assert dm.skips == {"bad_json": 1, "no_conversation": 1, "not_an_object": 1}


def test_unreadable_clips_are_skipped_and_counted(toy_data, tmp_path):
    shutil.copytree(toy_data / "clips", tmp_path / "clips")
    shutil.copy(toy_data / "train.jsonl", tmp_path / "train.jsonl")
    (tmp_path / "clips/toy/toy_000.mp4").write_bytes(b"not an mp4")
    (tmp_path / "clips/toy/toy_001.mp4").unlink()
    dm = VideoQADataModule(str(tmp_path), batch_size=12)
    batches = list(dm.train_dataloader())
    assert sum(len(b["records"]) for b in batches) == 10
    assert dm.skips == {"unreadable_clip": 2}


def test_record_without_answer_field_reads_the_letter_from_the_reply(tmp_path):
    line = json.dumps(
        {
            "video": "a.mp4",
            "conversations": [
                {"from": "human", "value": "<video>\nQ?"},
                {"from": "gpt", "value": "<think>\nx\n</think>\n\n<answer>\nB\n</answer>"},
            ],
        }
    )
    assert parse_record(line, tmp_path).answer == "B"


def test_shorten_think_keeps_the_first_sentences():
    reply = "<think>\nOne. Two! Three?\n</think>\n\n<answer>\nA\n</answer>"
    assert shorten_think(reply, 2) == "<think>\nOne. Two!\n</think>\n\n<answer>\nA\n</answer>"
    assert shorten_think(reply, None) == reply
    assert shorten_think(reply, 0) == "<think>\n\n</think>\n\n<answer>\nA\n</answer>"  # still strict format


def test_bucket_sampler_splits_each_global_batch_between_ranks():
    lengths = list(range(40))
    whole = BucketBatchSampler(lengths, 8, seed=3)
    ranks = [BucketBatchSampler(lengths, 8, seed=3, num_replicas=2, rank=r) for r in (0, 1)]
    for batch, part0, part1 in zip(whole, *ranks):
        assert part0 + part1 == batch
    assert max(b[-1] - b[0] for b in whole.global_batches()) < 40  # sorted within pools


def test_bucket_sampler_reshuffles_per_epoch_reproducibly():
    sampler = BucketBatchSampler(list(range(64)), 8, seed=0)
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first
    sampler.set_epoch(0)
    assert list(sampler) == first


def test_read_records_resolves_videos_next_to_the_jsonl(toy_data):
    records = read_records(toy_data / "train.jsonl")
    assert all(r.video.is_file() for r in records) and torch.tensor(len(records)) == 12


def test_mirroring_flips_listed_categories_in_half_the_epochs_reproducibly(toy_data):
    from cosmos_ros.training.datamodule import mirrors

    plain = VideoQADataModule(str(toy_data), batch_size=4).dataset("train")
    dm = VideoQADataModule(str(toy_data), batch_size=4, hflip_categories=["toy"])
    flipped = dm.dataset("train")
    seen = {True: 0, False: 0}
    for epoch in range(4):
        flipped.epoch = epoch
        for index in range(len(flipped)):
            mirrored = mirrors(dm.hparams.seed, epoch, index)
            seen[mirrored] += 1
            a = flipped[index].inputs.pixel_values_videos
            b = plain[index].inputs.pixel_values_videos
            assert torch.equal(a, b) is not mirrored
    assert seen[True] > 0 and seen[False] > 0
    # the answer is unchanged, and evaluation splits and unlisted categories are never mirrored
    assert flipped[0].record.answer == plain[0].record.answer
    assert dm.dataset("test").hflip_categories == ()
    other = VideoQADataModule(str(toy_data), batch_size=4, hflip_categories=["object_permanence"])
    assert all(torch.equal(other.dataset("train")[i].inputs.pixel_values_videos,
                           plain[i].inputs.pixel_values_videos) for i in range(len(plain)))  # fmt: skip


def test_mirrors_is_a_pure_fair_coin():
    from cosmos_ros.training.datamodule import mirrors

    draws = [mirrors(0, epoch, index) for epoch in range(20) for index in range(50)]
    assert draws == [mirrors(0, epoch, index) for epoch in range(20) for index in range(50)]
    assert 0.4 < sum(draws) / len(draws) < 0.6


def test_read_video_sees_a_long_clip_whole_and_keeps_its_last_frame(tmp_path):
    import numpy as np

    from cosmos_ros.sim.video import write_mp4
    from cosmos_ros.training.data import read_video

    frames = np.zeros((32, 32, 32, 3), np.uint8)
    frames[:, :, :, 0] = (np.arange(32) * 8)[:, None, None]  # frame i is red level 8 i
    write_mp4(tmp_path / "clip.mp4", frames, 4.0)
    clip = read_video(tmp_path / "clip.mp4", 4.0, 16)
    assert clip.frames.shape[0] == 16
    levels = clip.frames[:, 16, 16, 0].astype(int)
    assert abs(levels[0] - 0) <= 4 and abs(levels[-1] - 248) <= 4  # first and last frame both in
    assert clip.stamps[-1] == 31 / 4.0 and np.all(np.diff(clip.stamps) > 0)
    short = read_video(tmp_path / "clip.mp4", 4.0, 64)
    assert short.frames.shape[0] == 32 and short.stamps[1] == 0.25

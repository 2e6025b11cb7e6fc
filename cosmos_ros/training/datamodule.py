"""`VideoQADataModule`: JSONL splits + mp4 clips → length-bucketed, left-padded training batches.

    dm = VideoQADataModule("data/sim", model="tiny-dense", batch_size=16, answer_weight=1, format_weight=0)

`data_dirs` hold `{train,val,test}.jsonl` (gen-data's layout); several are concatenated. Clips are
decoded once and kept in memory (uint8, small at the tiny preset's resolution). Batching: each epoch
the indices are shuffled from `seed + epoch`, cut into pools of `bucket_pool` batches, sorted by
length inside a pool and batched, and the batches shuffled — similar lengths, little padding.
Under DDP each global batch is split between the ranks, so N processes see the same global batches
as one (the sampler is ours: set the Trainer's `use_distributed_sampler: false`).
"""

from __future__ import annotations

import dataclasses
import logging
import random
import zlib
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from cosmos_ros.training.data import (
    Record,
    SkipCounter,
    collate_examples,
    encode_example,
    load_processor,
    read_split,
    read_video,
)

log = logging.getLogger(__name__)


def mirrors(seed: int, epoch: int, index: int) -> bool:
    """Whether example `index` is shown mirrored in `epoch`: a fair coin that is a pure function of
    its arguments, so a resumed run sees the same augmentation as an uninterrupted one."""
    return zlib.crc32(f"{seed}:{epoch}:{index}".encode()) & 1 == 1


class VideoQADataset(Dataset):
    """Records → `Example`s (None for a clip that does not decode; counted once per clip).

    hflip_categories: category prefixes whose answers do not change when the video is mirrored
    left-right; their clips are mirrored in half of the epochs (`mirrors`), set `epoch` per epoch.
    """

    def __init__(self, records: list[Record], processor, *, fps: float, max_frames: int,
                 skips: SkipCounter, encode_kwargs: dict | None = None,
                 hflip_categories: tuple[str, ...] = (), seed: int = 0):  # fmt: skip
        self.records, self.processor, self.fps, self.max_frames = records, processor, fps, max_frames
        self.skips, self.encode_kwargs = skips, encode_kwargs or {}
        self.hflip_categories, self.seed, self.epoch = tuple(hflip_categories), seed, 0
        self._clips: dict[Path, object] = {}

    def __len__(self) -> int:
        return len(self.records)

    def clip(self, path: Path):
        if path not in self._clips:
            try:
                self._clips[path] = read_video(path, self.fps, self.max_frames)
            except Exception as exc:  # noqa: BLE001 - any decoder failure means: skip this clip
                self._clips[path] = None
                self.skips.note("unreadable_clip", f"{path} ({type(exc).__name__}: {exc})"[:300])
        return self._clips[path]

    def __getitem__(self, index: int):
        record = self.records[index]
        clip = self.clip(record.video)
        if clip is None:
            return None
        if record.category.startswith(self.hflip_categories) and mirrors(self.seed, self.epoch, index):
            clip = dataclasses.replace(clip, frames=np.ascontiguousarray(clip.frames[:, :, ::-1]))
        return encode_example(self.processor, clip, record, **self.encode_kwargs)

    def length(self, index: int) -> int:
        record = self.records[index]
        return len(record.prompt_text) + len(record.reply)


class BucketBatchSampler(Sampler[list[int]]):
    """Global batches of similar length, reshuffled per epoch; this rank's share of each."""

    def __init__(self, lengths: list[int], batch_size: int, *, shuffle: bool = True, seed: int = 0,
                 bucket_pool: int = 50, drop_last: bool = False, num_replicas: int = 1, rank: int = 0):  # fmt: skip
        if batch_size % num_replicas:
            raise ValueError(f"global batch_size {batch_size} must divide among {num_replicas} processes")
        self.lengths, self.batch_size, self.shuffle, self.seed = lengths, batch_size, shuffle, seed
        self.bucket_pool, self.drop_last = bucket_pool, drop_last
        self.num_replicas, self.rank, self.epoch = num_replicas, rank, 0
        self.skip = 0  # batches of this epoch already trained on (set when resuming mid-epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def global_batches(self) -> list[list[int]]:
        order = list(range(len(self.lengths)))
        rng = random.Random(self.seed + self.epoch)
        if self.shuffle:
            rng.shuffle(order)
        pool = self.batch_size * self.bucket_pool
        batches = []
        for start in range(0, len(order), pool):
            chunk = sorted(order[start : start + pool], key=self.lengths.__getitem__)
            batches += [chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        if self.drop_last or self.num_replicas > 1:
            batches = [b for b in batches if len(b) == self.batch_size]
        if self.shuffle:
            rng.shuffle(batches)
        return batches

    def __iter__(self):
        share = self.batch_size // self.num_replicas
        skip, self.skip = self.skip, 0
        for batch in self.global_batches()[skip:]:
            yield batch[self.rank * share : (self.rank + 1) * share] if self.num_replicas > 1 else batch

    def __len__(self) -> int:
        return len(self.global_batches())


class ResumableLoader(DataLoader):
    """A DataLoader over a BucketBatchSampler that starts each iteration where training stands:
    `position()` → (epoch, batches to skip) seeds the shuffle and, right after a resume mid-epoch,
    skips the batches already trained on, so a killed run continues exactly. Without a position
    callable each iteration is the next epoch."""

    def __init__(self, *args, position=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.position, self._iterations = position, 0

    def __iter__(self):
        epoch, skip = self.position() if self.position else (self._iterations, 0)
        self._iterations += 1
        self.batch_sampler.set_epoch(epoch)
        self.batch_sampler.skip = skip
        self.dataset.epoch = epoch
        return super().__iter__()


class VideoQADataModule(L.LightningDataModule):
    """data_dirs: folders with train/val/test JSONL; model: preset name or checkpoint dir (its processor).

    batch_size is global (split among DDP processes). answer_weight / format_weight: loss weight of
    the answer-letter tokens / the other assistant tokens. think_sentences: keep that many sentences
    of the reference reasoning (None: all). fps / max_frames: clip sampling (None: the processor's fps).
    hflip_categories: category prefixes (e.g. `[object_permanence, arrow_of_time]`) whose training
    clips are mirrored left-right in half of the epochs — only where a mirror keeps the answer
    (not the spatial puzzle, whose answer names patch positions).
    """

    def __init__(
        self,
        data_dirs: list[str] | str = "data/sim",
        model: str = "tiny-dense",
        batch_size: int = 16,
        eval_batch_size: int = 32,
        train_split: str = "train",
        val_split: str = "val",
        test_split: str = "test",
        answer_weight: float = 1.0,
        format_weight: float = 1.0,
        think_sentences: int | None = None,
        fps: float | None = None,
        max_frames: int = 16,
        bucket_pool: int = 50,
        limit_train: int | None = None,
        limit_eval: int | None = None,
        seed: int = 0,
        hflip_categories: list[str] | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.data_dirs = [data_dirs] if isinstance(data_dirs, str) else list(data_dirs)
        self.processor = load_processor(model)
        self.fps = fps or self.processor.video.default_fps
        self.skips = SkipCounter()
        self.datasets: dict[str, VideoQADataset] = {}
        self._resume_skip = 0

    def records(self, split: str) -> list[Record]:
        return read_split(self.data_dirs, split, self.skips)

    def dataset(self, split: str) -> VideoQADataset:
        if split not in self.datasets:
            hp = self.hparams
            records = self.records(split)
            limit = hp.limit_train if split == hp.train_split else hp.limit_eval
            records = records[:limit] if limit else records
            encode = {"answer_weight": hp.answer_weight, "format_weight": hp.format_weight,
                      "think_sentences": hp.think_sentences}  # fmt: skip
            train = split == hp.train_split
            self.datasets[split] = VideoQADataset(
                records, self.processor, fps=self.fps, max_frames=hp.max_frames, skips=self.skips,
                encode_kwargs=encode, hflip_categories=tuple(hp.hflip_categories or ()) if train else (),
                seed=hp.seed,
            )  # fmt: skip
            log.info("%s: %d records from %s", split, len(records), ", ".join(self.data_dirs))
        return self.datasets[split]

    def collate(self, examples: list) -> dict | None:
        examples = [e for e in examples if e is not None]
        if not examples:
            return None
        batch = collate_examples(examples, self.processor.tokenizer.pad_token_id)
        batch["records"] = [e.record for e in examples]
        return batch

    def _world(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        ds = self.dataset(split)
        replicas, rank = self._world()
        sampler = BucketBatchSampler(
            [ds.length(i) for i in range(len(ds))], batch_size, shuffle=shuffle, seed=self.hparams.seed,
            bucket_pool=self.hparams.bucket_pool, num_replicas=replicas if shuffle else 1,
            rank=rank if shuffle else 0,
        )  # fmt: skip
        if not shuffle:
            return DataLoader(ds, batch_sampler=sampler, collate_fn=self.collate, num_workers=0)
        return ResumableLoader(ds, batch_sampler=sampler, collate_fn=self.collate, num_workers=0,
                               position=self._position if getattr(self, "trainer", None) else None)  # fmt: skip

    def _position(self) -> tuple[int, int]:
        skip, self._resume_skip = self._resume_skip, 0
        return self.trainer.current_epoch, skip

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.hparams.train_split, self.hparams.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.hparams.val_split, self.hparams.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.hparams.test_split, self.hparams.eval_batch_size, shuffle=False)

    def state_dict(self) -> dict:
        """Saved in Lightning checkpoints (written after a batch's step): the batches of this
        epoch trained so far, skipped by the train loader on resume; and the skip counts."""
        trainer = getattr(self, "trainer", None)
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed if trainer else 0
        return {"skips": dict(self.skips), "batches_done_in_epoch": done}

    def load_state_dict(self, state: dict) -> None:
        self.skips.update(state.get("skips", {}))
        self._resume_skip = state.get("batches_done_in_epoch", 0)


def weighted_token_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Σ w·CE / Σ w over next-token targets; logits (B, L, V), labels/weights (B, L) aligned with inputs."""
    logits, labels, weights = logits[:, :-1], labels[:, 1:], weights[:, 1:]
    ce = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100, reduction="none"
    ).view(labels.shape)
    return (ce * weights).sum() / weights.sum().clamp_min(1e-8)

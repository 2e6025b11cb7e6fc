"""Video QA datasets in the Cosmos conversation shape → model batches, with loss masks.

One JSONL line per question (what `cosmos-ros gen-data` writes, and any dataset in the same shape):
    {"video": "clips/<task>/<id>.mp4", "conversations": [{"from": "human", "value": "<video>\\n…"},
     {"from": "gpt", "value": "<think>\\n…\\n</think>\\n\\n<answer>\\nB\\n</answer>"}],
     "options": [...], "answer": "B", "category": "...", ...}
Video paths are relative to the JSONL's folder. Lines that do not parse or lack a field, and clips
that do not decode, are skipped and counted in `SkipCounter` (logged), never fatal.

Targets: the assistant turn is tokenized apart from the prompt (as the engine tokenizes the prompt
and then generates), with the answer letter as its own piece so its token positions are known.
`answer_weight` / `format_weight` weigh the answer-letter tokens and the other assistant tokens
(design.md: loss on the answer letter alone breaks the plateau a whole-string loss sits on).
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cosmos_ros.core.resample import even_subsample
from cosmos_ros.core.types import Clip, Prompt

log = logging.getLogger(__name__)

VIDEO_PLACEHOLDER = "<video>\n"
_REPLY = re.compile(
    r"^(?P<head><think>\n.*\n</think>\n\n<answer>\n)(?P<answer>.*?)(?P<tail>\n</answer>)$", re.DOTALL
)
IGNORE = -100


@dataclass  # not frozen: Lightning moves batches (and the records in them) field by field
class Record:
    """One question about one clip."""

    video: Path  # absolute
    prompt_text: str  # the user text after the video (question, options, reasoning add-on)
    reply: str  # the reference assistant turn
    options: tuple[str, ...]
    answer: str  # reference answer (MCQ letter or text), what the rewards score against
    category: str
    id: str = ""


class SkipCounter(Counter):
    """Why lines / clips were skipped, e.g. {"bad_json": 2, "unreadable_clip": 1}."""

    def note(self, reason: str, where: str) -> None:
        self[reason] += 1
        log.warning("skipped %s: %s", where, reason)


def parse_record(line: str, root: Path) -> Record:
    """One JSONL line → Record; ValueError naming what is wrong."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError("bad_json") from exc
    if not isinstance(data, dict):
        raise ValueError("not_an_object")  # noqa: TRY004 - every bad line is one ValueError, counted by reason
    turns = data.get("conversations")
    if not isinstance(turns, list) or len(turns) < 2 or not all(isinstance(t, dict) for t in turns[:2]):
        raise ValueError("no_conversation")
    human, gpt = str(turns[0].get("value", "")), str(turns[1].get("value", ""))
    if not human.startswith(VIDEO_PLACEHOLDER) or not gpt:
        raise ValueError("bad_conversation")
    if not isinstance(data.get("video"), str):
        raise ValueError("no_video")  # noqa: TRY004 - as above
    options = data.get("options") or []
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        raise ValueError("bad_options")
    answer = data.get("answer")
    if not isinstance(answer, str) or not answer:
        match = _REPLY.match(gpt)
        if not match:
            raise ValueError("no_answer")
        answer = match.group("answer")
    return Record(
        video=(root / data["video"]).resolve(),
        prompt_text=human[len(VIDEO_PLACEHOLDER) :],
        reply=gpt,
        options=tuple(options),
        answer=answer,
        category=str(data.get("category") or data.get("task") or "unknown"),
        id=str(data.get("id", "")),
    )


def read_records(path: str | Path, skips: SkipCounter | None = None) -> list[Record]:
    """All good records of a JSONL file; bad lines are counted in `skips`."""
    path = Path(path)
    skips = skips if skips is not None else SkipCounter()
    records = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(parse_record(line, path.parent))
        except ValueError as exc:
            skips.note(str(exc), f"{path.name}:{number}")
    return records


def read_split(data_dirs, split: str, skips: SkipCounter | None = None) -> list[Record]:
    """The `split`.jsonl records of each dataset folder in turn (a folder listed twice is read
    twice: how training replays one); a folder without that split is logged and passed over."""
    records = []
    for folder in data_dirs:
        path = Path(folder) / f"{split}.jsonl"
        if path.is_file():
            records += read_records(path, skips)
        else:
            log.warning("no %s split in %s", split, folder)
    return records


def read_video(path: Path, fps: float, max_frames: int) -> Clip:
    """Decode an mp4 (OpenCV's bundled FFmpeg, in-process), resampled to `fps`; past `max_frames`,
    frames are subsampled evenly over the whole video, keeping the first and the last — as the
    reasoner's FrameBuffer does with a live window, so a long clip is seen whole, not its start."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise ValueError(f"{path} cannot be opened as a video")
        source_fps = float(capture.get(cv2.CAP_PROP_FPS) or fps)
        frames = []
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            frames.append(bgr[:, :, ::-1])
    finally:
        capture.release()
    if not frames:
        raise ValueError(f"{path} holds no frames")
    stride = max(1, round(source_fps / fps))
    resampled = np.arange(0, len(frames), stride)  # (T,) source indices at ~fps
    picked = resampled[even_subsample(len(resampled), max_frames)]
    stamps = picked.astype(np.float64) / source_fps
    return Clip(np.ascontiguousarray(np.stack([frames[i] for i in picked])), stamps)


def shorten_think(reply: str, sentences: int | None) -> str:
    """Keep the first `sentences` sentences of the think text (None: all): shorter generations."""
    if sentences is None:
        return reply
    match = re.match(r"^<think>\n(.*)\n</think>(.*)$", reply, re.DOTALL)
    if not match:
        return reply
    parts = re.split(r"(?<=[.!?])\s+", match.group(1).strip())
    return f"<think>\n{' '.join(parts[:sentences])}\n</think>{match.group(2)}"


@dataclass
class Example:
    inputs: object  # model.processor.VideoInputs of the prompt
    labels: torch.Tensor  # (L,) long, IGNORE outside the assistant turn
    weights: torch.Tensor  # (L,) float loss weight per target position
    record: Record
    prompt_length: int  # tokens before the assistant's reply
    answer_mask: torch.Tensor  # (L,) bool, True on the answer letter's tokens


def encode_example(processor, clip: Clip, record: Record, *, answer_weight: float = 1.0,
                   format_weight: float = 1.0, think_sentences: int | None = None) -> Example:  # fmt: skip
    """Prompt via the serving processor, then the reply's tokens; labels on the assistant turn only.
    The reply is written in Cosmos-Reason1's format; a Reason2-format processor ("after_think")
    is taught the same reasoning with the answer straight after </think>, as its prompt asks."""
    prompt = Prompt(text=record.prompt_text, options=record.options)
    inputs = processor(clip, prompt)
    tok = processor.tokenizer
    reply = shorten_think(record.reply, think_sentences)
    match = _REPLY.match(reply)
    if match is None:
        pieces = [(reply, False)]
    elif processor.answer_format == "after_think":  # Cosmos-Reason2: the answer follows </think>
        pieces = [(match.group("head").removesuffix("<answer>\n"), False), (match.group("answer"), True)]
    else:
        pieces = [(match.group("head"), False), (match.group("answer"), True), (match.group("tail"), False)]
    pieces.append((tok.eos_token, False))
    reply_ids, is_answer = [], []
    for text, answer in pieces:
        ids = tok.encode(text, add_special_tokens=False)
        reply_ids += ids
        is_answer += [answer] * len(ids)
    reply_ids = torch.tensor(reply_ids, dtype=torch.long)
    weight = torch.tensor([answer_weight if a else format_weight for a in is_answer], dtype=torch.float32)
    prompt_len = inputs.num_prompt_tokens
    inputs.input_ids = torch.cat([inputs.input_ids, reply_ids[None]], dim=1)
    inputs.attention_mask = torch.ones_like(inputs.input_ids)
    inputs.mm_token_type_ids = torch.cat([inputs.mm_token_type_ids, torch.zeros_like(reply_ids)[None]], dim=1)
    labels = torch.full((inputs.input_ids.shape[1],), IGNORE, dtype=torch.long)
    labels[prompt_len:] = reply_ids
    weights = torch.zeros(inputs.input_ids.shape[1])
    weights[prompt_len:] = weight
    labels[weights == 0] = IGNORE
    answer_mask = torch.zeros(inputs.input_ids.shape[1], dtype=torch.bool)
    answer_mask[prompt_len:] = torch.tensor(is_answer)
    return Example(inputs, labels, weights, record, prompt_len, answer_mask)


def collate_examples(examples: list[Example], pad_token_id: int) -> dict:
    """Left-padded batch (as the engine pads) + `labels` and `loss_weights` aligned with input_ids."""
    from cosmos_ros.model.processor import collate_video_inputs, left_pad

    batch = collate_video_inputs([e.inputs for e in examples], pad_token_id)
    batch["labels"] = left_pad([e.labels[None] for e in examples], IGNORE)
    batch["loss_weights"] = left_pad([e.weights[None] for e in examples], 0)
    batch["prompt_lengths"] = torch.tensor([e.prompt_length for e in examples])
    batch["answer_mask"] = left_pad([e.answer_mask[None] for e in examples], 0)
    return batch


def load_processor(source: str | Path):
    """The serving processor of a preset name / card or a checkpoint directory, without building weights."""
    from cosmos_ros.model.bundle import checkpoint_processor, make_processor
    from cosmos_ros.model.families import family_of, resolve_source
    from cosmos_ros.model.tokenizer import build_tiny_tokenizer, load_tokenizer

    kind, resolved = resolve_source(source)
    if kind == "preset":
        return make_processor(resolved, build_tiny_tokenizer(family=resolved.family))
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(resolved), local_files_only=True)
    return checkpoint_processor(resolved, config, load_tokenizer(resolved, family_of(config).name))

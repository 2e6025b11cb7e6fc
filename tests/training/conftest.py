"""A toy video QA dataset in gen-data's layout: a white square moves left or right; which way?"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cosmos_ros.core.prompts import mcq_prompt

OPTIONS = ("to the left", "to the right")


def toy_frames(direction: int, frames: int = 8, size: int = 56) -> np.ndarray:
    video = np.zeros((frames, size, size, 3), np.uint8)
    for t in range(frames):
        x = 8 + t * 4 if direction else size - 20 - t * 4
        video[t, 20:36, x : x + 12] = 255
    return video


def write_toy_dataset(root: Path, n: int = 16, *, split_of=lambda i: "train") -> Path:
    import imageio_ffmpeg

    root.mkdir(parents=True, exist_ok=True)
    lines: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for i in range(n):
        direction = i % 2
        relative = f"clips/toy/toy_{i:03d}.mp4"
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = imageio_ffmpeg.write_frames(str(path), (56, 56), fps=4, macro_block_size=8, quality=9)
        writer.send(None)
        for frame in toy_frames(direction):
            writer.send(np.ascontiguousarray(frame))
        writer.close()
        prompt = mcq_prompt("Which way does the square move?", OPTIONS)
        letter = "AB"[direction]
        reply = f"<think>\nThe square moves {OPTIONS[direction].split()[-1]}.\n</think>\n\n<answer>\n{letter}\n</answer>"
        record = {
            "id": f"toy_{i}",
            "video": relative,
            "question": "Which way does the square move?",
            "options": list(OPTIONS),
            "answer": letter,
            "answer_text": OPTIONS[direction],
            "category": "toy/direction",
            "task": "toy",
            "conversations": [
                {"from": "human", "value": "<video>\n" + prompt.text},
                {"from": "gpt", "value": reply},
            ],
        }
        lines[split_of(i)].append(json.dumps(record))
    for split, rows in lines.items():
        (root / f"{split}.jsonl").write_text("".join(r + "\n" for r in rows))
    return root


@pytest.fixture(scope="session")
def toy_data(tmp_path_factory) -> Path:
    return write_toy_dataset(
        tmp_path_factory.mktemp("toy"), 16, split_of=lambda i: "train" if i < 12 else "test"
    )

"""Contact sheets: a grid of frames from a few clips of each scenario, decoded from the mp4s the
model will read, each row captioned with the clip's variant and first answer."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from cosmos_ros.sim.video import read_mp4


def contact_sheet(out: Path, task: str, *, clips: int = 4, columns: int = 8, tile: int = 128) -> Path | None:
    """Writes OUT/preview/<task>.png from the first `clips` annotated clips; None if there are none."""
    annotations = sorted((Path(out) / "annotations" / task).glob(f"{task}_*.json"))[:clips]
    rows = []
    for path in annotations:
        annotation = json.loads(path.read_text())
        frames = read_mp4(Path(out) / annotation["videos"]["clip"]["path"])
        picks = np.linspace(0, len(frames) - 1, columns).round().astype(int)
        row = np.concatenate(
            [cv2.resize(frames[i], (tile, tile), interpolation=cv2.INTER_AREA) for i in picks], axis=1
        )
        question = annotation["questions"][0]
        caption = (
            f"{annotation['clip_id']}  {annotation['variant']}  ->  {question['options'][question['answer']]}"
        )
        band = np.full((18, row.shape[1], 3), 255, np.uint8)
        cv2.putText(band, caption[:110], (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        rows.append(np.concatenate([band, row], axis=0))
    if not rows:
        return None
    sheet = np.concatenate(rows, axis=0)
    target = Path(out) / "preview" / f"{task}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(target), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return target

"""Held-out accuracy by scenario variant (e.g. manipulation/failure × pick_drop), from the
per-question samples `cosmos-ros eval --out DIR` writes and the datasets' clip annotations.

    python training/breakdown.py runs/tiny/eval --data runs/tiny/data/robot168 [--data ...]
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path

from cosmos_ros.core.answers import accuracy_reward


def variants(data_dirs: list[Path]) -> dict[str, str]:
    """clip id -> variant, from every annotation file under the data folders."""
    found = {}
    for root in data_dirs:
        for path in (root / "annotations").glob("*/*.json"):
            annotation = json.loads(path.read_text())
            found[annotation["clip_id"]] = annotation["variant"]
    return found


def records(data_dirs: list[Path], split: str) -> dict[str, dict]:
    """question id -> its JSONL record (options, clip id)."""
    return {
        r["id"]: r
        for root in data_dirs
        for r in map(json.loads, (root / f"{split}.jsonl").read_text().splitlines())
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("eval_dir", type=Path)
    parser.add_argument("--data", type=Path, action="append", required=True)
    parser.add_argument("--split", default="test")
    ns = parser.parse_args()
    clip_variant, questions = variants(ns.data), records(ns.data, ns.split)
    models = sorted(ns.eval_dir.glob("samples_*.jsonl"))
    cells: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(dict)
    for samples in models:
        name = samples.stem.removeprefix("samples_")
        for line in samples.read_text().splitlines():
            sample = json.loads(line)
            record = questions.get(sample["id"])
            if record is None:
                continue
            key = (sample["category"], clip_variant.get(record["clip_id"], "?"))
            score = accuracy_reward(sample["output"], sample["answer"], record["options"])
            cells[key].setdefault(name, []).append(score)
    names = [m.stem.removeprefix("samples_") for m in models]
    print("| category | variant | n | " + " | ".join(names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    for (category, variant), by_model in sorted(cells.items()):
        n = len(next(iter(by_model.values())))
        row = []
        for name in names:
            scores = by_model.get(name, [])
            acc = sum(scores) / len(scores) if scores else float("nan")
            row.append(f"{acc:.3f} ± {math.sqrt(acc * (1 - acc) / len(scores)):.3f}" if scores else "–")
        print(f"| {category} | {variant} | {n} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()

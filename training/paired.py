"""Two models on the same held-out questions, paired: per category the accuracy difference with its
standard error, and failure detection F1's difference by a paired bootstrap. Reads the per-question
samples `cosmos-ros eval --out DIR` writes (samples_NAME.jsonl) and the datasets' records.

    python training/paired.py runs/tiny/eval sft grpo --data runs/tiny/data/robot168 \
        --data runs/tiny/data/easy56 --data runs/tiny/data/puzzle84 [--depth 2]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cosmos_ros.training.data import read_split
from cosmos_ros.training.evaluate import paired_differences, paired_table


def samples(eval_dir: Path, name: str) -> dict[str, str]:
    """question id -> the model's reply."""
    path = eval_dir / f"samples_{name}.jsonl"
    return {s["id"]: s["output"] for s in map(json.loads, path.read_text().splitlines())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("eval_dir", type=Path)
    parser.add_argument("base", help="the model compared against (its samples_BASE.jsonl)")
    parser.add_argument("new")
    parser.add_argument("--data", type=Path, action="append", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--depth", type=int, default=2, help="category path parts to group by (0: full)")
    parser.add_argument("--resamples", type=int, default=1000)
    ns = parser.parse_args()
    lacking = [n for n in (ns.base, ns.new) if not (ns.eval_dir / f"samples_{n}.jsonl").is_file()]
    if lacking:
        found = sorted(p.stem.removeprefix("samples_") for p in ns.eval_dir.glob("samples_*.jsonl"))
        print(f"paired: {ns.eval_dir} has no samples for {', '.join(lacking)} (it has: {', '.join(found) or 'none'})",
              file=sys.stderr)  # fmt: skip
        return 2
    base, new = samples(ns.eval_dir, ns.base), samples(ns.eval_dir, ns.new)
    records = [r for r in read_split(ns.data, ns.split) if r.id in base and r.id in new]
    if not records:
        print("paired: no question answered by both models is in these datasets", file=sys.stderr)
        return 1
    results = paired_differences(
        records, [base[r.id] for r in records], [new[r.id] for r in records], ns.depth, resamples=ns.resamples
    )
    print(paired_table(results, ns.base, ns.new), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())

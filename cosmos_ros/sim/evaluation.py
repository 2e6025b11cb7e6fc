"""Testing in simulation without ROS in the way: what the sim camera announces as ground truth,
and how the evaluator scores the reasoner against it. Pure Python; the nodes only move messages.

The sim camera plays a clip frame by frame. When the video of a question has been fully shown
(the whole clip, or a prefix for next-subtask questions) it pauses and announces a *question*:

    {"type": "question", "clip_id", "task", "variant", "question_index", "category", "kind",
     "question" (text to ask), "options", "answer" (index), "answer_letter", "answer_text",
     "task_text", "window": {"start": s, "end": s, "end_stamp": [sec, nanosec], "frames": n}}

and when the clip is over a *clip* record with the per-frame labels and every frame's stamp:

    {"type": "clip", "clip_id", "task", "variant", "seed", "fps", "frame_stamps": [[sec, ns], ...],
     "subtasks", "frame_subtask_index", "failed", "task_text", "labels": {...}}
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the evaluator node imports this module without mujoco
    from cosmos_ros.sim.sample import Sample


def question_stops(sample: Sample) -> dict[int, list[int]]:
    """Last frame index of each question's video → indices of the questions asked there."""
    stops: dict[int, list[int]] = defaultdict(list)
    for i, question in enumerate(sample.questions):
        end = len(sample.frames) if question.video == "clip" else sample.videos[question.video][1]
        stops[end - 1].append(i)
    return dict(stops)


def _seconds(stamp: tuple[int, int]) -> float:
    return stamp[0] + stamp[1] * 1e-9


def question_message(sample: Sample, clip_id: str, index: int, stamps: list[tuple[int, int]]) -> dict:
    """stamps: (sec, nanosec) of the frames published so far, the question's video included."""
    question = sample.questions[index]
    start = 0 if question.video == "clip" else sample.videos[question.video][0]
    prompt = question.prompt()
    return {
        "type": "question",
        "clip_id": clip_id,
        "task": sample.task,
        "variant": sample.variant,
        "question_index": index,
        "category": question.category,
        "kind": question.kind,
        # the question line of the prompt the dataset uses; the options travel separately
        "question": question.question if question.kind == "question" else prompt.text.split("\n", 1)[0],
        "options": list(question.options),
        "answer": question.answer,
        "answer_letter": question.answer_letter,
        "answer_text": question.answer_text,
        "task_text": question.task,
        "window": {
            "start": _seconds(stamps[start]),
            "end": _seconds(stamps[-1]),
            "end_stamp": list(stamps[-1]),
            "frames": len(stamps) - start,
        },
    }


def clip_message(sample: Sample, clip_id: str, stamps: list[tuple[int, int]]) -> dict:
    labels = sample.labels
    return {
        "type": "clip",
        "clip_id": clip_id,
        "task": sample.task,
        "variant": sample.variant,
        "seed": sample.seed,
        "fps": sample.fps,
        "frame_stamps": [list(s) for s in stamps],
        "task_text": labels.get("task_text", ""),
        "failed": labels.get("failed"),
        "subtasks": labels.get("subtasks", []),
        "frame_subtask_index": labels.get("frames", {}).get("subtask_index", []),
        "labels": labels,
    }


def expected_next_subtask(clip: dict, end: float) -> str | None:
    """The subtask after the one running at time `end` of a clip record, or None."""
    stamps = [_seconds(tuple(s)) for s in clip["frame_stamps"]]
    if not clip["subtasks"] or not stamps or not stamps[0] <= end <= stamps[-1] + 1e-6:
        return None
    frame = max(i for i, s in enumerate(stamps) if s <= end + 1e-6)
    current = clip["frame_subtask_index"][frame]
    return clip["subtasks"][current + 1] if 0 <= current < len(clip["subtasks"]) - 1 else None


@dataclass
class Tally:
    asked: int = 0
    correct: int = 0

    @property
    def accuracy(self) -> float:
        return self.correct / self.asked if self.asked else float("nan")


@dataclass
class Scoreboard:
    """Running accuracy per category; answers that are not OK (uncertain, stale, error, busy)
    count as wrong and are tallied by status."""

    categories: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    statuses: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    window_mismatches: int = 0

    def record(self, category: str, correct: bool, status: str = "ok") -> None:
        tally = self.categories[category]
        tally.asked += 1
        tally.correct += int(correct)
        self.statuses[status] += 1

    @property
    def asked(self) -> int:
        return sum(t.asked for t in self.categories.values())

    @property
    def correct(self) -> int:
        return sum(t.correct for t in self.categories.values())

    def summary(self) -> dict:
        return {
            "asked": self.asked,
            "correct": self.correct,
            "accuracy": round(self.correct / self.asked, 4) if self.asked else None,
            "per_category": {
                c: {"asked": t.asked, "correct": t.correct, "accuracy": round(t.accuracy, 4)}
                for c, t in sorted(self.categories.items())
            },
            "statuses": dict(self.statuses),
            "window_mismatches": self.window_mismatches,
        }

    def report(self) -> str:
        lines = [f"{'category':<40} {'asked':>6} {'correct':>8} {'accuracy':>9}"]
        for category, tally in sorted(self.categories.items()):
            lines.append(f"{category:<40} {tally.asked:>6} {tally.correct:>8} {tally.accuracy:>9.3f}")
        overall = self.correct / self.asked if self.asked else float("nan")
        lines.append(f"{'overall':<40} {self.asked:>6} {self.correct:>8} {overall:>9.3f}")
        lines.append("answer statuses: " + ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items())))
        return "\n".join(lines)

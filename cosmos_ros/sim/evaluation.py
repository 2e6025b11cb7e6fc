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

from cosmos_ros.core.codec import time_seconds
from cosmos_ros.core.types import TaskKind

if TYPE_CHECKING:  # the evaluator node imports this module without mujoco
    from cosmos_ros.sim.sample import Sample


def question_stops(sample: Sample) -> dict[int, list[int]]:
    """Last frame index of each question's video → indices of the questions asked there."""
    stops: dict[int, list[int]] = defaultdict(list)
    for i, question in enumerate(sample.questions):
        end = len(sample.frames) if question.video == "clip" else sample.videos[question.video][1]
        stops[end - 1].append(i)
    return dict(stops)


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
        "question": question.question if question.kind == TaskKind.QUESTION else prompt.text.split("\n", 1)[0],
        "options": list(question.options),
        "answer": question.answer,
        "answer_letter": question.answer_letter,
        "answer_text": question.answer_text,
        "task_text": question.task,
        "window": {
            "start": time_seconds(stamps[start]),
            "end": time_seconds(stamps[-1]),
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
        "outcome": labels.get("outcome"),
        # the stamp of the first frame that shows the failure (None: no failure, or not shown yet)
        "failure_stamp": (
            list(stamps[labels["failure_frame"]])
            if labels.get("failure_frame") is not None and labels["failure_frame"] < len(stamps)
            else None
        ),
        "subtasks": labels.get("subtasks", []),
        "frame_subtask_index": labels.get("frames", {}).get("subtask_index", []),
        "labels": labels,
    }


def _frame_at(clip: dict, end: float) -> int | None:
    """Index of the clip's newest frame at time `end`, or None outside the clip."""
    stamps = [time_seconds(s) for s in clip["frame_stamps"]]
    if not stamps or not stamps[0] <= end <= stamps[-1] + 1e-6:
        return None
    return max(i for i, s in enumerate(stamps) if s <= end + 1e-6)


def expected_next_subtask(clip: dict, end: float) -> str | None:
    """The subtask after the one running at time `end` of a clip record, or None."""
    frame = _frame_at(clip, end) if clip["subtasks"] else None
    if frame is None:
        return None
    current = clip["frame_subtask_index"][frame]
    return clip["subtasks"][current + 1] if 0 <= current < len(clip["subtasks"]) - 1 else None


def at_step_edge(clip: dict, end: float) -> bool:
    """Whether the clip's newest frame at `end` is the first or last frame of its plan step, where
    one frame earlier or later tells another step: the hardest moments to answer."""
    frame, steps = _frame_at(clip, end), clip["frame_subtask_index"]
    if frame is None:
        return False
    return any(0 <= other < len(steps) and steps[other] != steps[frame] for other in (frame - 1, frame + 1))


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
        return question_report(self.summary())


# ---- periodic answers about live episodes (sim_camera mode:=episodes) ----------------------------

SCORED_STATUSES = ("ok", "none", "uncertain")  # the model answered; stale/error/busy did not ask it


@dataclass(frozen=True)
class PeriodicAnswer:
    """One SubtaskPrediction or FailureDetection, as the evaluator received it."""

    kind: TaskKind  # NEXT_SUBTASK | FAILURE
    clip_end: float  # stamp of the newest frame the model saw, seconds
    received: float  # when the answer arrived (same clock as the frame stamps), seconds
    status: str  # "ok", "none", "uncertain", "stale", ...
    subtask: str = ""  # next_subtask: the answer
    failed: bool | None = None  # failure: the verdict (None = uncertain)


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


class EpisodeScores:
    """Scores periodic answers per episode (matched by task id = clip id) against the episode's
    clip record.

    Next subtask: every answer the model gave (OK, NONE, UNCERTAIN) about a moment whose plan step
    has a successor is scored; only OK with the expected step is right. Failure, per episode: a
    failed episode is detected by a FAILURE verdict on a clip ending at or after the failure shows;
    a FAILURE verdict before that, or in an episode that succeeded, is a false alarm, and a
    succeeded episode with any is a false positive. Latency: from the failure's frame stamp to the
    arrival of the first detecting verdict. Answers per message are also scored against the
    verdict due at their clip's end, leaving out clips that end less than `margin_s` after the
    failure shows. Episodes no periodic answer was about (the reasoner still loading) are not
    scored.
    """

    def __init__(self, margin_s: float = 0.5):
        self.margin_s = margin_s
        self.records: dict[str, dict] = {}
        self.answers: dict[str, list[PeriodicAnswer]] = defaultdict(list)

    def add_record(self, record: dict) -> None:
        self.records[record["clip_id"]] = record

    def add_answer(self, task_id: str, answer: PeriodicAnswer) -> None:
        self.answers[task_id].append(answer)

    def summary(self) -> dict:
        watched = [cid for cid in self.records if self.answers.get(cid)]
        subtask = Tally()
        by_place = {"step_edge": Tally(), "inside_step": Tally()}
        messages = Tally()
        tp = fp = fn = false_alarms = 0
        latencies: list[float] = []
        by_outcome: dict[str, Tally] = defaultdict(Tally)
        statuses: dict[str, int] = defaultdict(int)
        for cid in watched:
            record, answers = self.records[cid], self.answers[cid]
            shows = time_seconds(record["failure_stamp"]) if record.get("failure_stamp") else None
            detected_at = None
            for answer in answers:
                statuses[f"{answer.kind}/{answer.status}"] += 1
                if answer.kind == TaskKind.NEXT_SUBTASK:
                    expected = expected_next_subtask(record, answer.clip_end)
                    if expected is not None and answer.status in SCORED_STATUSES:
                        right = answer.status == "ok" and answer.subtask.casefold() == expected.casefold()
                        place = by_place["step_edge" if at_step_edge(record, answer.clip_end) else "inside_step"]
                        for tally in (subtask, place):
                            tally.asked += 1
                            tally.correct += int(right)
                    continue
                due = shows is not None and answer.clip_end >= shows - 1e-6
                if answer.status == "ok" and answer.failed is not None and not (
                    due and answer.clip_end < shows + self.margin_s
                ):
                    messages.asked += 1
                    messages.correct += int(answer.failed == due)
                if answer.status == "ok" and answer.failed:
                    if due:
                        detected_at = answer.received if detected_at is None else min(detected_at, answer.received)
                    else:
                        false_alarms += 1
            if record.get("failed"):
                by_outcome[record.get("outcome") or "failure"].asked += 1
                if detected_at is not None:
                    tp += 1
                    by_outcome[record.get("outcome") or "failure"].correct += 1
                    latencies.append(detected_at - shows)
                else:
                    fn += 1
            elif any(a.kind == TaskKind.FAILURE and a.status == "ok" and a.failed for a in answers):
                fp += 1
        precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        f1 = round(2 * precision * recall / (precision + recall), 4) if precision and recall else (
            0.0 if precision is not None and recall is not None else None
        )
        latency = _median(latencies)
        return {
            "episodes": len(watched),
            "episodes_failed": tp + fn,
            "episodes_unwatched": len(self.records) - len(watched),
            "next_subtask_accuracy": _ratio(subtask.correct, subtask.asked),
            "next_subtask_answers": subtask.asked,
            "next_subtask_correct": subtask.correct,
            # the first or last frame of a step vs the frames between (answers, accuracy)
            "next_subtask_by_place": {
                place: {"answers": t.asked, "accuracy": _ratio(t.correct, t.asked)} for place, t in by_place.items()
            },
            "failure_precision": precision,
            "failure_recall": recall,
            "failure_f1": f1,
            "failure_true_positives": tp,
            "failure_false_positives": fp,
            "failure_false_negatives": fn,
            "failure_detect_latency_s_median": round(latency, 3) if latency is not None else None,
            "failure_detect_latency_s_max": round(max(latencies), 3) if latencies else None,
            "false_alarms": false_alarms,
            "failure_answer_accuracy": _ratio(messages.correct, messages.asked),
            "failure_answers": messages.asked,
            "failure_recall_by_outcome": {o: _ratio(t.correct, t.asked) for o, t in sorted(by_outcome.items())},
            "answer_statuses": dict(sorted(statuses.items())),
        }


def _place(summary: dict, place: str) -> str:
    row = summary.get("next_subtask_by_place", {}).get(place, {})
    accuracy = row.get("accuracy")
    return f"{'n/a' if accuracy is None else f'{accuracy:.3f}'} ({row.get('answers', 0)} answers)"


def episode_report(summary: dict) -> str:
    """The robot-loop summary as a small table."""

    def show(value, digits: int = 3) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    rows = [
        ("episodes scored", show(summary["episodes"]) + f" ({summary['episodes_failed']} failed)"),
        ("next subtask accuracy", f"{show(summary['next_subtask_accuracy'])} "
                                  f"({summary['next_subtask_correct']}/{summary['next_subtask_answers']} answers)"),
        ("  on a step's first or last frame", _place(summary, "step_edge")),
        ("  inside a step", _place(summary, "inside_step")),
        ("failure precision / recall / F1", " / ".join(
            show(summary[k]) for k in ("failure_precision", "failure_recall", "failure_f1"))),
        ("failure detection latency, median", show(summary["failure_detect_latency_s_median"], 2) + " s"),
        ("false alarms", show(summary["false_alarms"])),
        ("failure answers right (per message)", f"{show(summary['failure_answer_accuracy'])} "
                                                f"of {summary['failure_answers']}"),
    ]  # fmt: skip
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def question_report(summary: dict) -> str:
    """A Scoreboard summary (the physics questions) as a small table."""
    lines = [f"{'category':<40} {'asked':>6} {'correct':>8} {'accuracy':>9}"]
    for category, tally in summary["per_category"].items():
        lines.append(f"{category:<40} {tally['asked']:>6} {tally['correct']:>8} {tally['accuracy']:>9.3f}")
    overall = "n/a" if summary["accuracy"] is None else f"{summary['accuracy']:.3f}"
    lines.append(f"{'overall':<40} {summary['asked']:>6} {summary['correct']:>8} {overall:>9}")
    lines.append("answer statuses: " + ", ".join(f"{k} {v}" for k, v in sorted(summary["statuses"].items())))
    return "\n".join(lines)

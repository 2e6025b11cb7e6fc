"""The ground truth the sim camera announces and how the evaluator scores against it."""

from __future__ import annotations

from cosmos_ros.sim import evaluation
from cosmos_ros.sim.scenarios import generate


def test_questions_are_announced_when_their_video_ends(configs):
    sample = generate(configs["manipulation"], 4, variant="pick_success")
    stops = evaluation.question_stops(sample)
    prefix = next(q for q in sample.questions if q.kind == "next_subtask")
    assert sorted(stops) == sorted({sample.videos[prefix.video][1] - 1, len(sample.frames) - 1})
    assert sum(len(v) for v in stops.values()) == len(sample.questions)


def test_a_question_record_covers_exactly_its_video(configs):
    sample = generate(configs["manipulation"], 4, variant="pick_success")
    index = next(i for i, q in enumerate(sample.questions) if q.kind == "next_subtask")
    end = sample.videos[sample.questions[index].video][1]
    stamps = [(100 + k // 4, (k % 4) * 250_000_000) for k in range(end)]
    record = evaluation.question_message(sample, "clip", index, stamps)
    assert record["window"]["frames"] == end and record["window"]["end_stamp"] == list(stamps[-1])
    assert record["question"].startswith("The robot is performing the task:")
    assert record["options"][record["answer"]] == record["answer_text"]


def test_expected_next_subtask_follows_the_frame_labels(configs):
    sample = generate(configs["manipulation"], 4, variant="pick_success")
    stamps = [(10 + k, 0) for k in range(len(sample.frames))]
    clip = evaluation.clip_message(sample, "clip", stamps)
    frame = next(k for k, i in enumerate(clip["frame_subtask_index"]) if i == 2)
    assert evaluation.expected_next_subtask(clip, 10 + frame) == clip["subtasks"][3]
    assert evaluation.expected_next_subtask(clip, 5.0) is None  # before the clip


def test_the_scoreboard_counts_non_ok_answers_as_wrong():
    board = evaluation.Scoreboard()
    board.record("a", True)
    board.record("a", False, "uncertain")
    board.record("b", True)
    summary = board.summary()
    assert summary["asked"] == 3 and summary["correct"] == 2
    assert summary["per_category"]["a"] == {"asked": 2, "correct": 1, "accuracy": 0.5}
    assert summary["statuses"] == {"ok": 2, "uncertain": 1}
    assert "overall" in board.report()

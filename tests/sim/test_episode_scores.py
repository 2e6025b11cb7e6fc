"""Specification of the robot-loop scoring (EpisodeScores) on hand-made episodes: what counts as
a right next subtask, a detection, a false alarm, and how latency is measured."""

from __future__ import annotations

import pytest

from cosmos_ros.core.types import TaskKind
from cosmos_ros.sim.evaluation import EpisodeScores, PeriodicAnswer, episode_report

PLAN = ["move above the red block", "grasp the red block", "lift the red block"]


def record(cid: str, failed: bool, failure_frame: int | None = None, outcome: str | None = None) -> dict:
    """8 frames at 1 fps from t = 100 s; frames 0-2 step 0, 3-5 step 1, 6-7 step 2."""
    stamps = [[100 + i, 0] for i in range(8)]
    return {
        "type": "clip", "clip_id": cid, "task_text": "put the red block on the green pad",
        "frame_stamps": stamps, "subtasks": PLAN, "frame_subtask_index": [0, 0, 0, 1, 1, 1, 2, 2],
        "failed": failed, "outcome": outcome or ("success" if not failed else "drop"),
        "failure_stamp": stamps[failure_frame] if failure_frame is not None else None,
    }  # fmt: skip


def subtask(end: float, text: str, status: str = "ok") -> PeriodicAnswer:
    return PeriodicAnswer(TaskKind.NEXT_SUBTASK, end, end + 0.3, status, subtask=text)


def verdict(end: float, failed: bool | None, status: str = "ok", delay: float = 0.3) -> PeriodicAnswer:
    return PeriodicAnswer(TaskKind.FAILURE, end, end + delay, status, failed=failed)


def scores(*episodes) -> dict:
    board = EpisodeScores(margin_s=1.0)
    for rec, answers in episodes:
        board.add_record(rec)
        for answer in answers:
            board.add_answer(rec["clip_id"], answer)
    return board.summary()


def test_next_subtask_is_the_plan_step_after_the_one_running_at_the_clip_end():
    summary = scores((record("a", False), [
        subtask(101.0, "grasp the red block"),  # step 0 running -> grasp: right
        subtask(104.0, "grasp the red block"),  # step 1 running -> lift: wrong
        subtask(104.5, "lift the red block"),  # right
        subtask(106.0, "anything"),  # the last step has no successor: not scored
        subtask(101.0, "", status="uncertain"),  # the model answered badly: scored, wrong
        subtask(101.0, "", status="stale"),  # the model was not asked: not scored
    ]))  # fmt: skip
    assert summary["next_subtask_answers"] == 4 and summary["next_subtask_correct"] == 2
    assert summary["next_subtask_accuracy"] == 0.5
    # frames 1 and 4 are inside their steps, frame 3 (t = 103) is the first of step 1
    places = summary["next_subtask_by_place"]
    assert places["inside_step"] == {"answers": 4, "accuracy": 0.5}
    assert places["step_edge"] == {"answers": 0, "accuracy": None}


def test_next_subtask_accuracy_is_split_by_where_in_the_step_the_clip_ends():
    summary = scores((record("a", False), [
        subtask(102.0, "grasp the red block"),  # frame 2: the last of step 0 -> edge, right
        subtask(103.0, "grasp the red block"),  # frame 3: the first of step 1 -> edge, wrong
        subtask(104.2, "lift the red block"),  # frame 4: inside step 1, right
    ]))  # fmt: skip
    places = summary["next_subtask_by_place"]
    assert places["step_edge"] == {"answers": 2, "accuracy": 0.5}
    assert places["inside_step"] == {"answers": 1, "accuracy": 1.0}
    assert "first or last frame" in episode_report(summary)


def test_a_failure_verdict_after_the_failure_shows_is_a_detection_with_its_latency():
    summary = scores(
        (record("f1", True, failure_frame=4), [verdict(102.0, False), verdict(105.0, True, delay=0.5)]),
        (record("f2", True, failure_frame=2), [verdict(103.0, True, delay=1.0), verdict(106.0, True)]),
    )
    assert (summary["failure_true_positives"], summary["failure_false_negatives"]) == (2, 0)
    assert summary["failure_recall"] == 1.0 and summary["false_alarms"] == 0
    # f1: shows at 104, first detecting verdict arrives at 105.5; f2: shows at 102, arrives at 104
    assert summary["failure_detect_latency_s_median"] == pytest.approx(1.75)


def test_failure_verdicts_before_the_failure_or_in_a_success_are_false_alarms():
    summary = scores(
        (record("early", True, failure_frame=6), [verdict(101.0, True), verdict(103.0, True)]),
        (record("ok", False), [verdict(102.0, True), verdict(105.0, False)]),
        (record("quiet", False), [verdict(105.0, False)]),
    )
    assert summary["false_alarms"] == 3
    assert summary["failure_false_negatives"] == 1  # "early" never flagged once the drop showed
    assert summary["failure_false_positives"] == 1  # "ok"
    assert summary["failure_precision"] == 0.0 and summary["failure_f1"] == 0.0


def test_precision_recall_and_f1_count_episodes():
    detected = (record("d", True, failure_frame=3), [verdict(104.0, True)])
    missed = (record("m", True, failure_frame=3), [verdict(104.0, False)])
    alarm = (record("s1", False), [verdict(104.0, True)])
    clean = (record("s2", False), [verdict(104.0, False)])
    summary = scores(detected, missed, alarm, clean)
    assert summary["failure_precision"] == 0.5 and summary["failure_recall"] == 0.5
    assert summary["failure_f1"] == 0.5
    assert summary["failure_recall_by_outcome"] == {"drop": 0.5}


def test_answer_statuses_are_counted_by_kind_and_status_names():
    summary = scores((record("f", True, failure_frame=4), [
        subtask(102.0, "lift the red block"), verdict(102.0, None, status="uncertain"), verdict(106.0, True),
    ]))  # fmt: skip
    assert summary["answer_statuses"] == {"failure/ok": 1, "failure/uncertain": 1, "next_subtask/ok": 1}


def test_per_message_failure_answers_skip_the_margin_after_the_failure():
    summary = scores((record("f", True, failure_frame=4), [
        verdict(102.0, False),  # before: right
        verdict(104.5, False),  # inside the 1 s margin: not scored
        verdict(106.0, False),  # after: wrong
        verdict(106.5, None, status="uncertain"),  # no verdict: not scored
    ]))  # fmt: skip
    assert summary["failure_answers"] == 2 and summary["failure_answer_accuracy"] == 0.5


def test_episodes_without_any_answer_are_not_scored():
    summary = scores((record("loading", True, failure_frame=2), []), (record("s", False), [verdict(104.0, False)]))
    assert summary["episodes"] == 1 and summary["episodes_unwatched"] == 1
    assert summary["failure_recall"] is None and summary["failure_false_negatives"] == 0


def test_the_report_table_names_every_headline_figure():
    text = episode_report(scores((record("d", True, failure_frame=3), [verdict(104.0, True), subtask(101.0, "x")])))
    for phrase in ("episodes scored", "next subtask accuracy", "F1", "latency", "false alarms"):
        assert phrase in text

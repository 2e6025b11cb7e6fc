"""Specification of `failure_confirmations`: a periodic FAILURE goes out only once enough answers in
a row about one task said so; the ones before are held back as UNCERTAIN with their raw answer."""

from __future__ import annotations

import pytest

from cosmos_ros.msg import FailureDetection
from cosmos_ros.nodes.messages import FailureConfirmation

YES, NO = FailureDetection.VERDICT_FAILURE, FailureDetection.VERDICT_SUCCESS
OK, NONE = FailureDetection.STATUS_OK, FailureDetection.STATUS_NONE


def answer(verdict: int, task_id: str = "episode-1", status: int = OK, task: str = "stack") -> FailureDetection:
    if status != OK:
        verdict = FailureDetection.VERDICT_UNCERTAIN
    return FailureDetection(task_id=task_id, task=task, verdict=verdict, status=status, answer="A")


def published(confirm: FailureConfirmation, answers, needed: int) -> list[str]:
    """Each answer as the planner sees it: 'F' (FAILURE, OK), 'S' (SUCCESS, OK), 'u' (held back
    or no answer)."""
    out = []
    for msg in answers:
        msg = confirm.apply(msg, needed)
        if msg.status != OK:
            out.append("u")
        else:
            out.append("F" if msg.verdict == YES else "S")
    return out


def test_one_confirmation_passes_every_answer_through():
    assert published(FailureConfirmation(), [answer(YES), answer(NO), answer(YES)], 1) == ["F", "S", "F"]


def test_failure_is_published_on_the_nth_answer_in_a_row_and_stays_published():
    answers = [answer(NO), answer(YES), answer(YES), answer(YES), answer(YES)]
    assert published(FailureConfirmation(), answers, 3) == ["S", "u", "u", "F", "F"]


def test_a_success_verdict_breaks_the_run():
    answers = [answer(YES), answer(NO), answer(YES), answer(YES)]
    assert published(FailureConfirmation(), answers, 2) == ["u", "S", "u", "F"]


def test_answers_that_are_not_ok_neither_count_nor_break_the_run():
    answers = [answer(YES), answer(YES, status=NONE), answer(YES)]
    assert published(FailureConfirmation(), answers, 2) == ["u", "u", "F"]


def test_a_new_task_starts_the_run_again():
    answers = [answer(YES, "episode-1"), answer(YES, "episode-2"), answer(YES, "episode-2")]
    assert published(FailureConfirmation(), answers, 2) == ["u", "u", "F"]


def test_a_task_set_by_parameters_without_an_id_starts_the_run_again_when_its_text_changes():
    answers = [answer(YES, "", task="stack"), answer(YES, "", task="sort"), answer(YES, "", task="sort")]
    assert published(FailureConfirmation(), answers, 2) == ["u", "u", "F"]


def test_a_held_back_failure_keeps_its_raw_answer_and_says_why():
    msg = FailureConfirmation().apply(answer(YES), 2)
    assert msg.verdict == FailureDetection.VERDICT_UNCERTAIN and msg.status == FailureDetection.STATUS_UNCERTAIN
    assert msg.answer == "A"
    assert "1 of the 2" in msg.status_message and "failure_confirmations" in msg.status_message


@pytest.mark.parametrize("needed", [2, 4])
def test_the_needed_count_can_change_between_answers(needed):
    confirm = FailureConfirmation()
    first = published(confirm, [answer(YES)], 8)
    assert first == ["u"]
    # the run so far counts toward the new setting
    rest = published(confirm, [answer(YES) for _ in range(needed - 1)], needed)
    assert rest == ["u"] * (needed - 2) + ["F"]

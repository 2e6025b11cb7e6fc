"""Evaluation scores like the reward, per category, and writes a table and a chart."""

from __future__ import annotations

import json

import pytest

from cosmos_ros.core.prompts import FAILURE_OPTIONS
from cosmos_ros.training.data import Record
from cosmos_ros.training.evaluate import (
    chance,
    majority,
    markdown_table,
    paired_differences,
    paired_table,
    summarize,
    write_report,
)


def _record(category: str, answer: str = "A", options=("x", "y")) -> Record:
    return Record(
        video=None, prompt_text="", reply="", options=tuple(options), answer=answer, category=category
    )


def test_accuracy_and_format_rate_per_category_use_the_reward_scoring():
    records = [_record("a/one"), _record("a/two"), _record("b/one", "B")]
    texts = [
        "<think>\n\n</think>\n\n<answer>\nA\n</answer>",  # right, strict
        "<answer>\nA\n</answer>",  # right, not strict
        "<think>\n\n</think>\n\n<answer>\nA\n</answer>",  # wrong
    ]
    results = summarize(records, texts, depth=1)
    assert results["a"] == {"accuracy": 1.0, "format": 0.5, "none": 0.0, "n": 2}
    assert results["b"]["accuracy"] == 0.0
    assert results["all"]["accuracy"] == pytest.approx(2 / 3)


def test_chance_is_one_over_the_number_of_options():
    results = chance([_record("a", options=("x", "y")), _record("b", options=("p", "q", "r", "s"))])
    assert results["a"]["accuracy"] == 0.5 and results["b"]["accuracy"] == 0.25
    assert results["all"]["accuracy"] == pytest.approx(0.375)


def test_majority_counts_the_most_frequent_answer_text_whatever_its_letter():
    yes_no, no_yes = ("yes", "no"), ("no", "yes")
    records = [
        _record("p", "A", yes_no), _record("p", "B", no_yes), _record("p", "A", no_yes),  # yes, yes, no
        _record("q", "C", ("l", "m", "n")),
    ]  # fmt: skip
    results = majority(records)
    assert results["p"]["accuracy"] == pytest.approx(2 / 3)  # "yes" twice, under two letters
    assert results["q"]["accuracy"] == 1.0
    assert results["all"] == {"accuracy": 0.75, "format": 0.0, "none": 0.0, "n": 4}


def test_report_writes_a_markdown_table_and_a_png_chart(tmp_path):
    records = [_record("a")]
    results = {"random": chance(records), "sft": summarize(records, ["<answer>\nA\n</answer>"])}
    files = write_report(results, tmp_path)
    assert files["chart"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = files["table"].read_text()
    assert table == markdown_table(results)
    assert "| a | 1 | 0.500 | 1.000 ± 0.000 |" in table and "format reward rate" in table


def test_failure_questions_also_score_detection_precision_recall_and_f1():
    records = [_record("robot/failure", "A", FAILURE_OPTIONS)] * 3 + [
        _record("robot/failure", "B", FAILURE_OPTIONS)
    ] * 2

    def says(letter: str) -> str:
        return f"<think>\n\n</think>\n\n<answer>\n{letter}\n</answer>"

    texts = [says("A"), says("A"), says("B"), says("A"), says("B")]  # tp, tp, fn, fp, tn
    row = summarize(records, texts)["robot"]
    assert row["failure_precision"] == pytest.approx(2 / 3) and row["failure_recall"] == pytest.approx(2 / 3)
    assert row["failure_f1"] == pytest.approx(2 / 3) and row["accuracy"] == pytest.approx(3 / 5)
    assert "failure_f1" not in summarize([_record("a")], [says("A")])["a"]
    assert "| robot: failure F1 | | 0.667 |" in markdown_table({"sft": summarize(records, texts)})


def test_the_table_gives_one_standard_error_beside_each_measured_accuracy():
    records = [_record("a")] * 4
    texts = ["<answer>\nA\n</answer>", "<answer>\nA\n</answer>", "<answer>\nB\n</answer>", "no idea"]
    table = markdown_table({"random": chance(records), "sft": summarize(records, texts)})
    assert "| a | 4 | 0.500 | 0.500 ± 0.250 |" in table  # sqrt(0.5 * 0.5 / 4)


def test_eval_through_a_serving_engine_scores_what_the_training_model_scores(toy_data, tmp_path, capsys):
    """The engine path (one clip at a time, as the reasoner asks) and the batched training path
    give the same answers to the same questions: same prompts, clips, processor and scoring."""
    from cosmos_ros.training.cli import main

    common = [
        "eval",
        "--model",
        "tiny-dense",
        "--data",
        str(toy_data),
        "--max-new-tokens",
        "8",
        "--no-random",
    ]
    assert main([*common, "--batch-size", "1", "--out", str(tmp_path / "batched")]) == 0  # no padding
    assert main([*common, "--engine", "torch", "--out", str(tmp_path / "engine")]) == 0

    def outputs(run: str) -> dict[str, str]:
        lines = (tmp_path / run / "samples_tiny-dense.jsonl").read_text().splitlines()
        return {json.loads(line)["id"]: json.loads(line)["output"] for line in lines}

    assert outputs("engine") == outputs("batched") and len(outputs("engine")) == 4
    assert main([*common, "--precision", "int8", "--out", str(tmp_path / "x")]) == 2  # needs --engine
    capsys.readouterr()


def _says(letter: str) -> str:
    return f"<think>\n\n</think>\n\n<answer>\n{letter}\n</answer>"


def test_paired_differences_score_each_question_twice_and_give_the_paired_error():
    quiz = [_record("quiz/a", "A")] * 10
    base = [_says("A")] * 6 + [_says("B")] * 4  # 0.6
    new = [_says("A")] * 5 + [_says("B")] + [_says("A")] * 3 + [_says("B")]  # 0.8: 3 gained, 1 lost
    row = paired_differences(quiz, base, new)["quiz"]
    assert row["n"] == 10 and row["base"] == pytest.approx(0.6) and row["new"] == pytest.approx(0.8)
    assert row["difference"] == pytest.approx(0.2) and row["changed"] == 4
    diffs = [0] * 5 + [-1] + [1] * 3 + [0]
    mean = sum(diffs) / 10
    assert row["se"] == pytest.approx((sum((d - mean) ** 2 for d in diffs) / 9 / 10) ** 0.5)
    same = paired_differences(quiz, base, base)["quiz"]
    assert same["difference"] == 0 and same["se"] == 0 and same["changed"] == 0


def test_paired_failure_f1_difference_and_its_bootstrap_error():
    robot = [_record("robot/failure", "A", FAILURE_OPTIONS)] * 4 + [
        _record("robot/failure", "B", FAILURE_OPTIONS)
    ] * 4
    base = [_says(x) for x in "ABBB" + "ABBB"]  # tp 1, fn 3, fp 1: F1 2/6
    new = [_says(x) for x in "AAAB" + "BBBB"]  # tp 3, fn 1, fp 0: F1 6/7
    rows = paired_differences(robot, base, new, resamples=300)
    f1 = rows["robot"]["failure_f1"]
    assert f1["base"] == pytest.approx(1 / 3) and f1["new"] == pytest.approx(6 / 7)
    assert f1["difference"] == pytest.approx(6 / 7 - 1 / 3)
    assert 0 < f1["se"] < 0.5
    assert "failure_f1" not in rows["all"]
    table = paired_table(rows, "sft", "grpo")
    assert "| robot | 8 | 0.500 | 0.875 | +0.375 ±" in table
    assert "| robot: failure F1 (paired bootstrap) | | 0.333 | 0.857 | +0.524 ±" in table

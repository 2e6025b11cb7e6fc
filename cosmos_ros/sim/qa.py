"""Question records in the Cosmos conversation shape, and the dataset card's statistics.

One JSONL line per question:
    {"id", "video", "question", "options", "answer" (letter), "answer_text", "category", "think",
     "task", "clip_id", "seed", "split", "conversations": [{"from": "human", "value": "<video>\\n" +
     prompt}, {"from": "gpt", "value": "<think>\\n…\\n</think>\\n\\n<answer>\\nB\\n</answer>"}]}
The human turn is built by cosmos_ros.core.prompts, exactly as the reasoner node asks at run
time (media first, lettered options, the reasoning add-on); the answer is the option letter.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from cosmos_ros.core.types import TaskKind
from cosmos_ros.sim.sample import Question

# (question category prefix, boolean clip label): a one-feature rule that should stay near chance.
SHORTCUT_PROBES = (
    ("object_permanence/plausibility", "final_frame_ball_visible"),
    ("arrow_of_time/", "ends_at_rest"),
    ("arrow_of_time/", "starts_at_rest"),
)


def question_from(data: dict) -> Question:
    convert = {"options": tuple, "kind": TaskKind}
    return Question(**{k: convert.get(k, lambda x: x)(v) for k, v in data.items()})


def qa_records(annotation: dict) -> list[dict]:
    records = []
    for i, data in enumerate(annotation["questions"]):
        question = question_from(data)
        prompt = question.prompt()
        think = question.think or ""
        reply = f"<think>\n{think}\n</think>\n\n<answer>\n{question.answer_letter}\n</answer>"
        records.append({
            "id": f"{annotation['clip_id']}_q{i}",
            "video": annotation["videos"][question.video]["path"],
            "question": prompt.text.split("\n", 1)[0] if question.kind != TaskKind.QUESTION else question.question,
            "options": list(question.options),
            "answer": question.answer_letter,
            "answer_text": question.answer_text,
            "category": question.category,
            "think": think,
            "task": annotation["task"],
            "clip_id": annotation["clip_id"],
            "seed": annotation["seed"],
            "split": annotation["split"],
            "conversations": [
                {"from": "human", "value": "<video>\n" + prompt.text},
                {"from": "gpt", "value": reply},
            ],
        })  # fmt: skip
    return records


def card_statistics(annotations: list[dict]) -> dict:
    """Counts per split/task/category/variant, answer distributions, shortcut probe accuracies."""
    per_split = Counter(a["split"] for a in annotations)
    per_task = Counter(a["task"] for a in annotations)
    variants = defaultdict(Counter)
    categories = defaultdict(Counter)
    letters = defaultdict(Counter)
    answers = defaultdict(Counter)
    for a in annotations:
        variants[a["task"]][a["variant"]] += 1
        for record in qa_records(a):
            categories[record["split"]][record["category"]] += 1
            letters[record["category"]][record["answer"]] += 1
            answers[record["category"]][record["answer_text"]] += 1
    return {
        "clips": len(annotations),
        "clips_per_split": dict(per_split),
        "clips_per_task": dict(per_task),
        "variants": {t: dict(c) for t, c in variants.items()},
        "questions_per_split_and_category": {s: dict(sorted(c.items())) for s, c in categories.items()},
        "answer_letters": {c: dict(sorted(v.items())) for c, v in sorted(letters.items())},
        "answers": {c: dict(v.most_common()) for c, v in sorted(answers.items())},
        "shortcut_probes": shortcut_probes(annotations),
    }


def shortcut_probes(annotations: list[dict]) -> list[dict]:
    """How well one label alone predicts the answer (best of the rule and its negation), next to
    always answering the most common answer. Near the majority baseline = no shortcut."""
    rows = []
    for prefix, feature in SHORTCUT_PROBES:
        # answers compared as option texts: the letter order is shuffled per question
        texts = [
            (bool(a["labels"][feature]), q["options"][q["answer"]])
            for a in annotations if feature in a["labels"]
            for q in a["questions"] if q["category"].startswith(prefix)
        ]  # fmt: skip
        if not texts:
            continue
        table = defaultdict(Counter)
        for value, text in texts:
            table[value][text] += 1
        rule = sum(c.most_common(1)[0][1] for c in table.values()) / len(texts)
        majority = Counter(t for _, t in texts).most_common(1)[0][1] / len(texts)
        rows.append({"category": prefix, "feature": feature, "questions": len(texts),
                     "rule_accuracy": round(rule, 3), "majority_accuracy": round(majority, 3)})  # fmt: skip
    return rows

"""Held-out MCQ accuracy by category, scored exactly as the GRPO reward scores (core.answers).

    results = evaluate_model("model/cosmos-reason1-tiny", ["data/sim"], split="test")
    write_report({"random": chance(records), "majority": majority(records), "sft": r1}, "runs/eval")

Generation is greedy (temperature 0, as served) with the same prompt, processor and positions as
the engine. Categories are the dataset's `category` field, cut to `depth` path parts
("object_permanence/plausibility" at depth 1 is "object_permanence").
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter, defaultdict
from pathlib import Path

import torch

from cosmos_ros.core.answers import AnswerStatus, accuracy_reward, format_reward, parse_answer
from cosmos_ros.core.prompts import FAILED_CHOICE, FAILURE_OPTIONS, OPTION_LETTERS
from cosmos_ros.training.data import Record

ALL = "all"
log = logging.getLogger(__name__)


def category_of(record: Record, depth: int) -> str:
    return "/".join(record.category.split("/")[:depth]) if depth > 0 else record.category


def chance(records: list[Record], depth: int = 1) -> dict:
    """Expected accuracy of uniform random guessing among the options, per category."""
    sums, counts = defaultdict(float), defaultdict(int)
    for r in records:
        for key in (category_of(r, depth), ALL):
            sums[key] += 1 / max(1, len(r.options))
            counts[key] += 1
    return {k: {"accuracy": sums[k] / counts[k], "format": 0.0, "none": 0.0, "n": counts[k]} for k in counts}


def answer_text(record: Record) -> str:
    """The reference answer as option text (a letter names its option), for comparing across orders."""
    if len(record.answer) == 1 and record.answer in OPTION_LETTERS[: len(record.options)]:
        return record.options[OPTION_LETTERS.index(record.answer)]
    return record.answer


def majority(records: list[Record], depth: int = 1) -> dict:
    """Accuracy of always giving each category's most frequent answer (as text, whatever its letter)
    among these records: what an answer prior alone scores. It sits above uniform guessing when a
    category's answers are unbalanced, and equals a letter prior when options come in a fixed order."""
    answers: dict[str, Counter] = defaultdict(Counter)
    for r in records:
        answers[category_of(r, depth)][answer_text(r)] += 1
    rows, total, hits = {}, 0, 0
    for key, counter in answers.items():
        n, top = sum(counter.values()), counter.most_common(1)[0][1]
        rows[key] = {"accuracy": top / n, "format": 0.0, "none": 0.0, "n": n}
        total, hits = total + n, hits + top
    rows[ALL] = {"accuracy": hits / max(1, total), "format": 0.0, "none": 0.0, "n": total}
    return rows


def summarize(records: list[Record], texts: list[str], depth: int = 1, answer_format: str = "tags") -> dict:
    """{category: {accuracy, format, none, n}} plus "all". Categories holding "did the robot
    fail?" questions (the failure prompt's options) also get the detection's failure_precision,
    failure_recall and failure_f1 ("Yes, the robot failed" is the positive)."""
    rows = defaultdict(lambda: {"accuracy": 0.0, "format": 0.0, "none": 0.0, "n": 0})
    detections: dict[str, Counter] = defaultdict(Counter)
    for record, text in zip(records, texts):
        acc = accuracy_reward(text, record.answer, record.options, answer_format)
        fmt = format_reward(text, answer_format)
        parsed = parse_answer(text, record.options, answer_format)
        none = float(parsed.status is AnswerStatus.NONE)
        for key in (category_of(record, depth), ALL):
            row = rows[key]
            row["accuracy"] += acc
            row["format"] += fmt
            row["none"] += none
            row["n"] += 1
        outcome = detection_outcome(record, parsed)
        if outcome:
            detections[category_of(record, depth)][outcome] += 1
    results = {
        k: {**{m: v[m] / v["n"] for m in ("accuracy", "format", "none")}, "n": v["n"]}
        for k, v in rows.items()
    }
    for key, counts in detections.items():
        results[key].update(detection_scores(counts["tp"], counts["fp"], counts["fn"]))
    return results


def detection_outcome(record: Record, parsed) -> str | None:
    """ "tp", "fn", "fp" or "tn" of a "did the robot fail?" question's parsed answer ("Yes, the robot
    failed" is the positive); None for any other question."""
    if tuple(record.options) != FAILURE_OPTIONS:
        return None
    failed = answer_text(record) == FAILURE_OPTIONS[FAILED_CHOICE]
    said = parsed.status is AnswerStatus.OK and parsed.choice_index == FAILED_CHOICE
    return "tp" if failed and said else "fn" if failed else "fp" if said else "tn"


def paired_differences(
    records: list[Record], base: list[str], new: list[str], depth: int = 1, *, resamples: int = 1000,
    seed: int = 0, answer_format: str = "tags",
) -> dict:  # fmt: skip
    """How `new` answers differ from `base` on the same questions, per category and "all":
    {n, base, new, difference, se, changed}, the standard error that of the mean per-question
    difference (paired: much smaller than two binomial errors when the models mostly agree). Failure
    categories also get failure_f1 {base, new, difference, se}, the error from a paired bootstrap
    (`resamples` draws of the category's questions with replacement)."""
    import random

    scores: dict[str, list[tuple[float, float]]] = defaultdict(list)
    outcomes: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for record, a, b in zip(records, base, new, strict=True):
        pair = (accuracy_reward(a, record.answer, record.options, answer_format),
                accuracy_reward(b, record.answer, record.options, answer_format))  # fmt: skip
        for key in (category_of(record, depth), ALL):
            scores[key].append(pair)
        first = detection_outcome(record, parse_answer(a, record.options, answer_format))
        if first:
            second = detection_outcome(record, parse_answer(b, record.options, answer_format))
            outcomes[category_of(record, depth)].append((first, second))
    results = {}
    for key, pairs in scores.items():
        n = len(pairs)
        diffs = [b - a for a, b in pairs]
        mean, sd = _mean_and_sd(diffs)
        results[key] = {
            "n": n, "base": sum(a for a, _ in pairs) / n, "new": sum(b for _, b in pairs) / n,
            "difference": mean, "se": sd / math.sqrt(n), "changed": sum(1 for d in diffs if d),
        }  # fmt: skip
    rng = random.Random(seed)

    def f1(sample: list[tuple[str, str]], which: int) -> float:
        counts = Counter(pair[which] for pair in sample)
        return detection_scores(counts["tp"], counts["fp"], counts["fn"])["failure_f1"]

    for key, pairs in outcomes.items():
        draws = []
        for _ in range(resamples):
            sample = rng.choices(pairs, k=len(pairs))
            draws.append(f1(sample, 1) - f1(sample, 0))
        _, se = _mean_and_sd([d for d in draws if not math.isnan(d)])  # the bootstrap's spread
        results[key]["failure_f1"] = {"base": f1(pairs, 0), "new": f1(pairs, 1),
                                      "difference": f1(pairs, 1) - f1(pairs, 0), "se": se}  # fmt: skip
    return results


def _mean_and_sd(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (nan where there are too few values)."""
    n = len(values)
    mean = sum(values) / n if n else float("nan")
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else float("nan")
    return mean, sd


def paired_table(results: dict, base: str, new: str) -> str:
    """Markdown: per category n, both accuracies, the difference ± its paired standard error."""
    lines = [
        f"| category | n | {base} | {new} | {new} − {base} | answers changed |",
        "|---|---|---|---|---|---|",
    ]
    keys = sorted(k for k in results if k != ALL) + [ALL]
    for key in keys:
        r = results[key]
        lines.append(f"| {key} | {r['n']} | {r['base']:.3f} | {r['new']:.3f} | "
                     f"{r['difference']:+.3f} ± {r['se']:.3f} | {r['changed']} |")  # fmt: skip
    for key in keys:
        f = results[key].get("failure_f1")
        if f:
            lines.append(f"| {key}: failure F1 (paired bootstrap) | | {f['base']:.3f} | {f['new']:.3f} | "
                         f"{f['difference']:+.3f} ± {f['se']:.3f} | |")  # fmt: skip
    return "\n".join(lines) + "\n"


def detection_scores(tp: int, fp: int, fn: int) -> dict:
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
    return {"failure_precision": precision, "failure_recall": recall, "failure_f1": f1}


def standard_error(accuracy: float, n: int) -> float:
    """Of an accuracy measured on n independent questions (binomial)."""
    return math.sqrt(max(accuracy * (1 - accuracy), 0.0) / n) if n else float("nan")


@torch.no_grad()
def generate_answers(
    model, tokenizer, datamodule, split: str, max_new_tokens: int
) -> tuple[list[Record], list[str]]:
    from cosmos_ros.training.grpo import prompt_only
    from cosmos_ros.training.rollout import sample

    model.eval()
    records, texts = [], []
    for batch in datamodule._loader(split, datamodule.hparams.eval_batch_size, shuffle=False):
        if batch is None:
            continue
        out = sample(model, prompt_only(batch), tokenizer, max_new_tokens=max_new_tokens, temperature=0.0)
        records += batch["records"]
        texts += out.texts
    return records, texts


def evaluate_model(model: str, data_dirs: list[str], split: str = "test", *, max_new_tokens: int = 64,
                   depth: int = 1, batch_size: int = 32, limit: int | None = None, seed: int = 0,
                   samples_out: str | Path | None = None) -> tuple[dict, list[Record]]:  # fmt: skip
    """(per-category results, the scored records) of a preset (random init from seed) or checkpoint dir."""
    from cosmos_ros.training.datamodule import VideoQADataModule
    from cosmos_ros.training.sft import load_trainable

    net, tokenizer, processor, _ = load_trainable(model, seed)
    dm = VideoQADataModule(
        data_dirs, model=model, eval_batch_size=batch_size, limit_eval=limit, test_split=split
    )
    records, texts = generate_answers(net, tokenizer, dm, split, max_new_tokens)
    _write_samples(samples_out, records, texts)
    results = summarize(records, texts, depth, processor.answer_format)
    results["_skipped"] = dict(dm.skips)
    return results, records


def engine_answers(engine, records: list[Record], *, fps: float, max_frames: int = 16,
                   max_new_tokens: int = 64, progress=None) -> tuple[list[Record], list[str]]:  # fmt: skip
    """(the records answered, the answers) of a serving engine (any backend, e.g. onnxruntime
    int8), greedy, one clip at a time as the reasoner asks; a clip that cannot be read is skipped
    with a warning. Clips are sampled as the training data module samples them."""
    from cosmos_ros.core.types import Prompt
    from cosmos_ros.training.data import read_video

    last: tuple[Path | None, object] = (None, None)  # questions about one clip come in a row
    answered, texts = [], []
    task = progress.add_task(f"{engine.model_id} answers", total=len(records)) if progress else None
    for record in records:
        if last[0] != record.video:
            try:
                last = (record.video, read_video(record.video, fps, max_frames))
            except ValueError as exc:
                log.warning("skipped %s: %s", record.id or record.video, exc)
                last = (record.video, None)
        clip = last[1]
        if clip is not None:
            prompt = Prompt(text=record.prompt_text, options=record.options)
            texts.append(engine.reason(clip, prompt, max_new_tokens=max_new_tokens).text)
            answered.append(record)
        if progress is not None:
            progress.advance(task)
    return answered, texts


def evaluate_engine(engine, data_dirs: list[str], split: str = "test", *, max_new_tokens: int = 64,
                    depth: int = 1, limit: int | None = None, max_frames: int = 16,
                    samples_out: str | Path | None = None) -> tuple[dict, list[Record]]:  # fmt: skip
    """`evaluate_model` through a serving engine (onnxruntime, int8 weights, TensorRT, ...):
    the same records, clip sampling and scoring, one clip at a time as the reasoner asks."""
    from cosmos_ros.training.data import SkipCounter, read_split

    skips = SkipCounter()
    records = read_split(data_dirs, split, skips)
    records = records[:limit] if limit else records
    fps = engine.processor.media.default_fps
    answered, texts = engine_answers(
        engine, records, fps=fps, max_frames=max_frames, max_new_tokens=max_new_tokens
    )
    skips["unreadable_clip"] += len(records) - len(answered)
    _write_samples(samples_out, answered, texts)
    results = summarize(answered, texts, depth, engine.answer_format)
    results["_skipped"] = {k: v for k, v in skips.items() if v}
    return results, answered


def _write_samples(samples_out: str | Path | None, records: list[Record], texts: list[str]) -> None:
    if samples_out:
        Path(samples_out).parent.mkdir(parents=True, exist_ok=True)
        with open(samples_out, "w") as f:
            f.writelines(
                json.dumps({"id": r.id, "category": r.category, "answer": r.answer, "output": t}) + "\n"
                for r, t in zip(records, texts)
            )


def markdown_table(results: dict[str, dict]) -> str:
    """One row per category, accuracy ± one standard error per model ("random" is an expectation,
    shown bare); failure-detection F1 rows where a category has them; the format-reward rate last."""
    names = list(results)
    categories = sorted({c for r in results.values() for c in r if not c.startswith("_")} - {ALL}) + [ALL]
    lines = ["| category | n | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]

    def cell(name: str, row: dict | None) -> str:
        if row is None:
            return "–"
        if name == "random":
            return f"{row['accuracy']:.3f}"
        return f"{row['accuracy']:.3f} ± {standard_error(row['accuracy'], row['n']):.3f}"

    for c in categories:
        n = next((r[c]["n"] for r in results.values() if c in r), 0)
        lines.append(f"| {c} | {n} | " + " | ".join(cell(m, results[m].get(c)) for m in names) + " |")
    for c in categories:
        if any("failure_f1" in r.get(c, {}) for r in results.values()):
            cells = [f"{results[m][c]['failure_f1']:.3f}" if "failure_f1" in results[m].get(c, {}) else "–"
                     for m in names]  # fmt: skip
            lines.append(f"| {c}: failure F1 | | " + " | ".join(cells) + " |")
    cells = [f"{results[m][ALL]['format']:.3f}" if ALL in results[m] else "–" for m in names]
    lines.append("| format reward rate | | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_report(
    results: dict[str, dict], out: str | Path, title: str = "held-out MCQ accuracy"
) -> dict[str, Path]:
    """table.md, results.json and chart.png (grouped bars: accuracy per category per model) in `out`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(markdown_table(results))
    (out / "results.json").write_text(json.dumps(results, indent=1))
    names = list(results)
    categories = sorted({c for r in results.values() for c in r if not c.startswith("_")} - {ALL}) + [ALL]
    width = 0.8 / max(1, len(names))
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(categories), 3.6))
    for i, name in enumerate(names):
        values = [results[name].get(c, {}).get("accuracy", 0.0) for c in categories]
        ax.bar([x + i * width for x in range(len(categories))], values, width, label=name)
    ticks = [x + width * (len(names) - 1) / 2 for x in range(len(categories))]
    ax.set_xticks(ticks, categories, fontsize=8, rotation=25, ha="right")  # long names stay apart
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "chart.png", dpi=120)
    plt.close(fig)
    return {"table": out / "table.md", "chart": out / "chart.png", "results": out / "results.json"}

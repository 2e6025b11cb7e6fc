"""Datasets on disk: clips, annotations, QA JSONL per split, a dataset card; resumable.

    OUT/clips/<task>/<clip_id>.mp4            what the model sees (+ <clip_id>_<video>.mp4 prefixes)
    OUT/usd/<task>/<clip_id>.usda             the physical run, for Isaac Sim
    OUT/annotations/<task>/<clip_id>.json     labels, questions, split, file hashes — written last
    OUT/{train,val,test}.jsonl                questions in the Cosmos conversation shape (qa.py)
    OUT/card.json, OUT/README.md              the dataset card
    OUT/preview/<task>.png                    contact sheets (--preview)

A clip is done when its annotation exists, names the current config fingerprint, and every file
it lists exists with the recorded SHA-256. Anything else (a crash mid-clip, a truncated or
corrupted video, a changed config) is deleted and generated again. The split of a clip is a
function of its seed alone, so re-running with more clips never moves a clip between splits.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cosmos_ros.sim import scenarios
from cosmos_ros.sim.config import TaskConfig, clip_id, clip_seed, to_plain
from cosmos_ros.sim.qa import card_statistics, qa_records
from cosmos_ros.sim.usd import export_usd
from cosmos_ros.sim.video import sha256, write_mp4

SPLITS = ("train", "val", "test")


def split_of(seed: int, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> str:
    """train/val/test from the clip seed alone (seeds are hashes, so this is uniform)."""
    u = (seed % 1_000_003) / 1_000_003
    return "train" if u < fractions[0] else "val" if u < fractions[0] + fractions[1] else "test"


def annotation_path(out: Path, task: str, index: int) -> Path:
    return out / "annotations" / task / f"{clip_id(task, index)}.json"


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.stem + ".tmp" + path.suffix)
    partial.write_text(json.dumps(data, indent=1))
    os.replace(partial, path)


def make_clip(cfg: TaskConfig, index: int, out: Path, *, usd: bool = True, fractions=(0.8, 0.1, 0.1)) -> dict:
    """Generates clip `index` of the config into `out`; returns its annotation."""
    out = Path(out)
    seed = clip_seed(cfg.task, cfg.seed, index)
    cid = clip_id(cfg.task, index)
    sample = scenarios.generate(cfg, seed=seed)
    r = cfg.render
    files = {}
    for name in ["clip", *sample.videos]:
        relative = f"clips/{cfg.task}/{cid}.mp4" if name == "clip" else f"clips/{cfg.task}/{cid}_{name}.mp4"
        frames = sample.video_frames(name)
        write_mp4(out / relative, frames, sample.fps)
        files[name] = {"path": relative, "sha256": sha256(out / relative), "frames": int(frames.shape[0])}
    usd_file = None
    if usd:
        relative = f"usd/{cfg.task}/{cid}.usda"
        meta = {"task": cfg.task, "clip_id": cid, "seed": seed, "variant": sample.variant, "fps": sample.fps}
        export_usd(
            sample.sim,
            sample.trajectory,
            out / relative,
            sample.fps,
            width=r.width,
            height=r.height,
            metadata=meta,
        )
        usd_file = {"path": relative, "sha256": sha256(out / relative)}
    annotation = {
        "clip_id": cid,
        "task": cfg.task,
        "index": index,
        "seed": seed,
        "split": split_of(seed, fractions),
        "variant": sample.variant,
        "scene_key": sample.scene_key,
        "config_fingerprint": cfg.fingerprint(),
        "fps": sample.fps,
        "width": r.width,
        "height": r.height,
        "videos": files,
        "usd": usd_file,
        "questions": [asdict(q) for q in sample.questions],
        "labels": sample.labels,
    }
    _write_json(annotation_path(out, cfg.task, index), annotation)
    return annotation


def check_clip(out: Path, cfg: TaskConfig, index: int, *, usd: bool = True) -> str:
    """'' when clip `index` is complete and intact, else why it must be generated again."""
    path = annotation_path(out, cfg.task, index)
    if not path.is_file():
        return "missing"
    try:
        annotation = json.loads(path.read_text())
        listed = list(annotation["videos"].values()) + ([annotation["usd"]] if annotation.get("usd") else [])
    except (ValueError, KeyError, AttributeError) as exc:
        return f"unreadable annotation ({exc})"
    if annotation.get("config_fingerprint") != cfg.fingerprint():
        return "made with another config"
    if usd and not annotation.get("usd"):
        return "has no USD export"
    for entry in listed:
        file = out / entry["path"]
        if not file.is_file():
            return f"{entry['path']} is missing"
        if sha256(file) != entry["sha256"]:
            return f"{entry['path']} is corrupt (checksum mismatch)"
    return ""


def remove_clip(out: Path, task: str, index: int) -> None:
    cid = clip_id(task, index)
    for folder, pattern in (
        ("clips", f"{cid}*.mp4"),
        ("usd", f"{cid}*.usda"),
        ("annotations", f"{cid}*.json"),
    ):
        for file in (out / folder / task).glob(pattern):
            file.unlink()


def _job(cfg: TaskConfig, index: int, out: str, usd: bool, fractions) -> tuple[str, int, str]:
    """Worker entry: (task, index, error text or '')."""
    try:
        make_clip(cfg, index, Path(out), usd=usd, fractions=fractions)
        return cfg.task, index, ""
    except Exception:  # noqa: BLE001 - one bad clip must not stop the others; reported at the end
        return cfg.task, index, traceback.format_exc(limit=3)


@dataclass
class Report:
    generated: int = 0
    skipped: int = 0
    regenerated: dict[str, str] = field(default_factory=dict)  # clip id -> why
    failed: dict[str, str] = field(default_factory=dict)
    card: dict = field(default_factory=dict)


def generate_dataset(
    configs: list[TaskConfig], n: int, out: Path, *, workers: int = 1, usd: bool = True,
    fractions=(0.8, 0.1, 0.1), progress=None,
) -> Report:  # fmt: skip
    """Generates n clips per config into out (skipping intact ones), then the JSONL and card.

    progress: None or a callable(done, total, description) for a progress display."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("**/*.tmp.*"):  # a previous run died mid-write
        stale.unlink()
    report = Report()
    pending = []
    for cfg in configs:
        for index in range(n):
            why = check_clip(out, cfg, index, usd=usd)
            if not why:
                report.skipped += 1
                continue
            if why != "missing":
                report.regenerated[clip_id(cfg.task, index)] = why
            remove_clip(out, cfg.task, index)
            pending.append((cfg, index))
    total, done = len(pending), 0
    if progress:
        progress(0, total, f"{report.skipped} intact clips kept")
    if workers <= 1 or total <= 1:
        results = (_job(cfg, index, str(out), usd, fractions) for cfg, index in pending)
        for task, index, error in results:
            done += 1
            _count(report, task, index, error)
            if progress:
                progress(done, total, clip_id(task, index))
    else:
        # spawn: every worker makes its own EGL context; forked GL state is not safe to share
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = [pool.submit(_job, cfg, index, str(out), usd, fractions) for cfg, index in pending]
            for future in as_completed(futures):
                task, index, error = future.result()
                done += 1
                _count(report, task, index, error)
                if progress:
                    progress(done, total, clip_id(task, index))
    report.card = write_index(out, configs, n)
    return report


def _count(report: Report, task: str, index: int, error: str) -> None:
    if error:
        report.failed[clip_id(task, index)] = error
    else:
        report.generated += 1


def load_annotations(out: Path, configs: list[TaskConfig], n: int) -> list[dict]:
    annotations = []
    for cfg in configs:
        for index in range(n):
            path = annotation_path(out, cfg.task, index)
            if path.is_file():
                annotations.append(json.loads(path.read_text()))
    return annotations


def leakage(annotations: list[dict]) -> list[str]:
    """Anything shared between splits: clip ids, seeds, physical set-ups (scene keys), files."""
    problems = []
    for key in ("clip_id", "seed", "scene_key"):
        seen: dict = {}
        for a in annotations:
            other = seen.setdefault(a[key], a["split"])
            if other != a["split"]:
                problems.append(f"{key} {a[key]} is in both {other} and {a['split']}")
    files: dict = {}
    for a in annotations:
        for entry in a["videos"].values():
            other = files.setdefault(entry["sha256"], a["split"])
            if other != a["split"]:
                problems.append(f"video {entry['path']} has a twin in {other}")
    return problems


def write_index(out: Path, configs: list[TaskConfig], n: int) -> dict:
    """QA JSONL per split and the dataset card, from the annotations on disk."""
    annotations = load_annotations(out, configs, n)
    problems = leakage(annotations)
    if problems:
        raise RuntimeError("split leakage: " + "; ".join(problems[:5]))
    for split in SPLITS:
        lines = [json.dumps(r) for a in annotations if a["split"] == split for r in qa_records(a)]
        (out / f"{split}.jsonl").write_text("".join(line + "\n" for line in lines))
    card = {
        "configs": {cfg.task: to_plain(cfg) for cfg in configs},
        "clips_per_task_requested": n,
        "leakage": problems,
        **card_statistics(annotations),
    }
    _write_json(out / "card.json", card)
    (out / "README.md").write_text(card_markdown(card))
    return card


def card_markdown(card: dict) -> str:
    lines = [
        "# Simulated video QA dataset (cosmos_ros.sim)",
        "",
        "Generated by `cosmos-ros gen-data`. Clips are MuJoCo renders; every answer comes from the",
        "simulation state, not from the script that staged it. Splits are a function of each clip's seed.",
        "",
        f"Clips: {card['clips']} — "
        + ", ".join(f"{k}: {v}" for k, v in sorted(card["clips_per_split"].items())),
        "",
        "## Questions per split and category",
        "",
        "| split | category | questions |",
        "|---|---|---|",
    ]
    for split, counts in sorted(card["questions_per_split_and_category"].items()):
        lines += [f"| {split} | {category} | {count} |" for category, count in counts.items()]
    lines += ["", "## Answer letters per category", "", "| category | letters |", "|---|---|"]
    lines += [
        f"| {c} | {', '.join(f'{k}: {v}' for k, v in d.items())} |" for c, d in card["answer_letters"].items()
    ]
    lines += ["", "## Answers per category", "", "| category | answer | count |", "|---|---|---|"]
    lines += [f"| {c} | {a} | {n} |" for c, d in card["answers"].items() for a, n in d.items()]
    lines += ["", "## Variants", "", "| task | variant | clips |", "|---|---|---|"]
    lines += [f"| {t} | {v} | {n} |" for t, d in card["variants"].items() for v, n in sorted(d.items())]
    lines += [
        "", "## Shortcut probes", "",
        "One label alone used as the answer rule, against always giving the most common answer.",
        "A rule far above the majority baseline would be a shortcut the model could learn",
        "instead of the physics.",
        "", "| category | feature | questions | rule accuracy | majority accuracy |", "|---|---|---|---|---|",
    ]  # fmt: skip
    lines += [
        f"| {p['category']} | {p['feature']} | {p['questions']} | {p['rule_accuracy']} "
        f"| {p['majority_accuracy']} |"
        for p in card["shortcut_probes"]
    ]
    return "\n".join(lines) + "\n"

"""`cosmos-ros gen-data`: generate simulated video QA datasets.

    cosmos-ros gen-data --tasks object_permanence,arrow_of_time --n 200 --out data/sim --workers 2 --preview

Tasks are names (their YAML in sim/, see `scenario_dirs`) or paths to scenario YAML files; `all`
means every task. Re-running the same command resumes: intact clips are kept, missing or
corrupt ones are generated again.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from cosmos_ros.sim.config import TASK_NAMES  # light: `cosmos-ros --help` must not load mujoco


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "gen-data",
        help="generate simulated clips + QA (object permanence, arrow of time, puzzles, manipulation)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument(
        "--tasks", default="all", help=f"comma-separated: {', '.join(TASK_NAMES)}, YAML paths, or 'all'"
    )
    parser.add_argument("--n", type=int, help="clips per task (required unless --show-config)")
    parser.add_argument("--out", type=Path, help="output directory (resumable; required unless --show-config)")
    parser.add_argument(
        "--show-config", action="store_true",
        help="print each task's effective config (every field: the code's defaults with the YAML's "
        "overrides and the options here) as YAML, and exit",
    )  # fmt: skip
    parser.add_argument("--workers", type=int, default=1, help="parallel worker processes (default 1)")
    parser.add_argument(
        "--preview", action="store_true", help="write a contact-sheet PNG per task to OUT/preview/"
    )
    parser.add_argument("--seed", type=int, default=None, help="base seed (default: each config's own)")
    parser.add_argument("--width", type=int, default=None, help="frame width (default: the config's)")
    parser.add_argument("--height", type=int, default=None, help="frame height")
    parser.add_argument("--fps", type=float, default=None, help="frames per second")
    parser.add_argument("--frames", type=int, default=None, help="frames per clip")
    parser.add_argument("--splits", default="0.8,0.1,0.1", help="train,val,test fractions")
    parser.add_argument("--no-usd", action="store_true", help="skip the per-clip USD export")
    return parser


def run(ns: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from cosmos_ros.sim.dataset import generate_dataset
    from cosmos_ros.sim.preview import contact_sheet
    from cosmos_ros.sim.scenarios import load_config

    console = Console(stderr=True)
    try:
        fractions = tuple(float(f) for f in ns.splits.split(","))
        if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
            raise ValueError(f"--splits needs three non-negative fractions summing to 1, got {ns.splits!r}")
        if not ns.show_config and (ns.n is None or ns.out is None):
            raise ValueError("--n and --out are required (or --show-config)")
        if not ns.show_config and (ns.n < 1 or ns.workers < 1):
            raise ValueError("--n and --workers must be >= 1")
        names = (
            list(TASK_NAMES) if ns.tasks == "all" else [t.strip() for t in ns.tasks.split(",") if t.strip()]
        )
        render = {"width": ns.width, "height": ns.height, "fps": ns.fps, "num_frames": ns.frames}
        configs = [load_config(name, **render) for name in names]
        if ns.seed is not None:
            configs = [dataclasses.replace(c, seed=ns.seed) for c in configs]
        if len({c.task for c in configs}) != len(configs):
            raise ValueError("each task may be given once")
    except ValueError as exc:
        console.print(f"[red]cosmos-ros gen-data: {exc}[/]")
        return 2
    if ns.show_config:
        import yaml

        from cosmos_ros.sim.config import to_plain

        print(yaml.safe_dump_all([to_plain(c) for c in configs], sort_keys=False, default_flow_style=None), end="")
        return 0

    os.environ.setdefault("MUJOCO_GL", "egl")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        job = bar.add_task("clips", total=None)

        def progress(done: int, total: int, description: str) -> None:
            bar.update(job, completed=done, total=total, description=description)

        report = generate_dataset(
            configs,
            ns.n,
            ns.out,
            workers=ns.workers,
            usd=not ns.no_usd,
            fractions=fractions,
            progress=progress,
        )
    for clip, why in report.regenerated.items():
        console.print(f"regenerated {clip}: {why}")
    for clip, error in report.failed.items():
        console.print(f"[red]failed {clip}:[/]\n{error}")
    if ns.preview:
        for cfg in configs:
            sheet = contact_sheet(ns.out, cfg.task)
            if sheet:
                console.print(f"preview: {sheet}")
    card = report.card
    splits = ", ".join(f"{k} {v}" for k, v in sorted(card.get("clips_per_split", {}).items()))
    console.print(
        f"{report.generated} clips generated, {report.skipped} kept, {len(report.failed)} failed; "
        f"{card.get('clips', 0)} clips in {ns.out} ({splits})"
    )
    return 1 if report.failed else 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (`python -m cosmos_ros.sim.cli ...`) until `cosmos-ros gen-data` is wired."""
    parser = argparse.ArgumentParser(prog="cosmos-ros")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

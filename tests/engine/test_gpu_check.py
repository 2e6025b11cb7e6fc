"""scripts/gpu_check.sh --dry-run on this machine: every step's files exist, its GPU tests
collect, and each benchmark or script takes the options the check gives it; one JSON summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def dry_run(out: Path, script: Path = ROOT / "scripts" / "gpu_check.sh") -> tuple[int, dict]:
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(script), "--dry-run"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=240, check=False)  # fmt: skip
    return done.returncode, json.loads((out / "summary.json").read_text())


def test_the_dry_run_checks_every_step_and_writes_one_summary(tmp_path):
    code, summary = dry_run(tmp_path)
    assert code == 0 and summary["dry_run"] is True
    steps = {s["step"]: s for s in summary["steps"]}
    assert {"gpu", "tests", "model", "engines", "vllm"} <= set(steps)
    assert summary["ok"], [(s["step"], s["tail"]) for s in summary["steps"] if s["exit"]]
    assert all("checked, not run (exit 0)" in s["tail"][-1] for s in summary["steps"])


def test_the_run_keeps_to_its_budget_skipping_what_does_not_fit(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable, "BUDGET": "15"}
    subprocess.run(["bash", "scripts/gpu_check.sh", "--dry-run"], cwd=ROOT, env=env, capture_output=True, timeout=60,
                   check=False)  # fmt: skip
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["steps"] and all(s["exit"] is None for s in summary["steps"])  # all skipped: under 20 s left
    assert "budget left" in (tmp_path / "summary.txt").read_text()


def test_a_step_given_an_option_its_script_lacks_fails_the_dry_run(tmp_path):
    broken = tmp_path / "gpu_check.sh"
    text = (ROOT / "scripts" / "gpu_check.sh").read_text()
    broken.write_text(text.replace("--new-tokens 32", "--new-tokenz 32"))
    _, summary = dry_run(tmp_path / "out", broken)
    model = next(s for s in summary["steps"] if s["step"] == "model")
    assert not summary["ok"] and model["exit"] == 2 and any("takes no --new-tokenz" in line for line in model["tail"])

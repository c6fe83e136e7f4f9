"""`python -m emulator` on the real project: --json documents, exit codes, the registry across runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PROJECT = Path(__file__).resolve().parents[2]


def emulator(*args: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "emulator", *args, "--quiet"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
        check=False,
        timeout=600,
    )
    assert done.stdout.count("\n") == 1, done.stdout[-2000:] + done.stderr[-3000:]  # one JSON document
    return done.returncode, json.loads(done.stdout)


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("cli-state"))


@pytest.fixture(scope="module")
def rejected_first(state_dir: str, slices: dict[str, Path]) -> tuple[int, dict[str, Any]]:
    """A fresh registry and a gate nothing passes: rejected, with no champion to score with."""
    return emulator(
        "run",
        "--dataset",
        str(slices["third"]),
        "--state-dir",
        state_dir,
        "--json",
        "--env",
        "MIN_ROC_AUC=0.99",
        "--algorithm",
        "LogisticRegression",
    )


@pytest.fixture(scope="module")
def approved_second(
    state_dir: str, slices: dict[str, Path], rejected_first: Any
) -> tuple[int, dict[str, Any]]:
    # the console input path again (--algorithm), with the fastest estimator: the registry is tested here
    return emulator(
        "run",
        "--dataset",
        str(slices["first"]),
        "--state-dir",
        state_dir,
        "--json",
        "--algorithm",
        "LogisticRegression",
    )


def test_rejected_without_champion_fails_the_run_with_exit_one(
    rejected_first: tuple[int, dict[str, Any]],
) -> None:
    code, summary = rejected_first
    assert code == 1
    assert summary["status"] == "FAILED" and summary["error"] == "ModelRejected"
    assert summary["decision"] == "rejected"
    assert summary["model_version"] == 1 and summary["champion_version"] is None
    assert "NoModelToScore" in [s["state"] for s in summary["states"]]
    assert summary["predictions"] is None


def test_second_run_continues_the_registry_and_becomes_champion(
    approved_second: tuple[int, dict[str, Any]],
) -> None:
    code, summary = approved_second
    assert code == 0, summary.get("cause")
    assert summary["status"] == "SUCCEEDED" and summary["decision"] == "approved"
    assert summary["model_version"] == 2 and summary["champion_version"] == 2
    assert {"roc_auc", "pr_auc"} <= set(summary["metrics"])
    assert (
        Path(summary["predictions"])
        .read_text()
        .startswith("encounter_id,probability,prediction,not_scored_reason\n")
    )
    assert summary["drift"] is not None
    assert Path(summary["model_report"]).name == "report.md"


def test_models_json_lists_every_version_with_the_champion_flag(state_dir: str, approved_second: Any) -> None:
    code, document = emulator("models", "--json", "--state-dir", state_dir)
    assert code == 0
    rows = {row["version"]: row for row in document["models"]}
    assert rows[1]["status"] == "REJECTED" and rows[1]["champion"] is False
    assert rows[2]["status"] == "APPROVED" and rows[2]["champion"] is True
    assert rows[2]["model_name"] == "medication-adherence-model" and "roc_auc" in json.dumps(
        rows[2]["metrics"]
    )

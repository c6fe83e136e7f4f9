"""`python -m emulator` on the real project, as a user sees it: the handlers' Powertools lines are in
`<state-dir>/logs/lambda/<function>.log` whatever the flags; on the terminal --quiet shows none of
them, the default shows each whole, between the entry and the exit of the state whose function wrote
it. A run that fails at PrepareRun (a dataset that does not exist) takes seconds and reaches three
functions (PrepareRun raises, RecordOutcome records the failure)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
PREPARE = "readmission-local-PrepareRunFunction"
RECORD = "readmission-local-RecordOutcomeFunction"


def start_missing_dataset(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    execution_input = tmp_path / "input.json"
    execution_input.write_text(
        json.dumps({"datasetUri": "s3://readmission-local-artifactbucket/datasets/missing.csv"})
    )
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "emulator",
            "start",
            "--input",
            str(execution_input),
            "--state-dir",
            str(tmp_path / "state"),
            *flags,
        ],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
        check=False,
        timeout=300,
    )


def _index(lines: list[str], text: str) -> int:
    return next(i for i, line in enumerate(lines) if line.endswith(text) or text in line)


def _handler_lines(stderr: str, function: str) -> list[str]:
    prefix = f"    | {function} | "
    return [line[len(prefix) :] for line in stderr.splitlines() if line.startswith(prefix)]


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    tmp_path = tmp_path_factory.mktemp("cli-logs")
    return start_missing_dataset(tmp_path), tmp_path / "state"


def test_by_default_each_handler_line_is_shown_whole_inside_its_state(
    default_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    done, _state = default_run
    lines = done.stderr.splitlines()

    assert done.returncode == 1, done.stderr[-2000:]
    prepare = _handler_lines(done.stderr, PREPARE)
    record = _handler_lines(done.stderr, RECORD)
    assert json.loads(prepare[0])["message"] == "input rejected"  # each a whole JSON line
    assert json.loads(record[0])["message"] == "run failed"
    assert _index(lines, "-> PrepareRun") < _index(lines, PREPARE) < _index(lines, "<- PrepareRun caught")
    assert _index(lines, "-> RecordFailure") < _index(lines, RECORD) < _index(lines, "<- RecordFailure ok")
    assert "Traceback" not in done.stderr


def test_the_handler_lines_and_the_traceback_are_in_the_functions_log_files(
    default_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    done, state = default_run
    log_dir = state / "logs" / "lambda"

    prepare = (log_dir / f"{PREPARE}.log").read_text()
    assert '"message":"input rejected"' in prepare
    assert "[ERROR] InvalidInput: dataset s3://readmission-local-artifactbucket/datasets/missing" in prepare
    assert "Traceback (most recent call last):" in prepare
    assert '"message":"run failed"' in (log_dir / f"{RECORD}.log").read_text()
    assert f"the functions' logs (CloudWatch Logs /aws/lambda/<function>): {log_dir}" in done.stderr


def test_quiet_shows_no_handler_line_and_keeps_them_in_the_log_files(tmp_path: Path) -> None:
    done = start_missing_dataset(tmp_path, "--quiet")

    assert done.returncode == 1, done.stderr[-2000:]
    assert '"level"' not in done.stderr and '"_aws"' not in done.stderr, done.stderr[-2000:]
    assert "-> PrepareRun" in done.stderr  # the progress itself is still there
    assert "PrepareRunFunction raised InvalidInput" in done.stderr  # and what failed, in a sentence
    log_dir = tmp_path / "state" / "logs" / "lambda"
    assert '"message":"input rejected"' in (log_dir / f"{PREPARE}.log").read_text()
    assert '"message":"run failed"' in (log_dir / f"{RECORD}.log").read_text()

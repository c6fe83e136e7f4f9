"""State persists across runtimes; the CLI's outputs and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from emulator.cli import main
from emulator.progress import Progress
from emulator.runtime import LocalRuntime
from emulator.sagemaker import SageMakerApiError
from emulator.state import StateDir, StateLockedError
from emulator.summary import model_line

FIXTURE = Path(__file__).parent / "fixtures" / "project"
PROJECT = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    return subprocess.run(
        [sys.executable, "-m", "emulator", *args, "--project", str(FIXTURE), "--quiet"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )


def cli_in_process(capfd: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([*args, "--project", str(FIXTURE), "--quiet"])
    out, err = capfd.readouterr()
    return code, out, err


def test_bucket_registry_executions_and_job_names_survive_a_restart(tmp_path: Path, dataset: Path) -> None:
    quiet = Progress(verbose_jobs=False)
    with LocalRuntime(FIXTURE, tmp_path, progress=quiet) as first:
        record = first.run_upload(dataset)
        with pytest.raises(StateLockedError):  # one process per state dir
            StateDir(tmp_path).__enter__()
    run_id = record["name"]
    job = record["output"]["run"]["trainingJobName"]

    with LocalRuntime(FIXTURE, tmp_path, progress=quiet) as second:
        keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=second.stack.bucket)["Contents"]]
        assert f"runs/{run_id}/model/{job}/output/model.tar.gz" in keys
        item = boto3.client("dynamodb").get_item(
            TableName=second.stack.table.name, Key={"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": "RUN"}}
        )
        assert item["Item"]["status"] == {"S": "SUCCEEDED"}
        assert [r["name"] for r in second.state.executions()] == [run_id]
        with pytest.raises(SageMakerApiError, match="already exists"):
            second.sagemaker.create_training_job({"TrainingJobName": job})
        # restoring objects is not an upload: nothing was triggered
        assert second.trigger.collect() == []


def test_run_json_prints_one_document_and_exits_zero(tmp_path: Path, dataset: Path) -> None:
    done = cli("run", "--dataset", str(dataset), "--state-dir", str(tmp_path), "--json")

    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)  # exactly one JSON document, nothing else on stdout
    assert {
        "status",
        "execution",
        "decision",
        "model_version",
        "champion_version",
        "metrics",
        "predictions",
        "drift",
        "model_report",
        "drift_report",
    } <= set(summary)
    assert summary["status"] == "SUCCEEDED"
    assert "-> Train" in done.stderr  # progress went to stderr


def test_executions_and_history_read_the_state_dir(
    tmp_path: Path, dataset: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with LocalRuntime(FIXTURE, tmp_path, progress=Progress(verbose_jobs=False)) as runtime:
        record = runtime.run_upload(dataset)
    capfd.readouterr()

    code, out, _ = cli_in_process(capfd, "executions", "--state-dir", str(tmp_path), "--json")
    assert code == 0
    assert [e["name"] for e in json.loads(out)["executions"]] == [record["name"]]
    code, out, _ = cli_in_process(capfd, "history", record["name"], "--state-dir", str(tmp_path))
    history = json.loads(out)
    assert history["events"][0]["type"] == "ExecutionStarted"
    assert history["events"][-1]["type"] == "ExecutionSucceeded"


def test_failed_execution_exits_one_with_error_and_cause(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    execution_input = tmp_path / "input.json"
    execution_input.write_text(
        json.dumps({"datasetUri": "s3://fixture-data-123456789012-us-east-1/none.csv", "mode": "fail"})
    )
    code, out, _ = cli_in_process(
        capfd, "start", "--input", str(execution_input), "--state-dir", str(tmp_path / "s"), "--json"
    )

    assert code == 1
    summary = json.loads(out)
    assert summary["status"] == "FAILED"
    assert summary["error"] == "States.TaskFailed"
    assert "No S3 objects found" in summary["cause"]


def test_usage_errors_exit_two_and_say_why(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli_in_process(
        capfd, "run", "--dataset", str(tmp_path / "missing.csv"), "--state-dir", str(tmp_path)
    )
    assert code == 2 and "no such dataset file" in err
    code, _, err = cli_in_process(capfd, "history", "nope", "--state-dir", str(tmp_path))
    assert code == 2 and "no execution nope" in err


def test_an_unknown_algorithm_is_refused_before_anything_is_uploaded(
    tmp_path: Path, dataset: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    state_dir = tmp_path / "state"

    with pytest.raises(SystemExit) as exited:
        cli_in_process(
            capfd,
            "run",
            "--dataset",
            str(dataset),
            "--algorithm",
            "RandomForrest",
            "--state-dir",
            str(state_dir),
        )

    err = capfd.readouterr().err
    assert exited.value.code == 2
    assert "invalid choice: 'RandomForrest'" in err
    assert "'HistGradientBoosting', 'RandomForest', 'LogisticRegression'" in err
    assert not state_dir.exists()


def test_the_exit_status_and_piped_output_survive_the_fast_exit(tmp_path: Path) -> None:
    # python -m emulator skips the interpreter's teardown (os._exit): nothing may be lost by it
    missing = cli("history", "nope", "--state-dir", str(tmp_path))
    listed = cli("executions", "--state-dir", str(tmp_path), "--json")

    assert missing.returncode == 2
    assert "no execution nope" in missing.stderr
    assert listed.returncode == 0
    assert json.loads(listed.stdout) == {"executions": []}


def test_the_models_text_view_shows_the_figures_the_json_holds() -> None:
    # a row as `models --json` prints it: GET /models keeps metrics.json's "model" and "champion" blocks
    row = {
        "model_name": "medication-adherence-model",
        "version": 2,
        "status": "APPROVED",
        "champion": True,
        "metrics": {
            "model": {"roc_auc": 0.67123, "pr_auc": 0.2501, "log_loss": 0.3333, "brier": 0.1},
            "champion": {"roc_auc": 0.61},
        },
    }

    line = model_line(row)

    assert line == (
        "* medication-adherence-model v2  APPROVED  "
        "roc_auc=0.6712  pr_auc=0.2501  log_loss=0.3333  brier=0.1000"
    )
    assert "None" not in model_line({**row, "champion": False, "metrics": {"model": {"roc_auc": 0.5}}})


def _recorded(state_dir: Path, count: int) -> list[str]:
    """Execution records as a runtime saves them, without running anything."""
    names = [f"run-{index:03d}" for index in range(count)]
    for index, name in enumerate(names):
        events = [{"id": 1, "type": "ExecutionStarted", "timestamp": f"2026-01-01T00:00:{index % 60:02d}"}]
        record = {"name": name, "status": "SUCCEEDED", "startDate": f"2026-01-01T00:{index // 60:02d}:00"}
        StateDir(state_dir).write_json(f"executions/{name}.json", {**record, "events": events * 50})
    return names


@pytest.mark.parametrize("command", [["executions"], ["history", "run-000"]])
def test_a_reader_that_stops_early_ends_the_listing_quietly(tmp_path: Path, command: list[str]) -> None:
    _recorded(tmp_path, 200)
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    with subprocess.Popen(
        [sys.executable, "-m", "emulator", *command, "--state-dir", str(tmp_path)],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as process:
        process.stdout.close()  # `| head -0`: the reader is gone before the first line
        err = process.stderr.read().decode()
        code = process.wait(timeout=60)

    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert code == 141  # as a Unix tool killed by SIGPIPE: 128 + 13


def _registered(state_dir: Path, model: str = "medication-adherence-model") -> None:
    """A registry.json as the runtime saves it: one model, version 1, champion."""
    items = [
        {
            "pk": {"S": f"MODEL#{model}"},
            "sk": {"S": "META"},
            "model_name": {"S": model},
            "champion_version": {"N": "1"},
        },
        {
            "pk": {"S": f"MODEL#{model}"},
            "sk": {"S": "VERSION#000001"},
            "model_name": {"S": model},
            "version": {"N": "1"},
            "status": {"S": "APPROVED"},
            "metrics": {"M": {"model": {"M": {"roc_auc": {"N": "0.71"}}}}},
        },
    ]
    StateDir(state_dir).write_json("registry.json", items)


def test_read_only_commands_work_while_a_runtime_holds_the_state_dir(tmp_path: Path) -> None:
    [name] = _recorded(tmp_path, 1)
    _registered(tmp_path)
    with StateDir(tmp_path):  # as `api` holds it while it serves
        listed = subprocess.run(
            [sys.executable, "-m", "emulator", "executions", "--json", "--state-dir", str(tmp_path)],
            cwd=PROJECT,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        history = subprocess.run(
            [sys.executable, "-m", "emulator", "history", name, "--state-dir", str(tmp_path)],
            cwd=PROJECT,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        models = subprocess.run(  # the real project's GET /models handler
            [sys.executable, "-m", "emulator", "models", "--json", "--state-dir", str(tmp_path)],
            cwd=PROJECT,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    assert listed.returncode == 0, listed.stderr
    assert [e["name"] for e in json.loads(listed.stdout)["executions"]] == [name]
    assert history.returncode == 0 and json.loads(history.stdout)["name"] == name
    assert models.returncode == 0, models.stderr
    [row] = json.loads(models.stdout)["models"]
    assert (row["version"], row["status"], row["champion"]) == (1, "APPROVED", True)


def test_read_only_commands_create_no_state_dir(tmp_path: Path) -> None:
    missing = tmp_path / "never-used"
    for command in (["executions"], ["models"], ["history", "x"]):
        subprocess.run(
            [sys.executable, "-m", "emulator", *command, "--state-dir", str(missing)],
            cwd=PROJECT,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    assert not missing.exists()


def test_a_handlers_traceback_goes_to_a_log_the_summary_names_not_the_terminal(tmp_path: Path) -> None:
    execution_input = tmp_path / "input.json"
    execution_input.write_text(json.dumps({"noDataset": True}))  # the fixture's Prepare raises

    done = cli("start", "--input", str(execution_input), "--state-dir", str(tmp_path / "state"))

    assert done.returncode == 1
    assert "Traceback" not in done.stderr and '"trace"' not in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stdout and '"trace"' not in done.stdout, done.stdout
    assert "error:      InvalidDataset: datasetUri is required" in done.stdout  # still says what failed
    [log_line] = [line for line in done.stdout.splitlines() if line.strip().startswith("tracebacks:")]
    log = Path(log_line.split(":", 1)[1].strip())
    assert log.parent == tmp_path / "state" / "logs"
    text = log.read_text()
    assert text.count("Traceback (most recent call last)") == 1  # once, though task and execution failed
    assert "InvalidDataset: datasetUri is required" in text
    assert str(log) in done.stderr  # the progress line names it too

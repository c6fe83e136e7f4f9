"""The real workflow (ASL + template + functions + pipelines) on the local runtime, every path.

One state directory for the module: the first run happens in its own runtime, which is then
closed; the remaining runs happen in a second runtime on the same state, so they also prove that
the registry, the bucket and the champion survive a restart. The tests run in any order: each
asserts what its own run changed (the registry as the restart found it is kept by `restarted`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from emulator.progress import Progress, error_names
from emulator.runtime import LocalRuntime
from emulator.summary import models, summarize

PROJECT = Path(__file__).resolve().parents[2]
HAPPY_PATH = [
    "ReceiveInput",
    "PrepareRun",
    "ValidateDataset",
    "TrainModel",
    "EvaluateModel",
    "RegisterModel",
    "ChooseScoringModel",
    "CreateModel",
    "EnrichHistory",
    "BatchTransform",
    "MonitorDrift",
    "RecordOutcome",
    "Notify",
    "RunSucceeded",
]


def visited(record: dict[str, Any]) -> list[str]:
    return [s["state"] for s in record["states"]]


def keys_under(bucket: str, prefix: str) -> list[str]:
    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def read_object(bucket: str, key: str) -> bytes:
    return boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


def notification(record: dict[str, Any]) -> str:
    """The message the run sent (RecordOutcome's or RecordFailure's, which Notify publishes)."""
    return next(
        json.loads(e["stateExitedEventDetails"]["output"])["outcome"]["message"]
        for e in record["events"]
        if e.get("stateExitedEventDetails", {}).get("name") in ("RecordOutcome", "RecordFailure")
    )


REPORTS = "reports/medication-adherence-model"


def champion_of(rows: list[dict[str, Any]]) -> int | None:
    return next((int(r["version"]) for r in rows if r["champion"]), None)


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e-state")


@pytest.fixture(scope="module")
def first_run(state_dir: Path, slices: dict[str, Path]) -> dict[str, Any]:
    """The S3 trigger on a fresh stack, in a runtime of its own (closed before the others start)."""
    with LocalRuntime(PROJECT, state_dir, progress=Progress(verbose_jobs=False)) as runtime:
        record = runtime.run_upload(slices["first"])
        return {"record": record, "summary": summarize(runtime, record), "bucket": runtime.stack.bucket}


@pytest.fixture(scope="module")
def restarted(state_dir: Path, first_run: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The second runtime on the first run's state, with the registry as it found it (before any
    other test's run changed it)."""
    with LocalRuntime(PROJECT, state_dir, progress=Progress(verbose_jobs=False)) as rt:
        yield {"runtime": rt, "models": models(rt)}


@pytest.fixture(scope="module")
def runtime(restarted: dict[str, Any]) -> LocalRuntime:
    return restarted["runtime"]


def test_first_upload_trains_approves_and_scores_with_the_new_model(first_run: dict[str, Any]) -> None:
    record, summary = first_run["record"], first_run["summary"]

    assert record["status"] == "SUCCEEDED", record["cause"]
    assert visited(record) == HAPPY_PATH
    assert "States.Runtime" not in error_names(record["events"])
    assert summary["decision"] == "approved"
    assert summary["model_version"] == 1 and summary["champion_version"] == 1
    assert 0.5 < summary["metrics"]["roc_auc"] <= 1 and 0 < summary["metrics"]["pr_auc"] <= 1
    with open(summary["predictions"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["encounter_id", "probability", "prediction", "not_scored_reason"]
    assert len(rows) == 3000  # one row per input row
    # Death and hospice encounters: kept, not scored, with the reason, and counted in the summary.
    unscored = [r for r in rows if r["not_scored_reason"]]
    assert unscored and all(r["probability"] == r["prediction"] == "" for r in unscored)
    assert {r["not_scored_reason"] for r in unscored} <= {"expired", "hospice"}
    counts = summary["prediction_counts"]
    assert counts["rows"] == 3000 and counts["scored"] == 3000 - len(unscored)
    assert summary["drift"]["rows"] == counts["scored"]
    assert summary["model_report"] is not None and Path(summary["model_report"]).read_text().strip()
    assert any(f.endswith(".png") for f in summary["model_report_files"])
    assert summary["drift"] is not None and Path(summary["drift_report"]).is_file()


def test_restart_restores_artifacts_registry_and_champion(
    restarted: dict[str, Any], first_run: dict[str, Any]
) -> None:
    runtime = restarted["runtime"]
    run_id = first_run["record"]["name"]
    keys = keys_under(runtime.stack.bucket, f"runs/{run_id}/")
    assert any(k.startswith(f"runs/{run_id}/input/") for k in keys)  # the run's snapshot
    assert sum(k.endswith("/output/model.tar.gz") for k in keys) == 1
    assert sum(k.endswith("/output/output.tar.gz") for k in keys) == 1
    assert any(k.startswith(f"runs/{run_id}/predictions/") and k.endswith(".out") for k in keys)
    assert any(k.startswith(f"runs/{run_id}/drift/") for k in keys)
    rows = restarted["models"]
    assert [(r["version"], r["status"], r["champion"]) for r in rows] == [(1, "APPROVED", True)]
    assert rows[0]["run_id"] == run_id


def test_a_restart_still_lists_describes_and_gives_the_history_of_earlier_executions(
    restarted: dict[str, Any], first_run: dict[str, Any]
) -> None:
    """Step Functions keeps finished executions; so does the local one across processes: the run
    list (the console's GET /executions), DescribeExecution and GetExecutionHistory answer for the
    first process's run exactly as they did when it ended."""
    runtime = restarted["runtime"]
    record = first_run["record"]
    listed = runtime.sfn.list_executions(stateMachineArn=runtime.state_machine_arn)["executions"]
    assert record["name"] in {e["name"] for e in listed}
    history = runtime.sfn.get_execution_history(executionArn=record["executionArn"], reverseOrder=True)
    assert history["events"][0]["type"] == "ExecutionSucceeded"
    assert runtime.describe(record["executionArn"]) == record


def test_the_report_is_published_under_its_version_filed_in_the_registry_and_notified(
    runtime: LocalRuntime, first_run: dict[str, Any]
) -> None:
    bucket = runtime.stack.bucket
    keys = keys_under(bucket, f"{REPORTS}/v1/")
    assert f"{REPORTS}/v1/report.md" in keys and any(k.endswith(".png") for k in keys)
    assert read_object(bucket, f"{REPORTS}/v1/report.md").strip()
    report_uri = f"s3://{bucket}/{REPORTS}/v1/"
    (row,) = [r for r in models(runtime) if r["run_id"] == first_run["record"]["name"]]
    assert row["version"] == 1 and row["report_uri"] == report_uri
    message = notification(first_run["record"])
    assert f"Report: {report_uri} (report.md" in message
    assert "Comparison with the champion: none (no champion was scored on the same rows)." in message
    assert first_run["summary"]["model_report_uri"] == report_uri


def test_strict_threshold_rejects_and_scores_with_the_champion(
    runtime: LocalRuntime, slices: dict[str, Path]
) -> None:
    before = models(runtime)
    champion = champion_of(before)
    assert champion is not None  # the first run's model (or a later approved one)
    # the gate is what is tested here, not the estimator: the fastest one keeps the test short
    runtime.update_environment(MIN_ROC_AUC="0.99", DEFAULT_ALGORITHM="LogisticRegression")
    try:
        record = runtime.run_upload(slices["second"])
    finally:
        runtime.update_environment(
            MIN_ROC_AUC=runtime.stack.parameters["MinRocAuc"],
            DEFAULT_ALGORITHM=runtime.stack.parameters["DefaultAlgorithm"],
        )

    assert record["status"] == "SUCCEEDED", record["cause"]
    registered = next(
        json.loads(e["stateExitedEventDetails"]["output"])["registration"]
        for e in record["events"]
        if e.get("stateExitedEventDetails", {}).get("name") == "RegisterModel"
    )
    assert registered["scoring"] == {
        "source": "champion",
        "version": champion,
        "modelArtifactUri": registered["scoring"]["modelArtifactUri"],
    }
    assert "CreateModel" in visited(record)
    summary = summarize(runtime, record)
    assert summary["decision"] == "rejected"
    version = max(int(r["version"]) for r in before) + 1
    assert summary["model_version"] == version and summary["champion_version"] == champion
    assert any("0.99" in reason for reason in summary["decision_reasons"])
    rows = {r["version"]: r for r in models(runtime)}
    assert rows[version]["status"] == "REJECTED" and rows[champion]["champion"]
    # a rejected version's report is published too, with its content type, and the message quotes
    # the report and the DeLong interval the gate decided on
    report_uri = f"s3://{runtime.stack.bucket}/{REPORTS}/v{version}/"
    assert rows[version]["report_uri"] == report_uri
    head = boto3.client("s3").head_object(Bucket=runtime.stack.bucket, Key=f"{REPORTS}/v{version}/report.md")
    assert head["ContentType"] == "text/markdown; charset=utf-8"
    message = notification(record)
    interval = rows[version]["metrics"]["gate"]["comparison"]["interval"]
    assert f"Report: {report_uri} (report.md" in message
    assert f"Comparison with champion v{champion} (DeLong, paired" in message
    assert f"interval [{interval[0]:+.4f}, {interval[1]:+.4f}]" in message
    # the champion's model scored this run's file
    body = read_object(
        runtime.stack.bucket, keys_under(runtime.stack.bucket, f"runs/{record['name']}/predictions/")[0]
    )
    assert len(list(csv.DictReader(io.StringIO(body.decode())))) == 3000


def test_training_failure_is_recorded_and_changes_no_model(
    runtime: LocalRuntime, slices: dict[str, Path]
) -> None:
    before = models(runtime)
    runtime.faults.fail_job("TrainingJob", "AlgorithmError: injected out-of-memory")

    record = runtime.run_upload(slices["third"])

    assert record["status"] == "FAILED"
    assert visited(record)[-4:] == ["TrainModel", "RecordFailure", "NotifyFailure", "RunFailed"]
    assert "States.Runtime" not in error_names(record["events"])
    assert "injected out-of-memory" in record["cause"]
    assert models(runtime) == before
    assert keys_under(runtime.stack.bucket, f"runs/{record['name']}/model/") == []
    described = runtime.api.request("GET", f"/executions/{record['name']}").json()
    assert described["status"] == "FAILED" and described["run"]["status"] == "FAILED"
    assert described["run"]["stage"] == "TrainModel"


def test_evaluate_retry_then_transform_failure(runtime: LocalRuntime, slices: dict[str, Path]) -> None:
    runtime.faults.lambda_error("EvaluateModelFunction", "Lambda.ServiceException", times=1)
    runtime.faults.fail_job("TransformJob", "ClientError: injected model server crash")
    uri = runtime.put_file(slices["fourth"], runtime.datasets_prefix)

    record = runtime.run({"datasetUri": uri, "algorithm": "LogisticRegression"})  # the console input

    assert record["status"] == "FAILED"
    names = visited(record)
    assert names.count("EvaluateModel") == 1  # retried within the state
    assert names[-4:] == ["BatchTransform", "RecordFailure", "NotifyFailure", "RunFailed"]
    assert error_names(record["events"])[0] == "Lambda.ServiceException"  # retried, then succeeded
    assert "injected model server crash" in record["cause"]
    assert "States.Runtime" not in error_names(record["events"])
    assert keys_under(runtime.stack.bucket, f"runs/{record['name']}/predictions/") == []
    # the version it registered failed, and the failure message still says where its report is
    version = next(r for r in models(runtime) if r["run_id"] == record["name"])
    assert version["run_status"] == "FAILED" and version["report_uri"]
    assert f"Report: {version['report_uri']} (report.md" in notification(record)


def test_duplicate_upload_event_does_not_train_twice(runtime: LocalRuntime, slices: dict[str, Path]) -> None:
    event = runtime.trigger.upload(str(slices["fifth"]), runtime.datasets_prefix + slices["fifth"].name)[0]
    runtime.update_environment(DEFAULT_ALGORITHM="LogisticRegression")
    try:
        first = runtime.run(event)
        replay = runtime.run(event)  # EventBridge delivers at least once
    finally:
        runtime.update_environment(DEFAULT_ALGORITHM=runtime.stack.parameters["DefaultAlgorithm"])

    assert first["status"] == "SUCCEEDED", first["cause"]
    assert replay["status"] == "SUCCEEDED"
    assert visited(replay) == ["ReceiveInput", "PrepareRun", "DuplicateIgnored"]
    assert json.dumps(replay["events"]).count("TrainModel") == 0

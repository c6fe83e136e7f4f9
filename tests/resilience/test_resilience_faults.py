"""Faults injected into the emulated services (emulator/faults.py) while the real workflow runs.

Each failing run must end recorded (run FAILED with stage, error and cause) and notified, lose nothing,
and recover when the user retries it the documented way (docs/resilience.md, "How to retry a failed
run"): the same event again, the same console input again, or the same API request with the same
Idempotency-Key. Every test uses a slice of its own, so no run is an idempotent replay of another.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

from emulator.runtime import LocalRuntime

from .stack import (
    CHAMPION_MOVE,
    COUNTER,
    REGION,
    Notifications,
    Snapshot,
    champion,
    entered,
    meta_key,
    nothing_lost,
    scheduled_jobs,
    snapshot,
    versions_of,
)
from .table import Row, first_words

MODEL = "medication-adherence-model"


def _assert_failed_recorded_and_notified(
    runtime: LocalRuntime,
    notifications: Notifications,
    record: dict[str, Any],
    *,
    stage: str,
    error: str,
    reason: str,
) -> dict[str, Any]:
    """The run FAILED at `stage` with `error`, the cause contains `reason`, and SNS delivered it."""
    assert record["status"] == "FAILED"
    assert record["error"] == error, (record["error"], record["cause"])
    assert reason in record["cause"]
    assert entered(record)[-3:] == ["RecordFailure", "NotifyFailure", "RunFailed"]
    run = snapshot(runtime).items[(f"RUN#{record['name']}", "RUN")]
    assert (run["status"], run["stage"], run["error"]) == ("FAILED", stage, error)
    assert reason in run["cause"]
    [notice] = notifications.about(record["name"])
    assert f"failed at {stage}: {error}" in notice["subject"] and reason in notice["message"]
    return run


def _assert_recovered(
    runtime: LocalRuntime, notifications: Notifications, record: dict[str, Any], before: Snapshot, key: str
) -> None:
    """The retry succeeded, registered a version of its own and wrote only under its own prefix."""
    assert record["status"] == "SUCCEEDED", record["cause"]
    after = snapshot(runtime)
    run = after.items[(f"RUN#{record['name']}", "RUN")]
    assert run["status"] == "SUCCEEDED"
    assert versions_of(after.items, MODEL)[int(run["model_version"])]["run_status"] == "SUCCEEDED"
    nothing_lost(
        before,
        after,
        run_ids=[record["name"]],
        uploads=(key,),
        new_versions_of=MODEL,
        allowed_changes={meta_key(MODEL): CHAMPION_MOVE},
    )
    [notice] = notifications.about(record["name"])
    assert "run succeeded" in notice["subject"]


def test_throttled_training_is_retried_under_a_fresh_job_name(
    runtime: LocalRuntime,
    baseline: dict[str, Any],
    notifications: Notifications,
    slice_file: Callable[..., Path],
    resilience_row: Callable[[Row], None],
) -> None:
    path = slice_file("throttled", 14_000)
    before = snapshot(runtime)
    uri = runtime.put_file(path, runtime.datasets_prefix)
    runtime.faults.sagemaker_throttle("CreateTrainingJob", times=1)

    record = runtime.run({"datasetUri": uri})

    jobs = scheduled_jobs(record, "createTrainingJob")
    assert [outcome for _name, outcome in jobs] == [
        "TaskFailed SageMaker.AmazonSageMakerException",
        "TaskSucceeded",
    ]
    assert jobs[0][0] != jobs[1][0] and jobs[1][0].endswith("-2")  # a fresh name, not a same-name retry
    assert entered(record).count("TrainModel") == 1  # retried within the state (Retry), not re-entered
    _assert_recovered(runtime, notifications, record, before, runtime.datasets_prefix + path.name)

    resilience_row(
        Row(
            "Faults",
            "SageMaker throttling",
            "CreateTrainingJob throttled once (ThrottlingException)",
            record["status"],
            "SageMaker.AmazonSageMakerException (retried by the state's Retry)",
            "two CreateTrainingJob names in the history: <name>-1 throttled, <name>-2 succeeded",
            "one version registered, run SUCCEEDED, notified",
            "yes",
        )
    )


def test_a_failed_training_job_is_recorded_and_the_same_event_again_recovers(
    runtime: LocalRuntime,
    baseline: dict[str, Any],
    notifications: Notifications,
    slice_file: Callable[..., Path],
    resilience_row: Callable[[Row], None],
) -> None:
    path = slice_file("training_fails", 16_000)
    key = runtime.datasets_prefix + path.name
    before = snapshot(runtime)
    [event] = runtime.trigger.upload(str(path), key)
    runtime.faults.fail_job("TrainingJob", "injected out of memory")

    failed = runtime.run(event)

    run = _assert_failed_recorded_and_notified(
        runtime,
        notifications,
        failed,
        stage="TrainModel",
        error="States.TaskFailed",
        reason="injected out of memory",
    )
    after_failure = snapshot(runtime)
    nothing_lost(before, after_failure, run_ids=[failed["name"]], uploads=(key,))
    assert after_failure.items.get(meta_key(MODEL)) == before.items.get(meta_key(MODEL))

    retry = runtime.run(event)  # the documented retry of an upload: the same event again

    _assert_recovered(runtime, notifications, retry, after_failure, key)
    resilience_row(
        Row(
            "Faults",
            "Training job fails",
            "the training job fails (AlgorithmError); then the same S3 event is sent again",
            f"{failed['status']}, then retry {retry['status']}",
            failed["error"],
            first_words(run["cause"], failed["name"]),
            "run FAILED at TrainModel, notified, no version; the retry registered one",
            "yes",
        )
    )


def _post(runtime: LocalRuntime, body: dict[str, Any], key: str) -> tuple[int, dict[str, Any]]:
    response = runtime.api.request(
        "POST", "/training", body=json.dumps(body), headers={"Idempotency-Key": key}
    )
    return response.status, response.json()


def test_a_failed_batch_transform_is_recorded_and_the_same_api_request_again_recovers(
    runtime: LocalRuntime,
    baseline: dict[str, Any],
    notifications: Notifications,
    slice_file: Callable[..., Path],
    resilience_row: Callable[[Row], None],
) -> None:
    path = slice_file("transform_fails", 18_000)
    uri = runtime.put_file(path, runtime.datasets_prefix)
    before = snapshot(runtime)
    body, key = {"datasetUri": uri}, "ward-east-2026-11"
    runtime.faults.fail_job("TransformJob", "ClientError: injected model server crash")

    first_status, first = _post(runtime, body, key)
    again_status, again = _post(runtime, body, key)  # a client retry while the first still runs
    failed = runtime.wait(first["executionArn"])

    assert (first_status, again_status) == (202, 200)
    assert again["executionArn"] == first["executionArn"]  # the retry returned the first execution
    run = _assert_failed_recorded_and_notified(
        runtime,
        notifications,
        failed,
        stage="BatchTransform",
        error="States.TaskFailed",
        reason="injected model server crash",
    )
    after_failure = snapshot(runtime)
    nothing_lost(
        before,
        after_failure,
        run_ids=[failed["name"]],
        new_versions_of=MODEL,
        allowed_changes={meta_key(MODEL): COUNTER},  # the champion pointer and its record untouched
    )
    [version] = [
        v for n, v in versions_of(after_failure.items, MODEL).items() if v["run_id"] == failed["name"]
    ]
    assert version["run_status"] == "FAILED"  # the half-done run's version is flagged, not hidden
    # The model was approved, but only a run that succeeded moves the champion pointer.
    assert (version["status"], version["promotion"]) == ("APPROVED", "NOT_PROMOTED")
    assert version["promotion_reason"] == "not promoted: its run failed at BatchTransform: States.TaskFailed"
    assert champion(after_failure.items, MODEL) == champion(before.items, MODEL)

    retry_status, retried = _post(runtime, body, key)  # the documented retry: the same request again
    recovered = runtime.wait(retried["executionArn"])
    replay_status, replayed = _post(runtime, body, key)

    assert retry_status == 202 and retried["executionName"] == f"{first['executionName']}-2"
    assert (replay_status, replayed["executionArn"]) == (200, retried["executionArn"])
    _assert_recovered(runtime, notifications, recovered, after_failure, "")
    resilience_row(
        Row(
            "Duplicates",
            "API retry with the same Idempotency-Key",
            "POST /training twice with one key while the run is running; again after it succeeded",
            "202, then 200 with the same execution",
            "-",
            "the retry answered with the first execution; nothing started twice",
            "one execution per attempt of the key",
            "yes",
        )
    )
    resilience_row(
        Row(
            "Faults",
            "Batch transform fails",
            "the transform job fails; then the same POST /training with the same Idempotency-Key",
            f"{failed['status']}, then retry {recovered['status']} as <name>-2",
            failed["error"],
            first_words(run["cause"], failed["name"]),
            "run FAILED at BatchTransform, notified; its approved version NOT_PROMOTED, run_status "
            "FAILED; champion and its record unchanged",
            "yes",
        )
    )


def test_a_crashed_lambda_is_recorded_and_the_same_console_input_again_recovers(
    runtime: LocalRuntime,
    baseline: dict[str, Any],
    notifications: Notifications,
    slice_file: Callable[..., Path],
    resilience_row: Callable[[Row], None],
) -> None:
    path = slice_file("lambda_crashes", 20_000)
    uri = runtime.put_file(path, runtime.datasets_prefix)
    before = snapshot(runtime)
    runtime.faults.lambda_error("RegisterModelFunction", "RuntimeError", message="injected handler crash")

    failed = runtime.run({"datasetUri": uri})

    run = _assert_failed_recorded_and_notified(
        runtime,
        notifications,
        failed,
        stage="RegisterModel",
        error="RuntimeError",
        reason="injected handler crash",
    )
    after_failure = snapshot(runtime)
    nothing_lost(before, after_failure, run_ids=[failed["name"]])
    assert after_failure.items.get(meta_key(MODEL)) == before.items.get(meta_key(MODEL))

    retry = runtime.run({"datasetUri": uri})  # the same console input again

    _assert_recovered(runtime, notifications, retry, after_failure, "")
    resilience_row(
        Row(
            "Faults",
            "Lambda crash",
            "RegisterModel's handler raises (unhandled); then the same console input again",
            f"{failed['status']}, then retry {retry['status']}",
            failed["error"],
            first_words(run["cause"], failed["name"]),
            "run FAILED at RegisterModel, notified, no version; the retry registered one",
            "yes",
        )
    )


def _wait_for_state(runtime: LocalRuntime, arn: str, state: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = runtime.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        if any(e.get("stateEnteredEventDetails", {}).get("name") == state for e in events):
            return
        time.sleep(0.05)
    raise AssertionError(f"{arn} never entered {state}")


def test_a_champion_promoted_by_another_run_meanwhile_is_compared_again_and_this_run_still_succeeds(
    runtime: LocalRuntime,
    baseline: dict[str, Any],
    notifications: Notifications,
    slice_file: Callable[..., Path],
    resilience_row: Callable[[Row], None],
) -> None:
    path = slice_file("champion_moves", 22_000)
    key = runtime.datasets_prefix + path.name
    before = snapshot(runtime)
    [event] = runtime.trigger.upload(str(path), key)
    registry_module = importlib.import_module("registry")  # functions/ is on sys.path, as in Lambda
    registry = registry_module.Registry(
        runtime.stack.table.name, boto3.client("dynamodb", region_name=REGION)
    )
    # A gate that lets this model past the champion it is trained against (allowed drop 0.2) but not
    # past one recorded at ROC AUC 0.999, which no model of this data reaches.
    runtime.update_environment(MAX_AUC_DROP="0.2")
    try:
        arn = runtime.start(event)
        _wait_for_state(runtime, arn, "TrainModel")  # this run has looked up the champion
        # Another run registers an approved model and succeeds now: what its RegisterModel and
        # RecordOutcome steps do.
        current = registry.get_champion(MODEL)
        registry.start_run(
            run_id="other-run", execution_arn="", model_name=MODEL, idempotency_key="other", dataset_uri=""
        )
        moved = registry.register_version(
            run_id="other-run",
            model_name=MODEL,
            approved=True,
            compared_champion_version=current.version,
            metrics={"model": {**current.metrics["model"], "roc_auc": 0.999}},
            artifact_uri=current.artifact_uri,
            training_job="other-job",
            dataset_uri="s3://elsewhere/other.csv",
            algorithm="LogisticRegression",
            decision_reasons=["registered by another run"],
        )
        assert registry.promote(MODEL, moved.version, expected_champion=current.version, reason="other")
        record = runtime.wait(arn)
    finally:
        runtime.update_environment(MAX_AUC_DROP=runtime.stack.parameters["MaxAucDrop"])

    assert record["status"] == "SUCCEEDED", record["cause"]
    after = snapshot(runtime)
    nothing_lost(
        before,
        after,
        run_ids=[record["name"], "other-run"],
        uploads=(key,),
        new_versions_of=MODEL,
        allowed_changes={meta_key(MODEL): CHAMPION_MOVE},  # the other run's promotion
    )
    run = after.items[(f"RUN#{record['name']}", "RUN")]
    version = versions_of(after.items, MODEL)[int(run["model_version"])]
    compared = next(
        e for e in record["events"] if e.get("stateExitedEventDetails", {}).get("name") == "EvaluateModel"
    )
    evaluation = json.loads(compared["stateExitedEventDetails"]["output"])["evaluation"]
    assert (evaluation["decision"], evaluation["comparedChampionVersion"]) == ("approved", current.version)
    assert (run["status"], version["status"], version["run_status"]) == ("SUCCEEDED", "APPROVED", "SUCCEEDED")
    assert version["promotion"] == "NOT_PROMOTED"
    assert version["promotion_reason"].startswith(f"champion v{moved.version} is better: roc_auc 0.9990 vs ")
    assert champion(after.items, MODEL) == moved.version  # the better champion was not overwritten
    [notice] = notifications.about(record["name"])
    assert notice["subject"].endswith("approved, not promoted: run succeeded")
    assert f"champion v{moved.version} is better" in notice["message"]
    resilience_row(
        Row(
            "Concurrency",
            "Conditional-write conflict",
            "another run promotes a better model while this one trains (its approved model scores meanwhile)",
            record["status"],
            "-",
            "champion v<new> is better: roc_auc 0.9990 vs <this model's> (v<new> on its own held-out rows)",
            "this run's version APPROVED, NOT_PROMOTED with that reason; the other's champion kept",
            "yes",
        )
    )

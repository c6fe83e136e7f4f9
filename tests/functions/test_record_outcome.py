"""RecordOutcome: success and failure recorded; a failed run flags the version it registered."""

from __future__ import annotations

import copy
import json

import boto3
import pytest
from botocore.stub import Stubber

import record_outcome
import register_model
from conftest import TABLE, Aws, load_event
from registry import Registry


def registered_run(aws: Aws) -> tuple[Registry, dict]:
    reg = Registry(TABLE, aws.dynamodb)
    event = load_event("register_model.json")
    run = event["run"]
    reg.claim_idempotency_key(
        run["idempotencyKey"], run["runId"], run["executionArn"], running_for_at_most=60
    )
    reg.start_run(
        run_id=run["runId"],
        execution_arn=run["executionArn"],
        model_name=run["modelName"],
        idempotency_key=run["idempotencyKey"],
        dataset_uri=run["datasetUri"],
    )
    register_model.handler(event, None)
    return reg, run


def test_success_marks_the_run_and_its_version_succeeded_with_uris(aws: Aws) -> None:
    reg, run = registered_run(aws)

    result = record_outcome.handler(load_event("record_outcome_succeeded.json"), None)

    item = reg.get_run(run["runId"])
    assert item["status"] == "SUCCEEDED" and item["decision"] == "approved" and item["model_version"] == 1
    assert item["predictions_uri"] == f"{run['predictionsOutputUri']}/diabetic_data.csv.gz.out"
    assert item["drift_uri"] == f"{run['driftOutputUri']}/drift_report.json"
    assert reg.get_version(run["modelName"], 1)["run_status"] == "SUCCEEDED"
    assert result["subject"] == "medication-adherence-model v1 approved: run succeeded"
    assert "Predictions: s3://" in result["message"] and "now the champion" in result["message"]
    assert len(result["subject"]) <= 100
    assert f"{run['driftOutputUri']}/drift_report.json does not exist (NoSuchKey)" in result["message"]


def test_the_success_message_summarises_the_drift_report(aws: Aws) -> None:
    _, run = registered_run(aws)
    report = {"status": "drift", "drift": True, "max_psi": 0.31, "drifted_features": ["age", "diag_1"]}
    aws.put(f"runs/{run['runId']}/drift/drift_report.json", json.dumps(report).encode())

    result = record_outcome.handler(load_event("record_outcome_succeeded.json"), None)

    assert "Drift: drift (max PSI 0.310; drifted features: age, diag_1)" in result["message"]


def test_failure_after_registration_flags_the_version_and_releases_the_claim(aws: Aws) -> None:
    reg, run = registered_run(aws)
    event = copy.deepcopy(load_event("record_outcome_failed.json"))
    event["failure"] = {
        "stage": "BatchTransform",
        "error": {
            "Error": "States.TaskFailed",
            "Cause": json.dumps({"TransformJobName": "x", "FailureReason": "ClientError: bad input row 7"}),
        },
    }

    result = record_outcome.handler(event, None)

    item = reg.get_run(run["runId"])
    assert (item["status"], item["stage"], item["error"]) == ("FAILED", "BatchTransform", "States.TaskFailed")
    assert item["cause"] == "ClientError: bad input row 7"
    assert reg.get_version(run["modelName"], 1)["run_status"] == "FAILED"
    assert reg.get_idempotency_claim(run["idempotencyKey"])["run_status"] == "FAILED"
    assert result["error"] == "States.TaskFailed" and result["cause"] == "ClientError: bad input row 7"
    assert "flagged run_status=FAILED" in result["message"]


def test_the_sample_failure_event_yields_the_lambda_error_message_as_cause(aws: Aws) -> None:
    reg = Registry(TABLE, aws.dynamodb)
    event = load_event("record_outcome_failed.json")

    result = record_outcome.handler(event, None)

    assert result["error"] == "InvalidDataset"
    assert result["cause"].endswith("lacks required training columns: readmitted")
    item = reg.get_run(event["runId"])  # the run failed before PrepareRun recorded it: created now
    assert item["status"] == "FAILED" and item["stage"] == "ValidateDataset"


def test_a_failure_without_a_cause_still_yields_text_for_the_fail_state(aws: Aws) -> None:
    event = {
        "outcome": "FAILED",
        "runId": "r-x",
        "executionArn": "arn",
        "failure": {"stage": "TrainModel", "error": {"Error": "States.Timeout"}},
    }

    result = record_outcome.handler(event, None)

    assert result["error"] == "States.Timeout"
    assert result["cause"] == "States.Timeout (no cause given)"


DRIFT_URI = "s3://readmission-mlops-local/runs/r-1/drift/drift_report.json"


def stubbed_s3_error(code: str, status: int) -> tuple[object, Stubber]:
    s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(s3)
    stubber.add_client_error("get_object", service_error_code=code, http_status_code=status)
    stubber.activate()
    return s3, stubber


def test_a_refused_drift_report_read_names_access_denied_and_the_object() -> None:
    s3, stubber = stubbed_s3_error("AccessDenied", 403)

    line = record_outcome.drift_summary(s3, DRIFT_URI)

    stubber.assert_no_pending_responses()
    assert line.startswith(f"Drift: reading the report {DRIFT_URI} was refused (AccessDenied)")
    assert "s3:GetObject" in line


def test_any_other_s3_error_on_the_drift_report_is_named_by_its_code() -> None:
    s3, _ = stubbed_s3_error("SlowDown", 503)

    assert record_outcome.drift_summary(s3, DRIFT_URI) == (
        f"Drift: reading the report {DRIFT_URI} failed with S3 error SlowDown."
    )


def test_a_malformed_drift_report_is_said_to_be_one(aws: Aws) -> None:
    aws.put("runs/r-1/drift/drift_report.json", b'{"max_psi": 0.1}')

    line = record_outcome.drift_summary(aws.s3, DRIFT_URI)

    assert line.startswith(f"Drift: the report {DRIFT_URI} is not a drift report (KeyError")


def test_a_failure_that_is_not_an_s3_answer_is_not_hidden_in_the_message() -> None:
    class Broken:
        exceptions = boto3.client("s3", region_name="us-east-1").exceptions

        def get_object(self, **kwargs: object) -> dict:
            raise RuntimeError("bug in the caller")

    with pytest.raises(RuntimeError, match="bug in the caller"):
        record_outcome.drift_summary(Broken(), DRIFT_URI)

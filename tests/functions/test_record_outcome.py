"""RecordOutcome: success and failure recorded; a failed run flags the version it registered."""

from __future__ import annotations

import copy
import json

import boto3
import pytest
from botocore.stub import Stubber

import record_outcome
import register_model
from registry import Registry
from tests.functions.helpers import BUCKET, TABLE, Aws, load_event, start_run, with_training_output


def registered_run(aws: Aws) -> tuple[Registry, dict]:
    reg = Registry(TABLE, aws.dynamodb)
    event = load_event("register_model.json")
    run = event["run"]
    start_run(reg, run)
    register_model.handler(with_training_output(event), None)
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
    assert "death or hospice are not scored" in result["message"] and "not_scored_reason" in result["message"]
    assert len(result["subject"]) <= 100
    assert f"{run['driftOutputUri']}/drift_report.json does not exist (NoSuchKey)" in result["message"]


def test_a_run_that_scored_a_prefix_of_parts_records_the_predictions_prefix(aws: Aws) -> None:
    reg, run = registered_run(aws)
    event = load_event("record_outcome_succeeded.json")
    event["run"]["scoreUri"] = "s3://readmission-local-artifactbucket/scoring/encounters/parts/"

    result = record_outcome.handler(event, None)

    assert reg.get_run(run["runId"])["predictions_uri"] == f"{run['predictionsOutputUri']}/"
    assert result["predictionsUri"] == f"{run['predictionsOutputUri']}/"
    assert "one <part>.out per part" in result["message"]


def test_the_success_message_summarises_the_drift_report(aws: Aws) -> None:
    _, run = registered_run(aws)
    report = {"status": "drift", "drift": True, "max_psi": 0.31, "drifted_features": ["age", "diag_1"]}
    aws.put(f"runs/{run['runId']}/drift/drift_report.json", json.dumps(report).encode())

    result = record_outcome.handler(load_event("record_outcome_succeeded.json"), None)

    assert "Drift: drift (max PSI 0.310; drifted features: age, diag_1)" in result["message"]


def test_a_scoring_file_without_patients_is_said_in_the_success_message(aws: Aws) -> None:
    _, run = registered_run(aws)
    sentence = "The scoring file has no patient_nbr column: every encounter was scored as a first encounter."
    summary = {"rows": 3, "patient_column": False, "message": sentence}
    aws.put(f"runs/{run['runId']}/drift/{record_outcome.HISTORY_SUMMARY_KEY}", json.dumps(summary).encode())

    result = record_outcome.handler(load_event("record_outcome_succeeded.json"), None)

    assert sentence in result["message"].splitlines()
    assert result["historyNote"] == sentence


def test_a_run_with_patients_or_without_a_history_summary_has_no_history_sentence(aws: Aws) -> None:
    _, run = registered_run(aws)
    assert record_outcome.handler(load_event("record_outcome_succeeded.json"), None)["historyNote"] is None
    summary = {"rows": 3, "patient_column": True, "message": None}
    aws.put(f"runs/{run['runId']}/drift/{record_outcome.HISTORY_SUMMARY_KEY}", json.dumps(summary).encode())
    result = record_outcome.handler(load_event("record_outcome_succeeded.json"), None)
    assert result["historyNote"] is None and "first encounter" not in result["message"]


def test_failure_after_registration_flags_the_version_and_releases_the_claim(aws: Aws) -> None:
    reg, run = registered_run(aws)
    event = copy.deepcopy(load_event("record_outcome_failed.json"))
    event["failure"] = {
        "BatchTransform": {
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
        "failure": {"TrainModel": {"Error": "States.Timeout"}},
    }

    result = record_outcome.handler(event, None)

    assert result["error"] == "States.Timeout"
    assert result["cause"] == f"States.Timeout: {record_outcome.TIMEOUT_CAUSE}"
    assert "TimeoutSeconds" in result["message"]


def test_a_failure_in_the_shape_of_an_older_definition_is_still_recorded(aws: Aws) -> None:
    # an execution started before a deploy keeps its definition, whose failure Pass states sent {stage, error}
    reg = Registry(TABLE, aws.dynamodb)
    event = {
        "outcome": "FAILED",
        "runId": "r-old",
        "executionArn": "arn",
        "failure": {"stage": "TrainModel", "error": {"Error": "States.Timeout", "Cause": "slow"}},
    }

    result = record_outcome.handler(event, None)

    assert (result["stage"], result["error"], result["cause"]) == ("TrainModel", "States.Timeout", "slow")
    assert reg.get_run("r-old")["stage"] == "TrainModel"


# ---- the champion pointer: moved only by a run that succeeded ------------------------------------------
MODEL = "medication-adherence-model"


def run_that_registered(reg: Registry, run_id: str, compared: int | None) -> tuple[dict, dict]:
    """A run that reached RegisterModel with an approved model; its success and failure events."""
    success = copy.deepcopy(load_event("record_outcome_succeeded.json"))
    run = success["run"]
    run.update(runId=run_id, idempotencyKey=f"k-{run_id}")
    start_run(reg, run, model_name=MODEL)
    register = copy.deepcopy(load_event("register_model.json"))
    register["run"] = run
    register["evaluation"]["comparedChampionVersion"] = compared
    register["training"]["artifactUri"] = f"s3://{BUCKET}/runs/{run_id}/model/job/output/model.tar.gz"
    version = register_model.handler(with_training_output(register), None)["version"]
    success["evaluation"]["comparedChampionVersion"] = compared
    success["registration"]["version"] = version
    success["scoring"]["version"] = version
    failure = {
        "outcome": "FAILED",
        "runId": run_id,
        "executionArn": run["executionArn"],
        "failure": {"BatchTransform": {"Error": "States.TaskFailed", "Cause": "boom"}},
    }
    return success, failure


def meta(aws: Aws) -> dict:
    [item] = [i for i in aws.table_items() if i["sk"] == "META"]
    return item


def test_a_run_that_fails_after_registering_leaves_the_previous_champion_untouched(aws: Aws) -> None:
    reg = Registry(TABLE, aws.dynamodb)
    first, _ = run_that_registered(reg, "first", compared=None)
    record_outcome.handler(first, None)  # v1 champion
    before = meta(aws)
    _, failure = run_that_registered(reg, "second", compared=1)

    result = record_outcome.handler(failure, None)

    after = meta(aws)
    assert {k: v for k, v in after.items() if k != "latest_version"} == {
        k: v for k, v in before.items() if k != "latest_version"
    }
    version = reg.get_version(MODEL, 2)
    assert (version["run_status"], version["promotion"]) == ("FAILED", "NOT_PROMOTED")
    assert version["promotion_reason"] == "not promoted: its run failed at BatchTransform: States.TaskFailed"
    assert "not promoted: its run failed at BatchTransform" in result["message"]
    assert reg.get_version(MODEL, 1)["promotion"] == "PROMOTED"


def test_a_run_that_fails_after_promoting_rolls_back_to_the_previous_champion(aws: Aws) -> None:
    reg = Registry(TABLE, aws.dynamodb)
    first, _ = run_that_registered(reg, "first", compared=None)
    record_outcome.handler(first, None)
    before = meta(aws)
    success, failure = run_that_registered(reg, "second", compared=1)
    record_outcome.handler(success, None)  # v2 promoted; then Notify fails
    assert reg.get_champion(MODEL).version == 2
    failure["failure"] = {"Notify": {"Error": "SNS.AmazonSNSException", "Cause": "down"}}

    result = record_outcome.handler(failure, None)

    after = meta(aws)
    champion_attributes = {k for k in before if k.startswith("champion_")}
    assert {k: after.get(k) for k in champion_attributes} == {k: before[k] for k in champion_attributes}
    version = reg.get_version(MODEL, 2)
    assert (version["run_status"], version["promotion"]) == ("FAILED", "NOT_PROMOTED")
    assert version["promotion_reason"] == (
        "rolled back: its run failed at Notify: SNS.AmazonSNSException; the champion is v1 again"
    )
    assert "rolled back" in result["message"]


def test_rolling_back_the_first_champion_leaves_no_champion(aws: Aws) -> None:
    reg = Registry(TABLE, aws.dynamodb)
    success, failure = run_that_registered(reg, "first", compared=None)
    record_outcome.handler(success, None)
    failure["failure"] = {"Notify": failure["failure"]["BatchTransform"]}

    record_outcome.handler(failure, None)

    assert reg.get_champion(MODEL) is None
    assert not [k for k in meta(aws) if k.startswith("champion_")]


def test_a_rollback_never_overwrites_a_newer_champion(aws: Aws) -> None:
    reg = Registry(TABLE, aws.dynamodb)
    first, _ = run_that_registered(reg, "first", compared=None)
    record_outcome.handler(first, None)
    second, second_failure = run_that_registered(reg, "second", compared=1)
    record_outcome.handler(second, None)  # v2 champion
    third, _ = run_that_registered(reg, "third", compared=2)
    record_outcome.handler(third, None)  # v3 replaced v2
    # v2's run fails afterwards
    second_failure["failure"] = {"Notify": second_failure["failure"]["BatchTransform"]}

    record_outcome.handler(second_failure, None)

    assert reg.get_champion(MODEL).version == 3
    version = reg.get_version(MODEL, 2)
    assert version["promotion"] == "NOT_PROMOTED"
    assert "v3 replaced it before the rollback, so the champion was left as is" in version["promotion_reason"]


DRIFT_URI = "s3://readmission-local-artifactbucket/runs/r-1/drift/drift_report.json"


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

"""The REST API: POST /training validates and starts once per key; GET endpoints read SFN and the registry."""

from __future__ import annotations

import base64
import copy
import json
import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

import api
import register_model
from registry import Registry
from settings import load_settings
from tests.functions.helpers import BUCKET, TABLE, Aws, dataset_head, load_event, with_training_output


def post(body: Any, headers: dict[str, str] | None = None, *, raw: str | None = None) -> tuple[int, dict]:
    event = copy.deepcopy(load_event("api_post_training.json"))
    event["body"] = raw if raw is not None else json.dumps(body)
    event["headers"].update(headers or {})
    response = api.handler(event, None)
    return response["statusCode"], json.loads(response["body"])


def sample_body() -> dict[str, Any]:
    return json.loads(load_event("api_post_training.json")["body"])


def test_the_sample_request_starts_an_execution(aws: Aws) -> None:
    aws.put("datasets/diabetic_data.csv", dataset_head(50))

    status, body = post(sample_body())

    assert status == 202
    assert body["status"] == "RUNNING"
    assert body["executionName"].startswith("medication-adherence-model-")
    [execution] = aws.executions()
    assert execution["executionArn"] == body["executionArn"]
    sent = json.loads(aws.sfn.describe_execution(executionArn=body["executionArn"])["input"])
    assert sent == {
        "datasetUri": f"s3://{BUCKET}/datasets/diabetic_data.csv",
        "modelName": "medication-adherence-model",
        "algorithm": "RandomForest",
        "instanceType": "ml.m5.xlarge",
    }


def test_the_same_request_again_returns_the_first_execution(aws: Aws) -> None:
    aws.put("datasets/diabetic_data.csv", dataset_head(50))
    _, first = post(sample_body())

    status, again = post(sample_body())

    assert status == 200
    assert again["executionArn"] == first["executionArn"]
    assert len(aws.executions()) == 1


def wait_until_done(aws: Aws, arn: str, limit: float = 120.0) -> str:
    """The execution's final status; moto runs the trivial machines on a thread, usually within
    milliseconds, and the generous limit only turns a hang into a failure (never a slow machine)."""
    deadline = time.monotonic() + limit
    while (status := aws.sfn.describe_execution(executionArn=arn)["status"]) == "RUNNING":
        if time.monotonic() > deadline:
            raise AssertionError(f"{arn} still RUNNING after {limit:.0f} s")
        time.sleep(0.02)
    return status


def test_a_request_whose_run_failed_starts_a_new_execution_under_the_next_name(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    import settings

    failing = aws.sfn.create_state_machine(
        name="always-fails",
        definition=json.dumps(
            {"StartAt": "Boom", "States": {"Boom": {"Type": "Fail", "Error": "ChampionChanged"}}}
        ),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]
    monkeypatch.setenv("STATE_MACHINE_ARN", failing)
    settings.load_settings.cache_clear()
    aws.put("datasets/diabetic_data.csv", dataset_head(50))
    _, first = post(sample_body(), {"Idempotency-Key": "flaky"})
    assert wait_until_done(aws, first["executionArn"]) == "FAILED"

    status, second = post(sample_body(), {"Idempotency-Key": "flaky"})

    assert status == 202 and second["executionName"] == f"{first['executionName']}-2"
    assert second["executionArn"] != first["executionArn"]


def test_new_content_under_the_same_key_is_a_new_run(aws: Aws) -> None:
    aws.put("datasets/diabetic_data.csv", dataset_head(50))
    _, first = post(sample_body())
    aws.put("datasets/diabetic_data.csv", dataset_head(60))

    _, second = post(sample_body())

    assert second["executionArn"] != first["executionArn"]
    assert len(aws.executions()) == 2


def test_the_idempotency_key_header_names_the_execution(aws: Aws) -> None:
    aws.put("datasets/diabetic_data.csv", dataset_head(50))
    _, first = post(sample_body(), {"Idempotency-Key": "abc-123"})
    status, again = post(sample_body(), {"idempotency-key": "abc-123"})
    _, other = post(sample_body(), {"Idempotency-Key": "abc-124"})

    assert status == 200 and again["executionArn"] == first["executionArn"]
    assert other["executionArn"] != first["executionArn"]
    sent = json.loads(aws.sfn.describe_execution(executionArn=first["executionArn"])["input"])
    assert sent["idempotencyKey"] == "abc-123"


@pytest.mark.parametrize(
    ("body", "raw", "field", "message"),
    [
        (None, "{not json", "body", "invalid JSON"),
        (None, "[1, 2]", "body", "must be a JSON object"),
        (None, "", "body", "a JSON object body is required"),
        ({}, None, "datasetUri", "required field is missing"),
        (
            {"datasetUri": f"s3://{BUCKET}/datasets/d.csv", "algorithm": "XGBoost"},
            None,
            "algorithm",
            "must be one of HistGradientBoosting, RandomForest, LogisticRegression",
        ),
        ({"datasetUri": f"s3://{BUCKET}/datasets/d.csv", "colour": "blue"}, None, "colour", "unknown field"),
        (
            {"datasetUri": "s3://other-bucket/datasets/d.csv"},
            None,
            "datasetUri",
            "outside the project's bucket",
        ),
        ({"datasetUri": f"s3://{BUCKET}/code/d.csv"}, None, "datasetUri", "is not under"),
        ({"datasetUri": "/tmp/d.csv"}, None, "datasetUri", "must match ^s3://"),
        (
            {"datasetUri": f"s3://{BUCKET}/datasets/d.csv", "modelName": "bad name!"},
            None,
            "modelName",
            "(e.g. medication-adherence-model)",
        ),
        (
            {"datasetUri": f"s3://{BUCKET}/datasets/d.csv", "modelName": "m" * 64},
            None,
            "modelName",
            "must be 1 to 63 characters",
        ),
        (
            {"datasetUri": f"s3://{BUCKET}/datasets/d.csv", "instanceType": "m5.large"},
            None,
            "instanceType",
            "'m5.large' is not a SageMaker training instance type",
        ),
        (
            {"datasetUri": f"s3://{BUCKET}/datasets/d.csv", "instanceType": "ml.m5.huge"},
            None,
            "instanceType",
            "are, e.g. ml.m5.large, ml.m5.xlarge",
        ),
        (
            {"datasetUri": f"s3://{BUCKET}/datasets/d.csv", "scoreUri": f"s3://{BUCKET}/runs/x/y.csv"},
            None,
            "scoreUri",
            "must be under",
        ),
        (
            {
                "datasetUri": f"s3://{BUCKET}/datasets/d.csv",
                "hyperparameters": {"sagemaker_program": "evil.py"},
            },
            None,
            "hyperparameters",
            "unknown hyperparameters ['sagemaker_program']",
        ),
        ({"datasetUri": f"s3://{BUCKET}/datasets/missing.csv"}, None, "datasetUri", "does not exist"),
        (
            {"datasetUri": f"s3://{BUCKET}/datasets/missing.csv", "idempotencyKey": "k"},
            None,
            "datasetUri",
            "does not exist",
        ),
    ],
)
def test_a_bad_request_is_a_400_with_the_field_named_and_starts_nothing(
    aws: Aws, body: Any, raw: str | None, field: str, message: str
) -> None:
    status, response = post(body, raw=raw)

    assert status == 400
    assert any(e["field"] == field and message in e["message"] for e in response["errors"]), response
    assert aws.executions() == []


@pytest.mark.parametrize(
    ("raw_hyperparameters", "field", "message"),
    [
        ('{"max_iter": -5}', "hyperparameters.max_iter", "must be an integer within [1, 1000]"),
        ('{"max_iter": "lots"}', "hyperparameters.max_iter", "must be an integer within [1, 1000]"),
        ('{"max_iter": NaN}', "hyperparameters.max_iter", "must be a finite number"),
        ('{"learning_rate": Infinity}', "hyperparameters.learning_rate", "must be a finite number"),
        ('{"learning_rate": 0}', "hyperparameters.learning_rate", "within (0, 1]"),
        ('{"validation_fraction": 0.99}', "hyperparameters.validation_fraction", "within [0.05, 0.5]"),
        ('{"max_iter": 100000000}', "hyperparameters.max_iter", "within [1, 1000]"),
        ('{"n_estimators": 100000}', "hyperparameters.n_estimators", "within [1, 500]"),
        ('{"seed": -1}', "hyperparameters.seed", "within [0, 4294967295]"),
        ('{"decision_threshold": 1}', "hyperparameters.decision_threshold", "within (0, 1)"),
        ('{"early_stopping": false}', "hyperparameters", "unknown hyperparameters ['early_stopping']"),
    ],
)
def test_a_hyperparameter_outside_its_type_or_range_is_a_400_naming_it(
    aws: Aws, raw_hyperparameters: str, field: str, message: str
) -> None:
    aws.put("datasets/diabetic_data.csv", dataset_head(50))
    dataset = f"s3://{BUCKET}/datasets/diabetic_data.csv"
    raw = f'{{"datasetUri": "{dataset}", "hyperparameters": {raw_hyperparameters}}}'

    status, response = post(None, raw=raw)

    assert status == 400
    assert any(e["field"] == field and message in e["message"] for e in response["errors"]), response
    assert aws.executions() == []


@pytest.mark.parametrize("raw_count", ["0", "101", '"2"', "2.5", "null"])
def test_a_transform_instance_count_outside_1_to_100_is_a_400_naming_it(aws: Aws, raw_count: str) -> None:
    aws.put("datasets/diabetic_data.csv", dataset_head(50))
    dataset = f"s3://{BUCKET}/datasets/diabetic_data.csv"
    raw = f'{{"datasetUri": "{dataset}", "transformInstanceCount": {raw_count}}}'

    status, response = post(None, raw=raw)

    if raw_count == "null":  # null counts as absent: the default, one instance
        assert status == 202
        return
    assert status == 400
    assert response["errors"] == [
        {"field": "transformInstanceCount", "message": "must be an integer within [1, 100]"}
    ], response
    assert aws.executions() == []


def test_a_transform_instance_count_within_range_is_sent_to_the_run(aws: Aws) -> None:
    aws.put("datasets/diabetic_data.csv", dataset_head(50))

    status, started = post({**sample_body(), "transformInstanceCount": 2.0})

    assert status == 202
    sent = json.loads(aws.sfn.describe_execution(executionArn=started["executionArn"])["input"])
    assert sent["transformInstanceCount"] == 2 and isinstance(sent["transformInstanceCount"], int)


def test_hyperparameters_within_their_ranges_start_a_run_with_whole_numbers_sent_as_such(aws: Aws) -> None:
    aws.put("datasets/diabetic_data.csv", dataset_head(50))
    body = {**sample_body(), "hyperparameters": {"max_iter": 200.0, "learning_rate": 1, "seed": 0}}

    status, started = post(body)

    assert status == 202
    sent = json.loads(aws.sfn.describe_execution(executionArn=started["executionArn"])["input"])
    assert sent["hyperparameters"] == {"max_iter": 200, "learning_rate": 1, "seed": 0}
    assert isinstance(sent["hyperparameters"]["max_iter"], int)


def test_an_oversized_body_is_refused(aws: Aws) -> None:
    body = {"datasetUri": f"s3://{BUCKET}/datasets/d.csv", "idempotencyKey": "k", "pad": "x" * 70_000}

    status, response = post(body)

    assert status == 400 and "the limit is 65536" in response["errors"][0]["message"]
    assert aws.executions() == []


@pytest.mark.parametrize("depth", [17, 5000])
def test_a_body_nested_too_deeply_is_a_400_on_the_body(aws: Aws, depth: int) -> None:
    raw = '{"datasetUri": ' + "[" * depth + "]" * depth + "}"

    status, response = post(None, raw=raw)

    assert status == 400
    assert response["errors"] == [{"field": "body", "message": "nested deeper than 16 levels"}]
    assert aws.executions() == []


def test_a_base64_body_is_decoded(aws: Aws) -> None:
    event = copy.deepcopy(load_event("api_post_training.json"))
    event["body"] = base64.b64encode(json.dumps({"datasetUri": "nope"}).encode()).decode()
    event["isBase64Encoded"] = True

    response = api.handler(event, None)

    assert response["statusCode"] == 400
    assert json.loads(response["body"])["errors"][0]["field"] == "datasetUri"


@pytest.mark.parametrize(
    ("raw", "message"), [("not base64!", "body is not valid base64"), ("//79", "invalid JSON")]
)
def test_a_base64_body_that_does_not_decode_is_a_400_on_the_body(aws: Aws, raw: str, message: str) -> None:
    event = copy.deepcopy(load_event("api_post_training.json"))
    event["body"] = raw
    event["isBase64Encoded"] = True

    response = api.handler(event, None)

    assert response["statusCode"] == 400
    [error] = json.loads(response["body"])["errors"]
    assert error["field"] == "body" and message in error["message"]
    assert aws.executions() == []


def test_a_header_key_that_contradicts_the_body_key_is_refused(aws: Aws) -> None:
    body = {**sample_body(), "idempotencyKey": "one"}

    status, response = post(body, {"Idempotency-Key": "two"})

    assert status == 400 and response["errors"][0]["field"] == "idempotencyKey"


def test_get_execution_reports_status_and_current_state(aws: Aws) -> None:
    aws.put("datasets/diabetic_data.csv", dataset_head(50))
    _, started = post(sample_body(), {"Idempotency-Key": "abc"})
    event = copy.deepcopy(load_event("api_get_execution.json"))
    event["path"] = f"/executions/{started['executionName']}"
    event["pathParameters"] = {"id": started["executionName"]}

    wait_until_done(aws, started["executionArn"])

    response = api.handler(event, None)

    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    assert body["executionArn"] == started["executionArn"]
    assert body["status"] == "SUCCEEDED"
    assert body["currentState"] == "Done"
    assert body["error"] is None


def test_get_execution_of_an_unknown_id_is_404(aws: Aws) -> None:
    response = api.handler(load_event("api_get_execution.json"), None)

    assert response["statusCode"] == 404


class StepFunctionsAsOnAws:
    """DescribeExecution as Step Functions answers it: an executionArn over 256 characters is a
    ValidationException (moto, unlike AWS and the local runtime, answers ExecutionDoesNotExist)."""

    def __init__(self, real: Any):
        self.real = real
        self.exceptions = real.exceptions
        self.described: list[str] = []

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        self.described.append(executionArn)
        if len(executionArn) > 256:
            raise ClientError(
                {"Error": {"Code": "ValidationException", "Message": "Member must have length <= 256"}},
                "DescribeExecution",
            )
        return self.real.describe_execution(executionArn=executionArn)

    def get_execution_history(self, **kwargs: Any) -> dict[str, Any]:
        return self.real.get_execution_history(**kwargs)


@pytest.mark.parametrize(
    "execution_id",
    [
        "x" * 300,
        "%C3%89" * 200,
        "a%0Ab",
        "a b",
        "a/b",
        "a%C2%96b",
        "arn:aws:states:x",
        "arn:aws:states:us-east-1:123456789012:execution:another-machine:run-1",
    ],
    ids=["long", "long-escaped", "newline", "space", "slash", "c1-control", "short-arn", "another-machine"],
)
def test_an_impossible_execution_id_is_unknown_without_asking_step_functions(
    aws: Aws, execution_id: str
) -> None:
    """Found by the schemathesis run: an ARN over 256 characters was a ValidationException, a name with a
    control character or an ARN outside the state machine an AccessDeniedException: each a 502."""
    sfn = StepFunctionsAsOnAws(boto3.client("stepfunctions"))
    registry = Registry(TABLE, boto3.client("dynamodb"))

    found = api.describe_execution(execution_id, settings=load_settings(), sfn=sfn, registry=registry)

    assert found is None  # the handler's 404
    assert sfn.described == []


def test_an_execution_is_found_by_its_name_and_by_its_arn(aws: Aws) -> None:
    aws.put("datasets/diabetic_data.csv", dataset_head(50))
    _, started = post(sample_body(), {"Idempotency-Key": "by-name-and-arn"})
    sfn = StepFunctionsAsOnAws(boto3.client("stepfunctions"))
    registry = Registry(TABLE, boto3.client("dynamodb"))

    by_name = api.describe_execution(
        started["executionName"], settings=load_settings(), sfn=sfn, registry=registry
    )
    by_arn = api.describe_execution(
        started["executionArn"], settings=load_settings(), sfn=sfn, registry=registry
    )

    assert by_name is not None and by_arn is not None
    assert by_name["executionArn"] == by_arn["executionArn"] == started["executionArn"]


def test_get_models_lists_versions_with_the_champion_flag(aws: Aws) -> None:
    reg = Registry(TABLE, aws.dynamodb)
    event = load_event("register_model.json")
    reg.start_run(
        run_id=event["run"]["runId"],
        execution_arn="a",
        model_name=event["run"]["modelName"],
        idempotency_key="k",
        dataset_uri="d",
    )
    register_model.handler(with_training_output(event), None)
    candidate = json.loads(api.handler(load_event("api_get_models.json"), None)["body"])["models"]
    reg.promote(event["run"]["modelName"], 1, expected_champion=None, reason="its run succeeded")

    models = json.loads(api.handler(load_event("api_get_models.json"), None)["body"])["models"]
    one = api.handler(load_event("api_get_model_version.json"), None)
    missing = copy.deepcopy(load_event("api_get_model_version.json"))
    missing["path"] = "/models/medication-adherence-model/7"

    assert [(m["version"], m["isChampion"], m["promotion"]) for m in candidate] == [(1, False, "CANDIDATE")]
    assert [(m["version"], m["status"], m["isChampion"]) for m in models] == [(1, "APPROVED", True)]
    assert models[0]["promotion"] == "PROMOTED" and "its run succeeded" in models[0]["promotionReason"]
    assert models[0]["metrics"]["model"]["roc_auc"] == pytest.approx(0.6712)
    assert one["statusCode"] == 200 and json.loads(one["body"])["version"] == 1
    assert api.handler(missing, None)["statusCode"] == 404


def test_get_models_shows_each_versions_patient_history_and_null_without_one(aws: Aws) -> None:
    reg = Registry(TABLE, aws.dynamodb)
    with_history = load_event("register_model.json")
    without_history = copy.deepcopy(with_history)
    without_history["run"]["runId"] = with_history["run"]["runId"] + "-no-history"
    with_history = copy.deepcopy(with_history)
    with_history["evaluation"]["metrics"] = {
        **with_history["evaluation"]["metrics"],
        "history": {"file": "patient_history.csv.gz", "sha256": "cd" * 32, "rows": 101766},
    }
    for event in (with_history, without_history):
        reg.start_run(
            run_id=event["run"]["runId"],
            execution_arn="a",
            model_name=event["run"]["modelName"],
            idempotency_key=event["run"]["runId"],
            dataset_uri="d",
        )
        register_model.handler(with_training_output(event), None)

    models = json.loads(api.handler(load_event("api_get_models.json"), None)["body"])["models"]
    one = json.loads(api.handler(load_event("api_get_model_version.json"), None)["body"])

    by_version = {m["version"]: m for m in models}
    expected_uri = with_history["training"]["artifactUri"] + "#patient_history.csv.gz"
    assert (by_version[1]["historyUri"], by_version[1]["historySha256"]) == (expected_uri, "cd" * 32)
    assert (by_version[2]["historyUri"], by_version[2]["historySha256"]) == (None, None)
    assert (one["historyUri"], one["historySha256"]) == (expected_uri, "cd" * 32)


def test_every_problem_in_a_body_is_reported_at_once(aws: Aws) -> None:
    body = {
        "modelName": "",
        "algorithm": "SVM",
        "hyperparameters": {"seed": True, "target": "mortality", "sagemaker_program": "x.py"},
        "idempotencyKey": "k" * 200,
        "typo": 1,
    }

    status, response = post(body)

    assert status == 400
    assert {e["field"] for e in response["errors"]} == {
        "typo",
        "datasetUri",
        "modelName",
        "algorithm",
        "hyperparameters",
        "hyperparameters.seed",
        "hyperparameters.target",
        "idempotencyKey",
    }

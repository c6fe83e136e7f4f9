"""The API's start and describe logic against recording fakes: replays, retries, races, the answer.

Written for the mutation run (docs/mutation.md): the handler tests run one trivial machine in moto,
so the walk over `<name>-<n>` after failures, its bound, the race with a concurrent start and the
exact fields of GET /executions/{id} were only partly pinned.
"""

from __future__ import annotations

import copy
import datetime
import json
from typing import Any

import pytest

import api
from run_input import RequestErrors, TrainingRequest, client_idempotency_key, execution_name_for_key
from settings import Settings
from tests.functions.helpers import Aws, load_event, unit_settings

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:pipe"
EXECUTIONS = "arn:aws:states:us-east-1:123456789012:execution:pipe:"
SETTINGS = unit_settings(state_machine_arn=MACHINE)
REQUEST = TrainingRequest(datasetUri="s3://bucket/datasets/d.csv", idempotencyKey="k-1")
NAME = execution_name_for_key(client_idempotency_key("k-1"), "default-model")


class ClientError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.response = {"Error": {"Code": code}}


class Objects:
    class exceptions:  # the boto3 client attribute it stands in for
        ClientError = ClientError

    def __init__(self, head: dict[str, Any] | None) -> None:
        self.head = head

    def head_object(self, **kwargs: Any) -> dict[str, Any]:
        assert kwargs["Bucket"] == "bucket" and kwargs["Key"].startswith("datasets/")
        if self.head is None:
            raise ClientError("404")
        return self.head


class Machine:
    """Step Functions with some executions already there; a start may lose a race."""

    class exceptions:  # the boto3 client attribute it stands in for
        ExecutionDoesNotExist = type("ExecutionDoesNotExist", (Exception,), {})
        ExecutionAlreadyExists = type("ExecutionAlreadyExists", (Exception,), {})
        InvalidArn = type("InvalidArn", (Exception,), {})

    def __init__(self, statuses: dict[str, str], race: str | None = None) -> None:
        self.statuses = dict(statuses)
        self.race = race  # the status a concurrent request's execution has when this one starts
        self.started: list[dict[str, Any]] = []

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        name = executionArn.removeprefix(EXECUTIONS)
        if name not in self.statuses:
            raise self.exceptions.ExecutionDoesNotExist(executionArn)
        return {"name": name, "status": self.statuses[name]}

    def start_execution(self, **kwargs: Any) -> dict[str, Any]:
        if self.race:
            self.statuses[kwargs["name"]] = self.race
            raise self.exceptions.ExecutionAlreadyExists(kwargs["name"])
        self.started.append(kwargs)
        return {"executionArn": EXECUTIONS + kwargs["name"]}


def start(sfn: Machine, request: TrainingRequest = REQUEST, head: dict[str, Any] | None = None) -> Any:
    s3 = Objects(head or {"ETag": '"e"'})
    return api.start_training(request, settings=SETTINGS, s3=s3, sfn=sfn)


def test_a_new_key_starts_an_execution_under_its_name_with_the_request_as_input() -> None:
    sfn = Machine({})

    code, body = start(sfn)

    assert (code, body) == (
        202,
        {"executionArn": EXECUTIONS + NAME, "executionName": NAME, "status": "RUNNING"},
    )
    assert sfn.started == [
        {"stateMachineArn": MACHINE, "name": NAME, "input": json.dumps(REQUEST.as_input())}
    ]


@pytest.mark.parametrize("status", ["RUNNING", "SUCCEEDED"])
def test_a_key_whose_execution_runs_or_succeeded_is_a_replay_answered_200(status: str) -> None:
    sfn = Machine({NAME: status})

    assert start(sfn) == (200, {"executionArn": EXECUTIONS + NAME, "executionName": NAME, "status": status})
    assert sfn.started == []


def test_after_failed_timed_out_and_aborted_runs_the_next_free_name_is_started() -> None:
    sfn = Machine({NAME: "FAILED", f"{NAME}-2": "TIMED_OUT", f"{NAME}-3": "ABORTED"})

    code, body = start(sfn)

    assert (code, body["executionName"], body["status"]) == (202, f"{NAME}-4", "RUNNING")
    assert [s["name"] for s in sfn.started] == [f"{NAME}-4"]


def test_a_later_name_that_succeeded_is_the_replay() -> None:
    sfn = Machine({NAME: "FAILED", f"{NAME}-2": "SUCCEEDED"})

    assert start(sfn)[0:1] == (200,)
    assert sfn.started == []


def test_the_tenth_name_may_run_and_after_ten_failures_the_key_is_refused() -> None:
    nine = {NAME: "FAILED", **{f"{NAME}-{n}": "FAILED" for n in range(2, 10)}}
    sfn = Machine(nine)
    assert start(sfn)[1]["executionName"] == f"{NAME}-10"

    sfn = Machine({**nine, f"{NAME}-10": "FAILED"})
    with pytest.raises(RequestErrors) as caught:
        start(sfn)
    assert caught.value.errors == [
        {"field": "idempotencyKey", "message": "10 runs with this key failed; use a new key"}
    ]
    assert sfn.started == []


def test_a_concurrent_start_with_the_same_key_is_answered_with_that_execution() -> None:
    sfn = Machine({}, race="RUNNING")

    assert start(sfn) == (
        200,
        {"executionArn": EXECUTIONS + NAME, "executionName": NAME, "status": "RUNNING"},
    )


def test_a_missing_dataset_is_a_400_on_the_dataset_uri() -> None:
    with pytest.raises(RequestErrors) as caught:
        api.start_training(REQUEST, settings=SETTINGS, s3=Objects(None), sfn=Machine({}))
    assert caught.value.errors == [
        {"field": "datasetUri", "message": "s3://bucket/datasets/d.csv does not exist"}
    ]


def test_without_a_key_the_version_of_the_dataset_names_the_run_before_its_etag() -> None:
    request = TrainingRequest(datasetUri="s3://bucket/datasets/d.csv", modelName="my model")
    names = {
        start(Machine({}), request, head)[1]["executionName"]
        for head in ({"ETag": '"e"', "VersionId": "v1"}, {"ETag": '"e"', "VersionId": "v2"}, {"ETag": '"e"'})
    }

    assert len(names) == 3
    assert all(name.startswith("my-model-") for name in names)


def test_without_a_key_the_dataset_and_the_parameters_name_the_run_too() -> None:
    base = TrainingRequest(datasetUri="s3://bucket/datasets/d.csv")
    same_content_elsewhere = TrainingRequest(datasetUri="s3://bucket/datasets/copy/d.csv")
    other_parameters = TrainingRequest(
        datasetUri="s3://bucket/datasets/d.csv", hyperparameters={"max_iter": 50}
    )

    names = [
        start(Machine({}), request)[1]["executionName"]
        for request in (base, same_content_elsewhere, other_parameters)
    ]

    assert len(set(names)) == 3


@pytest.mark.parametrize(
    ("value", "depth"),
    [(1, 0), ({}, 1), ([], 1), ({"a": 1}, 1), ({"a": {"b": [1]}}, 3), ([[[]], {}], 3)],
)
def test_the_depth_of_a_json_value(value: Any, depth: int) -> None:
    assert api._depth(value) == depth


def test_an_execution_name_of_80_characters_is_one_and_81_is_not() -> None:
    assert api.execution_arn_of("a" * 80, SETTINGS) == EXECUTIONS + "a" * 80
    assert api.execution_arn_of("a" * 81, SETTINGS) is None
    assert api.execution_arn_of(EXECUTIONS + "run-1", SETTINGS) == EXECUTIONS + "run-1"
    assert api.execution_arn_of("run%2D1", SETTINGS) == EXECUTIONS + "run-1"


def test_an_arn_is_refused_when_it_would_exceed_256_characters() -> None:
    long_machine = "arn:aws:states:us-east-1:123456789012:stateMachine:" + "m" * 180
    settings = Settings(**{**SETTINGS.__dict__, "state_machine_arn": long_machine})
    prefix = long_machine.replace(":stateMachine:", ":execution:") + ":"
    fits = "r" * (256 - len(prefix))

    assert api.execution_arn_of(fits, settings) == prefix + fits
    assert api.execution_arn_of(fits + "r", settings) is None


class History(Machine):
    """An execution with a history and dates."""

    def __init__(self, described: dict[str, Any], events: list[dict[str, Any]]) -> None:
        super().__init__({})
        self.described = described
        self.events = events
        self.history_calls: list[dict[str, Any]] = []

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        if executionArn != EXECUTIONS + "run-1":
            raise self.exceptions.ExecutionDoesNotExist(executionArn)
        return self.described

    def get_execution_history(self, **kwargs: Any) -> dict[str, Any]:
        self.history_calls.append(kwargs)
        return {"events": self.events}


class Runs:
    def __init__(self, run: dict[str, Any] | None) -> None:
        self.run = run

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        assert run_id == "run-1"
        return self.run


def test_an_execution_is_described_with_its_latest_state_dates_and_run() -> None:
    sfn = History(
        {
            "name": "run-1",
            "status": "FAILED",
            "startDate": datetime.datetime(2026, 12, 2, 6, 0, tzinfo=datetime.UTC),
            "stopDate": datetime.datetime(2026, 12, 2, 6, 5, tzinfo=datetime.UTC),
            "error": "InvalidDataset",
            "cause": "no rows",
        },
        [  # newest first, as asked
            {"type": "ExecutionFailed"},
            {"stateEnteredEventDetails": {"name": "RecordFailure"}},
            {"stateEnteredEventDetails": {"name": "ValidateDataset"}},
        ],
    )
    run = {
        "status": "FAILED",
        "stage": "ValidateDataset",
        "model_name": "m",
        "model_version": 3,
        "scored_version": 2,
        "predictions_uri": "s3://b/p/",
        "drift_uri": "s3://b/d.json",
    }

    found = api.describe_execution("run-1", settings=SETTINGS, sfn=sfn, registry=Runs(run))  # type: ignore[arg-type]

    assert found == {
        "executionArn": EXECUTIONS + "run-1",
        "executionName": "run-1",
        "status": "FAILED",
        "currentState": "RecordFailure",
        "startDate": "2026-12-02T06:00:00+00:00",
        "stopDate": "2026-12-02T06:05:00+00:00",
        "error": "InvalidDataset",
        "cause": "no rows",
        "run": {
            "status": "FAILED",
            "stage": "ValidateDataset",
            "modelName": "m",
            "modelVersion": 3,
            "scoredVersion": 2,
            "predictionsUri": "s3://b/p/",
            "driftReportUri": "s3://b/d.json",
        },
    }
    assert sfn.history_calls == [
        {"executionArn": EXECUTIONS + "run-1", "reverseOrder": True, "maxResults": 200}
    ]


@pytest.mark.parametrize("scored", [None, "none"])
def test_a_run_that_scored_nothing_has_no_scored_version(scored: Any) -> None:
    sfn = History({"name": "run-1", "status": "RUNNING"}, [])

    found = api.describe_execution(
        "run-1",
        settings=SETTINGS,
        sfn=sfn,
        registry=Runs({"status": "RUNNING", "scored_version": scored}),  # type: ignore[arg-type]
    )

    assert found is not None
    assert (found["currentState"], found["startDate"], found["stopDate"]) == (None, None, None)
    assert found["run"]["scoredVersion"] is None


def test_an_execution_without_a_run_record_has_run_none_and_an_unknown_one_is_none() -> None:
    sfn = History({"name": "run-1", "status": "RUNNING"}, [])

    found = api.describe_execution("run-1", settings=SETTINGS, sfn=sfn, registry=Runs(None))  # type: ignore[arg-type]

    assert found is not None and found["run"] is None
    assert api.describe_execution("run-2", settings=SETTINGS, sfn=sfn, registry=Runs(None)) is None  # type: ignore[arg-type]


def test_cors_allows_the_consoles_origin_its_two_headers_for_ten_minutes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONSOLE_ORIGIN", "https://console.example")

    cors = api._cors()

    assert cors is not None
    headers = cors.to_dict("https://console.example")
    assert headers["Access-Control-Allow-Origin"] == "https://console.example"
    assert {"Authorization", "Idempotency-Key"} <= set(headers["Access-Control-Allow-Headers"].split(","))
    assert headers["Access-Control-Max-Age"] == "600"


def test_no_cors_without_a_console_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONSOLE_ORIGIN", raising=False)

    assert api._cors() is None


def test_an_unknown_executions_states_are_a_404_naming_it(aws: Aws) -> None:
    event = copy.deepcopy(load_event("api_get_execution.json"))
    event["path"] = "/executions/no-such-run/states"
    event["resource"] = "/executions/{id}/states"
    event["pathParameters"] = {"id": "no-such-run"}

    response = api.handler(event, None)

    assert response["statusCode"] == 404
    assert json.loads(response["body"]) == {"message": "no execution no-such-run"}


BODY = {"datasetUri": "s3://bucket/datasets/d.csv"}


@pytest.mark.parametrize("length", [1, 128])
def test_an_idempotency_header_of_1_to_128_characters_becomes_the_requests_key(length: int) -> None:
    request = api.validate_training_request(BODY, "k" * length, settings=SETTINGS)

    assert request.idempotencyKey == "k" * length


@pytest.mark.parametrize("length", [0, 129])
def test_an_idempotency_header_outside_1_to_128_characters_is_a_field_error(length: int) -> None:
    with pytest.raises(RequestErrors) as caught:
        api.validate_training_request(BODY, "k" * length, settings=SETTINGS)
    assert caught.value.errors == [{"field": "Idempotency-Key", "message": "must be 1 to 128 characters"}]


def test_a_header_that_contradicts_the_bodys_key_is_a_field_error_on_the_body_key() -> None:
    with pytest.raises(RequestErrors) as caught:
        api.validate_training_request({**BODY, "idempotencyKey": "a"}, "b", settings=SETTINGS)
    assert caught.value.errors == [
        {"field": "idempotencyKey", "message": "differs from the Idempotency-Key header"}
    ]


def body_event(body: str | None) -> Any:
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

    return APIGatewayProxyEvent({"body": body, "isBase64Encoded": False, "headers": {}})


def test_a_body_of_exactly_64_kib_is_read_and_one_byte_more_is_refused() -> None:
    padding = api.MAX_BODY_BYTES - len('{"p": ""}')
    exact = '{"p": "' + "x" * padding + '"}'

    assert api.json_object_body(body_event(exact)) == {"p": "x" * padding}
    with pytest.raises(RequestErrors) as caught:
        api.json_object_body(body_event(exact[:-2] + 'x"}'))
    assert caught.value.errors == [{"field": "body", "message": "body is 65537 bytes; the limit is 65536"}]


def test_a_missing_body_is_a_field_error_on_the_body() -> None:
    with pytest.raises(RequestErrors) as caught:
        api.json_object_body(body_event(None))
    assert caught.value.errors == [{"field": "body", "message": "a JSON object body is required"}]


def test_a_body_nested_exactly_16_levels_is_read() -> None:
    body = "1"
    for _ in range(api.MAX_BODY_DEPTH - 1):
        body = f'{{"a": {body}}}'
    body = '{"datasetUri": "x", "h": ' + body + "}"

    assert api._depth(api.json_object_body(body_event(body))) == 16

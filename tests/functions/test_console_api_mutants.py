"""The console's reading of Step Functions and S3 (functions/console_api.py), pinned exactly against
small recording fakes (issue 14): the run list, each state's status, the jobs and their cost, the
dataset list's paging, artifact links and a version's report. What the console shows a user is
exactly these fields, so a changed key, status word, boundary or rounding is a wrong page."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import console_api
from run_input import RequestErrors
from tests.functions.helpers import report_archive, unit_settings

AT = datetime(2026, 12, 1, 10, tzinfo=UTC)
AT_MS = int(AT.timestamp() * 1000)


class _Sfn:
    """ListExecutions, DescribeExecution, DescribeStateMachine and a paged GetExecutionHistory."""

    def __init__(
        self,
        executions: list[dict[str, Any]] | None = None,
        inputs: dict[str, str] | None = None,
        pages: list[dict[str, Any]] | None = None,
        described: dict[str, Any] | None = None,
    ):
        self.executions = executions or []
        self.inputs = inputs or {}
        self.pages = pages or [{"events": []}]
        self.described = described or {}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def list_executions(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("list_executions", kwargs))
        return {"executions": [dict(e) for e in self.executions]}

    def describe_execution(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("describe_execution", kwargs))
        arn = kwargs["executionArn"]
        return self.described or {"input": self.inputs.get(arn)}

    def describe_state_machine(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("describe_state_machine", kwargs))
        return {"definition": '{"StartAt": "PrepareRun"}'}

    def get_execution_history(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("get_execution_history", kwargs))
        index = 0 if "nextToken" not in kwargs else int(kwargs["nextToken"])
        return self.pages[index]


class _Registry:
    def __init__(self, runs: dict[str, dict[str, Any]]):
        self.runs = runs

    def get_run(self, name: str) -> dict[str, Any] | None:
        return self.runs.get(name)


# ---- full_history, trigger_of, cause_in_words ----------------------------------------------------


def test_the_history_follows_next_tokens_and_keeps_every_event_in_order() -> None:
    """GetExecutionHistory pages at 1000: a run with more events must not lose its tail."""
    sfn = _Sfn(
        pages=[
            {"events": [{"id": 1}], "nextToken": "1"},
            {"events": [{"id": 2}, {"id": 3}], "nextToken": "2"},
            {"events": [{"id": 4}]},
        ]
    )

    events = console_api.full_history(sfn, "arn:run")

    assert events == [{"id": 1}, {"id": 2}, {"id": 3}, {"id": 4}]
    assert [kwargs for _, kwargs in sfn.calls] == [
        {"executionArn": "arn:run", "maxResults": 1000},
        {"executionArn": "arn:run", "maxResults": 1000, "nextToken": "1"},
        {"executionArn": "arn:run", "maxResults": 1000, "nextToken": "2"},
    ]


def test_an_empty_next_token_ends_the_history() -> None:
    sfn = _Sfn(pages=[{"events": [{"id": 1}], "nextToken": ""}])

    assert console_api.full_history(sfn, "arn:run") == [{"id": 1}]
    assert len(sfn.calls) == 1


@pytest.mark.parametrize(
    ("execution_input", "trigger"),
    [
        ('{"source": "aws.s3"}', "upload"),
        ('{"source": "aws.events"}', "request"),
        ('["aws.s3"]', "request"),
        (None, "request"),
        ("not json", "unknown"),
    ],
)
def test_the_trigger_is_an_upload_only_for_an_s3_event(execution_input: str | None, trigger: str) -> None:
    assert console_api.trigger_of(execution_input) == trigger


@pytest.mark.parametrize(
    ("cause", "words"),
    [
        ('{"errorMessage": "bad rows", "FailureReason": "x"}', "bad rows"),
        ('{"FailureReason": "AlgorithmError: out of memory"}', "AlgorithmError: out of memory"),
        ('{"message": "throttled"}', "throttled"),
        ('{"Cause": "inner"}', "inner"),
        ('{"errorMessage": 3, "message": "the text"}', "the text"),
        ('{"other": "x"}', '{"other": "x"}'),
        ('["errorMessage"]', '["errorMessage"]'),
        ("plain words", "plain words"),
        ("", ""),
        (None, None),
    ],
)
def test_a_cause_is_its_message_in_words(cause: str | None, words: str | None) -> None:
    """The run page shows a failure's sentence, not a JSON document; a cause it cannot read is kept."""
    assert console_api.cause_in_words(cause) == words


# ---- list_executions ----------------------------------------------------------------------------


def test_the_run_list_is_newest_first_with_each_runs_registry_fields_and_duration() -> None:
    executions = [
        {
            "name": "old",
            "executionArn": "arn:old",
            "status": "SUCCEEDED",
            "startDate": AT,
            "stopDate": AT + timedelta(seconds=90, milliseconds=240),
        },
        {"name": "new", "executionArn": "arn:new", "status": "RUNNING", "startDate": AT + timedelta(hours=1)},
    ]
    sfn = _Sfn(executions, inputs={"arn:old": '{"source": "aws.s3"}', "arn:new": "{}"})
    registry = _Registry(
        {
            "old": {
                "dataset_uri": "s3://b/datasets/a.csv",
                "model_name": "m",
                "model_version": 3,
                "decision": "promoted",
            }
        }
    )

    body = console_api.list_executions(
        settings=unit_settings(state_machine_arn="arn:sm"), sfn=sfn, registry=registry
    )

    assert body == {
        "executions": [
            {
                "executionName": "new",
                "executionArn": "arn:new",
                "status": "RUNNING",
                "trigger": "request",
                "datasetUri": None,
                "modelName": None,
                "modelVersion": None,
                "decision": None,
                "startDate": "2026-12-01T11:00:00+00:00",
                "stopDate": None,
                "durationSeconds": None,
            },
            {
                "executionName": "old",
                "executionArn": "arn:old",
                "status": "SUCCEEDED",
                "trigger": "upload",
                "datasetUri": "s3://b/datasets/a.csv",
                "modelName": "m",
                "modelVersion": 3,
                "decision": "promoted",
                "startDate": "2026-12-01T10:00:00+00:00",
                "stopDate": "2026-12-01T10:01:30.240000+00:00",
                "durationSeconds": 90.2,
            },
        ]
    }
    assert sfn.calls[0] == ("list_executions", {"stateMachineArn": "arn:sm", "maxResults": 100})


def test_the_run_list_keeps_only_the_newest_limit_runs() -> None:
    executions = [
        {
            "name": f"r{i}",
            "executionArn": f"arn:{i}",
            "status": "SUCCEEDED",
            "startDate": AT + timedelta(minutes=i),
        }
        for i in range(3)
    ]
    sfn = _Sfn(executions)

    body = console_api.list_executions(settings=unit_settings(), sfn=sfn, registry=_Registry({}), limit=2)

    assert [row["executionName"] for row in body["executions"]] == ["r2", "r1"]
    assert sfn.calls[0][1]["maxResults"] == 2


# ---- state_statuses, execution_states -----------------------------------------------------------


def _entered(name: str, minute: int) -> dict[str, Any]:
    return {
        "type": "TaskStateEntered",
        "timestamp": AT + timedelta(minutes=minute),
        "stateEnteredEventDetails": {"name": name},
    }


def _exited(name: str, minute: int) -> dict[str, Any]:
    return {
        "type": "TaskStateExited",
        "timestamp": AT + timedelta(minutes=minute),
        "stateExitedEventDetails": {"name": name},
    }


def test_each_state_is_running_once_entered_and_succeeded_once_exited() -> None:
    states = console_api.state_statuses([_entered("A", 0), _exited("A", 1), _entered("B", 2)])

    assert states == {
        "A": {
            "status": "SUCCEEDED",
            "enteredAt": "2026-12-01T10:00:00+00:00",
            "exitedAt": "2026-12-01T10:01:00+00:00",
        },
        "B": {"status": "RUNNING", "enteredAt": "2026-12-01T10:02:00+00:00"},
    }


def test_a_failed_state_keeps_its_error_cause_and_failure_time_when_a_catch_exits_it() -> None:
    """A caught failure still failed: the later exit keeps FAILED and takes the exit's time."""
    failed = {
        "type": "TaskFailed",
        "timestamp": AT + timedelta(minutes=1),
        "taskFailedEventDetails": {"error": "States.TaskFailed", "cause": '{"errorMessage": "no rows"}'},
    }

    states = console_api.state_statuses([_entered("A", 0), failed, _exited("A", 2)])

    assert states == {
        "A": {
            "status": "FAILED",
            "enteredAt": "2026-12-01T10:00:00+00:00",
            "error": "States.TaskFailed",
            "cause": "no rows",
            "exitedAt": "2026-12-01T10:02:00+00:00",
        }
    }


@pytest.mark.parametrize(
    ("event_type", "details_key"),
    [
        ("TaskTimedOut", "taskTimedOutEventDetails"),
        ("TaskStartFailed", "taskStartFailedEventDetails"),
        ("TaskSubmitFailed", "taskSubmitFailedEventDetails"),
        ("LambdaFunctionFailed", "lambdaFunctionFailedEventDetails"),
        ("ExecutionFailed", "executionFailedEventDetails"),
        ("ExecutionTimedOut", "executionTimedOutEventDetails"),
        ("ExecutionAborted", "executionAbortedEventDetails"),
    ],
)
def test_every_kind_of_failure_fails_the_current_state_with_its_details(
    event_type: str, details_key: str
) -> None:
    failure = {
        "type": event_type,
        "timestamp": AT + timedelta(minutes=3),
        details_key: {"error": "E", "cause": "c"},
    }

    states = console_api.state_statuses([_entered("A", 0), failure])

    assert states["A"] == {
        "status": "FAILED",
        "enteredAt": "2026-12-01T10:00:00+00:00",
        "error": "E",
        "cause": "c",
        "exitedAt": "2026-12-01T10:03:00+00:00",
    }


def test_a_failure_without_details_is_named_by_its_event_type() -> None:
    states = console_api.state_statuses([_entered("A", 0), {"type": "ExecutionAborted", "timestamp": AT}])

    assert states["A"]["error"] == "ExecutionAborted"
    assert states["A"]["cause"] is None
    assert states["A"]["status"] == "FAILED"


def test_a_failure_before_any_state_and_an_exit_without_entry_are_kept_apart() -> None:
    """A failure outside any state fails nothing; an exit seen without its entry still succeeds."""
    states = console_api.state_statuses(
        [{"type": "ExecutionFailed", "timestamp": AT, "executionFailedEventDetails": {}}, _exited("Z", 1)]
    )

    assert states == {"Z": {"status": "SUCCEEDED", "exitedAt": "2026-12-01T10:01:00+00:00"}}


def test_the_run_pages_graph_is_the_definition_with_the_states_statuses() -> None:
    sfn = _Sfn(
        pages=[{"events": [_entered("PrepareRun", 0)]}],
        described={"name": "run-1", "status": "FAILED", "error": "E", "cause": '{"errorMessage": "why"}'},
    )

    body = console_api.execution_states(
        "arn:run", settings=unit_settings(state_machine_arn="arn:sm"), sfn=sfn
    )

    assert body == {
        "executionName": "run-1",
        "status": "FAILED",
        "error": "E",
        "cause": "why",
        "definition": {"StartAt": "PrepareRun"},
        "states": {"PrepareRun": {"status": "RUNNING", "enteredAt": "2026-12-01T10:00:00+00:00"}},
    }
    assert ("describe_state_machine", {"stateMachineArn": "arn:sm"}) in sfn.calls
    assert ("get_execution_history", {"executionArn": "arn:run", "maxResults": 1000}) in sfn.calls


# ---- jobs and their cost ------------------------------------------------------------------------


def _scheduled(resource: str, parameters: dict[str, Any] | None, minute: int) -> dict[str, Any]:
    details: dict[str, Any] = {"resource": resource}
    if parameters is not None:
        details["parameters"] = json.dumps(parameters)
    return {
        "type": "TaskScheduled",
        "timestamp": AT + timedelta(minutes=minute),
        "taskScheduledEventDetails": details,
    }


def _ended(key: str, minute: int, output: str | None = None) -> dict[str, Any]:
    details = {} if output is None else {"output": output}
    return {"type": "X", "timestamp": AT + timedelta(minutes=minute), key: details}


def test_each_sagemaker_job_is_listed_with_its_state_kind_instances_and_seconds() -> None:
    events = [
        _entered("TrainModel", 0),
        _scheduled(
            "createTrainingJob.sync",
            {"ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 2}},
            0,
        ),
        _ended("taskSucceededEventDetails", 9, json.dumps({"BillableTimeInSeconds": 300})),
        _entered("MonitorDrift", 10),
        _scheduled(
            "createProcessingJob.sync",
            {"ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 3}}},
            10,
        ),
        _ended(
            "taskSucceededEventDetails",
            15,
            json.dumps({"ProcessingStartTime": AT_MS, "ProcessingEndTime": AT_MS + 61_250}),
        ),
        _entered("Notify", 16),
        _scheduled("arn:aws:states:::lambda:invoke", {}, 16),
        _ended("taskSucceededEventDetails", 17, "{}"),
    ]

    jobs = console_api.run_jobs(events)

    assert jobs == [
        {
            "state": "TrainModel",
            "kind": "training",
            "instanceType": "ml.m5.xlarge",
            "instanceCount": 2,
            "seconds": 300.0,
            "startedAt": "2026-12-01T10:00:00+00:00",
        },
        {
            "state": "MonitorDrift",
            "kind": "processing",
            "instanceType": "ml.m5.large",
            "instanceCount": 3,
            "seconds": 61.2,
            "startedAt": "2026-12-01T10:10:00+00:00",
        },
    ]


@pytest.mark.parametrize("key", ["taskFailedEventDetails", "taskTimedOutEventDetails"])
def test_a_failed_or_timed_out_job_counts_from_its_start_to_its_end(key: str) -> None:
    events = [
        _scheduled("createTransformJob.sync", {"TransformResources": {"InstanceType": "ml.m5.large"}}, 0),
        _ended(key, 4, json.dumps({"TransformStartTime": AT_MS, "TransformEndTime": AT_MS + 1000})),
        _ended("taskSucceededEventDetails", 30, "{}"),
    ]

    jobs = console_api.run_jobs(events)

    assert jobs == [
        {
            "state": None,
            "kind": "batch_transform",
            "instanceType": "ml.m5.large",
            "instanceCount": 1,
            "seconds": 240.0,
            "startedAt": "2026-12-01T10:00:00+00:00",
        }
    ]


@pytest.mark.parametrize("output", [None, "not json", "{}", json.dumps({"TrainingStartTime": AT_MS})])
def test_a_succeeded_job_without_its_times_counts_from_its_scheduling(output: str | None) -> None:
    events = [_scheduled("createTrainingJob.sync", None, 0), _ended("taskSucceededEventDetails", 2, output)]

    jobs = console_api.run_jobs(events)

    assert [(j["seconds"], j["instanceType"], j["instanceCount"]) for j in jobs] == [(120.0, None, 1)]


def test_a_job_still_running_counts_to_the_last_event_seen() -> None:
    events = [
        _scheduled("createTrainingJob.sync", {}, 0),
        {"type": "Other", "timestamp": AT + timedelta(seconds=75, milliseconds=460)},
    ]

    assert console_api.run_jobs(events)[0]["seconds"] == 75.5
    assert console_api.run_jobs([]) == []


@pytest.mark.parametrize(
    ("output", "kind", "seconds"),
    [
        ({"BillableTimeInSeconds": 42, "TrainingStartTime": 0, "TrainingEndTime": 999_000}, "training", 42.0),
        ({"BillableTimeInSeconds": 0}, "training", 0.0),
        ({"TrainingStartTime": AT_MS, "TrainingEndTime": AT_MS + 2500}, "training", 2.5),
        (
            {"TransformStartTime": "2026-12-01T10:00:00Z", "TransformEndTime": "2026-12-01T10:00:30Z"},
            "batch_transform",
            30.0,
        ),
        ({"ProcessingStartTime": 10_000, "ProcessingEndTime": 4_000}, "processing", 0.0),
        ({"ProcessingStartTime": 10_000}, "processing", None),
        ({"ProcessingEndTime": 10_000}, "processing", None),
        ({"BillableTimeInSeconds": 5}, "processing", None),
    ],
)
def test_billable_seconds_come_from_the_describe_document(
    output: dict[str, Any], kind: str, seconds: float | None
) -> None:
    """BillableTimeInSeconds for training (zero is a value), else end minus start, never negative."""
    assert console_api._job_seconds(output, kind) == seconds


def test_a_timestamp_is_epoch_milliseconds_or_an_iso_string() -> None:
    assert console_api._epoch(1500) == 1.5
    assert console_api._epoch(2500.0) == 2.5
    assert console_api._epoch("1970-01-01T00:00:10Z") == 10.0
    assert console_api._epoch("1970-01-01T01:00:00+01:00") == 0.0


@pytest.mark.parametrize(
    ("parameters", "kind", "instances"),
    [
        ({"ResourceConfig": {"InstanceType": "t", "InstanceCount": 4}}, "training", ("t", 4)),
        ({"TransformResources": {"InstanceType": "b", "InstanceCount": 2}}, "batch_transform", ("b", 2)),
        (
            {"ProcessingResources": {"ClusterConfig": {"InstanceType": "p", "InstanceCount": 5}}},
            "processing",
            ("p", 5),
        ),
        ({"TransformResources": {"InstanceType": "b"}}, "training", (None, 1)),
        ({"ResourceConfig": {"InstanceType": "t"}}, "batch_transform", (None, 1)),
        ({"ResourceConfig": None}, "training", (None, 1)),
        ({"TransformResources": None}, "batch_transform", (None, 1)),
        ({"ProcessingResources": None}, "processing", (None, 1)),
        ({"ProcessingResources": {"ClusterConfig": None}}, "processing", (None, 1)),
        ({"ResourceConfig": {"InstanceType": "t", "InstanceCount": 0}}, "training", ("t", 1)),
    ],
)
def test_a_jobs_instances_come_from_its_kinds_resources(
    parameters: dict[str, Any], kind: str, instances: tuple[str | None, int]
) -> None:
    assert console_api._instances(parameters, kind) == instances


PRICES = {"sagemaker_per_instance_hour": {"training": {"ml.a": 3.6}, "processing": {"ml.a": 7.2}}}


def test_each_jobs_cost_is_seconds_times_instances_times_the_hourly_price() -> None:
    jobs = [
        {"kind": "training", "instanceType": "ml.a", "instanceCount": 2, "seconds": 10.0},
        {"kind": "processing", "instanceType": "ml.a", "instanceCount": 1, "seconds": 1.0},
    ]

    assert console_api.price_jobs(jobs, PRICES) == 0.022
    assert [job["cost"] for job in jobs] == [0.02, 0.002]


def test_one_unpriced_job_leaves_the_run_unpriced_but_the_others_priced() -> None:
    jobs = [
        {"kind": "training", "instanceType": "ml.b", "instanceCount": 1, "seconds": 10.0},
        {"kind": "training", "instanceType": "ml.a", "instanceCount": 1, "seconds": 10.0},
        {"kind": "batch_transform", "instanceType": "ml.a", "instanceCount": 1, "seconds": 10.0},
        {"kind": "training", "instanceType": "ml.a", "instanceCount": 1, "seconds": None},
    ]

    assert console_api.price_jobs(jobs, PRICES) is None
    assert [job["cost"] for job in jobs] == [None, 0.01, None, None]
    assert console_api.price_jobs([], PRICES) == 0.0


def _training_history(seconds: int, instance: str = "ml.m5.xlarge") -> dict[str, Any]:
    return {
        "events": [
            _scheduled("createTrainingJob.sync", {"ResourceConfig": {"InstanceType": instance}}, 0),
            _ended("taskSucceededEventDetails", 1, json.dumps({"BillableTimeInSeconds": seconds})),
        ]
    }


def test_the_cost_page_sums_this_months_runs_and_counts_the_unpriced_ones() -> None:
    """ml.m5.xlarge trains at 0.23 USD an hour: 3600 s is 0.23, 1800 s is 0.115 (the price file)."""

    class Sfn(_Sfn):
        def get_execution_history(self, **kwargs: Any) -> dict[str, Any]:
            self.calls.append(("get_execution_history", kwargs))
            return {
                "arn:a": _training_history(3600),
                "arn:b": _training_history(1800),
                "arn:c": _training_history(60, "ml.p5.48xlarge"),
                "arn:d": _training_history(3600),
            }[kwargs["executionArn"]]

    executions = [
        {
            "name": "a",
            "executionArn": "arn:a",
            "status": "SUCCEEDED",
            "startDate": datetime(2026, 12, 1, 0, 0, tzinfo=UTC),
        },
        {
            "name": "b",
            "executionArn": "arn:b",
            "status": "FAILED",
            "startDate": datetime(2026, 12, 20, tzinfo=UTC),
        },
        {
            "name": "c",
            "executionArn": "arn:c",
            "status": "SUCCEEDED",
            "startDate": datetime(2026, 12, 5, tzinfo=UTC),
        },
        {
            "name": "d",
            "executionArn": "arn:d",
            "status": "SUCCEEDED",
            "startDate": datetime(2026, 11, 30, 23, 59, tzinfo=UTC),
        },
    ]
    sfn = Sfn(executions)

    body = console_api.costs(
        settings=unit_settings(state_machine_arn="arn:sm"),
        sfn=sfn,
        now=datetime(2026, 12, 31, 23, tzinfo=UTC),
    )

    assert {k: v for k, v in body.items() if k != "runs"} == {
        "currency": "USD",
        "region": "us-east-1",
        "pricesAsOf": "2024-06",
        "caveat": console_api.load_prices()["caveat"],
        "month": "2026-12",
        "monthToDate": 0.345,
        "unpricedRunsThisMonth": 1,
    }
    assert [(r["executionName"], r["status"], r["startDate"], r["cost"]) for r in body["runs"]] == [
        ("b", "FAILED", "2026-12-20T00:00:00+00:00", 0.115),
        ("c", "SUCCEEDED", "2026-12-05T00:00:00+00:00", None),
        ("a", "SUCCEEDED", "2026-12-01T00:00:00+00:00", 0.23),
        ("d", "SUCCEEDED", "2026-11-30T23:59:00+00:00", 0.23),
    ]
    assert body["runs"][0]["jobs"][0]["seconds"] == 1800.0
    assert sfn.calls[0] == ("list_executions", {"stateMachineArn": "arn:sm", "maxResults": 100})


# ---- datasets, links ----------------------------------------------------------------------------


class _S3:
    """ListObjectsV2 pages by prefix, GetObject/HeadObject of fixed bodies, a recording paginator."""

    class exceptions:  # boto3's spelling
        ClientError = Exception

    def __init__(
        self, pages: dict[str, list[dict[str, Any]]] | None = None, bodies: dict[str, bytes] | None = None
    ):
        self.pages = pages or {}
        self.bodies = bodies or {}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def list_objects_v2(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("list_objects_v2", kwargs))
        pages = self.pages.get(kwargs["Prefix"], [{}])
        return pages[int(kwargs.get("ContinuationToken", 0))]

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("get_object", kwargs))
        return {"Body": io.BytesIO(self.bodies[kwargs["Key"]])}

    def head_object(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("head_object", kwargs))
        return {"ContentLength": len(self.bodies[kwargs["Key"]])}

    def get_paginator(self, name: str) -> Any:
        s3 = self

        class Paginator:
            def paginate(self, **kwargs: Any) -> list[dict[str, Any]]:
                s3.calls.append((f"paginate {name}", kwargs))
                return s3.pages.get(kwargs["Prefix"], [])

        return Paginator()


def _item(key: str, size: int = 5, minute: int | None = 0) -> dict[str, Any]:
    item: dict[str, Any] = {"Key": key, "Size": size}
    if minute is not None:
        item["LastModified"] = AT + timedelta(minutes=minute)
    return item


def test_the_dataset_list_follows_continuation_tokens_and_skips_folders() -> None:
    s3 = _S3(
        pages={
            "datasets/": [
                {
                    "Contents": [_item("datasets/"), _item("datasets/a.csv", 10, 1)],
                    "IsTruncated": True,
                    "NextContinuationToken": "1",
                },
                {"Contents": [_item("datasets/b.csv.gz", 20, 3)], "IsTruncated": False},
            ],
            "uploads/": [{"Contents": [_item("uploads/c.csv", 30, None), _item("uploads/d.csv", 40, 2)]}],
        }
    )

    body = console_api.list_datasets(settings=unit_settings(), s3=s3)

    assert body == {
        "datasets": [
            {
                "uri": "s3://bucket/datasets/b.csv.gz",
                "name": "b.csv.gz",
                "source": "datasets",
                "size": 20,
                "lastModified": "2026-12-01T10:03:00+00:00",
            },
            {
                "uri": "s3://bucket/uploads/d.csv",
                "name": "d.csv",
                "source": "uploads",
                "size": 40,
                "lastModified": "2026-12-01T10:02:00+00:00",
            },
            {
                "uri": "s3://bucket/datasets/a.csv",
                "name": "a.csv",
                "source": "datasets",
                "size": 10,
                "lastModified": "2026-12-01T10:01:00+00:00",
            },
            {
                "uri": "s3://bucket/uploads/c.csv",
                "name": "c.csv",
                "source": "uploads",
                "size": 30,
                "lastModified": None,
            },
        ]
    }
    assert [kwargs for _, kwargs in s3.calls] == [
        {"Bucket": "bucket", "Prefix": "datasets/"},
        {"Bucket": "bucket", "Prefix": "datasets/", "ContinuationToken": "1"},
        {"Bucket": "bucket", "Prefix": "uploads/"},
    ]


def test_the_dataset_list_stops_at_its_limit_across_pages() -> None:
    """A thousand rows is the form's cap: the pages after it are not read, the rows past it not kept."""
    s3 = _S3(
        pages={
            "p/": [
                {"Contents": [_item("p/a"), _item("p/b")], "IsTruncated": True, "NextContinuationToken": "1"},
                {"Contents": [_item("p/c"), _item("p/d")], "IsTruncated": True, "NextContinuationToken": "2"},
                {"Contents": [_item("p/e")]},
            ]
        }
    )

    rows = console_api._objects_under(s3, "bkt", "p/", "datasets", limit=3)

    assert [row["name"] for row in rows] == ["a", "b", "c"]
    assert len(s3.calls) == 2
    assert console_api._objects_under(s3, "bkt", "p/", "datasets", limit=2) == [
        {
            "uri": "s3://bkt/p/a",
            "name": "a",
            "source": "datasets",
            "size": 5,
            "lastModified": "2026-12-01T10:00:00+00:00",
        },
        {
            "uri": "s3://bkt/p/b",
            "name": "b",
            "source": "datasets",
            "size": 5,
            "lastModified": "2026-12-01T10:00:00+00:00",
        },
    ]
    assert len(s3.calls) == 3


class _Presigner:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def generate_presigned_url(self, operation: str, **kwargs: Any) -> str:
        self.calls.append((operation, kwargs))
        return "https://signed"


@pytest.mark.parametrize("key", ["runs/r1/report.md", "reports/m/v1/roc.png"])
def test_a_link_is_a_five_minute_presigned_get_of_one_object(key: str) -> None:
    presigner = _Presigner()

    body = console_api.artifact_link(f"s3://bucket/{key}", settings=unit_settings(), presigner=presigner)

    assert body == {"uri": f"s3://bucket/{key}", "url": "https://signed", "expiresInSeconds": 300}
    assert presigner.calls == [("get_object", {"Params": {"Bucket": "bucket", "Key": key}, "ExpiresIn": 300})]


REFUSED = (
    "only a run's artifacts (s3://bucket/runs/...) or a version's report (s3://bucket/reports/...) "
    "can be linked"
)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (None, "an s3:// URI of a run's artifact is required"),
        ("", "an s3:// URI of a run's artifact is required"),
        (
            "s3://other/runs/r1/x",
            REFUSED,
        ),
        (
            "s3://bucket/datasets/a.csv",
            REFUSED,
        ),
        (
            "s3://bucket/runs/../datasets/a.csv",
            REFUSED,
        ),
        ("s3://bucket/runs/r1/", "names a prefix; link one object"),
    ],
)
def test_a_link_outside_a_runs_or_reports_objects_is_refused_naming_uri(
    uri: str | None, message: str
) -> None:
    presigner = _Presigner()

    with pytest.raises(RequestErrors) as raised:
        console_api.artifact_link(uri, settings=unit_settings(), presigner=presigner)

    assert raised.value.errors == [{"field": "uri", "message": message}]
    assert presigner.calls == []


def test_a_link_to_a_malformed_uri_names_uri_with_the_parsers_reason() -> None:
    with pytest.raises(RequestErrors) as raised:
        console_api.artifact_link("http://bucket/runs/x", settings=unit_settings(), presigner=_Presigner())

    assert [e["field"] for e in raised.value.errors] == ["uri"]
    assert "s3://" in raised.value.errors[0]["message"]


def test_the_link_client_signs_for_the_local_endpoint_path_style(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("ARTIFACT_LINK_ENDPOINT", "http://localhost:4566")

    client = console_api.presigning_client()

    assert client.meta.endpoint_url == "http://localhost:4566"
    assert client.meta.config.signature_version == "s3v4"
    assert client.meta.config.s3 == {"addressing_style": "path"}
    monkeypatch.setenv("ARTIFACT_LINK_ENDPOINT", "")
    aws = console_api.presigning_client()
    assert aws.meta.config.s3 == {"addressing_style": "virtual"}
    assert aws.meta.endpoint_url == "https://s3.amazonaws.com"


# ---- a version's report -------------------------------------------------------------------------


def test_a_published_report_is_its_plots_as_data_uris_its_markdown_and_its_metrics() -> None:
    prefix = "reports/m/v2/"
    s3 = _S3(
        pages={
            prefix: [
                {
                    "Contents": [
                        _item(prefix + "roc.png", 3),
                        _item(prefix + "a.png", 2),
                        _item(prefix + "report.md", 6),
                    ]
                },
                {
                    "Contents": [
                        _item(prefix + "model_card.md", 4),
                        _item(prefix + "data.json", 2),
                        _item(prefix + "big.png", 20 * 1024 * 1024 + 1),
                    ]
                },
            ]
        },
        bodies={
            prefix + "roc.png": b"ROC",
            prefix + "a.png": b"A",
            prefix + "report.md": "# Réport".encode(),
            prefix + "model_card.md": b"card",
            "runs/r/output/model.tar.gz": report_archive(
                {"sub/metrics.json": b'{"roc_auc": 0.7}', "x.json": b"{}"}
            ),
        },
    )
    version = {"artifactUri": "s3://bucket/runs/r/output/model.tar.gz", "reportUri": f"s3://bucket/{prefix}"}

    body = console_api.model_report(version, s3=s3)

    assert body == {
        "plots": [
            {"name": "a.png", "dataUri": "data:image/png;base64,QQ=="},
            {"name": "roc.png", "dataUri": "data:image/png;base64,Uk9D"},
        ],
        "markdown": "# Réport",
        "modelCard": "card",
        "metrics": {"roc_auc": 0.7},
        "reportUri": f"s3://bucket/{prefix}",
        "reportProblem": None,
    }
    assert (
        "paginate list_objects_v2",
        {"Bucket": "bucket", "Prefix": prefix, "PaginationConfig": {"MaxItems": 1000}},
    ) in s3.calls


def test_a_report_of_exactly_the_size_limit_is_read() -> None:
    prefix = "reports/m/v1/"
    s3 = _S3(
        pages={prefix: [{"Contents": [_item(prefix + "r.md", 20 * 1024 * 1024)]}]},
        bodies={prefix + "r.md": b"x"},
    )

    assert console_api._published_report(s3, console_api.S3Uri("bucket", prefix)) == {"r.md": b"x"}


def test_an_unpublished_report_is_read_from_the_training_archive() -> None:
    s3 = _S3(
        bodies={
            "runs/r/output/output.tar.gz": report_archive({"report.md": b"old", "roc.png": b"P"}),
            "runs/r/output/model.tar.gz": report_archive({"other.txt": b"x"}),
        }
    )

    body = console_api.model_report({"artifactUri": "s3://bucket/runs/r/output/model.tar.gz"}, s3=s3)

    assert body == {
        "plots": [{"name": "roc.png", "dataUri": "data:image/png;base64,UA=="}],
        "markdown": "old",
        "modelCard": None,
        "metrics": None,
        "reportUri": None,
        "reportProblem": None,
    }


def test_an_unsafe_training_archive_is_the_reports_problem_in_words() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("../escape.md")
        info.size = 1
        archive.addfile(info, io.BytesIO(b"x"))
    s3 = _S3(
        bodies={
            "runs/r/output/output.tar.gz": buffer.getvalue(),
            "runs/r/output/model.tar.gz": report_archive({}),
        }
    )

    body = console_api.model_report({"artifactUri": "s3://bucket/runs/r/output/model.tar.gz"}, s3=s3)

    assert body["plots"] == []
    assert body["markdown"] is None
    assert body["reportProblem"] == (
        "the training output s3://bucket/runs/r/output/output.tar.gz holds the member '../escape.md', "
        "which is refused because its path climbs out of the report with '..'; nothing was published."
    )


def test_a_version_without_an_artifact_has_an_empty_report() -> None:
    assert console_api.model_report({}, s3=_S3()) == {
        "plots": [],
        "markdown": None,
        "modelCard": None,
        "metrics": None,
        "reportUri": None,
        "reportProblem": None,
    }


class _SizedS3(_S3):
    """HeadObject answers a stated size, whatever the body is (the size limits without a big body)."""

    def __init__(self, size: int, bodies: dict[str, bytes]):
        super().__init__(bodies=bodies)
        self.size = size

    def head_object(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("head_object", kwargs))
        return {"ContentLength": self.size}


@pytest.mark.parametrize(("size", "read"), [(20 * 1024 * 1024, True), (20 * 1024 * 1024 + 1, False)])
def test_a_training_archive_over_the_report_limit_is_not_read(size: int, read: bool) -> None:
    key = "runs/r/output/output.tar.gz"
    s3 = _SizedS3(size, {key: report_archive({"report.md": b"r"})})

    report = console_api._archived_report(s3, console_api.S3Uri("bucket", key))

    assert report == ({"report.md": b"r"} if read else {})
    assert (("get_object", {"Bucket": "bucket", "Key": key}) in s3.calls) is read


@pytest.mark.parametrize(("size", "read"), [(50 * 1024 * 1024, True), (50 * 1024 * 1024 + 1, False)])
def test_a_model_archive_over_the_metrics_limit_is_not_read(size: int, read: bool) -> None:
    key = "runs/r/output/model.tar.gz"
    s3 = _SizedS3(size, {key: report_archive({"metrics.json": b"[1]"})})

    assert console_api._metrics_file(s3, console_api.S3Uri("bucket", key)) == ([1] if read else None)


class _MissingS3(_S3):
    """Every read answers NoSuchKey (404) as botocore raises it."""

    def __init__(self) -> None:
        super().__init__()
        from botocore.exceptions import ClientError

        self.error = ClientError({"Error": {"Code": "NoSuchKey", "Message": "gone"}}, "GetObject")
        self.exceptions = type("E", (), {"ClientError": ClientError})

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        raise self.error

    def head_object(self, **kwargs: Any) -> dict[str, Any]:
        raise self.error


def test_missing_report_objects_read_as_nothing() -> None:
    s3 = _MissingS3()
    uri = console_api.S3Uri("bucket", "runs/r/drift/")

    assert console_api._read_json_object(s3, uri) is None
    assert console_api._head(s3, uri) is None
    assert console_api._archived_report(s3, uri) == {}
    assert console_api._metrics_file(s3, uri) is None
    assert console_api.drift_report({"drift_uri": "s3://bucket/runs/r/drift/"}, s3=s3) is None


@pytest.mark.parametrize(
    ("drift_uri", "key"),
    [
        ("s3://bucket/runs/r/drift/", "runs/r/drift/drift_report.json"),
        ("s3://bucket/runs/r/drift", "runs/r/drift/drift_report.json"),
        ("s3://bucket/runs/r/drift/custom.json", "runs/r/drift/custom.json"),
    ],
)
def test_the_drift_report_is_read_from_the_runs_drift_prefix(drift_uri: str, key: str) -> None:
    s3 = _S3(bodies={key: b'{"psi": {"age": 0.1}}'})

    assert console_api.drift_report({"drift_uri": drift_uri}, s3=s3) == {
        "driftUri": drift_uri,
        "report": {"psi": {"age": 0.1}},
    }
    assert s3.calls == [("get_object", {"Bucket": "bucket", "Key": key})]


@pytest.mark.parametrize("run", [None, {}, {"drift_uri": ""}])
def test_a_run_without_a_drift_uri_has_no_drift_report(run: dict[str, Any] | None) -> None:
    s3 = _S3()

    assert console_api.drift_report(run, s3=s3) is None
    assert s3.calls == []


# ---- upload form --------------------------------------------------------------------------------


class _PostPresigner:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def generate_presigned_post(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"url": "https://post", "fields": {"key": kwargs["Key"]}}


NOW = datetime(2026, 12, 1, 9, 8, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("purpose", "name", "key", "content_type"),
    [
        ("dataset", "a.csv", "uploads/20261201-090807-a.csv", "text/csv"),
        ("score", "b.csv.gz", "scoring/20261201-090807-b.csv.gz", "application/gzip"),
    ],
)
def test_an_upload_form_fixes_the_key_the_type_and_the_size_range(
    purpose: str, name: str, key: str, content_type: str
) -> None:
    presigner = _PostPresigner()

    body = console_api.upload_form(
        {"purpose": purpose, "fileName": name, "size": 1000},
        settings=unit_settings(),
        presigner=presigner,
        now=NOW,
    )

    assert body == {
        "uri": f"s3://bucket/{key}",
        "url": "https://post",
        "fields": {"key": key},
        "expiresInSeconds": 300,
        "startsRun": False,
    }
    assert presigner.calls == [
        {
            "Bucket": "bucket",
            "Key": key,
            "Fields": {"Content-Type": content_type},
            "Conditions": [{"Content-Type": content_type}, ["content-length-range", 1, 1000]],
            "ExpiresIn": 300,
        }
    ]


@pytest.mark.parametrize("size", [None, 1, 1000])
def test_an_upload_size_from_one_byte_to_the_limit_is_accepted(size: int | None) -> None:
    body = console_api.upload_form(
        {"purpose": "dataset", "fileName": "a.csv", "size": size},
        settings=unit_settings(),
        presigner=_PostPresigner(),
        now=NOW,
    )

    assert body["startsRun"] is False


def test_a_bad_upload_request_names_each_field_with_its_message() -> None:
    presigner = _PostPresigner()

    with pytest.raises(RequestErrors) as raised:
        console_api.upload_form(
            {"purpose": "train", "fileName": "a b.csv", "size": 1001, "zz": 1, "extra": 2},
            settings=unit_settings(),
            presigner=presigner,
        )

    assert raised.value.errors == [
        {"field": "purpose", "message": "must be one of dataset, score"},
        {
            "field": "fileName",
            "message": "must be a .csv or .csv.gz file name of letters, digits, '.', '_' or '-'",
        },
        {"field": "size", "message": "must be 1 to 1000 bytes"},
        {"field": "extra", "message": "is not a field of an upload request"},
        {"field": "zz", "message": "is not a field of an upload request"},
    ]
    assert presigner.calls == []


@pytest.mark.parametrize("size", [0, True, 1.5, "10"])
def test_an_upload_size_that_is_not_a_positive_whole_number_is_refused(size: Any) -> None:
    with pytest.raises(RequestErrors) as raised:
        console_api.upload_form(
            {"purpose": "dataset", "fileName": "a.csv", "size": size},
            settings=unit_settings(),
            presigner=_PostPresigner(),
        )

    assert raised.value.errors == [{"field": "size", "message": "must be 1 to 1000 bytes"}]


@pytest.mark.parametrize("name", ["a" * 151 + ".csv", "a" * 152 + ".csv"])
def test_an_upload_name_is_at_most_151_characters_before_its_extension(name: str) -> None:
    def call() -> Any:
        return console_api.upload_form(
            {"purpose": "dataset", "fileName": name},
            settings=unit_settings(),
            presigner=_PostPresigner(),
            now=NOW,
        )

    if len(name) == 155:
        assert call()["uri"].endswith(name)
    else:
        with pytest.raises(RequestErrors):
            call()


# ---- the third pass's open survivors ---------------------------------------------------------------


def test_a_history_without_a_sagemaker_job_has_no_jobs() -> None:
    events = [
        _entered("PrepareRun", 0),
        _scheduled("arn:aws:states:::lambda:invoke", {}, 0),
        _ended("taskSucceededEventDetails", 1, "{}"),
        _ended("taskFailedEventDetails", 2),
    ]

    assert console_api.run_jobs(events) == []


def test_a_running_job_counts_to_the_last_of_several_later_events() -> None:
    events = [
        _scheduled("createTrainingJob.sync", {}, 0),
        {"type": "TaskStarted", "timestamp": AT + timedelta(minutes=1)},
        {"type": "TaskSubmitted", "timestamp": AT + timedelta(minutes=2)},
        {"type": "Other", "timestamp": AT + timedelta(minutes=5)},
    ]

    assert console_api.run_jobs(events)[0]["seconds"] == 300.0


def _month_of_runs(*starts: datetime, instance: str = "ml.p5.48xlarge") -> tuple[Any, list[dict[str, Any]]]:
    """One training run per start (an unpriced instance type unless told), and the fake that lists them."""

    class Sfn(_Sfn):
        def get_execution_history(self, **kwargs: Any) -> dict[str, Any]:
            self.calls.append(("get_execution_history", kwargs))
            return _training_history(3600, instance)

    executions = [
        {"name": f"r{i}", "executionArn": f"arn:r{i}", "status": "SUCCEEDED", "startDate": start}
        for i, start in enumerate(starts)
    ]
    return Sfn(executions), executions


def test_every_unpriced_run_of_the_month_is_counted() -> None:
    sfn, _ = _month_of_runs(datetime(2026, 12, 2, tzinfo=UTC), datetime(2026, 12, 3, tzinfo=UTC))

    body = console_api.costs(settings=unit_settings(), sfn=sfn, now=datetime(2026, 12, 4, tzinfo=UTC))

    assert (body["monthToDate"], body["unpricedRunsThisMonth"]) == (0.0, 2)
    assert [r["cost"] for r in body["runs"]] == [None, None]


def test_runs_of_another_month_than_now_count_for_nothing() -> None:
    """The month is now's (UTC): December's runs seen in January are listed with their cost, summed 0."""
    sfn, _ = _month_of_runs(
        datetime(2026, 12, 31, 23, 30, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC), instance="ml.m5.xlarge"
    )

    body = console_api.costs(settings=unit_settings(), sfn=sfn, now=datetime(2027, 1, 1, 0, 10, tzinfo=UTC))

    assert (body["month"], body["monthToDate"], body["unpricedRunsThisMonth"]) == ("2027-01", 0.0, 0)
    assert [r["cost"] for r in body["runs"]] == [0.23, 0.23]


def test_a_cost_is_rounded_to_a_millionth_of_a_dollar() -> None:
    """One second of ml.m5.xlarge training is 0.23 / 3600 = 0.0000638... USD: 0.000064."""
    jobs = [{"kind": "training", "instanceType": "ml.m5.xlarge", "instanceCount": 1, "seconds": 1.0}]

    total = console_api.price_jobs(jobs, console_api.load_prices())

    assert (jobs[0]["cost"], total) == (0.000064, 0.000064)


def test_a_listing_page_without_contents_adds_no_row() -> None:
    s3 = _S3(
        pages={"p/": [{"IsTruncated": True, "NextContinuationToken": "1"}, {"Contents": [_item("p/a")]}]}
    )

    assert [row["name"] for row in console_api._objects_under(s3, "bkt", "p/", "datasets", limit=5)] == ["a"]


def test_the_thousand_row_cap_spans_the_datasets_and_the_uploads() -> None:
    """999 datasets leave room for one upload: the uploads listing is asked for one row, keeps one."""
    datasets = [_item(f"datasets/{i:04}.csv") for i in range(999)]
    uploads = [_item("uploads/a.csv", minute=1), _item("uploads/b.csv", minute=2)]
    s3 = _S3(pages={"datasets/": [{"Contents": datasets}], "uploads/": [{"Contents": uploads}]})

    rows = console_api.list_datasets(settings=unit_settings(), s3=s3)["datasets"]

    assert len(rows) == 1000
    assert [(r["source"], r["name"]) for r in rows if r["source"] == "uploads"] == [("uploads", "a.csv")]


def test_a_report_that_is_not_utf8_is_shown_with_replacement_characters() -> None:
    prefix = "reports/m/v3/"
    s3 = _S3(
        pages={prefix: [{"Contents": [_item(prefix + "report.md", 4)]}]},
        bodies={prefix + "report.md": b"R\xe9p\xff", "runs/r/output/model.tar.gz": report_archive({})},
    )
    version = {"artifactUri": "s3://bucket/runs/r/output/model.tar.gz", "reportUri": f"s3://bucket/{prefix}"}

    assert console_api.model_report(version, s3=s3)["markdown"] == "R\ufffdp\ufffd"


def test_a_published_reports_listing_page_without_contents_is_skipped() -> None:
    """S3 leaves `Contents` out of a page with no keys (an empty prefix, or a last page)."""
    prefix = "reports/m/v4/"
    s3 = _S3(
        pages={prefix: [{}, {"Contents": [_item(prefix + "report.md", 2)]}, {}]},
        bodies={prefix + "report.md": b"ok"},
    )

    assert console_api._published_report(s3, console_api.parse_s3_uri(f"s3://bucket/{prefix}")) == {
        "report.md": b"ok"
    }

"""The real ASL, the real handlers and the real training code on the local runtime: the paths that
tests/e2e does not take (validation failing before any job; a throttled job renamed and retried).

A small slice of the bundled dataset keeps each SageMaker job to seconds. Each test uses its own model
name, so the registry state one path leaves (a champion, a claimed key) cannot steer another.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from emulator.progress import Progress
from emulator.runtime import LocalRuntime

ROOT = Path(__file__).resolve().parents[2]
DATASET = ROOT / "data" / "diabetic_data.csv.gz"
ROWS = 4000


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "encounters_small.csv"
    with gzip.open(DATASET, "rt", newline="") as source:
        path.write_text("".join(next(source) for _ in range(ROWS + 1)), newline="")
    return path


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    # Back-off between SageMaker job attempts: 30 s then 120 s on AWS, the minimum (1 s) here: the
    # jobs' Retry sleeps for real.
    with LocalRuntime(
        ROOT,
        tmp_path_factory.mktemp("state"),
        retry_wait_scale=0.0,  # the ASL's 30 s / 120 s back-off, without the wait
        progress=Progress(verbose_jobs=False),
    ) as rt:
        yield rt


def entered(record: dict[str, Any]) -> list[str]:
    return [
        e["stateEnteredEventDetails"]["name"] for e in record["events"] if "stateEnteredEventDetails" in e
    ]


def training_jobs(record: dict[str, Any]) -> list[tuple[str, str | None]]:
    """(TrainingJobName sent, the error that attempt failed with or None) for each CreateTrainingJob
    the TrainModel state scheduled, in order: a Retry stays in the state, the history shows each try."""
    attempts: list[tuple[str, str | None]] = []
    for event in record["events"]:
        scheduled = event.get("taskScheduledEventDetails")
        if scheduled and str(scheduled.get("resource", "")).startswith("createTrainingJob"):
            attempts.append((json.loads(scheduled["parameters"])["TrainingJobName"], None))
        failed = event.get("taskFailedEventDetails")
        if failed and attempts and str(failed.get("resource", "")).startswith("createTrainingJob"):
            attempts[-1] = (attempts[-1][0], failed["error"])
    return attempts


def registry_items(runtime: LocalRuntime) -> list[dict[str, Any]]:
    from boto3.dynamodb.types import TypeDeserializer

    de = TypeDeserializer()
    items = boto3.client("dynamodb", region_name="us-east-1").scan(TableName=runtime.stack.table.name)[
        "Items"
    ]
    return [{k: de.deserialize(v) for k, v in item.items()} for item in items]


def version_item(runtime: LocalRuntime, model: str, version: int) -> dict[str, Any]:
    [item] = [
        i
        for i in registry_items(runtime)
        if i["pk"] == f"MODEL#{model}" and i["sk"] == f"VERSION#{version:06d}"
    ]
    return item


def run_item(runtime: LocalRuntime, run_id: str) -> dict[str, Any]:
    [item] = [i for i in registry_items(runtime) if i["pk"] == f"RUN#{run_id}"]
    return item


def test_an_invalid_dataset_fails_at_validation_before_any_job(runtime: LocalRuntime, tmp_path: Path) -> None:
    header_only = tmp_path / "header_only.csv"
    with gzip.open(DATASET, "rt", newline="") as source:
        header_only.write_text(next(source), newline="")
    uri = runtime.put_file(header_only, runtime.datasets_prefix)

    record = runtime.run({"datasetUri": uri, "modelName": "invalid-path"})

    assert record["status"] == "FAILED"
    assert record["error"] == "InvalidDataset"
    assert "has 0 data rows" in record["cause"]
    assert "TrainModel" not in entered(record)
    assert entered(record)[-4:] == ["ValidateDataset", "RecordFailure", "NotifyFailure", "RunFailed"]
    assert run_item(runtime, record["name"])["stage"] == "ValidateDataset"


def state_output(record: dict[str, Any], state: str) -> Any:
    [output] = [
        e["stateExitedEventDetails"]["output"]
        for e in record["events"]
        if e.get("stateExitedEventDetails", {}).get("name") == state
    ]
    return json.loads(output)


@pytest.mark.parametrize(
    "execution_input", [["a"], "a string", 3, None], ids=["array", "string", "number", "null"]
)
def test_an_input_that_is_not_an_object_is_refused_recorded_and_notified(
    runtime: LocalRuntime, execution_input: Any
) -> None:
    record = runtime.run(execution_input)

    assert record["status"] == "FAILED"
    assert (record["error"], record["cause"]) == ("InvalidInput", "the execution input must be a JSON object")
    assert entered(record) == ["ReceiveInput", "PrepareRun", "RecordFailure", "NotifyFailure", "RunFailed"]
    assert "notifyError" not in state_output(record, "NotifyFailure")
    run = run_item(runtime, record["name"])
    assert (run["status"], run["stage"], run["error"]) == ("FAILED", "PrepareRun", "InvalidInput")


def test_the_readme_console_example_trains_on_the_local_runtime(
    runtime: LocalRuntime, tmp_path: Path
) -> None:
    command = "python -m emulator start --input events/console_execution_input.json"
    assert command in (ROOT / "README.md").read_text()
    sample = json.loads((ROOT / "events" / "console_execution_input.json").read_text())
    # `make demo` leaves datasets/diabetic_data.csv.gz in the bucket; a slice under that name keeps it short
    upload = tmp_path / "diabetic_data.csv.gz"
    with gzip.open(DATASET, "rt", newline="") as source, gzip.open(upload, "wt", newline="") as target:
        target.write("".join(next(source) for _ in range(ROWS + 1)))
    assert runtime.put_file(upload, runtime.datasets_prefix) == sample["datasetUri"]

    record = runtime.run(sample)

    assert record["status"] == "SUCCEEDED", record["cause"]
    assert entered(record)[-3:] == ["RecordOutcome", "Notify", "RunSucceeded"]
    assert run_item(runtime, record["name"])["model_name"] == sample["modelName"]


def test_throttled_training_gets_a_new_name_then_the_duplicate_is_ignored(
    runtime: LocalRuntime, small_dataset: Path
) -> None:
    uri = runtime.put_file(small_dataset, runtime.datasets_prefix)
    runtime.faults.sagemaker_throttle("CreateTrainingJob", times=1)
    request = {
        "datasetUri": uri,
        "modelName": "happy-path",
        "algorithm": "LogisticRegression",
        "idempotencyKey": "happy-1",
    }

    record = runtime.run(request)

    assert record["status"] == "SUCCEEDED", record["cause"]
    states = entered(record)
    assert states.count("TrainModel") == 1  # the Retry stays in the state
    [(first, throttled), (second, passed)] = training_jobs(record)
    assert (first[-2:], throttled) == ("-1", "SageMaker.AmazonSageMakerException")
    assert (second, passed) == (first[:-2] + "-2", None)  # a new name for the new attempt
    assert states[-3:] == ["RecordOutcome", "Notify", "RunSucceeded"]
    version = version_item(runtime, "happy-path", 1)
    assert version["training_job"] == second
    assert (version["status"], version["run_status"]) == ("APPROVED", "SUCCEEDED")
    run = run_item(runtime, record["name"])
    assert run["status"] == "SUCCEEDED" and run["predictions_uri"].endswith("encounters_small.csv.out")
    before = registry_items(runtime)

    duplicate = runtime.run(request)

    assert duplicate["status"] == "SUCCEEDED"
    assert entered(duplicate) == ["ReceiveInput", "PrepareRun", "DuplicateIgnored"]
    assert registry_items(runtime) == before


QUOTA = (
    "ResourceLimitExceeded",
    "The account-level service limit 'ml.m5.large for training job usage' is 1 Instances, with current "
    "utilization of 1 Instances and a request delta of 1 Instances.",
)


def test_an_instance_quota_is_retried_under_a_new_name_while_it_frees_up(
    runtime: LocalRuntime, small_dataset: Path
) -> None:
    uri = runtime.put_file(small_dataset, runtime.datasets_prefix)
    runtime.faults.sagemaker_error("CreateTrainingJob", *QUOTA, times=1)

    record = runtime.run({"datasetUri": uri, "modelName": "quota-frees", "algorithm": "LogisticRegression"})

    assert record["status"] == "SUCCEEDED", record["cause"]
    errors = [e["taskFailedEventDetails"]["error"] for e in record["events"] if e["type"] == "TaskFailed"]
    assert errors == ["SageMaker.ResourceLimitExceededException"]  # the name AWS reports, retried
    assert [error for _, error in training_jobs(record)] == ["SageMaker.ResourceLimitExceededException", None]
    assert version_item(runtime, "quota-frees", 1)["training_job"].endswith("-2")


def test_an_instance_quota_that_never_frees_up_ends_recorded_and_notified(
    runtime: LocalRuntime, small_dataset: Path
) -> None:
    uri = runtime.put_file(small_dataset, runtime.datasets_prefix)
    runtime.faults.sagemaker_error("CreateTrainingJob", *QUOTA, times=10)

    record = runtime.run({"datasetUri": uri, "modelName": "quota-stuck", "algorithm": "LogisticRegression"})
    runtime.faults.clear()

    assert record["status"] == "FAILED"
    attempts = training_jobs(record)  # bounded: three attempts, then the failure path
    assert [name[-2:] for name, _ in attempts] == ["-1", "-2", "-3"]
    assert {error for _, error in attempts} == {"SageMaker.ResourceLimitExceededException"}
    assert entered(record)[-4:] == ["TrainModel", "RecordFailure", "NotifyFailure", "RunFailed"]
    run = run_item(runtime, record["name"])
    assert run["status"] == "FAILED" and run["stage"] == "TrainModel"
    assert "ResourceLimitExceeded" in run["cause"]

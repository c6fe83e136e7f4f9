"""PrepareRun: both input shapes, location checks, idempotency, snapshot, job names, champion."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

import prepare_run
from errors import DuplicateRun, InvalidDataset, InvalidInput
from registry import Registry
from tests.functions.helpers import BUCKET, DATASET, Aws, dataset_head, load_event

JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


def s3_event_for(
    aws: Aws, key: str = "datasets/diabetic_data.csv.gz", body: bytes | None = None
) -> dict[str, Any]:
    """events/prepare_run_s3_event.json, pointing at an object really uploaded to the mock bucket."""
    put = aws.put(key, DATASET.read_bytes() if body is None else body)
    event = load_event("prepare_run_s3_event.json")
    event["input"]["detail"]["object"].update(
        {"key": key, "etag": put["ETag"].strip('"'), "version-id": put["VersionId"]}
    )
    return event


def with_execution(event: dict[str, Any], name: str) -> dict[str, Any]:
    event = copy.deepcopy(event)
    event["execution"]["name"] = name
    event["execution"]["id"] = f"arn:aws:states:us-east-1:123456789012:execution:readmission-pipeline:{name}"
    return event


def test_s3_event_becomes_a_run_with_a_snapshot_of_the_uploaded_version(aws: Aws) -> None:
    event = s3_event_for(aws)

    result = prepare_run.handler(event, None)

    run = result["run"]
    assert run["runId"] == event["execution"]["name"]
    assert run["datasetUri"] == f"s3://{BUCKET}/datasets/diabetic_data.csv.gz"
    assert run["snapshotUri"] == f"s3://{BUCKET}/runs/{run['runId']}/input/diabetic_data.csv.gz"
    snapshot = aws.s3.get_object(Bucket=BUCKET, Key=f"runs/{run['runId']}/input/diabetic_data.csv.gz")
    assert snapshot["Body"].read() == DATASET.read_bytes()
    assert run["scoreUri"] == run["snapshotUri"]
    assert run["scoreCompressionType"] == "Gzip"
    assert run["transformInstanceCount"] == 1
    assert run["modelName"] == "medication-adherence-model"
    assert run["algorithm"] == "HistGradientBoosting"
    assert run["champion"] is None
    assert [c["ChannelName"] for c in run["inputDataConfig"]] == ["training"]
    assert set(result) == {"run"}
    item = Registry("readmission-registry", aws.dynamodb).get_run(run["runId"])
    assert item is not None and item["status"] == "RUNNING"


def test_snapshot_keeps_the_uploaded_version_when_the_object_is_overwritten_later(aws: Aws) -> None:
    event = s3_event_for(aws, "datasets/small.csv", b"first version\n")
    aws.put("datasets/small.csv", b"second version\n")

    run = prepare_run.handler(event, None)["run"]

    body = aws.s3.get_object(Bucket=BUCKET, Key=f"runs/{run['runId']}/input/small.csv")["Body"].read()
    assert body == b"first version\n"


def test_hyperparameters_follow_the_script_mode_contract(aws: Aws) -> None:
    event = load_event("prepare_run_console_input.json")
    aws.put("datasets/diabetic_data.csv.gz", DATASET.read_bytes())

    run = prepare_run.handler(event, None)["run"]

    hp = run["hyperparameters"]
    assert hp["sagemaker_program"] == '"train.py"'
    assert hp["sagemaker_submit_directory"] == f'"s3://{BUCKET}/code/sourcedir.tar.gz"'
    assert hp["sagemaker_region"] == '"us-east-1"'
    assert hp["algorithm"] == "HistGradientBoosting"
    assert hp["seed"] == "42" and hp["max_iter"] == "200" and hp["target"] == "readmitted_30d"
    assert all(isinstance(v, str) for v in hp.values())
    assert run["trainingInstanceType"] == "ml.m5.large"
    assert run["limits"]["maxTrainingSeconds"] == 3600
    assert run["limits"]["trainingTimeoutSeconds"] > run["limits"]["maxTrainingSeconds"]


def test_job_names_are_valid_prefixed_distinct_per_run_and_fit_with_an_attempt_suffix(aws: Aws) -> None:
    event = load_event("prepare_run_console_input.json")
    event["input"]["modelName"] = "M" * 63
    aws.put("datasets/diabetic_data.csv.gz", DATASET.read_bytes())

    first = prepare_run.handler(with_execution(event, "run-one"), None)["run"]["jobs"]
    event["input"]["idempotencyKey"] = "another"
    second = prepare_run.handler(with_execution(event, "run-two"), None)["run"]["jobs"]

    for jobs in (first, second):
        for name in jobs.values():
            assert name.startswith("readmission-")
            assert JOB_NAME.match(f"{name}-999")
            assert len(f"{name}-999") - len("readmission-") <= 50
    assert len(set(first.values()) | set(second.values())) == 8


def test_a_second_delivery_of_the_same_event_is_a_duplicate_and_touches_nothing(aws: Aws) -> None:
    event = s3_event_for(aws)
    first = prepare_run.handler(with_execution(event, "first-delivery"), None)["run"]
    before = aws.table_items()

    with pytest.raises(DuplicateRun, match="first-delivery"):
        prepare_run.handler(with_execution(event, "second-delivery"), None)

    assert aws.table_items() == before
    keys = [o["Key"] for o in aws.s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/")["Contents"]]
    assert keys == [f"runs/{first['runId']}/input/diabetic_data.csv.gz"]


def test_the_same_body_on_the_console_twice_is_a_duplicate_but_other_parameters_are_not(aws: Aws) -> None:
    aws.put("datasets/diabetic_data.csv.gz", DATASET.read_bytes())
    event = load_event("prepare_run_console_input.json")
    prepare_run.handler(with_execution(event, "console-1"), None)

    with pytest.raises(DuplicateRun):
        prepare_run.handler(with_execution(event, "console-2"), None)
    event["input"]["algorithm"] = "RandomForest"
    assert prepare_run.handler(with_execution(event, "console-3"), None)["run"]["algorithm"] == "RandomForest"


def test_a_key_whose_run_failed_can_be_claimed_again(aws: Aws) -> None:
    aws.put("datasets/diabetic_data.csv.gz", DATASET.read_bytes())
    event = load_event("prepare_run_console_input.json")
    event["input"]["idempotencyKey"] = "retry-me"
    prepare_run.handler(with_execution(event, "attempt-1"), None)
    registry = Registry("readmission-registry", aws.dynamodb)
    registry.record_run_failed("attempt-1", execution_arn="arn", stage="TrainModel", error="X", cause="y")

    run = prepare_run.handler(with_execution(event, "attempt-2"), None)["run"]

    assert run["idempotencyKey"] == "client:retry-me"
    assert registry.get_idempotency_claim("client:retry-me")["run_id"] == "attempt-2"


@pytest.mark.parametrize(
    ("dataset_uri", "message"),
    [
        ("s3://someone-elses-bucket/datasets/x.csv", "outside the project's bucket"),
        (f"s3://{BUCKET}/runs/other/input/x.csv", "is not under"),
        (f"s3://{BUCKET}/datasets/x.parquet", "datasetUri: must match"),  # the schema's .csv(.gz) pattern
        ("https://example.com/x.csv", "datasetUri"),
    ],
)
def test_datasets_outside_the_datasets_prefix_are_invalid_input(
    aws: Aws, dataset_uri: str, message: str
) -> None:
    event = load_event("prepare_run_console_input.json")
    event["input"]["datasetUri"] = dataset_uri

    with pytest.raises(InvalidInput, match=message):
        prepare_run.handler(event, None)

    assert aws.table_items() == []


def test_a_missing_dataset_object_is_invalid_input_and_records_nothing(aws: Aws) -> None:
    event = load_event("prepare_run_console_input.json")

    with pytest.raises(InvalidInput, match="does not exist"):
        prepare_run.handler(event, None)

    assert aws.table_items() == []


def test_an_oversized_dataset_is_rejected_before_it_is_copied(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    import settings

    monkeypatch.setenv("MAX_DATASET_BYTES", "1000")
    settings.load_settings.cache_clear()
    event = s3_event_for(aws)

    with pytest.raises(InvalidDataset, match="limit is 1000"):
        prepare_run.handler(event, None)

    assert "Contents" not in aws.s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/")


def test_unknown_fields_and_algorithms_are_rejected_with_the_field_named(aws: Aws) -> None:
    event = load_event("prepare_run_console_input.json")
    event["input"]["algorithm"] = "XGBoost"
    event["input"]["learningRate"] = 0.1

    with pytest.raises(InvalidInput) as caught:
        prepare_run.handler(event, None)

    assert "algorithm" in str(caught.value) and "learningRate: unknown field" in str(caught.value)


def test_a_console_hyperparameter_outside_its_range_is_invalid_input_naming_it(aws: Aws) -> None:
    event = load_event("prepare_run_console_input.json")
    event["input"]["hyperparameters"] = {"max_iter": -5, "validation_fraction": 0.99, "seed": float("nan")}

    with pytest.raises(InvalidInput) as caught:
        prepare_run.handler(event, None)

    message = str(caught.value)
    assert "hyperparameters.max_iter: must be an integer within [1, 1000]" in message
    assert "hyperparameters.validation_fraction: must be a number within [0.05, 0.5]" in message
    assert "hyperparameters.seed: must be a finite number" in message
    assert "Contents" not in aws.s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/")


def test_other_events_are_rejected(aws: Aws) -> None:
    event = load_event("prepare_run_s3_event.json")
    event["input"]["detail-type"] = "Object Deleted"

    with pytest.raises(InvalidInput, match="Object Deleted"):
        prepare_run.handler(event, None)


def test_the_champion_is_looked_up_and_passed_as_a_training_channel(aws: Aws) -> None:
    registry = Registry("readmission-registry", aws.dynamodb)
    aws.put("datasets/diabetic_data.csv.gz", DATASET.read_bytes())
    event = load_event("prepare_run_console_input.json")
    registry.start_run(
        run_id="old",
        execution_arn="a",
        model_name="medication-adherence-model",
        idempotency_key="k",
        dataset_uri="d",
    )
    registry.register_version(
        run_id="old",
        model_name="medication-adherence-model",
        approved=True,
        compared_champion_version=None,
        metrics={"model": {"roc_auc": 0.66}},
        artifact_uri=f"s3://{BUCKET}/runs/old/model/job/output/model.tar.gz",
        training_job="job",
        dataset_uri="d",
        algorithm="RandomForest",
        decision_reasons=[],
    )
    registry.promote("medication-adherence-model", 1, expected_champion=None, reason="its run succeeded")

    run = prepare_run.handler(event, None)["run"]

    assert run["champion"]["version"] == 1
    assert run["champion"]["artifactUri"].endswith("runs/old/model/job/output/model.tar.gz")
    channels = {c["ChannelName"]: c for c in run["inputDataConfig"]}
    assert channels["champion"]["DataSource"]["S3DataSource"]["S3Uri"] == run["champion"]["artifactUri"]


def test_a_score_file_under_scoring_is_used_for_batch_transform(aws: Aws) -> None:
    aws.put("datasets/diabetic_data.csv.gz", DATASET.read_bytes())
    event = load_event("prepare_run_console_input.json")
    event["input"]["scoreUri"] = f"s3://{BUCKET}/scoring/new_encounters.csv"

    run = prepare_run.handler(event, None)["run"]

    assert run["scoreUri"] == f"s3://{BUCKET}/scoring/new_encounters.csv"
    assert run["scoreCompressionType"] == "None"


def test_a_prefix_of_parts_under_scoring_is_accepted_as_the_score_input(aws: Aws) -> None:
    aws.put("datasets/diabetic_data.csv.gz", DATASET.read_bytes())
    event = load_event("prepare_run_console_input.json")
    event["input"]["scoreUri"] = f"s3://{BUCKET}/scoring/encounters/parts/"

    run = prepare_run.handler(event, None)["run"]

    assert run["scoreUri"] == f"s3://{BUCKET}/scoring/encounters/parts/"


@pytest.mark.parametrize(
    "uri",
    [f"s3://{BUCKET}/scoring/", f"s3://{BUCKET}/scoring/encounters.txt", f"s3://{BUCKET}/runs/x/parts/"],
)
def test_a_score_uri_neither_a_csv_nor_a_folder_of_parts_under_scoring_is_invalid_input(
    aws: Aws, uri: str
) -> None:
    aws.put("datasets/diabetic_data.csv.gz", DATASET.read_bytes())
    event = load_event("prepare_run_console_input.json")
    event["input"]["scoreUri"] = uri

    with pytest.raises(InvalidInput, match="scoreUri"):
        prepare_run.handler(event, None)


def test_the_transform_instance_count_is_taken_from_the_input(aws: Aws) -> None:
    aws.put("datasets/diabetic_data.csv.gz", DATASET.read_bytes())
    event = load_event("prepare_run_console_input.json")
    event["input"]["transformInstanceCount"] = 3

    assert prepare_run.handler(event, None)["run"]["transformInstanceCount"] == 3


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "must be an integer within [1, 100]"),
        (101, "must be an integer within [1, 100]"),
        ("2", "must be an integer within [1, 100]"),
        (2.5, "must be an integer within [1, 100]"),
    ],
)
def test_a_transform_instance_count_outside_1_to_100_or_not_an_integer_is_refused_naming_it(
    aws: Aws, value: Any, message: str
) -> None:
    aws.put("datasets/diabetic_data.csv.gz", DATASET.read_bytes())
    event = load_event("prepare_run_console_input.json")
    event["input"]["transformInstanceCount"] = value

    with pytest.raises(InvalidInput) as caught:
        prepare_run.handler(event, None)

    assert f"transformInstanceCount: {message}" in str(caught.value)
    assert "Contents" not in aws.s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/")


def test_a_claim_left_running_by_a_dead_execution_expires(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    import registry as registry_module

    aws.put("datasets/diabetic_data.csv.gz", DATASET.read_bytes())
    event = load_event("prepare_run_console_input.json")
    event["input"]["idempotencyKey"] = "stopped-run"
    prepare_run.handler(with_execution(event, "stopped"), None)  # then stopped: never reaches RecordFailure
    with pytest.raises(DuplicateRun):
        prepare_run.handler(with_execution(event, "too-early"), None)
    bound = prepare_run.longest_run_seconds(3600, 3600, [30, 120])
    real_time = registry_module.time.time
    monkeypatch.setattr(registry_module.time, "time", lambda: real_time() + bound + 1)

    run = prepare_run.handler(with_execution(event, "after-expiry"), None)["run"]

    assert (
        Registry("readmission-registry", aws.dynamodb).get_idempotency_claim(run["idempotencyKey"])["run_id"]
        == "after-expiry"
    )


def upload_multipart(aws: Aws, key: str, body: bytes) -> dict[str, Any]:
    """As `aws s3 cp` uploads a file over 8 MiB: in parts, with a composite CRC32."""
    import io

    from boto3.s3.transfer import TransferConfig

    aws.s3.upload_fileobj(io.BytesIO(body), BUCKET, key, Config=TransferConfig(multipart_threshold=8 * MiB))
    return aws.s3.head_object(Bucket=BUCKET, Key=key)


MiB = 1024 * 1024


@pytest.fixture
def local_s3() -> Any:
    """moto with the local runtime's S3 seam (copies and their limits as S3 has them)."""
    from emulator import s3 as seam

    seam.install()
    yield seam
    seam.uninstall()


def test_a_multipart_upload_is_snapshotted_readable(aws: Aws, local_s3: Any) -> None:
    body = dataset_head(60_000)  # about 11 MB of the real CSV: two parts
    head = upload_multipart(aws, "datasets/diabetic_data.csv", body)
    event = s3_event_for_object(aws, "datasets/diabetic_data.csv", head)

    run = prepare_run.handler(event, None)["run"]

    snapshot = aws.s3.get_object(
        Bucket=BUCKET, Key=f"runs/{run['runId']}/input/diabetic_data.csv", ChecksumMode="ENABLED"
    )
    assert snapshot["Body"].read() == body  # botocore checked the copy's full-object CRC32


def test_a_dataset_over_the_single_copy_limit_is_snapshotted_by_multipart_copy(
    aws: Aws, local_s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 10 MiB stands for CopyObject's 5 GiB: the local S3 refuses a larger CopyObject, as S3 does
    monkeypatch.setattr(local_s3, "COPY_OBJECT_MAX_BYTES", 10 * MiB)
    monkeypatch.setattr(prepare_run, "COPY_OBJECT_MAX_BYTES", 10 * MiB)
    monkeypatch.setattr(prepare_run, "COPY_PART_BYTES", 5 * MiB)
    body = dataset_head(60_000)
    assert len(body) > 10 * MiB
    head = upload_multipart(aws, "datasets/diabetic_data.csv", body)
    event = s3_event_for_object(aws, "datasets/diabetic_data.csv", head)

    run = prepare_run.handler(event, None)["run"]

    snapshot = aws.s3.get_object(Bucket=BUCKET, Key=f"runs/{run['runId']}/input/diabetic_data.csv")
    assert snapshot["Body"].read() == body


def test_without_multipart_copy_the_local_s3_refuses_what_s3_refuses(
    aws: Aws, local_s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_s3, "COPY_OBJECT_MAX_BYTES", 10 * MiB)
    monkeypatch.setattr(prepare_run, "COPY_OBJECT_MAX_BYTES", 5 * 1024**3)  # a Lambda that forgot the limit
    head = upload_multipart(aws, "datasets/diabetic_data.csv", dataset_head(60_000))
    event = s3_event_for_object(aws, "datasets/diabetic_data.csv", head)

    with pytest.raises(aws.s3.exceptions.ClientError, match="InvalidRequest"):
        prepare_run.handler(event, None)


def s3_event_for_object(aws: Aws, key: str, head: dict[str, Any]) -> dict[str, Any]:
    event = load_event("prepare_run_s3_event.json")
    event["input"]["detail"]["object"].update(
        {
            "key": key,
            "etag": head["ETag"].strip('"'),
            "version-id": head["VersionId"],
            "size": head["ContentLength"],
        }
    )
    return event

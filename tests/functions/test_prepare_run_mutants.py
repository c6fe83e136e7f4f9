"""PrepareRun's pieces at their edges, without an account: limits, claims' lifetime, copies, the run.

Written for the mutation run (docs/mutation.md): the handler tests go through moto with the default
limits and a small dataset, so a changed timeout margin, a claim that expires too early, a snapshot
copied without its precondition or a multipart copy with the wrong part size passed them.
"""

from __future__ import annotations

from typing import Any

import pytest

import prepare_run
from errors import InvalidDataset, InvalidInput
from registry import Champion
from run_input import DatasetObject, TrainingRequest
from s3uri import S3Uri
from tests.functions.helpers import unit_settings

SETTINGS = unit_settings()
DATASET = S3Uri("bucket", "datasets/diabetic.csv.gz")


@pytest.mark.parametrize(("raw", "value"), [(1, 1), ("900", 900), (3600, 3600)])
def test_a_limit_is_a_positive_whole_number_of_seconds(raw: Any, value: int) -> None:
    assert prepare_run._positive_int("maxTrainingSeconds", raw) == value


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (0, "maxTrainingSeconds must be positive"),
        (-5, "maxTrainingSeconds must be positive"),
        ("1.5", "maxTrainingSeconds='1.5' is not a whole number of seconds (check the template)"),
        ("", "maxTrainingSeconds='' is not a whole number of seconds (check the template)"),
    ],
)
def test_a_limit_that_is_not_a_positive_whole_number_is_invalid_input(raw: Any, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        prepare_run._positive_int("maxTrainingSeconds", raw)
    assert str(caught.value) == message


def test_the_limits_put_each_state_timeout_ten_minutes_above_sagemakers_own() -> None:
    limits = prepare_run._limits({"maxTrainingSeconds": "1800", "maxTransformSeconds": 900})

    assert limits == {
        "maxTrainingSeconds": 1800,
        "trainingTimeoutSeconds": 2400,
        "maxTransformSeconds": 900,
        "transformTimeoutSeconds": 1500,
        "maxJobAttempts": 3,
    }


def test_the_limits_default_to_an_hour_per_job() -> None:
    limits = prepare_run._limits({})

    assert (limits["maxTrainingSeconds"], limits["maxTransformSeconds"]) == (3600, 3600)
    assert (limits["trainingTimeoutSeconds"], limits["transformTimeoutSeconds"]) == (4200, 4200)


def test_the_retry_waits_are_30_then_120_seconds() -> None:
    assert prepare_run.retry_delays() == [30.0, 120.0]


def test_a_claim_outlives_every_attempt_timing_out_and_every_back_off() -> None:
    # three attempts of (training + margin) and of three transform-sized jobs (EnrichHistory,
    # BatchTransform, MonitorDrift; + margins), three times the back-offs, and an hour for the Lambda steps
    assert prepare_run.longest_run_seconds(1000, 100, [30.0, 120.0]) == (
        3 * ((1000 + 600) + 3 * (100 + 600)) + 3 * 150 + 3600
    )
    assert prepare_run.longest_run_seconds(3600, 3600, prepare_run.retry_delays()) == 54450


def test_the_script_mode_hyperparameters_are_json_quoted_and_the_requests_override_the_defaults() -> None:
    request = TrainingRequest(datasetUri=str(DATASET), hyperparameters={"seed": 7, "max_iter": 200})

    params = prepare_run.sagemaker_hyperparameters(request, "LogisticRegression", SETTINGS, "eu-west-1")

    assert params == {
        "sagemaker_program": '"train.py"',
        "sagemaker_submit_directory": '"s3://bucket/code/sourcedir.tar.gz"',
        "sagemaker_region": '"eu-west-1"',
        "algorithm": "LogisticRegression",
        "target": "readmitted_30d",
        "seed": "7",
        "validation_fraction": "0.2",
        "max_iter": "200",
    }


def test_the_training_channel_alone_without_a_champion_and_both_with_one() -> None:
    training = {
        "ChannelName": "training",
        "ContentType": "text/csv",
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": "s3://bucket/runs/r/input/",
                "S3DataDistributionType": "FullyReplicated",
            }
        },
    }
    champion = {
        "ChannelName": "champion",
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": "s3://bucket/runs/r0/model.tar.gz",
                "S3DataDistributionType": "FullyReplicated",
            }
        },
    }

    assert prepare_run.input_data_config("s3://bucket/runs/r/input/", None) == [training]
    assert prepare_run.input_data_config("s3://bucket/runs/r/input/", "s3://bucket/runs/r0/model.tar.gz") == [
        training,
        champion,
    ]


def test_the_request_names_the_training_type_and_the_stacks_defaults_the_others() -> None:
    request = TrainingRequest(datasetUri=str(DATASET), instanceType="ml.m5.xlarge")
    defaults = {"trainingInstanceType": "ml.c5.large", "transformInstanceType": "ml.c5.xlarge"}

    assert prepare_run.instance_types(request, defaults) == {
        "trainingInstanceType": "ml.m5.xlarge",
        "transformInstanceType": "ml.c5.xlarge",
        "processingInstanceType": "ml.m5.large",
    }
    assert prepare_run.instance_types(TrainingRequest(datasetUri=str(DATASET)), {}) == {
        "trainingInstanceType": "ml.m5.large",
        "transformInstanceType": "ml.m5.large",
        "processingInstanceType": "ml.m5.large",
    }


def test_a_bad_stack_default_is_refused_naming_the_template_parameter() -> None:
    request = TrainingRequest(datasetUri=str(DATASET))

    with pytest.raises(InvalidInput, match=r"^the stack's TransformInstanceType parameter: "):
        prepare_run.instance_types(request, {"transformInstanceType": "ml.nope.large"})


def test_an_input_that_is_not_an_object_or_another_event_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"^the execution input must be a JSON object$"):
        prepare_run.read_request(["datasetUri"], SETTINGS)
    event = {"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification", "detail": {}}
    with pytest.raises(InvalidInput) as caught:
        prepare_run.read_request(event, SETTINGS)
    assert str(caught.value) == (
        "unsupported event aws.ec2/EC2 Instance State-change Notification: "
        "only S3 'Object Created' events start a run"
    )


def test_a_score_file_outside_the_project_is_refused_when_the_request_is_read() -> None:
    body = {"datasetUri": str(DATASET), "scoreUri": "s3://other-bucket/scoring/a.csv"}

    with pytest.raises(InvalidInput, match="scoreUri"):
        prepare_run.read_request(body, SETTINGS)


class Objects:
    """An S3 client with one HeadObject answer; records HeadObject and CopyObject arguments."""

    class exceptions:  # the boto3 client attribute it stands in for
        class ClientError(Exception):
            def __init__(self, code: str) -> None:
                super().__init__(code)
                self.response = {"Error": {"Code": code}}

    def __init__(self, head: dict[str, Any] | None = None, copy_error: str | None = None) -> None:
        self.head = head or {}
        self.copy_error = copy_error
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def head_object(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("head_object", kwargs))
        return self.head

    def copy_object(self, **kwargs: Any) -> None:
        self.calls.append(("copy_object", kwargs))
        if self.copy_error:
            raise self.exceptions.ClientError(self.copy_error)

    def copy(self, source: Any, bucket: str, key: str, ExtraArgs: Any, Config: Any) -> None:
        self.calls.append(
            ("copy", {"source": source, "to": (bucket, key), "ExtraArgs": ExtraArgs, "Config": Config})
        )


def test_describing_a_dataset_asks_for_its_version_and_keeps_etag_version_and_size() -> None:
    s3 = Objects({"ContentLength": 1000, "ETag": '"abc"', "VersionId": "v-head"})

    described = prepare_run.describe_dataset(s3, DatasetObject(uri=DATASET, version_id="v-event"), SETTINGS)

    assert s3.calls == [
        ("head_object", {"Bucket": "bucket", "Key": "datasets/diabetic.csv.gz", "VersionId": "v-event"})
    ]
    assert described == DatasetObject(uri=DATASET, etag='"abc"', version_id="v-event", size=1000)


def test_describing_a_dataset_without_a_version_takes_s3s() -> None:
    s3 = Objects({"ContentLength": "10", "ETag": '"abc"', "VersionId": "v-head"})

    described = prepare_run.describe_dataset(s3, DatasetObject(uri=DATASET), SETTINGS)

    assert s3.calls == [("head_object", {"Bucket": "bucket", "Key": "datasets/diabetic.csv.gz"})]
    assert (described.version_id, described.size) == ("v-head", 10)


def test_a_dataset_one_byte_over_the_limit_is_an_invalid_dataset_naming_both_sizes() -> None:
    s3 = Objects({"ContentLength": 1001, "ETag": '"abc"'})

    with pytest.raises(InvalidDataset) as caught:
        prepare_run.describe_dataset(s3, DatasetObject(uri=DATASET), SETTINGS)
    assert str(caught.value) == (
        "dataset s3://bucket/datasets/diabetic.csv.gz is 1001 bytes; the limit is 1000 (MAX_DATASET_BYTES)"
    )


TARGET = S3Uri("bucket", "runs/r/input/diabetic.csv.gz")


@pytest.mark.parametrize(
    ("dataset", "source", "extra"),
    [
        # a version is exact: copy that version
        (
            DatasetObject(uri=DATASET, etag='"e"', version_id="v1", size=5),
            {"Bucket": "bucket", "Key": "datasets/diabetic.csv.gz", "VersionId": "v1"},
            {},
        ),
        # the "null" version of an unversioned upload names nothing: the ETag must still match
        (
            DatasetObject(uri=DATASET, etag='"e"', version_id="null", size=5),
            {"Bucket": "bucket", "Key": "datasets/diabetic.csv.gz"},
            {"CopySourceIfMatch": '"e"'},
        ),
        (
            DatasetObject(uri=DATASET, etag='"e"', size=5),
            {"Bucket": "bucket", "Key": "datasets/diabetic.csv.gz"},
            {"CopySourceIfMatch": '"e"'},
        ),
        (DatasetObject(uri=DATASET), {"Bucket": "bucket", "Key": "datasets/diabetic.csv.gz"}, {}),
    ],
)
def test_the_snapshot_copies_exactly_the_content_the_key_names(
    dataset: DatasetObject, source: dict[str, str], extra: dict[str, str]
) -> None:
    s3 = Objects()

    prepare_run.snapshot_dataset(s3, dataset, TARGET)

    assert s3.calls == [
        (
            "copy_object",
            {"CopySource": source, "Bucket": "bucket", "Key": "runs/r/input/diabetic.csv.gz", **extra},
        )
    ]


def test_a_dataset_replaced_during_the_start_is_invalid_input() -> None:
    s3 = Objects(copy_error="PreconditionFailed")

    with pytest.raises(InvalidInput) as caught:
        prepare_run.snapshot_dataset(s3, DatasetObject(uri=DATASET, etag='"e"'), TARGET)
    assert str(caught.value) == (
        "dataset s3://bucket/datasets/diabetic.csv.gz was replaced while the run started; start it again"
    )


def test_any_other_copy_error_is_raised_as_it_came() -> None:
    s3 = Objects(copy_error="AccessDenied")

    with pytest.raises(Objects.exceptions.ClientError, match="AccessDenied"):
        prepare_run.snapshot_dataset(s3, DatasetObject(uri=DATASET, etag='"e"'), TARGET)


def test_exactly_five_gib_is_one_copy_and_one_byte_more_a_multipart_copy() -> None:
    limit = prepare_run.COPY_OBJECT_MAX_BYTES
    one = Objects()
    prepare_run.snapshot_dataset(one, DatasetObject(uri=DATASET, etag='"e"', size=limit), TARGET)
    more = Objects()
    prepare_run.snapshot_dataset(more, DatasetObject(uri=DATASET, etag='"e"', size=limit + 1), TARGET)

    assert [name for name, _ in one.calls] == ["copy_object"]
    [(name, call)] = more.calls
    assert name == "copy"
    assert call["source"] == {"Bucket": "bucket", "Key": "datasets/diabetic.csv.gz"}
    assert call["to"] == ("bucket", "runs/r/input/diabetic.csv.gz")
    assert call["ExtraArgs"] == {"CopySourceIfMatch": '"e"'}
    config = call["Config"]
    assert (config.multipart_threshold, config.multipart_chunksize) == (limit, 512 * 1024**2)
    assert config.use_threads is False


def test_a_multipart_copy_of_a_huge_object_stays_within_10000_parts() -> None:
    s3 = Objects()
    size = 10_000 * 1024**3 + 1  # just over 10,000 GiB: 512 MiB parts would be 20,000

    prepare_run._multipart_copy(s3, {"Bucket": "bucket", "Key": "k"}, TARGET, {}, size)

    [(_, call)] = s3.calls
    part = call["Config"].multipart_chunksize
    assert type(part) is int and part == 1024**3 + 1  # rounded up: 10,000 parts hold the last byte
    assert call["ExtraArgs"] is None


def test_the_key_is_the_callers_or_is_derived_from_the_content() -> None:
    with_key = TrainingRequest(datasetUri=str(DATASET), idempotencyKey="my-key")
    derived = TrainingRequest(datasetUri=str(DATASET))
    by_version = DatasetObject(uri=DATASET, etag='"e"', version_id="v1")
    by_etag = DatasetObject(uri=DATASET, etag='"e"')

    assert prepare_run._idempotency_key(with_key, by_version, SETTINGS).endswith("my-key")
    assert prepare_run._idempotency_key(derived, by_version, SETTINGS) != prepare_run._idempotency_key(
        derived, by_etag, SETTINGS
    )
    assert prepare_run._idempotency_key(derived, by_etag, SETTINGS) != prepare_run._idempotency_key(
        derived, DatasetObject(uri=DATASET), SETTINGS
    )


def test_the_run_description_names_every_location_under_the_runs_prefix() -> None:
    request = TrainingRequest(datasetUri=str(DATASET), scoreUri="s3://bucket/scoring/enc.csv")
    dataset = DatasetObject(uri=DATASET, etag='"e"', version_id="v1", size=5)
    champion = Champion(2, "s3://bucket/runs/r0/model.tar.gz", {})
    execution = {"id": "arn:aws:states:us-east-1:1:execution:m:r-1", "startTime": "2026-12-02T06:00:00Z"}

    run = prepare_run._describe_run(
        "r-1", execution, {"region": "eu-west-1"}, request, dataset, TARGET, "key", champion, "m", SETTINGS
    )

    assert run["runId"] == "r-1"
    assert run["executionArn"] == "arn:aws:states:us-east-1:1:execution:m:r-1"
    assert (run["modelName"], run["algorithm"]) == ("m", "HistGradientBoosting")
    assert run["datasetUri"] == "s3://bucket/datasets/diabetic.csv.gz"
    assert run["datasetContentId"] == "v1"
    assert run["snapshotUri"] == "s3://bucket/runs/r/input/diabetic.csv.gz"
    assert (run["scoreUri"], run["scoreCompressionType"]) == ("s3://bucket/scoring/enc.csv", "None")
    assert run["transformInstanceCount"] == 1
    assert run["hyperparameters"]["sagemaker_region"] == '"eu-west-1"'
    assert run["idempotencyKey"] == "key"
    assert sorted(run["jobs"]) == ["drift", "model", "train", "xform"]
    assert all(name.startswith("readmission-m-") for name in run["jobs"].values())
    assert run["champion"] == {"version": 2, "artifactUri": "s3://bucket/runs/r0/model.tar.gz", "metrics": {}}
    assert [c["ChannelName"] for c in run["inputDataConfig"]] == ["training", "champion"]
    assert run["inputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == "s3://bucket/runs/r-1/input/"
    assert run["modelOutputUri"] == "s3://bucket/runs/r-1/model"
    assert run["predictionsOutputUri"] == "s3://bucket/runs/r-1/predictions"
    assert run["driftOutputUri"] == "s3://bucket/runs/r-1/drift"


def test_without_a_score_file_the_snapshot_is_scored_gzip_by_its_name() -> None:
    request = TrainingRequest(
        datasetUri=str(DATASET), algorithm="LogisticRegression", transformInstanceCount=3
    )

    run = prepare_run._describe_run(
        "r-1", {}, {}, request, DatasetObject(uri=DATASET, etag='"e"'), TARGET, "key", None, "m", SETTINGS
    )

    assert (run["scoreUri"], run["scoreCompressionType"]) == (str(TARGET), "Gzip")
    assert run["algorithm"] == "LogisticRegression"
    assert run["transformInstanceCount"] == 3
    assert run["datasetContentId"] == '"e"'
    assert run["champion"] is None
    assert run["executionArn"] == ""
    assert [c["ChannelName"] for c in run["inputDataConfig"]] == ["training"]


@pytest.mark.parametrize("name", ["maxTrainingSeconds", "maxTransformSeconds"])
def test_a_bad_limit_is_named_by_its_template_key(name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        prepare_run._limits({name: 0})
    assert str(caught.value) == f"{name} must be positive"


def test_a_payload_without_the_execution_name_is_refused_before_anything_is_read() -> None:
    with pytest.raises(InvalidInput) as caught:
        prepare_run.prepare_run(
            {"execution": {"id": "arn"}, "input": {}},
            settings=SETTINGS,
            s3=None,
            registry=None,  # type: ignore[arg-type]
        )
    assert str(caught.value) == "PrepareRun needs execution.name (pass $$.Execution.Name)"


def test_a_derived_key_depends_on_where_the_dataset_is_not_only_its_content() -> None:
    request = TrainingRequest(datasetUri=str(DATASET))
    here = DatasetObject(uri=DATASET, etag='"e"')
    elsewhere = DatasetObject(uri=S3Uri("bucket", "datasets/copy/diabetic.csv.gz"), etag='"e"')

    assert prepare_run._idempotency_key(request, here, SETTINGS) != prepare_run._idempotency_key(
        request, elsewhere, SETTINGS
    )


def test_the_execution_start_time_makes_the_job_names_and_no_region_is_an_empty_one() -> None:
    request = TrainingRequest(datasetUri=str(DATASET))
    dataset = DatasetObject(uri=DATASET, etag='"e"')

    def jobs(execution: dict[str, Any]) -> dict[str, str]:
        run = prepare_run._describe_run(
            "r-1", execution, {}, request, dataset, TARGET, "key", None, "m", SETTINGS
        )
        assert run["hyperparameters"]["sagemaker_region"] == '""'
        return run["jobs"]

    assert jobs({"startTime": "2026-12-02T06:00:00Z"}) != jobs({"startTime": "2026-12-02T07:00:00Z"})
    assert jobs({}) == jobs({"startTime": ""})


class Claims:
    """The registry calls of PrepareRun, recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def claim_idempotency_key(self, key: str, run_id: str, execution_arn: str, **kwargs: Any) -> None:
        self.calls.append(("claim", (run_id, execution_arn, kwargs)))

    def start_run(self, **fields: Any) -> None:
        self.calls.append(("start_run", fields))

    def get_champion(self, model_name: str) -> None:
        self.calls.append(("get_champion", model_name))


def test_the_claim_and_the_run_record_carry_the_execution_and_the_model() -> None:
    registry = Claims()
    arn = "arn:aws:states:us-east-1:1:execution:pipe:r-1"
    payload = {"execution": {"name": "r-1", "id": arn}, "input": {"datasetUri": str(DATASET)}}

    result = prepare_run.prepare_run(
        payload,
        settings=SETTINGS,
        s3=Objects({"ContentLength": 10, "ETag": '"e"'}),
        registry=registry,  # type: ignore[arg-type]
    )

    key = result["run"]["idempotencyKey"]
    assert registry.calls == [
        ("claim", ("r-1", arn, {"running_for_at_most": 54450})),
        (
            "start_run",
            {
                "run_id": "r-1",
                "execution_arn": arn,
                "model_name": "default-model",
                "idempotency_key": key,
                "dataset_uri": str(DATASET),
            },
        ),
        ("get_champion", "default-model"),
    ]
    assert result["run"]["executionArn"] == arn

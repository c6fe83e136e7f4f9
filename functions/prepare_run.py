"""PrepareRun: turn any accepted execution input into the run description the workflow reads.

Order matters for "a failed or duplicate run loses nothing": everything that can reject the input is
checked before the idempotency claim; the claim precedes any write; the dataset is then copied into the
run's own prefix so later changes to the upload cannot change what this run trains on.
"""

from __future__ import annotations

import json
from typing import Any

import aws_clients
from errors import DuplicateRun, InvalidDataset, InvalidInput
from observability import Logger, Metrics, MetricUnit, instrument
from registry import Registry
from run_input import (
    DatasetObject,
    TrainingRequest,
    check_dataset_location,
    check_score_location,
    client_idempotency_key,
    dataset_from_event,
    derived_idempotency_key,
    instance_type_problem,
    is_s3_object_created_event,
    job_name,
    parameters_digest,
    parse_training_request,
)
from s3uri import S3Uri, is_missing_object, parse_s3_uri
from settings import Settings, load_settings

logger = Logger()
metrics = Metrics()

# The batch transform's InstanceCount when the input names none (the schema's default).
DEFAULT_TRANSFORM_INSTANCE_COUNT = 1
DEFAULT_HYPERPARAMETERS = {"target": "readmitted_30d", "seed": "42", "validation_fraction": "0.2"}
# Attempts per SageMaker job: the jobs' Retry in the ASL says MaxAttempts 2 (retries), i.e. 3 in all.
MAX_JOB_ATTEMPTS = 3
# ... and its Retry waits IntervalSeconds, then BackoffRate times longer (30 s, then 120 s). The ASL
# holds them as JSON numbers: CloudFormation substitutes DefinitionSubstitutions only inside strings
# of a definition file. tests/statemachine keeps these equal to the ASL's.
JOB_RETRY_INTERVAL_SECONDS = 30
JOB_RETRY_BACKOFF_RATE = 4.0
# One CopyObject copies at most 5 GiB; a larger snapshot is a multipart copy (UploadPartCopy ranges).
COPY_OBJECT_MAX_BYTES = 5 * 1024**3
# Part size of that multipart copy: S3 allows 10,000 parts of at most 5 GiB each.
COPY_PART_BYTES = 512 * 1024**2
# Margin between SageMaker's own MaxRuntimeInSeconds and the state's TimeoutSeconds: SageMaker stops the
# job first and reports why; the state timeout is only the backstop.
TIMEOUT_MARGIN_SECONDS = 600


def _positive_int(name: str, raw: Any) -> int:
    try:
        value = int(str(raw))
    except ValueError:
        raise InvalidInput(f"{name}={raw!r} is not a whole number of seconds (check the template)") from None
    if value <= 0:
        raise InvalidInput(f"{name} must be positive")
    return value


# The template parameter behind each instance-type default the ASL passes (PrepareRun's `defaults`).
INSTANCE_TYPE_DEFAULTS = {
    "training": ("trainingInstanceType", "TrainingInstanceType"),
    "transform": ("transformInstanceType", "TransformInstanceType"),
    "processing": ("processingInstanceType", "ProcessingInstanceType"),
}
FALLBACK_INSTANCE_TYPE = "ml.m5.large"


def instance_types(request: TrainingRequest, defaults: dict[str, Any]) -> dict[str, str]:
    """The run's instance type per job kind, each one SageMaker accepts for that kind.

    The request's `instanceType` was checked with the body; the stack's defaults are checked here, so
    a mistyped template parameter fails a run at its first step, not at the job after training.
    """
    chosen = {}
    for kind, (key, parameter) in INSTANCE_TYPE_DEFAULTS.items():
        value = defaults.get(key) or FALLBACK_INSTANCE_TYPE
        if kind == "training" and request.instanceType:
            value = request.instanceType
        else:
            problem = instance_type_problem(value, kind)
            if problem:
                raise InvalidInput(f"the stack's {parameter} parameter: {problem}")
        chosen[key] = value
    return chosen


def read_request(execution_input: Any, settings: Settings) -> tuple[TrainingRequest, DatasetObject]:
    """Either input shape -> the validated request and the dataset object it names."""
    if not isinstance(execution_input, dict):
        raise InvalidInput("the execution input must be a JSON object")
    if is_s3_object_created_event(execution_input):
        dataset = dataset_from_event(execution_input)
        request = TrainingRequest(datasetUri=str(dataset.uri))
    elif "source" in execution_input and "detail" in execution_input:
        raise InvalidInput(
            f"unsupported event {execution_input.get('source')}/{execution_input.get('detail-type')}: "
            "only S3 'Object Created' events start a run"
        )
    else:
        request = parse_training_request(execution_input)
        dataset = DatasetObject(uri=parse_s3_uri(request.datasetUri))
    check_dataset_location(dataset.uri, settings)
    if request.scoreUri:
        check_score_location(parse_s3_uri(request.scoreUri), settings)
    return request, dataset


def describe_dataset(s3: Any, dataset: DatasetObject, settings: Settings) -> DatasetObject:
    """Fill in ETag/size from S3 (the event may carry them already); a missing object is bad input."""
    kwargs: dict[str, Any] = {"Bucket": dataset.uri.bucket, "Key": dataset.uri.key}
    if dataset.version_id:
        kwargs["VersionId"] = dataset.version_id
    try:
        head = s3.head_object(**kwargs)
    except s3.exceptions.ClientError as exc:
        if is_missing_object(exc):
            raise InvalidInput(f"dataset {dataset.uri} does not exist") from None
        raise
    size = int(head["ContentLength"])
    if size > settings.max_dataset_bytes:
        raise InvalidDataset(
            f"dataset {dataset.uri} is {size} bytes; "
            f"the limit is {settings.max_dataset_bytes} (MAX_DATASET_BYTES)"
        )
    return DatasetObject(
        uri=dataset.uri, etag=head["ETag"], version_id=dataset.version_id or head.get("VersionId"), size=size
    )


def snapshot_dataset(s3: Any, dataset: DatasetObject, target: S3Uri) -> None:
    """Copy exactly the content the idempotency key names into the run's input prefix."""
    source: dict[str, str] = {"Bucket": dataset.uri.bucket, "Key": dataset.uri.key}
    extra: dict[str, str] = {}
    if dataset.version_id and dataset.version_id != "null":
        source["VersionId"] = dataset.version_id
    elif dataset.etag:
        extra["CopySourceIfMatch"] = dataset.etag
    try:
        if dataset.size is not None and dataset.size > COPY_OBJECT_MAX_BYTES:
            _multipart_copy(s3, source, target, extra, dataset.size)
        else:
            s3.copy_object(CopySource=source, Bucket=target.bucket, Key=target.key, **extra)
    except s3.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "PreconditionFailed":
            raise InvalidInput(
                f"dataset {dataset.uri} was replaced while the run started; start it again"
            ) from None
        raise


def _multipart_copy(s3: Any, source: dict[str, str], target: S3Uri, extra: dict[str, str], size: int) -> None:
    """Copy an object over CopyObject's 5 GiB limit as S3 requires: UploadPartCopy ranges, in this
    thread (the transfer manager's thread pool buys nothing for server-side copies of a few parts)."""
    from boto3.s3.transfer import TransferConfig

    part = max(COPY_PART_BYTES, -(-size // 10_000))
    config = TransferConfig(
        multipart_threshold=COPY_OBJECT_MAX_BYTES, multipart_chunksize=part, use_threads=False
    )
    s3.copy(source, target.bucket, target.key, ExtraArgs=extra or None, Config=config)


def sagemaker_hyperparameters(
    request: TrainingRequest, algorithm: str, settings: Settings, region: str
) -> dict[str, str]:
    """Training HyperParameters: all strings; the script-mode ones JSON-quoted (container contract)."""
    params = {**DEFAULT_HYPERPARAMETERS, **{k: str(v) for k, v in request.hyperparameters.items()}}
    return {
        "sagemaker_program": json.dumps("train.py"),
        "sagemaker_submit_directory": json.dumps(settings.submit_directory_uri),
        "sagemaker_region": json.dumps(region),
        "algorithm": algorithm,
        **params,
    }


def input_data_config(snapshot_prefix: str, champion_artifact_uri: str | None) -> list[dict[str, Any]]:
    """TrainModel's channels: the snapshot, plus the champion's model.tar.gz when there is one."""
    channels: list[dict[str, Any]] = [
        {
            "ChannelName": "training",
            "ContentType": "text/csv",
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": snapshot_prefix,
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
        }
    ]
    if champion_artifact_uri:
        channels.append(
            {
                "ChannelName": "champion",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": champion_artifact_uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
        )
    return channels


def retry_delays() -> list[float]:
    """The waits between a SageMaker job's attempts, as the jobs' Retry makes them (without jitter):
    IntervalSeconds, then times BackoffRate for each further attempt."""
    return [JOB_RETRY_INTERVAL_SECONDS * JOB_RETRY_BACKOFF_RATE**n for n in range(MAX_JOB_ATTEMPTS - 1)]


def longest_run_seconds(max_training: int, max_transform: int, delays: list[float]) -> int:
    """An upper bound on one execution's duration: every job attempt timing out, every back-off, plus
    an hour for the Lambda steps and their retries. A claim older than this belongs to a dead run.

    Three jobs are bounded by MaxTransformSeconds: EnrichHistory, BatchTransform and MonitorDrift."""
    per_attempt = (max_training + TIMEOUT_MARGIN_SECONDS) + 3 * (max_transform + TIMEOUT_MARGIN_SECONDS)
    return int(MAX_JOB_ATTEMPTS * per_attempt + 3 * sum(delays) + 3600)


def prepare_run(
    payload: dict[str, Any], *, settings: Settings, s3: Any, registry: Registry
) -> dict[str, Any]:
    """The whole PrepareRun step; returns `{run}` (the state machine's data from here on).

    Everything that can reject the input runs before the idempotency claim; the claim precedes any
    write; the dataset is snapshotted last (see the module docstring)."""
    execution = payload.get("execution") or {}
    defaults = payload.get("defaults") or {}
    run_id = execution.get("name")
    execution_arn = execution.get("id", "")
    if not run_id:
        raise InvalidInput("PrepareRun needs execution.name (pass $$.Execution.Name)")

    request, dataset = read_request(payload.get("input"), settings)
    run_instance_types = instance_types(request, defaults)
    dataset = describe_dataset(s3, dataset, settings)
    model_name = request.modelName or settings.default_model_name
    key = _idempotency_key(request, dataset, settings)
    limits = _limits(defaults)

    registry.claim_idempotency_key(
        key,
        run_id,
        execution_arn,
        running_for_at_most=longest_run_seconds(
            limits["maxTrainingSeconds"], limits["maxTransformSeconds"], retry_delays()
        ),
    )
    registry.start_run(
        run_id=run_id,
        execution_arn=execution_arn,
        model_name=model_name,
        idempotency_key=key,
        dataset_uri=str(dataset.uri),
    )
    snapshot = S3Uri(settings.bucket, f"runs/{run_id}/input/{dataset.uri.name}")
    snapshot_dataset(s3, dataset, snapshot)
    champion = registry.get_champion(model_name)
    run = _describe_run(
        run_id, execution, defaults, request, dataset, snapshot, key, champion, model_name, settings
    )
    return {"run": {**run, **run_instance_types, "limits": limits}}


def _idempotency_key(request: TrainingRequest, dataset: DatasetObject, settings: Settings) -> str:
    """The caller's key, or one derived from the dataset's URI, content and the run's parameters."""
    if request.idempotencyKey:
        return client_idempotency_key(request.idempotencyKey)
    content_id = dataset.version_id or dataset.etag or ""
    return derived_idempotency_key(dataset.uri, content_id, parameters_digest(request, settings))


def _limits(defaults: dict[str, Any]) -> dict[str, int]:
    """SageMaker's own MaxRuntimeInSeconds per job, and the state timeouts a margin above them."""
    max_training = _positive_int("maxTrainingSeconds", defaults.get("maxTrainingSeconds", 3600))
    max_transform = _positive_int("maxTransformSeconds", defaults.get("maxTransformSeconds", 3600))
    return {
        "maxTrainingSeconds": max_training,
        "trainingTimeoutSeconds": max_training + TIMEOUT_MARGIN_SECONDS,
        "maxTransformSeconds": max_transform,
        "transformTimeoutSeconds": max_transform + TIMEOUT_MARGIN_SECONDS,
        "maxJobAttempts": MAX_JOB_ATTEMPTS,
    }


def _describe_run(
    run_id: str,
    execution: dict[str, Any],
    defaults: dict[str, Any],
    request: TrainingRequest,
    dataset: DatasetObject,
    snapshot: S3Uri,
    key: str,
    champion: Any,
    model_name: str,
    settings: Settings,
) -> dict[str, Any]:
    """The run description the later states read: names, URIs, hyperparameters, channels, jobs."""
    algorithm = request.algorithm or settings.default_algorithm
    score_uri = request.scoreUri or str(snapshot)
    run_prefix = f"s3://{settings.bucket}/runs/{run_id}"
    start_time = execution.get("startTime", "")
    return {
        "runId": run_id,
        "executionArn": execution.get("id", ""),
        "modelName": model_name,
        "algorithm": algorithm,
        "datasetUri": str(dataset.uri),
        "datasetContentId": dataset.version_id or dataset.etag,
        "snapshotUri": str(snapshot),
        "scoreUri": score_uri,
        # By name, for a file; the transform uses ValidateDataset's compressionType (by content, and
        # the parts' shared one for a prefix of parts).
        "scoreCompressionType": "Gzip" if score_uri.endswith(".gz") else "None",
        # Instances of the batch transform: the score file's parts are spread across them.
        "transformInstanceCount": request.transformInstanceCount or DEFAULT_TRANSFORM_INSTANCE_COUNT,
        "hyperparameters": sagemaker_hyperparameters(
            request, algorithm, settings, defaults.get("region", "")
        ),
        "idempotencyKey": key,
        "jobs": {
            kind: job_name(settings.job_name_prefix, model_name, kind, run_id, start_time)
            for kind in ("train", "model", "xform", "drift")
        },
        "champion": champion.as_json() if champion else None,
        "inputDataConfig": input_data_config(
            f"{run_prefix}/input/", champion.artifact_uri if champion else None
        ),
        "modelOutputUri": f"{run_prefix}/model",
        "predictionsOutputUri": f"{run_prefix}/predictions",
        "driftOutputUri": f"{run_prefix}/drift",
    }


@instrument(logger, metrics)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = load_settings()
    try:
        result = prepare_run(
            event,
            settings=settings,
            s3=aws_clients.client("s3"),
            registry=Registry(settings.registry_table, aws_clients.client("dynamodb")),
        )
    except DuplicateRun as exc:
        metrics.add_metric(name="DuplicateRuns", unit=MetricUnit.Count, value=1)
        logger.info("duplicate run ignored", extra={"reason": str(exc)})
        raise
    except (InvalidInput, InvalidDataset) as exc:
        metrics.add_metric(name="RunsRejected", unit=MetricUnit.Count, value=1)
        logger.warning("input rejected", extra={"reason": str(exc)})
        raise
    metrics.add_metric(name="RunsStarted", unit=MetricUnit.Count, value=1)
    logger.info("run prepared", extra={"run_id": result["run"]["runId"], "model": result["run"]["modelName"]})
    return result

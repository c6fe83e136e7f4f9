"""The accepted execution inputs and their normalisation into one run description.

Three triggers start the state machine (docs/architecture.md, "State machine input"):
1. EventBridge's S3 `Object Created` event for `s3://<bucket>/<datasets prefix>...`;
2. the API body `POST /training`;
3. the same body typed in the console.
`TrainingRequest` is the body (strict: unknown fields are errors, so a typo never silently falls back
to a default); `DatasetObject` is what both shapes say about the dataset. The API validates with the
same model, so a body the API accepts is a body PrepareRun accepts.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from errors import InvalidInput
from s3uri import S3Uri, parse_s3_uri
from settings import Settings

ALGORITHMS = ("HistGradientBoosting", "RandomForest", "LogisticRegression")
TARGETS = ("readmitted_30d", "readmitted_any")
# A model name is a registry key and the stem of SageMaker job names, so it uses their alphabet.
MODEL_NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
MODEL_NAME_MAX = 63
INSTANCE_TYPE_PATTERN = r"^ml\.[a-z0-9]+\.[a-z0-9]+$"
# Hyperparameters a caller may set; the SageMaker ones are the pipeline's to set, never the caller's.
ALLOWED_HYPERPARAMETERS = frozenset(
    {"target", "seed", "validation_fraction", "n_estimators", "max_depth", "learning_rate", "max_iter"}
)
IDEMPOTENCY_KEY_MAX = 128


class TrainingRequest(BaseModel):
    """Body of `POST /training` and of a console-started execution (only datasetUri required)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    datasetUri: str = Field(min_length=6, max_length=1024)
    modelName: str | None = Field(default=None, max_length=MODEL_NAME_MAX, pattern=MODEL_NAME_PATTERN)
    algorithm: Literal["HistGradientBoosting", "RandomForest", "LogisticRegression"] | None = None
    instanceType: str | None = Field(default=None, max_length=32, pattern=INSTANCE_TYPE_PATTERN)
    scoreUri: str | None = Field(default=None, max_length=1024)
    hyperparameters: dict[str, str | int | float] = Field(default_factory=dict)
    idempotencyKey: str | None = Field(default=None, min_length=1, max_length=IDEMPOTENCY_KEY_MAX)

    @field_validator("datasetUri", "scoreUri")
    @classmethod
    def _s3_uri(cls, value: str | None) -> str | None:
        if value is not None:
            parse_s3_uri(value)  # ValueError -> a field error naming the URI
            if value.endswith("/"):
                raise ValueError("must name one object, not a prefix")
        return value

    @field_validator("hyperparameters")
    @classmethod
    def _known_hyperparameters(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - ALLOWED_HYPERPARAMETERS)
        if unknown:
            raise ValueError(f"unknown hyperparameters {unknown}; allowed: {sorted(ALLOWED_HYPERPARAMETERS)}")
        target = value.get("target")
        if target is not None and target not in TARGETS:
            raise ValueError(f"target must be one of {list(TARGETS)}")
        for name, item in value.items():
            if isinstance(item, bool) or len(str(item)) > 64:
                raise ValueError(f"{name} must be a number or a short string")
        return value


class DatasetObject(BaseModel):
    """The dataset object a run trains on, with what identifies its content."""

    uri: S3Uri
    etag: str | None = None
    version_id: str | None = None
    size: int | None = None

    model_config = ConfigDict(arbitrary_types_allowed=True)


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Pydantic's errors as `{field, message}` pairs a person can act on."""
    errors = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "body"
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        elif err["type"] == "missing":
            message = "required field is missing"
        errors.append({"field": field, "message": message})
    return errors


def parse_training_request(body: dict[str, Any]) -> TrainingRequest:
    """Validate an API/console body; InvalidInput lists every field error."""
    try:
        return TrainingRequest.model_validate(body)
    except ValidationError as exc:
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in field_errors(exc))
        raise InvalidInput(f"invalid training request: {detail}") from None


def is_s3_object_created_event(event: dict[str, Any]) -> bool:
    return event.get("source") == "aws.s3" and event.get("detail-type") == "Object Created"


def dataset_from_event(event: dict[str, Any]) -> DatasetObject:
    """The dataset an EventBridge `Object Created` event announces."""
    detail = event.get("detail") or {}
    bucket = (detail.get("bucket") or {}).get("name")
    obj = detail.get("object") or {}
    key = obj.get("key")
    if not bucket or not key:
        raise InvalidInput("the S3 event has no detail.bucket.name / detail.object.key")
    # EventBridge delivers keys URL-encoded the way S3 notifications do (spaces as '+').
    from urllib.parse import unquote_plus

    return DatasetObject(
        uri=S3Uri(bucket, unquote_plus(key)),
        etag=obj.get("etag"),
        version_id=obj.get("version-id"),
        size=obj.get("size"),
    )


def check_dataset_location(uri: S3Uri, settings: Settings) -> None:
    """A run trains only on the project's bucket under the datasets prefix (or on a run snapshot)."""
    if uri.bucket != settings.bucket:
        raise InvalidInput(f"dataset {uri} is outside the project's bucket s3://{settings.bucket}/")
    if not uri.key.startswith(settings.datasets_prefix) or uri.key == settings.datasets_prefix:
        raise InvalidInput(f"dataset {uri} is not under s3://{settings.bucket}/{settings.datasets_prefix}")
    if not uri.key.endswith((".csv", ".csv.gz")):
        raise InvalidInput(f"dataset {uri} must be a .csv or .csv.gz file")


def check_score_location(uri: S3Uri, settings: Settings) -> None:
    """Batch scoring reads from the bucket's scoring or datasets prefix only."""
    allowed = (settings.scoring_prefix, settings.datasets_prefix)
    if uri.bucket != settings.bucket or not uri.key.startswith(allowed):
        raise InvalidInput(
            f"scoreUri {uri} must be under s3://{settings.bucket}/{settings.scoring_prefix} "
            f"or s3://{settings.bucket}/{settings.datasets_prefix}"
        )
    if not uri.key.endswith((".csv", ".csv.gz")):
        raise InvalidInput(f"scoreUri {uri} must be a .csv or .csv.gz file")


def parameters_digest(request: TrainingRequest, settings: Settings) -> str:
    """Hash of everything besides the dataset that changes what a run produces."""
    effective = {
        "modelName": request.modelName or settings.default_model_name,
        "algorithm": request.algorithm or settings.default_algorithm,
        "instanceType": request.instanceType,
        "scoreUri": request.scoreUri,
        "hyperparameters": {k: str(v) for k, v in sorted(request.hyperparameters.items())},
    }
    return hashlib.sha256(json.dumps(effective, sort_keys=True).encode()).hexdigest()[:16]


def derived_idempotency_key(dataset: S3Uri, content_id: str, params_digest: str) -> str:
    """The key of a run nobody named: same object content + same parameters = same run.

    `content_id` is the object's version id when the bucket is versioned, else its ETag.
    """
    content = hashlib.sha256(f"{dataset}|{content_id.strip(chr(34))}".encode()).hexdigest()[:24]
    return f"s3:{content}:{params_digest}"


def client_idempotency_key(key: str) -> str:
    """A caller-chosen key, namespaced so it never equals a derived one."""
    return f"client:{key}"


def execution_name_for_key(key: str, model_name: str) -> str:
    """A Step Functions execution name (<= 80 chars, [A-Za-z0-9-_]) determined by the key."""
    stem = re.sub(r"[^A-Za-z0-9-]", "-", model_name)[:40].strip("-") or "run"
    return f"{stem}-{hashlib.sha256(key.encode()).hexdigest()[:32]}"


JOB_NAME_MAX = 63
JOB_NAME_REST_MAX = 50  # after `<JOB_NAME_PREFIX>-` (docs/architecture.md, "SageMaker names")
ATTEMPT_SUFFIX_MAX = 3  # `-<attempt>` appended by the ASL; attempts stay below 100


def job_name(prefix: str, model_name: str, kind: str, run_id: str, start_time: str) -> str:
    """Base name of one of a run's SageMaker jobs/models; the ASL appends `-<attempt>` to job names.

    `<prefix>-<model stem>-<kind>-<yymmddHHMMSS>-<hash>`: the prefix scopes the state machine's IAM
    permissions; the rest stays <= 47 characters so `-<attempt>` fits the 50 the contract allows and
    SageMaker's 63 (^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}). The hash of run id + start time keeps two runs
    apart even when an execution name is reused after the 90-day retention.
    """
    stem = model_name.lower()[:16].rstrip("-")
    stamp = re.sub(r"[^0-9]", "", start_time)[2:14] or "0"
    digest = hashlib.sha256(f"{run_id}|{start_time}".encode()).hexdigest()[:8]
    return f"{prefix}-{stem}-{kind}-{stamp}-{digest}"

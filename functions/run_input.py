"""The accepted execution inputs and their normalisation into one run description.

Three triggers start the state machine (docs/architecture.md, "State machine input"):
1. EventBridge's S3 `Object Created` event for `s3://<bucket>/<datasets prefix>...`;
2. the API body `POST /training`;
3. the same body typed in the console.
`TrainingRequest` is the body (strict: unknown fields are errors, so a typo never silently falls back
to a default); `DatasetObject` is what both shapes say about the dataset. The API validates with the
same function, so a body the API accepts is a body PrepareRun accepts.

Validation is written out here rather than declared with pydantic: importing pydantic and building
the models cost ~250 ms of every cold start of the two handlers that read bodies, over the budget
of 300 ms per handler import, for nine fields.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from errors import InvalidInput
from s3uri import S3Uri, parse_s3_uri
from settings import Settings

ALGORITHMS = ("HistGradientBoosting", "RandomForest", "LogisticRegression")
TARGETS = ("readmitted_30d", "readmitted_any")
# A model name is a registry key and the stem of SageMaker job names, so it uses their alphabet.
MODEL_NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
MODEL_NAME_MAX = 63
INSTANCE_TYPE_MAX = 32
# The instance types each SageMaker operation accepts, generated from botocore's model
# (scripts/instance_types.py): AWS refuses any other only when the job is created, after the run has
# claimed its key and trained or waited through the back-off.
INSTANCE_TYPES_PATH = Path(__file__).with_name("instance_types.json")
INSTANCE_TYPE_KINDS = ("training", "transform", "processing")
INSTANCE_TYPE_EXAMPLES = ("ml.m5.large", "ml.m5.xlarge", "ml.c5.xlarge", "ml.g4dn.xlarge")
# Hyperparameters a caller may set; the SageMaker ones are the pipeline's to set, never the caller's.
ALLOWED_HYPERPARAMETERS = frozenset(
    {"target", "seed", "validation_fraction", "n_estimators", "max_depth", "learning_rate", "max_iter"}
)
IDEMPOTENCY_KEY_MAX = 128
URI_MAX = 1024
HYPERPARAMETER_VALUE_MAX = 64


@dataclass(frozen=True)
class TrainingRequest:
    """Body of `POST /training` and of a console-started execution (only datasetUri required)."""

    datasetUri: str
    modelName: str | None = None
    algorithm: str | None = None
    instanceType: str | None = None
    scoreUri: str | None = None
    hyperparameters: dict[str, str | int | float] = field(default_factory=dict)
    idempotencyKey: str | None = None

    def as_input(self) -> dict[str, Any]:
        """The request as an execution input: the fields that are set, nothing else."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None and v != {}}

    def with_idempotency_key(self, key: str) -> TrainingRequest:
        return dataclasses.replace(self, idempotencyKey=key)


FIELDS = tuple(f.name for f in dataclasses.fields(TrainingRequest))
REQUIRED_FIELDS = ("datasetUri",)


@dataclass
class DatasetObject:
    """The dataset object a run trains on, with what identifies its content."""

    uri: S3Uri
    etag: str | None = None
    version_id: str | None = None
    size: int | None = None


class RequestErrors(ValueError):
    """Every problem with a request body, as `{field, message}` pairs a person can act on."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


def _text(
    value: Any, name: str, errors: list[dict[str, str]], *, max_length: int, min_length: int = 1
) -> str | None:
    if not isinstance(value, str):
        errors.append({"field": name, "message": "must be a string"})
        return None
    value = value.strip()
    if not min_length <= len(value) <= max_length:
        errors.append({"field": name, "message": f"must be {min_length} to {max_length} characters"})
        return None
    return value


def _s3_object_uri(value: Any, name: str, errors: list[dict[str, str]]) -> str | None:
    text = _text(value, name, errors, max_length=URI_MAX)
    if text is None:
        return None
    try:
        parse_s3_uri(text)
    except ValueError as exc:
        errors.append({"field": name, "message": str(exc)})
        return None
    if text.endswith("/"):
        errors.append({"field": name, "message": "must name one object, not a prefix"})
        return None
    return text


def _matching(
    value: Any, name: str, errors: list[dict[str, str]], pattern: str, example: str, max_length: int
) -> str | None:
    text = _text(value, name, errors, max_length=max_length)
    if text is not None and not re.fullmatch(pattern, text):
        errors.append({"field": name, "message": f"must match {pattern} (e.g. {example})"})
        return None
    return text


@cache
def allowed_instance_types(kind: str) -> tuple[str, ...]:
    """The instance types SageMaker accepts for `kind` (training, transform or processing), in
    botocore's order (by family, then size)."""
    document = json.loads(INSTANCE_TYPES_PATH.read_text())
    return tuple(document[kind]["values"])


def instance_type_problem(value: Any, kind: str) -> str | None:
    """Why `value` is not a `kind` instance type, with a few valid ones to pick from; None when it is."""
    if not isinstance(value, str):
        return "must be a string"
    allowed = allowed_instance_types(kind)
    if value in allowed:
        return None
    family = value.rsplit(".", 1)[0] + "."
    nearby = [t for t in allowed if t.startswith(family)][:4] or [
        t for t in INSTANCE_TYPE_EXAMPLES if t in allowed
    ]
    return f"{value!r} is not a SageMaker {kind} instance type ({len(allowed)} are, e.g. {', '.join(nearby)})"


def _instance_type(value: Any, name: str, errors: list[dict[str, str]], kind: str) -> str | None:
    text = _text(value, name, errors, max_length=INSTANCE_TYPE_MAX)
    problem = None if text is None else instance_type_problem(text, kind)
    if problem:
        errors.append({"field": name, "message": problem})
        return None
    return text


def _hyperparameters(value: Any, errors: list[dict[str, str]]) -> dict[str, str | int | float]:
    if not isinstance(value, dict):
        errors.append({"field": "hyperparameters", "message": "must be an object"})
        return {}
    unknown = sorted(set(value) - ALLOWED_HYPERPARAMETERS)
    if unknown:
        errors.append(
            {
                "field": "hyperparameters",
                "message": f"unknown hyperparameters {unknown}; allowed: {sorted(ALLOWED_HYPERPARAMETERS)}",
            }
        )
    for name, item in value.items():
        if name in unknown:
            continue
        if (
            isinstance(item, bool)
            or not isinstance(item, (str, int, float))
            or len(str(item)) > HYPERPARAMETER_VALUE_MAX
        ):
            errors.append(
                {"field": f"hyperparameters.{name}", "message": "must be a number or a short string"}
            )
    target = value.get("target")
    if target is not None and target not in TARGETS:
        errors.append({"field": "hyperparameters.target", "message": f"must be one of {', '.join(TARGETS)}"})
    return dict(value)


def validate_training_request(body: Any) -> TrainingRequest:
    """The body as a TrainingRequest, or RequestErrors listing every problem (not just the first)."""
    if not isinstance(body, dict):
        raise RequestErrors([{"field": "body", "message": "must be a JSON object"}])
    errors: list[dict[str, str]] = [
        {"field": str(name), "message": "unknown field"} for name in body if name not in FIELDS
    ]
    values = {k: v for k, v in body.items() if k in FIELDS and v is not None}
    for name in REQUIRED_FIELDS:
        if name not in values:
            errors.append({"field": name, "message": "required field is missing"})
    checked: dict[str, Any] = {}
    for name, value in values.items():
        if name in ("datasetUri", "scoreUri"):
            checked[name] = _s3_object_uri(value, name, errors)
        elif name == "modelName":
            checked[name] = _matching(
                value, name, errors, MODEL_NAME_PATTERN, "medication-adherence-model", MODEL_NAME_MAX
            )
        elif name == "instanceType":
            checked[name] = _instance_type(value, name, errors, "training")
        elif name == "algorithm":
            if value not in ALGORITHMS:
                errors.append({"field": name, "message": f"must be one of {', '.join(ALGORITHMS)}"})
            checked[name] = value
        elif name == "hyperparameters":
            checked[name] = _hyperparameters(value, errors)
        elif name == "idempotencyKey":
            checked[name] = _text(value, name, errors, max_length=IDEMPOTENCY_KEY_MAX)
    if errors:
        raise RequestErrors(errors)
    return TrainingRequest(**checked)


def parse_training_request(body: Any) -> TrainingRequest:
    """Validate a console/API body for PrepareRun; InvalidInput lists every field error."""
    try:
        return validate_training_request(body)
    except RequestErrors as exc:
        raise InvalidInput(f"invalid training request: {exc}") from None


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
    # EventBridge's `Object Created` carries the key as stored (the S3 User Guide's "EventBridge
    # event message structure"; moto builds it so too). Only the older S3 notification format
    # (`Records[].s3.object.key`, to SQS/SNS/Lambda) URL-encodes it: decoding here would turn the
    # '+' of "run+v2.csv" into a space and name an object that does not exist.
    return DatasetObject(
        uri=S3Uri(bucket, key),
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

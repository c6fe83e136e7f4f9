"""The accepted execution inputs and their normalisation into one run description.

Three triggers start the state machine (docs/architecture.md, "State machine input"):
1. EventBridge's S3 `Object Created` event for `s3://<bucket>/<datasets prefix>...`;
2. the API body `POST /training`;
3. the same body typed in the console.
`TrainingRequest` is the body (strict: unknown fields are errors, so a typo never silently falls back
to a default); `DatasetObject` is what both shapes say about the dataset. The API validates with the
same function, so a body the API accepts is a body PrepareRun accepts.

The body's contract is functions/input.schema.json (statemachine/input.schema.json links to it),
checked with fastjsonschema, compiled once per process on first use (~5 ms; importing it ~15 ms, pydantic
would cost ~250 ms of the 300 ms cold-start budget). Only what a schema cannot say stays in code: which
bucket and prefixes a URI may point into (they are the stack's settings) and the messages that name
the field and, for an instance type, a few valid ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema

from errors import InvalidInput
from s3uri import S3Uri
from settings import Settings

SCHEMA_PATH = Path(__file__).with_name("input.schema.json")
REQUEST_SCHEMA: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())["oneOf"][0]
_PROPERTIES = REQUEST_SCHEMA["properties"]
ALGORITHMS = tuple(_PROPERTIES["algorithm"]["enum"])
# Hyperparameters a caller may set; the SageMaker ones are the pipeline's to set, never the caller's.
ALLOWED_HYPERPARAMETERS = frozenset(_PROPERTIES["hyperparameters"]["properties"])
# Sent to the job as the whole numbers the pipelines parse them with (`int("200")`, never "200.0").
INTEGER_HYPERPARAMETERS = frozenset(
    name
    for name, spec in _PROPERTIES["hyperparameters"]["properties"].items()
    if spec.get("type") == "integer"
)
TARGETS = tuple(_PROPERTIES["hyperparameters"]["properties"]["target"]["enum"])
REQUIRED_FIELDS = tuple(REQUEST_SCHEMA["required"])
# A model name is a registry key and the stem of SageMaker job names, so it uses their alphabet.
MODEL_NAME_MAX = _PROPERTIES["modelName"]["maxLength"]
# The instance types each SageMaker operation accepts, generated from botocore's model
# (scripts/instance_types.py, which also writes the schema's instanceType enum): AWS refuses any
# other only when the job is created, after the run has claimed its key and trained or waited
# through the back-off.
INSTANCE_TYPES_PATH = Path(__file__).with_name("instance_types.json")
INSTANCE_TYPE_KINDS = ("training", "transform", "processing")
INSTANCE_TYPE_EXAMPLES = ("ml.m5.large", "ml.m5.xlarge", "ml.c5.xlarge", "ml.g4dn.xlarge")


@dataclass(frozen=True)
class TrainingRequest:
    """Body of `POST /training` and of a console-started execution (only datasetUri required)."""

    datasetUri: str
    modelName: str | None = None
    algorithm: str | None = None
    instanceType: str | None = None
    scoreUri: str | None = None
    transformInstanceCount: int | None = None
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


def validate_training_request(body: Any) -> TrainingRequest:
    """The body as a TrainingRequest, or RequestErrors listing every problem (not just the first).

    A field whose value is null counts as absent.
    """
    if not isinstance(body, dict):
        raise RequestErrors([{"field": "body", "message": "must be a JSON object"}])
    body = {name: value for name, value in body.items() if value is not None}
    # Python's json reads NaN and Infinity, which JSON has not, and NaN passes every bound of a schema.
    not_finite = non_finite_numbers(body)
    named = {e["field"] for e in not_finite}
    errors = not_finite + [e for e in schema_errors(body) if e["field"] not in named]
    if errors:
        raise RequestErrors(errors)
    if "transformInstanceCount" in body:  # JSON's 2.0 is the integer 2 (the schema accepts it)
        body["transformInstanceCount"] = int(body["transformInstanceCount"])
    if "hyperparameters" in body:
        body["hyperparameters"] = {
            name: int(value) if name in INTEGER_HYPERPARAMETERS else value
            for name, value in body["hyperparameters"].items()
        }
    return TrainingRequest(**body)


def non_finite_numbers(value: Any, path: tuple[str, ...] = ()) -> list[dict[str, str]]:
    """A `{field, message}` for each NaN or infinite number in `value`, at any depth."""
    if isinstance(value, float) and not math.isfinite(value):
        return [{"field": ".".join(path) or "body", "message": f"must be a finite number, not {value}"}]
    if isinstance(value, dict):
        return [e for name, member in value.items() for e in non_finite_numbers(member, (*path, str(name)))]
    if isinstance(value, list):
        return [e for i, member in enumerate(value) for e in non_finite_numbers(member, (*path, str(i)))]
    return []


@cache
def _validator(path: tuple[str, ...]) -> Callable[[Any], Any]:
    return fastjsonschema.compile(_subschema(path))


def _subschema(path: tuple[str, ...]) -> dict[str, Any]:
    schema = REQUEST_SCHEMA
    for name in path:
        schema = schema["properties"][name]
    return schema


def schema_errors(value: Any, path: tuple[str, ...] = ()) -> list[dict[str, str]]:
    """Every `{field, message}` by which `value` breaks the request schema at `path`.

    fastjsonschema stops at the first error, so an object that fails is walked member by member
    to name each unknown, missing and invalid one.
    """
    try:
        _validator(path)(value)
        return []
    except fastjsonschema.JsonSchemaValueException as exc:
        first = exc
    schema = _subschema(path)
    if not (isinstance(value, dict) and "properties" in schema):
        return [{"field": ".".join(path) or "body", "message": _message(schema, value, first, path)}]
    known = schema["properties"]
    unknown = sorted(set(value) - set(known))
    errors: list[dict[str, str]] = []
    if unknown and not path:
        errors += [{"field": name, "message": "unknown field"} for name in unknown]
    elif unknown:
        errors.append(
            {"field": ".".join(path), "message": f"unknown {path[-1]} {unknown}; allowed: {sorted(known)}"}
        )
    for name in schema.get("required", ()):
        if name not in value:
            errors.append({"field": ".".join((*path, name)), "message": "required field is missing"})
    for name in sorted(set(value) & set(known), key=list(known).index):
        errors += schema_errors(value[name], (*path, name))
    return errors or [{"field": ".".join(path) or "body", "message": first.message}]


_TYPE_NAMES = {"string": "a string", "number": "a number", "integer": "an integer", "object": "an object"}


def _message(
    schema: dict[str, Any], value: Any, error: fastjsonschema.JsonSchemaValueException, path: tuple[str, ...]
) -> str:
    """What is wrong with one field's value, in words that say what to send instead."""
    if path == ("instanceType",):
        return instance_type_problem(value, "training") or error.message
    if error.rule == "type":
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        bounds = f" {_range(schema)}" if {"minimum", "exclusiveMinimum"} & set(schema) else ""
        return "must be " + " or ".join(_TYPE_NAMES.get(t, t) for t in types) + bounds
    if error.rule == "enum":
        return f"must be one of {', '.join(map(str, schema['enum']))}"
    if error.rule in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return f"must be {_TYPE_NAMES[schema['type']]} {_range(schema)}"
    if error.rule in ("minLength", "maxLength"):
        return f"must be {schema.get('minLength', 0)} to {schema['maxLength']} characters"
    if error.rule == "pattern":
        example = f" (e.g. {schema['examples'][0]})" if schema.get("examples") else ""
        return f"must match {schema['pattern']}{example}"
    return error.message


def _range(schema: dict[str, Any]) -> str:
    """A number schema's bounds in interval notation: `within [1, 1000]`, `within (0, 1]`."""
    low = f"[{schema['minimum']}" if "minimum" in schema else f"({schema['exclusiveMinimum']}"
    high = f"{schema['maximum']}]" if "maximum" in schema else f"{schema['exclusiveMaximum']})"
    return f"within {low}, {high}"


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
    """A run trains only on the project's bucket under the datasets prefix or the console's uploads
    prefix (a file the console staged for the run its form starts)."""
    if uri.bucket != settings.bucket:
        raise InvalidInput(f"dataset {uri} is outside the project's bucket s3://{settings.bucket}/")
    prefixes = settings.dataset_prefixes
    if not uri.key.startswith(prefixes) or uri.key in prefixes:
        allowed = " or ".join(f"s3://{settings.bucket}/{prefix}" for prefix in prefixes)
        raise InvalidInput(f"dataset {uri} is not under {allowed}")
    if not uri.key.endswith((".csv", ".csv.gz")):
        raise InvalidInput(f"dataset {uri} must be a .csv or .csv.gz file")


def is_score_prefix(uri: S3Uri) -> bool:
    """A scoreUri ending in '/' names a prefix whose objects are the parts of one score file."""
    return uri.key.endswith("/")


def check_score_location(uri: S3Uri, settings: Settings) -> None:
    """Batch scoring reads from the bucket's scoring or datasets prefix only: one CSV file, or a
    prefix of parts (ValidateDataset checks the parts)."""
    allowed = (settings.scoring_prefix, settings.datasets_prefix)
    if uri.bucket != settings.bucket or not uri.key.startswith(allowed):
        raise InvalidInput(
            f"scoreUri {uri} must be under s3://{settings.bucket}/{settings.scoring_prefix} "
            f"or s3://{settings.bucket}/{settings.datasets_prefix}"
        )
    if uri.key in allowed:
        raise InvalidInput(f"scoreUri {uri} is the whole {uri.key} prefix: name a file or a folder of parts")
    if not is_score_prefix(uri) and not uri.key.endswith((".csv", ".csv.gz")):
        raise InvalidInput(
            f"scoreUri {uri} must be a .csv or .csv.gz file, or a prefix of parts ending in '/'"
        )


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

"""The REST API: start a training run, follow an execution, read the model registry.

    POST /training                 202 {executionArn, executionName, status}; 200 for a replayed key
    GET  /executions/{id}          status, current state, error, cause (id: execution name or ARN)
    GET  /models                   every registered version with status, champion flag, metrics
    GET  /models/{name}/{version}  one version

and what the web console (console/) reads, in console_api.py: GET /executions, /executions/{id}/states,
/executions/{id}/drift, /datasets, /links, /models/{name}/{version}/report, /costs; POST /uploads.

A bad request is answered 400 with field-level errors and starts nothing. The execution name is derived
from the idempotency key (the `Idempotency-Key` header or `idempotencyKey` field, else the body plus the
dataset object's ETag), so a retried request lands on the execution the first one started.
"""

from __future__ import annotations

import binascii
import json
import os
import re
from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

import aws_clients
import console_api
from errors import InvalidInput
from observability import Logger, Metrics, MetricUnit, instrument
from registry import Registry
from run_input import (
    RequestErrors,
    TrainingRequest,
    check_dataset_location,
    check_score_location,
    client_idempotency_key,
    derived_idempotency_key,
    execution_name_for_key,
    parameters_digest,
)
from run_input import validate_training_request as validate_body
from s3uri import is_missing_object, parse_s3_uri
from settings import Settings, load_settings

logger = Logger()
metrics = Metrics()

MAX_BODY_BYTES = 64 * 1024
# A request body is a flat object with one nested level (hyperparameters): deeper is not a request, and
# thousands of levels exhaust the parser's recursion (a 502 instead of a 400).
MAX_BODY_DEPTH = 16
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_RETRIES_PER_KEY = 10  # executions started for one key after failures, before the key is refused
# Step Functions' executionArn is 256 characters at most: a longer id names no execution, and asking
# about it is a ValidationException (a 502), not the 404 it is
MAX_EXECUTION_ARN_LENGTH = 256
# What StartExecution accepts as a name (1 to 80 characters; no whitespace, brackets, wildcards, control
# characters or any of "#%\^|~`$&,;:/): an id that is not one names no execution of ours. Asking anyway is
# an AccessDeniedException for an ARN outside the function's policy, not the 404 it is.
_EXECUTION_NAME = re.compile(r'[^\s<>{}\[\]?*"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]{1,80}')


def _cors() -> CORSConfig | None:
    """CORS for the console's origin only (CONSOLE_ORIGIN, the template's CloudFront URL); none when
    unset (the local API serves the console from its own origin)."""
    origin = os.environ.get("CONSOLE_ORIGIN")
    if not origin:
        return None
    return CORSConfig(allow_origin=origin, allow_headers=["Authorization", IDEMPOTENCY_HEADER], max_age=600)


app = APIGatewayRestResolver(cors=_cors())


def body_problem(field: str, message: str) -> RequestErrors:
    return RequestErrors([{"field": field, "message": message}])


def json_object_body(event: APIGatewayProxyEvent) -> dict[str, Any]:
    """The request body (base64-decoded when API Gateway encoded it) as a JSON object.

    A body that is missing, over MAX_BODY_BYTES or not an object is a RequestErrors; one that is not
    base64 or not JSON raises what Powertools raised, which the exception handlers below answer.
    """
    if not event.body:
        raise body_problem("body", "a JSON object body is required")
    size = len(event.decoded_body.encode("utf-8"))
    if size > MAX_BODY_BYTES:
        raise body_problem("body", f"body is {size} bytes; the limit is {MAX_BODY_BYTES}")
    try:
        body = event.json_body
    except RecursionError:
        raise body_problem("body", f"nested deeper than {MAX_BODY_DEPTH} levels") from None
    if not isinstance(body, dict):
        raise body_problem("body", "must be a JSON object")
    if _depth(body) > MAX_BODY_DEPTH:
        raise body_problem("body", f"nested deeper than {MAX_BODY_DEPTH} levels")
    return body


def _depth(value: Any) -> int:
    """How deeply objects and arrays nest in a parsed JSON value (iterative: no recursion to exhaust)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, level)
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, level + 1) for child in children)
    return deepest


def validate_training_request(
    body: dict[str, Any], header_key: str | None, *, settings: Settings
) -> TrainingRequest:
    """The body as a TrainingRequest whose URIs point inside the project; RequestErrors otherwise."""
    request = validate_body(body)
    errors = []
    try:
        check_dataset_location(parse_s3_uri(request.datasetUri), settings)
    except InvalidInput as exc:
        errors.append({"field": "datasetUri", "message": str(exc)})
    if request.scoreUri:
        try:
            check_score_location(parse_s3_uri(request.scoreUri), settings)
        except InvalidInput as exc:
            errors.append({"field": "scoreUri", "message": str(exc)})
    if header_key is not None:
        if not 1 <= len(header_key) <= 128:
            errors.append({"field": "Idempotency-Key", "message": "must be 1 to 128 characters"})
        elif request.idempotencyKey and request.idempotencyKey != header_key:
            errors.append({"field": "idempotencyKey", "message": "differs from the Idempotency-Key header"})
    if errors:
        raise RequestErrors(errors)
    if header_key is not None and not request.idempotencyKey:
        request = request.with_idempotency_key(header_key)
    return request


def start_training(
    request: TrainingRequest, *, settings: Settings, s3: Any, sfn: Any
) -> tuple[int, dict[str, Any]]:
    """Start (or find) the execution for this request; returns (HTTP status, body)."""
    dataset = parse_s3_uri(request.datasetUri)
    # Looked up with or without a key: a missing dataset is the caller's 400 either way, never a 202
    # whose run fails at PrepareRun.
    try:
        head = s3.head_object(Bucket=dataset.bucket, Key=dataset.key)
    except s3.exceptions.ClientError as exc:
        if is_missing_object(exc):
            raise body_problem("datasetUri", f"{dataset} does not exist") from None
        raise
    if request.idempotencyKey:
        key = client_idempotency_key(request.idempotencyKey)
    else:
        content_id = head.get("VersionId") or head["ETag"]
        key = derived_idempotency_key(dataset, content_id, parameters_digest(request, settings))
    name = execution_name_for_key(key, request.modelName or settings.default_model_name)
    execution_input = request.as_input()
    # Look before starting: StartExecution answers a same-name, same-input call on a running execution
    # with that execution's ARN, indistinguishable from a new start, and the client should learn it is
    # a replay. A key whose execution failed may run again (PrepareRun re-claims a FAILED key), under
    # the next free `<name>-<n>`: execution names are never reused.
    for replay in range(1, MAX_RETRIES_PER_KEY + 1):
        candidate = name if replay == 1 else f"{name}-{replay}"
        arn = _execution_arn(settings.state_machine_arn, candidate)
        existing = _existing_status(sfn, arn)
        if existing in ("RUNNING", "SUCCEEDED"):
            return 200, {"executionArn": arn, "executionName": candidate, "status": existing}
        if existing is not None:
            continue  # FAILED, TIMED_OUT or ABORTED: try the next name
        try:
            started = sfn.start_execution(
                stateMachineArn=settings.state_machine_arn, name=candidate, input=json.dumps(execution_input)
            )
        except sfn.exceptions.ExecutionAlreadyExists:  # a concurrent request with the same key won
            return 200, {
                "executionArn": arn,
                "executionName": candidate,
                "status": _existing_status(sfn, arn),
            }
        return 202, {"executionArn": started["executionArn"], "executionName": candidate, "status": "RUNNING"}
    raise body_problem("idempotencyKey", f"{MAX_RETRIES_PER_KEY} runs with this key failed; use a new key")


def _existing_status(sfn: Any, arn: str) -> str | None:
    try:
        return sfn.describe_execution(executionArn=arn)["status"]
    except sfn.exceptions.ExecutionDoesNotExist:
        return None


def _execution_arn(state_machine_arn: str, name: str) -> str:
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + name


def execution_arn_of(execution_id: str, settings: Settings) -> str | None:
    """The ARN of this state machine's execution `execution_id` (a name or an ARN), or None when the id
    cannot name one (another state machine's ARN, a name StartExecution would refuse)."""
    execution_id = unquote(execution_id)
    prefix = _execution_arn(settings.state_machine_arn, "")  # this state machine's executions
    if execution_id.startswith("arn:"):
        if not execution_id.startswith(prefix):
            return None  # another state machine's, or not an execution ARN: not ours to describe
        execution_id = execution_id[len(prefix) :]
    arn = prefix + execution_id
    if not _EXECUTION_NAME.fullmatch(execution_id) or len(arn) > MAX_EXECUTION_ARN_LENGTH:
        return None
    return arn


def describe_execution(
    execution_id: str, *, settings: Settings, sfn: Any, registry: Registry
) -> dict[str, Any] | None:
    """Status and the state it is in (the last StateEntered), or None when unknown."""
    arn = execution_arn_of(execution_id, settings)
    if arn is None:
        return None
    try:
        described = sfn.describe_execution(executionArn=arn)
    except (sfn.exceptions.ExecutionDoesNotExist, sfn.exceptions.InvalidArn):
        return None
    history = sfn.get_execution_history(executionArn=arn, reverseOrder=True, maxResults=200)
    current = next(
        (e["stateEnteredEventDetails"]["name"] for e in history["events"] if "stateEnteredEventDetails" in e),
        None,
    )
    run = registry.get_run(described["name"]) or {}
    return {
        "executionArn": arn,
        "executionName": described["name"],
        "status": described["status"],
        "currentState": current,
        "startDate": described["startDate"].isoformat() if described.get("startDate") else None,
        "stopDate": described["stopDate"].isoformat() if described.get("stopDate") else None,
        "error": described.get("error"),
        "cause": described.get("cause"),
        "run": {
            "status": run.get("status"),
            "stage": run.get("stage"),
            "modelName": run.get("model_name"),
            "modelVersion": run.get("model_version"),
            # the version whose predictions the run wrote (the champion's when this one was rejected)
            "scoredVersion": None
            if run.get("scored_version") in (None, "none")
            else run.get("scored_version"),
            "predictionsUri": run.get("predictions_uri"),
            "driftReportUri": run.get("drift_uri"),
        }
        if run
        else None,
    }


def _registry() -> Registry:
    return Registry(load_settings().registry_table, aws_clients.client("dynamodb"))


@app.exception_handler(RequestErrors)
def bad_request(exc: RequestErrors) -> Response:
    metrics.add_metric(name="TrainingRequestsRejected", unit=MetricUnit.Count, value=1)
    logger.info("training request rejected", extra={"errors": exc.errors})
    return Response(
        status_code=400,
        content_type=content_types.APPLICATION_JSON,
        body={"message": "invalid training request", "errors": exc.errors},
    )


@app.exception_handler(json.JSONDecodeError)
def invalid_json(exc: json.JSONDecodeError) -> Response:
    return bad_request(body_problem("body", f"invalid JSON: {exc}"))


@app.exception_handler(UnicodeDecodeError)
def not_utf8(exc: UnicodeDecodeError) -> Response:
    return bad_request(body_problem("body", f"invalid JSON: {exc}"))


@app.exception_handler(binascii.Error)
def not_base64(exc: binascii.Error) -> Response:
    return bad_request(body_problem("body", "body is not valid base64"))


@app.post("/training")
def post_training() -> tuple[dict[str, Any], int]:
    settings = load_settings()
    event = app.current_event
    request = validate_training_request(
        json_object_body(event), event.headers.get(IDEMPOTENCY_HEADER), settings=settings
    )
    code, result = start_training(
        request, settings=settings, s3=aws_clients.client("s3"), sfn=aws_clients.client("stepfunctions")
    )
    metrics.add_metric(name="TrainingRequestsAccepted", unit=MetricUnit.Count, value=1)
    return result, code


@app.get("/executions/<execution_id>")
def get_execution(execution_id: str) -> dict[str, Any] | tuple[dict[str, Any], int]:
    settings = load_settings()
    found = describe_execution(
        execution_id, settings=settings, sfn=aws_clients.client("stepfunctions"), registry=_registry()
    )
    if found is None:
        return {"message": f"no execution {unquote(execution_id)}"}, 404
    return found


@app.get("/models")
def get_models() -> dict[str, Any]:
    return {"models": _registry().list_versions()}


@app.get("/models/<name>/<version>")
def get_model_version(name: str, version: str) -> dict[str, Any] | tuple[dict[str, Any], int]:
    if not version.isdigit():
        return {"message": f"no version {version!r} of {name}"}, 404
    found = _registry().describe_version(unquote(name), int(version))
    if found is None:
        return {"message": f"no version {version} of {name}"}, 404
    return found


def _known_execution(execution_id: str, sfn: Any) -> str | None:
    """The ARN when the id names an execution of ours that exists, else None (the route's 404)."""
    arn = execution_arn_of(execution_id, load_settings())
    if arn is None:
        return None
    try:
        sfn.describe_execution(executionArn=arn)
    except (sfn.exceptions.ExecutionDoesNotExist, sfn.exceptions.InvalidArn):
        return None
    return arn


def _no_execution(execution_id: str) -> tuple[dict[str, Any], int]:
    return {"message": f"no execution {unquote(execution_id)}"}, 404


@app.get("/executions")
def get_executions() -> dict[str, Any]:
    return console_api.list_executions(
        settings=load_settings(), sfn=aws_clients.client("stepfunctions"), registry=_registry()
    )


@app.get("/executions/<execution_id>/states")
def get_execution_states(execution_id: str) -> dict[str, Any] | tuple[dict[str, Any], int]:
    sfn = aws_clients.client("stepfunctions")
    arn = _known_execution(execution_id, sfn)
    if arn is None:
        return _no_execution(execution_id)
    return console_api.execution_states(arn, settings=load_settings(), sfn=sfn)


@app.get("/executions/<execution_id>/drift")
def get_execution_drift(execution_id: str) -> dict[str, Any] | tuple[dict[str, Any], int]:
    sfn = aws_clients.client("stepfunctions")
    arn = _known_execution(execution_id, sfn)
    if arn is None:
        return _no_execution(execution_id)
    run = _registry().get_run(arn.rsplit(":", 1)[1])
    found = console_api.drift_report(run, s3=aws_clients.client("s3"))
    if found is None:
        return {"message": f"execution {unquote(execution_id)} has no drift report"}, 404
    return found


@app.get("/datasets")
def get_datasets() -> dict[str, Any]:
    return console_api.list_datasets(settings=load_settings(), s3=aws_clients.client("s3"))


@app.get("/links")
def get_link() -> dict[str, Any]:
    uri = app.current_event.get_query_string_value("uri")
    # A client per call (signing is offline): ARTIFACT_LINK_ENDPOINT is read each time
    return console_api.artifact_link(uri, settings=load_settings(), presigner=console_api.presigning_client())


@app.post("/uploads")
def post_upload() -> dict[str, Any]:
    return console_api.upload_form(
        json_object_body(app.current_event),
        settings=load_settings(),
        presigner=console_api.presigning_client(),
    )


@app.get("/models/<name>/<version>/report")
def get_model_report(name: str, version: str) -> dict[str, Any] | tuple[dict[str, Any], int]:
    found = _registry().describe_version(unquote(name), int(version)) if version.isdigit() else None
    if found is None:
        return {"message": f"no version {version} of {unquote(name)}"}, 404
    return console_api.model_report(found, s3=aws_clients.client("s3"))


@app.get("/costs")
def get_costs() -> dict[str, Any]:
    return console_api.costs(settings=load_settings(), sfn=aws_clients.client("stepfunctions"))


@instrument(logger, metrics)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)

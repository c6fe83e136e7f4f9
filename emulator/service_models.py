"""AWS's own rules for requests and error names, read from botocore's service models.

botocore's client checks only types and required members (`ParamValidator`); the service checks the
rest (enums, lengths, patterns, ranges) and answers `ValidationException` with a message of a fixed
shape. The local runtime's requests must meet the same bar, or a run that AWS would refuse
passes here. This module holds that knowledge in one place:

* `validate(service, operation, params)` lists every constraint the request breaks, with AWS's
  wording and paths (`Value 'x' at 'resourceConfig.instanceType' failed to satisfy constraint:
  Member must satisfy enum value set: [...]`); `check(...)` raises `RequestInvalid` with them.
* `step_functions_error(service, operation, code)` is the error name Step Functions reports for an
  integration's API error: a modeled exception of the operation as `SageMaker.<Name>Exception` /
  `Lambda.<Name>`, anything else as the service's generic `SageMaker.AmazonSageMakerException` /
  `Lambda.AWSLambdaException` (the SDK's base exception class, which is what Step Functions names).
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape

# Step Functions' name prefix and the SDK's base exception per service (Step Functions developer
# guide, "Handling errors": SageMaker.AmazonSageMakerException, Lambda.AWSLambdaException).
_INTEGRATION_NAMES = {
    "sagemaker": ("SageMaker", "AmazonSageMakerException"),
    "lambda": ("Lambda", "AWSLambdaException"),
}


# Limits the API reference documents but the service model does not carry: (service, operation,
# top-level member) -> (min, max). CreateTransformJob: "The value of MaxPayloadInMB cannot be greater
# than 100 MB" (SageMaker API reference, CreateTransformJob).
_DOCUMENTED_RANGES = {("sagemaker", "CreateTransformJob", "MaxPayloadInMB"): (0, 100)}
# Products of members the API reference bounds together: (service, operation) -> (members, max).
# CreateTransformJob: "The value of MaxConcurrentTransforms * MaxPayloadInMB must not exceed 100 MB"
# (SageMaker API reference, MaxPayloadInMB); a member left out does not enter the product.
_DOCUMENTED_PRODUCTS = {
    ("sagemaker", "CreateTransformJob"): (("MaxConcurrentTransforms", "MaxPayloadInMB"), 100),
}


class RequestInvalid(Exception):
    """A request the service rejects before doing anything (HTTP 400, `ValidationException`)."""

    def __init__(self, problems: list[str], code: str = "ValidationException"):
        count = len(problems)
        message = f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(problems)
        super().__init__(message)
        self.code = code
        self.message = message
        self.problems = problems


@functools.cache
def service_model(service: str) -> ServiceModel:
    """botocore's model of `service`, read through boto3's default session, whose loader the
    clients share (a model another client loaded already is not parsed again)."""
    import boto3

    return (
        boto3.DEFAULT_SESSION._session.get_service_model(service)
        if boto3.DEFAULT_SESSION
        else (botocore.session.get_session().get_service_model(service))
    )


@functools.cache
def operation_model(service: str, operation: str) -> OperationModel:
    return service_model(service).operation_model(operation)


def step_functions_error(service: str, operation: str, code: str) -> str:
    """The ASL error name of an API error `code` raised by `operation` of an integrated service."""
    prefix, generic = _INTEGRATION_NAMES[service]
    modeled = {shape.name for shape in operation_model(service, operation).error_shapes}
    if code in modeled:
        return f"{prefix}.{code if code.endswith('Exception') else code + 'Exception'}"
    return f"{prefix}.{generic}"


def check(service: str, operation: str, params: dict[str, Any]) -> None:
    problems = validate(service, operation, params)
    if problems:
        raise RequestInvalid(problems)


def validate(service: str, operation: str, params: Any) -> list[str]:
    shape = operation_model(service, operation).input_shape
    if shape is None:
        return [] if not params else ["the operation takes no parameters"]
    problems: list[str] = []
    _check(shape, params, "", problems)
    for (svc, op, member), (low, high) in _DOCUMENTED_RANGES.items():
        value = params.get(member) if isinstance(params, dict) and (svc, op) == (service, operation) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not low <= value <= high:
            bound = f"less than or equal to {high}" if value > high else f"greater than or equal to {low}"
            problems.append(
                f"Value '{value}' at '{_path('', member)}' failed to satisfy constraint: "
                f"Member must have value {bound}"
            )
    problems.extend(_product_problems(service, operation, params))
    return problems


def _product_problems(service: str, operation: str, params: Any) -> list[str]:
    """The documented bound on a product of members (e.g. concurrency times payload), if broken."""
    if (service, operation) not in _DOCUMENTED_PRODUCTS or not isinstance(params, dict):
        return []
    members, high = _DOCUMENTED_PRODUCTS[(service, operation)]
    values = [params.get(m) for m in members]
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(numbers) != len(members):
        return []
    product = math.prod(numbers)
    if product <= high:
        return []
    named = " * ".join(f"{m} ({v:g})" for m, v in zip(members, numbers, strict=True))
    return [f"The value of {named} = {product:g} must not exceed {high}"]


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:  # a Java-only construct: the service checks it, we cannot
        return None


def _path(parent: str, member: str) -> str:
    name = member[:1].lower() + member[1:]
    return f"{parent}.{name}" if parent else name


def _show(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 200 else text[:200] + "..."


def _check(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    """Append to `problems` every constraint of `shape` that `value` (at `path`) breaks."""
    if value is None:
        return
    where = f"at '{path}'" if path else "at the request"
    if isinstance(shape, StructureShape):
        _check_structure(shape, value, path, where, problems)
    elif isinstance(shape, ListShape):
        _check_list(shape, value, path, where, problems)
    elif isinstance(shape, MapShape):
        _check_map(shape, value, path, where, problems)
    elif shape.type_name == "string":
        _check_string(shape, value, where, problems)
    elif shape.type_name in ("integer", "long", "float", "double"):
        _check_number(shape, value, where, problems)
    elif shape.type_name == "boolean" and not isinstance(value, bool):
        problems.append(_broken(value, where, "Member must be a boolean"))


def _broken(value: Any, where: str, constraint: str) -> str:
    return f"Value '{_show(value)}' {where} failed to satisfy constraint: {constraint}"


def _check_structure(shape: StructureShape, value: Any, path: str, where: str, problems: list[str]) -> None:
    if not isinstance(value, dict):
        problems.append(_broken(value, where, "Member must be an object"))
        return
    for name in shape.required_members:
        if value.get(name) is None:
            problems.append(
                f"Value null at '{_path(path, name)}' failed to satisfy constraint: Member must not be null"
            )
    for name, member_value in value.items():
        member = shape.members.get(name)
        if member is None:
            problems.append(f"'{_path(path, name)}' is not a member of {shape.name} (unknown field)")
        else:
            _check(member, member_value, _path(path, name), problems)


def _check_list(shape: ListShape, value: Any, path: str, where: str, problems: list[str]) -> None:
    if not isinstance(value, (list, tuple)):
        problems.append(_broken(value, where, "Member must be a list"))
        return
    _length(shape, len(value), value, where, problems)
    for index, item in enumerate(value, start=1):
        _check(shape.member, item, f"{path}.{index}.member", problems)


def _check_map(shape: MapShape, value: Any, path: str, where: str, problems: list[str]) -> None:
    if not isinstance(value, dict):
        problems.append(_broken(value, where, "Member must be a map"))
        return
    _length(shape, len(value), value, where, problems)
    for key, item in value.items():
        _check(shape.key, key, f"{path}.key", problems)
        _check(shape.value, item, f"{path}.{key}", problems)


def _check_string(shape: Shape, value: Any, where: str, problems: list[str]) -> None:
    if not isinstance(value, str):
        problems.append(_broken(value, where, "Member must be a string"))
        return
    if shape.enum and value not in shape.enum:
        problems.append(
            _broken(value, where, f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
        )
    _length(shape, len(value), value, where, problems)
    pattern = shape.metadata.get("pattern")
    compiled = _compiled(pattern) if pattern else None
    if compiled is not None and not compiled.fullmatch(value):
        problems.append(_broken(value, where, f"Member must satisfy regular expression pattern: {pattern}"))


def _check_number(shape: Shape, value: Any, where: str, problems: list[str]) -> None:
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not numeric or (shape.type_name in ("integer", "long") and not float(value).is_integer()):
        problems.append(_broken(value, where, "Member must be a number"))
        return
    if isinstance(value, float) and not math.isfinite(value):
        problems.append(_broken(value, where, "Member must be finite"))
        return
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and value < low:
        problems.append(_broken(value, where, f"Member must have value greater than or equal to {low}"))
    if high is not None and value > high:
        problems.append(_broken(value, where, f"Member must have value less than or equal to {high}"))


def _length(shape: Shape, size: int, value: Any, where: str, problems: list[str]) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and size < low:
        problems.append(
            f"Value '{_show(value)}' {where} failed to satisfy constraint: Member must have length greater "
            f"than or equal to {low}"
        )
    if high is not None and size > high:
        problems.append(
            f"Value '{_show(value)}' {where} failed to satisfy constraint: Member must have length less than "
            f"or equal to {high}"
        )

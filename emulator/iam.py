"""IAM on the local runtime: every AWS call the project's code makes is authorised against its role.

moto enforces no IAM by default, so a role missing a statement passed every local run and failed
on AWS (RecordOutcome could not read the drift report). Here each caller acts as the role the
template gives it, with its policies as the SAM transform writes them (policy templates expanded):

* a Lambda handler, for its whole invocation, as its function's role;
* the state machine's integrations (SageMaker jobs, lambda:invoke, sns:publish) as its `Role`;
* a SageMaker job's staging and outputs as the job's `RoleArn` (a transform: its model's role).

A call the role's policies do not allow raises `AccessDenied`/`AccessDeniedException` naming the
role, the action and the resource, as AWS says it. Policies are evaluated by moto's own evaluator
(`moto.iam.access_control.IAMPolicy`: Allow/Deny, wildcards, NotAction, StringEquals conditions on
the context keys given here); this module only says which action and resource a request is.
Calls made by the runtime itself (uploads on the user's behalf, state saving) carry no role and are
not checked, like the user's own administrator credentials.

An operation this module cannot map to an IAM action fails loudly (`UnmappedOperation`): a new
call in a handler needs its line here, instead of passing unchecked.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from emulator.template import ACCOUNT_ID, PARTITION, REGION, Resolver, load_yaml, sam_transform


class UnmappedOperation(RuntimeError):
    """An AWS operation the local IAM check does not know how to authorise."""


@dataclass(frozen=True)
class Role:
    """One IAM role of the stack: its logical id, ARN and identity-policy documents."""

    logical_id: str
    name: str
    arn: str
    policies: tuple[str, ...]  # JSON documents, resolved

    @property
    def session_arn(self) -> str:
        return f"arn:{PARTITION}:sts::{ACCOUNT_ID}:assumed-role/{self.name}/local"


@dataclass(frozen=True)
class Request:
    """What IAM evaluates: an action on a resource, with the condition keys the request sets."""

    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()


class AccessDenied(Exception):
    """The caller's role does not allow the request (raised as the service's own error by callers)."""

    def __init__(self, role: Role, request: Request):
        self.role = role
        self.request = request
        self.message = (
            f"User: {role.session_arn} is not authorized to perform: {request.action} on resource: "
            f"{request.resource} because no identity-based policy allows the {request.action} action"
        )
        super().__init__(self.message)


# --------------------------------------------------------------------------------------------
# The stack's roles, from the SAM transform of template.yaml
# --------------------------------------------------------------------------------------------
class Roles:
    """The roles of the transformed template and who acts as which."""

    def __init__(self, roles: dict[str, Role], functions: dict[str, str], state_machine: str | None):
        self.by_logical_id = roles
        self.by_arn = {role.arn: role for role in roles.values()}
        self.function_roles = functions  # function logical id -> role logical id
        self.state_machine_role = state_machine

    def for_function(self, logical_id: str) -> Role | None:
        role = self.function_roles.get(logical_id)
        return self.by_logical_id.get(role) if role else None

    def for_state_machine(self) -> Role | None:
        return self.by_logical_id.get(self.state_machine_role) if self.state_machine_role else None

    def for_arn(self, arn: str | None) -> Role:
        """The stack's role with this ARN; any other ARN is a role with no policies (all denied)."""
        found = self.by_arn.get(arn or "")
        if found is None:
            name = str(arn or "unknown").rsplit("/", 1)[-1]
            return Role(f"(not in the template: {arn})", name, str(arn), ())
        return found

    def as_json(self) -> dict[str, Any]:
        return {
            "roles": {
                k: {"name": r.name, "arn": r.arn, "policies": list(r.policies)}
                for k, r in self.by_logical_id.items()
            },
            "functions": self.function_roles,
            "state_machine": self.state_machine_role,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Roles:
        roles = {
            k: Role(k, v["name"], v["arn"], tuple(v["policies"]))
            for k, v in (data.get("roles") or {}).items()
        }
        return cls(roles, dict(data.get("functions") or {}), data.get("state_machine"))


def _cache_file(root: Path, parameters: dict[str, str], cache_dir: Path) -> Path:
    text = (root / "template.yaml").read_text()
    digest = hashlib.sha256((text + json.dumps(parameters, sort_keys=True)).encode()).hexdigest()[:16]
    return cache_dir / f"roles-{digest}.json"


class PendingRoles:
    """The roles, read when first asked for: the build process (`start_roles_build`) runs on the
    other core through the runtime's start-up, and the first handler or job is what waits for it."""

    def __init__(self, root: Path, parameters: dict[str, str], cache_dir: Path) -> None:
        self._args = (root, dict(parameters), cache_dir)
        self._build = start_roles_build(root, parameters, cache_dir)
        self._roles: Roles | None = None
        self._lock = threading.Lock()

    def get(self) -> Roles:
        with self._lock:
            if self._roles is None:
                build, self._build = self._build, None
                finish_roles_build(build)
                root, parameters, cache_dir = self._args
                self._roles = load_roles(root, parameters, cache_dir)
            return self._roles

    def close(self) -> None:
        """Stop a build nobody waited for (a start-up that failed half-way)."""
        if self._build is not None and self._build.poll() is None:
            self._build.kill()
            self._build.wait()

    def for_function(self, logical_id: str) -> Role | None:
        return self.get().for_function(logical_id)

    def for_state_machine(self) -> Role | None:
        return self.get().for_state_machine()

    def for_arn(self, arn: str | None) -> Role:
        return self.get().for_arn(arn)


RoleSource = Roles | PendingRoles  # what the runtime's parts ask "which role?"


def load_roles(root: Path, parameters: dict[str, str], cache_dir: Path | None = None) -> Roles:
    """The transformed template's roles, resolved with the local names (cached by template content
    and parameters: importing the SAM translator alone takes about half a second)."""
    cached = _cache_file(root, parameters, cache_dir) if cache_dir is not None else None
    if cached is not None and cached.exists():
        return Roles.from_json(json.loads(cached.read_text()))
    roles = _roles_from_template(load_yaml((root / "template.yaml").read_text()), parameters)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(roles.as_json()))
        tmp.replace(cached)
    return roles


def start_roles_build(
    root: Path, parameters: dict[str, str], cache_dir: Path
) -> subprocess.Popen[str] | None:
    """Build the roles cache in a process of its own (on the other core, while moto starts here);
    None when it is cached already. `load_roles` with the same arguments then reads the cache."""
    if _cache_file(root, parameters, cache_dir).exists():
        return None
    return subprocess.Popen(
        [sys.executable, "-m", "emulator.iam", str(root), json.dumps(parameters), str(cache_dir)],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish_roles_build(build: subprocess.Popen[str] | None) -> None:
    """Wait for `start_roles_build`'s process; its failure is the template's error, said as it said it."""
    if build is None:
        return
    _, stderr = build.communicate()
    if build.returncode != 0:
        lines = [line for line in stderr.strip().splitlines() if line.strip()]
        raise RuntimeError(
            f"reading the template's IAM roles failed: {lines[-1] if lines else build.returncode}"
        )


def _roles_from_template(template: dict[str, Any], parameters: dict[str, str]) -> Roles:
    cfn = sam_transform(template, parameters)
    resolver = Resolver(cfn, parameters, strict=False)
    roles: dict[str, Role] = {}
    for logical_id, resource in (cfn.get("Resources") or {}).items():
        if resource.get("Type") != "AWS::IAM::Role":
            continue
        props = resource.get("Properties") or {}
        documents = [p["PolicyDocument"] for p in props.get("Policies") or []]
        resolved = [json.dumps(resolver.resolve(d)) for d in documents]
        roles[logical_id] = Role(
            logical_id,
            resolver.physical_name(logical_id),
            resolver.get_att(logical_id, "Arn"),
            tuple(resolved),
        )
    functions: dict[str, str] = {}
    state_machine = None
    for logical_id, resource in (cfn.get("Resources") or {}).items():
        props = resource.get("Properties") or {}
        # a function names its role in `Role`, a state machine in `RoleArn`
        role = _role_reference(props.get("Role") or props.get("RoleArn"), roles, resolver)
        if role is None:
            continue
        if resource.get("Type") == "AWS::Lambda::Function":
            functions[logical_id] = role
        elif resource.get("Type") == "AWS::StepFunctions::StateMachine":
            state_machine = role
    return Roles(roles, functions, state_machine)


def _role_reference(value: Any, roles: dict[str, Role], resolver: Resolver) -> str | None:
    if value is None:
        return None
    arn = resolver.resolve(value)
    return next((lid for lid, role in roles.items() if role.arn == arn), None)


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------
def is_allowed(role: Role, request: Request) -> bool:
    """Identity-policy evaluation: an explicit Deny wins, else any Allow, else implicitly denied."""
    from moto.iam.access_control import PermissionResult

    allowed = False
    context = dict(request.context) or None
    for document in role.policies:
        result = _policy(document).is_action_permitted(request.action, request.resource, None, context)
        if result == PermissionResult.DENIED:
            return False
        allowed = allowed or result == PermissionResult.PERMITTED
    return allowed


@functools.cache
def _policy(document: str) -> Any:
    """A policy document parsed once (moto's IAMPolicy parses its JSON when built)."""
    from moto.iam.access_control import IAMPolicy

    return IAMPolicy(document)


def authorize(role: Role, requests: list[Request]) -> None:
    for request in requests:
        if not is_allowed(role, request):
            raise AccessDenied(role, request)


_acting = threading.local()


def current_role() -> Role | None:
    return getattr(_acting, "role", None)


def act_as_for_this_thread(role: Role | None) -> None:
    """The calling thread (a Lambda handler's own thread) acts as `role` from now on."""
    _acting.role = role


def bind_role(client: Any, role: Role | None) -> None:
    """Every call this client makes is made as `role`, whatever thread makes it."""
    client._local_iam_role = role


def role_of(client: Any) -> Role | None:
    """The role a call on `client` is made as: the client's own, else the calling thread's."""
    return getattr(client, "_local_iam_role", None) or current_role()


@contextlib.contextmanager
def acting_as(role: Role | None) -> Iterator[None]:
    """Every AWS call this thread makes inside the block is made as `role` (None: not checked)."""
    previous = current_role()
    _acting.role = role
    try:
        yield
    finally:
        _acting.role = previous


# --------------------------------------------------------------------------------------------
# botocore requests -> IAM requests
# --------------------------------------------------------------------------------------------
def _s3_object(bucket: str, key: str) -> str:
    return f"arn:{PARTITION}:s3:::{bucket}/{key}"


def _s3_bucket(bucket: str) -> str:
    return f"arn:{PARTITION}:s3:::{bucket}"


def _copy_source(source: Any) -> tuple[str, str, str | None]:
    if isinstance(source, dict):
        return source["Bucket"], source["Key"], source.get("VersionId")
    from urllib.parse import parse_qs, unquote, urlsplit

    split = urlsplit(str(source))
    bucket, key = unquote(split.path).lstrip("/").split("/", 1)
    return bucket, key, (parse_qs(split.query).get("versionId") or [None])[0]


_S3_OBJECT_ACTIONS = {
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "DeleteObject": "s3:DeleteObject",
    "GetObjectTagging": "s3:GetObjectTagging",
    "PutObjectTagging": "s3:PutObjectTagging",
}


def _s3_requests(operation: str, params: dict[str, Any]) -> list[Request]:
    bucket = params.get("Bucket", "")
    if operation in ("GetObject", "HeadObject"):
        action = "s3:GetObjectVersion" if params.get("VersionId") else "s3:GetObject"
        return [Request(action, _s3_object(bucket, params["Key"]))]
    if operation in ("CopyObject", "UploadPartCopy"):
        src_bucket, src_key, version = _copy_source(params["CopySource"])
        read = "s3:GetObjectVersion" if version else "s3:GetObject"
        return [
            Request(read, _s3_object(src_bucket, src_key)),
            Request("s3:PutObject", _s3_object(bucket, params["Key"])),
        ]
    if operation in _S3_OBJECT_ACTIONS:
        return [Request(_S3_OBJECT_ACTIONS[operation], _s3_object(bucket, params["Key"]))]
    if operation in ("ListObjectsV2", "ListObjects"):
        return [Request("s3:ListBucket", _s3_bucket(bucket), (("s3:prefix", params.get("Prefix") or ""),))]
    if operation == "ListObjectVersions":
        return [
            Request("s3:ListBucketVersions", _s3_bucket(bucket), (("s3:prefix", params.get("Prefix") or ""),))
        ]
    if operation == "DeleteObjects":
        keys = [o["Key"] for o in (params.get("Delete") or {}).get("Objects") or []]
        return [Request("s3:DeleteObject", _s3_object(bucket, k)) for k in keys]
    if operation == "GetBucketVersioning":
        return [Request("s3:GetBucketVersioning", _s3_bucket(bucket))]
    raise UnmappedOperation(
        f"the local IAM check has no mapping for S3 {operation}: add it to emulator/iam.py"
    )


def _table(name: str) -> str:
    if name.startswith("arn:"):
        return name
    return f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}"


_TRANSACT_WRITE = {
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
}


def _dynamodb_requests(operation: str, params: dict[str, Any]) -> list[Request]:
    if operation == "TransactWriteItems":
        requests = []
        for item in params.get("TransactItems") or []:
            ((kind, body),) = item.items()
            requests.append(Request(_TRANSACT_WRITE[kind], _table(body["TableName"])))
        return requests
    if operation == "TransactGetItems":
        return [
            Request("dynamodb:GetItem", _table(i["Get"]["TableName"]))
            for i in params.get("TransactItems") or []
        ]
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [Request(f"dynamodb:{operation}", _table(t)) for t in params.get("RequestItems") or {}]
    table = params.get("TableName")
    if not table:
        raise UnmappedOperation(f"the local IAM check has no mapping for DynamoDB {operation}")
    resource = _table(table)
    if params.get("IndexName"):
        resource += f"/index/{params['IndexName']}"
    return [Request(f"dynamodb:{operation}", resource)]


def _states_requests(operation: str, params: dict[str, Any]) -> list[Request]:
    for member in ("executionArn", "stateMachineArn"):
        if member in params:
            return [Request(f"states:{operation}", params[member])]
    raise UnmappedOperation(f"the local IAM check has no mapping for Step Functions {operation}")


def requests_for(service: str, operation: str, params: dict[str, Any]) -> list[Request]:
    """The IAM requests one API call amounts to (e.g. CopyObject: read the source, write the copy)."""
    if service == "s3":
        return _s3_requests(operation, params)
    if service == "dynamodb":
        return _dynamodb_requests(operation, params)
    if service == "stepfunctions":
        return _states_requests(operation, params)
    if service == "sns" and operation == "Publish":
        return [Request("sns:Publish", params.get("TopicArn") or params.get("TargetArn") or "*")]
    if service == "cloudwatch" and operation == "PutMetricData":
        return [
            Request("cloudwatch:PutMetricData", "*", (("cloudwatch:namespace", params.get("Namespace", "")),))
        ]
    raise UnmappedOperation(
        f"the local IAM check has no mapping for {service} {operation}: add it to emulator/iam.py"
    )


def denied_error(exc: AccessDenied, service: str, operation: str) -> ClientError:
    """The error the service answers: S3 `AccessDenied`, SNS `AuthorizationError`, the JSON services
    `AccessDeniedException`."""
    code = {"s3": "AccessDenied", "sns": "AuthorizationError"}.get(service, "AccessDeniedException")
    return ClientError(
        {"Error": {"Code": code, "Message": exc.message}, "ResponseMetadata": response_metadata(403)},
        operation,
    )


def response_metadata(status: int) -> dict[str, Any]:
    """What botocore puts in an error response (callers such as moto's integrations read RequestId)."""
    import uuid

    return {"HTTPStatusCode": status, "RequestId": str(uuid.uuid4()), "HTTPHeaders": {}, "RetryAttempts": 0}


if __name__ == "__main__":  # python -m emulator.iam ROOT PARAMETERS_JSON CACHE_DIR (start_roles_build)
    load_roles(Path(sys.argv[1]), json.loads(sys.argv[2]), Path(sys.argv[3]))

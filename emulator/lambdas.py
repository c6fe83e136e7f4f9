"""The template's Lambda functions, invoked in-process with Lambda's contract.

`LocalLambda.invoke(FunctionName=..., Payload=...)` answers like boto3's `lambda.invoke`: the
handler's return value JSON-encoded in `Payload`, or `FunctionError: "Unhandled"` with
`{"errorType", "errorMessage", "trace"}` when it raised (`errorType` is the exception's class
name, which Step Functions turns into the ASL error name). So the interpreter's own Lambda
integration (Retry, Catch, history events) runs unchanged on top of it.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from emulator import iam
from emulator.faults import Faults
from emulator.template import REGION, FunctionSpec, LocalStack

# Powertools reads these at import time: keep it offline and quiet about X-Ray.
OFFLINE_ENVIRONMENT = {
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_DEV": "0",
    "POWERTOOLS_METRICS_NAMESPACE": "ReadmissionLocal",
    "POWERTOOLS_SERVICE_NAME": "readmission-local",
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
}


@dataclass
class LambdaContext:
    """The attributes of the Python runtime's context object that handlers use."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline: float

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def function_environment(stack: LocalStack) -> dict[str, str]:
    """One process hosts every function, so their environments must agree (the contract says so)."""
    merged: dict[str, str] = {}
    for spec in stack.functions.values():
        for key, value in spec.environment.items():
            if key in merged and merged[key] != value:
                raise ValueError(
                    f"functions disagree on {key} ({merged[key]!r} vs {value!r} in {spec.logical_id}); "
                    "the local runtime hosts them in one process"
                )
            merged[key] = value
    return {**OFFLINE_ENVIRONMENT, **merged}


class LocalLambda:
    """Resolves a function name or ARN to the template's handler and calls it in this process."""

    def __init__(
        self,
        stack: LocalStack,
        faults: Faults | None = None,
        log: Callable[[str], None] | None = None,
        roles: iam.RoleSource | None = None,
    ):
        self.stack = stack
        self.roles = roles  # each handler runs as its function's role (None: unchecked, unit tests)
        self.faults = faults or Faults()
        self.log = log
        self.invocations: list[tuple[str, float]] = []  # (function name, seconds)
        self._handlers: dict[str, Callable[[Any, Any], Any]] = {}
        self._lock = threading.Lock()
        self._code_roots = sorted({str(spec.code_uri) for spec in stack.functions.values()})
        # what close() puts back: callers in this process (tests) may hold these modules and paths
        self._saved_path = list(sys.path)
        self._saved_modules = {
            name: module for name, module in sys.modules.items() if self._is_handler_module(module)
        }
        for path in self._code_roots:
            if path in sys.path:
                sys.path.remove(path)
            sys.path.insert(0, path)  # as Lambda does: the CodeUri is the import root
        self.cold_start()

    def cold_start(self) -> None:
        """Forget every imported handler module, as new Lambda execution environments would.

        Handlers cache settings and clients at module level (Lambda reuses a container between
        invocations); a configuration change, or another stack in the same process, needs fresh ones.
        """
        with self._lock:
            self._handlers.clear()
            for name, module in list(sys.modules.items()):
                if self._is_handler_module(module):
                    del sys.modules[name]

    def _is_handler_module(self, module: Any) -> bool:
        origin = getattr(module, "__file__", None) or ""
        return any(origin.startswith(root + os.sep) for root in self._code_roots)

    def close(self) -> None:
        """Leave the process as it was: its own sys.path, and the handler modules it had before."""
        self.cold_start()
        sys.path[:] = self._saved_path
        sys.modules.update(self._saved_modules)

    def handler_for(self, spec: FunctionSpec) -> Callable[[Any, Any], Any]:
        with self._lock:
            if spec.logical_id not in self._handlers:
                module_name, _, attr = spec.handler.rpartition(".")
                module = importlib.import_module(module_name)
                handler = getattr(module, attr, None)
                if not callable(handler):
                    raise ValueError(
                        f"{spec.logical_id}: {spec.handler} is not a callable in {spec.code_uri}"
                    )
                self._handlers[spec.logical_id] = handler
            return self._handlers[spec.logical_id]

    @staticmethod
    def _name_of(name_or_arn: str) -> str:
        # "fn", "fn:alias", "123456789012:function:fn", "arn:aws:lambda:r:a:function:fn[:alias]"
        if ":function:" in name_or_arn:
            return name_or_arn.split(":function:", 1)[1].split(":")[0]
        return name_or_arn.split(":")[0]

    def invoke(self, FunctionName: str, Payload: bytes | str | None = None, **_: Any) -> dict[str, Any]:
        """boto3 `lambda.invoke`, synchronous (RequestResponse) semantics."""
        name = self._name_of(FunctionName)
        spec = self.stack.function_by_name(name)
        request_id = str(uuid.uuid4())
        if spec is None:
            raise _client_error(
                "ResourceNotFoundException", f"Function not found: {FunctionName}", 404, request_id
            )
        caller = iam.current_role()  # the state machine's role when its lambda:invoke calls
        if caller is not None:
            qualified = FunctionName if FunctionName.startswith("arn:") else spec.arn
            try:
                iam.authorize(caller, [iam.Request("lambda:InvokeFunction", qualified)])
            except iam.AccessDenied as exc:
                raise _client_error("AccessDeniedException", exc.message, 403, request_id) from None
        injected = self.faults.take_lambda_error(spec.logical_id, spec.name)
        if injected is not None and injected[0].startswith("Lambda."):
            code = injected[0].split(".", 1)[1]
            raise _client_error(code, injected[1], 500 if code == "ServiceException" else 429, request_id)
        raw = Payload.decode() if isinstance(Payload, bytes) else (Payload or "{}")
        event = json.loads(raw)
        context = LambdaContext(
            function_name=spec.name,
            function_version="$LATEST",
            invoked_function_arn=spec.arn,
            memory_limit_in_mb=spec.memory_size,
            aws_request_id=request_id,
            log_group_name=f"/aws/lambda/{spec.name}",
            log_stream_name=f"local/[$LATEST]{request_id.replace('-', '')}",
            deadline=time.monotonic() + spec.timeout,
        )
        started = time.monotonic()
        try:
            if injected is not None:
                raise _named_exception(injected[0], injected[1])
            role = self.roles.for_function(spec.logical_id) if self.roles is not None else None
            if self.roles is not None and role is None:
                raise RuntimeError(f"{spec.logical_id} has no role in the transformed template")
            result = self._call_with_timeout(self.handler_for(spec), event, context, spec.timeout, role)
            try:  # the Python runtime uses plain json: a Decimal is a marshal error there too
                body = json.dumps(result).encode()
            except (TypeError, ValueError) as exc:
                raise _named_exception("Runtime.MarshalError", f"Unable to marshal response: {exc}") from exc
            response: dict[str, Any] = {"StatusCode": 200, "ExecutedVersion": "$LATEST"}
        except Exception as exc:  # Lambda's unhandled-error contract
            body = json.dumps(
                {
                    "errorType": type(exc).__name__ if not isinstance(exc, _TimedOut) else "Sandbox.Timedout",
                    "errorMessage": str(exc),
                    "trace": traceback.format_exception(exc),
                }
            ).encode()
            response = {"StatusCode": 200, "ExecutedVersion": "$LATEST", "FunctionError": "Unhandled"}
            if self.log is not None:
                self.log(f"{spec.logical_id} raised {type(exc).__name__}: {exc}")
        self.invocations.append((spec.name, time.monotonic() - started))
        response["Payload"] = io.BytesIO(body)
        response["ResponseMetadata"] = {"RequestId": request_id, "HTTPStatusCode": 200, "HTTPHeaders": {}}
        return response

    @staticmethod
    def _call_with_timeout(
        handler: Callable[[Any, Any], Any],
        event: Any,
        context: LambdaContext,
        timeout: int,
        role: iam.Role | None = None,
    ) -> Any:
        """Enforce the function's Timeout as Lambda does (the handler thread cannot be killed);
        the handler's AWS calls are made as its role."""
        outcome: dict[str, Any] = {}

        def target() -> None:
            try:
                iam.act_as_for_this_thread(role)
                outcome["result"] = handler(event, context)
            except BaseException as exc:  # re-raised in the caller's thread
                outcome["error"] = exc

        worker = threading.Thread(target=target, name=f"lambda-{context.function_name}", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            raise _TimedOut(f"Task timed out after {timeout:.2f} seconds")
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("result")


class _TimedOut(Exception):
    pass


def _named_exception(name: str, message: str) -> Exception:
    """An exception whose class name is `name` (what a handler raising that error looks like)."""
    return type(name, (Exception,), {})(message)


def _client_error(code: str, message: str, status: int, request_id: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": request_id},
        },
        "Invoke",
    )


def apply_environment(stack: LocalStack) -> dict[str, str]:
    """Set the functions' environment in this process (once, before any handler is imported)."""
    environment = function_environment(stack)
    os.environ.update(environment)
    return environment

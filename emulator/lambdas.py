"""The template's Lambda functions, invoked in-process with Lambda's contract.

`LocalLambda.invoke(FunctionName=..., Payload=...)` answers like boto3's `lambda.invoke`: the
handler's return value JSON-encoded in `Payload`, or `FunctionError: "Unhandled"` with
`{"errorType", "errorMessage", "trace"}` when it raised (`errorType` is the exception's class
name, which Step Functions turns into the ASL error name). So the interpreter's own Lambda
integration (Retry, Catch, history events) runs unchanged on top of it.

What a handler writes to stdout (Powertools Logger's JSON lines, print) is what Lambda sends to
CloudWatch Logs `/aws/lambda/<function>`: here each line goes to `<log_dir>/<function>.log` (with
Lambda's START/END/REPORT lines around each invocation, and the traceback of an unhandled error)
and, whole, to `log_line(function, line)` (the progress printer, which --quiet silences). The
handlers run in this process, so sys.stdout is replaced by a stream that sends each invocation
thread's writes to its own invocation and everything else where it went before.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

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


LogLine = Callable[[str, str], None]  # (function name, one whole line without its newline)

_invocation = threading.local()  # .log: the _InvocationLog of the invocation this thread runs


class _InvocationLog:
    """One invocation's output: split into whole lines, each appended to the function's log file
    and handed to `sink`. A line is never passed on in pieces, so printers cannot interleave it."""

    _file_locks: dict[Path, threading.Lock] = {}
    _file_locks_guard = threading.Lock()

    def __init__(self, function: str, path: Path | None, sink: LogLine | None, fallback: TextIO):
        self.function = function
        self.path = path
        self.sink = sink
        self.fallback = fallback  # neither a file nor a sink (unit tests): the output stays visible
        self._partial = ""
        self._lock = threading.Lock()
        if path is not None:
            with self._file_locks_guard:
                self._file_lock = self._file_locks.setdefault(path, threading.Lock())

    def write(self, text: str) -> int:
        with self._lock:
            lines = (self._partial + text).split("\n")
            self._partial = lines.pop()
        for line in lines:
            self.line(line)
        return len(text)

    def line(self, line: str, to_sink: bool = True) -> None:
        if self.path is not None:
            with self._file_lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.path, "a", encoding="utf-8") as log:
                    log.write(line + "\n")
        if to_sink and self.sink is not None:
            self.sink(self.function, line)
        elif to_sink and self.path is None:
            self.fallback.write(line + "\n")
            self.fallback.flush()

    def close(self) -> None:
        with self._lock:
            rest, self._partial = self._partial, ""
        if rest:
            self.line(rest)


class _StdoutRouter(io.TextIOBase):
    """sys.stdout while handlers are hosted: an invocation thread's writes go to its invocation's
    log, any other thread's to the stream that was sys.stdout before."""

    def __init__(self, fallback: TextIO):
        super().__init__()
        self.fallback = fallback

    def write(self, text: str) -> int:
        log = getattr(_invocation, "log", None)
        if log is None:
            return self.fallback.write(text)
        return log.write(text)

    def flush(self) -> None:
        if getattr(_invocation, "log", None) is None:
            self.fallback.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.fallback.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.fallback, "encoding", "utf-8")


def function_log(log_dir: Path, function_name: str) -> Path:
    """The local stand-in for the log group `/aws/lambda/<function_name>`."""
    return log_dir / f"{function_name}.log"


class LocalLambda:
    """Resolves a function name or ARN to the template's handler and calls it in this process."""

    def __init__(
        self,
        stack: LocalStack,
        faults: Faults | None = None,
        log: Callable[[str], None] | None = None,
        roles: iam.RoleSource | None = None,
        log_dir: Path | None = None,
        log_line: LogLine | None = None,
    ):
        self.stack = stack
        self.log_dir = log_dir  # the functions' log files (None: not kept, unit tests)
        self.log_line = log_line  # each whole line the handlers write, as they write it
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
        self._saved_stdout = sys.stdout
        self._router = _StdoutRouter(sys.stdout)
        sys.stdout = self._router  # Powertools' Logger takes sys.stdout when a handler module is imported
        self.cold_start()

    def _ensure_router(self) -> None:
        """Route again when sys.stdout was replaced after this host started (pytest's capture does)."""
        if not isinstance(sys.stdout, _StdoutRouter):
            self._router = _StdoutRouter(sys.stdout)
            sys.stdout = self._router

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
        if sys.stdout is self._router:  # else someone replaced it after us: theirs to put back
            sys.stdout = self._router.fallback

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
                self._adopt_stdout_handlers()
                self._handlers[spec.logical_id] = handler
            return self._handlers[spec.logical_id]

    def _adopt_stdout_handlers(self) -> None:
        """A logger set up before this host (Powertools reuses a logger's handler on re-import)
        still writes to the old stdout: point it at the router, so its lines are routed too."""
        old = {id(self._saved_stdout), id(sys.__stdout__), id(self._router.fallback)}
        for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
            for handler in getattr(logger, "handlers", []):
                stream = getattr(handler, "stream", None)
                if isinstance(handler, logging.StreamHandler) and id(stream) in old:
                    handler.setStream(self._router)

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
        self._ensure_router()
        output = _InvocationLog(
            spec.name,
            function_log(self.log_dir, spec.name) if self.log_dir is not None else None,
            self.log_line,
            self._router.fallback,
        )
        output.line(f"START RequestId: {request_id} Version: $LATEST", to_sink=False)
        started = time.monotonic()
        try:
            if injected is not None:
                raise _named_exception(injected[0], injected[1])
            role = self.roles.for_function(spec.logical_id) if self.roles is not None else None
            if self.roles is not None and role is None:
                raise RuntimeError(f"{spec.logical_id} has no role in the transformed template")
            handler = self.handler_for(spec)
            result = self._call_with_timeout(handler, event, context, spec.timeout, role, output)
            try:  # the Python runtime uses plain json: a Decimal is a marshal error there too
                body = json.dumps(result).encode()
            except (TypeError, ValueError) as exc:
                raise _named_exception("Runtime.MarshalError", f"Unable to marshal response: {exc}") from exc
            response: dict[str, Any] = {"StatusCode": 200, "ExecutedVersion": "$LATEST"}
        except Exception as exc:  # Lambda's unhandled-error contract
            error_type = type(exc).__name__ if not isinstance(exc, _TimedOut) else "Sandbox.Timedout"
            trace = traceback.format_exception(exc)
            body = json.dumps({"errorType": error_type, "errorMessage": str(exc), "trace": trace}).encode()
            response = {"StatusCode": 200, "ExecutedVersion": "$LATEST", "FunctionError": "Unhandled"}
            # as Lambda's runtime does: the error and its traceback in the function's log, not the terminal
            output.line(f"[ERROR] {error_type}: {exc}", to_sink=False)
            for line in "".join(trace).rstrip("\n").split("\n"):
                output.line(line, to_sink=False)
            if self.log is not None:
                where = f" (log: {output.path})" if output.path is not None else ""
                self.log(f"{spec.logical_id} raised {type(exc).__name__}: {exc}{where}")
        output.close()
        elapsed = time.monotonic() - started
        output.line(f"END RequestId: {request_id}", to_sink=False)
        output.line(f"REPORT RequestId: {request_id}\tDuration: {elapsed * 1000:.2f} ms", to_sink=False)
        self.invocations.append((spec.name, elapsed))
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
        output: _InvocationLog | None = None,
    ) -> Any:
        """Enforce the function's Timeout as Lambda does (the handler thread cannot be killed);
        the handler's AWS calls are made as its role, its stdout goes to `output`."""
        outcome: dict[str, Any] = {}

        def target() -> None:
            _invocation.log = output
            try:
                iam.act_as_for_this_thread(role)
                outcome["result"] = handler(event, context)
            except BaseException as exc:  # re-raised in the caller's thread
                outcome["error"] = exc
            finally:
                _invocation.log = None

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

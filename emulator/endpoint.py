"""One local AWS endpoint (`emulator api --aws-port 4566`): the AWS CLI and boto3 against the runtime.

moto's own server application (`moto.moto_server.werkzeug_app.DomainDispatcherApplication`, what
`ThreadedMotoServer` serves) runs in the runtime's process, so it answers from the very backends the
runtime, its handlers and its interpreter use: S3, Step Functions, DynamoDB, SNS, SQS, EventBridge and
CloudWatch Logs speak AWS's protocols and error codes because moto does. `AwsEndpoint` is a thin WSGI
layer in front of it that adds what moto cannot know:

* **Uploads start the pipeline.** After every S3 write (PutObject, CompleteMultipartUpload, CopyObject)
  the events the template's EventBridge rule captured are collected and each becomes an execution, as
  `emulator run` does (`EventBridgeTrigger.collect`); a key outside the rule's pattern captures nothing.
  The run goes on in the background; the request that uploaded returns at once.
* **SageMaker reads.** `Describe*`/`List*` of training, transform and processing jobs answer from the
  runtime's own jobs (`LocalSageMaker` builds the documents `.sync` receives) and from the jobs saved in
  the state dir (`JobRecords`); moto's SageMaker knows nothing of them. Other SageMaker operations are
  refused: the pipeline starts the jobs.
* **CloudWatch Logs.** The jobs' and the handlers' lines, as they are written, become log events
  (`CloudWatchLogs`), handed to moto's Logs backend when a Logs request arrives (no polling: an idle
  endpoint does nothing) and kept in `<state-dir>/logs/cloudwatch.jsonl` across restarts.
* **No traceback, no reset.** An exception below answers AWS's `InternalFailure` (500); moto's own
  `/moto-api/` (reset, state dumps) is not served: it would wipe the runtime's state.

There is no authentication (any credentials are accepted, as by moto): the endpoint binds to
127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from emulator.template import ACCOUNT_ID, REGION

if TYPE_CHECKING:
    from emulator.runtime import LocalRuntime

DEFAULT_AWS_PORT = 4566  # the port local AWS tools already expect
LOGS_FILE = "logs/cloudwatch.jsonl"
JOBS_FILE = "sagemaker_jobs.json"
JOB_LOG_GROUPS = {
    "TrainingJob": "/aws/sagemaker/TrainingJobs",
    "TransformJob": "/aws/sagemaker/TransformJobs",
    "ProcessingJob": "/aws/sagemaker/ProcessingJobs",
}
_SAGEMAKER_READS = {
    f"{verb}{kind}{suffix}": (verb, kind)
    for kind in JOB_LOG_GROUPS
    for verb, suffix in (("Describe", ""), ("List", "s"))
}
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")
_WSGI = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Document = dict[str, Any]


def _service(environ: dict[str, Any]) -> str:
    """The signing service of a request (its credential scope), e.g. s3, states, sagemaker."""
    found = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", "")) or _SCOPE.search(
        "Credential=" + environ.get("QUERY_STRING", "").partition("X-Amz-Credential=")[2].replace("%2F", "/")
    )
    return found.group(2) if found else ""


def _json_response(
    start_response: Callable[..., Any], status: int, body: Document, headers: dict[str, str] | None = None
) -> list[bytes]:
    data = json.dumps(body, default=str).encode()
    reason = {200: "OK", 400: "Bad Request", 403: "Forbidden", 500: "Internal Server Error"}[status]
    start_response(
        f"{status} {reason}",
        [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("Content-Length", str(len(data))),
            *(headers or {}).items(),
        ],
    )
    return [data]


def _aws_error(start_response: Callable[..., Any], status: int, code: str, message: str) -> list[bytes]:
    """An error as the JSON protocols carry it (botocore reads `__type` and `message`)."""
    return _json_response(
        start_response, status, {"__type": code, "message": message}, {"x-amzn-ErrorType": code}
    )


def _read_body(environ: dict[str, Any]) -> bytes:
    """The request body, read and put back (moto reads it again)."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    _put_body(environ, raw)
    return bytes(raw)


def _put_body(environ: dict[str, Any], raw: bytes) -> None:
    environ["wsgi.input"] = io.BytesIO(raw)
    environ["CONTENT_LENGTH"] = str(len(raw))


# ---- SageMaker jobs -------------------------------------------------------------------------------------
def _seconds(value: Any) -> Any:
    """The documents keep epoch milliseconds (what `.sync` received); the JSON protocol sends seconds."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 10**11:
        return value / 1000
    return value


def _wire(document: Document) -> Document:
    out: Document = {}
    for key, value in document.items():
        if key.endswith(("Time", "Timestamp")):
            out[key] = _seconds(value)
        elif key == "FinalMetricDataList":
            out[key] = [{**m, "Timestamp": _seconds(m.get("Timestamp"))} for m in value]
        elif key == "SecondaryStatusTransitions":
            out[key] = [{k: _seconds(v) for k, v in t.items()} for t in value]
        else:
            out[key] = value
    return out


def _transitions(document: Document) -> list[Document]:
    """SecondaryStatusTransitions of a finished training job: Starting, Training, then how it ended."""
    created, started = (
        document.get("CreationTime"),
        document.get("TrainingStartTime") or document.get("CreationTime"),
    )
    ended = document.get("TrainingEndTime") or document.get("LastModifiedTime") or created
    final = document.get("SecondaryStatus") or document.get("TrainingJobStatus") or "Failed"
    final_message = document.get("FailureReason") or f"Training job {final.lower()}"
    steps = [
        {"Status": "Starting", "StartTime": created, "EndTime": started, "StatusMessage": "Starting the job"},
        {"Status": "Training", "StartTime": started, "EndTime": ended, "StatusMessage": "Training the model"},
        {"Status": final, "StartTime": ended, "EndTime": ended, "StatusMessage": final_message},
    ]
    return [{k: v for k, v in step.items() if v is not None} for step in steps]


class JobRecords:
    """Every SageMaker job the runtime ran: this process's (`LocalSageMaker.jobs`) and the saved ones."""

    def __init__(self, runtime: LocalRuntime):
        self.runtime = runtime
        self._saved: dict[str, Document] = dict(runtime.state.read_json(JOBS_FILE, {}) or {})  # arn -> doc

    def documents(self) -> dict[str, tuple[str, Document]]:
        """ARN -> (kind, Describe* document), running jobs included (status InProgress)."""
        out = {arn: (str(doc["kind"]), dict(doc["document"])) for arn, doc in self._saved.items()}
        for arn, job in list(self.runtime.sagemaker.jobs.items()):
            out[arn] = (job.kind, self._document(job))
        return out

    @staticmethod
    def _document(job: Any) -> Document:
        if job.describe is not None:
            document = dict(job.describe)
        else:  # still running: what DescribeXJob says meanwhile
            document = {
                f"{job.kind}Name": job.name,
                f"{job.kind}Arn": job.arn,
                f"{job.kind}Status": "InProgress",
                "CreationTime": job.created_ms,
                "LastModifiedTime": int(time.time() * 1000),
                **{k: v for k, v in job.request.items() if k not in ("Tags", f"{job.kind}Name")},
            }
            if job.kind == "TrainingJob":
                document["SecondaryStatus"] = "Training"
                document["TrainingStartTime"] = job.created_ms
        if job.kind == "TrainingJob" and "SecondaryStatusTransitions" not in document:
            if job.describe is not None:
                document["SecondaryStatusTransitions"] = _transitions(document)
            else:
                document["SecondaryStatusTransitions"] = [
                    {"Status": "Starting", "StartTime": job.created_ms, "EndTime": job.created_ms},
                    {"Status": "Training", "StartTime": job.created_ms},
                ]
        return document

    def save(self) -> None:
        """Keep the finished jobs' documents in the state dir: the endpoint answers for them after a
        restart."""
        for arn, job in list(self.runtime.sagemaker.jobs.items()):
            if job.describe is not None:
                self._saved[arn] = {"kind": job.kind, "document": self._document(job)}
        self.runtime.state.write_json(JOBS_FILE, self._saved)

    # the operations ------------------------------------------------------------------------------
    def describe(self, kind: str, params: Document) -> Document:
        name = params.get(f"{kind}Name")
        for _arn, (found_kind, document) in self.documents().items():
            if found_kind == kind and document.get(f"{kind}Name") == name:
                return _wire(document)
        raise _ApiError("ValidationException", "Requested resource not found.")

    def list(self, kind: str, params: Document) -> Document:
        rows = [doc for found_kind, doc in self.documents().values() if found_kind == kind]
        contains = str(params.get("NameContains") or "").lower()
        status = params.get("StatusEquals")
        rows = [
            r
            for r in rows
            if contains in str(r.get(f"{kind}Name", "")).lower()
            and (status is None or r.get(f"{kind}Status") == status)
        ]
        sort_by = {"Name": f"{kind}Name", "Status": f"{kind}Status"}.get(
            str(params.get("SortBy")), "CreationTime"
        )

        def order(row: Document) -> Any:
            value = row.get(sort_by)
            return (0, value, "") if isinstance(value, (int, float)) else (1, 0, str(value or ""))

        rows.sort(key=order, reverse=params.get("SortOrder") != "Ascending")
        start = int(params.get("NextToken") or 0)
        limit = int(params.get("MaxResults") or 100)
        end_key = {"TrainingJob": "TrainingEndTime", "TransformJob": "TransformEndTime",
                   "ProcessingJob": "ProcessingEndTime"}[kind]  # fmt: skip
        keys = (f"{kind}Name", f"{kind}Arn", f"{kind}Status", "CreationTime", end_key, "LastModifiedTime",
                "FailureReason")  # fmt: skip
        page = [_wire({k: r[k] for k in keys if r.get(k) is not None}) for r in rows[start : start + limit]]
        out: Document = {f"{kind}Summaries": page}
        if start + limit < len(rows):
            out["NextToken"] = str(start + limit)
        return out


class _ApiError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


# ---- CloudWatch Logs ------------------------------------------------------------------------------------
class CloudWatchLogs:
    """The jobs' and the Lambda handlers' lines as CloudWatch Logs events, where AWS puts them.

    `job_line`/`handler_line` are the runtime's log sinks (called as each line is written): a line is
    appended to `<state-dir>/logs/cloudwatch.jsonl` and queued; `flush()` (before every Logs request)
    puts what is queued into moto's Logs backend. The file is replayed at start: a restart keeps them."""

    def __init__(self, runtime: LocalRuntime):
        self.runtime = runtime
        self.path = runtime.state.root / LOGS_FILE
        self._lock = threading.Lock()
        self._pending: list[Document] = []
        self._streams: set[tuple[str, str]] = set()
        self._groups: set[str] = set()
        if self.path.is_file():
            for line in self.path.read_text(errors="replace").splitlines():
                try:
                    self._pending.append(json.loads(line))
                except ValueError:  # a line cut by a crash: the rest are whole
                    continue
        self._file = open(self.path.parent.mkdir(parents=True, exist_ok=True) or self.path, "a")  # noqa: SIM115

    def close(self) -> None:
        with self._lock:
            self._file.close()

    def _add(self, group: str, stream: str, message: str) -> None:
        event = {"group": group, "stream": stream, "timestamp": int(time.time() * 1000), "message": message}
        with self._lock:
            self._pending.append(event)
            if not self._file.closed:
                self._file.write(json.dumps(event) + "\n")
                self._file.flush()

    def job_line(self, job_name: str, line: str) -> None:
        job = next((j for j in list(self.runtime.sagemaker.jobs.values()) if j.name == job_name), None)
        kind = job.kind if job is not None else "TrainingJob"
        epoch = (job.created_ms if job is not None else int(time.time() * 1000)) // 1000
        self._add(JOB_LOG_GROUPS[kind], f"{job_name}/algo-1-{epoch}", line)

    def handler_line(self, function_name: str, line: str) -> None:
        day = time.strftime("%Y/%m/%d", time.gmtime())
        self._add(f"/aws/lambda/{function_name}", f"{day}/[$LATEST]local", line)

    def flush(self) -> None:
        """Hand the queued events to moto's Logs backend (groups and streams created as needed)."""
        from moto.logs.models import logs_backends

        backend = logs_backends[ACCOUNT_ID][REGION]
        with self._lock:
            pending, self._pending = self._pending, []
        for group in JOB_LOG_GROUPS.values():
            self._ensure(backend, group, None)
        batches: dict[tuple[str, str], list[Document]] = {}
        for event in pending:
            batches.setdefault((event["group"], event["stream"]), []).append(event)
        for (group, stream), events in batches.items():
            self._ensure(backend, group, stream)
            backend.put_log_events(
                group, stream, [{"timestamp": e["timestamp"], "message": e["message"]} for e in events]
            )

    def _ensure(self, backend: Any, group: str, stream: str | None) -> None:
        if group not in self._groups:
            if group not in backend.groups:
                backend.create_log_group(group, {})
            self._groups.add(group)
        if stream is not None and (group, stream) not in self._streams:
            if stream not in backend.groups[group].streams:
                backend.create_log_stream(group, stream)
            self._streams.add((group, stream))


# ---- the endpoint ---------------------------------------------------------------------------------------
class AwsEndpoint:
    """moto's server application for the runtime's backends, with the additions of the module docstring."""

    def __init__(self, runtime: LocalRuntime, host: str = "127.0.0.1", port: int = DEFAULT_AWS_PORT):
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        self.runtime = runtime
        self.host = host
        self.port = port
        self.moto: _WSGI = DomainDispatcherApplication(create_backend_app)
        self.jobs = runtime.jobs
        self.logs = runtime.cloudwatch
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> AwsEndpoint:
        import socket

        from werkzeug.serving import make_server

        # bound here, so a taken port is an OSError for the caller (werkzeug would print and exit)
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        with socket.create_server((self.host, self.port), family=family) as bound:
            self._server = make_server(
                self.host, self.port, self, threaded=True, request_handler=_Handler, fd=bound.fileno()
            )
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="aws-endpoint", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> AwsEndpoint:
        return self.start()

    def __exit__(self, *_: Any) -> None:
        self.stop()

    # ---- WSGI ------------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            return self._dispatch(environ, start_response)
        except Exception as exc:  # a client gets AWS's answer to a fault, never a traceback
            self.runtime.progress.note(f"aws endpoint: {type(exc).__name__}: {exc}")
            return _aws_error(start_response, 500, "InternalFailure", f"{type(exc).__name__}: {exc}")

    def _dispatch(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/moto-api"):
            return _aws_error(start_response, 403, "AccessDenied", "moto's own API is not served here")
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith("SageMaker."):
            return self._sagemaker(target.split(".", 1)[1], environ, start_response)
        if target.startswith("Logs_"):
            self.logs.flush()
            if target.endswith(".FilterLogEvents"):
                refused = self._stream_prefix_as_names(environ, start_response)
                if refused is not None:
                    return refused
        if target == "AWSStepFunctions.StartExecution":
            refused = self._execution_input_refused(environ, start_response)
            if refused is not None:
                return refused
        service = _service(environ)
        if service == "s3" and environ.get("REQUEST_METHOD") in ("PUT", "POST"):
            body = list(self.moto(environ, start_response))  # the object is stored once this returns
            self.runtime.start_uploaded()
            return body
        if not target:
            return self.moto(environ, start_response)
        return self._json_protocol(environ, start_response)

    def _json_protocol(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """A JSON-protocol call (X-Amz-Target) to moto; a fault moto answers without an error code (a
        5xx) becomes AWS's InternalFailure, so every answer names its error."""
        answered: list[Any] = []

        def recorded(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answered.append((status, headers, exc_info))
            return lambda _data: None

        body = b"".join(self.moto(environ, recorded))
        status, headers, _ = answered[0]
        if status.startswith("5"):
            return _aws_error(start_response, 500, "InternalFailure", body.decode("utf-8", "replace")[:500])
        start_response(status, headers)
        return [body]

    @staticmethod
    def _stream_prefix_as_names(
        environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes] | None:
        """FilterLogEvents' `logStreamNamePrefix`, which moto ignores (it filters by logStreamNames
        only): rewritten to the names of the group's streams with that prefix, as CloudWatch selects."""
        from moto.logs.models import logs_backends

        raw = _read_body(environ)
        try:
            request = json.loads(raw or b"{}")
        except ValueError:
            return None  # moto answers a body that is not JSON
        if not isinstance(request, dict) or "logStreamNamePrefix" not in request:
            return None
        if "logStreamNames" in request:
            return _aws_error(
                start_response, 400, "InvalidParameterException",
                "Cannot specify both logStreamNames and logStreamNamePrefix",
            )  # fmt: skip
        prefix = str(request.pop("logStreamNamePrefix"))
        group = logs_backends[ACCOUNT_ID][REGION].groups.get(str(request.get("logGroupName")))
        names = sorted(
            name for name in (group.streams if group is not None else {}) if name.startswith(prefix)
        )
        if group is not None and not names:
            return _json_response(start_response, 200, {"events": [], "searchedLogStreams": []})
        if names:
            request["logStreamNames"] = names
        _put_body(environ, json.dumps(request).encode())
        return None

    @staticmethod
    def _execution_input_refused(
        environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes] | None:
        """StartExecution whose `input` is not JSON: Step Functions' InvalidExecutionInput (moto fails
        parsing it). The body is read here and put back for moto."""
        raw = _read_body(environ)
        try:
            request = json.loads(raw or b"{}")
            if isinstance(request, dict) and "input" in request:
                json.loads(request["input"])
        except (ValueError, TypeError) as exc:
            return _aws_error(
                start_response,
                400,
                "InvalidExecutionInput",
                f"Invalid State Machine Execution Input: '{exc}'",
            )
        return None

    def _sagemaker(
        self, operation: str, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        from emulator import service_models

        if operation not in _SAGEMAKER_READS:
            return _aws_error(
                start_response,
                400,
                "ValidationException",
                f"{operation} is not served by the local endpoint: it answers Describe*/List* of the "
                "training, transform and processing jobs the pipeline ran",
            )
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b"{}"
        try:
            params = json.loads(raw or b"{}")
        except ValueError:
            return _aws_error(start_response, 400, "SerializationException", "the request body is not JSON")
        if not isinstance(params, dict):
            return _aws_error(
                start_response, 400, "SerializationException", "the request body is not an object"
            )
        problems = service_models.validate("sagemaker", operation, params)
        if problems:
            count = len(problems)
            message = f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(problems)
            return _aws_error(start_response, 400, "ValidationException", message)
        verb, kind = _SAGEMAKER_READS[operation]
        try:
            body = self.jobs.describe(kind, params) if verb == "Describe" else self.jobs.list(kind, params)
        except _ApiError as error:
            return _aws_error(start_response, 400, error.code, str(error))
        return _json_response(start_response, 200, body)


def _handler_base() -> type:
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    return MotoRequestHandler


class _Handler(_handler_base()):  # type: ignore[misc]
    """moto's request handler (it normalises what the AWS CLI sends), quiet: no line per request."""

    def log_request(self, *_: Any, **__: Any) -> None:
        return None

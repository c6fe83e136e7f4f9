"""The deployed REST API, locally: API Gateway proxy events for the template's `Api` routes.

`ApiGateway.request(method, path, body)` turns a request into the REST (v1) proxy event API
Gateway sends a Lambda proxy integration and calls the routed function through `LocalLambda`,
so `GET /models` here is exactly the code the deployed API runs. `serve(runtime, port)` puts that
behind a threaded `http.server` (what `sam local start-api` cannot do for this template:
aws-sam-cli #2754), beside the web console (console/, served at `/` as CloudFront serves it on AWS)
and the objects the API's presigned links name (`/_s3/<bucket>/<key>`, S3's side of a link).
"""

from __future__ import annotations

import base64
import email.policy
import json
import mimetypes
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from emulator.lambdas import LocalLambda
from emulator.template import ACCOUNT_ID, REGION, LocalStack

if TYPE_CHECKING:
    from emulator.runtime import LocalRuntime

STAGE = "Prod"
JSON = {"Content-Type": "application/json"}
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's REST payload limit (413 beyond)
READ_SECONDS = 30.0  # a request body must arrive within this (a bounded read, never a hang)
CONSOLE_DIR = Path(__file__).resolve().parents[1] / "console"
# The console's files, by the path the browser asks for: exactly these (no directory is served), and the
# chart library from console/node_modules (`make console-deps`: npm ci), as the deploy uploads them.
CONSOLE_FILES = {
    "/": CONSOLE_DIR / "index.html",
    "/index.html": CONSOLE_DIR / "index.html",
    "/app.js": CONSOLE_DIR / "app.js",
    "/style.css": CONSOLE_DIR / "style.css",
    "/vendor/chart.umd.min.js": CONSOLE_DIR / "node_modules" / "chart.js" / "dist" / "chart.umd.min.js",
}
LOCAL_CONSOLE_CONFIG = {
    "apiBase": "",
    "auth": None,
}  # same origin, no sign-in (IAM/Cognito not checked locally)
LINKS_PATH = "/_s3/"
MAX_LOCAL_UPLOAD_BYTES = 512 * 1024 * 1024  # a presigned POST's file, read into memory locally
UPLOADS_PREFIX = "uploads/"  # functions/settings.py UPLOADS_PREFIX: where POST /uploads stages a dataset


@dataclass
class Route:
    method: str  # GET, POST, ..., or ANY
    resource: str  # /models/{name}/{version}
    function: str  # logical id
    pattern: re.Pattern[str]


def _compile(resource: str) -> re.Pattern[str]:
    regex = ""
    for part in resource.strip("/").split("/"):
        if part.startswith("{") and part.endswith("+}"):
            regex += f"/(?P<{part[1:-2]}>.+)"
        elif part.startswith("{") and part.endswith("}"):
            regex += f"/(?P<{part[1:-1]}>[^/]+)"
        elif part:
            regex += "/" + re.escape(part)
    return re.compile(f"^{regex or '/'}/?$")


@dataclass
class ApiResponse:
    status: int
    headers: dict[str, str]  # one value per name (the last of several)
    body: str
    multi_value_headers: dict[str, list[str]] = field(default_factory=dict)  # every value, as sent

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class ApiGateway:
    """Routes from every function's `Type: Api` events in the template."""

    def __init__(self, stack: LocalStack, lambdas: LocalLambda):
        self.lambdas = lambdas
        self.routes: list[Route] = []
        for spec in stack.functions.values():
            for event in spec.events.values():
                if event.get("Type") != "Api":
                    continue
                props = event.get("Properties") or {}
                resource = props["Path"]
                self.routes.append(
                    Route(
                        str(props.get("Method", "ANY")).upper(), resource, spec.logical_id, _compile(resource)
                    )
                )

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            found = route.pattern.match(path)
            if found and route.method in (method.upper(), "ANY"):
                return route, found.groupdict()
        return None

    def request(
        self, method: str, url: str, body: str | bytes | None = None, headers: dict[str, str] | None = None
    ) -> ApiResponse:
        split = urlsplit(url)
        path = split.path or "/"
        matched = self.match(method, path)
        if matched is None:  # what API Gateway answers for an unknown route
            return ApiResponse(
                403,
                dict(JSON),
                json.dumps({"message": "Missing Authentication Token"}),
            )
        route, path_parameters = matched
        query = parse_qs(split.query, keep_blank_values=True)
        text, encoded = _event_body(body)
        headers = dict(headers or {})
        request_id = str(uuid.uuid4())
        event = {
            "resource": route.resource,
            "path": path,
            "httpMethod": method.upper(),
            "headers": headers or None,
            "multiValueHeaders": {k: [v] for k, v in headers.items()} or None,
            "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
            "multiValueQueryStringParameters": query or None,
            "pathParameters": path_parameters or None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": route.resource,
                "httpMethod": method.upper(),
                "path": f"/{STAGE}{path}",
                "stage": STAGE,
                "requestId": request_id,
                "accountId": ACCOUNT_ID,
                "apiId": "local",
                "protocol": "HTTP/1.1",
                "requestTimeEpoch": int(time.time() * 1000),
                "identity": {"sourceIp": "127.0.0.1", "userAgent": headers.get("User-Agent", "")},
            },
            "body": text or None,
            "isBase64Encoded": encoded,
        }
        response = self.lambdas.invoke(FunctionName=route.function, Payload=json.dumps(event).encode())
        payload = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError") or not isinstance(payload, dict) or "statusCode" not in payload:
            # a proxy integration whose function fails or answers malformed is a 502 on API Gateway
            return ApiResponse(502, dict(JSON), json.dumps({"message": "Internal server error"}))
        out_headers = _response_headers(payload)
        out_body = payload.get("body") or ""
        if payload.get("isBase64Encoded"):
            out_body = base64.b64decode(out_body).decode("utf-8", "replace")
        return ApiResponse(
            int(payload["statusCode"]), {k: v[-1] for k, v in out_headers.items() if v}, out_body, out_headers
        )


def _event_body(body: str | bytes | None) -> tuple[str | None, bool]:
    """The proxy event's `body` and `isBase64Encoded`: text as text; bytes that are not UTF-8 base64
    encoded, as API Gateway passes a binary body (the function decides what it makes of it)."""
    if not isinstance(body, bytes):
        return body, False
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), True


def _response_headers(payload: dict[str, Any]) -> dict[str, list[str]]:
    """A proxy response's `headers` and `multiValueHeaders` merged as API Gateway merges them: a name
    in both keeps the multiValueHeaders values only."""
    merged = {str(k): [str(v)] for k, v in (payload.get("headers") or {}).items()}
    for key, values in (payload.get("multiValueHeaders") or {}).items():
        merged[str(key)] = [str(v) for v in (values if isinstance(values, list) else [values])]
    return merged


class _Refused(Exception):
    """A request API Gateway answers itself, before any function runs."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _content_length(value: str | None) -> int:
    """The Content-Length header as a byte count; _Refused when it is not one API Gateway accepts."""
    if value is None:
        return 0
    if not value.strip().isdigit():  # "abc", "-1", "1e3", "+5": not a length
        raise _Refused(400, f"invalid Content-Length {value!r}")
    length = int(value)
    if length > MAX_PAYLOAD_BYTES:
        raise _Refused(413, f"request body of {length} bytes is over the {MAX_PAYLOAD_BYTES}-byte limit")
    return length


def serve(
    runtime: LocalRuntime, host: str = "127.0.0.1", port: int = 3000, read_timeout: float = READ_SECONDS
) -> ThreadingHTTPServer:
    """Serve the API until interrupted. Executions it starts run (and are saved) in this process.

    Every request is answered with a status and a JSON body; a request body that does not arrive
    within `read_timeout` seconds is answered 400 and the connection closed."""
    gateway = runtime.api

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        default_request_version = "HTTP/1.0"  # an unparseable request line still gets a status line
        timeout = read_timeout  # each read of the socket, also an idle keep-alive connection's

        def _handle(self) -> None:
            path = urlsplit(self.path).path
            if self.command in ("GET", "HEAD") and (path in CONSOLE_FILES or path == "/config.json"):
                self._send_console(path)
                return
            if self.command in ("GET", "HEAD") and path.startswith(LINKS_PATH):
                self._send(linked_object(runtime, self.path))
                return
            if self.command == "POST" and path.startswith(LINKS_PATH):
                self._receive_upload(path)
                return
            try:
                body = self._body()
            except _Refused as refused:
                self.close_connection = True  # what is left of the request cannot be trusted
                self._send(ApiResponse(refused.status, dict(JSON), json.dumps({"message": str(refused)})))
                return
            self._send(gateway.request(self.command, self.path, body, dict(self.headers.items())))

        def _body(self) -> bytes | None:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                raise _Refused(411, "a request body must be sent with a Content-Length")
            length = _content_length(self.headers.get("Content-Length"))
            if not length:
                return None
            try:
                body = self.rfile.read(length)
            except TimeoutError:
                body = b""
            if len(body) < length:
                raise _Refused(400, f"request body shorter than its Content-Length ({length} bytes)")
            return body

        def _receive_upload(self, path: str) -> None:
            """S3's side of a presigned POST (POST /uploads), with the S3 trigger an upload fires."""
            self.close_connection = True
            try:
                length = int(self.headers.get("Content-Length") or "")
            except ValueError:
                self._send(ApiResponse(411, dict(JSON), json.dumps({"message": "Content-Length required"})))
                return
            if length > MAX_LOCAL_UPLOAD_BYTES:
                message = {"message": f"EntityTooLarge: over {MAX_LOCAL_UPLOAD_BYTES} bytes locally"}
                self._send(ApiResponse(400, dict(JSON), json.dumps(message)))
                return
            body = self.rfile.read(length)
            self._send(uploaded_object(runtime, path, self.headers.get("Content-Type", ""), body))

        def _send_console(self, path: str) -> None:
            if path == "/config.json":
                data, kind = json.dumps(LOCAL_CONSOLE_CONFIG).encode(), "application/json"
            else:
                file = CONSOLE_FILES[path]
                if not file.is_file():
                    missing = {"message": f"{file} is missing: run `make console-deps`"}
                    self._send(ApiResponse(404, dict(JSON), json.dumps(missing)))
                    return
                data = file.read_bytes()
                kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            self._send_bytes(200, {"Content-Type": kind, "Cache-Control": "no-cache"}, data)

        def _send_bytes(self, status: int, headers: dict[str, str], data: bytes) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _send(self, response: ApiResponse) -> None:
            data = response.body.encode()
            self.send_response(response.status)
            every = response.multi_value_headers or {k: [v] for k, v in response.headers.items()}
            for key, values in every.items():
                if key.lower() != "content-length":
                    for value in values:
                        self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def __getattr__(self, name: str) -> Any:
            # every method, HEAD, OPTIONS, TRACE and unknown ones too, goes to the gateway, which
            # answers one no route takes as API Gateway does (403); http.server's answer is a 501 page
            if name.startswith("do_"):
                return self._handle
            raise AttributeError(name)

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            """http.server's own refusals (a bad request line, a header too long) in JSON, not HTML."""
            self.close_connection = True
            text = message or self.responses.get(code, ("error",))[0]
            self._send(ApiResponse(code, dict(JSON), json.dumps({"message": text})))

        def log_message(self, format: str, *args: Any) -> None:
            runtime.progress.note(f"api {self.address_string()} {format % args}")

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    # The API's presigned links name this server (path-style), which serves them from the local bucket
    # (GET /links reads the variable on each call: a second server in one process gets its own links)
    os.environ["ARTIFACT_LINK_ENDPOINT"] = f"http://{host}:{server.server_address[1]}{LINKS_PATH.rstrip('/')}"

    def watch() -> None:  # stream and persist the executions the API (or the AWS endpoint) starts
        from emulator import interpreter

        seen, pending = -1, True
        while not stopped.is_set():
            # idle (no execution unrecorded, no history event since the last look) costs no API call:
            # an idle server stays under 1% of a core
            version = interpreter.history_version()
            if pending or version != seen:
                seen, pending = version, False
                executions = runtime.sfn.list_executions(stateMachineArn=runtime.state_machine_arn)
                for item in executions["executions"]:
                    if runtime.is_recorded(item["name"]):
                        continue
                    pending = True  # running, or ended and recorded just below: looked at again
                    history = runtime.sfn.get_execution_history(
                        executionArn=item["executionArn"], maxResults=1000
                    )
                    runtime.progress.events(item["name"], history["events"])
                if runtime.record_finished():
                    runtime.save()
            stopped.wait(0.5)

    stopped = threading.Event()
    server.stopped = stopped  # type: ignore[attr-defined]
    threading.Thread(target=watch, name="api-watch", daemon=True).start()
    return server


def linked_object(runtime: LocalRuntime, url: str) -> ApiResponse:
    """A presigned link's object, as S3 would answer it: within its X-Amz-Expires, under `runs/` of the
    stack's bucket (what GET /links signs). The signature itself is not checked locally (as IAM is not
    checked on the local API); an expired or foreign link is S3's 403."""
    split = urlsplit(url)
    bucket, _, key = unquote(split.path[len(LINKS_PATH) :]).partition("/")
    query = {k: v[-1] for k, v in parse_qs(split.query).items()}
    try:
        signed = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        expires = signed + timedelta(seconds=int(query["X-Amz-Expires"]))
    except (KeyError, ValueError):
        return ApiResponse(403, dict(JSON), json.dumps({"message": "not a presigned link"}))
    if datetime.now(UTC) > expires:
        return ApiResponse(403, dict(JSON), json.dumps({"message": "Request has expired"}))
    if bucket != runtime.stack.bucket or not key.startswith("runs/"):
        return ApiResponse(403, dict(JSON), json.dumps({"message": "Access Denied"}))
    import boto3

    s3 = boto3.client("s3", region_name=REGION)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return ApiResponse(404, dict(JSON), json.dumps({"message": "NoSuchKey"}))
    kind = (
        "text/csv"
        if key.endswith((".csv", ".out"))
        else mimetypes.guess_type(key)[0] or "application/octet-stream"
    )
    name = key.rsplit("/", 1)[-1]
    return ApiResponse(
        200,
        {"Content-Type": kind, "Content-Disposition": f'attachment; filename="{name}"'},
        body.decode("utf-8", "replace"),
    )


def _form_fields(content_type: str, body: bytes) -> dict[str, bytes]:
    """The parts of a multipart/form-data body by name (the browser's FormData of a presigned POST)."""
    message = BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    fields: dict[str, bytes] = {}
    if not message.is_multipart():
        return fields
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            fields[name] = part.get_payload(decode=True) or b""
    return fields


def _unmet_condition(policy: dict[str, Any], fields: dict[str, bytes]) -> str | None:
    """The first of the policy's exact-match conditions (`{"key": ...}`, `{"Content-Type": ...}`,
    `["eq", "$field", ...]`) the form breaks, as S3 checks them; None when all hold. The bucket is the
    URL's (checked by the caller) and `x-amz-*` fields are the signature's, not checked locally."""
    for condition in policy.get("conditions", []):
        if isinstance(condition, dict):
            pairs = list(condition.items())
        elif isinstance(condition, list) and len(condition) == 3 and condition[0] == "eq":
            pairs = [(str(condition[1]).lstrip("$"), condition[2])]
        else:
            continue
        for name, expected in pairs:
            if name == "bucket" or name.lower().startswith("x-amz-"):
                continue
            given = next((v for k, v in fields.items() if k.lower() == name.lower()), None)
            if given is None or given.decode("utf-8", "replace") != expected:
                return name
    return None


def uploaded_object(runtime: LocalRuntime, path: str, content_type: str, body: bytes) -> ApiResponse:
    """A presigned POST's file into the local bucket, as S3 takes it (204), within the policy's expiry,
    size range and exact-match conditions (key, Content-Type), under the prefixes POST /uploads signs
    for (the console's uploads/ staging prefix, the scoring prefix); an upload the S3 trigger's rule
    matches then starts a run, as on AWS. The signature is not checked locally."""
    bucket = unquote(path[len(LINKS_PATH) :]).strip("/")
    fields = _form_fields(content_type, body)
    try:
        policy = json.loads(base64.b64decode(fields["policy"]))
        key = fields["key"].decode("utf-8")
        data = fields["file"]
        expires = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    except (KeyError, ValueError, TypeError):
        return ApiResponse(400, dict(JSON), json.dumps({"message": "not a presigned POST with a file"}))
    if datetime.now(UTC) > expires:
        return ApiResponse(
            403, dict(JSON), json.dumps({"message": "Invalid according to Policy: Policy expired"})
        )
    ranges = [
        c for c in policy.get("conditions", []) if isinstance(c, list) and c[:1] == ["content-length-range"]
    ]
    if any(not c[1] <= len(data) <= c[2] for c in ranges):
        return ApiResponse(400, dict(JSON), json.dumps({"message": "EntityTooSmall or EntityTooLarge"}))
    unmet = _unmet_condition(policy, fields)
    if unmet is not None:
        message = {"message": f"Invalid according to Policy: Policy Condition failed: {unmet}"}
        return ApiResponse(403, dict(JSON), json.dumps(message))
    prefixes = (UPLOADS_PREFIX, runtime.scoring_prefix)
    if bucket != runtime.stack.bucket or not key.startswith(prefixes) or ".." in key.split("/"):
        return ApiResponse(403, dict(JSON), json.dumps({"message": "Access Denied"}))
    import boto3

    boto3.client("s3", region_name=REGION).put_object(Bucket=bucket, Key=key, Body=data)
    for execution_input in runtime.trigger.collect():  # the upload trigger, as EventBridge delivers it
        runtime.start(execution_input)
    return ApiResponse(204, {}, "")

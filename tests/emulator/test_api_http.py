"""The local API Gateway and its HTTP server on a stub function: every request gets a status and JSON.

No moto here: the routed function is a stub that echoes the proxy event it was given, so these tests
pin what API Gateway itself does (headers, bodies, unknown routes, malformed requests).
"""

from __future__ import annotations

import base64
import io
import json
import socket
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from emulator.api import ApiGateway, serve


class StubLambdas:
    """`LocalLambda.invoke` for one function: answers with `answer(event)`."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.answer = lambda event: {
            "statusCode": 200,
            "multiValueHeaders": {"Content-Type": ["application/json"]},
            "body": json.dumps({"body": event["body"], "isBase64Encoded": event["isBase64Encoded"]}),
        }

    def invoke(self, FunctionName: str, Payload: bytes, **_: Any) -> dict[str, Any]:
        event = json.loads(Payload)
        self.events.append(event)
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(self.answer(event)).encode())}


def _stack() -> Any:
    events = {
        "Post": {"Type": "Api", "Properties": {"Path": "/echo", "Method": "post"}},
        "Get": {"Type": "Api", "Properties": {"Path": "/echo/{id}", "Method": "get"}},
    }
    return SimpleNamespace(functions={"Echo": SimpleNamespace(logical_id="Echo", events=events)})


@pytest.fixture(scope="module")
def stub() -> StubLambdas:
    return StubLambdas()


@pytest.fixture
def lambdas(stub: StubLambdas) -> StubLambdas:
    stub.reset()
    return stub


@pytest.fixture(scope="module")
def gateway(stub: StubLambdas) -> ApiGateway:
    return ApiGateway(_stack(), stub)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def server(gateway: ApiGateway) -> Iterator[tuple[str, int]]:
    sfn = SimpleNamespace(list_executions=lambda **_: {"executions": []})
    runtime = SimpleNamespace(
        api=gateway,
        progress=SimpleNamespace(note=lambda text: None),
        sfn=sfn,
        state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:x",
        is_recorded=lambda name: True,
        record_finished=lambda: [],
        save=lambda: None,
    )
    httpd = serve(runtime, port=0, read_timeout=1.0)  # type: ignore[arg-type]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.stopped.set()  # type: ignore[attr-defined]
        httpd.server_close()


def exchange(
    address: tuple[str, int], raw: bytes, timeout: float = 120.0
) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read one response until the server closes or Content-Length is met.

    `timeout` only turns a hang into a failure: an answer that comes when the server's own read
    timeout (1 s) expires passes however busy the machine is."""
    with socket.create_connection(address, timeout=timeout) as conn:
        conn.sendall(raw)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            assert chunk, f"connection closed without a response: {data!r}"
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        if not raw.startswith(b"HEAD "):
            while len(body) < length:
                chunk = conn.recv(65536)
                assert chunk, "connection closed in the middle of the body"
                body += chunk
        return status, headers, body


def request(method: str, path: str, body: bytes = b"", extra: str = "") -> bytes:
    length = f"Content-Length: {len(body)}\r\n" if body or method == "POST" else ""
    return f"{method} {path} HTTP/1.1\r\nHost: x\r\n{length}{extra}Connection: close\r\n\r\n".encode() + body


def test_handler_multi_value_headers_are_copied_as_api_gateway_does(
    gateway: ApiGateway, lambdas: StubLambdas, server: tuple[str, int]
) -> None:
    lambdas.answer = lambda event: {
        "statusCode": 201,
        "headers": {"X-One": "single", "X-Both": "from-headers"},
        "multiValueHeaders": {"Content-Type": ["application/json"], "X-Both": ["a", "b"]},
        "body": "{}",
    }

    response = gateway.request("POST", "/echo", "{}")
    status, headers, _ = exchange(server, request("POST", "/echo", b"{}"))

    assert response.status == 201
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-One"] == "single"
    # both given: multiValueHeaders win for that key (API Gateway's merge)
    assert response.multi_value_headers["X-Both"] == ["a", "b"]
    assert status == 201
    assert headers["content-type"] == "application/json"
    assert headers["x-one"] == "single"


def test_a_body_that_is_not_utf8_reaches_the_function_base64_encoded(
    gateway: ApiGateway, lambdas: StubLambdas, server: tuple[str, int]
) -> None:
    raw = b'{"datasetUri": "\xff\xfe"}'

    status, headers, body = exchange(server, request("POST", "/echo", raw))
    direct = gateway.request("POST", "/echo", raw)

    assert status == 200 and headers["content-type"] == "application/json"
    echoed = json.loads(body)
    assert echoed["isBase64Encoded"] is True
    assert base64.b64decode(echoed["body"]) == raw
    assert direct.json() == echoed
    # text stays text
    assert gateway.request("POST", "/echo", '{"a": "é"}'.encode()).json() == {
        "body": '{"a": "é"}',
        "isBase64Encoded": False,
    }


@pytest.mark.parametrize(
    ("length", "sent", "status"),
    [
        ("abc", b"{}", 400),
        ("-1", b"{}", 400),
        ("1e3", b"{}", 400),
        ("10", b"{}", 400),  # longer than the body: answered when the read times out, not a hang
        (str(11 * 1024 * 1024), b"{}", 413),  # over API Gateway's 10 MB payload limit
    ],
)
def test_a_bad_content_length_is_answered_with_json_not_a_crash_or_a_hang(
    server: tuple[str, int], lambdas: StubLambdas, length: str, sent: bytes, status: int
) -> None:
    raw = f"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode() + sent

    answered, headers, body = exchange(server, raw)

    assert answered == status
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["message"]
    assert lambdas.events == []  # the function never saw it


def test_a_chunked_body_is_refused_with_411(server: tuple[str, int]) -> None:
    raw = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"

    status, headers, body = exchange(server, raw)

    assert status == 411 and headers["content-type"] == "application/json"
    assert json.loads(body)["message"]


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "TRACE", "CONNECT", "PROPFIND", "GET", "DELETE"])
def test_an_unrouted_method_is_api_gateways_403_in_json(server: tuple[str, int], method: str) -> None:
    status, headers, body = exchange(server, request(method, "/echo"))

    assert status == 403
    assert headers["content-type"] == "application/json"
    if method != "HEAD":  # a HEAD answer has the headers of one, never a body
        assert json.loads(body) == {"message": "Missing Authentication Token"}


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /echo/1 HTTP/9.9\r\nHost: x\r\n\r\n",
        b"GET /echo/1 HTTP/1.1\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n",
    ],
)
def test_a_malformed_request_is_answered_in_json(server: tuple[str, int], raw: bytes) -> None:
    status, headers, body = exchange(server, raw)

    assert 400 <= status < 500 or status == 505
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["message"]

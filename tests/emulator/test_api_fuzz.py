"""Bounded fuzz runs of the local API on the real project, through `serve()` to the template's ApiFunction.

Two fuzzers, one server:
- schemathesis (from docs/openapi.json): requests that follow the document (positive) and requests that
  break it (negative), each response checked by schemathesis' own checks: no 5xx, a status and a
  Content-Type the document declares, a body that conforms to the declared schema, and negative data
  refused with a 4xx;
- hypothesis (below): what no schema describes, methods and paths no route takes, broken
  Content-Length headers, bodies that are not UTF-8 or not JSON.
Every request gets a status under 500 with a JSON body: no dropped connection, no HTML page, no crash
of the server or of the handler (a 502).

Deterministic (derandomized, a fixed number of examples); `make fuzz-api` runs both with more.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from emulator.api import CONSOLE_FILES, serve
from emulator.progress import Progress
from emulator.runtime import LocalRuntime

PROJECT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
# per operation and mode: 7 cases x 25 = 175 requests in the suite
SCHEMA_EXAMPLES = max(1, int(os.environ.get("FUZZ_EXAMPLES", "175")) // 7)
SCHEMA = schemathesis.openapi.from_path(PROJECT / "docs" / "openapi.json")
SCHEMA_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
OPERATIONS = [(found.ok().method.upper(), found.ok().path) for found in SCHEMA.get_all_operations()]
OPERATION_IDS = {
    (method.upper(), path): operation["operationId"]
    for path, item in SCHEMA.raw_schema["paths"].items()
    for method, operation in item.items()
}
READ_TIMEOUT = 0.2  # a body shorter than its Content-Length is answered after this


@pytest.fixture(scope="module")
def address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, str]]:
    with LocalRuntime(
        PROJECT, tmp_path_factory.mktemp("fuzz-state"), progress=Progress(verbose_jobs=False)
    ) as rt:
        server = serve(rt, port=0, read_timeout=READ_TIMEOUT)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield "127.0.0.1", server.server_address[1], rt.stack.bucket
        finally:
            server.shutdown()
            server.stopped.set()  # type: ignore[attr-defined]
            server.server_close()


SEGMENT = st.text(alphabet="abcXYZ019-_.~%:é ", min_size=0, max_size=12).map(
    lambda text: "".join(c if c.isascii() and c != " " else "%20" for c in text)
)
METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE"]) | st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=8
)
PATHS = st.one_of(
    st.just("/training"),
    st.builds(lambda s: f"/executions/{s}", SEGMENT),
    st.just("/models"),
    st.builds(lambda a, b: f"/models/{a}/{b}", SEGMENT, SEGMENT),
    st.builds(lambda a, b: f"/{a}/{b}", SEGMENT, SEGMENT),
).flatmap(lambda path: st.sampled_from([path, path + "/", path + "?x=1&x=2&y", path + "?%ff"]))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)


def training_bodies(bucket: str) -> st.SearchStrategy[bytes]:
    """Bodies near the schema of POST /training (so the validation past the JSON parse is reached)."""
    uris = st.sampled_from(
        [f"s3://{bucket}/datasets/x.csv", f"s3://{bucket}/other/x.csv", "s3://elsewhere/datasets/x.csv", "x"]
    )
    fields = st.fixed_dictionaries(
        {},
        optional={
            "datasetUri": uris | JSON_VALUES,
            "scoreUri": uris | JSON_VALUES,
            "modelName": st.text(max_size=70) | JSON_VALUES,
            "algorithm": st.sampled_from(["LogisticRegression", "RandomForest", "XGBoost"]) | JSON_VALUES,
            "hyperparameters": JSON_VALUES,
            "idempotencyKey": st.text(max_size=140) | JSON_VALUES,
        },
    )
    return (fields | JSON_VALUES).map(lambda value: json.dumps(value).encode())


@st.composite
def requests(draw: st.DrawFn, bucket: str) -> tuple[str, str, dict[str, str], bytes]:
    method = draw(METHODS)
    path = draw(PATHS)
    body = draw(st.just(b"") | st.binary(max_size=64) | training_bodies(bucket))
    headers: dict[str, str] = {"Host": "localhost"}
    length = draw(st.sampled_from(["exact", "exact", "missing", "abc", "-1", "1e3", "longer", "shorter", ""]))
    if length == "exact":
        headers["Content-Length"] = str(len(body))
    elif length == "longer":
        headers["Content-Length"] = str(len(body) + 5)
    elif length == "shorter":  # the rest of the body is the start of the next request: answered anyway
        headers["Content-Length"] = str(max(0, len(body) - 1))
    elif length != "missing":
        headers["Content-Length"] = length
    if draw(st.booleans()):
        headers["Content-Type"] = draw(
            st.sampled_from(["application/json", "text/plain", "application/octet-stream"])
        )
    if draw(st.booleans()):
        headers["Idempotency-Key"] = draw(st.text(alphabet="abcdefghijklmnop0123456789-", max_size=140))
    return method, path, headers, body


def send(address: tuple[str, int], request: tuple[str, str, dict[str, str], bytes]) -> tuple[int, str, bytes]:
    method, path, headers, body = request
    conn = http.client.HTTPConnection(*address, timeout=120)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for key, value in headers.items():
            conn.putheader(key, value)
        conn.putheader("Connection", "close")
        conn.endheaders(body or None)
        response = conn.getresponse()  # a dropped connection raises here: a failure
        return response.status, response.getheader("Content-Type") or "", response.read()
    finally:
        conn.close()


def is_console_file(method: str, target: str) -> bool:
    """Whether a GET/HEAD asks for one of the console's files: http.server collapses a target's leading
    slashes (`//` is `/`, CPython's open-redirect guard), so a generated `//` is the console's page."""
    path = "/" + target.split("?", 1)[0].lstrip("/")
    return method in ("GET", "HEAD") and path in CONSOLE_FILES


def test_every_generated_request_gets_a_json_answer_under_500(address: tuple[str, int, str]) -> None:
    host, port, bucket = address

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(requests(bucket))
    def answered(request: tuple[str, str, dict[str, str], bytes]) -> None:
        status, content_type, body = send((host, port), request)

        assert status < 500, (request, status, body[:500])
        if is_console_file(request[0], request[1]):
            assert status == 200 and not content_type.startswith("application/json"), (request, content_type)
            return
        assert content_type.startswith("application/json"), (request, status, content_type)
        if request[0] != "HEAD":
            json.loads(body)

    answered()


# GET /models, /executions, /datasets and /costs take no input: nothing of it can break the document
NO_INPUT = {"/models", "/executions", "/datasets", "/costs"}
CASES = [
    (method, path, mode)
    for method, path in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if not (mode is GenerationMode.NEGATIVE and path in NO_INPUT)
]


@pytest.mark.parametrize(
    ("method", "path", "mode"), CASES, ids=[f"{OPERATION_IDS[(m, p)]}-{mode}" for m, p, mode in CASES]
)
def test_schemathesis_finds_every_answer_conforms_to_the_openapi_document(
    address: tuple[str, int, str], method: str, path: str, mode: GenerationMode
) -> None:
    host, port, _bucket = address
    operation = SCHEMA[path][method]

    @settings(
        max_examples=SCHEMA_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(operation.as_strategy(generation_mode=mode))
    def answered(case: schemathesis.Case) -> None:
        response = case.call_and_validate(base_url=f"http://{host}:{port}", checks=SCHEMA_CHECKS, timeout=120)

        # content_type_conformance passes a response without a Content-Type: this one does not
        content_types = response.headers.get("content-type") or [""]
        assert content_types[0].startswith("application/json"), (case, response.headers)
        json.loads(response.content)

    answered()

"""A bounded fuzz run of the local API on the real project: generated methods, paths, headers and bodies
through `serve()` to the template's ApiFunction. Every request gets a status under 500 with a JSON
body: no dropped connection, no HTML page, no crash of the server or of the handler (a 502).

Deterministic (derandomized, a fixed number of examples); `make fuzz-api` runs it with more.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.api import serve
from emulator.progress import Progress
from emulator.runtime import LocalRuntime

PROJECT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
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
    conn = http.client.HTTPConnection(*address, timeout=10)
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
        assert content_type.startswith("application/json"), (request, status, content_type)
        if request[0] != "HEAD":
            json.loads(body)

    answered()

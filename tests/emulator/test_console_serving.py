"""`python -m emulator api` serves the console beside the API, and the objects its links name."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from emulator.api import CONSOLE_FILES, serve
from emulator.progress import Progress
from emulator.runtime import LocalRuntime

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, LocalRuntime]]:
    with LocalRuntime(
        PROJECT, tmp_path_factory.mktemp("console-state"), progress=Progress(verbose_jobs=False)
    ) as rt:
        http = serve(rt, port=0)
        threading.Thread(target=http.serve_forever, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{http.server_address[1]}", rt
        finally:
            http.shutdown()
            http.stopped.set()  # type: ignore[attr-defined]
            http.server_close()


def fetch(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


def test_the_console_is_served_at_the_root_with_a_same_origin_config(server: tuple[str, Any]) -> None:
    base, _ = server
    status, kind, page = fetch(f"{base}/")
    assert (status, kind) == (200, "text/html")
    assert b'<script src="app.js">' in page
    status, kind, config = fetch(f"{base}/config.json")
    assert status == 200
    assert json.loads(config) == {"apiBase": "", "auth": None}
    for path in ("/app.js", "/style.css"):
        assert fetch(base + path)[0] == 200


def test_only_the_consoles_own_files_are_served(server: tuple[str, Any]) -> None:
    base, _ = server
    for path in (
        "/console/app.js",
        "/../template.yaml",
        "/package.json",
        "/node_modules/chart.js/package.json",
    ):
        status, kind, _ = fetch(base + path)
        assert status == 403, path  # what API Gateway answers a path no route takes
        assert kind.startswith("application/json")


def test_the_chart_library_comes_from_the_npm_install(server: tuple[str, Any]) -> None:
    base, _ = server
    status, _, body = fetch(f"{base}/vendor/chart.umd.min.js")
    if CONSOLE_FILES["/vendor/chart.umd.min.js"].is_file():
        assert status == 200
        assert b"Chart" in body
    else:  # the answer says how to get it
        assert status == 404
        assert "make console-deps" in json.loads(body)["message"]


def test_a_link_from_get_links_downloads_the_runs_object(server: tuple[str, LocalRuntime]) -> None:
    base, runtime = server
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.put_object(Bucket=runtime.stack.bucket, Key="runs/r1/predictions.csv", Body=b"encounter_id\n1\n")
    uri = f"s3://{runtime.stack.bucket}/runs/r1/predictions.csv"

    status, _, body = fetch(f"{base}/links?uri={uri}")
    assert status == 200
    link = json.loads(body)["url"]
    assert link.startswith(f"{base}/_s3/")
    status, kind, data = fetch(link)

    assert (status, kind, data) == (200, "text/csv", b"encounter_id\n1\n")


def test_an_expired_or_foreign_link_is_refused(server: tuple[str, LocalRuntime]) -> None:
    base, runtime = server
    old = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y%m%dT%H%M%SZ")
    now = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    bucket = runtime.stack.bucket
    expired = f"{base}/_s3/{bucket}/runs/r1/predictions.csv?X-Amz-Date={old}&X-Amz-Expires=300"
    outside = f"{base}/_s3/{bucket}/datasets/a.csv?X-Amz-Date={now}&X-Amz-Expires=300"
    unsigned = f"{base}/_s3/{bucket}/runs/r1/predictions.csv"

    for url in (expired, outside, unsigned):
        status, kind, _ = fetch(url)
        assert status == 403, urlsplit(url).path
        assert kind.startswith("application/json")


def _post_form(url: str, fields: dict[str, str], data: bytes) -> tuple[int, bytes]:
    boundary = "console-test-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n".encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        url,
        data=b"".join(parts),
        method="POST",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _upload_form(base: str, purpose: str, name: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{base}/uploads",
        data=json.dumps({"purpose": purpose, "fileName": name}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_a_presigned_post_stores_a_score_file_and_starts_nothing(server: tuple[str, LocalRuntime]) -> None:
    base, runtime = server
    form = _upload_form(base, "score", "later.csv")
    before = runtime.sfn.list_executions(stateMachineArn=runtime.state_machine_arn)["executions"]

    status, _ = _post_form(form["url"], form["fields"], b"encounter_id\n1\n")

    assert form["url"].startswith(f"{base}/_s3/")
    assert status == 204
    key = form["uri"].split("/", 3)[3]
    s3 = boto3.client("s3", region_name="us-east-1")
    assert s3.get_object(Bucket=runtime.stack.bucket, Key=key)["Body"].read() == b"encounter_id\n1\n"
    after = runtime.sfn.list_executions(stateMachineArn=runtime.state_machine_arn)["executions"]
    assert len(after) == len(before)


def test_a_presigned_post_of_a_dataset_is_staged_under_uploads_and_starts_nothing(
    server: tuple[str, LocalRuntime],
) -> None:
    """The console starts the run itself (POST /training with the URI): the upload must not."""
    base, runtime = server
    form = _upload_form(base, "dataset", "fresh.csv")
    before = runtime.sfn.list_executions(stateMachineArn=runtime.state_machine_arn)["executions"]

    status, _ = _post_form(form["url"], form["fields"], b"a,b\n1,2\n")

    assert status == 204
    key = form["uri"].split("/", 3)[3]
    assert key.startswith("uploads/")
    s3 = boto3.client("s3", region_name="us-east-1")
    assert s3.get_object(Bucket=runtime.stack.bucket, Key=key)["Body"].read() == b"a,b\n1,2\n"
    after = runtime.sfn.list_executions(stateMachineArn=runtime.state_machine_arn)["executions"]
    assert len(after) == len(before)


def test_a_post_whose_content_type_departs_from_the_policy_is_refused(
    server: tuple[str, LocalRuntime],
) -> None:
    base, _ = server
    form = _upload_form(base, "dataset", "fresh.csv")
    fields = {**form["fields"], "Content-Type": "text/html"}

    status, body = _post_form(form["url"], fields, b"<script></script>")

    assert status == 403
    assert b"Content-Type" in body


def test_a_post_outside_the_signed_prefixes_is_refused(server: tuple[str, LocalRuntime]) -> None:
    base, _ = server
    form = _upload_form(base, "score", "later.csv")
    fields = {**form["fields"], "key": "code/sourcedir.tar.gz"}

    status, _ = _post_form(form["url"], fields, b"x")

    assert status == 403

"""scripts/publish_console.py: the console's files and a config.json from the stack's outputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import publish_console  # noqa: E402
from publish_code import PublishError  # noqa: E402

sys.path.pop(0)

OUTPUTS = {
    "ApiUrl": "https://abc123.execute-api.eu-west-1.amazonaws.com/dev",
    "ConsoleUrl": "https://d111.cloudfront.net/",
    "ConsoleBucketName": "console-bucket",
    "ConsoleDistributionId": "E123",
    "ConsoleUserPoolClientId": "client-1",
    "ConsoleAuthDomain": "https://readmission-dev-1.auth.eu-west-1.amazoncognito.com",
}


class FakeCloudFront:
    def __init__(self) -> None:
        self.invalidations: list[dict[str, Any]] = []

    def create_invalidation(self, **kwargs: Any) -> None:
        self.invalidations.append(kwargs)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "t",
        "AWS_SECRET_ACCESS_KEY": "t",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="console-bucket")
        yield client


def test_config_json_points_the_console_at_the_api_and_the_hosted_sign_in() -> None:
    assert publish_console.console_config(OUTPUTS) == {
        "apiBase": "https://abc123.execute-api.eu-west-1.amazonaws.com/dev",
        "auth": {
            "domain": "https://readmission-dev-1.auth.eu-west-1.amazoncognito.com",
            "clientId": "client-1",
            "redirectUri": "https://d111.cloudfront.net/",
        },
    }


def test_publish_uploads_what_the_local_api_serves_then_invalidates(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from emulator.api import CONSOLE_FILES

    if not all(path.is_file() for path in publish_console.FILES.values()):
        pytest.fail("console/node_modules is missing: run `make console-deps`")
    cloudfront = FakeCloudFront()

    uploaded = publish_console.publish(OUTPUTS, s3, cloudfront)

    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="console-bucket")["Contents"]}
    assert (
        keys
        == set(uploaded)
        == {"index.html", "app.js", "style.css", "vendor/chart.umd.min.js", "config.json"}
    )
    assert {"/" + k for k in keys if k != "config.json"} == set(CONSOLE_FILES) - {"/"}
    assert s3.head_object(Bucket="console-bucket", Key="app.js")["ContentType"] == "text/javascript"
    config = json.loads(s3.get_object(Bucket="console-bucket", Key="config.json")["Body"].read())
    assert config["auth"]["clientId"] == "client-1"
    assert cloudfront.invalidations[0]["DistributionId"] == "E123"


def test_a_stack_without_the_console_outputs_is_named() -> None:
    class Stacks:
        class exceptions:
            ClientError = Exception

        def describe_stacks(self, **_: Any) -> dict[str, Any]:
            return {"Stacks": [{"Outputs": [{"OutputKey": "ApiUrl", "OutputValue": "x"}]}]}

    with pytest.raises(PublishError, match="ConsoleUrl"):
        publish_console.stack_outputs(Stacks(), "readmission-mlops-dev")

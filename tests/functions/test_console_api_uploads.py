"""Issue 13's upload: a dataset uploaded from the console is staged where the S3 trigger does not look,
so the only run is the one the form then starts (POST /training with the uploaded URI).

The trigger check runs the template's own EventBridge rule (emulator/triggers.py installs it in moto and
S3 builds the `Object Created` event), so a change of the rule's pattern or of the upload route's key
that would start a second run with the stack's defaults fails here.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from emulator import api as local_api
from emulator.template import load_stack
from emulator.triggers import EventBridgeTrigger

import api
import settings
from tests.functions.helpers import BUCKET, ROOT, Aws, dataset_head, load_event


def post(path: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    event = copy.deepcopy(load_event("api_post_training.json"))
    event["path"] = event["resource"] = path
    event["requestContext"]["path"] = f"/Prod{path}"
    event["body"] = json.dumps(body)
    event["headers"] = {**event["headers"], "Content-Type": "application/json", **(headers or {})}
    response = api.handler(event, None)
    return response["statusCode"], json.loads(response["body"])


def get(path: str) -> tuple[int, Any]:
    event = copy.deepcopy(load_event("api_get_models.json"))
    event["path"] = event["resource"] = path
    event["requestContext"]["path"] = f"/Prod{path}"
    response = api.handler(event, None)
    return response["statusCode"], json.loads(response["body"])


def upload(aws: Aws, file_name: str, data: bytes) -> str:
    """What the browser does: ask POST /uploads for the form, then store the file at its key."""
    status, form = post("/uploads", {"purpose": "dataset", "fileName": file_name, "size": len(data)})
    assert status == 200, form
    aws.s3.put_object(
        Bucket=BUCKET, Key=form["fields"]["key"], Body=data, ContentType=form["fields"]["Content-Type"]
    )
    return str(form["uri"])


@pytest.fixture
def trigger(aws: Aws) -> EventBridgeTrigger:
    """The template's DatasetUploaded rule, listening to the mocked bucket."""
    stack = load_stack(Path(ROOT))
    assert stack.bucket == BUCKET  # the rule names the bucket the tests put objects in
    installed = EventBridgeTrigger(stack.bucket, stack.state_machine.rules)
    installed.install()
    return installed


def test_a_console_upload_matches_no_rule_of_the_template_while_a_datasets_upload_does(
    aws: Aws, trigger: EventBridgeTrigger
) -> None:
    uploaded = upload(aws, "march.csv", dataset_head(20))
    assert trigger.collect() == []  # the upload starts nothing by itself

    aws.put("datasets/march.csv", dataset_head(20))  # the same file where the trigger looks
    delivered = trigger.collect()
    assert [d["detail"]["object"]["key"] for d in delivered] == ["datasets/march.csv"]
    assert uploaded.startswith(f"s3://{BUCKET}/uploads/")


def test_training_starts_on_an_uploaded_dataset_with_the_forms_fields(aws: Aws) -> None:
    uri = upload(aws, "march.csv.gz", b"\x1f\x8b not read by the API")
    form = {"datasetUri": uri, "modelName": "uploaded-model", "algorithm": "LogisticRegression"}

    status, body = post("/training", form, {"Idempotency-Key": "console-upload-1"})

    assert status == 202, body
    described = aws.sfn.describe_execution(executionArn=body["executionArn"])
    execution_input = json.loads(described["input"])
    assert execution_input["datasetUri"] == uri
    assert (execution_input["modelName"], execution_input["algorithm"]) == (
        "uploaded-model",
        "LogisticRegression",
    )


@pytest.mark.parametrize(
    ("dataset_uri", "named"),
    [
        (f"s3://{BUCKET}/runs/r/input/a.csv", "uploads/"),  # a run's snapshot is not a dataset
        (f"s3://{BUCKET}/scoring/a.csv", "datasets/"),
        (f"s3://{BUCKET}/uploads.csv", "uploads/"),
        (f"s3://{BUCKET}/uploadsx/a.csv", "uploads/"),
        ("s3://another-bucket/uploads/a.csv", "outside the project's bucket"),
    ],
)
def test_training_refuses_a_dataset_outside_the_datasets_and_uploads_prefixes(
    aws: Aws, dataset_uri: str, named: str
) -> None:
    aws.put(dataset_uri.split("/", 3)[3], b"x\n1\n")  # it exists: the location alone is refused

    status, body = post("/training", {"datasetUri": dataset_uri})

    assert status == 400
    problems = [e for e in body["errors"] if e["field"] == "datasetUri"]
    assert problems and named in problems[0]["message"]
    assert aws.executions() == []


def test_the_dataset_list_offers_console_uploads_again(aws: Aws) -> None:
    aws.put("datasets/a.csv", b"x\n1\n")
    uri = upload(aws, "march.csv", b"x\n1\n")

    status, body = get("/datasets")

    assert status == 200
    by_uri = {d["uri"]: d for d in body["datasets"]}
    assert set(by_uri) == {f"s3://{BUCKET}/datasets/a.csv", uri}
    assert by_uri[uri]["source"] == "uploads"
    assert by_uri[uri]["name"] == uri.rsplit("/", 1)[1]
    assert by_uri[f"s3://{BUCKET}/datasets/a.csv"]["source"] == "datasets"


@pytest.mark.parametrize("prefix", ["uploads/", "uploads/datasets/"])
def test_a_datasets_prefix_overlapping_the_uploads_prefix_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, aws: Aws, prefix: str
) -> None:
    monkeypatch.setenv("DATASETS_PREFIX", prefix)
    settings.load_settings.cache_clear()
    with pytest.raises(settings.ConfigurationError, match="uploads prefix"):
        settings.load_settings()
    settings.load_settings.cache_clear()


def test_the_local_s3_takes_uploads_under_the_prefix_the_functions_sign_for() -> None:
    assert local_api.UPLOADS_PREFIX == settings.UPLOADS_PREFIX

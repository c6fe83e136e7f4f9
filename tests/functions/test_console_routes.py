"""The console's routes (functions/console_api.py through functions/api.py): runs, states, datasets,
artifact links, reports, drift and cost, on moto, as API Gateway proxy events."""

from __future__ import annotations

import base64
import copy
import io
import json
import re
import tarfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import api
import console_api
from registry import Registry
from tests.functions.helpers import BUCKET, ROOT, TABLE, Aws, load_event, report_archive


def get(path: str, query: dict[str, str] | None = None) -> tuple[int, Any]:
    event = copy.deepcopy(load_event("api_get_models.json"))
    event["path"] = event["resource"] = path
    event["requestContext"]["path"] = f"/Prod{path}"
    event["queryStringParameters"] = query
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
    response = api.handler(event, None)
    return response["statusCode"], json.loads(response["body"])


def registry(aws: Aws) -> Registry:
    return Registry(TABLE, aws.dynamodb)


def start(aws: Aws, name: str, execution_input: dict[str, Any]) -> str:
    arn = aws.sfn.start_execution(
        stateMachineArn=aws.state_machine_arn, name=name, input=json.dumps(execution_input)
    )["executionArn"]
    for _ in range(200):  # moto runs the trivial Pass machine on a thread
        if aws.sfn.describe_execution(executionArn=arn)["status"] != "RUNNING":
            break
        time.sleep(0.02)
    return arn


def test_the_run_list_joins_each_execution_with_its_run(aws: Aws) -> None:
    upload = {"source": "aws.s3", "detail-type": "Object Created", "detail": {}}
    first = start(aws, "run-one", upload)
    time.sleep(0.01)
    start(aws, "run-two", {"datasetUri": f"s3://{BUCKET}/datasets/b.csv"})
    registry(aws).start_run(
        run_id="run-one",
        execution_arn=first,
        model_name="medication-adherence-model",
        idempotency_key="k1",
        dataset_uri=f"s3://{BUCKET}/datasets/a.csv",
    )

    status, body = get("/executions")

    assert status == 200
    by_name = {row["executionName"]: row for row in body["executions"]}
    assert [row["executionName"] for row in body["executions"]] == ["run-two", "run-one"]  # newest first
    assert by_name["run-one"]["trigger"] == "upload"
    assert by_name["run-one"]["datasetUri"] == f"s3://{BUCKET}/datasets/a.csv"
    assert by_name["run-two"]["trigger"] == "request"
    assert by_name["run-two"]["datasetUri"] is None  # no registry run: PrepareRun never ran
    assert by_name["run-one"]["status"] == "SUCCEEDED"
    assert by_name["run-one"]["durationSeconds"] >= 0


def test_the_states_route_gives_the_definition_and_each_states_status(aws: Aws) -> None:
    start(aws, "run-one", {})

    status, body = get("/executions/run-one/states")
    missing, _ = get("/executions/no-such-run/states")
    foreign, _ = get("/executions/arn:aws:states:us-east-1:123456789012:execution:other:x/states")

    assert status == 200
    assert body["definition"]["StartAt"] == "Done"
    assert body["states"]["Done"]["status"] == "SUCCEEDED"
    assert (missing, foreign) == (404, 404)


def test_a_caught_failure_marks_its_state_failed_with_the_cause_in_words() -> None:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    cause = json.dumps({"errorType": "InvalidDataset", "errorMessage": "too_small_to_evaluate: 40 rows"})
    events = [
        {
            "type": "TaskStateEntered",
            "timestamp": at,
            "stateEnteredEventDetails": {"name": "ValidateDataset"},
        },
        {
            "type": "LambdaFunctionFailed",
            "timestamp": at,
            "lambdaFunctionFailedEventDetails": {"error": "InvalidDataset", "cause": cause},
        },
        {"type": "TaskStateEntered", "timestamp": at, "stateEnteredEventDetails": {"name": "RecordFailure"}},
        {"type": "TaskStateExited", "timestamp": at, "stateExitedEventDetails": {"name": "RecordFailure"}},
    ]

    states = console_api.state_statuses(events)

    assert states["ValidateDataset"]["status"] == "FAILED"
    assert states["ValidateDataset"]["error"] == "InvalidDataset"
    assert states["ValidateDataset"]["cause"] == "too_small_to_evaluate: 40 rows"
    assert states["RecordFailure"]["status"] == "SUCCEEDED"
    assert "TrainModel" not in states


def test_the_dataset_list_holds_the_datasets_prefix_only(aws: Aws) -> None:
    aws.put("datasets/a.csv", b"x\n1\n")
    aws.put("datasets/sub/b.csv.gz", b"zz")
    aws.put("runs/r/input/a.csv", b"x\n1\n")

    status, body = get("/datasets")

    assert status == 200
    assert sorted(d["name"] for d in body["datasets"]) == ["a.csv", "sub/b.csv.gz"]
    assert {d["uri"] for d in body["datasets"]} == {
        f"s3://{BUCKET}/datasets/a.csv",
        f"s3://{BUCKET}/datasets/sub/b.csv.gz",
    }


def test_a_link_is_a_five_minute_presigned_get_of_a_runs_object(aws: Aws) -> None:
    status, body = get("/links", {"uri": f"s3://{BUCKET}/runs/r1/predictions/a.csv.out"})

    assert status == 200
    url = urlsplit(body["url"])
    assert url.path.endswith("/runs/r1/predictions/a.csv.out")
    assert parse_qs(url.query)["X-Amz-Expires"] == ["300"]
    assert "X-Amz-Signature" in parse_qs(url.query)


def test_a_link_outside_a_runs_artifacts_is_a_400_naming_uri(aws: Aws) -> None:
    for query in (
        None,
        {"uri": "not-a-uri"},
        {"uri": f"s3://{BUCKET}/datasets/a.csv"},
        {"uri": "s3://someone-elses-bucket/runs/r1/a.csv"},
        {"uri": f"s3://{BUCKET}/runs/../datasets/a.csv"},
        {"uri": f"s3://{BUCKET}/runs/r1/"},
    ):
        status, body = get("/links", query)
        assert status == 400, query
        assert [e["field"] for e in body["errors"]] == ["uri"], query


def test_a_versions_report_holds_its_plots_its_markdown_and_its_metrics(aws: Aws) -> None:
    png = b"\x89PNG\r\n\x1a\nfake"
    job = "runs/r1/model/readmission-train-1/output"
    files = {"roc_curve.png": png, "report.md": b"# Report", "x.txt": b"-"}
    aws.put(f"{job}/output.tar.gz", report_archive(files))
    metrics = {"roc_auc": 0.67, "comparison": {"champion_roc_auc": 0.66}}
    aws.put(f"{job}/model.tar.gz", report_archive({"metrics.json": json.dumps(metrics).encode()}))

    report = console_api.model_report({"artifactUri": f"s3://{BUCKET}/{job}/model.tar.gz"}, s3=aws.s3)

    assert [p["name"] for p in report["plots"]] == ["roc_curve.png"]
    assert report["plots"][0]["dataUri"].startswith("data:image/png;base64,")
    assert report["markdown"] == "# Report"
    assert report["metrics"] == metrics


def test_a_published_report_is_read_from_its_prefix_not_from_the_training_archive(aws: Aws) -> None:
    """RegisterModel publishes the report under reports/<model>/v<N>/: the console shows those files,
    the model card among them, even when the training archive is gone."""
    png = b"\x89PNG\r\n\x1a\npublished"
    prefix = "reports/medication-adherence-model/v3/"
    aws.put(f"{prefix}roc_curve.png", png)
    aws.put(f"{prefix}report.md", b"# Published report")
    aws.put(f"{prefix}model_card.md", b"# Model card")
    aws.put(f"{prefix}subgroups.json", b"{}")
    job = "runs/r3/model/readmission-train-3/output"
    version = {"artifactUri": f"s3://{BUCKET}/{job}/model.tar.gz", "reportUri": f"s3://{BUCKET}/{prefix}"}

    report = console_api.model_report(version, s3=aws.s3)

    assert [p["name"] for p in report["plots"]] == ["roc_curve.png"]
    assert base64.b64decode(report["plots"][0]["dataUri"].split(",", 1)[1]) == png
    assert report["markdown"] == "# Published report"
    assert report["modelCard"] == "# Model card"
    assert report["reportUri"] == f"s3://{BUCKET}/{prefix}"
    assert report["metrics"] is None  # no model.tar.gz: said as no metrics, not an error


def test_an_unsafe_training_archive_is_refused_by_name_not_read(aws: Aws) -> None:
    """A version without a published report falls back to output.tar.gz, with the publication's own
    member checks: a symbolic link is not followed, and the page says why there is no report."""
    job = "runs/r4/model/readmission-train-4/output"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        link = tarfile.TarInfo("roc_curve.png")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    aws.put(f"{job}/output.tar.gz", buffer.getvalue())

    report = console_api.model_report({"artifactUri": f"s3://{BUCKET}/{job}/model.tar.gz"}, s3=aws.s3)

    assert report["plots"] == []
    assert "'roc_curve.png'" in report["reportProblem"]
    assert "symbolic link" in report["reportProblem"]


def test_a_link_to_a_published_report_file_is_given(aws: Aws) -> None:
    status, body = get(
        "/links", {"uri": f"s3://{BUCKET}/reports/medication-adherence-model/v1/model_card.md"}
    )

    assert status == 200
    assert urlsplit(body["url"]).path.endswith("/reports/medication-adherence-model/v1/model_card.md")


def test_the_report_of_an_unknown_version_is_a_404(aws: Aws) -> None:
    assert get("/models/medication-adherence-model/7/report")[0] == 404
    assert get("/models/medication-adherence-model/x/report")[0] == 404


def test_the_drift_route_reads_the_runs_drift_report(aws: Aws) -> None:
    arn = start(aws, "run-one", {})
    start(aws, "run-two", {})
    book = registry(aws)
    for name in ("run-one", "run-two"):
        book.claim_idempotency_key(name, name, arn, running_for_at_most=60)
        book.start_run(
            run_id=name,
            execution_arn=arn,
            model_name="medication-adherence-model",
            idempotency_key=name,
            dataset_uri=f"s3://{BUCKET}/datasets/a.csv",
        )
    book.record_run_succeeded(
        "run-one",
        decision="approved",
        model_version=None,
        scored_version=None,
        predictions_uri=f"s3://{BUCKET}/runs/run-one/predictions/",
        drift_uri=f"s3://{BUCKET}/runs/run-one/drift/",
    )
    report = {"features": {"age": {"psi": 0.3, "level": "drift"}}, "thresholds": {"warn": 0.1, "drift": 0.25}}
    aws.put("runs/run-one/drift/drift_report.json", json.dumps(report).encode())

    status, body = get("/executions/run-one/drift")
    none_yet, _ = get("/executions/run-two/drift")

    assert status == 200
    assert body["report"] == report
    assert none_yet == 404


def _history() -> list[dict[str, Any]]:
    at = datetime(2026, 12, 1, 10, tzinfo=UTC)
    started_ms = int(at.timestamp() * 1000)

    def scheduled(resource: str, parameters: dict[str, Any], minute: int) -> dict[str, Any]:
        return {
            "type": "TaskScheduled",
            "timestamp": at + timedelta(minutes=minute),
            "taskScheduledEventDetails": {"resource": resource, "parameters": json.dumps(parameters)},
        }

    def succeeded(output: dict[str, Any], minute: int) -> dict[str, Any]:
        return {
            "type": "TaskSucceeded",
            "timestamp": at + timedelta(minutes=minute),
            "taskSucceededEventDetails": {"output": json.dumps(output)},
        }

    return [
        {"type": "TaskStateEntered", "timestamp": at, "stateEnteredEventDetails": {"name": "TrainModel"}},
        scheduled(
            "createTrainingJob.sync",
            {"ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1}},
            0,
        ),
        succeeded({"BillableTimeInSeconds": 360}, 9),
        {"type": "TaskStateEntered", "timestamp": at, "stateEnteredEventDetails": {"name": "BatchTransform"}},
        scheduled(
            "createTransformJob.sync",
            {"TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 2}},
            10,
        ),
        succeeded({"TransformStartTime": started_ms, "TransformEndTime": started_ms + 180_000}, 15),
    ]


def test_a_runs_cost_is_each_jobs_billable_seconds_times_its_instances_price() -> None:
    prices = console_api.load_prices()
    jobs = console_api.run_jobs(_history())

    total = console_api.price_jobs(jobs, prices)

    hourly = prices["sagemaker_per_instance_hour"]
    assert [(j["state"], j["seconds"], j["instanceCount"]) for j in jobs] == [
        ("TrainModel", 360.0, 1),
        ("BatchTransform", 180.0, 2),
    ]
    expected = (
        360 * hourly["training"]["ml.m5.xlarge"] / 3600
        + 180 * 2 * hourly["batch_transform"]["ml.m5.large"] / 3600
    )
    assert total == round(expected, 6)


def test_a_job_on_an_instance_without_a_price_leaves_the_run_unpriced() -> None:
    jobs = [{"kind": "training", "instanceType": "ml.p5.48xlarge", "instanceCount": 1, "seconds": 60.0}]

    assert console_api.price_jobs(jobs, console_api.load_prices()) is None
    assert jobs[0]["cost"] is None


class _FakeSfn:
    """ListExecutions and GetExecutionHistory over fixed runs (two this month, one last month)."""

    def __init__(self, starts: dict[str, datetime]):
        self.starts = starts

    def list_executions(self, **_: Any) -> dict[str, Any]:
        return {
            "executions": [
                {"name": n, "executionArn": f"arn:x:{n}", "status": "SUCCEEDED", "startDate": s}
                for n, s in self.starts.items()
            ]
        }

    def get_execution_history(self, **_: Any) -> dict[str, Any]:
        return {"events": _history()}


def test_the_month_so_far_sums_the_runs_started_this_month(aws: Aws) -> None:
    from settings import load_settings

    now = datetime(2026, 12, 20, tzinfo=UTC)
    sfn = _FakeSfn(
        {
            "a": datetime(2026, 12, 2, tzinfo=UTC),
            "b": datetime(2026, 12, 19, tzinfo=UTC),
            "old": datetime(2026, 11, 30, 23, tzinfo=UTC),
        }
    )

    result = console_api.costs(settings=load_settings(), sfn=sfn, now=now)

    one_run = console_api.price_jobs(console_api.run_jobs(_history()), console_api.load_prices())
    assert result["month"] == "2026-12"
    assert result["monthToDate"] == round(2 * one_run, 6)
    assert [r["executionName"] for r in result["runs"]] == ["b", "a", "old"]
    assert result["pricesAsOf"] == "2024-06"


def test_the_functions_price_file_is_docs_aws_prices_json() -> None:
    """Lambda's package is functions/ only: it carries a copy, which must not drift from the docs' file."""
    assert console_api.PRICES_FILE.read_text() == (Path(ROOT) / "docs" / "aws-prices.json").read_text()


def post_upload(body: Any) -> tuple[int, Any]:
    event = copy.deepcopy(load_event("api_post_training.json"))
    event["path"] = event["resource"] = "/uploads"
    event["requestContext"]["path"] = "/Prod/uploads"
    event["body"] = json.dumps(body)
    response = api.handler(event, None)
    return response["statusCode"], json.loads(response["body"])


def test_an_upload_form_stages_a_dataset_under_the_uploads_prefix_behind_its_upload_time(aws: Aws) -> None:
    status, body = post_upload({"purpose": "dataset", "fileName": "march.csv.gz", "size": 1000})

    assert status == 200
    assert re.fullmatch(rf"s3://{BUCKET}/uploads/\d{{8}}-\d{{6}}-march\.csv\.gz", body["uri"])
    assert body["fields"]["key"] == body["uri"].split("/", 3)[3]
    policy = json.loads(base64.b64decode(body["fields"]["policy"]))
    assert ["content-length-range", 1, 50 * 1024 * 1024] in policy["conditions"]
    assert {"key": body["fields"]["key"]} in policy["conditions"]  # exactly this key: its prefix too
    assert {"Content-Type": "application/gzip"} in policy["conditions"]
    assert body["fields"]["Content-Type"] == "application/gzip"
    assert body["startsRun"] is False  # the console starts the run with POST /training


def test_a_score_upload_goes_under_the_scoring_prefix_and_starts_nothing(aws: Aws) -> None:
    status, body = post_upload({"purpose": "score", "fileName": "new_encounters.csv"})

    assert status == 200
    assert body["uri"].startswith(f"s3://{BUCKET}/scoring/")
    policy = json.loads(base64.b64decode(body["fields"]["policy"]))
    assert {"Content-Type": "text/csv"} in policy["conditions"]
    assert body["startsRun"] is False


def test_a_bad_upload_request_names_each_field(aws: Aws) -> None:
    status, body = post_upload({"purpose": "model", "fileName": "../x.csv", "size": 0, "extra": 1})

    assert status == 400
    assert sorted(e["field"] for e in body["errors"]) == ["extra", "fileName", "purpose", "size"]
    too_big, _ = post_upload({"purpose": "dataset", "fileName": "a.csv", "size": 50 * 1024 * 1024 + 1})
    not_csv, _ = post_upload({"purpose": "dataset", "fileName": "a.parquet"})
    assert (too_big, not_csv) == (400, 400)


def test_cors_admits_only_the_consoles_origin_and_is_off_without_one(monkeypatch: Any) -> None:
    monkeypatch.setenv("CONSOLE_ORIGIN", "https://d111.cloudfront.net")
    config = api._cors()
    assert config is not None
    answer = config.to_dict("https://d111.cloudfront.net")
    assert answer["Access-Control-Allow-Origin"] == "https://d111.cloudfront.net"
    assert {"Authorization", "Idempotency-Key"} <= set(answer["Access-Control-Allow-Headers"].split(","))
    assert config.to_dict("https://elsewhere.example") == {}  # another origin's browser reads nothing
    monkeypatch.delenv("CONSOLE_ORIGIN")
    assert api._cors() is None

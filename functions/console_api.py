"""What the web console reads beside the original routes: runs, a run's states, datasets, artifacts, cost.

    GET /executions                        the state machine's executions, newest first, with their runs
    GET /executions/{id}/states            the deployed ASL and each state's status, error and cause
    GET /executions/{id}/drift             the run's drift report (per-feature PSI and the thresholds)
    GET /datasets                          the objects under datasets/ and uploads/ (the form's choices)
    GET /links?uri=s3://bucket/runs/...    a short-lived (presigned) link to one of a run's artifacts
    GET /models/{name}/{version}/report    the version's report: plots (PNG data URIs), report.md, metrics
    GET /costs                             each run's estimated SageMaker cost and the month so far
    POST /uploads                          a presigned POST for one file into the uploads or scoring prefix

Everything is computed from what Step Functions, S3 and the registry already hold: the console has no
second backend. The handlers here are plain functions over boto3 clients (the tests call them on moto);
functions/api.py routes them and answers their RequestErrors as 400s with the field that is wrong.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from errors import ReportNotPublished
from report_publication import MAX_MEMBERS, REPORTS_PREFIX, report_files
from run_input import RequestErrors
from s3uri import S3Uri, is_missing_object, parse_s3_uri
from settings import Settings

LINK_SECONDS = 300  # a presigned link is good for five minutes: long enough to click, short enough to leak
MAX_EXECUTIONS = 100  # the console lists the newest hundred runs
MAX_REPORT_BYTES = 20 * 1024 * 1024  # output.tar.gz holds a markdown file and four PNGs (~200 KB)
MAX_METRICS_TAR_BYTES = 50 * 1024 * 1024  # model.tar.gz is ~0.1 MB; a bigger one is not read whole
PRICES_FILE = Path(__file__).with_name(
    "aws_prices.json"
)  # a copy of docs/aws-prices.json (a test keeps them equal)
# The SageMaker .sync tasks whose instances are billed, and where their Describe* output says how long
_JOB_KINDS = {
    "createTrainingJob.sync": "training",
    "createTransformJob.sync": "batch_transform",
    "createProcessingJob.sync": "processing",
}
_FAILED_EVENTS = {
    "TaskFailed": "taskFailedEventDetails",
    "TaskTimedOut": "taskTimedOutEventDetails",
    "TaskStartFailed": "taskStartFailedEventDetails",
    "TaskSubmitFailed": "taskSubmitFailedEventDetails",
    "LambdaFunctionFailed": "lambdaFunctionFailedEventDetails",
    "ExecutionFailed": "executionFailedEventDetails",
    "ExecutionTimedOut": "executionTimedOutEventDetails",
    "ExecutionAborted": "executionAbortedEventDetails",
}


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None


def _problem(field: str, message: str) -> RequestErrors:
    return RequestErrors([{"field": field, "message": message}])


def full_history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    """Every event of an execution, oldest first (GetExecutionHistory pages at 1000)."""
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def trigger_of(execution_input: str | None) -> str:
    """Who started the run: an S3 upload (EventBridge's `Object Created` event) or a request (API/console)."""
    try:
        document = json.loads(execution_input or "{}")
    except json.JSONDecodeError:
        return "unknown"
    if isinstance(document, dict) and document.get("source") == "aws.s3":
        return "upload"
    return "request"


def list_executions(
    *, settings: Settings, sfn: Any, registry: Any, limit: int = MAX_EXECUTIONS
) -> dict[str, Any]:
    """The newest executions, each joined with its registry run (dataset, decision, version)."""
    listed = sfn.list_executions(stateMachineArn=settings.state_machine_arn, maxResults=limit)["executions"]
    listed.sort(key=lambda e: e["startDate"], reverse=True)
    rows = []
    for item in listed[:limit]:
        described = sfn.describe_execution(executionArn=item["executionArn"])
        run = registry.get_run(item["name"]) or {}
        start, stop = item.get("startDate"), item.get("stopDate")
        rows.append(
            {
                "executionName": item["name"],
                "executionArn": item["executionArn"],
                "status": item["status"],
                "trigger": trigger_of(described.get("input")),
                "datasetUri": run.get("dataset_uri"),
                "modelName": run.get("model_name"),
                "modelVersion": run.get("model_version"),
                "decision": run.get("decision"),
                "startDate": _iso(start),
                "stopDate": _iso(stop),
                "durationSeconds": round((stop - start).total_seconds(), 1) if start and stop else None,
            }
        )
    return {"executions": rows}


def cause_in_words(cause: str | None) -> str | None:
    """A Lambda or SageMaker cause as a sentence: the `errorMessage` of a JSON cause, else the text."""
    if not cause:
        return cause
    try:
        document = json.loads(cause)
    except json.JSONDecodeError:
        return cause
    if isinstance(document, dict):
        for key in ("errorMessage", "FailureReason", "message", "Cause"):
            if isinstance(document.get(key), str):
                return document[key]
    return cause


def state_statuses(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each state's status from the history: RUNNING once entered, SUCCEEDED when exited, FAILED with
    the error and cause of the failure seen while it was the current state (a caught failure too: the
    Catch sends the run on, the state still failed)."""
    states: dict[str, dict[str, Any]] = {}
    current: str | None = None
    for event in events:
        if "stateEnteredEventDetails" in event:
            current = event["stateEnteredEventDetails"]["name"]
            states[current] = {"status": "RUNNING", "enteredAt": _iso(event.get("timestamp"))}
        elif "stateExitedEventDetails" in event:
            name = event["stateExitedEventDetails"]["name"]
            entry = states.setdefault(name, {})
            entry["exitedAt"] = _iso(event.get("timestamp"))
            if entry.get("status") != "FAILED":
                entry["status"] = "SUCCEEDED"
        elif event["type"] in _FAILED_EVENTS and current is not None:
            details = event.get(_FAILED_EVENTS[event["type"]]) or {}
            entry = states[current]
            entry.update(
                status="FAILED",
                error=details.get("error") or event["type"],
                cause=cause_in_words(details.get("cause")),
            )
            entry.setdefault("exitedAt", _iso(event.get("timestamp")))
    return states


def execution_states(arn: str, *, settings: Settings, sfn: Any) -> dict[str, Any]:
    """The run page's graph: the deployed definition and the statuses drawn on it."""
    described = sfn.describe_execution(executionArn=arn)
    definition = sfn.describe_state_machine(stateMachineArn=settings.state_machine_arn)["definition"]
    return {
        "executionName": described["name"],
        "status": described["status"],
        "error": described.get("error"),
        "cause": cause_in_words(described.get("cause")),
        "definition": json.loads(definition),
        "states": state_statuses(full_history(sfn, arn)),
    }


def _read_json_object(s3: Any, uri: S3Uri) -> Any | None:
    try:
        body = s3.get_object(Bucket=uri.bucket, Key=uri.key)["Body"].read()
    except s3.exceptions.ClientError as exc:
        if is_missing_object(exc):
            return None
        raise
    return json.loads(body)


def drift_report(run: dict[str, Any] | None, *, s3: Any) -> dict[str, Any] | None:
    """The run's drift_report.json, or None when the run has none (failed before MonitorDrift)."""
    if not run or not run.get("drift_uri"):
        return None
    uri = parse_s3_uri(run["drift_uri"])
    key = uri.key if uri.key.endswith(".json") else uri.key.rstrip("/") + "/drift_report.json"
    report = _read_json_object(s3, S3Uri(uri.bucket, key))
    return {"driftUri": run["drift_uri"], "report": report} if report is not None else None


def list_datasets(*, settings: Settings, s3: Any) -> dict[str, Any]:
    """The objects under the datasets prefix and the console's uploads, newest first (the form's
    dataset choices: a file uploaded from the console can be picked again for a later run).

    `name` is the key after its prefix; `source` says which prefix ("datasets" or "uploads")."""
    rows: list[dict[str, Any]] = []
    for source, prefix in (("datasets", settings.datasets_prefix), ("uploads", settings.uploads_prefix)):
        rows.extend(_objects_under(s3, settings.bucket, prefix, source, limit=1000 - len(rows)))
    rows.sort(key=lambda r: r["lastModified"] or "", reverse=True)
    return {"datasets": rows}


def _objects_under(s3: Any, bucket: str, prefix: str, source: str, *, limit: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    while len(rows) < limit:
        page = s3.list_objects_v2(**kwargs)
        for item in page.get("Contents", []):
            if item["Key"].endswith("/"):
                continue
            rows.append(
                {
                    "uri": f"s3://{bucket}/{item['Key']}",
                    "name": item["Key"][len(prefix) :],
                    "source": source,
                    "size": item["Size"],
                    "lastModified": _iso(item.get("LastModified")),
                }
            )
        if not page.get("IsTruncated"):
            break
        kwargs["ContinuationToken"] = page["NextContinuationToken"]
    return rows[:limit]


def artifact_link(uri_text: str | None, *, settings: Settings, presigner: Any) -> dict[str, Any]:
    """A presigned GET for an object of a run (`runs/`) or of a version's published report
    (`reports/`) in the project's bucket; nothing else is linked."""
    if not uri_text:
        raise _problem("uri", "an s3:// URI of a run's artifact is required")
    try:
        uri = parse_s3_uri(uri_text)
    except ValueError as exc:
        raise _problem("uri", str(exc)) from None
    linkable = uri.key.startswith(("runs/", REPORTS_PREFIX))
    if uri.bucket != settings.bucket or not linkable or ".." in uri.key.split("/"):
        raise _problem(
            "uri",
            f"only a run's artifacts (s3://{settings.bucket}/runs/...) or a version's report "
            f"(s3://{settings.bucket}/{REPORTS_PREFIX}...) can be linked",
        )
    if uri.key.endswith("/"):
        raise _problem("uri", "names a prefix; link one object")
    url = presigner.generate_presigned_url(
        "get_object", Params={"Bucket": uri.bucket, "Key": uri.key}, ExpiresIn=LINK_SECONDS
    )
    return {"uri": str(uri), "url": url, "expiresInSeconds": LINK_SECONDS}


def presigning_client() -> Any:
    """An S3 client for links only (signing is offline). ARTIFACT_LINK_ENDPOINT (path-style) is where the
    local API serves objects; on AWS it is unset and links name the bucket's regional endpoint."""
    import boto3
    from botocore.config import Config

    endpoint = os.environ.get("ARTIFACT_LINK_ENDPOINT") or None
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path" if endpoint else "virtual"}),
    )


def _published_report(s3: Any, prefix: S3Uri) -> dict[str, bytes]:
    """The files RegisterModel published under the version's report prefix (reports/<model>/v<N>/),
    by name; a report is a handful of files, a prefix holding more than the publication allows is not
    read past that."""
    files: dict[str, bytes] = {}
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=prefix.bucket, Prefix=prefix.key, PaginationConfig={"MaxItems": MAX_MEMBERS}
    )
    for page in pages:
        for item in page.get("Contents", []):
            name = item["Key"][len(prefix.key) :]
            if name.endswith((".png", ".md")) and item["Size"] <= MAX_REPORT_BYTES:
                files[name] = s3.get_object(Bucket=prefix.bucket, Key=item["Key"])["Body"].read()
    return files


def _archived_report(s3: Any, output_uri: S3Uri) -> dict[str, bytes]:
    """A version registered before reports were published keeps its report only in its training job's
    output.tar.gz: read it with the publication's own member checks (an unsafe archive is refused)."""
    head = _head(s3, output_uri)
    if head is None or head["ContentLength"] > MAX_REPORT_BYTES:
        return {}
    data = s3.get_object(Bucket=output_uri.bucket, Key=output_uri.key)["Body"].read()
    return {f.name: f.body for f in report_files(data, uri=str(output_uri))}


def _head(s3: Any, uri: S3Uri) -> dict[str, Any] | None:
    try:
        return dict(s3.head_object(Bucket=uri.bucket, Key=uri.key))
    except s3.exceptions.ClientError as exc:
        if is_missing_object(exc):
            return None
        raise


def _metrics_file(s3: Any, model_uri: S3Uri) -> dict[str, Any] | None:
    """metrics.json of model.tar.gz (the champion comparison on the same rows), read in memory: only
    regular members are read and nothing is written, so a link member cannot point anywhere."""
    head = _head(s3, model_uri)
    if head is None or head["ContentLength"] > MAX_METRICS_TAR_BYTES:
        return None
    data = s3.get_object(Bucket=model_uri.bucket, Key=model_uri.key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
        for member in archive.getmembers():
            if member.isfile() and Path(member.name).name == "metrics.json":
                extracted = archive.extractfile(member)
                return json.loads(extracted.read()) if extracted is not None else None
    return None


def model_report(version: dict[str, Any], *, s3: Any) -> dict[str, Any]:
    """The version's report (plots as data URIs, so the console needs no link to the bucket; report.md
    and model_card.md) from where RegisterModel published it, else from its training job's
    output.tar.gz; and metrics.json from model.tar.gz (the champion comparison)."""
    artifact = version.get("artifactUri")
    if not artifact:
        return {
            "plots": [],
            "markdown": None,
            "modelCard": None,
            "metrics": None,
            "reportUri": None,
            "reportProblem": None,
        }
    model_uri = parse_s3_uri(artifact)
    report_uri = version.get("reportUri")
    problem = None
    if report_uri:
        report = _published_report(s3, parse_s3_uri(report_uri))
    else:
        output_uri = S3Uri(model_uri.bucket, model_uri.key.rsplit("/", 1)[0] + "/output.tar.gz")
        try:
            report = _archived_report(s3, output_uri)
        except ReportNotPublished as exc:
            report, problem = {}, str(exc)
    plots = [
        {"name": name, "dataUri": "data:image/png;base64," + base64.b64encode(body).decode("ascii")}
        for name, body in sorted(report.items())
        if name.endswith(".png")
    ]

    def text(name: str) -> str | None:
        body = report.get(name)
        return body.decode("utf-8", "replace") if body else None

    return {
        "plots": plots,
        "markdown": text("report.md"),
        "modelCard": text("model_card.md"),
        "metrics": _metrics_file(s3, model_uri),
        "reportUri": report_uri,
        "reportProblem": problem,
    }


def load_prices() -> dict[str, Any]:
    return json.loads(PRICES_FILE.read_text())


def _job_seconds(output: dict[str, Any], kind: str) -> float | None:
    """Billable seconds from the Describe* document the .sync task returned (before ResultSelector)."""
    if kind == "training" and output.get("BillableTimeInSeconds") is not None:
        return float(output["BillableTimeInSeconds"])
    start_key, end_key = {
        "training": ("TrainingStartTime", "TrainingEndTime"),
        "batch_transform": ("TransformStartTime", "TransformEndTime"),
        "processing": ("ProcessingStartTime", "ProcessingEndTime"),
    }[kind]
    start, end = output.get(start_key), output.get(end_key)
    if start is None or end is None:
        return None
    return max(0.0, (_epoch(end) - _epoch(start)))


def _epoch(value: Any) -> float:
    """A Describe* timestamp as Step Functions serialises it: epoch milliseconds, or an ISO string."""
    if isinstance(value, (int, float)):
        return float(value) / 1000.0
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def _instances(parameters: dict[str, Any], kind: str) -> tuple[str | None, int]:
    if kind == "training":
        config = parameters.get("ResourceConfig") or {}
    elif kind == "batch_transform":
        config = parameters.get("TransformResources") or {}
    else:
        config = (parameters.get("ProcessingResources") or {}).get("ClusterConfig") or {}
    return config.get("InstanceType"), int(config.get("InstanceCount") or 1)


def run_jobs(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The SageMaker jobs of one execution: kind, instances and billable seconds (a job still running
    counts from its start to the last event seen)."""
    jobs: list[dict[str, Any]] = []
    pending: dict[str, Any] | None = None
    state: str | None = None
    for event in events:
        if "stateEnteredEventDetails" in event:
            state = event["stateEnteredEventDetails"]["name"]
        details = event.get("taskScheduledEventDetails")
        if details and details.get("resource") in _JOB_KINDS:
            kind = _JOB_KINDS[details["resource"]]
            instance_type, count = _instances(json.loads(details.get("parameters") or "{}"), kind)
            pending = {
                "state": state,
                "kind": kind,
                "instanceType": instance_type,
                "instanceCount": count,
                "seconds": None,
                "startedAt": event["timestamp"],
            }
            jobs.append(pending)
            continue
        if pending is None:
            continue
        for key in ("taskSucceededEventDetails", "taskFailedEventDetails", "taskTimedOutEventDetails"):
            if key in event:
                output: dict[str, Any] = {}
                if key == "taskSucceededEventDetails":
                    try:
                        output = json.loads(event[key].get("output") or "{}")
                    except json.JSONDecodeError:
                        output = {}
                seconds = _job_seconds(output, pending["kind"]) if output else None
                if seconds is None:
                    seconds = (event["timestamp"] - pending["startedAt"]).total_seconds()
                pending["seconds"] = round(seconds, 1)
                pending = None
                break
    if pending is not None and events:
        pending["seconds"] = round((events[-1]["timestamp"] - pending["startedAt"]).total_seconds(), 1)
    for job in jobs:
        job["startedAt"] = _iso(job["startedAt"])
    return jobs


def price_jobs(jobs: list[dict[str, Any]], prices: dict[str, Any]) -> float | None:
    """Set each job's `cost` (seconds x instances x hourly price / 3600); the sum, None if unpriced."""
    total: float | None = 0.0
    table = prices["sagemaker_per_instance_hour"]
    for job in jobs:
        hourly = table.get(job["kind"], {}).get(job["instanceType"])
        if hourly is None or job["seconds"] is None:
            job["cost"] = None
            total = None
            continue
        job["cost"] = round(job["seconds"] * job["instanceCount"] * hourly / 3600.0, 6)
        if total is not None:
            total += job["cost"]
    return round(total, 6) if total is not None else None


def costs(*, settings: Settings, sfn: Any, now: datetime | None = None) -> dict[str, Any]:
    """Each listed run's estimated SageMaker cost and the sum over the runs started this month (UTC)."""
    prices = load_prices()
    now = now or datetime.now(UTC)
    listed = sfn.list_executions(stateMachineArn=settings.state_machine_arn, maxResults=MAX_EXECUTIONS)[
        "executions"
    ]
    listed.sort(key=lambda e: e["startDate"], reverse=True)
    rows, month_total, unpriced = [], 0.0, 0
    for item in listed:
        jobs = run_jobs(full_history(sfn, item["executionArn"]))
        total = price_jobs(jobs, prices)
        start = item["startDate"]
        in_month = start.astimezone(UTC).strftime("%Y-%m") == now.strftime("%Y-%m")
        if in_month:
            if total is None:
                unpriced += 1
            else:
                month_total += total
        rows.append(
            {
                "executionName": item["name"],
                "status": item["status"],
                "startDate": _iso(start),
                "jobs": jobs,
                "cost": total,
            }
        )
    return {
        "currency": prices["currency"],
        "region": prices["region"],
        "pricesAsOf": prices["prices_as_of"],
        "caveat": prices["caveat"],
        "month": now.strftime("%Y-%m"),
        "monthToDate": round(month_total, 6),
        "unpricedRunsThisMonth": unpriced,
        "runs": rows,
    }


UPLOAD_PURPOSES = ("dataset", "score")
# What a file may be called in the bucket: a CSV (optionally gzipped), no path, no spaces
_UPLOAD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,150}\.csv(\.gz)?")


def upload_content_type(name: str) -> str:
    """The Content-Type an upload of this file name must carry (the presigned POST's policy fixes it)."""
    return "application/gzip" if name.endswith(".gz") else "text/csv"


def upload_form(
    body: dict[str, Any], *, settings: Settings, presigner: Any, now: datetime | None = None
) -> dict[str, Any]:
    """A presigned POST (5 minutes) that lets the browser put one file straight into the bucket.

    `purpose` "dataset" stages it under the uploads prefix, which the S3 trigger's rule does not match:
    the upload starts nothing, and the console then starts the run its form describes (POST /training
    with this `uri`), so no second run with the stack's defaults. "score" puts it under the scoring
    prefix, also starting nothing, for a training request's scoreUri. The key is the file name behind
    the upload time, so no earlier file is replaced. The policy fixes the key (hence its prefix) and the
    Content-Type, and caps the size at MAX_DATASET_BYTES: S3 refuses a form that departs from them.
    """
    errors = []
    purpose, name, size = body.get("purpose"), body.get("fileName"), body.get("size")
    if purpose not in UPLOAD_PURPOSES:
        errors.append({"field": "purpose", "message": f"must be one of {', '.join(UPLOAD_PURPOSES)}"})
    if not isinstance(name, str) or not _UPLOAD_NAME.fullmatch(name):
        errors.append(
            {
                "field": "fileName",
                "message": "must be a .csv or .csv.gz file name of letters, digits, '.', '_' or '-'",
            }
        )
    if size is not None and (
        not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= settings.max_dataset_bytes
    ):
        errors.append({"field": "size", "message": f"must be 1 to {settings.max_dataset_bytes} bytes"})
    unknown = sorted(set(body) - {"purpose", "fileName", "size"})
    errors.extend({"field": field, "message": "is not a field of an upload request"} for field in unknown)
    if errors:
        raise RequestErrors(errors)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    prefix = settings.uploads_prefix if purpose == "dataset" else settings.scoring_prefix
    key = f"{prefix}{stamp}-{name}"
    content_type = upload_content_type(name)
    post = presigner.generate_presigned_post(
        Bucket=settings.bucket,
        Key=key,
        Fields={"Content-Type": content_type},
        Conditions=[
            {"Content-Type": content_type},
            ["content-length-range", 1, settings.max_dataset_bytes],
        ],
        ExpiresIn=LINK_SECONDS,
    )
    return {
        "uri": f"s3://{settings.bucket}/{key}",
        "url": post["url"],
        "fields": post["fields"],
        "expiresInSeconds": LINK_SECONDS,
        "startsRun": False,  # neither prefix is the trigger's: the console starts the run (POST /training)
    }

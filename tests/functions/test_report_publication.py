"""The report a person opens: RegisterModel publishes output.tar.gz's files under reports/<model>/v<N>/,
files the location in the registry, and RecordOutcome's messages quote it with the DeLong interval."""

from __future__ import annotations

import copy
import io
import tarfile
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

import record_outcome
import register_model
from errors import ReportNotPublished
from registry import Registry
from report_publication import publish_report
from tests.functions.helpers import (
    BUCKET,
    REGION,
    REPORT_FILES,
    TABLE,
    Aws,
    load_event,
    report_archive,
    start_run,
    training_output_key,
    with_training_output,
)

MODEL = "medication-adherence-model"
PREFIX = f"reports/{MODEL}/v1/"
COMPARISON = {
    "method": "delong_paired",
    "roc_auc_difference": 0.0123,
    "standard_error": 0.004,
    "confidence": 0.95,
    "interval": [0.0045, 0.0201],
    "p_value": 0.0021,
    "rows": 20000,
    "positives": 2200,
}


def register_event(run_id: str = "console-run-20261126", comparison: dict | None = None) -> dict[str, Any]:
    """The sample RegisterModel event of run `run_id`, its gate carrying `comparison`."""
    event = copy.deepcopy(load_event("register_model.json"))
    event["run"].update(runId=run_id, idempotencyKey=f"k-{run_id}")
    event["training"]["artifactUri"] = f"s3://{BUCKET}/runs/{run_id}/model/job-1/output/model.tar.gz"
    gate = {"rule": "the rule", "min_roc_auc": 0.6, "max_auc_drop": 0.0, "comparison": comparison}
    event["evaluation"]["metrics"] = {**event["evaluation"]["metrics"], "gate": gate}
    if comparison is not None:
        event["evaluation"].update(championMetrics={"roc_auc": 0.66}, comparedChampionVersion=3)
    return event


def started(aws: Aws, event: dict[str, Any]) -> Registry:
    reg = Registry(TABLE, aws.dynamodb)
    start_run(reg, event["run"])
    return reg


def keys_under(aws: Aws, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in aws.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []))


def archive_with(add: Callable[[tarfile.TarFile], None]) -> bytes:
    """A gzipped tar with a good report.md and whatever `add` puts in beside it."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("report.md")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"# ok"))
        add(tar)
    return buffer.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "", body: bytes = b"x") -> Any:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = linkname
        info.size = len(body) if kind == tarfile.REGTYPE else 0
        tar.addfile(info, io.BytesIO(body) if kind == tarfile.REGTYPE else None)

    return add


# ---- publication -------------------------------------------------------------------------------
def test_each_report_file_lands_under_the_versions_prefix_with_its_content_type(aws: Aws) -> None:
    event = register_event()
    reg = started(aws, event)

    result = register_model.handler(with_training_output(event), None)

    assert result["reportUri"] == f"s3://{BUCKET}/{PREFIX}"
    assert keys_under(aws, "reports/") == sorted(PREFIX + name for name in REPORT_FILES)
    for name, body in REPORT_FILES.items():
        got = aws.s3.get_object(Bucket=BUCKET, Key=PREFIX + name)
        assert got["Body"].read() == body
    content_types = {
        name: aws.s3.head_object(Bucket=BUCKET, Key=PREFIX + name)["ContentType"] for name in REPORT_FILES
    }
    assert content_types == {
        "report.md": "text/markdown; charset=utf-8",
        "roc_curve.png": "image/png",
        "subgroups.json": "application/json",
    }
    assert reg.get_version(MODEL, 1)["report_uri"] == f"s3://{BUCKET}/{PREFIX}"
    assert reg.describe_version(MODEL, 1)["reportUri"] == f"s3://{BUCKET}/{PREFIX}"


def test_files_in_a_subfolder_keep_their_path_and_a_leading_dot_slash_is_dropped(aws: Aws) -> None:
    event = register_event()
    started(aws, event)

    register_model.handler(
        with_training_output(event, {"./report.md": b"# r", "plots/roc.png": b"png", "notes.bin": b"\0"}),
        None,
    )

    assert keys_under(aws, "reports/") == [
        PREFIX + "notes.bin",
        PREFIX + "plots/roc.png",
        PREFIX + "report.md",
    ]
    assert (
        aws.s3.head_object(Bucket=BUCKET, Key=PREFIX + "notes.bin")["ContentType"]
        == "application/octet-stream"
    )


def test_a_retried_registration_of_the_same_run_finds_its_own_report_and_succeeds(aws: Aws) -> None:
    event = with_training_output(register_event())
    reg = started(aws, event)

    first = register_model.handler(copy.deepcopy(event), None)
    again = register_model.handler(copy.deepcopy(event), None)

    assert again["version"] == first["version"] == 1
    assert again["reportUri"] == first["reportUri"]
    assert reg.get_version(MODEL, 1)["report_uri"] == first["reportUri"]


def test_an_existing_report_of_another_run_is_never_overwritten(aws: Aws) -> None:
    aws.s3.put_object(
        Bucket=BUCKET, Key=PREFIX + "report.md", Body=b"the older report", Metadata={"run-id": "older-run"}
    )
    event = register_event()
    reg = started(aws, event)

    with pytest.raises(ReportNotPublished) as raised:
        register_model.handler(with_training_output(event), None)

    message = str(raised.value)
    assert f"s3://{BUCKET}/{PREFIX}report.md already exists (written by run older-run)" in message
    assert "never overwritten" in message
    assert aws.s3.get_object(Bucket=BUCKET, Key=PREFIX + "report.md")["Body"].read() == b"the older report"
    assert "report_uri" not in reg.get_version(MODEL, 1)


def test_a_missing_output_archive_says_the_job_wrote_no_report(aws: Aws) -> None:
    event = register_event()
    started(aws, event)
    source = f"s3://{BUCKET}/{training_output_key(event['training']['artifactUri'])}"

    with pytest.raises(ReportNotPublished) as raised:
        register_model.handler(event, None)

    assert str(raised.value) == (
        f"the training job {event['training']['jobName']} left no output.tar.gz at {source} (S3 error "
        "NoSuchKey): the job wrote no report to SM_OUTPUT_DATA_DIR, so there is none to publish."
    )
    assert keys_under(aws, "reports/") == []


def test_a_model_artifact_outside_a_training_jobs_output_is_named(aws: Aws) -> None:
    event = register_event()
    event["training"]["artifactUri"] = f"s3://{BUCKET}/runs/x/model.tar.gz"
    started(aws, event)

    with pytest.raises(ReportNotPublished, match="is not a training job's <S3OutputPath>/<job>/output/"):
        register_model.handler(event, None)


def test_an_archive_that_is_not_a_tar_gz_is_said_to_be_one(aws: Aws) -> None:
    event = register_event()
    started(aws, event)
    aws.put(training_output_key(event["training"]["artifactUri"]), b"not a tarball")

    with pytest.raises(
        ReportNotPublished, match=r"is not a readable tar\.gz archive .*nothing was published"
    ):
        register_model.handler(event, None)


@pytest.mark.parametrize(
    ("add", "name", "why"),
    [
        (member("/etc/cron.d/evil"), "/etc/cron.d/evil", "its path is absolute"),
        (member("../../code/train.py"), "../../code/train.py", "its path climbs out of the report with '..'"),
        (member("plots/../../x.png"), "plots/../../x.png", "its path climbs out of the report with '..'"),
        (
            member("link.md", tarfile.SYMTYPE, "/etc/passwd"),
            "link.md",
            "it is a symbolic link (to '/etc/passwd')",
        ),
        (member("hard.md", tarfile.LNKTYPE, "report.md"), "hard.md", "it is a hard link (to 'report.md')"),
        (member("tty", tarfile.CHRTYPE), "tty", "it is a device file"),
        (member("disk", tarfile.BLKTYPE), "disk", "it is a device file"),
        (member("pipe", tarfile.FIFOTYPE), "pipe", "it is a FIFO"),
    ],
    ids=[
        "absolute",
        "dot-dot",
        "dot-dot-inside",
        "symlink",
        "hardlink",
        "char-device",
        "block-device",
        "fifo",
    ],
)
def test_an_unsafe_archive_member_refuses_the_whole_report_naming_the_member(
    aws: Aws, add: Callable[[tarfile.TarFile], None], name: str, why: str
) -> None:
    event = register_event()
    reg = started(aws, event)
    source = f"s3://{BUCKET}/{training_output_key(event['training']['artifactUri'])}"
    aws.put(training_output_key(event["training"]["artifactUri"]), archive_with(add))

    with pytest.raises(ReportNotPublished) as raised:
        register_model.handler(event, None)

    assert str(raised.value) == (
        f"the training output {source} holds the member {name!r}, which is refused because {why}; "
        "nothing was published."
    )
    assert keys_under(aws, "reports/") == []  # not even the good report.md before it
    assert "report_uri" not in reg.get_version(MODEL, 1)


def test_a_failed_write_names_the_object_and_the_s3_error_code() -> None:
    s3 = boto3.client("s3", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    data = report_archive({"report.md": b"# r"})
    with Stubber(s3) as stub:
        stub.add_response(
            "get_object", {"Body": StreamingBody(io.BytesIO(data), len(data)), "ContentLength": len(data)}
        )
        stub.add_client_error("put_object", service_error_code="SlowDown", http_status_code=503)
        with pytest.raises(ReportNotPublished) as raised:
            publish_report(
                s3,
                artifact_uri=f"s3://{BUCKET}/runs/r/model/j/output/model.tar.gz",
                job_name="j",
                bucket=BUCKET,
                model_name=MODEL,
                version=7,
                run_id="r",
            )

    assert str(raised.value) == (
        f"writing the report object s3://{BUCKET}/reports/{MODEL}/v7/report.md failed with S3 error "
        "SlowDown; the report is incomplete."
    )


def test_a_refused_read_of_the_archive_names_access_denied() -> None:
    s3 = boto3.client("s3", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(s3) as stub:
        stub.add_client_error("get_object", service_error_code="AccessDenied", http_status_code=403)
        with pytest.raises(ReportNotPublished, match=r"was refused \(S3 error AccessDenied\)"):
            publish_report(
                s3,
                artifact_uri=f"s3://{BUCKET}/runs/r/model/j/output/model.tar.gz",
                job_name="j",
                bucket=BUCKET,
                model_name=MODEL,
                version=7,
                run_id="r",
            )


# ---- the workflow's record and the notification ------------------------------------------------
def test_a_failed_publication_leaves_the_version_recorded_failed_not_looking_good(aws: Aws) -> None:
    event = register_event()
    reg = started(aws, event)
    with pytest.raises(ReportNotPublished) as raised:
        register_model.handler(event, None)  # no output.tar.gz
    failure = {
        "outcome": "FAILED",
        "runId": event["run"]["runId"],
        "executionArn": event["run"]["executionArn"],
        "failure": {"RegisterModel": {"Error": "ReportNotPublished", "Cause": str(raised.value)}},
    }

    result = record_outcome.handler(failure, None)

    version = reg.get_version(MODEL, 1)
    assert version["run_status"] == "FAILED" and version["promotion"] == "NOT_PROMOTED"
    assert reg.get_champion(MODEL) is None
    assert result["stage"] == "RegisterModel" and result["error"] == "ReportNotPublished"
    assert "left no output.tar.gz" in result["message"]
    assert "Report: not published (see the error above)." in result["message"]


def success_event(event: dict[str, Any], version: int) -> dict[str, Any]:
    success = copy.deepcopy(load_event("record_outcome_succeeded.json"))
    success["run"] = event["run"]
    success["evaluation"] = event["evaluation"]
    success["registration"]["version"] = version
    success["scoring"]["version"] = version
    return success


def test_the_success_message_quotes_the_report_and_the_delong_interval(aws: Aws) -> None:
    event = register_event(comparison=COMPARISON)
    started(aws, event)
    version = register_model.handler(with_training_output(event), None)["version"]

    result = record_outcome.handler(success_event(event, version), None)

    report = f"s3://{BUCKET}/{PREFIX}"
    assert result["reportUri"] == report
    assert f"Report: {report} (report.md and the files beside it)" in result["message"]
    assert (
        f"https://s3.console.aws.amazon.com/s3/buckets/{BUCKET}?region={REGION}&prefix={PREFIX}"
        in result["message"]
    )
    assert (
        "Comparison with champion v3 (DeLong, paired, 20000 rows, 2200 readmitted): ROC AUC difference "
        "+0.0123, 95% interval [+0.0045, +0.0201], p = 0.0021; the gate needs the lower end above 0."
    ) in result["message"]


def test_the_success_message_without_a_champion_says_there_was_no_comparison(aws: Aws) -> None:
    event = register_event(comparison=None)
    started(aws, event)
    version = register_model.handler(with_training_output(event), None)["version"]

    result = record_outcome.handler(success_event(event, version), None)

    assert (
        "Comparison with the champion: none (no champion was scored on the same rows)." in result["message"]
    )
    assert f"Report: s3://{BUCKET}/{PREFIX}" in result["message"]


def test_a_failure_after_registration_quotes_the_report_and_the_interval(aws: Aws) -> None:
    event = register_event(comparison=COMPARISON)
    started(aws, event)
    register_model.handler(with_training_output(event), None)
    failure = {
        "outcome": "FAILED",
        "runId": event["run"]["runId"],
        "executionArn": event["run"]["executionArn"],
        "failure": {"BatchTransform": {"Error": "States.TaskFailed", "Cause": "ClientError: crash"}},
    }

    result = record_outcome.handler(failure, None)

    assert f"Report: s3://{BUCKET}/{PREFIX} (report.md" in result["message"]
    assert "95% interval [+0.0045, +0.0201]" in result["message"]


def test_a_failure_before_registration_names_no_report(aws: Aws) -> None:
    result = record_outcome.handler(load_event("record_outcome_failed.json"), None)

    assert "Report:" not in result["message"] and "Comparison with" not in result["message"]

"""The local AWS endpoint across a restart: one state dir, two runtimes one after the other (moto is
process-wide, so this module starts its own instead of the shared module runtime)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from emulator.endpoint import AwsEndpoint
from emulator.progress import Progress
from emulator.runtime import LocalRuntime
from tests.emulator.conftest import FIXTURE_PROJECT
from tests.emulator.helpers import endpoint_client


def _client(endpoint: AwsEndpoint, service: str) -> Any:
    return endpoint_client(endpoint.url, service)


def test_stop_and_start_keep_the_objects_the_log_events_and_the_job_documents(tmp_path: Path) -> None:
    document = {
        "TrainingJobName": "kept-job",
        "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/kept-job",
        "TrainingJobStatus": "Completed",
        "CreationTime": 1_700_000_000_000,
        "FinalMetricDataList": [{"MetricName": "roc_auc", "Value": 0.7, "Timestamp": 1_700_000_001_000}],
    }
    with LocalRuntime(FIXTURE_PROJECT, tmp_path, progress=Progress(verbose_jobs=False)) as first:
        with AwsEndpoint(first, port=0) as endpoint:
            _client(endpoint, "s3").put_object(
                Bucket=first.stack.bucket, Key="elsewhere/kept.txt", Body=b"kept"
            )
        function = next(iter(first.stack.functions.values())).name
        first.cloudwatch.handler_line(function, "a line before the restart")
        first.cloudwatch.job_line("kept-job", "METRIC roc_auc=0.7")
        saved = {document["TrainingJobArn"]: {"kind": "TrainingJob", "document": document}}
        (tmp_path / "sagemaker_jobs.json").write_text(json.dumps(saved))  # a job an earlier run finished
        first.jobs = type(first.jobs)(first)  # re-read, as a start does
        first.save()
    with (
        LocalRuntime(FIXTURE_PROJECT, tmp_path, progress=Progress(verbose_jobs=False)) as second,
        AwsEndpoint(second, port=0) as endpoint,
    ):
        s3 = _client(endpoint, "s3")
        body = s3.get_object(Bucket=second.stack.bucket, Key="elsewhere/kept.txt")["Body"].read()
        logs = _client(endpoint, "logs")
        lambda_lines = logs.filter_log_events(logGroupName=f"/aws/lambda/{function}")["events"]
        job_lines = logs.filter_log_events(
            logGroupName="/aws/sagemaker/TrainingJobs", filterPattern="roc_auc"
        )["events"]
        described = _client(endpoint, "sagemaker").describe_training_job(TrainingJobName="kept-job")
        listed = _client(endpoint, "sagemaker").list_training_jobs()["TrainingJobSummaries"]
    assert body == b"kept"
    assert [e["message"] for e in lambda_lines] == ["a line before the restart"]
    assert [e["message"] for e in job_lines] == ["METRIC roc_auc=0.7"]
    assert job_lines[0]["logStreamName"].startswith("kept-job/algo-1-")
    assert described["TrainingJobStatus"] == "Completed"
    assert described["FinalMetricDataList"][0]["Value"] == 0.7
    assert described["CreationTime"].timestamp() == 1_700_000_000
    assert [j["TrainingJobName"] for j in listed] == ["kept-job"]

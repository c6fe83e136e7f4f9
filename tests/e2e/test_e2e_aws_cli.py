"""The guide's own commands against `python -m emulator api`: the stock AWS CLI and boto3 over HTTP.

One server process (as a user starts it), one full pipeline run: `aws s3 cp` of the plain 18 MB UCI
CSV (a multipart upload in 8 MiB parts) starts it through the template's EventBridge rule; then the
CLI reads the execution, the training job, its CloudWatch Logs lines and the registry. boto3 does the
same on a 3000-row slice (a short second run). The server is then stopped and started on the same
state dir: the run, the job, the logs and the registry answer as before."""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import DATASET, PROJECT, write_slice
from tests.emulator.helpers import endpoint_client

pytestmark = pytest.mark.slow
AWS_CLI = Path(sys.executable).with_name("aws")
BUCKET = "readmission-local-artifactbucket"
REGISTRY = "readmission-local-RegistryTable"
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:readmission-local-PipelineStateMachine"
MODEL = "medication-adherence-model"
TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    state_dir: Path
    url: str
    proc: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        """A user's shell: the endpoint exported, dummy credentials, no other AWS setting."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ENDPOINT_URL=self.url,
            AWS_ACCESS_KEY_ID="test",
            AWS_SECRET_ACCESS_KEY="test",
            AWS_DEFAULT_REGION="us-east-1",
        )
        return env

    def start(self) -> None:
        port = int(self.url.rsplit(":", 1)[1])
        log = open(self.state_dir.parent / "api.log", "ab")  # noqa: SIM115 - the process writes it
        # started from a shell that exported AWS_ENDPOINT_URL, as a user's is: the runtime ignores it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "emulator", "api", "--quiet", "--port", str(_free_port()),
             "--aws-port", str(port), "--state-dir", str(self.state_dir), "--parameter", "MinRocAuc=0"],
            cwd=PROJECT, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 180
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert self.proc.poll() is None, (self.state_dir.parent / "api.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "the AWS endpoint did not come up"
                time.sleep(0.5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # Ctrl-C: the runtime saves its state and closes
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def aws(self, *args: str) -> Any:
        done = subprocess.run(
            [str(AWS_CLI), *args, "--output", "json"], env=self.env(), capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, f"aws {' '.join(args)}: {done.stderr[-2000:]}"
        return json.loads(done.stdout) if done.stdout.strip() else None

    def client(self, service: str) -> Any:
        return endpoint_client(self.url, service)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = Served(tmp_path_factory.mktemp("endpoint") / "state", f"http://127.0.0.1:{_free_port()}")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _executions(served: Served) -> dict[str, str]:
    pages = served.client("stepfunctions").get_paginator("list_executions").paginate(stateMachineArn=MACHINE)
    return {e["executionArn"]: e["status"] for page in pages for e in page["executions"]}


def _the_new_run(served: Served, before: set[str]) -> str:
    """The one execution an upload started, once it ended (polled with boto3: cheap beside the CLI)."""
    deadline = time.monotonic() + 900
    while True:
        now = _executions(served)
        new = set(now) - before
        if new and all(now[arn] in TERMINAL for arn in new):
            assert len(new) == 1, f"one upload started {len(new)} runs"
            return new.pop()
        assert time.monotonic() < deadline, "the run did not end"
        time.sleep(2)


def _training_job_of(served: Served, arn: str) -> str:
    history = served.client("stepfunctions").get_execution_history(executionArn=arn, maxResults=1000)
    for event in history["events"]:
        details = event.get("taskScheduledEventDetails") or {}
        if details.get("resource", "").startswith("createTrainingJob"):
            return str(json.loads(details["parameters"])["TrainingJobName"])
    raise AssertionError("the run scheduled no training job")


def test_the_aws_cli_uploads_the_plain_csv_and_reads_the_run_its_job_logs_and_registry(
    served: Served, tmp_path: Path
) -> None:
    csv = tmp_path / "diabetic_data.csv"
    csv.write_bytes(gzip.decompress(DATASET.read_bytes()))
    assert csv.stat().st_size > 16 * 1024 * 1024  # the CLI sends it in 8 MiB parts
    before = set(_executions(served))
    copied = subprocess.run(
        [str(AWS_CLI), "s3", "cp", str(csv), f"s3://{BUCKET}/datasets/", "--only-show-errors"],
        env=served.env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert copied.returncode == 0, copied.stderr
    arn = _the_new_run(served, before)

    described = served.aws("stepfunctions", "describe-execution", "--execution-arn", arn)
    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["input"])["detail"]["object"]["key"] == "datasets/diabetic_data.csv"
    events = served.aws("stepfunctions", "get-execution-history", "--execution-arn", arn)["events"]
    assert events[-1]["type"] == "ExecutionSucceeded"

    job = _training_job_of(served, arn)
    listed = served.aws("sagemaker", "list-training-jobs")["TrainingJobSummaries"]
    assert job in [j["TrainingJobName"] for j in listed]
    training = served.aws("sagemaker", "describe-training-job", "--training-job-name", job)
    assert training["TrainingJobStatus"] == "Completed"
    metrics = {m["MetricName"]: m["Value"] for m in training["FinalMetricDataList"]}
    assert 0.5 < metrics["roc_auc"] < 1
    assert training["ModelArtifacts"]["S3ModelArtifacts"].endswith("/output/model.tar.gz")
    assert [t["Status"] for t in training["SecondaryStatusTransitions"]][-1] == "Completed"
    transforms = served.aws("sagemaker", "list-transform-jobs")["TransformJobSummaries"]
    assert any(t["TransformJobStatus"] == "Completed" for t in transforms)

    found = served.aws(
        "logs", "filter-log-events", "--log-group-name", "/aws/sagemaker/TrainingJobs",
        "--log-stream-name-prefix", job, "--filter-pattern", "roc_auc",
    )["events"]  # fmt: skip
    assert found and all(e["logStreamName"].startswith(f"{job}/algo-1-") for e in found)
    assert any(e["message"].startswith("METRIC roc_auc=") for e in found)
    named = served.aws(
        "logs", "filter-log-events", "--log-group-name", "/aws/sagemaker/TrainingJobs",
        "--filter-pattern", "medication-adherence",
    )["events"]  # fmt: skip  # the issue's own command: the model's name finds its training job's lines
    first_line = f"training model {MODEL} in job {job}"
    assert any(
        e["logStreamName"].startswith(f"{job}/") and e["message"].startswith(first_line) for e in named
    ), named
    lambda_groups = served.aws("logs", "describe-log-groups", "--log-group-name-prefix", "/aws/lambda/")
    assert len(lambda_groups["logGroups"]) >= 3  # each function that ran has its group

    items = served.aws("dynamodb", "scan", "--table-name", REGISTRY)["Items"]
    versions = [i for i in items if i["pk"]["S"] == f"MODEL#{MODEL}" and i["sk"]["S"].startswith("VERSION#")]
    assert versions, items

    # the run's notification, from the queue the runtime subscribes to the topic (the CLI v1 replaces
    # SQS's endpoint by its own unless --endpoint-url is given: AWS_ENDPOINT_URL alone is not enough)
    sqs = ("sqs", "--endpoint-url", served.url)
    queue = served.aws(*sqs, "get-queue-url", "--queue-name", "readmission-local-NotificationTopic-inbox")
    received = served.aws(
        *sqs, "receive-message", "--queue-url", queue["QueueUrl"], "--max-number-of-messages", "10"
    )
    notes = [json.loads(m["Body"]) for m in (received or {}).get("Messages", [])]
    assert any(described["name"] in n.get("Message", "") for n in notes), notes

    # ---- the same with boto3, on a short slice (a second run) ---------------------------------------
    before = set(_executions(served))
    served.client("s3").upload_file(
        str(write_slice(tmp_path / "slice.csv", 20_000)), BUCKET, "datasets/slice.csv"
    )
    second = _the_new_run(served, before)
    sfn = served.client("stepfunctions")
    assert sfn.describe_execution(executionArn=second)["status"] == "SUCCEEDED"
    sagemaker = served.client("sagemaker")
    second_job = _training_job_of(served, second)
    assert sagemaker.describe_training_job(TrainingJobName=second_job)["TrainingJobStatus"] == "Completed"
    lines = served.client("logs").filter_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=second_job, filterPattern="roc_auc"
    )["events"]
    assert lines
    scanned = served.client("dynamodb").scan(TableName=REGISTRY)["Items"]
    assert len([i for i in scanned if i["sk"]["S"].startswith("VERSION#")]) == len(versions) + 1

    # ---- stop and start: the same runs, jobs, logs, objects and registry ------------------------------
    served.stop()
    served.start()
    assert served.aws("stepfunctions", "describe-execution", "--execution-arn", arn)["status"] == "SUCCEEDED"
    assert served.aws("sagemaker", "describe-training-job", "--training-job-name", job)[
        "TrainingJobStatus"
    ] == ("Completed")
    again = served.aws(
        "logs", "filter-log-events", "--log-group-name", "/aws/sagemaker/TrainingJobs",
        "--log-stream-name-prefix", job, "--filter-pattern", "roc_auc",
    )["events"]  # fmt: skip
    assert [e["message"] for e in again] == [e["message"] for e in found]
    assert len(served.aws("dynamodb", "scan", "--table-name", REGISTRY)["Items"]) == len(scanned)
    head = served.aws("s3api", "head-object", "--bucket", BUCKET, "--key", "datasets/diabetic_data.csv")
    assert head["ContentLength"] == csv.stat().st_size

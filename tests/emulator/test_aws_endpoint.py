"""The local AWS endpoint (`emulator api --aws-port`): AWS's protocols and error codes from the runtime.

Clients here are boto3's with `endpoint_url` and dummy credentials (real HTTP to 127.0.0.1, as a
user's script would), plus the stock AWS CLI as a subprocess where its own behaviour matters. The
runtime is the fixture project's (a miniature stack: its runs take seconds)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator.endpoint import AwsEndpoint
from emulator.runtime import LocalRuntime
from tests.emulator.helpers import endpoint_client

AWS_CLI = Path(sys.executable).with_name("aws")
TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


@pytest.fixture(scope="module")
def endpoint(runtime: LocalRuntime) -> Iterator[AwsEndpoint]:
    with AwsEndpoint(runtime, port=0) as served:
        yield served


def client(endpoint: AwsEndpoint, service: str) -> Any:
    """A client as a user's script builds one against the endpoint (no retries: one answer each)."""
    return endpoint_client(endpoint.url, service, retries=1)


def aws(endpoint: AwsEndpoint, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=endpoint.url,
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION="us-east-1",
    )
    return subprocess.run([str(AWS_CLI), *args], env=env, capture_output=True, text=True, timeout=120)


def error_code(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    return str(raised.value.response["Error"]["Code"])


def wait_ended(endpoint: AwsEndpoint, arns: list[str]) -> list[dict[str, Any]]:
    sfn = client(endpoint, "stepfunctions")
    deadline = time.monotonic() + 300
    while True:
        described = [sfn.describe_execution(executionArn=arn) for arn in arns]
        if all(d["status"] in TERMINAL for d in described) or time.monotonic() > deadline:
            return described
        time.sleep(0.5)


def executions(runtime: LocalRuntime, endpoint: AwsEndpoint) -> set[str]:
    pages = client(endpoint, "stepfunctions").get_paginator("list_executions")
    return {
        e["executionArn"]
        for page in pages.paginate(stateMachineArn=runtime.state_machine_arn)
        for e in page["executions"]
    }


def test_the_aws_cli_sees_the_stacks_bucket_table_state_machine_and_topic(
    runtime: LocalRuntime, endpoint: AwsEndpoint
) -> None:
    listed = aws(endpoint, "s3", "ls")
    assert listed.returncode == 0, listed.stderr
    assert runtime.stack.bucket in listed.stdout
    tables = json.loads(aws(endpoint, "dynamodb", "list-tables").stdout)["TableNames"]
    assert runtime.stack.table.name in tables
    machines = client(endpoint, "stepfunctions").list_state_machines()["stateMachines"]
    assert [m["stateMachineArn"] for m in machines] == [runtime.state_machine_arn]
    topics = {t["TopicArn"] for t in client(endpoint, "sns").list_topics()["Topics"]}
    assert set(runtime.stack.topics.values()) <= topics


def test_bad_requests_get_aws_error_codes_not_tracebacks(
    runtime: LocalRuntime, endpoint: AwsEndpoint
) -> None:
    missing = runtime.state_machine_arn.replace(":stateMachine:", ":execution:") + ":no-such-run"
    assert error_code(client(endpoint, "s3").list_objects_v2, Bucket="no-such-bucket") == "NoSuchBucket"
    sfn = client(endpoint, "stepfunctions")
    assert error_code(sfn.describe_execution, executionArn=missing) == "ExecutionDoesNotExist"
    assert error_code(sfn.get_execution_history, executionArn=missing) == "ExecutionDoesNotExist"
    code = error_code(client(endpoint, "dynamodb").scan, TableName="no-such-table")
    assert code == "ResourceNotFoundException"
    sagemaker = client(endpoint, "sagemaker")
    assert error_code(sagemaker.describe_training_job, TrainingJobName="no-such-job") == "ValidationException"
    assert (
        error_code(sagemaker.describe_transform_job, TransformJobName="no such job") == "ValidationException"
    )
    # an input that is not JSON: Step Functions' own code (moto fails parsing it)
    bad = error_code(sfn.start_execution, stateMachineArn=runtime.state_machine_arn, input="{not json")
    assert bad == "InvalidExecutionInput"


def test_the_aws_cli_reports_a_missing_bucket_by_its_s3_error(endpoint: AwsEndpoint) -> None:
    listed = aws(endpoint, "s3", "ls", "s3://no-such-bucket")
    assert listed.returncode != 0
    assert "NoSuchBucket" in listed.stderr
    assert "Traceback" not in listed.stderr


def test_sagemaker_calls_other_than_the_job_reads_are_refused_with_a_validation_error(
    endpoint: AwsEndpoint,
) -> None:
    sagemaker = client(endpoint, "sagemaker")
    with pytest.raises(ClientError) as raised:
        sagemaker.stop_training_job(TrainingJobName="any")
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert "not served by the local endpoint" in raised.value.response["Error"]["Message"]


def test_moto_s_own_reset_api_is_not_served_and_the_state_stays(
    runtime: LocalRuntime, endpoint: AwsEndpoint
) -> None:
    request = urllib.request.Request(f"{endpoint.url}/moto-api/reset", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 403
    assert runtime.stack.bucket in {b["Name"] for b in client(endpoint, "s3").list_buckets()["Buckets"]}


def test_a_key_outside_the_rules_prefix_starts_nothing(runtime: LocalRuntime, endpoint: AwsEndpoint) -> None:
    before = executions(runtime, endpoint)
    s3 = client(endpoint, "s3")
    s3.put_object(Bucket=runtime.stack.bucket, Key="elsewhere/small.csv", Body=b"id,x,y\n1,2,3\n")
    s3.put_object(Bucket=runtime.stack.bucket, Key=f"{runtime.scoring_prefix}small.csv", Body=b"id\n1\n")
    assert executions(runtime, endpoint) == before


def test_two_uploads_at_once_start_two_runs_each_with_its_own_object(
    runtime: LocalRuntime, endpoint: AwsEndpoint, dataset: Path
) -> None:
    before = executions(runtime, endpoint)
    keys = [f"{runtime.datasets_prefix}at-once-{n}.csv" for n in (1, 2)]

    def upload(key: str) -> None:
        client(endpoint, "s3").put_object(Bucket=runtime.stack.bucket, Key=key, Body=dataset.read_bytes())

    threads = [threading.Thread(target=upload, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    started = sorted(executions(runtime, endpoint) - before)
    assert len(started) == 2
    described = wait_ended(endpoint, started)
    # each run's input names its own object (the fixture rule's InputTransformer keeps the key)
    assert sorted(next(k for k in keys if k in d["input"]) for d in described) == keys
    assert all(d["status"] in TERMINAL for d in described)


def test_a_multipart_upload_starts_one_run_not_two(runtime: LocalRuntime, endpoint: AwsEndpoint) -> None:
    """moto emits two Object Created events for one CompleteMultipartUpload; S3 (and here) one."""
    before = executions(runtime, endpoint)
    s3 = client(endpoint, "s3")
    key = f"{runtime.datasets_prefix}multipart.csv"
    upload = s3.create_multipart_upload(Bucket=runtime.stack.bucket, Key=key)
    part = b"id,x,y\n" + b"1,2,3\n" * (5 * 1024 * 1024 // 6 + 1)  # parts but the last are >= 5 MiB
    etags = [
        s3.upload_part(
            Bucket=runtime.stack.bucket, Key=key, UploadId=upload["UploadId"], PartNumber=n, Body=body
        )["ETag"]
        for n, body in ((1, part), (2, b"4,5,6\n"))
    ]
    s3.complete_multipart_upload(
        Bucket=runtime.stack.bucket,
        Key=key,
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in zip((1, 2), etags, strict=True)]},
    )
    started = sorted(executions(runtime, endpoint) - before)
    assert len(started) == 1
    wait_ended(endpoint, started)


def test_start_execution_with_the_console_input_file_starts_a_run_like_the_console(
    runtime: LocalRuntime, endpoint: AwsEndpoint, tmp_path: Path
) -> None:
    body = {"datasetUri": f"s3://{runtime.stack.bucket}/{runtime.datasets_prefix}none.csv"}
    path = tmp_path / "console_input.json"
    path.write_text(json.dumps(body))
    started = aws(
        endpoint,
        "stepfunctions",
        "start-execution",
        "--state-machine-arn",
        runtime.state_machine_arn,
        "--input",
        f"file://{path}",
    )
    assert started.returncode == 0, started.stderr
    arn = json.loads(started.stdout)["executionArn"]
    (described,) = wait_ended(endpoint, [arn])
    assert json.loads(described["input"]) == body
    history = client(endpoint, "stepfunctions").get_execution_history(executionArn=arn)["events"]
    assert history[0]["type"] == "ExecutionStarted"
    assert history[-1]["type"].startswith("Execution") and history[-1]["type"] != "ExecutionStarted"


def test_handler_lines_are_log_events_under_aws_lambda_with_their_function_name(
    runtime: LocalRuntime, endpoint: AwsEndpoint
) -> None:
    function = next(iter(runtime.stack.functions.values())).name
    runtime.cloudwatch.handler_line(function, "a line the handler wrote")
    logs = client(endpoint, "logs")
    found = logs.filter_log_events(logGroupName=f"/aws/lambda/{function}", filterPattern="handler")["events"]
    assert [e["message"] for e in found][-1:] == ["a line the handler wrote"]
    assert found[-1]["timestamp"] > 0
    groups = {g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]}
    assert {"/aws/sagemaker/TrainingJobs", "/aws/sagemaker/TransformJobs"} <= groups


def test_filter_log_events_selects_streams_by_their_name_prefix(
    endpoint: AwsEndpoint, runtime: LocalRuntime
) -> None:
    """moto ignores logStreamNamePrefix; CloudWatch (and the endpoint) search only those streams."""
    runtime.cloudwatch.job_line("prefix-job-a", "METRIC roc_auc=0.61")
    runtime.cloudwatch.job_line("prefix-job-b", "METRIC roc_auc=0.72")
    logs = client(endpoint, "logs")
    group = "/aws/sagemaker/TrainingJobs"
    found = logs.filter_log_events(
        logGroupName=group, logStreamNamePrefix="prefix-job-b/", filterPattern="roc_auc"
    )
    assert [e["message"] for e in found["events"]] == ["METRIC roc_auc=0.72"]
    assert found["events"][0]["logStreamName"].startswith("prefix-job-b/algo-1-")
    none = logs.filter_log_events(logGroupName=group, logStreamNamePrefix="no-such-job")
    assert none["events"] == []
    both = logs.filter_log_events(
        logGroupName=group, filterPattern="roc_auc", logStreamNamePrefix="prefix-job-"
    )
    assert sorted(e["message"] for e in both["events"]) == ["METRIC roc_auc=0.61", "METRIC roc_auc=0.72"]


def test_what_the_topic_publishes_is_read_from_its_inbox_queue(
    runtime: LocalRuntime, endpoint: AwsEndpoint
) -> None:
    [topic] = runtime.stack.topics.values()
    client(endpoint, "sns").publish(TopicArn=topic, Subject="run ended", Message="run 42 SUCCEEDED")
    sqs = client(endpoint, "sqs")
    url = sqs.get_queue_url(QueueName=topic.rsplit(":", 1)[1] + "-inbox")["QueueUrl"]
    bodies: list[dict[str, Any]] = []
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        bodies += [json.loads(m["Body"]) for m in got]  # the runs of other tests notified here too
        for message in got:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    ours = [b for b in bodies if b.get("Message") == "run 42 SUCCEEDED"]
    assert [(b["Subject"], b["TopicArn"], b["Type"]) for b in ours] == [("run ended", topic, "Notification")]


def test_api_on_another_host_warns_and_a_taken_aws_port_is_a_usage_error(tmp_path: Path) -> None:
    """No traceback when the port is taken (another local AWS tool): exit 2 and what to do."""
    import socket

    from tests.emulator.conftest import FIXTURE_PROJECT

    with socket.socket() as taken, socket.socket() as free:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        free.bind(("127.0.0.1", 0))
        rest_port = free.getsockname()[1]
        free.close()
        done = subprocess.run(
            [sys.executable, "-m", "emulator", "api", "--project", str(FIXTURE_PROJECT), "--quiet",
             "--state-dir", str(tmp_path), "--host", "0.0.0.0", "--port", str(rest_port),
             "--aws-port", str(taken.getsockname()[1])],
            cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "NO authentication" in done.stderr
    assert "cannot serve the AWS endpoint" in done.stderr and "--aws-port" in done.stderr
    assert "Traceback" not in done.stderr

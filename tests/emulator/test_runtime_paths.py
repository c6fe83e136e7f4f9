"""Every path of the fixture workflow on the local runtime, asserted on the history and the stores.

The fixture ASL has the real workflow's integrations (lambda:invoke, a plain function ARN,
SageMaker training/model/transform/processing with .sync, DynamoDB, SNS, Retry and Catch), so
these tests pin the runtime's behaviour independently of the project's own functions and jobs.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import boto3
import pytest

from emulator.progress import error_names
from emulator.runtime import LocalRuntime


def visited(record: dict) -> list[str]:
    return [s["state"] for s in record["states"]]


def keys_under(runtime: LocalRuntime, prefix: str) -> list[str]:
    s3 = boto3.client("s3")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=runtime.stack.bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def run_item(runtime: LocalRuntime, run_id: str) -> dict:
    item = boto3.client("dynamodb").get_item(
        TableName=runtime.stack.table.name, Key={"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": "RUN"}}
    )
    return {k: next(iter(v.values())) for k, v in item["Item"].items()}


def console_input(runtime: LocalRuntime, dataset: Path, **extra: object) -> dict:
    return {"datasetUri": runtime.put_file(dataset, runtime.datasets_prefix), **extra}


def test_upload_starts_the_workflow_through_the_eventbridge_rule(
    runtime: LocalRuntime, dataset: Path
) -> None:
    record = runtime.run_upload(dataset)

    assert record["status"] == "SUCCEEDED"
    assert visited(record) == [
        "Prepare",
        "Train",
        "Evaluate",
        "CreateModel",
        "Transform",
        "Drift",
        "Record",
        "Notify",
        "Done",
    ]
    assert "States.Runtime" not in error_names(record["events"])
    # the rule's InputTransformer shaped the input from the event moto built for the stored object
    assert record["input"] == {
        "datasetUri": f"s3://{runtime.stack.bucket}/datasets/small.csv",
        "trigger": "s3",
    }
    run_id = record["name"]
    prefix = f"runs/{run_id}/"
    keys = keys_under(runtime, prefix)
    training_job = record["output"]["run"]["trainingJobName"]
    assert f"{prefix}model/{training_job}/output/model.tar.gz" in keys
    assert f"{prefix}model/{training_job}/output/output.tar.gz" in keys
    assert f"{prefix}predictions/small.csv.out" in keys
    assert f"{prefix}drift/drift_report.json" in keys
    predictions = boto3.client("s3").get_object(
        Bucket=runtime.stack.bucket, Key=f"{prefix}predictions/small.csv.out"
    )
    assert predictions["Body"].read().decode().splitlines() == [
        "id,probability,prediction",
        "1,0.25,0",
        "4,0.25,0",
        "7,0.25,0",
    ]
    assert run_item(runtime, run_id) == {
        "pk": f"RUN#{run_id}",
        "sk": "RUN",
        "status": "SUCCEEDED",
        "decision": "approved",
    }


def test_lambda_gets_the_function_environment_and_a_lambda_context(
    runtime: LocalRuntime, dataset: Path
) -> None:
    record = runtime.run(console_input(runtime, dataset))
    run = record["output"]["run"]
    assert run["function"] == runtime.stack.functions["PrepareFunction"].name
    assert run["stage"] == "development"  # Globals environment, !If resolved
    assert 0 < run["remainingMs"] <= 30_000  # the function's Timeout


def test_training_failure_reason_reaches_the_catch(runtime: LocalRuntime, dataset: Path) -> None:
    record = runtime.run(console_input(runtime, dataset, mode="fail"))

    assert record["status"] == "FAILED"
    assert visited(record) == ["Prepare", "Train", "RecordFailure", "Failed"]
    assert record["error"] == "States.TaskFailed"
    cause = json.loads(record["cause"])
    assert cause["TrainingJobStatus"] == "Failed"
    assert cause["FailureReason"].startswith("AlgorithmError: ValueError: the fixture was told to fail")
    assert "States.Runtime" not in error_names(record["events"])
    assert run_item(runtime, record["name"])["status"] == "FAILED"
    assert keys_under(runtime, f"runs/{record['name']}/model/") == []  # a failed job uploads no model


def test_training_crash_without_failure_file_reports_the_exit_code(
    runtime: LocalRuntime, dataset: Path
) -> None:
    record = runtime.run(console_input(runtime, dataset, mode="crash"))
    assert "exit code 3" in json.loads(record["cause"])["FailureReason"]


def test_sagemaker_throttling_is_retried_by_the_asl(runtime: LocalRuntime, dataset: Path) -> None:
    runtime.faults.sagemaker_throttle("CreateTrainingJob", times=1)

    record = runtime.run(console_input(runtime, dataset))

    assert record["status"] == "SUCCEEDED"
    failed = [e for e in record["events"] if e["type"] == "TaskFailed"]
    assert len(failed) == 1
    details = failed[0]["taskFailedEventDetails"]
    assert details["error"] == "SageMaker.AmazonSageMakerException"
    assert "Error Code: ThrottlingException" in details["cause"]


def test_lambda_service_exception_is_retried_then_succeeds(runtime: LocalRuntime, dataset: Path) -> None:
    runtime.faults.lambda_error("PrepareFunction", "Lambda.ServiceException", times=1)

    record = runtime.run(console_input(runtime, dataset))

    assert record["status"] == "SUCCEEDED"
    assert error_names(record["events"]) == ["Lambda.ServiceException"]
    assert visited(record)[:2] == ["Prepare", "Train"]


def test_function_arn_resource_uses_the_same_lambda_contract(runtime: LocalRuntime, dataset: Path) -> None:
    runtime.faults.lambda_error("EvaluateFunction", "ModelRejected", times=1)  # the handler's own error

    record = runtime.run(console_input(runtime, dataset))

    assert record["status"] == "FAILED"
    assert visited(record)[-2:] == ["RecordFailure", "Failed"]
    assert record["error"] == "ModelRejected"  # errorType became the ASL error name; not retried


def test_handler_exception_class_name_is_the_error_name(runtime: LocalRuntime) -> None:
    record = runtime.run({"noDataset": True})

    assert record["status"] == "FAILED"
    assert record["error"] == "InvalidDataset"
    assert json.loads(record["cause"])["errorMessage"] == "datasetUri is required"


def test_transform_payload_over_the_limit_fails_with_sagemakers_message(
    runtime: LocalRuntime, tmp_path: Path
) -> None:
    big = tmp_path / "big.csv.gz"
    rows = "".join(f"{i},{'x' * 40},{i}\n" for i in range(60_000))  # ~2.8 MB uncompressed
    big.write_bytes(gzip.compress(("id,x,y\n" + rows).encode()))

    record = runtime.run(console_input(runtime, big, compression="Gzip", maxPayload=1))

    assert record["status"] == "FAILED"
    assert visited(record)[-3:] == ["Transform", "RecordFailure", "Failed"]
    cause = json.loads(record["cause"])
    assert cause["TransformJobStatus"] == "Failed"
    assert cause["FailureReason"].startswith("ClientError: Too much data for max payload size")


def test_line_split_multi_record_scores_every_row(runtime: LocalRuntime, tmp_path: Path) -> None:
    lines = tmp_path / "lines.csv"
    lines.write_text("".join(f"{i},1,2\n" for i in range(5)))

    record = runtime.run(console_input(runtime, lines, splitType="Line", batchStrategy="MultiRecord"))

    assert record["status"] == "SUCCEEDED"
    key = f"runs/{record['name']}/predictions/lines.csv.out"
    body = boto3.client("s3").get_object(Bucket=runtime.stack.bucket, Key=key)["Body"].read().decode()
    assert [line.split(",")[0] for line in body.splitlines() if not line.startswith("id")] == list("01234")


def test_injected_job_failure_becomes_the_failure_reason(runtime: LocalRuntime, dataset: Path) -> None:
    runtime.faults.fail_job("ProcessingJob", "AlgorithmError: disk full")

    record = runtime.run(console_input(runtime, dataset))

    assert visited(record)[-3:] == ["Drift", "RecordFailure", "Failed"]
    assert json.loads(record["cause"])["FailureReason"] == "AlgorithmError: disk full"


def test_api_routes_reach_the_function_and_start_executions(runtime: LocalRuntime, dataset: Path) -> None:
    uri = runtime.put_file(dataset, runtime.datasets_prefix)

    started = runtime.api.request("POST", "/training", json.dumps({"datasetUri": uri}))
    assert started.status == 202
    record = runtime.wait(started.json()["executionArn"])
    assert record["status"] == "SUCCEEDED"

    found = runtime.api.request("GET", f"/runs/{record['name']}")
    assert found.status == 200 and found.json()["decision"] == "approved"
    assert runtime.api.request("GET", "/runs/nope").status == 404
    assert runtime.api.request("GET", "/nowhere").status == 403  # API Gateway: no such route


def test_every_finished_execution_is_recorded(runtime: LocalRuntime, dataset: Path) -> None:
    before = {r["name"] for r in runtime.state.executions()}
    succeeded = runtime.run(console_input(runtime, dataset))
    failed = runtime.run({"noDataset": True})
    runtime.save()  # what the CLI and the API server do after executions end

    recorded = list(runtime.state.executions())
    names = [r["name"] for r in recorded]
    assert len(names) == len(set(names))  # each once
    assert {r["name"]: r["status"] for r in recorded if r["name"] not in before} == {
        succeeded["name"]: "SUCCEEDED",
        failed["name"]: "FAILED",
    }
    assert all(r["status"] in ("SUCCEEDED", "FAILED") for r in recorded)


@pytest.mark.parametrize("bad", [{"datasetUri": 3}])
def test_bad_input_fails_the_execution_not_the_runtime(runtime: LocalRuntime, bad: dict) -> None:
    record = runtime.run(bad)
    assert record["status"] == "FAILED"
    assert "States.Runtime" not in error_names(record["events"])


def test_api_server_turns_http_requests_into_executions(runtime: LocalRuntime, dataset: Path) -> None:
    import urllib.error
    import urllib.request

    from emulator.api import serve

    uri = runtime.put_file(dataset, runtime.datasets_prefix)
    server = serve(runtime, port=0)
    thread = __import__("threading").Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        request = urllib.request.Request(
            f"{base}/training",
            data=json.dumps({"datasetUri": uri}).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 202
            arn = json.loads(response.read())["executionArn"]
        record = runtime.wait(arn)
        assert record["status"] == "SUCCEEDED"
        with urllib.request.urlopen(f"{base}/runs/{record['name']}", timeout=30) as response:
            assert json.loads(response.read())["status"] == "SUCCEEDED"
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{base}/unknown", timeout=30)
        assert missing.value.code == 403
    finally:
        server.shutdown()
        server.stopped.set()
        server.server_close()


def test_history_in_reverse_order_starts_with_the_newest_event(runtime: LocalRuntime, dataset: Path) -> None:
    # GET /executions/{id} reads the current state from the first StateEntered of a reversed history
    record = runtime.run(console_input(runtime, dataset))

    forward = runtime.sfn.get_execution_history(executionArn=record["executionArn"], maxResults=1000)
    backward = runtime.sfn.get_execution_history(
        executionArn=record["executionArn"], maxResults=1000, reverseOrder=True
    )

    assert [e["id"] for e in backward["events"]] == [e["id"] for e in reversed(forward["events"])]
    assert backward["events"][0]["type"] == "ExecutionSucceeded"
    last_entered = next(e for e in backward["events"] if "stateEnteredEventDetails" in e)
    assert last_entered["stateEnteredEventDetails"]["name"] == visited(record)[-1]

"""The local runtime refuses what AWS refuses, and names the errors as Step Functions names them.

Each test runs the fixture workflow with one thing AWS would refuse and asserts what the history
shows: the error name a Retry/Catch matches on, and the cause the user reads.
"""

from __future__ import annotations

from pathlib import Path

from emulator.runtime import LocalRuntime


def visited(record: dict) -> list[str]:
    return [s["state"] for s in record["states"]]


def failures(record: dict) -> list[dict]:
    return [
        e.get("taskFailedEventDetails") or e.get("lambdaFunctionFailedEventDetails") or {}
        for e in record["events"]
        if e["type"] in ("TaskFailed", "LambdaFunctionFailed")
    ]


def console_input(runtime: LocalRuntime, dataset: Path, **extra: object) -> dict:
    return {"datasetUri": runtime.put_file(dataset, runtime.datasets_prefix), **extra}


def test_an_instance_quota_reaches_the_asl_as_resource_limit_exceeded(
    runtime: LocalRuntime, dataset: Path
) -> None:
    runtime.faults.sagemaker_error(
        "CreateTrainingJob",
        "ResourceLimitExceeded",
        "The account-level service limit 'ml.m5.large for training job usage' is 0 Instances",
    )

    record = runtime.run(console_input(runtime, dataset))

    # the fixture retries only SageMaker.AmazonSageMakerException: a quota error is not one
    assert record["status"] == "FAILED"
    assert visited(record)[-2:] == ["RecordFailure", "Failed"]
    [failed] = failures(record)
    assert failed["error"] == "SageMaker.ResourceLimitExceededException"
    assert "Error Code: ResourceLimitExceeded" in failed["cause"]


def test_a_request_sagemaker_would_refuse_fails_with_its_validation_message(
    runtime: LocalRuntime, dataset: Path
) -> None:
    record = runtime.run(console_input(runtime, dataset, maxPayload=101))  # CreateTransformJob allows 100

    assert record["status"] == "FAILED"
    assert visited(record)[-3:] == ["Transform", "RecordFailure", "Failed"]
    [failed] = failures(record)
    assert failed["error"] == "SageMaker.AmazonSageMakerException"
    assert "Error Code: ValidationException" in failed["cause"]
    assert "Value '101' at 'maxPayloadInMB' failed to satisfy constraint" in failed["cause"]


def test_an_unmodeled_invoke_error_is_named_aws_lambda_exception(
    runtime: LocalRuntime, dataset: Path
) -> None:
    runtime.faults.lambda_error("PrepareFunction", "Lambda.AccessDeniedException", times=1)

    record = runtime.run(console_input(runtime, dataset))

    assert record["status"] == "FAILED"
    assert [f["error"] for f in failures(record)][:1] == ["Lambda.AWSLambdaException"]
    assert "Error Code: AccessDeniedException" in failures(record)[0]["cause"]

"""Handlers run under Lambda's context or none (tests, the local runtime) and publish EMF metrics."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

import evaluate_model
from tests.functions.helpers import Aws
from tests.functions.test_evaluate_model import event_with, metrics_doc


@dataclass
class FakeLambdaContext:
    function_name: str = "EvaluateModelFunction"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:EvaluateModelFunction"
    aws_request_id: str = "5b2e1e0c-0000-4000-8000-000000000001"


def emf_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]


def test_a_handler_under_a_lambda_context_publishes_its_metric(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    result = evaluate_model.handler(event_with(aws, metrics_doc(0.7)), FakeLambdaContext())

    out = capsys.readouterr().out
    assert result["decision"] == "approved"
    [emf] = emf_lines(out)
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ReadmissionMLOpsTest"
    assert emf["ModelsApproved"] == [1.0]


def test_a_failing_handler_publishes_nothing_and_raises_its_own_error(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    event = event_with(aws, None)

    with pytest.raises(Exception, match="metrics") as caught:
        evaluate_model.handler(event, None)

    assert type(caught.value).__name__ == "InvalidModelArtifact"
    assert emf_lines(capsys.readouterr().out) == []

"""The ASL against the AWS service models botocore ships: what a response may omit, what errors are named.

The local runtime answers every Describe* with every field and reports errors under the names it was
written with, so neither defect below shows in a local run; on AWS both end an execution past its
Catch or retry the wrong errors. Each rule is also shown catching a seeded defect.

- A ResultSelector path through a member botocore does not mark required fails the state with
  `States.Runtime` whenever AWS omits it, and `States.ALL` does not catch `States.Runtime`: the run would
  end without RecordFailure (its registry entry RUNNING for ever).
- Step Functions names a service's modeled error `<Service>.<Shape>` (+ `Exception` when the shape name
  lacks it) and every other one `SageMaker.AmazonSageMakerException` / `Lambda.AWSLambdaException`; an
  ErrorEquals entry spelled otherwise never matches.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import botocore.session
import pytest

ROOT = Path(__file__).resolve().parents[2]
ASL_PATH = ROOT / "statemachine" / "readmission_pipeline.asl.json"

# The response a SageMaker task's ResultSelector reads: a .sync task returns the Describe* output.
SAGEMAKER_RESPONSES = {
    "createTrainingJob.sync": "DescribeTrainingJob",
    "createTransformJob.sync": "DescribeTransformJob",
    "createProcessingJob.sync": "DescribeProcessingJob",
    "createTrainingJob": "CreateTrainingJob",
    "createTransformJob": "CreateTransformJob",
    "createProcessingJob": "CreateProcessingJob",
    "createModel": "CreateModel",
}
# Errors a service integration raises that no operation models (Step Functions error-handling guide).
UNMODELED = {
    "sagemaker": {"SageMaker.AmazonSageMakerException"},
    "lambda": {"Lambda.AWSLambdaException", "Lambda.SdkClientException"},
}
SERVICE_PREFIX = {"sagemaker": "SageMaker", "lambda": "Lambda"}
LAMBDA_OPERATION = "Invoke"
JOB_LOOPS = ("TrainModel", "EnrichHistory", "BatchTransform", "MonitorDrift")
# Worth a new attempt (under a new name: $$.State.RetryCount) after the back-off: throttling/service
# errors, an instance quota that other jobs may free, and a name collision (an attempt re-sending a name).
JOB_LOOP_ERRORS = {
    "SageMaker.AmazonSageMakerException",
    "SageMaker.ResourceLimitExceededException",
    "SageMaker.ResourceInUseException",
}


@pytest.fixture(scope="module")
def sagemaker() -> Any:
    return botocore.session.get_session().get_service_model("sagemaker")


@pytest.fixture(scope="module")
def service_models() -> dict[str, Any]:
    session = botocore.session.get_session()
    return {name: session.get_service_model(name) for name in SERVICE_PREFIX}


@pytest.fixture(scope="module")
def states() -> dict[str, Any]:
    # A number from the template (the jobs' Retry) is an unquoted placeholder: JSON once substituted.
    return json.loads(re.sub(r"(?<=: )\$\{\w+\}", "1", ASL_PATH.read_text()))["States"]


def integration(state: dict[str, Any]) -> tuple[str, str] | None:
    """(service, api) of a Task's `arn:${Partition}:states:::<service>:<api>` resource."""
    match = re.fullmatch(r"arn:[^:]+:states:::(\w+):([\w.]+)", state.get("Resource", ""))
    return (match.group(1), match.group(2)) if match else None


_PATH = re.compile(r"(?<!\$)\$(?!\$)((?:\.\w+|\[[^\]]*\])*)")


def selector_paths(selector: Any) -> list[str]:
    """Every `$.`-path a ResultSelector reads, including those inside intrinsic functions."""
    if isinstance(selector, dict):
        found = []
        for key, value in selector.items():
            if key.endswith(".$") and isinstance(value, str):
                found += ["$" + steps for steps in _PATH.findall(value)]
            else:
                found += selector_paths(value)
        return found
    if isinstance(selector, list):
        return [p for item in selector for p in selector_paths(item)]
    return []


def optional_members(shape: Any, path: str) -> list[str]:
    """The steps of `path` (`$.A.B[0].C`) that `shape` does not guarantee: absent from required
    members, unknown to the model, or indexing into a list (which may be empty)."""
    problems = []
    for step in re.findall(r"\.(\w+)|\[([^\]]*)\]", path):
        name, index = step
        if index:
            problems.append(f"{path}: [{index}] may be out of range")
            shape = getattr(shape, "member", shape)
            continue
        members = getattr(shape, "members", {})
        if name not in members:
            problems.append(f"{path}: {name} is not in {shape.name}")
            return problems
        if name not in shape.required_members:
            problems.append(f"{path}: {name} is optional in {shape.name}")
        shape = members[name]
    return problems


def response_selector_findings(states: dict[str, Any], sagemaker: Any) -> list[str]:
    findings = []
    for name, state in states.items():
        found = integration(state)
        if state["Type"] != "Task" or not found or found[0] != "sagemaker":
            continue
        if found[1] not in SAGEMAKER_RESPONSES:
            findings.append(f"{name}: no response shape known for sagemaker:{found[1]}")
            continue
        output = sagemaker.operation_model(SAGEMAKER_RESPONSES[found[1]]).output_shape
        for path in selector_paths(state.get("ResultSelector", {})):
            findings += [f"{name}: {p}" for p in optional_members(output, path)]
    return findings


def step_functions_error_names(service: str, model: Any, operation: str) -> set[str]:
    """The names Step Functions reports `operation`'s errors under."""
    prefix = SERVICE_PREFIX[service]
    modeled = {
        f"{prefix}.{shape.name}" if shape.name.endswith("Exception") else f"{prefix}.{shape.name}Exception"
        for shape in model.operation_model(operation).error_shapes
    }
    return modeled | UNMODELED[service]


def task_operation(service: str, api: str) -> str:
    if service == "lambda":
        return LAMBDA_OPERATION
    base = api.removesuffix(".sync")
    return base[0].upper() + base[1:]


def error_name_findings(states: dict[str, Any], service_models: dict[str, Any]) -> list[str]:
    """ErrorEquals entries of SageMaker and Lambda tasks naming an error the integration never raises.

    `States.*` names and the project's own errors (functions/errors.py, raised by the handlers) are
    left alone; anything spelled `<Service>.<Name>` must be a name the service's model produces.
    """
    findings = []
    for name, state in states.items():
        found = integration(state)
        if state["Type"] != "Task" or not found or found[0] not in SERVICE_PREFIX:
            continue
        service, api = found
        possible = step_functions_error_names(service, service_models[service], task_operation(service, api))
        for rule in state.get("Retry", []) + state.get("Catch", []):
            for error in rule["ErrorEquals"]:
                if "." in error and not error.startswith("States.") and error not in possible:
                    findings.append(f"{name}: {error} is never raised by {service}:{api}")
    return findings


# ------------------------------------------------------------------ responses: required members only


def test_sagemaker_result_selectors_read_only_members_aws_always_returns(states, sagemaker):
    assert response_selector_findings(states, sagemaker) == []


def test_every_sagemaker_task_with_a_result_selector_is_checked(states, sagemaker):
    selected = {
        name
        for name, state in states.items()
        if (integration(state) or ("",))[0] == "sagemaker" and state.get("ResultSelector")
    }
    assert selected == set(JOB_LOOPS)
    assert all(selector_paths(states[name]["ResultSelector"]) for name in selected)


def test_an_optional_member_in_a_result_selector_is_reported(states, sagemaker):
    seeded = copy.deepcopy(states)
    seeded["TrainModel"]["ResultSelector"]["finalMetrics.$"] = "$.FinalMetricDataList"
    seeded["BatchTransform"]["ResultSelector"]["output.$"] = "$.TransformOutput.S3OutputPath"
    seeded["MonitorDrift"]["ResultSelector"]["first.$"] = "States.ArrayGetItem($.ProcessingInputs, 0)"

    assert response_selector_findings(seeded, sagemaker) == [
        "TrainModel: $.FinalMetricDataList: FinalMetricDataList is optional in DescribeTrainingJobResponse",
        "BatchTransform: $.TransformOutput.S3OutputPath: TransformOutput is optional in "
        "DescribeTransformJobResponse",
        "MonitorDrift: $.ProcessingInputs: ProcessingInputs is optional in DescribeProcessingJobResponse",
    ]


def test_a_required_parent_with_an_optional_child_is_reported(sagemaker):
    output = sagemaker.operation_model("DescribeTrainingJob").output_shape

    assert optional_members(output, "$.ModelArtifacts.S3ModelArtifacts") == []
    assert optional_members(output, "$.StoppingCondition.MaxWaitTimeInSeconds") == [
        "$.StoppingCondition.MaxWaitTimeInSeconds: MaxWaitTimeInSeconds is optional in StoppingCondition"
    ]


# ------------------------------------------------------------------ errors: the names AWS reports


def test_sagemaker_and_lambda_tasks_match_only_error_names_their_integration_raises(states, service_models):
    assert error_name_findings(states, service_models) == []


def test_a_misspelled_service_error_is_reported(states, service_models):
    seeded = copy.deepcopy(states)
    seeded["CreateModel"]["Retry"][0]["ErrorEquals"].append("SageMaker.ResourceLimitExceeded")
    seeded["PrepareRun"]["Retry"][0]["ErrorEquals"].append("Lambda.ThrottlingException")

    assert error_name_findings(seeded, service_models) == [
        "PrepareRun: Lambda.ThrottlingException is never raised by lambda:invoke",
        "CreateModel: SageMaker.ResourceLimitExceeded is never raised by sagemaker:createModel",
    ]


def test_the_modeled_sagemaker_errors_get_exception_appended(service_models):
    names = step_functions_error_names("sagemaker", service_models["sagemaker"], "CreateTrainingJob")

    assert names == {
        "SageMaker.AmazonSageMakerException",
        "SageMaker.ResourceLimitExceededException",
        "SageMaker.ResourceInUseException",
        "SageMaker.ResourceNotFoundException",
    }


@pytest.mark.parametrize("name", JOB_LOOPS)
def test_a_quota_or_throttling_error_is_retried_a_bounded_number_of_times(states, name):
    """An instance quota (ResourceLimitExceeded) often frees up as other jobs end: it takes the same
    back-off as throttling. MaxAttempts bounds the attempts, so a quota that never frees ends in the
    States.ALL catcher -> RecordFailure rather than waiting for ever."""
    state = states[name]
    (retrier,) = state["Retry"]

    assert set(retrier["ErrorEquals"]) == JOB_LOOP_ERRORS
    assert retrier["MaxAttempts"] == 2  # three attempts in all
    assert [c["ErrorEquals"] for c in state["Catch"]] == [["States.ALL"]]
    assert state["Catch"][0]["Next"] == "RecordFailure"
    # A missing model (ResourceNotFound) or the job failing (States.TaskFailed) is not retried.
    assert not {"SageMaker.ResourceNotFoundException", "States.TaskFailed", "States.ALL"} & set(
        retrier["ErrorEquals"]
    )


def test_create_model_retries_throttling_in_place_and_fails_on_a_model_quota(states):
    """CreateModel has no job-name collision problem (nothing was created when it was throttled), so a
    Retry is right there; a model-count quota does not free itself within seconds: it is recorded."""
    retried = {e for r in states["CreateModel"]["Retry"] for e in r["ErrorEquals"]}

    assert retried == {"SageMaker.AmazonSageMakerException"}
    assert states["CreateModel"]["Catch"][-1]["ErrorEquals"] == ["States.ALL"]

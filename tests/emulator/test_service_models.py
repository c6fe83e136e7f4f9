"""Requests are checked as the services check them, and errors named as Step Functions names them."""

from __future__ import annotations

import pytest

from emulator import service_models
from emulator.service_models import RequestInvalid


def training_request(**overrides: object) -> dict:
    request: dict = {
        "TrainingJobName": "readmission-train-1",
        "AlgorithmSpecification": {"TrainingImage": "image:1", "TrainingInputMode": "File"},
        "RoleArn": "arn:aws:iam::123456789012:role/sagemaker",
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/runs/1/model"},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "HyperParameters": {"sagemaker_program": '"train.py"'},
    }
    request.update(overrides)
    return request


def test_a_valid_training_request_passes() -> None:
    assert service_models.validate("sagemaker", "CreateTrainingJob", training_request()) == []


def test_an_instance_type_outside_the_operations_enum_is_refused_with_its_path() -> None:
    request = training_request(
        ResourceConfig={"InstanceCount": 1, "InstanceType": "ml.m5.huge", "VolumeSizeInGB": 5}
    )

    with pytest.raises(RequestInvalid) as raised:
        service_models.check("sagemaker", "CreateTrainingJob", request)

    assert raised.value.code == "ValidationException"
    assert raised.value.message.startswith("1 validation error detected: Value 'ml.m5.huge' at ")
    assert (
        "'resourceConfig.instanceType' failed to satisfy constraint: Member must satisfy enum value set"
        in (raised.value.message)
    )


def test_a_job_name_over_63_characters_breaks_length_and_pattern() -> None:
    problems = service_models.validate(
        "sagemaker", "CreateTrainingJob", training_request(TrainingJobName="a" * 64)
    )
    assert any("at 'trainingJobName'" in p and "length less than or equal to 63" in p for p in problems)


def test_missing_required_members_unknown_fields_and_ranges_are_all_listed() -> None:
    request = training_request(StoppingCondition={"MaxRuntimeInSeconds": 0}, Colour="blue")
    del request["RoleArn"]

    problems = service_models.validate("sagemaker", "CreateTrainingJob", request)

    assert any("Value null at 'roleArn'" in p for p in problems)
    assert any("'colour' is not a member" in p for p in problems)
    assert any(
        "'stoppingCondition.maxRuntimeInSeconds'" in p and "greater than or equal to 1" in p for p in problems
    )


def test_a_hyperparameter_value_over_2500_characters_is_refused() -> None:
    request = training_request(HyperParameters={"note": "x" * 2501})
    problems = service_models.validate("sagemaker", "CreateTrainingJob", request)
    assert any("hyperParameters.note" in p and "2500" in p for p in problems)


def test_max_payload_over_100_mb_is_refused_for_a_transform_job() -> None:
    request = {
        "TransformJobName": "t-1",
        "ModelName": "m-1",
        "MaxPayloadInMB": 101,
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/k"}}},
        "TransformOutput": {"S3OutputPath": "s3://b/out"},
        "TransformResources": {"InstanceCount": 1, "InstanceType": "ml.m5.large"},
    }
    problems = service_models.validate("sagemaker", "CreateTransformJob", request)
    assert problems == [
        "Value '101' at 'maxPayloadInMB' failed to satisfy constraint: "
        "Member must have value less than or equal to 100"
    ]


@pytest.mark.parametrize(
    ("concurrency", "payload", "refused"), [(16, 6, False), (17, 6, True), (None, 100, False), (2, 60, True)]
)
def test_concurrent_transforms_times_the_payload_may_not_pass_100_mb(
    concurrency: int | None, payload: int, refused: bool
) -> None:
    request = {
        "TransformJobName": "t-1",
        "ModelName": "m-1",
        "MaxPayloadInMB": payload,
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/k"}}},
        "TransformOutput": {"S3OutputPath": "s3://b/out"},
        "TransformResources": {"InstanceCount": 2, "InstanceType": "ml.m5.large"},
    }
    if concurrency is not None:
        request["MaxConcurrentTransforms"] = concurrency

    problems = service_models.validate("sagemaker", "CreateTransformJob", request)

    if refused:
        assert problems == [
            f"The value of MaxConcurrentTransforms ({concurrency}) * MaxPayloadInMB ({payload}) = "
            f"{concurrency * payload} must not exceed 100"
        ]
    else:
        assert problems == []


@pytest.mark.parametrize(
    ("service", "operation", "code", "name"),
    [
        (
            "sagemaker",
            "CreateTrainingJob",
            "ResourceLimitExceeded",
            "SageMaker.ResourceLimitExceededException",
        ),
        ("sagemaker", "CreateTrainingJob", "ResourceInUse", "SageMaker.ResourceInUseException"),
        (
            "sagemaker",
            "CreateModel",
            "ResourceInUse",
            "SageMaker.AmazonSageMakerException",
        ),  # not CreateModel's
        ("sagemaker", "CreateTrainingJob", "ThrottlingException", "SageMaker.AmazonSageMakerException"),
        ("sagemaker", "CreateTrainingJob", "ValidationException", "SageMaker.AmazonSageMakerException"),
        ("sagemaker", "CreateTrainingJob", "AccessDeniedException", "SageMaker.AmazonSageMakerException"),
        ("lambda", "Invoke", "TooManyRequestsException", "Lambda.TooManyRequestsException"),
        ("lambda", "Invoke", "ServiceException", "Lambda.ServiceException"),
        ("lambda", "Invoke", "AccessDeniedException", "Lambda.AWSLambdaException"),
    ],
)
def test_api_errors_are_named_as_step_functions_names_them(
    service: str, operation: str, code: str, name: str
) -> None:
    assert service_models.step_functions_error(service, operation, code) == name

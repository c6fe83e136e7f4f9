"""Instance types: each field accepts exactly what the SageMaker operation using it accepts.

AWS checks an instance type against the operation's enum only when the job is created, after the run
claimed its key (and, for the transform and drift jobs, after training was paid for). The functions
check it up front against functions/instance_types.json, generated from the pinned botocore's model.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

import prepare_run
import run_input
from errors import InvalidInput
from registry import Registry
from tests.functions.helpers import BUCKET, FUNCTIONS, ROOT, Aws, load_event


def generator():
    spec = importlib.util.spec_from_file_location("instance_types", ROOT / "scripts" / "instance_types.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_shipped_lists_are_the_pinned_botocores_enums() -> None:
    """Fails after a botocore upgrade that changed an enum: run `python scripts/instance_types.py`."""
    script = generator()

    assert run_input.INSTANCE_TYPES_PATH.read_text() == script.render(script.instance_types_document())
    assert set(json.loads(run_input.INSTANCE_TYPES_PATH.read_text())) == set(run_input.INSTANCE_TYPE_KINDS)


def test_the_input_schema_lists_the_training_instance_types_of_the_pinned_botocore() -> None:
    """Fails after a botocore upgrade too: the same script rewrites the schema's instanceType enum."""
    script = generator()
    text = run_input.SCHEMA_PATH.read_text()

    assert text == script.schema_with_instance_types(text, script.instance_types_document())


def test_the_lists_differ_per_operation_so_each_field_uses_its_own() -> None:
    training = set(run_input.allowed_instance_types("training"))
    transform = set(run_input.allowed_instance_types("transform"))

    assert "ml.m5.large" in training & transform & set(run_input.allowed_instance_types("processing"))
    assert training - transform, "a training-only type shows why one list for all would be wrong"


def test_a_type_matching_the_old_pattern_but_unknown_to_sagemaker_is_refused_with_examples() -> None:
    with pytest.raises(run_input.RequestErrors) as raised:
        run_input.validate_training_request(
            {"datasetUri": f"s3://{BUCKET}/datasets/d.csv", "instanceType": "ml.m5.huge"}
        )

    (error,) = raised.value.errors
    assert error["field"] == "instanceType"
    assert error["message"].startswith("'ml.m5.huge' is not a SageMaker training instance type")
    assert "ml.m5.large" in error["message"] and "ml.m5.xlarge" in error["message"]


def test_a_bad_training_default_is_refused_before_anything_is_claimed(aws: Aws) -> None:
    aws.put("datasets/diabetic_data.csv.gz", b"x")
    event = load_event("prepare_run_console_input.json")
    del event["input"]["instanceType"]
    event["defaults"]["trainingInstanceType"] = "ml.m5.huge"

    with pytest.raises(InvalidInput, match=r"the stack's TrainingInstanceType parameter: 'ml\.m5\.huge'"):
        prepare_run.handler(event, None)

    assert Registry("readmission-registry", aws.dynamodb).get_run(event["execution"]["name"]) is None


def test_each_default_is_checked_against_its_own_operation(aws: Aws) -> None:
    aws.put("datasets/diabetic_data.csv.gz", b"x")
    event = load_event("prepare_run_console_input.json")
    event["defaults"]["transformInstanceType"] = "ml.c6i.large"  # transform accepts it, training not

    run = prepare_run.handler(event, None)["run"]

    assert run["transformInstanceType"] == "ml.c6i.large"
    with pytest.raises(run_input.RequestErrors, match="not a SageMaker training instance type"):
        run_input.validate_training_request(
            {"datasetUri": event["input"]["datasetUri"], "instanceType": "ml.c6i.large"}
        )


def test_a_bad_processing_default_fails_the_run_at_prepare_run(aws: Aws) -> None:
    aws.put("datasets/diabetic_data.csv.gz", b"x")
    event = load_event("prepare_run_console_input.json")
    event["defaults"]["processingInstanceType"] = "ml.t2.medium"  # transform accepts it, processing not

    with pytest.raises(InvalidInput, match=r"ProcessingInstanceType parameter: 'ml\.t2\.medium' is not a"):
        prepare_run.handler(event, None)


def test_the_run_carries_one_checked_instance_type_per_job(aws: Aws) -> None:
    aws.put("datasets/diabetic_data.csv.gz", b"x")
    event = load_event("prepare_run_console_input.json")

    run = prepare_run.handler(event, None)["run"]

    assert {
        k: run[k] for k in ("trainingInstanceType", "transformInstanceType", "processingInstanceType")
    } == {
        "trainingInstanceType": event["input"].get("instanceType", "ml.m5.large"),
        "transformInstanceType": "ml.m5.large",
        "processingInstanceType": "ml.m5.large",
    }


def test_reading_a_request_loads_neither_botocore_nor_its_model() -> None:
    """The cold-import budget: the lists come from a 12 kB file, not botocore's sagemaker model."""
    code = (
        "import sys, run_input; "
        "run_input.instance_type_problem('ml.m5.large', 'training'); "
        "print(sorted(m for m in sys.modules if m.startswith('botocore')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=FUNCTIONS, capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"

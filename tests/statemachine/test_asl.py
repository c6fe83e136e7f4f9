"""The ASL file, checked offline: lint, contracts with the template and the functions, failure wiring."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pipelines.enrich import enriched_header

ROOT = Path(__file__).resolve().parents[2]
ASL_PATH = ROOT / "statemachine" / "readmission_pipeline.asl.json"
SCHEMA_PATH = ROOT / "statemachine" / "input.schema.json"
FUNCTIONS = ROOT / "functions"
if str(FUNCTIONS) not in sys.path:
    sys.path.insert(0, str(FUNCTIONS))

import validate_dataset  # noqa: E402
from run_input import MODEL_NAME_MAX, job_name  # noqa: E402

SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
LAMBDA_SERVICE_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
FAILURE_PATH = {"RecordFailure", "NotifyFailure"}  # the recorder itself cannot loop back into itself
JOB_RETRIED_ERRORS = {
    "SageMaker.AmazonSageMakerException",
    "SageMaker.ResourceLimitExceededException",
    "SageMaker.ResourceInUseException",
}
JOB_KINDS = {"TrainModel": "train", "BatchTransform": "xform", "MonitorDrift": "drift"}
SUBSTITUTIONS_FOR_PARSING = {
    "Partition": "aws",
    "Region": "us-east-1",
    "MaxTrainingSeconds": "3600",
    "MaxTransformSeconds": "3600",
}


@pytest.fixture(scope="module")
def asl() -> dict[str, Any]:
    return json.loads(ASL_PATH.read_text())


def test_the_definition_file_is_json_as_it_is_with_placeholders_only_inside_strings() -> None:
    """CloudFormation reads a DefinitionS3Location file as JSON and substitutes only string values
    ("only string-type values are supported for DefinitionSubstitutions"): an unquoted `${X}` where
    a number belongs is a deploy that fails on AWS while every local run passes."""
    json.loads(ASL_PATH.read_text())  # as it is: an unquoted placeholder would not parse


@pytest.fixture(scope="module")
def states(asl: dict[str, Any]) -> dict[str, Any]:
    return asl["States"]


def documented_substitutions() -> set[str]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("DefinitionSubstitutions", 1)[1].split("Add one here before using it", 1)[0]
    return set(re.findall(r"`([A-Za-z]+)`", section))


def substituted(text: str) -> str:
    return re.sub(
        r"\$\{(\w+)\}",
        lambda m: SUBSTITUTIONS_FOR_PARSING.get(
            m.group(1), f"arn:aws:lambda:us-east-1:123456789012:function:{m.group(1)}"
        ),
        text,
    )


def test_statelint_accepts_the_file(tmp_path: Path) -> None:
    statelint = Path(sys.executable).parent / "statelint"
    linted = tmp_path / ASL_PATH.name
    linted.write_text(ASL_PATH.read_text())
    result = subprocess.run([str(statelint), str(linted)], capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_the_local_interpreter_parses_the_substituted_file() -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    program, _ = AmazonStateLanguageParser.parse(substituted(ASL_PATH.read_text()))

    assert program is not None


def test_every_substitution_is_in_the_documented_list() -> None:
    used = set(re.findall(r"\$\{(\w+)\}", ASL_PATH.read_text()))

    assert used
    assert used <= documented_substitutions(), used - documented_substitutions()


def test_only_jsonpath_features_the_local_runtime_can_run(asl: dict[str, Any]) -> None:
    # moto parses Assign (in a state or a Catch) but reads a variable ($name) only through JSONata,
    # which it cannot evaluate: a variable would be written on both and readable on AWS only.
    text = ASL_PATH.read_text()

    assert asl.get("QueryLanguage", "JSONPath") == "JSONPath"
    assert "{%" not in text
    for name, state in asl["States"].items():
        assert not {"Assign", "Arguments", "Output", "QueryLanguage"} & set(state), name
        for catcher in state.get("Catch", []):
            assert not {"Assign", "Output"} & set(catcher), name


def test_every_next_target_exists_and_every_state_is_reachable(
    states: dict[str, Any], asl: dict[str, Any]
) -> None:
    def targets(state: dict[str, Any]) -> list[str]:
        found = [state.get("Next"), state.get("Default")]
        found += [c["Next"] for c in state.get("Choices", [])]
        found += [c["Next"] for c in state.get("Catch", [])]
        return [t for t in found if t]

    seen, todo = set(), [asl["StartAt"]]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for target in targets(states[name]):
            assert target in states, f"{name} -> {target}"
            todo.append(target)
    assert seen == set(states)


def leads_to_failure_recorder(states: dict[str, Any], start: str) -> bool:
    """Whether `start` is RecordFailure or a Pass/Choice chain that reaches it."""
    seen: set[str] = set()
    name: str | None = start
    while name and name not in seen:
        if name == "RecordFailure":
            return True
        seen.add(name)
        state = states[name]
        name = state.get("Next") if state["Type"] == "Pass" else None
    return False


def test_every_task_catches_everything_into_the_failure_recorder(states: dict[str, Any]) -> None:
    for name, state in states.items():
        if state["Type"] != "Task" or name in FAILURE_PATH:
            continue
        catch_all = [c for c in state.get("Catch", []) if c["ErrorEquals"] == ["States.ALL"]]
        assert catch_all, f"{name} has no States.ALL catcher"
        assert state["Catch"][-1] is catch_all[0], f"{name}: States.ALL must be the last catcher"
        assert catch_all[0]["Next"] == "RecordFailure", f"{name}: a catcher goes straight to the recorder"


def test_each_failure_is_recorded_under_the_name_of_its_stage(states: dict[str, Any]) -> None:
    """One recorder, no Pass per stage: the catcher's ResultPath says which stage failed."""
    into_recorder = {
        name: [c for c in state.get("Catch", []) if c["Next"] == "RecordFailure"]
        for name, state in states.items()
        if name not in FAILURE_PATH
    }
    for name, catchers in into_recorder.items():
        assert all(c["ResultPath"] == f"$.failure.{name}" for c in catchers), name
    assert states["NoModelToScore"]["ResultPath"] == "$.failure.ChooseScoringModel"
    assert states["RecordFailure"]["Parameters"]["Payload"]["failure.$"] == "$.failure"
    passes = [n for n, s in states.items() if s["Type"] == "Pass" and s.get("Next") == "RecordFailure"]
    assert passes == ["NoModelToScore"]


def test_the_failure_path_records_then_notifies_then_fails_with_the_caught_error(
    states: dict[str, Any],
) -> None:
    record = states["RecordFailure"]
    assert record["Parameters"]["Payload"]["outcome"] == "FAILED"
    assert record["Parameters"]["Payload"]["runId.$"] == "$$.Execution.Name"
    assert record["Next"] == "NotifyFailure"
    assert states["NotifyFailure"]["Next"] == "RunFailed"
    assert states["RunFailed"] == {
        "Type": "Fail",
        "ErrorPath": "$.outcome.error",
        "CausePath": "$.outcome.cause",
    }


def test_a_duplicate_run_succeeds_without_recording_anything(states: dict[str, Any]) -> None:
    duplicate = [c for c in states["PrepareRun"]["Catch"] if c["ErrorEquals"] == ["DuplicateRun"]]

    assert duplicate and states[duplicate[0]["Next"]]["Type"] == "Succeed"


def test_lambda_tasks_retry_lambda_service_errors(states: dict[str, Any]) -> None:
    for name, state in states.items():
        if state.get("Resource", "").endswith(":lambda:invoke"):
            retried = {e for r in state.get("Retry", []) for e in r["ErrorEquals"]}
            assert retried >= LAMBDA_SERVICE_ERRORS, name
            assert all(r["IntervalSeconds"] <= 2 for r in state["Retry"])


def test_sync_jobs_retry_under_a_new_name_per_attempt_with_the_templates_back_off(
    states: dict[str, Any],
) -> None:
    """A Retry evaluates Parameters again, and $$.State.RetryCount (0, 1, 2) numbers the attempt: a
    fixed name would collide with the job the first attempt created (Data Science SDK #140)."""
    sync = {n: s for n, s in states.items() if s.get("Resource", "").endswith(".sync")}
    assert set(sync) == {"TrainModel", "EnrichHistory", "BatchTransform", "MonitorDrift"}
    for name, state in sync.items():
        assert "TimeoutSecondsPath" in state
        name_field = next(v for k, v in state["Parameters"].items() if k.endswith("JobName.$"))
        attempt = "States.MathAdd($$.State.RetryCount, 1)"
        if name == "EnrichHistory":
            # The drift job's base name + "-h<attempt>" (<= 50 characters, inside the state machine's
            # JobNamePrefix-* permission): PrepareRun's `jobs` stay as they are.
            assert name_field == f"States.Format('{{}}-h{{}}', $.run.jobs.drift, {attempt})"
            continue
        assert name_field == f"States.Format('{{}}-{{}}', $.run.jobs.{JOB_KINDS[name]}, {attempt})"
        (retrier,) = state["Retry"]
        assert set(retrier["ErrorEquals"]) == JOB_RETRIED_ERRORS, name
        assert retrier["MaxAttempts"] == 2, name  # three attempts in all
        assert "JitterStrategy" not in retrier and "MaxDelaySeconds" not in retrier
    # the back-off PrepareRun bounds a run's duration with (30 s, then 120 s)
    import prepare_run

    for name, state in sync.items():
        (retrier,) = state["Retry"]
        assert retrier["IntervalSeconds"] == prepare_run.JOB_RETRY_INTERVAL_SECONDS, name
        assert retrier["BackoffRate"] == prepare_run.JOB_RETRY_BACKOFF_RATE, name
        assert retrier["MaxAttempts"] + 1 == prepare_run.MAX_JOB_ATTEMPTS, name


def test_training_follows_the_container_contract(states: dict[str, Any]) -> None:
    params = states["TrainModel"]["Parameters"]
    regexes = {m["Name"]: m["Regex"] for m in params["AlgorithmSpecification"]["MetricDefinitions"]}

    assert regexes["roc_auc"] == "METRIC roc_auc=([-+0-9.eE]+)"
    assert {"pr_auc", "log_loss", "brier", "champion_roc_auc"} <= set(regexes)
    assert params["InputDataConfig.$"] == "$.run.inputDataConfig"
    assert params["HyperParameters.$"] == "$.run.hyperparameters"
    # FinalMetricDataList is optional in DescribeTrainingJob: selecting it could fail the state with an
    # uncatchable States.Runtime (test_service_contracts); metrics.json in the artifact is authoritative.
    assert set(states["TrainModel"]["ResultSelector"]) == {"jobName.$", "artifactUri.$"}


def test_the_gates_comparison_lines_are_metrics_each_read_by_its_own_regex(states: dict[str, Any]) -> None:
    import re

    definitions = states["TrainModel"]["Parameters"]["AlgorithmSpecification"]["MetricDefinitions"]
    regexes = {m["Name"]: m["Regex"] for m in definitions}
    log = "\n".join(
        [
            "METRIC roc_auc=0.680000",
            "METRIC roc_auc_difference=0.012000",
            "METRIC roc_auc_difference_low=-0.003000",
            "METRIC roc_auc_difference_high=0.027000",
            "METRIC roc_auc_difference_p_value=1.2e-05",
        ]
    )

    found = {name: [float(v) for v in re.findall(regexes[name], log)] for name in regexes}
    assert found["roc_auc"] == [0.68]
    assert found["roc_auc_difference"] == [0.012]
    assert found["roc_auc_difference_low"] == [-0.003]
    assert found["roc_auc_difference_high"] == [0.027]
    assert found["roc_auc_difference_p_value"] == [1.2e-05]


def test_batch_transform_splits_files_by_line_into_mini_batches_joined_by_line(
    states: dict[str, Any],
) -> None:
    params = states["BatchTransform"]["Parameters"]

    assert params["TransformInput"]["SplitType"] == "Line"
    assert params["BatchStrategy"] == "MultiRecord"
    assert params["TransformOutput"]["AssembleWith"] == "Line"
    # ValidateDataset decides the compression by content (the parts' shared one for a prefix)
    assert params["TransformInput"]["CompressionType.$"] == "$.validation.scoreFile.compressionType"
    assert states["ValidateDataset"]["ResultSelector"]["scoreFile.$"] == "$.Payload.scoreFile"


def test_batch_transform_payload_stays_within_what_sagemaker_allows(states: dict[str, Any]) -> None:
    params = states["BatchTransform"]["Parameters"]
    concurrency = params.get("MaxConcurrentTransforms", 1)

    assert 0 < params["MaxPayloadInMB"] <= 100
    assert concurrency * params["MaxPayloadInMB"] <= 100
    assert params["MaxPayloadInMB"] == validate_dataset.TRANSFORM_MAX_PAYLOAD_MB


def test_batch_transform_passes_the_score_files_header_and_scales_to_the_runs_instance_count(
    states: dict[str, Any],
) -> None:
    params = states["BatchTransform"]["Parameters"]

    # EnrichHistory's parts always carry the same header (the schema's columns, then the history's).
    assert params["Environment"] == {"SCORING_COLUMNS": enriched_header()}
    assert params["TransformResources"]["InstanceCount.$"] == "$.run.transformInstanceCount"
    data_source = params["TransformInput"]["DataSource"]["S3DataSource"]
    # transform spreads an S3Prefix's objects across instances itself: no distribution member exists
    assert set(data_source) == {"S3DataType", "S3Uri.$"}


def test_drift_follows_the_processing_contract(states: dict[str, Any]) -> None:
    params = states["MonitorDrift"]["Parameters"]
    inputs = {i["InputName"]: i["S3Input"] for i in params["ProcessingInputs"]}

    assert params["AppSpecification"]["ContainerEntrypoint"] == [
        "python3",
        "/opt/ml/processing/input/code/drift.py",
    ]
    assert inputs["code"]["S3Uri"] == "s3://${BucketName}/code/src/"
    assert inputs["code"]["LocalPath"] == "/opt/ml/processing/input/code"
    assert params["ProcessingOutputConfig"]["Outputs"][0]["OutputName"] == "drift"


def test_drift_reads_the_transforms_output_instead_of_scoring_again(states: dict[str, Any]) -> None:
    params = states["MonitorDrift"]["Parameters"]
    inputs = {i["InputName"]: i["S3Input"] for i in params["ProcessingInputs"]}
    arguments = params["AppSpecification"]["ContainerArguments"]
    flags = dict(zip(arguments[::2], arguments[1::2], strict=True))

    # The prefix BatchTransform writes its `<input name>.out` files to.
    assert (
        inputs["predictions"]["S3Uri.$"]
        == states["BatchTransform"]["Parameters"]["TransformOutput"]["S3OutputPath.$"]
    )
    assert inputs["predictions"]["S3Uri.$"] == "$.run.predictionsOutputUri"
    assert inputs["predictions"]["S3DataType"] == "S3Prefix"
    assert flags == {
        "--model": inputs["model"]["LocalPath"],
        "--data": inputs["data"]["LocalPath"],
        "--predictions": inputs["predictions"]["LocalPath"],
        "--output": params["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["LocalPath"],
    }
    assert inputs["predictions"]["LocalPath"] == "/opt/ml/processing/input/predictions"


def test_history_enrichment_reads_every_part_and_feeds_the_transform_and_drift(
    states: dict[str, Any],
) -> None:
    """EnrichHistory runs between CreateModel and BatchTransform on the whole scoring input and the
    scoring model; the transform and the drift job read its parts, not the raw score files."""
    params = states["EnrichHistory"]["Parameters"]
    inputs = {i["InputName"]: i["S3Input"] for i in params["ProcessingInputs"]}
    outputs = {o["OutputName"]: o["S3Output"] for o in params["ProcessingOutputConfig"]["Outputs"]}
    arguments = params["AppSpecification"]["ContainerArguments"]
    flags = dict(zip(arguments[::2], arguments[1::2], strict=True))

    assert states["CreateModel"]["Next"] == "EnrichHistory"
    assert states["EnrichHistory"]["Next"] == "BatchTransform"
    assert states["EnrichHistory"]["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure.EnrichHistory", "Next": "RecordFailure"}
    ]
    assert params["AppSpecification"]["ContainerEntrypoint"] == [
        "python3",
        "/opt/ml/processing/input/code/enrich.py",
    ]
    assert inputs["data"]["S3Uri.$"] == "$.run.scoreUri"
    assert inputs["model"]["S3Uri.$"] == "$.registration.scoring.modelArtifactUri"
    assert flags == {
        "--model": inputs["model"]["LocalPath"],
        "--data": inputs["data"]["LocalPath"],
        "--output": outputs["parts"]["LocalPath"],
        "--summary": outputs["summary"]["LocalPath"],
        "--failure-file": "/opt/ml/output/failure",
    }
    parts = outputs["parts"]["S3Uri.$"]
    assert parts == "States.Format('{}/history/parts', $.run.driftOutputUri)"
    enriched = "States.Format('{}/history/parts/', $.run.driftOutputUri)"
    transform = states["BatchTransform"]["Parameters"]["TransformInput"]["DataSource"]["S3DataSource"]
    assert transform["S3Uri.$"] == enriched
    drift = {i["InputName"]: i["S3Input"] for i in states["MonitorDrift"]["Parameters"]["ProcessingInputs"]}
    assert drift["data"]["S3Uri.$"] == enriched


def test_the_scoring_choice_scores_with_the_model_register_model_chose_or_fails(
    states: dict[str, Any],
) -> None:
    choice = states["ChooseScoringModel"]

    assert choice["Choices"] == [
        {"Variable": "$.registration.scoring", "IsNull": True, "Next": "NoModelToScore"}
    ]
    assert choice["Default"] == "CreateModel"
    assert states["RegisterModel"]["ResultSelector"]["scoring.$"] == "$.Payload.scoring"
    create = states["CreateModel"]["Parameters"]["PrimaryContainer"]
    assert create["ModelDataUrl.$"] == "$.registration.scoring.modelArtifactUri"
    assert states["NoModelToScore"]["Parameters"]["Error"] == "ModelRejected"
    assert leads_to_failure_recorder(states, "NoModelToScore")


@pytest.mark.parametrize("kind", ["train", "model", "xform", "drift"])
def test_names_built_by_the_asl_stay_within_sagemaker_limits_for_the_longest_model_name(kind: str) -> None:
    prefix = "abcdefghijkl"  # the longest JOB_NAME_PREFIX the template allows (12)
    base = job_name(prefix, "M" * MODEL_NAME_MAX, kind, "x" * 80, "2026-11-26T04:00:00.000Z")

    for attempt in (1, 2, 3):
        name = f"{base}-{attempt}"  # States.Format('{}-{}', base, States.MathAdd($$.State.RetryCount, 1))
        assert len(name) <= 63 and SAGEMAKER_NAME.match(name), name
        assert len(name) - len(prefix) - 1 <= 50  # the contract's budget after the prefix


def test_the_input_schema_accepts_the_sample_inputs_and_refuses_bad_ones() -> None:
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text())
    events = ROOT / "events"
    for sample in ("console_execution_input.json", "s3_object_created.json"):
        jsonschema.validate(json.loads((events / sample).read_text()), schema)
    api_body = json.loads(json.loads((events / "api_post_training.json").read_text())["body"])
    jsonschema.validate(api_body, schema)
    for bad in (
        {},
        {"datasetUri": "s3://b/datasets/x.csv", "algorithm": "XGBoost"},
        {"datasetUri": "s3://b/datasets/x.csv", "extra": 1},
        {"datasetUri": "s3://b/datasets/x.csv", "instanceType": "ml.m5.huge"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


def test_the_input_schema_agrees_with_the_request_model() -> None:
    from run_input import ALGORITHMS, ALLOWED_HYPERPARAMETERS, FIELDS, REQUIRED_FIELDS, allowed_instance_types

    body_schema = json.loads(SCHEMA_PATH.read_text())["oneOf"][0]

    assert set(body_schema["properties"]) == set(FIELDS)
    assert body_schema["required"] == list(REQUIRED_FIELDS)
    assert body_schema["properties"]["algorithm"]["enum"] == list(ALGORITHMS)
    assert set(body_schema["properties"]["hyperparameters"]["properties"]) == ALLOWED_HYPERPARAMETERS
    assert set(body_schema["properties"]["instanceType"]["enum"]) == set(allowed_instance_types("training"))


def test_the_schema_offers_exactly_the_algorithms_the_pipelines_build() -> None:
    from pipelines.estimators import ALGORITHMS

    offered = json.loads(SCHEMA_PATH.read_text())["oneOf"][0]["properties"]["algorithm"]["enum"]

    assert offered == list(ALGORITHMS)


def test_the_schema_knows_exactly_the_hyperparameters_the_pipelines_read() -> None:
    from pipelines.estimators import _PARAMETER_TYPES
    from pipelines.training_pipeline import DEFAULT_CONFIG

    hyperparameters = json.loads(SCHEMA_PATH.read_text())["oneOf"][0]["properties"]["hyperparameters"]
    algorithm_parameters = {name for params in _PARAMETER_TYPES.values() for name in params}
    read = algorithm_parameters | (set(DEFAULT_CONFIG) - {"algorithm"})
    types = {int: "integer", float: "number"}

    assert set(hyperparameters["properties"]) == read
    for params in _PARAMETER_TYPES.values():
        for name, kind in params.items():
            assert hyperparameters["properties"][name]["type"] == types[kind], name
    for name, spec in hyperparameters["properties"].items():
        assert "enum" in spec or {"minimum", "exclusiveMinimum"} & set(spec), f"{name} has no lower bound"
        assert "enum" in spec or {"maximum", "exclusiveMaximum"} & set(spec), f"{name} has no upper bound"


@pytest.mark.parametrize(
    ("state", "sample"),
    [
        ("PrepareRun", "prepare_run_s3_event.json"),
        ("PrepareRun", "prepare_run_console_input.json"),
        ("ValidateDataset", "validate_dataset.json"),
        ("EvaluateModel", "evaluate_model.json"),
        ("RegisterModel", "register_model.json"),
        ("RecordOutcome", "record_outcome_succeeded.json"),
        ("RecordFailure", "record_outcome_failed.json"),
    ],
)
def test_each_sample_event_has_the_shape_its_state_sends(
    states: dict[str, Any], state: str, sample: str
) -> None:
    def shape(payload: Any) -> Any:
        if not isinstance(payload, dict):
            return None
        return {k.removesuffix(".$"): shape(v) for k, v in payload.items()}

    payload = states[state]["Parameters"]["Payload"]
    event = json.loads((ROOT / "events" / sample).read_text())

    assert set(event) == {k.removesuffix(".$") for k in payload}
    for key, value in shape(payload).items():
        if isinstance(value, dict) and value:  # literal sub-objects (execution, defaults) keep their keys
            assert set(event[key]) == set(value), key

"""Least privilege, checked on the transformed template (SAM policy templates expanded).

Each rule is a finding function in template_checks; every rule is also shown catching a seeded defect,
so a check that silently stopped looking would fail here.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
from typing import Any

import pytest

from .template_checks import (
    REPO,
    SAGEMAKER_SYNC_RULES,
    STATE_MACHINE_BASELINE_ACTIONS,
    as_list,
    asl_task_integrations,
    pass_role_findings,
    policy_statements,
    required_state_machine_actions,
    resource_text,
    role_allowed_actions,
    role_statements_for,
    sagemaker_scope_findings,
    undocumented_wildcard_lines,
    wildcard_action_findings,
    wildcard_resource_findings,
)


def parameter_accepts(parameter: dict[str, Any], value: str) -> bool:
    """Whether CloudFormation accepts `value` for a String parameter: pattern and length bounds."""
    return re.fullmatch(parameter.get("AllowedPattern", ".*"), value) is not None and int(
        parameter.get("MinLength", 0)
    ) <= len(value) <= int(parameter.get("MaxLength", 4096))


def _with_statement(cfn: dict[str, Any], role: str, statement: dict[str, Any]) -> dict[str, Any]:
    seeded = copy.deepcopy(cfn)
    seeded["Resources"][role]["Properties"]["Policies"].append(
        {"PolicyName": "Seeded", "PolicyDocument": {"Version": "2012-10-17", "Statement": [statement]}}
    )
    return seeded


# ------------------------------------------------------------------ no wildcard actions


def test_no_statement_allows_a_wildcard_action(cfn):
    assert wildcard_action_findings(cfn) == []


def test_a_service_wide_action_is_reported(cfn):
    seeded = _with_statement(
        cfn, "EvaluateModelFunctionRole", {"Effect": "Allow", "Action": "s3:*", "Resource": "x"}
    )
    assert wildcard_action_findings(seeded) == ["EvaluateModelFunctionRole: wildcard action s3:*"]


# ------------------------------------------------------------------ '*' resources only where AWS requires


def test_wildcard_resources_only_for_actions_aws_requires_it_for(cfn):
    assert wildcard_resource_findings(cfn) == []


def test_a_wildcard_resource_for_an_ordinary_action_is_reported(cfn):
    seeded = _with_statement(
        cfn, "StateMachineRole", {"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"}
    )
    assert wildcard_resource_findings(seeded) == [
        "StateMachineRole: sns:Publish on Resource '*' (not an action AWS requires '*' for)"
    ]


def test_every_wildcard_resource_in_the_template_says_why_in_a_comment(template_text):
    assert 'Resource: "*"' in template_text  # the check below has something to look at
    assert undocumented_wildcard_lines(template_text) == []


def test_an_uncommented_wildcard_resource_line_is_reported():
    text = 'Statement:\n  - Action: x:Y\n    Resource: "*"\n  - Action: x:Z\n    Resource:\n      - "*"\n'
    assert undocumented_wildcard_lines(text) == [
        "line 3: Resource '*' without '# AWS requires: <reason>'",
        "line 6: '*' as a list item (write Resource: \"*\" with its reason)",
    ]


# ------------------------------------------------------------------ PassRole and SageMaker scoping


def test_pass_role_only_to_sagemaker_and_only_the_sagemaker_role(cfn):
    assert pass_role_findings(cfn) == []
    (statement,) = role_statements_for(cfn, "StateMachineRole", "iam:PassRole")
    assert statement["Resource"] == {"Fn::GetAtt": ["SageMakerExecutionRole", "Arn"]}
    holders = {owner for owner, s in policy_statements(cfn) if "iam:PassRole" in as_list(s.get("Action", []))}
    assert holders == {"StateMachineRole"}


def test_pass_role_without_the_service_condition_is_reported(cfn):
    seeded = _with_statement(
        cfn, "ApiFunctionRole", {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "r"}
    )
    assert pass_role_findings(seeded) == [
        "ApiFunctionRole: iam:PassRole without iam:PassedToService sagemaker.amazonaws.com"
    ]


def test_sagemaker_actions_are_scoped_to_this_stacks_name_prefix(cfn):
    assert sagemaker_scope_findings(cfn) == []
    actions = role_allowed_actions(cfn, "StateMachineRole")
    for kind in ("TrainingJob", "TransformJob", "ProcessingJob"):
        assert {f"sagemaker:Create{kind}", f"sagemaker:Describe{kind}", f"sagemaker:Stop{kind}"} <= actions
    assert "sagemaker:CreateModel" in actions


def test_a_sagemaker_action_on_another_resource_type_is_reported(cfn):
    seeded = _with_statement(
        cfn,
        "StateMachineRole",
        {
            "Effect": "Allow",
            "Action": "sagemaker:CreateTrainingJob",
            "Resource": {
                "Fn::Sub": "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:training-job/*"
            },
        },
    )
    (finding,) = sagemaker_scope_findings(seeded)
    assert finding.startswith("StateMachineRole: sagemaker:CreateTrainingJob on ")


def test_sync_integrations_may_manage_only_the_step_functions_sagemaker_rules(cfn):
    (statement,) = role_statements_for(cfn, "StateMachineRole", "events:PutRule")
    assert set(as_list(statement["Action"])) == {"events:PutTargets", "events:PutRule", "events:DescribeRule"}
    rules = {resource_text(r).rsplit("/", 1)[1] for r in statement["Resource"]}
    assert rules == set(SAGEMAKER_SYNC_RULES.values())


# ------------------------------------------------------------------ the state machine role vs the ASL


def test_state_machine_role_grants_what_every_asl_task_needs(cfn, asl):
    required = required_state_machine_actions(asl_task_integrations(asl))
    missing = required - role_allowed_actions(cfn, "StateMachineRole")
    assert missing == set()


def test_state_machine_role_grants_nothing_the_asl_does_not_use(cfn, asl):
    required = required_state_machine_actions(asl_task_integrations(asl))
    extra = role_allowed_actions(cfn, "StateMachineRole") - required - STATE_MACHINE_BASELINE_ACTIONS
    assert extra == set()


def test_state_machine_invokes_exactly_the_five_pipeline_functions(cfn):
    (statement,) = role_statements_for(cfn, "StateMachineRole", "lambda:InvokeFunction")
    arns = {resource_text(r) for r in statement["Resource"]}
    functions = ("PrepareRun", "ValidateDataset", "EvaluateModel", "RegisterModel", "RecordOutcome")
    expected = {resource_text({"Fn::GetAtt": [f"{f}Function", "Arn"]}) for f in functions}
    expected |= {f"${{{f}Function.Arn}}:*" for f in functions}
    assert arns == expected


# ------------------------------------------------------------------ trust and function roles


def test_the_state_machine_role_trusts_only_step_functions_in_this_account(resources):
    (statement,) = resources["StateMachineRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "states.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def test_the_sagemaker_role_trusts_only_sagemaker(resources):
    (statement,) = resources["SageMakerExecutionRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"


def _s3_write_resources(cfn: dict[str, Any]) -> dict[str, set[str]]:
    writes: dict[str, set[str]] = {}
    for owner, statement in policy_statements(cfn):
        actions = as_list(statement.get("Action", []))
        if statement.get("Effect") == "Allow" and any(
            a in ("s3:PutObject", "s3:DeleteObject") for a in actions
        ):
            writes.setdefault(owner, set()).update(resource_text(r) for r in as_list(statement["Resource"]))
    return writes


def test_only_the_runs_the_reports_and_the_console_uploads_are_written(cfn):
    """Runs never touch datasets, code or each other's prefixes' parents (docs: bucket layout); the
    published reports are RegisterModel's alone; the API function's only write is the console's
    presigned POST of one file under uploads/ or the scoring prefix (POST /uploads), never the datasets
    prefix (an upload there would start a second run with the stack's defaults), runs/ or code/."""
    assert _s3_write_resources(cfn) == {
        "PrepareRunFunctionRole": {"${ArtifactBucket.Arn}/runs/*"},
        "SageMakerExecutionRole": {"${ArtifactBucket.Arn}/runs/*"},
        "RegisterModelFunctionRole": {"${ArtifactBucket.Arn}/reports/*"},
        "ApiFunctionRole": {
            "${ArtifactBucket.Arn}/uploads/*",
            "${ArtifactBucket.Arn}/${ScoringPrefix}*",
        },
    }


def test_register_model_reads_only_the_training_output_archive_and_writes_only_reports(cfn):
    """It reads output.tar.gz of a run's training job (not the model beside it, not datasets) and
    puts under reports/; HeadObject (s3:GetObject) on reports/ recognises a retry's own objects."""
    reads = {
        resource_text(r)
        for statement in role_statements_for(cfn, "RegisterModelFunctionRole", "s3:GetObject")
        for r in as_list(statement["Resource"])
    }
    assert reads == {"${ArtifactBucket.Arn}/runs/*/output/output.tar.gz", "${ArtifactBucket.Arn}/reports/*"}
    event = json.loads((REPO / "events" / "register_model.json").read_text())
    model_key = event["training"]["artifactUri"].split("/", 3)[3]
    output_key = model_key.removesuffix("model.tar.gz") + "output.tar.gz"
    assert any(fnmatch.fnmatchcase(f"${{ArtifactBucket.Arn}}/{output_key}", r) for r in reads), output_key
    assert not any(fnmatch.fnmatchcase(f"${{ArtifactBucket.Arn}}/{model_key}", r) for r in reads), model_key
    s3_actions = {a for a in role_allowed_actions(cfn, "RegisterModelFunctionRole") if a.startswith("s3:")}
    assert s3_actions == {"s3:GetObject", "s3:PutObject", "s3:ListBucket"}


def test_no_role_reads_the_whole_bucket(cfn):
    for owner, statement in policy_statements(cfn):
        if "s3:GetObject" in as_list(statement.get("Action", [])):
            for resource in as_list(statement["Resource"]):
                assert resource_text(resource) != "${ArtifactBucket.Arn}/*", owner


def test_evaluate_model_only_reads_run_artifacts(cfn):
    assert role_allowed_actions(cfn, "EvaluateModelFunctionRole") == {"s3:GetObject"}


def test_record_outcome_may_read_the_drift_report_it_summarises_and_nothing_else_in_s3(cfn):
    """The success message reads runs/<id>/drift/drift_report.json: without s3:GetObject on it every
    notification on AWS would say the report could not be read (moto checks no IAM locally)."""
    (statement,) = role_statements_for(cfn, "RecordOutcomeFunctionRole", "s3:GetObject")
    resources = [resource_text(r) for r in as_list(statement["Resource"])]
    assert resources == ["${ArtifactBucket.Arn}/runs/*"]
    event = json.loads((REPO / "events" / "record_outcome_succeeded.json").read_text())
    drift_key = event["run"]["driftOutputUri"].split("/", 3)[3] + "/drift_report.json"
    assert fnmatch.fnmatchcase(f"${{ArtifactBucket.Arn}}/{drift_key}", resources[0]), drift_key
    s3_actions = {a for a in role_allowed_actions(cfn, "RecordOutcomeFunctionRole") if a.startswith("s3:")}
    assert s3_actions == {"s3:GetObject"}


def test_validate_dataset_cannot_write_anything(cfn):
    actions = role_allowed_actions(cfn, "ValidateDatasetFunctionRole")
    assert actions == {"s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket"}


def test_api_function_starts_and_reads_only_this_state_machines_executions(cfn):
    (start,) = role_statements_for(cfn, "ApiFunctionRole", "states:StartExecution")
    assert start["Resource"] == {"Ref": "PipelineStateMachine"}
    (read,) = role_statements_for(cfn, "ApiFunctionRole", "states:DescribeExecution")
    assert "states:GetExecutionHistory" in read["Action"]
    assert resource_text(read["Resource"]) == (
        "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:${PipelineStateMachine.Name}:*"
    )


def test_sagemaker_role_pulls_only_the_scikit_learn_repository(cfn):
    (pull,) = role_statements_for(cfn, "SageMakerExecutionRole", "ecr:BatchGetImage")
    assert resource_text(pull["Resource"]).endswith(":repository/sagemaker-scikit-learn")


# ------------------------------------------------------------------ names the functions build vs the role


@pytest.fixture
def run_input(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "functions"))
    import run_input as module

    return module


@pytest.mark.parametrize("prefix", ["readmission", "readmit-dev", "readmit-prod"])
def test_names_prepare_run_builds_fall_inside_the_roles_sagemaker_scope(cfn, run_input, prefix):
    """The functions name the jobs, the template scopes the role: a name outside the scope would be
    AccessDenied on AWS only (the local runtime checks no IAM), so the two are checked together here."""
    scopes = {}
    for kind_action, kind_arn in (
        ("TrainingJob", "training-job"),
        ("TransformJob", "transform-job"),
        ("ProcessingJob", "processing-job"),
        ("Model", "model"),
    ):
        (statement,) = role_statements_for(cfn, "StateMachineRole", f"sagemaker:Create{kind_action}")
        scopes[kind_arn] = resource_text(statement["Resource"]).replace("${JobNamePrefix}", prefix)
    model_name = "Medication-Adherence-Model-With-A-Long-Name"
    arn_base = "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:"
    for kind, arn_type, suffix in (
        ("train", "training-job", "-3"),
        ("model", "model", ""),
        ("xform", "transform-job", "-3"),
        ("drift", "processing-job", "-3"),
    ):
        name = (
            run_input.job_name(prefix, model_name, kind, "exec-" + "x" * 75, "2026-11-26T04:00:00.000Z")
            + suffix
        )
        assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", name), name
        # SageMaker lower-cases the name inside the ARN that IAM matches against.
        assert fnmatch.fnmatchcase(f"{arn_base}{arn_type}/{name.lower()}", scopes[arn_type]), (
            name,
            scopes[arn_type],
        )


def test_the_functions_accept_exactly_the_job_name_prefixes_the_template_accepts(cfn, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "functions"))
    import settings

    monkeypatch.setenv("REGISTRY_TABLE", "registry")
    monkeypatch.setenv("BUCKET", "bucket")
    parameter = cfn["Parameters"]["JobNamePrefix"]
    long_hyphens = "a" + "-" * 11 + "b"  # 13 characters the pattern alone accepts
    for value in (
        "readmission",
        "readmit-prod",
        "a",
        "a1-b2",
        "Readmission",
        "-x",
        "x-",
        "a" * 13,
        "a_b",
        long_hyphens,
        long_hyphens[1:],
    ):
        monkeypatch.setenv("JOB_NAME_PREFIX", value)
        settings.load_settings.cache_clear()
        try:
            functions_accept = settings.load_settings().job_name_prefix == value
        except settings.ConfigurationError:
            functions_accept = False
        assert functions_accept is parameter_accepts(parameter, value), value
    settings.load_settings.cache_clear()


def longest_attempt(asl: dict[str, Any], job_state: str) -> int:
    """The highest attempt number a job's Retry lets through (MaxAttempts retries after the first)."""
    (retrier,) = asl["States"][job_state]["Retry"]
    return 1 + int(retrier["MaxAttempts"])


def test_the_longest_prefix_the_template_accepts_keeps_every_name_the_asl_builds_within_63(
    cfn, asl, run_input
):
    parameter = cfn["Parameters"]["JobNamePrefix"]
    longest = "a" + "-" * (int(parameter["MaxLength"]) - 2) + "b"  # hyphens: the pattern's worst case
    assert parameter_accepts(parameter, longest)
    model_name = "M" * run_input.MODEL_NAME_MAX
    loops = {
        "train": "TrainModel",
        "xform": "BatchTransform",
        "drift": "MonitorDrift",
    }
    for kind in ("train", "model", "xform", "drift"):
        base = run_input.job_name(longest, model_name, kind, "x" * 80, "2026-11-26T04:00:00.000Z")
        # States.Format('{}-{}', $.run.jobs.<kind>, States.MathAdd($$.State.RetryCount, 1)); the model
        # name has no attempt.
        name = f"{base}-{longest_attempt(asl, loops[kind])}" if kind in loops else base
        assert len(name) <= 63 and re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", name), (len(name), name)


def test_one_character_more_than_the_longest_prefix_is_refused_by_the_parameter(cfn):
    parameter = cfn["Parameters"]["JobNamePrefix"]
    too_long = "a" + "-" * (int(parameter["MaxLength"]) - 1) + "b"

    assert re.fullmatch(parameter["AllowedPattern"], too_long)  # the pattern alone would take it
    assert not parameter_accepts(parameter, too_long)

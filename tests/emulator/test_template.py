"""template.yaml -> local values: intrinsics, substitutions, functions, parameters."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from emulator.template import ACCOUNT_ID, TemplateError, load_stack, load_yaml

PROJECT = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).parent / "fixtures" / "project"


def test_short_form_tags_become_long_form_intrinsics() -> None:
    doc = load_yaml("A: !Ref X\nB: !GetAtt R.Arn\nC: !Sub ['${a}', {a: !Ref Y}]\nD: !If [C, 1, 2]\n")
    assert doc == {
        "A": {"Ref": "X"},
        "B": {"Fn::GetAtt": ["R", "Arn"]},
        "C": {"Fn::Sub": ["${a}", {"a": {"Ref": "Y"}}]},
        "D": {"Fn::If": ["C", 1, 2]},
    }


def test_fixture_stack_resolves_names_arns_and_substitutions() -> None:
    stack = load_stack(FIXTURE)
    assert stack.bucket == f"fixture-data-{ACCOUNT_ID}-us-east-1"
    assert stack.bucket_versioning is False
    assert [k["AttributeName"] for k in stack.table.key_schema] == ["pk", "sk"]
    text = json.dumps(stack.state_machine.definition)
    assert "${" not in text
    prepare = stack.state_machine.definition["States"]["Prepare"]["Parameters"]["FunctionName"]
    assert prepare == stack.functions["PrepareFunction"].arn
    assert stack.state_machine.definition["States"]["Train"]["TimeoutSeconds"] == 120
    image = stack.state_machine.definition["States"]["Train"]["Parameters"]["AlgorithmSpecification"]
    assert image["TrainingImage"].startswith("683313688378.dkr.ecr.us-east-1")


def test_functions_merge_globals_and_resolve_environment() -> None:
    stack = load_stack(FIXTURE, {"Stage": "prod"})
    evaluate = stack.functions["EvaluateFunction"]
    assert evaluate.timeout == 5 and evaluate.memory_size == 256
    assert evaluate.handler == "fixture_handlers.evaluate"
    assert evaluate.code_uri == (FIXTURE / "functions").resolve()
    assert evaluate.environment["STAGE_LABEL"] == "production"
    assert evaluate.environment["STATE_MACHINE_ARN"] == stack.state_machine.arn
    assert stack.functions["ApiFunction"].events["Runs"]["Properties"]["Path"] == "/runs/{id}"


def test_event_rule_pattern_and_transformer_come_from_the_template() -> None:
    (rule,) = load_stack(FIXTURE).state_machine.rules
    assert rule.pattern["detail"]["bucket"]["name"] == [f"fixture-data-{ACCOUNT_ID}-us-east-1"]
    assert rule.input_transformer is not None and "<bucket>" in rule.input_transformer["InputTemplate"]


def test_parameter_overrides_are_checked_like_cloudformation() -> None:
    with pytest.raises(TemplateError, match="not one of"):
        load_stack(FIXTURE, {"Stage": "qa"})
    with pytest.raises(TemplateError, match="unknown template parameter"):
        load_stack(FIXTURE, {"Nope": "1"})


def test_number_limits_apply_unless_relaxed_for_tests() -> None:
    with pytest.raises(TemplateError, match="below MinValue"):
        load_stack(PROJECT, {"MaxTrainingSeconds": "2"})
    stack = load_stack(PROJECT, {"MaxTrainingSeconds": "2"}, strict_parameters=False)
    assert stack.parameters["MaxTrainingSeconds"] == "2"


def test_missing_substitution_is_named(tmp_path: Path) -> None:
    (tmp_path / "statemachine").mkdir()
    (tmp_path / "statemachine" / "x.asl.json").write_text(
        '{"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": "${Nope}", "End": true}}}'
    )
    template = (
        (FIXTURE / "template.yaml")
        .read_text()
        .replace("statemachine/fixture.asl.json", "statemachine/x.asl.json")
    )
    (tmp_path / "template.yaml").write_text(template)
    with pytest.raises(TemplateError, match=r"\$\{Nope\}"):
        load_stack(tmp_path)


def test_project_template_resolves_every_substitution_of_the_real_workflow() -> None:
    stack = load_stack(PROJECT)
    text = json.dumps(stack.state_machine.definition)
    assert not re.search(r"\$\{[A-Za-z0-9_]+\}", text)
    assert {"ApiFunction", "PrepareRunFunction", "EvaluateModelFunction"} <= set(stack.functions)
    for spec in stack.functions.values():
        module = spec.handler.rsplit(".", 1)[0]
        assert (spec.code_uri / f"{module}.py").is_file(), spec.handler

"""Load, package and transform template.yaml offline, and the checks the template tests apply.

The checks are plain functions returning findings (empty when the template is right), so the tests can
show both that the real template passes and that a seeded defect is caught.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from samtranslator.yaml_helper import yaml_parse

from emulator.template import sam_transform

REPO = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO / "template.yaml"
ASL_PATH = REPO / "statemachine" / "readmission_pipeline.asl.json"
ARCHITECTURE_PATH = REPO / "docs" / "architecture.md"

# What `sam package` would have uploaded; the translator refuses local paths.

# Actions AWS lets us grant only on `*` (no resource-level permissions), each with the reason. A `*`
# resource for any other action is a finding.
WILDCARD_RESOURCE_ACTIONS: dict[str, str] = {
    "sagemaker:ListTags": "the .sync integrations list tags of resources of any name",
    "logs:CreateLogDelivery": "CloudWatch Logs delivery APIs have no resource-level permissions",
    "logs:GetLogDelivery": "CloudWatch Logs delivery APIs have no resource-level permissions",
    "logs:UpdateLogDelivery": "CloudWatch Logs delivery APIs have no resource-level permissions",
    "logs:DeleteLogDelivery": "CloudWatch Logs delivery APIs have no resource-level permissions",
    "logs:ListLogDeliveries": "CloudWatch Logs delivery APIs have no resource-level permissions",
    "logs:PutResourcePolicy": "CloudWatch Logs delivery APIs have no resource-level permissions",
    "logs:DescribeResourcePolicies": "CloudWatch Logs delivery APIs have no resource-level permissions",
    "logs:DescribeLogGroups": "CloudWatch Logs delivery APIs have no resource-level permissions",
    "xray:PutTraceSegments": "X-Ray has no resource-level permissions",
    "xray:PutTelemetryRecords": "X-Ray has no resource-level permissions",
    "xray:GetSamplingRules": "X-Ray has no resource-level permissions",
    "xray:GetSamplingTargets": "X-Ray has no resource-level permissions",
    "ecr:GetAuthorizationToken": "an account-wide token, no resource ARN",
    "cloudwatch:PutMetricData": "metrics have no ARN (narrowed by a namespace condition)",
}

# Step Functions service integrations -> the IAM actions the state machine role needs for them
# (Step Functions Developer Guide, "IAM policies for integrated services").
SAGEMAKER_SYNC_RULES = {
    "createTrainingJob": "StepFunctionsGetEventsForSageMakerTrainingJobsRule",
    "createTransformJob": "StepFunctionsGetEventsForSageMakerTransformJobsRule",
    "createProcessingJob": "StepFunctionsGetEventsForSageMakerProcessingJobsRule",
}
INTEGRATION_ACTIONS: dict[str, set[str]] = {
    "lambda:invoke": {"lambda:InvokeFunction"},
    "sns:publish": {"sns:Publish"},
    "dynamodb:getItem": {"dynamodb:GetItem"},
    "dynamodb:putItem": {"dynamodb:PutItem"},
    "dynamodb:updateItem": {"dynamodb:UpdateItem"},
    "dynamodb:deleteItem": {"dynamodb:DeleteItem"},
    "sagemaker:createModel": {"sagemaker:CreateModel"},
    "sagemaker:createTrainingJob": {"sagemaker:CreateTrainingJob"},
    "sagemaker:createTrainingJob.sync": {
        "sagemaker:CreateTrainingJob",
        "sagemaker:DescribeTrainingJob",
        "sagemaker:StopTrainingJob",
        "sagemaker:ListTags",
        "events:PutTargets",
        "events:PutRule",
        "events:DescribeRule",
    },
    "sagemaker:createTransformJob.sync": {
        "sagemaker:CreateTransformJob",
        "sagemaker:DescribeTransformJob",
        "sagemaker:StopTransformJob",
        "sagemaker:ListTags",
        "events:PutTargets",
        "events:PutRule",
        "events:DescribeRule",
    },
    "sagemaker:createProcessingJob.sync": {
        "sagemaker:CreateProcessingJob",
        "sagemaker:DescribeProcessingJob",
        "sagemaker:StopProcessingJob",
        "sagemaker:ListTags",
        "events:PutTargets",
        "events:PutRule",
        "events:DescribeRule",
    },
}
# Granted regardless of the ASL's Task states: logging, tracing, tagging what the jobs create (a
# Tags parameter needs AddTags, aws-cdk #32294) and passing the SageMaker role.
STATE_MACHINE_BASELINE_ACTIONS = {
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "sagemaker:AddTags",
    "iam:PassRole",
}

# SageMaker action -> the resource type its ARN must name.
SAGEMAKER_RESOURCE_TYPES = {
    "TrainingJob": "training-job",
    "TransformJob": "transform-job",
    "ProcessingJob": "processing-job",
    "Model": "model",
}

_SUBSTITUTION = re.compile(r"\$\{([^}]+)\}")


def load_template(text: str | None = None) -> dict[str, Any]:
    """template.yaml (or `text`) parsed with the CloudFormation short-form tags as the translator reads it."""
    return yaml_parse(TEMPLATE_PATH.read_text() if text is None else text)


def transform_template(template: dict[str, Any], parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """The CloudFormation the SAM transform produces from `template`, computed offline (the same
    transform the local runtime reads its roles from)."""
    return sam_transform(template, parameters)


def resources_of_type(cfn: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in cfn["Resources"].items() if r["Type"] == resource_type}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_statements(cfn: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every identity-policy statement of the transformed template, with the role or policy owning it."""
    for name, resource in cfn["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            for policy in properties.get("Policies", []):
                for statement in as_list(policy["PolicyDocument"]["Statement"]):
                    yield name, statement
        elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            for statement in as_list(properties["PolicyDocument"]["Statement"]):
                yield name, statement


def role_allowed_actions(cfn: dict[str, Any], role: str) -> set[str]:
    return {
        action
        for owner, statement in policy_statements(cfn)
        if owner == role and statement.get("Effect") == "Allow"
        for action in as_list(statement.get("Action", []))
    }


def role_statements_for(cfn: dict[str, Any], role: str, action: str) -> list[dict[str, Any]]:
    return [
        statement
        for owner, statement in policy_statements(cfn)
        if owner == role
        and statement.get("Effect") == "Allow"
        and action in as_list(statement.get("Action", []))
    ]


def resource_text(resource: Any) -> str:
    """A resource entry (string or intrinsic) as comparable text: the Fn::Sub string, or JSON."""
    if isinstance(resource, dict) and "Fn::Sub" in resource:
        sub = resource["Fn::Sub"]
        return sub if isinstance(sub, str) else sub[0]
    return resource if isinstance(resource, str) else json.dumps(resource, sort_keys=True)


# ------------------------------------------------------------------ IAM findings


def wildcard_action_findings(cfn: dict[str, Any]) -> list[str]:
    """Allow statements granting `*` or a whole service (`svc:*`), or using NotAction."""
    findings = []
    for owner, statement in policy_statements(cfn):
        if statement.get("Effect") != "Allow":
            continue
        if "NotAction" in statement:
            findings.append(f"{owner}: NotAction in an Allow statement")
        for action in as_list(statement.get("Action", [])):
            if action == "*" or (isinstance(action, str) and action.endswith(":*")):
                findings.append(f"{owner}: wildcard action {action}")
    return findings


def wildcard_resource_findings(cfn: dict[str, Any]) -> list[str]:
    """Allow statements on `*` for an action outside the AWS-requires allow-list."""
    findings = []
    for owner, statement in policy_statements(cfn):
        if statement.get("Effect") != "Allow" or "*" not in as_list(statement.get("Resource", [])):
            continue
        for action in as_list(statement.get("Action", [])):
            if action not in WILDCARD_RESOURCE_ACTIONS:
                findings.append(f"{owner}: {action} on Resource '*' (not an action AWS requires '*' for)")
    return findings


_WILDCARD_RESOURCE_LINE = re.compile(r"^\s*(-\s*)?Resource:\s*[\"']?\*[\"']?(?P<rest>.*)$")
_WILDCARD_LIST_ITEM = re.compile(r"^\s*-\s*[\"']\*[\"']\s*(#.*)?$")


def undocumented_wildcard_lines(template_text: str) -> list[str]:
    """`Resource: "*"` lines without an inline `# AWS requires: <why>` comment, and `- "*"` items."""
    findings = []
    for number, line in enumerate(template_text.splitlines(), start=1):
        match = _WILDCARD_RESOURCE_LINE.match(line)
        if match:
            reason = re.search(r"#\s*AWS requires:\s*(\S.{9,})", match.group("rest"))
            if not reason:
                findings.append(f"line {number}: Resource '*' without '# AWS requires: <reason>'")
        elif _WILDCARD_LIST_ITEM.match(line):
            findings.append(f"line {number}: '*' as a list item (write Resource: \"*\" with its reason)")
    return findings


def pass_role_findings(cfn: dict[str, Any]) -> list[str]:
    """iam:PassRole granted without the `iam:PassedToService: sagemaker.amazonaws.com` condition."""
    findings = []
    for owner, statement in policy_statements(cfn):
        actions = as_list(statement.get("Action", []))
        if statement.get("Effect") != "Allow" or not ({"iam:PassRole", "iam:*"} & set(actions)):
            continue
        condition = statement.get("Condition", {}).get("StringEquals", {})
        if condition.get("iam:PassedToService") != "sagemaker.amazonaws.com":
            findings.append(f"{owner}: iam:PassRole without iam:PassedToService sagemaker.amazonaws.com")
        if "*" in as_list(statement.get("Resource", [])):
            findings.append(f"{owner}: iam:PassRole on Resource '*'")
    return findings


def sagemaker_scope_findings(cfn: dict[str, Any]) -> list[str]:
    """SageMaker resource actions not confined to this stack's `<type>/${JobNamePrefix}-*` names."""
    findings = []
    for owner, statement in policy_statements(cfn):
        if statement.get("Effect") != "Allow":
            continue
        actions = [a for a in as_list(statement.get("Action", [])) if a.startswith("sagemaker:")]
        actions = [a for a in actions if a not in ("sagemaker:ListTags", "sagemaker:AddTags")]
        for action in actions:
            kind = next((k for k in SAGEMAKER_RESOURCE_TYPES if action.endswith(k)), None)
            if kind is None:
                findings.append(f"{owner}: unexpected SageMaker action {action}")
                continue
            wanted = f":{SAGEMAKER_RESOURCE_TYPES[kind]}/${{JobNamePrefix}}-*"
            for resource in as_list(statement.get("Resource", [])):
                text = resource_text(resource)
                if not (text.startswith("arn:${AWS::Partition}:sagemaker:") and text.endswith(wanted)):
                    findings.append(f"{owner}: {action} on {text} (want ...{wanted})")
    return findings


# ------------------------------------------------------------------ ASL and substitutions


def asl_substitution_names(asl_text: str) -> set[str]:
    return set(_SUBSTITUTION.findall(asl_text))


def documented_substitution_names(architecture_text: str) -> set[str]:
    """The names listed after "The state machine's `DefinitionSubstitutions`" in the architecture doc."""
    start = architecture_text.index("The state machine's `DefinitionSubstitutions`")
    paragraph = architecture_text[start : architecture_text.index("Add one here before using it.", start)]
    body = paragraph.split(":", 1)[1]
    return set(re.findall(r"`([A-Za-z]+)`", body))


def documented_functions(architecture_text: str) -> dict[str, str]:
    """Logical id -> Handler from the architecture doc's function table."""
    rows = re.findall(r"^\|\s*`(\w+Function)`\s*\|\s*`([\w.]+)`\s*\|", architecture_text, re.MULTILINE)
    return dict(rows)


def documented_environment(architecture_text: str) -> tuple[set[str], set[str]]:
    """(required, optional) function environment variable names from the architecture doc's list;
    a name followed by "(optional" has a default in the functions' settings."""
    start = architecture_text.index("Environment: `")
    end = architecture_text.index("`POWERTOOLS_METRICS_NAMESPACE`", start) + len(
        "`POWERTOOLS_METRICS_NAMESPACE`"
    )
    paragraph = architecture_text[start:end]
    names = set(re.findall(r"`([A-Z_]+)`", paragraph))
    optional = set(re.findall(r"`([A-Z_]+)`\s*\(optional", paragraph))
    return names - optional, optional


def asl_task_integrations(asl: dict[str, Any]) -> set[str]:
    """The `service:api[.pattern]` of every Task state (nested Map/Parallel states included)."""
    found: set[str] = set()

    def walk(states: dict[str, Any]) -> None:
        for state in states.values():
            if state.get("Type") == "Task":
                resource = state["Resource"]
                found.add(resource.split(":::", 1)[1] if ":::" in resource else resource)
            for branch in state.get("Branches", []):
                walk(branch["States"])
            processor = state.get("ItemProcessor") or state.get("Iterator")
            if processor:
                walk(processor["States"])

    walk(asl["States"])
    return found


def required_state_machine_actions(integrations: set[str]) -> set[str]:
    """The IAM actions the integrations need; unknown integrations raise so the map gets extended."""
    actions: set[str] = set()
    for integration in integrations:
        if integration not in INTEGRATION_ACTIONS:
            raise KeyError(f"no IAM mapping for Task resource {integration!r}: add it to INTEGRATION_ACTIONS")
        actions |= INTEGRATION_ACTIONS[integration]
    return actions

"""Read `template.yaml` and resolve it to the local values the emulated stack uses.

The template stays the one definition of the application: the state machine's definition and
its `DefinitionSubstitutions`, the functions' handlers and environment, the bucket, table and
topic, the EventBridge rule and the API routes are all read from it. This module knows the
CloudFormation intrinsics (long and short form) well enough to evaluate them against a fixed local
account; it never invents a value the template does not say.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PARTITION = "aws"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
STACK_NAME = "readmission-local"

_NO_VALUE = object()  # AWS::NoValue: the key or list item disappears


class TemplateError(ValueError):
    """The template cannot be loaded or resolved locally (the message names the place)."""


# --------------------------------------------------------------------------------------------
# YAML with CloudFormation short-form tags
# --------------------------------------------------------------------------------------------
def load_yaml(text: str) -> dict[str, Any]:
    """Parse a CloudFormation/SAM YAML document, short-form tags included (`!Ref x` becomes
    `{"Ref": "x"}`, `!GetAtt R.Arn` `{"Fn::GetAtt": ["R", "Arn"]}`): the SAM translator's own
    parser, the one `sam` and the template tests read the template with."""
    from samtranslator.yaml_helper import yaml_parse

    try:
        doc = yaml_parse(text)
    except yaml.YAMLError as exc:
        raise TemplateError(f"template.yaml is not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise TemplateError("template.yaml is not a mapping")
    return doc


# --------------------------------------------------------------------------------------------
# The SAM transform, offline
# --------------------------------------------------------------------------------------------
PACKAGED_CODE_URI = "s3://readmission-packaging/functions.zip"
PACKAGED_DEFINITION_URI = "s3://readmission-packaging/readmission_pipeline.asl.json"


def packaged(template: Mapping[str, Any]) -> dict[str, Any]:
    """A copy with local CodeUri/DefinitionUri replaced by S3 URIs, as `sam package` leaves them
    (the translator refuses local paths)."""
    result = copy.deepcopy(dict(template))
    function_globals = result.get("Globals", {}).get("Function", {})
    if "CodeUri" in function_globals:
        function_globals["CodeUri"] = PACKAGED_CODE_URI
    for resource in result["Resources"].values():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function" and "CodeUri" in properties:
            properties["CodeUri"] = PACKAGED_CODE_URI
        if resource["Type"] == "AWS::Serverless::StateMachine" and "DefinitionUri" in properties:
            properties["DefinitionUri"] = PACKAGED_DEFINITION_URI
    return result


class _NoManagedPolicies:
    """The translator's managed-policy loader, offline: no managed policy names are resolved."""

    def load(self) -> dict[str, str]:
        return {}


def sam_transform(template: Mapping[str, Any], parameters: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The CloudFormation the SAM transform produces from `template`, computed offline (policy
    templates expanded, generated roles and permissions written out)."""
    import logging
    import os

    from samtranslator.translator.transform import transform

    logging.getLogger("samtranslator").setLevel(logging.ERROR)  # feature-toggle notices, not defects

    # The translator asks boto3 for a region to fill AWS::Region/AWS::Partition; no call is made.
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    return transform(packaged(template), dict(parameters or {}), _NoManagedPolicies())


# --------------------------------------------------------------------------------------------
# The resolved view
# --------------------------------------------------------------------------------------------
@dataclass
class FunctionSpec:
    """One `AWS::Serverless::Function`, with Globals merged and every value resolved."""

    logical_id: str
    name: str
    arn: str
    code_uri: Path
    handler: str
    timeout: int
    memory_size: int
    environment: dict[str, str]
    events: dict[str, Any] = field(default_factory=dict)


@dataclass
class EventRuleSpec:
    """An `EventBridgeRule` event of the state machine: what matches and what is delivered."""

    name: str
    pattern: dict[str, Any]
    input: str | None = None
    input_path: str | None = None
    input_transformer: dict[str, Any] | None = None


@dataclass
class TableSpec:
    name: str
    key_schema: list[dict[str, str]]
    attribute_definitions: list[dict[str, str]]
    global_secondary_indexes: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class StateMachineSpec:
    logical_id: str
    name: str
    arn: str
    definition: dict[str, Any]
    definition_path: Path
    rules: list[EventRuleSpec]


@dataclass
class LocalStack:
    """Everything the runtime needs from the template, with local names."""

    root: Path
    parameters: dict[str, str]
    bucket: str
    bucket_versioning: bool
    table: TableSpec
    topics: dict[str, str]  # logical id -> ARN
    functions: dict[str, FunctionSpec]  # logical id -> spec
    state_machine: StateMachineSpec

    def function_by_name(self, name: str) -> FunctionSpec | None:
        for spec in self.functions.values():
            if name in (spec.name, spec.logical_id):
                return spec
        return None


# --------------------------------------------------------------------------------------------
# Intrinsic functions
# --------------------------------------------------------------------------------------------
_NAME_PROPERTY = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::Serverless::SimpleTable": "TableName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::Serverless::Function": "FunctionName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Serverless::StateMachine": "Name",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::IAM::Role": "RoleName",
}


class Resolver:
    """Evaluates intrinsics against parameters, conditions and local physical names."""

    def __init__(
        self,
        template: Mapping[str, Any],
        parameter_overrides: Mapping[str, str] | None = None,
        strict: bool = True,
    ):
        self.template = template
        self.strict = strict  # False: overrides may leave MinValue/MaxValue/patterns (fast timeout tests)
        self.resources: dict[str, Any] = template.get("Resources") or {}
        self.parameters = self._parameters(parameter_overrides or {})
        self._conditions: dict[str, bool] = {}
        self._names: dict[str, str] = {}

    # ---- parameters and conditions -------------------------------------------------------
    def _parameters(self, overrides: Mapping[str, str]) -> dict[str, str]:
        declared = self.template.get("Parameters") or {}
        unknown = sorted(set(overrides) - set(declared))
        if unknown:
            raise TemplateError(f"unknown template parameter(s): {', '.join(unknown)}")
        values: dict[str, str] = {}
        for name, spec in declared.items():
            if name in overrides:
                value: Any = overrides[name]
            elif "Default" in spec:
                value = spec["Default"]
            else:
                raise TemplateError(f"parameter {name} has no Default: pass it as an override")
            text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
            if self.strict or name not in overrides:
                self._check_parameter(name, spec, text)
            values[name] = text
        return values

    @staticmethod
    def _check_parameter(name: str, spec: Mapping[str, Any], value: str) -> None:
        """CloudFormation's parameter constraints, so a bad override fails here as it would on deploy."""
        allowed = spec.get("AllowedValues")
        if allowed is not None and value not in [str(a) for a in allowed]:
            raise TemplateError(f"parameter {name}={value!r} is not one of {allowed}")
        pattern = spec.get("AllowedPattern")
        if pattern is not None and not re.fullmatch(pattern, value):
            raise TemplateError(f"parameter {name}={value!r} does not match AllowedPattern {pattern}")
        if spec.get("Type") == "Number":
            try:
                number = float(value)
            except ValueError:
                raise TemplateError(f"parameter {name}={value!r} is not a number") from None
            if "MinValue" in spec and number < float(spec["MinValue"]):
                raise TemplateError(f"parameter {name}={value} is below MinValue {spec['MinValue']}")
            if "MaxValue" in spec and number > float(spec["MaxValue"]):
                raise TemplateError(f"parameter {name}={value} is above MaxValue {spec['MaxValue']}")

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            conditions = self.template.get("Conditions") or {}
            if name not in conditions:
                raise TemplateError(f"unknown condition {name}")
            self._conditions[name] = bool(self.resolve(conditions[name]))
        return self._conditions[name]

    # ---- names -----------------------------------------------------------------------------
    def physical_name(self, logical_id: str) -> str:
        if logical_id not in self._names:
            resource = self.resources.get(logical_id)
            if resource is None:
                raise TemplateError(f"Ref/GetAtt to unknown resource {logical_id}")
            rtype = resource.get("Type", "")
            prop = _NAME_PROPERTY.get(rtype)
            declared = (resource.get("Properties") or {}).get(prop) if prop else None
            if declared is not None:
                name = str(self.resolve(declared))
            else:  # what CloudFormation generates: <stack>-<LogicalId>-<suffix>; buckets are lowercase
                name = f"{STACK_NAME}-{logical_id}"
                if rtype == "AWS::S3::Bucket":
                    name = name.lower()
            self._names[logical_id] = name
        return self._names[logical_id]

    def _arn(self, logical_id: str) -> str:
        rtype = self.resources[logical_id].get("Type", "")
        name = self.physical_name(logical_id)
        prefix = f"arn:{PARTITION}"
        if rtype == "AWS::S3::Bucket":
            return f"{prefix}:s3:::{name}"
        if rtype in ("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable"):
            return f"{prefix}:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}"
        if rtype == "AWS::SNS::Topic":
            return f"{prefix}:sns:{REGION}:{ACCOUNT_ID}:{name}"
        if rtype == "AWS::SQS::Queue":
            return f"{prefix}:sqs:{REGION}:{ACCOUNT_ID}:{name}"
        if rtype in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            return f"{prefix}:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
        if rtype in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"):
            return f"{prefix}:states:{REGION}:{ACCOUNT_ID}:stateMachine:{name}"
        if rtype == "AWS::IAM::Role":
            return f"{prefix}:iam::{ACCOUNT_ID}:role/{name}"
        service = rtype.split("::")[1].lower() if rtype.count("::") >= 2 else "local"
        return f"{prefix}:{service}:{REGION}:{ACCOUNT_ID}:{name}"

    def ref(self, name: str) -> str:
        pseudo = {
            "AWS::Partition": PARTITION,
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": STACK_NAME,
            "AWS::StackId": f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{STACK_NAME}/local",
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name not in self.resources:
            raise TemplateError(f"Ref to unknown parameter or resource {name}")
        rtype = self.resources[name].get("Type", "")
        if rtype in (
            "AWS::SNS::Topic",
            "AWS::Serverless::StateMachine",
            "AWS::StepFunctions::StateMachine",
        ):
            return self._arn(name)  # these types Ref to their ARN
        if rtype == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/{self.physical_name(name)}"
        return self.physical_name(name)

    def get_att(self, logical_id: str, attribute: str) -> str:
        if logical_id not in self.resources:
            raise TemplateError(f"GetAtt to unknown resource {logical_id}")
        if attribute in ("Arn", "TopicArn", "StateMachineArn", "QueueArn"):
            return self._arn(logical_id)
        if attribute in ("Name", "TopicName", "QueueName"):
            return self.physical_name(logical_id)
        if attribute == "DomainName":
            return f"{self.physical_name(logical_id)}.s3.amazonaws.com"
        if attribute == "QueueUrl":
            return self.ref(logical_id)
        if attribute == "RootResourceId":
            return "root"
        raise TemplateError(f"GetAtt {logical_id}.{attribute} has no local value")

    # ---- evaluation ------------------------------------------------------------------------
    def _sub(self, text: str, variables: Mapping[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            expr = match.group(1)
            if expr.startswith("!"):  # ${!Literal} escapes
                return "${" + expr[1:] + "}"
            if expr in variables:
                return str(self.resolve(variables[expr]))
            if "." in expr and not expr.startswith("AWS::"):
                logical_id, attribute = expr.split(".", 1)
                return self.get_att(logical_id, attribute)
            return self.ref(expr)

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def resolve(self, node: Any) -> Any:
        """Evaluate every intrinsic in node (a copy is returned; AWS::NoValue entries vanish)."""
        if isinstance(node, list):
            return [v for v in (self.resolve(x) for x in node) if v is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return _NO_VALUE if arg == "AWS::NoValue" else self.ref(arg)
            if key == "Condition" and isinstance(arg, str):
                return self.condition(arg)
            if key.startswith("Fn::"):
                return self._function(key[4:], arg)
        out = {}
        for k, v in node.items():
            value = self.resolve(v)
            if value is not _NO_VALUE:
                out[k] = value
        return out

    def _function(self, fn: str, arg: Any) -> Any:
        if fn == "Sub":
            if isinstance(arg, list):
                return self._sub(arg[0], arg[1] if len(arg) > 1 else {})
            return self._sub(arg, {})
        if fn == "GetAtt":
            parts = arg if isinstance(arg, list) else str(arg).split(".", 1)
            return self.get_att(str(self.resolve(parts[0])), str(self.resolve(parts[1])))
        if fn == "Join":
            sep, items = arg
            return str(sep).join(str(i) for i in self.resolve(items))
        if fn == "Select":
            index, items = self.resolve(arg)
            return items[int(index)]
        if fn == "Split":
            sep, text = self.resolve(arg)
            return str(text).split(sep)
        if fn == "FindInMap":
            mapping, key, sub = (self.resolve(a) for a in arg[:3])
            try:
                return self.template["Mappings"][mapping][key][sub]
            except KeyError as exc:
                raise TemplateError(f"FindInMap {mapping}/{key}/{sub}: no such entry") from exc
        if fn == "If":
            name, when_true, when_false = arg
            return self.resolve(when_true if self.condition(name) else when_false)
        if fn == "Equals":
            left, right = self.resolve(arg)
            return str(left) == str(right)
        if fn == "Not":
            return not self.resolve(arg[0])
        if fn == "And":
            return all(self.resolve(a) for a in arg)
        if fn == "Or":
            return any(self.resolve(a) for a in arg)
        if fn == "GetAZs":
            return [f"{REGION}a", f"{REGION}b"]
        if fn == "Base64":
            import base64

            return base64.b64encode(str(self.resolve(arg)).encode()).decode()
        if fn == "ToJsonString":
            return json.dumps(self.resolve(arg))
        if fn == "ImportValue":
            raise TemplateError("Fn::ImportValue has no local value (the stack must be self-contained)")
        raise TemplateError(f"intrinsic Fn::{fn} is not supported locally")


# --------------------------------------------------------------------------------------------
# Building the local stack
# --------------------------------------------------------------------------------------------
def _of_type(resources: Mapping[str, Any], *types: str) -> list[str]:
    return [lid for lid, r in resources.items() if r.get("Type") in types]


def _pipeline_bucket(resources: Mapping[str, Any]) -> str:
    """The pipeline's bucket: the only one, or the only one sending its events to EventBridge (the S3
    trigger's); another (the web console's static files, served by CloudFront) is not emulated."""
    buckets = _of_type(resources, "AWS::S3::Bucket")
    if len(buckets) > 1:
        buckets = [
            b
            for b in buckets
            if "EventBridgeConfiguration"
            in ((resources[b].get("Properties") or {}).get("NotificationConfiguration") or {})
        ]
    if len(buckets) != 1:
        raise TemplateError(
            "template must declare exactly one bucket (AWS::S3::Bucket) with EventBridge notifications; "
            f"found {buckets or _of_type(resources, 'AWS::S3::Bucket')}"
        )
    return buckets[0]


def _one(resources: Mapping[str, Any], what: str, *types: str) -> str:
    found = _of_type(resources, *types)
    if len(found) != 1:
        raise TemplateError(f"template must declare exactly one {what} ({'/'.join(types)}); found {found}")
    return found[0]


def _function_spec(resolver: Resolver, root: Path, logical_id: str) -> FunctionSpec:
    resource = resolver.resources[logical_id]
    globals_ = copy.deepcopy(((resolver.template.get("Globals") or {}).get("Function")) or {})
    props = copy.deepcopy(resource.get("Properties") or {})
    env = {
        **((globals_.get("Environment") or {}).get("Variables") or {}),
        **((props.get("Environment") or {}).get("Variables") or {}),
    }
    merged = {**globals_, **props}
    code_uri = resolver.resolve(merged.get("CodeUri", "."))
    if not isinstance(code_uri, str) or code_uri.startswith("s3://"):
        raise TemplateError(f"{logical_id}.CodeUri must be a local folder, got {code_uri!r}")
    handler = resolver.resolve(merged.get("Handler"))
    if not handler or "." not in str(handler):
        raise TemplateError(f"{logical_id}.Handler must be module.function, got {handler!r}")
    resolved_env = resolver.resolve(env)
    return FunctionSpec(
        logical_id=logical_id,
        name=resolver.physical_name(logical_id),
        arn=resolver.get_att(logical_id, "Arn"),
        code_uri=(root / code_uri).resolve(),
        handler=str(handler),
        timeout=int(resolver.resolve(merged.get("Timeout", 3))),
        memory_size=int(resolver.resolve(merged.get("MemorySize", 128))),
        environment={k: "" if v is None else str(v) for k, v in resolved_env.items()},
        events=resolver.resolve(props.get("Events") or {}),
    )


def _state_machine_spec(resolver: Resolver, root: Path, logical_id: str) -> StateMachineSpec:
    props = resolver.resources[logical_id].get("Properties") or {}
    if "DefinitionUri" in props:
        uri = resolver.resolve(props["DefinitionUri"])
        if not isinstance(uri, str):
            raise TemplateError(f"{logical_id}.DefinitionUri must be a local file path")
        path = (root / uri).resolve()
        try:
            text = path.read_text()
        except OSError as exc:
            raise TemplateError(f"{logical_id}.DefinitionUri: cannot read {path}: {exc}") from exc
    elif "Definition" in props:
        path = root / "template.yaml"
        text = json.dumps(props["Definition"])
    else:
        raise TemplateError(f"{logical_id} has neither DefinitionUri nor Definition")
    substitutions = resolver.resolve(props.get("DefinitionSubstitutions") or {})

    def substitute(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in substitutions:
            raise TemplateError(
                f"{path.name} uses ${{{key}}} but {logical_id}.DefinitionSubstitutions lacks it"
            )
        return str(substitutions[key])

    # SAM substitutes ${Key} only for the keys it is given; anything else stays (e.g. JSONata)
    text = re.sub(r"\$\{([A-Za-z0-9_]+)\}", substitute, text)
    try:
        definition = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TemplateError(f"{path.name} is not valid JSON after substitution: {exc}") from exc
    rules = []
    for name, event in (props.get("Events") or {}).items():
        if event.get("Type") not in ("EventBridgeRule", "CloudWatchEvent"):
            continue
        ev = resolver.resolve(event.get("Properties") or {})
        rules.append(
            EventRuleSpec(
                name=name,
                pattern=ev.get("Pattern") or {},
                input=ev.get("Input"),
                input_path=ev.get("InputPath"),
                input_transformer=ev.get("InputTransformer"),
            )
        )
    return StateMachineSpec(
        logical_id=logical_id,
        name=resolver.physical_name(logical_id),
        arn=resolver.get_att(logical_id, "Arn"),
        definition=definition,
        definition_path=path,
        rules=rules,
    )


def load_stack(
    root: Path, parameter_overrides: Mapping[str, str] | None = None, *, strict_parameters: bool = True
) -> LocalStack:
    """Load `<root>/template.yaml` and resolve it for the local account (see module docstring).

    With strict_parameters=False, overridden parameters skip CloudFormation's constraints (tests use
    it to shrink a timeout below the template's MinValue); defaults are always checked.
    """
    path = root / "template.yaml"
    try:
        template = load_yaml(path.read_text())
    except OSError as exc:
        raise TemplateError(f"cannot read {path}: {exc}") from exc
    resolver = Resolver(template, parameter_overrides, strict_parameters)
    resources = resolver.resources
    bucket_id = _pipeline_bucket(resources)
    table_id = _one(resources, "registry table", "AWS::DynamoDB::Table")
    table_props = resources[table_id].get("Properties") or {}
    table = TableSpec(
        name=resolver.physical_name(table_id),
        key_schema=resolver.resolve(table_props.get("KeySchema") or []),
        attribute_definitions=resolver.resolve(table_props.get("AttributeDefinitions") or []),
        global_secondary_indexes=resolver.resolve(table_props.get("GlobalSecondaryIndexes") or []),
    )
    sm_id = _one(resources, "state machine", "AWS::Serverless::StateMachine")
    return LocalStack(
        root=root,
        parameters=resolver.parameters,
        bucket=resolver.physical_name(bucket_id),
        bucket_versioning=(
            resolver.resolve(
                (resources[bucket_id].get("Properties") or {}).get("VersioningConfiguration") or {}
            )
        ).get("Status")
        == "Enabled",
        table=table,
        topics={lid: resolver.get_att(lid, "TopicArn") for lid in _of_type(resources, "AWS::SNS::Topic")},
        functions={
            lid: _function_spec(resolver, root, lid)
            for lid in _of_type(resources, "AWS::Serverless::Function")
        },
        state_machine=_state_machine_spec(resolver, root, sm_id),
    )

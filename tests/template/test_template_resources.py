"""The SAM template, transformed offline as CloudFormation would receive it: resources asserted by name.

Modelled on aws-sam-translator's own tests: one input (template.yaml), assertions on the output.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from .template_checks import (
    ARCHITECTURE_PATH,
    REPO,
    documented_environment,
    documented_functions,
    load_template,
    resources_of_type,
    transform_template,
)

EXPECTED_PATTERN = {
    "source": ["aws.s3"],
    "detail-type": ["Object Created"],
    "detail": {
        "bucket": {"name": [{"Ref": "ArtifactBucket"}]},
        "object": {"key": [{"prefix": {"Ref": "DatasetsPrefix"}}]},
    },
}
API_ROUTES = {
    ("/training", "post"),
    ("/executions/{id}", "get"),
    ("/models", "get"),
    ("/models/{name}/{version}", "get"),
    # the web console's (functions/console_api.py)
    ("/executions", "get"),
    ("/executions/{id}/states", "get"),
    ("/executions/{id}/drift", "get"),
    ("/datasets", "get"),
    ("/links", "get"),
    ("/models/{name}/{version}/report", "get"),
    ("/costs", "get"),
    ("/uploads", "post"),
}


def _operations(body: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every (path, method, operation) but the CORS preflights SAM adds (OPTIONS, a mock integration)."""
    for path, methods in body["paths"].items():
        for method, operation in methods.items():
            if method != "options":
                yield path, method, operation


FUNCTION_IDS = (
    "ApiFunction",
    "PrepareRunFunction",
    "ValidateDatasetFunction",
    "EvaluateModelFunction",
    "RegisterModelFunction",
    "RecordOutcomeFunction",
)


# ------------------------------------------------------------------ trigger 1: S3 upload via EventBridge


def test_upload_rule_matches_object_created_under_the_datasets_prefix_of_this_bucket(resources):
    rule = resources["PipelineStateMachineDatasetUploaded"]
    assert rule["Type"] == "AWS::Events::Rule"
    assert rule["Properties"]["EventPattern"] == EXPECTED_PATTERN


def test_upload_rule_targets_the_state_machine_with_the_raw_event(resources):
    (target,) = resources["PipelineStateMachineDatasetUploaded"]["Properties"]["Targets"]
    assert target["Arn"] == {"Ref": "PipelineStateMachine"}
    # PrepareRun parses the S3 event as EventBridge delivers it (docs/architecture.md): no reshaping.
    assert "Input" not in target and "InputTransformer" not in target and "InputPath" not in target


def test_upload_rule_retries_then_dead_letters_to_an_encrypted_long_lived_queue(resources):
    (target,) = resources["PipelineStateMachineDatasetUploaded"]["Properties"]["Targets"]
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 3
    assert 60 <= target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 86400
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["DatasetEventsDeadLetterQueue", "Arn"]}}

    queue = resources["DatasetEventsDeadLetterQueue"]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_only_the_upload_rule_may_send_to_the_dead_letter_queue(resources):
    policy = resources["DatasetEventsDeadLetterQueuePolicy"]["Properties"]
    assert policy["Queues"] == [{"Ref": "DatasetEventsDeadLetterQueue"}]
    (allow,) = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    assert allow["Condition"]["ArnEquals"]["aws:SourceArn"] == {
        "Fn::GetAtt": ["PipelineStateMachineDatasetUploaded", "Arn"]
    }


def test_pattern_typo_details_instead_of_detail_is_caught(sam_template):
    """SAM #2406: `details:` silently never matches; the pattern assertion must notice."""
    broken = load_template()
    pattern = broken["Resources"]["PipelineStateMachine"]["Properties"]["Events"]["DatasetUploaded"][
        "Properties"
    ]["Pattern"]
    pattern["details"] = pattern.pop("detail")
    rule = transform_template(broken)["Resources"]["PipelineStateMachineDatasetUploaded"]
    assert rule["Properties"]["EventPattern"] != EXPECTED_PATTERN


# ------------------------------------------------------------------ trigger 2: the REST API


def test_api_serves_exactly_the_documented_routes_through_the_api_function(resources):
    body = resources["PipelineApi"]["Properties"]["Body"]
    routes = {(path, method) for path, method, _ in _operations(body)}
    assert routes == API_ROUTES
    for _path, _method, operation in _operations(body):
        integration = operation["x-amazon-apigateway-integration"]
        assert integration["type"] == "aws_proxy"
        assert "${ApiFunction.Arn}" in integration["uri"]["Fn::Sub"]


def test_every_api_method_requires_a_cognito_token_so_unauthenticated_calls_are_refused(resources):
    body = resources["PipelineApi"]["Properties"]["Body"]
    scheme = body["components"]["securitySchemes"]["ConsoleCognito"]
    assert scheme["x-amazon-apigateway-authtype"] == "cognito_user_pools"
    assert scheme["in"] == "header"
    assert scheme["name"] == "Authorization"
    authorizer = scheme["x-amazon-apigateway-authorizer"]
    assert authorizer["providerARNs"] == [{"Fn::GetAtt": ["ConsoleUserPool", "Arn"]}]
    for path, method, operation in _operations(body):
        assert operation.get("security") == [{"ConsoleCognito": []}], (
            f"{method.upper()} {path} is not Cognito-authorised"
        )


def test_cors_admits_the_consoles_origin_only(resources):
    body = resources["PipelineApi"]["Properties"]["Body"]
    origin = {"Fn::Sub": "'https://${ConsoleDistribution.DomainName}'"}
    preflights = [methods["options"] for methods in body["paths"].values() if "options" in methods]
    assert len(preflights) == len({path for path, _ in API_ROUTES})
    for preflight in preflights:
        answer = preflight["x-amazon-apigateway-integration"]["responses"]["default"]
        assert answer["responseParameters"]["method.response.header.Access-Control-Allow-Origin"] == origin
        assert "security" not in preflight  # a preflight carries no token
    api_function = resources["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert api_function["CONSOLE_ORIGIN"] == {"Fn::Sub": "https://${ConsoleDistribution.DomainName}"}


def test_the_console_is_served_by_cloudfront_from_a_private_bucket_through_origin_access_control(resources):
    bucket = resources["ConsoleBucket"]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert "WebsiteConfiguration" not in bucket
    [origin] = resources["ConsoleDistribution"]["Properties"]["DistributionConfig"]["Origins"]
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["ConsoleOriginAccessControl", "Id"]}
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    oac = resources["ConsoleOriginAccessControl"]["Properties"]["OriginAccessControlConfig"]
    assert (oac["OriginAccessControlOriginType"], oac["SigningBehavior"]) == ("s3", "always")
    [reader, _deny] = resources["ConsoleBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert reader["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert reader["Action"] == "s3:GetObject"
    assert (
        "distribution/${ConsoleDistribution}"
        in reader["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"]
    )


def test_console_users_are_created_by_an_administrator_and_sign_in_with_code_and_pkce(resources):
    pool = resources["ConsoleUserPool"]["Properties"]
    assert pool["AdminCreateUserConfig"] == {"AllowAdminCreateUserOnly": True}
    client = resources["ConsoleUserPoolClient"]["Properties"]
    assert client["GenerateSecret"] is False
    assert client["AllowedOAuthFlows"] == ["code"]
    assert client["CallbackURLs"] == [{"Fn::Sub": "https://${ConsoleDistribution.DomainName}/"}]


def test_api_invokes_the_function_through_its_resource_policy_not_caller_credentials(resources):
    body = resources["PipelineApi"]["Properties"]["Body"]
    for _path, _method, operation in _operations(body):
        assert "credentials" not in operation["x-amazon-apigateway-integration"]
    permissions = resources_of_type({"Resources": resources}, "AWS::Lambda::Permission")
    assert len(permissions) == len(API_ROUTES)
    for permission in permissions.values():
        assert permission["Properties"]["Principal"] == "apigateway.amazonaws.com"
        assert permission["Properties"]["FunctionName"] == {"Ref": "ApiFunction"}


def test_api_stage_is_traced_and_named_after_the_stage_parameter(resources):
    stage = resources["PipelineApiStage"]["Properties"]
    assert stage["TracingEnabled"] is True
    assert stage["StageName"] == {"Ref": "Stage"}


def test_api_throttles_every_method_so_a_runaway_client_cannot_start_many_jobs(resources):
    (setting,) = resources["PipelineApiStage"]["Properties"]["MethodSettings"]
    assert (setting["ResourcePath"], setting["HttpMethod"]) == ("/*", "*")
    assert 0 < setting["ThrottlingRateLimit"] <= 10
    assert 0 < setting["ThrottlingBurstLimit"] <= 20


# ------------------------------------------------------------------ storage


def test_bucket_is_versioned_encrypted_private_and_publishes_to_eventbridge(resources):
    bucket = resources["ArtifactBucket"]
    properties = bucket["Properties"]
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert properties["NotificationConfiguration"]["EventBridgeConfiguration"] == {"EventBridgeEnabled": True}
    assert properties["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert bucket["DeletionPolicy"] == "Retain" and bucket["UpdateReplacePolicy"] == "Retain"


def test_bucket_expires_old_noncurrent_versions_and_abandoned_uploads(resources):
    (rule,) = resources["ArtifactBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled"
    assert "NoncurrentVersionExpiration" in rule
    assert rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] >= 1


def test_bucket_policy_denies_every_request_without_tls(resources):
    policy = resources["ArtifactBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "ArtifactBucket"}
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == "*"
    assert statement["Action"] == "s3:*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert {"Fn::GetAtt": ["ArtifactBucket", "Arn"]} in statement["Resource"]
    assert {"Fn::Sub": "${ArtifactBucket.Arn}/*"} in statement["Resource"]


def test_registry_table_has_the_documented_keys_on_demand_pitr_and_encryption(resources):
    table = resources["RegistryTable"]
    properties = table["Properties"]
    assert properties["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert sorted(properties["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
    ]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"] == {"SSEEnabled": True}
    assert table["DeletionPolicy"] == "Retain"
    assert properties["DeletionProtectionEnabled"] == {"Fn::If": ["IsProd", True, False]}


def test_topic_is_encrypted_and_the_email_subscription_exists_only_when_an_address_is_given(cfn, resources):
    assert resources["NotificationTopic"]["Properties"]["KmsMasterKeyId"] == "alias/aws/sns"
    subscription = resources["NotificationEmailSubscription"]
    assert subscription["Condition"] == "HasNotificationEmail"
    assert subscription["Properties"]["Protocol"] == "email"
    assert cfn["Conditions"]["HasNotificationEmail"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "NotificationEmail"}, ""]}]
    }
    assert cfn["Parameters"]["NotificationEmail"]["Default"] == ""


# ------------------------------------------------------------------ the state machine


def test_state_machine_is_standard_traced_logs_everything_and_uses_its_own_role(resources):
    machine = resources["PipelineStateMachine"]["Properties"]
    assert machine["StateMachineType"] == "STANDARD"
    assert machine["TracingConfiguration"] == {"Enabled": True}
    logging = machine["LoggingConfiguration"]
    assert logging["Level"] in ("ALL", "ERROR")
    assert logging["IncludeExecutionData"] is True
    assert logging["Destinations"] == [
        {"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": ["StateMachineLogGroup", "Arn"]}}}
    ]
    assert machine["RoleArn"] == {"Fn::GetAtt": ["StateMachineRole", "Arn"]}


def test_state_machine_log_group_is_a_vended_log_group_with_retention(resources):
    group = resources["StateMachineLogGroup"]["Properties"]
    assert group["LogGroupName"]["Fn::Sub"].startswith("/aws/vendedlogs/states/")
    assert group["RetentionInDays"] == {"Fn::If": ["IsProd", 365, 30]}


def test_substitutions_pass_every_function_arn_and_the_sagemaker_role(resources):
    substitutions = resources["PipelineStateMachine"]["Properties"]["DefinitionSubstitutions"]
    for function in FUNCTION_IDS[1:]:
        assert substitutions[f"{function}Arn"] == {"Fn::GetAtt": [function, "Arn"]}
    assert substitutions["SageMakerRoleArn"] == {"Fn::GetAtt": ["SageMakerExecutionRole", "Arn"]}
    assert substitutions["BucketName"] == {"Ref": "ArtifactBucket"}
    assert substitutions["TopicArn"] == {"Ref": "NotificationTopic"}


def test_image_uri_is_the_regional_scikit_learn_image_of_the_chosen_framework_version(cfn, resources):
    image = resources["PipelineStateMachine"]["Properties"]["DefinitionSubstitutions"]["ScikitLearnImageUri"]
    pattern, variables = image["Fn::Sub"]
    assert pattern == (
        "${ImageAccount}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}"
        "/sagemaker-scikit-learn:${SklearnFrameworkVersion}-cpu-py3"
    )
    assert variables["ImageAccount"] == {
        "Fn::FindInMap": ["SklearnImageAccounts", {"Ref": "AWS::Region"}, "Account"]
    }
    accounts = cfn["Mappings"]["SklearnImageAccounts"]
    for region in (
        "us-east-1",
        "us-east-2",
        "us-west-2",
        "eu-west-1",
        "eu-central-1",
        "ap-southeast-2",
        "ap-northeast-1",
    ):
        assert re.fullmatch(r"\d{12}", accounts[region]["Account"]), region
    assert accounts["us-east-1"]["Account"] == "683313688378"
    version = cfn["Parameters"]["SklearnFrameworkVersion"]
    assert version["Default"] == "1.2-1" and "1.2-1" in version["AllowedValues"]


def test_a_region_without_the_image_is_refused_before_anything_is_created(cfn):
    """The Rules assertion names the problem up front instead of a FindInMap failure mid-deploy."""
    (assertion,) = cfn["Rules"]["SklearnImageRegion"]["Assertions"]
    regions, region = assertion["Assert"]["Fn::Contains"]
    assert region == {"Ref": "AWS::Region"}
    assert sorted(regions) == sorted(cfn["Mappings"]["SklearnImageAccounts"])
    assert "region" in assertion["AssertDescription"]


# ------------------------------------------------------------------ functions


def test_functions_match_the_documented_logical_ids_and_handlers(resources):
    documented = documented_functions(ARCHITECTURE_PATH.read_text())
    assert set(documented) == set(FUNCTION_IDS)
    for logical_id, handler in documented.items():
        assert resources[logical_id]["Properties"]["Handler"] == handler


@pytest.mark.parametrize("logical_id", FUNCTION_IDS)
def test_function_runtime_tracing_and_logging(resources, logical_id):
    function = resources[logical_id]["Properties"]
    assert function["Runtime"] == "python3.13"
    assert function["TracingConfig"] == {"Mode": "Active"}
    assert function["LoggingConfig"] == {"LogFormat": "JSON", "LogGroup": {"Ref": "FunctionsLogGroup"}}
    assert function["Timeout"] <= 300
    assert function["Code"] == {"S3Bucket": "readmission-packaging", "S3Key": "functions.zip"}


@pytest.mark.parametrize("logical_id", FUNCTION_IDS)
def test_function_environment_holds_the_documented_variables(resources, logical_id):
    variables = resources[logical_id]["Properties"]["Environment"]["Variables"]
    required, optional = documented_environment(ARCHITECTURE_PATH.read_text())
    expected = required if logical_id == "ApiFunction" else required - {"STATE_MACHINE_ARN"}
    assert expected <= set(variables) <= expected | optional
    assert variables["REGISTRY_TABLE"] == {"Ref": "RegistryTable"}
    assert variables["BUCKET"] == {"Ref": "ArtifactBucket"}
    assert variables["JOB_NAME_PREFIX"] == {"Ref": "JobNamePrefix"}


def test_only_the_api_function_knows_the_state_machine(resources):
    api = resources["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert api["STATE_MACHINE_ARN"] == {"Ref": "PipelineStateMachine"}


# ------------------------------------------------------------------ parameters and outputs


def test_parameters_carry_the_documented_defaults(cfn):
    parameters = cfn["Parameters"]
    expected = {
        "Stage": "dev",
        "ModelName": "medication-adherence-model",
        "DefaultAlgorithm": "HistGradientBoosting",
        "TrainingInstanceType": "ml.m5.large",
        "TransformInstanceType": "ml.m5.large",
        "ProcessingInstanceType": "ml.m5.large",
        "MinRocAuc": "0.60",
        "MaxAucDrop": "0",
        "DatasetsPrefix": "datasets/",
        "ScoringPrefix": "scoring/",
    }
    for name, default in expected.items():
        assert str(parameters[name]["Default"]) == default, name
    assert set(parameters["Stage"]["AllowedValues"]) == {"dev", "prod"}
    assert set(parameters["DefaultAlgorithm"]["AllowedValues"]) == {
        "HistGradientBoosting",
        "RandomForest",
        "LogisticRegression",
    }


@pytest.mark.parametrize(
    ("parameter", "kind"),
    [
        ("TrainingInstanceType", "training"),
        ("TransformInstanceType", "transform"),
        ("ProcessingInstanceType", "processing"),
    ],
)
def test_instance_type_defaults_are_types_their_sagemaker_operation_accepts(cfn, parameter, kind):
    """PrepareRun refuses a default outside the operation's enum (functions/instance_types.json); the
    shipped defaults must not be refused."""
    allowed = json.loads((REPO / "functions" / "instance_types.json").read_text())[kind]["values"]
    assert cfn["Parameters"][parameter]["Default"] in allowed


@pytest.mark.parametrize(
    ("value", "accepted"),
    [("readmission", True), ("rdm-dev", True), ("Readmission", False), ("a" * 13, False), ("-x", False)],
)
def test_job_name_prefix_is_short_and_lower_case(cfn, value, accepted):
    """SageMaker lower-cases names in ARNs; a prefix with capitals would never match the role's scope."""
    pattern = cfn["Parameters"]["JobNamePrefix"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, value)) is accepted


def test_outputs_name_bucket_api_state_machine_table_and_topic(cfn):
    outputs: dict[str, Any] = cfn["Outputs"]
    assert outputs["BucketName"]["Value"] == {"Ref": "ArtifactBucket"}
    assert outputs["StateMachineArn"]["Value"] == {"Ref": "PipelineStateMachine"}
    assert outputs["RegistryTableName"]["Value"] == {"Ref": "RegistryTable"}
    assert outputs["TopicArn"]["Value"] == {"Ref": "NotificationTopic"}
    api_url = outputs["ApiUrl"]["Value"]["Fn::Sub"]
    assert api_url.startswith("https://${PipelineApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/")


NAME_PROPERTIES = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::IAM::Role": "RoleName",
    "AWS::Serverless::Function": "FunctionName",
    "AWS::Serverless::StateMachine": "Name",
    "AWS::Serverless::Api": "Name",
    "AWS::Logs::LogGroup": "LogGroupName",
}


def test_resource_names_are_generated_or_carry_the_stack_name_so_stacks_never_collide(sam_template):
    """dev and prod (or two developers' stacks) must deploy side by side in one account."""
    for logical_id, resource in sam_template["Resources"].items():
        name = resource.get("Properties", {}).get(NAME_PROPERTIES.get(resource["Type"], ""))
        if name is not None:
            assert "${AWS::StackName}" in name.get("Fn::Sub", ""), f"{logical_id} has a fixed name {name}"

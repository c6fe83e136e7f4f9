"""The local IAM check: which action and resource a request is, and how the role's policies decide."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator import iam
from emulator.iam import Request, Role

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "readmission-local-artifactbucket"


def role(*statements: dict) -> Role:
    document = json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
    return Role("TestRole", "test-role", "arn:aws:iam::123456789012:role/test-role", (document,))


def allow(action: str, resource: str) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def test_a_copy_needs_read_on_the_source_and_write_on_the_target() -> None:
    requests = iam.requests_for(
        "s3",
        "CopyObject",
        {
            "Bucket": BUCKET,
            "Key": "runs/r1/input/x.csv",
            "CopySource": {"Bucket": BUCKET, "Key": "datasets/x.csv", "VersionId": "v1"},
        },
    )
    assert requests == [
        Request("s3:GetObjectVersion", f"arn:aws:s3:::{BUCKET}/datasets/x.csv"),
        Request("s3:PutObject", f"arn:aws:s3:::{BUCKET}/runs/r1/input/x.csv"),
    ]


def test_head_object_is_get_object_and_listing_is_list_bucket_with_its_prefix() -> None:
    assert iam.requests_for("s3", "HeadObject", {"Bucket": BUCKET, "Key": "k"}) == [
        Request("s3:GetObject", f"arn:aws:s3:::{BUCKET}/k")
    ]
    assert iam.requests_for("s3", "ListObjectsV2", {"Bucket": BUCKET, "Prefix": "runs/"}) == [
        Request("s3:ListBucket", f"arn:aws:s3:::{BUCKET}", (("s3:prefix", "runs/"),))
    ]


def test_a_transaction_is_authorised_item_by_item() -> None:
    requests = iam.requests_for(
        "dynamodb",
        "TransactWriteItems",
        {"TransactItems": [{"ConditionCheck": {"TableName": "t"}}, {"Update": {"TableName": "t"}}]},
    )
    assert [r.action for r in requests] == ["dynamodb:ConditionCheckItem", "dynamodb:UpdateItem"]


def test_an_operation_without_a_mapping_fails_loudly() -> None:
    with pytest.raises(iam.UnmappedOperation, match="S3 PutBucketPolicy"):
        iam.requests_for("s3", "PutBucketPolicy", {"Bucket": BUCKET})


def test_allow_wildcards_and_explicit_deny_decide_as_iam_does() -> None:
    reader = role(allow("s3:GetObject", f"arn:aws:s3:::{BUCKET}/runs/*"))
    assert iam.is_allowed(reader, Request("s3:GetObject", f"arn:aws:s3:::{BUCKET}/runs/r1/drift.json"))
    assert not iam.is_allowed(reader, Request("s3:GetObject", f"arn:aws:s3:::{BUCKET}/datasets/x.csv"))
    assert not iam.is_allowed(reader, Request("s3:PutObject", f"arn:aws:s3:::{BUCKET}/runs/r1/x"))
    denied = role(allow("s3:*", "*"), {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "*"})
    assert not iam.is_allowed(denied, Request("s3:PutObject", f"arn:aws:s3:::{BUCKET}/runs/x"))


def test_access_denied_names_the_role_the_action_and_the_resource() -> None:
    with pytest.raises(iam.AccessDenied) as raised:
        iam.authorize(role(), [Request("sns:Publish", "arn:aws:sns:us-east-1:123456789012:topic")])
    assert raised.value.message == (
        "User: arn:aws:sts::123456789012:assumed-role/test-role/local is not authorized to perform: "
        "sns:Publish on resource: arn:aws:sns:us-east-1:123456789012:topic because no identity-based policy "
        "allows the sns:Publish action"
    )


def test_the_template_gives_every_function_and_the_state_machine_their_own_role(tmp_path: Path) -> None:
    from emulator.template import load_stack

    stack = load_stack(ROOT, {})
    roles = iam.load_roles(ROOT, stack.parameters, cache_dir=tmp_path)

    assert set(roles.function_roles) == set(stack.functions)
    assert len(set(roles.function_roles.values())) == len(stack.functions)  # no shared role
    machine = roles.for_state_machine()
    assert machine is not None and machine.logical_id == "StateMachineRole"
    prepare = roles.for_function("PrepareRunFunction")
    assert prepare is not None
    snapshot = f"arn:aws:s3:::{stack.bucket}/runs/r1/input/x.csv"
    assert iam.is_allowed(prepare, Request("s3:PutObject", snapshot))
    assert not iam.is_allowed(roles.for_function("EvaluateModelFunction"), Request("s3:PutObject", snapshot))
    # cached: the second load reads the file the first one wrote
    assert iam.load_roles(ROOT, stack.parameters, cache_dir=tmp_path).as_json() == roles.as_json()


def test_a_role_arn_not_in_the_template_is_allowed_nothing() -> None:
    roles = iam.Roles({}, {}, None)
    stranger = roles.for_arn("arn:aws:iam::123456789012:role/someone-else")
    assert not iam.is_allowed(stranger, Request("s3:GetObject", "arn:aws:s3:::b/k"))


def test_a_call_made_as_a_role_is_validated_then_authorised_before_moto_answers() -> None:
    import boto3
    from botocore.exceptions import ClientError
    from moto import mock_aws

    from emulator import enforcement

    reader = role(allow("dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:123456789012:table/registry"))
    with mock_aws():
        enforcement.install()
        try:
            client = boto3.client("dynamodb", region_name="us-east-1")
            with iam.acting_as(reader):
                with pytest.raises(ClientError) as invalid:  # DynamoDB's TableName is 1..1024 chars, ...
                    client.get_item(TableName="x" * 1025, Key={"pk": {"S": "a"}})
                with pytest.raises(ClientError) as denied:
                    client.put_item(TableName="registry", Item={"pk": {"S": "a"}})
            with pytest.raises(ClientError) as missing:  # the runtime itself: not checked, moto answers
                client.get_item(TableName="registry", Key={"pk": {"S": "a"}})
        finally:
            enforcement.uninstall()

    assert invalid.value.response["Error"]["Code"] == "ValidationException"
    assert "at 'tableName'" in invalid.value.response["Error"]["Message"]
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "dynamodb:PutItem on resource: arn:aws:dynamodb:us-east-1:123456789012:table/registry" in str(
        denied.value
    )
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"

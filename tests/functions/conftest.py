"""Fixtures for the Lambda handlers: moto in-process, the handlers imported the way Lambda loads them.

Every test gets a fresh moto account with the project's bucket (with `code/dataset_schema.json`), the
registry table, the topic and a trivial state machine for the API to start. The names and helpers the
tests import live in tests/functions/helpers.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.functions.helpers import BUCKET, ENVIRONMENT, TABLE, Aws


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    for key, value in ENVIRONMENT.items():
        monkeypatch.setenv(key, value)
    from moto import mock_aws

    import aws_clients
    import settings
    import validate_dataset

    # Executions really run (the trivial Pass machine below), so GET /executions sees a real history.
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        handles = Aws()
        handles.s3.create_bucket(Bucket=BUCKET)
        handles.s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        handles.dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        topic = handles.sns.create_topic(Name="readmission-notifications")["TopicArn"]
        machine = handles.sfn.create_state_machine(
            name="readmission-pipeline",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}),
            roleArn="arn:aws:iam::123456789012:role/sfn",
        )
        handles.state_machine_arn = machine["stateMachineArn"]
        monkeypatch.setenv("STATE_MACHINE_ARN", handles.state_machine_arn)
        monkeypatch.setenv("TOPIC_ARN", topic)
        from pipelines.schema import as_json_dict

        handles.put("code/dataset_schema.json", json.dumps(as_json_dict()).encode())
        settings.load_settings.cache_clear()
        aws_clients.reset()
        validate_dataset.clear_schema_cache()
        yield handles
        settings.load_settings.cache_clear()
        aws_clients.reset()
        validate_dataset.clear_schema_cache()

"""The S3-upload trigger: what EventBridge delivers to the state machine when a dataset lands.

The template's `EventBridgeRule` events are installed as moto EventBridge rules on the default bus,
each with a capture queue as its target; the bucket has EventBridge notifications on. A `PutObject`
then makes moto build the `Object Created` event from the object it stored and match it against
the rule's Pattern, so a pattern typo (`details:` for `detail:`) shows up locally as "no rule
matched", as it would on AWS. The rule's Input/InputPath/InputTransformer is applied to the
captured event before it becomes the execution input.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import boto3
from jsonpath_ng.ext import parse as jsonpath

from emulator.template import EventRuleSpec

_QUEUE_PREFIX = "local-eventbridge-capture-"


class NoRuleMatched(RuntimeError):
    """The upload produced an event that none of the state machine's EventBridge rules match."""


class EventBridgeTrigger:
    """The state machine's EventBridge rules, installed in moto."""

    def __init__(self, bucket: str, rules: list[EventRuleSpec]):
        self.bucket = bucket
        self.rules = rules
        self._queues: dict[str, str] = {}
        # one collector at a time: two uploads at once (two endpoint requests) each start their run once
        self._collecting = threading.Lock()

    def install(self) -> None:
        s3 = boto3.client("s3")
        s3.put_bucket_notification_configuration(
            Bucket=self.bucket,
            NotificationConfiguration={"EventBridgeConfiguration": {}},
        )
        events, sqs = boto3.client("events"), boto3.client("sqs")
        for rule in self.rules:
            queue_url = sqs.create_queue(QueueName=f"{_QUEUE_PREFIX}{rule.name}")["QueueUrl"]
            queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            events.put_rule(Name=f"local-{rule.name}", EventPattern=json.dumps(rule.pattern), State="ENABLED")
            events.put_targets(Rule=f"local-{rule.name}", Targets=[{"Id": "capture", "Arn": queue_arn}])
            self._queues[rule.name] = queue_url

    def upload(self, path: str, key: str) -> list[dict[str, Any]]:
        """Put a file into the bucket; return the execution input of every rule that matched."""
        boto3.client("s3").upload_file(path, self.bucket, key)
        return self.collect()

    def collect(self) -> list[dict[str, Any]]:
        with self._collecting:
            return self._collect()

    def _collect(self) -> list[dict[str, Any]]:
        sqs = boto3.client("sqs")
        inputs = []
        for rule in self.rules:
            seen: set[tuple[Any, ...]] = set()
            queue = self._queues[rule.name]
            while True:  # every captured event (uploads at once may queue more than one receive returns)
                messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
                if not messages:
                    break
                for message in messages:
                    sqs.delete_message(
                        QueueUrl=self._queues[rule.name], ReceiptHandle=message["ReceiptHandle"]
                    )
                    event = _as_delivered(json.loads(message["Body"]))
                    if _object_version(event) in seen:
                        continue  # moto's second event for one multipart upload (S3 sends one)
                    seen.add(_object_version(event))
                    inputs.append(deliver(rule, event))
        return inputs


def _object_version(event: dict[str, Any]) -> tuple[Any, ...]:
    """Which object version an `Object Created` event is about. moto's CompleteMultipartUpload emits
    two (its inner PutObject's and the upload's own) for one stored object; S3 emits one."""
    detail = event.get("detail") or {}
    obj = detail.get("object") or {}
    if not obj:
        return (event.get("id"),)
    return ((detail.get("bucket") or {}).get("name"), obj.get("key"), obj.get("eTag"), obj.get("version-id"))


def _as_delivered(event: dict[str, Any]) -> dict[str, Any]:
    """moto writes `"version-id": null` for an unversioned bucket; S3 leaves the field out."""
    obj = (event.get("detail") or {}).get("object") or {}
    if obj.get("version-id") is None:
        obj.pop("version-id", None)
    return event


def deliver(rule: EventRuleSpec, event: dict[str, Any]) -> Any:
    """What EventBridge sends the target for this event: Input, InputPath, InputTransformer or the event."""
    if rule.input is not None:
        return json.loads(rule.input)
    if rule.input_path:
        found = jsonpath(rule.input_path).find(event)
        return found[0].value if found else None
    if rule.input_transformer:
        return transform(rule.input_transformer, event)
    return event


def transform(transformer: dict[str, Any], event: dict[str, Any]) -> Any:
    """EventBridge's InputTransformer: `<name>` placeholders from InputPathsMap into InputTemplate.

    Inside a JSON string a value is inserted as text; elsewhere as JSON (strings are quoted by the
    template itself, as EventBridge requires).
    """
    template: str = transformer["InputTemplate"]
    values: dict[str, Any] = {"aws.events.event": event, "aws.events.event.json": event}
    for name, path in (transformer.get("InputPathsMap") or {}).items():
        found = jsonpath(path).find(event)
        values[name] = found[0].value if found else None
    out = template
    for name, value in values.items():
        text = value if isinstance(value, str) else json.dumps(value)
        out = out.replace(f"<{name}>", text)
    try:
        return json.loads(out)
    except json.JSONDecodeError:
        return out  # a plain-text template delivers a string

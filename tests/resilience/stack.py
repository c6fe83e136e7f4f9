"""What the resilience tests observe on the local stack: snapshots, the "nothing lost" comparison,
notifications, the execution history, and the dataset files the scenarios upload.

A snapshot is every bucket object version (key, version id, ETag) and every registry item; comparing
two snapshots says what a scenario created and whether it changed or removed anything that existed.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer

from emulator.runtime import LocalRuntime

PROJECT = Path(__file__).resolve().parents[2]
DATASET = PROJECT / "data" / "diabetic_data.csv.gz"
REGION = "us-east-1"


# ---- datasets -----------------------------------------------------------------------------------------
def dataset_lines(start: int, rows: int) -> tuple[str, list[str]]:
    """The header and rows [start, start + rows) of the bundled dataset, without line ends."""
    with gzip.open(DATASET, "rt", newline="") as source:
        header = source.readline().rstrip("\r\n")
        lines = []
        for index, line in enumerate(source):
            if index >= start + rows:
                break
            if index >= start:
                lines.append(line.rstrip("\r\n"))
    return header, lines


def write_csv(path: Path, header: str, lines: list[str], *, newline: str = "\n", bom: bool = False) -> Path:
    text = newline.join([header, *lines]) + newline
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def column_index(header: str, name: str) -> int:
    return header.split(",").index(name)


# ---- snapshots --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Snapshot:
    objects: dict[tuple[str, str], str]  # (key, version id) -> ETag
    delete_markers: frozenset[tuple[str, str]]
    items: dict[tuple[str, str], dict[str, Any]]  # (pk, sk) -> item


def snapshot(runtime: LocalRuntime) -> Snapshot:
    s3 = boto3.client("s3", region_name=REGION)
    objects: dict[tuple[str, str], str] = {}
    markers: set[tuple[str, str]] = set()
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=runtime.stack.bucket):
        for version in page.get("Versions", []):
            objects[(version["Key"], version["VersionId"])] = version["ETag"]
        for marker in page.get("DeleteMarkers", []):
            markers.add((marker["Key"], marker["VersionId"]))
    return Snapshot(objects, frozenset(markers), registry_items(runtime))


def registry_items(runtime: LocalRuntime) -> dict[tuple[str, str], dict[str, Any]]:
    client = boto3.client("dynamodb", region_name=REGION)
    de = TypeDeserializer()
    items: dict[tuple[str, str], dict[str, Any]] = {}
    for page in client.get_paginator("scan").paginate(
        TableName=runtime.stack.table.name, ConsistentRead=True
    ):
        for raw in page["Items"]:
            item = {k: de.deserialize(v) for k, v in raw.items()}
            items[(item["pk"], item["sk"])] = item
    return items


@dataclass(frozen=True)
class Delta:
    """What changed between two snapshots."""

    new_keys: list[str]
    changed_or_removed_objects: list[str]
    new_items: list[tuple[str, str]]
    changed_items: dict[tuple[str, str], list[str]]  # key -> attribute names that differ
    removed_items: list[tuple[str, str]]


def delta(before: Snapshot, after: Snapshot) -> Delta:
    removed_objects = [
        f"{k}@{v}" for (k, v), etag in before.objects.items() if after.objects.get((k, v)) != etag
    ]
    removed_objects += [f"{k}@{v} (delete marker)" for k, v in after.delete_markers - before.delete_markers]
    changed: dict[tuple[str, str], list[str]] = {}
    for key, item in before.items.items():
        now = after.items.get(key)
        if now is not None and now != item:
            changed[key] = sorted(a for a in set(item) | set(now) if item.get(a) != now.get(a))
    return Delta(
        new_keys=sorted({k for k, v in after.objects if (k, v) not in before.objects}),
        changed_or_removed_objects=sorted(removed_objects),
        new_items=sorted(k for k in after.items if k not in before.items),
        changed_items=changed,
        removed_items=sorted(k for k in before.items if k not in after.items),
    )


def nothing_lost(
    before: Snapshot,
    after: Snapshot,
    *,
    run_ids: list[str],
    uploads: tuple[str, ...] = (),
    new_versions_of: str | None = None,
    allowed_changes: dict[tuple[str, str], set[str]] | None = None,
) -> Delta:
    """Assert that the scenario only added its own things; return the delta for further checks.

    Allowed: new objects under `runs/<runId>/` of the given runs, under `reports/<model>/v<N>/` of the
    versions they registered, and the test's own uploads; new registry
    items RUN#<runId>, the runs' idempotency claims and (with `new_versions_of`) version items of that
    model; changes only to the listed (item, attributes; `name*` is a prefix), e.g. the version counter.
    A claim these runs took again after an earlier failure may change (the documented retry).
    """
    d = delta(before, after)
    assert not d.changed_or_removed_objects, (
        f"earlier objects changed or removed: {d.changed_or_removed_objects}"
    )
    assert not d.removed_items, f"registry items removed: {d.removed_items}"
    # the runs' own prefixes, and the published report of each version they registered (RegisterModel)
    new_versions = [
        int(sk[len("VERSION#") :])
        for pk, sk in d.new_items
        if new_versions_of is not None and pk == f"MODEL#{new_versions_of}" and sk.startswith("VERSION#")
    ]
    own_prefixes = tuple(f"runs/{r}/" for r in run_ids) + tuple(
        f"reports/{new_versions_of}/v{v}/" for v in new_versions
    )
    stray = [k for k in d.new_keys if not k.startswith(own_prefixes) and k not in uploads]
    assert not stray, f"objects written outside the runs' own prefixes: {stray}"
    claims = {
        after.items[("RUN#" + r, "RUN")].get("idempotency_key")
        for r in run_ids
        if ("RUN#" + r, "RUN") in after.items
    }
    for pk, sk in d.new_items:
        if sk == "RUN":
            assert pk[len("RUN#") :] in run_ids, f"a run record of another run appeared: {pk}"
        elif sk == "IDEMPOTENCY":
            assert pk[len("IDEMPOTENCY#") :] in claims, f"an idempotency claim not made by these runs: {pk}"
        else:
            assert new_versions_of is not None and pk == f"MODEL#{new_versions_of}", (
                f"unexpected new item {pk} {sk}"
            )
    allowed = allowed_changes or {}
    for key, attributes in d.changed_items.items():
        patterns = allowed.get(key, set())
        extra = {
            a
            for a in attributes
            if not any(a == p or (p.endswith("*") and a.startswith(p[:-1])) for p in patterns)
        }
        if key[1] == "IDEMPOTENCY" and key[0][len("IDEMPOTENCY#") :] in claims:
            continue  # a failed claim taken again by the retry: the documented way to recover
        assert not extra, f"registry item {key} changed: {sorted(extra)}"
    return d


# META attributes a run may change: the version counter (even a failed registration spends a number)
# and, when its model is approved, the champion pointer.
COUNTER = {"latest_version"}
CHAMPION_MOVE = {"latest_version", "champion*"}


def meta_key(model: str) -> tuple[str, str]:
    return (f"MODEL#{model}", "META")


def champion(items: dict[tuple[str, str], dict[str, Any]], model: str) -> Any:
    return (items.get(meta_key(model)) or {}).get("champion_version")


def run_item(runtime: LocalRuntime, run_id: str) -> dict[str, Any]:
    return registry_items(runtime).get((f"RUN#{run_id}", "RUN")) or {}


def versions_of(items: dict[tuple[str, str], dict[str, Any]], model: str) -> dict[int, dict[str, Any]]:
    return {
        int(item["version"]): item
        for (pk, sk), item in items.items()
        if pk == f"MODEL#{model}" and sk.startswith("VERSION#")
    }


# ---- notifications ------------------------------------------------------------------------------------
class Notifications:
    """An SQS queue subscribed to the stack's topic: what SNS really delivered."""

    def __init__(self, runtime: LocalRuntime) -> None:
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.url = self.sqs.create_queue(QueueName="resilience-notifications")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        [topic] = runtime.stack.topics.values()
        boto3.client("sns", region_name=REGION).subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        self.seen: list[dict[str, str]] = []

    def drain(self) -> None:
        while True:
            got = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return
            for message in got:
                body = json.loads(message["Body"])
                self.seen.append({"subject": body.get("Subject") or "", "message": body.get("Message") or ""})
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])

    def about(self, run_id: str) -> list[dict[str, str]]:
        """Every notification that names the run."""
        self.drain()
        return [n for n in self.seen if run_id in n["message"]]


# ---- history -------------------------------------------------------------------------------------------
def entered(record: dict[str, Any]) -> list[str]:
    return [
        e["stateEnteredEventDetails"]["name"] for e in record["events"] if "stateEnteredEventDetails" in e
    ]


def scheduled_jobs(record: dict[str, Any], action: str) -> list[tuple[str, str]]:
    """(job name, how its task ended) for each scheduled SageMaker task of `action` (e.g.
    "createTrainingJob"), in order, from the execution history."""
    ended = ("TaskSucceeded", "TaskFailed", "TaskTimedOut", "TaskSubmitFailed", "TaskStartFailed")
    jobs: list[tuple[str, str]] = []
    pending: str | None = None
    for event in record["events"]:
        details = event.get("taskScheduledEventDetails")
        if details and details.get("resourceType") == "sagemaker":
            if str(details.get("resource", "")).split(".")[0] == action:
                params = json.loads(details["parameters"])
                pending = next(params[k] for k in params if k.endswith("JobName"))
            continue
        if pending is not None and event["type"] in ended:
            failure = event.get("taskFailedEventDetails") or event.get("taskStartFailedEventDetails") or {}
            error = failure.get("error")
            jobs.append((pending, event["type"] + (f" {error}" if error else "")))
            pending = None
    return jobs

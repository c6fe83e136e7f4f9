"""The registry: atomic versions; the champion pointer moves only by `promote`, conditioned on the
champion the run compared against, and a failed run's version is withdrawn (declined or rolled back)."""

from __future__ import annotations

import copy
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest

import register_model
from registry import Registry, from_dynamo, to_dynamo
from tests.functions.helpers import BUCKET, TABLE, Aws, load_event, with_training_output

MODEL = "medication-adherence-model"


def registry(aws: Aws) -> Registry:
    return Registry(TABLE, aws.dynamodb)


def start(reg: Registry, run_id: str) -> None:
    reg.start_run(
        run_id=run_id,
        execution_arn=f"arn:{run_id}",
        model_name=MODEL,
        idempotency_key=f"k-{run_id}",
        dataset_uri="s3://b/datasets/d.csv",
    )


def register_event(run_id: str, decision: str = "approved", compared: int | None = None) -> dict[str, Any]:
    event = copy.deepcopy(load_event("register_model.json"))
    event["run"]["runId"] = run_id
    event["evaluation"]["decision"] = decision
    event["evaluation"]["comparedChampionVersion"] = compared
    event["training"]["artifactUri"] = f"s3://{BUCKET}/runs/{run_id}/model/job/output/model.tar.gz"
    return with_training_output(event)


def test_floats_are_stored_as_decimals_and_come_back_as_plain_numbers() -> None:
    stored = to_dynamo({"roc_auc": 0.6712, "n": 3, "nested": [0.1, {"x": 2.5}], "ok": True})

    assert stored["roc_auc"] == Decimal("0.6712")
    assert from_dynamo(stored) == {"roc_auc": 0.6712, "n": 3, "nested": [0.1, {"x": 2.5}], "ok": True}
    with pytest.raises(ValueError):
        to_dynamo(float("nan"))


def promote(reg: Registry, version: int, expected: int | None) -> bool:
    return reg.promote(MODEL, version, expected_champion=expected, reason="its run succeeded")


def test_the_sample_event_registers_version_1_as_a_candidate_not_yet_champion(aws: Aws) -> None:
    event = load_event("register_model.json")
    start(registry(aws), event["run"]["runId"])

    result = register_model.handler(with_training_output(event), None)

    assert result == {
        "modelName": MODEL,
        "version": 1,
        "status": "APPROVED",
        "isChampion": False,
        "reportUri": f"s3://{BUCKET}/reports/{MODEL}/v1/",
        "scoring": {
            "source": "new model",
            "version": 1,
            "modelArtifactUri": event["training"]["artifactUri"],
        },
    }
    version = registry(aws).get_version(MODEL, 1)
    assert version["metrics"]["model"]["roc_auc"] == pytest.approx(0.6712)
    assert version["run_status"] == "RUNNING" and version["promotion"] == "CANDIDATE"
    assert version["training_job"] == event["training"]["jobName"]
    assert registry(aws).get_champion(MODEL) is None  # the pointer moves when the run succeeds
    assert registry(aws).get_run(event["run"]["runId"])["model_version"] == 1


def test_promoting_a_candidate_moves_the_pointer_and_keeps_what_it_replaced(aws: Aws) -> None:
    reg = registry(aws)
    for run_id in ("r1", "r2"):
        start(reg, run_id)
    register_model.handler(register_event("r1"), None)
    assert promote(reg, 1, None)
    register_model.handler(register_event("r2", compared=1), None)

    assert promote(reg, 2, 1)

    champion = reg.get_champion(MODEL)
    assert champion.version == 2 and champion.artifact_uri.startswith(f"s3://{BUCKET}/runs/r2/")
    second = reg.get_version(MODEL, 2)
    assert second["promotion"] == "PROMOTED"
    assert second["replaced_champion"]["champion_version"] == 1
    assert promote(reg, 2, 1)  # a retried promotion of the champion changes nothing
    assert reg.get_champion(MODEL) == champion


def test_a_rejected_model_gets_a_version_but_not_the_champion_pointer(aws: Aws) -> None:
    reg = registry(aws)
    start(reg, "r1")
    register_model.handler(register_event("r1"), None)
    promote(reg, 1, None)
    start(reg, "r2")

    result = register_model.handler(register_event("r2", "rejected", compared=1), None)

    assert result["version"] == 2 and result["status"] == "REJECTED" and result["isChampion"] is False
    assert reg.get_version(MODEL, 2)["promotion"] == "NOT_PROMOTED"
    assert reg.get_champion(MODEL).version == 1


def test_versions_increase_monotonically_over_many_calls(aws: Aws) -> None:
    reg = registry(aws)

    numbers = [reg.allocate_version(MODEL) for _ in range(25)]

    assert numbers == list(range(1, 26))


def test_concurrent_allocations_never_share_a_number(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    # DynamoDB applies one UpdateItem atomically; moto does not (two threads can read the same counter).
    # Give moto that one guarantee, and nothing more: code that read the counter and wrote it back in
    # two calls would still hand out duplicates here.
    from moto.dynamodb.responses import DynamoHandler

    lock = threading.Lock()
    unlocked = DynamoHandler.update_item

    def atomic_update_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return unlocked(self, *args, **kwargs)

    monkeypatch.setattr(DynamoHandler, "update_item", atomic_update_item)
    reg = registry(aws)

    with ThreadPoolExecutor(max_workers=8) as pool:
        numbers = list(pool.map(lambda _: reg.allocate_version(MODEL), range(40)))

    assert sorted(numbers) == list(range(1, 41))


def test_a_promotion_conditioned_on_a_champion_that_moved_writes_nothing(aws: Aws) -> None:
    reg = registry(aws)
    for run_id in ("a", "b"):
        start(reg, run_id)
        register_model.handler(register_event(run_id, compared=None), None)  # both compared with none
    promote(reg, 1, None)  # a's run succeeded first
    before = aws.table_items()

    moved = promote(reg, 2, None)

    assert moved is False
    assert reg.get_champion(MODEL).version == 1
    assert sorted(aws.table_items(), key=lambda i: (i["pk"], i["sk"])) == sorted(
        before, key=lambda i: (i["pk"], i["sk"])
    )
    assert reg.get_version(MODEL, 2)["promotion"] == "CANDIDATE"


def test_registering_again_for_the_same_run_returns_the_same_version(aws: Aws) -> None:
    reg = registry(aws)
    start(reg, "r1")
    first = register_model.handler(register_event("r1"), None)

    again = register_model.handler(register_event("r1"), None)

    assert again == first
    assert reg.allocate_version(MODEL) == 2  # no number was consumed by the retry


def test_list_and_describe_mark_the_champion(aws: Aws) -> None:
    reg = registry(aws)
    for run_id, decision, compared in (
        ("r1", "approved", None),
        ("r2", "rejected", 1),
        ("r3", "approved", 1),
    ):
        start(reg, run_id)
        version = register_model.handler(register_event(run_id, decision, compared), None)["version"]
        if decision == "approved":
            promote(reg, version, compared)

    listed = reg.list_versions()

    assert [(v["version"], v["status"], v["isChampion"], v["promotion"]) for v in listed] == [
        (3, "APPROVED", True, "PROMOTED"),
        (2, "REJECTED", False, "NOT_PROMOTED"),
        (1, "APPROVED", False, "PROMOTED"),  # champion until v3 replaced it
    ]
    assert listed[1]["promotionReason"] == "rejected by the gate"
    assert reg.describe_version(MODEL, 1)["isChampion"] is False
    assert reg.describe_version(MODEL, 3)["metrics"]["model"]["roc_auc"] == pytest.approx(0.6712)
    assert reg.describe_version(MODEL, 9) is None

"""The registry's DynamoDB requests, pinned exactly against a recording client (issue 14).

Written for the mutation run (docs/mutation.md): test_registry.py checks the registry's behaviour on
moto, where a request that names a wrong attribute, drops a condition or writes a changed word can
still leave the table looking right for the case tested. The table's key design and the conditions
that keep concurrent runs apart live only in these requests, so each test here says what one
operation sends (Key, ConditionExpression, UpdateExpression, ExpressionAttributeValues) and what it
makes of the answers, including the refusals: a duplicate claim, a promotion that lost its race, a
rollback that found a newer champion. Time is frozen so every timestamp in a request is exact.
"""

from __future__ import annotations

import copy
import re
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer

import registry
from errors import DuplicateRun, RunNotFound
from registry import Champion, Registration, Registry, from_dynamo, public_version, to_dynamo

TABLE = "registry"
MODEL = "m"
NOW = "2026-12-01T10:00:00+00:00"
EPOCH = 1_800_000_000.9  # time.time() while a test runs; the claim keeps whole seconds


def S(value: str) -> dict[str, str]:
    return {"S": value}


def N(value: int | str) -> dict[str, str]:
    return {"N": str(value)}


def M(**values: Any) -> dict[str, Any]:
    return {"M": values}


def wire(item: dict[str, Any]) -> dict[str, Any]:
    """An item as DynamoDB returns it (the test writes numbers as int or Decimal)."""
    serializer = TypeSerializer()
    return {k: serializer.serialize(v) for k, v in item.items()}


class _ClientError(Exception):
    def __init__(self, response: dict[str, Any] | None = None) -> None:
        super().__init__("the request was refused")
        self.response = response or {}


class ConditionalCheckFailed(_ClientError):
    pass


class TransactionCanceled(_ClientError):
    pass


def cancelled(*codes: str) -> TransactionCanceled:
    return TransactionCanceled({"CancellationReasons": [{"Code": code} for code in codes]})


class Dynamo:
    """A recording DynamoDB client: every request in order; GetItem served from `items`; UpdateItem
    answers and Scan pages scripted; `failures` raises, per operation, the next queued error (None: that
    call succeeds)."""

    class exceptions:  # the boto3 client attribute it stands in for
        ConditionalCheckFailedException = ConditionalCheckFailed
        TransactionCanceledException = TransactionCanceled

    def __init__(
        self,
        items: list[dict[str, Any]] = (),  # type: ignore[assignment]
        *,
        updated: list[dict[str, Any]] | None = None,
        pages: list[dict[str, Any]] | None = None,
        failures: dict[str, list[Exception | None]] | None = None,
    ) -> None:
        self.items = {(item["pk"], item["sk"]): item for item in items}
        self.updated = list(updated or [])
        self.pages = list(pages or [])
        self.failures = {method: list(errors) for method, errors in (failures or {}).items()}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def _record(self, method: str, kwargs: dict[str, Any]) -> None:
        self.calls.append((method, copy.deepcopy(kwargs)))
        queued = self.failures.get(method)
        if queued:
            error = queued.pop(0)
            if error is not None:
                raise error

    def get_item(self, **kwargs: Any) -> dict[str, Any]:
        self._record("get_item", kwargs)
        item = self.items.get((kwargs["Key"]["pk"]["S"], kwargs["Key"]["sk"]["S"]))
        return {"Item": wire(item)} if item else {}

    def put_item(self, **kwargs: Any) -> dict[str, Any]:
        self._record("put_item", kwargs)
        return {}

    def update_item(self, **kwargs: Any) -> dict[str, Any]:
        self._record("update_item", kwargs)
        return self.updated.pop(0) if self.updated else {}

    def transact_write_items(self, **kwargs: Any) -> dict[str, Any]:
        self._record("transact_write_items", kwargs)
        return {}

    def scan(self, **kwargs: Any) -> dict[str, Any]:
        self._record("scan", kwargs)
        return self.pages.pop(0)

    def writes(self) -> list[tuple[str, dict[str, Any]]]:
        """The requests other than reads (each read is pinned once, in the GetItem test)."""
        return [call for call in self.calls if call[0] != "get_item"]

    def read_keys(self) -> list[tuple[str, str]]:
        return [
            (kw["Key"]["pk"]["S"], kw["Key"]["sk"]["S"]) for method, kw in self.calls if method == "get_item"
        ]


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_now", lambda: NOW)
    monkeypatch.setattr(registry, "time", SimpleNamespace(time=lambda: EPOCH))


def version_key(version: int) -> dict[str, Any]:
    return {"pk": S(f"MODEL#{MODEL}"), "sk": S(f"VERSION#{version:06d}")}


META_KEY = {"pk": S(f"MODEL#{MODEL}"), "sk": S("META")}


def run_key(run_id: str = "r1") -> dict[str, Any]:
    return {"pk": S(f"RUN#{run_id}"), "sk": S("RUN")}


def claim_key(key: str = "k1") -> dict[str, Any]:
    return {"pk": S(f"IDEMPOTENCY#{key}"), "sk": S("IDEMPOTENCY")}


def meta(**attributes: Any) -> dict[str, Any]:
    return {"pk": f"MODEL#{MODEL}", "sk": "META", "model_name": MODEL, "latest_version": 9, **attributes}


def version(number: int, **attributes: Any) -> dict[str, Any]:
    return {
        "pk": f"MODEL#{MODEL}",
        "sk": f"VERSION#{number:06d}",
        "model_name": MODEL,
        "version": number,
        **attributes,
    }


def run(run_id: str = "r1", **attributes: Any) -> dict[str, Any]:
    return {"pk": f"RUN#{run_id}", "sk": "RUN", "run_id": run_id, "model_name": MODEL, **attributes}


def _set_status(key: dict[str, Any], status: str) -> tuple[str, dict[str, Any]]:
    """The run-status update of an item that must exist (a version's, or a claim's)."""
    return (
        "update_item",
        {
            "TableName": TABLE,
            "Key": key,
            "UpdateExpression": "SET run_status = :s",
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeValues": {":s": S(status)},
        },
    )


def set_run_status(number: int, status: str) -> tuple[str, dict[str, Any]]:
    return _set_status(version_key(number), status)


def set_claim_status(key: str, status: str) -> tuple[str, dict[str, Any]]:
    return _set_status(claim_key(key), status)


def decline_request(number: int, reason: str) -> tuple[str, dict[str, Any]]:
    return (
        "update_item",
        {
            "TableName": TABLE,
            "Key": version_key(number),
            "UpdateExpression": "SET promotion = :not, promotion_reason = :reason",
            "ConditionExpression": "promotion = :candidate",
            "ExpressionAttributeValues": {
                ":not": S("NOT_PROMOTED"),
                ":candidate": S("CANDIDATE"),
                ":reason": S(reason),
            },
        },
    )


# ---- values in and out of DynamoDB ---------------------------------------------------------------


def test_floats_become_decimals_through_their_text_and_containers_become_lists_and_string_keyed_maps() -> (
    None
):
    assert to_dynamo({1: 0.1, "t": (2.5, True), "n": None, "s": "x"}) == {
        "1": Decimal("0.1"),
        "t": [Decimal("2.5"), True],
        "n": None,
        "s": "x",
    }
    assert type(to_dynamo(0.1)) is Decimal and to_dynamo(0.1) == Decimal("0.1")  # not 0.1000000000000000055
    assert to_dynamo(True) is True and to_dynamo(None) is None and to_dynamo(3) == 3


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_numbers_dynamodb_cannot_hold_are_refused_by_name(value: float) -> None:
    with pytest.raises(ValueError, match=rf"^{value} cannot be stored in DynamoDB$"):
        to_dynamo(value)


def test_decimals_come_back_as_int_when_whole_and_float_otherwise_inside_any_container() -> None:
    plain = from_dynamo({"a": Decimal("2"), "b": Decimal("2.5"), "c": {Decimal("1")}, "d": (Decimal("3.0"),)})

    assert plain == {"a": 2, "b": 2.5, "c": [1], "d": [3]}
    assert type(plain["a"]) is int and type(plain["b"]) is float and type(plain["d"][0]) is int
    assert from_dynamo("x") == "x"


def test_timestamps_are_utc_to_the_second(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the real clock, not the frozen one

    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", registry._now())


def test_champion_and_registration_have_the_workflows_field_names() -> None:
    assert Champion(3, "s3://b/m.tar.gz", {"roc_auc": 0.7}).as_json() == {
        "version": 3,
        "artifactUri": "s3://b/m.tar.gz",
        "metrics": {"roc_auc": 0.7},
    }
    assert Registration(MODEL, 4, "APPROVED", False).as_json() == {
        "modelName": MODEL,
        "version": 4,
        "status": "APPROVED",
        "isChampion": False,
    }


# ---- reads and the idempotency claim -------------------------------------------------------------


def test_a_read_is_consistent_and_an_absent_item_is_none() -> None:
    table = Dynamo([run("r1", model_version=Decimal("2"))])
    reg = Registry(TABLE, table)

    assert reg.get_run("r1") == run("r1", model_version=2)
    assert reg.get_run("r2") is None
    assert reg.get_idempotency_claim("k1") is None
    assert reg.get_version(MODEL, 12) is None
    assert table.calls == [
        ("get_item", {"TableName": TABLE, "Key": run_key("r1"), "ConsistentRead": True}),
        ("get_item", {"TableName": TABLE, "Key": run_key("r2"), "ConsistentRead": True}),
        ("get_item", {"TableName": TABLE, "Key": claim_key("k1"), "ConsistentRead": True}),
        ("get_item", {"TableName": TABLE, "Key": version_key(12), "ConsistentRead": True}),
    ]
    assert reg.table_name == TABLE


def test_a_claim_is_a_put_that_wins_over_nothing_a_failed_run_or_a_stale_running_one() -> None:
    table = Dynamo()

    Registry(TABLE, table).claim_idempotency_key("k1", "r1", "arn:r1", running_for_at_most=600)

    assert table.calls == [
        (
            "put_item",
            {
                "TableName": TABLE,
                "Item": {
                    **claim_key("k1"),
                    "run_id": S("r1"),
                    "execution_arn": S("arn:r1"),
                    "run_status": S("RUNNING"),
                    "stale_after": N(1_800_000_600),
                    "created_at": S(NOW),
                },
                "ConditionExpression": (
                    "attribute_not_exists(pk) OR run_status = :failed "
                    "OR (run_status = :running AND stale_after < :now)"
                ),
                "ExpressionAttributeValues": {
                    ":failed": S("FAILED"),
                    ":running": S("RUNNING"),
                    ":now": N(1_800_000_000),
                },
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            },
        )
    ]


def test_a_refused_claim_names_the_run_that_holds_the_key() -> None:
    holder = wire({"run_id": "r0", "run_status": "SUCCEEDED"})
    table = Dynamo(failures={"put_item": [ConditionalCheckFailed({"Item": holder})]})

    with pytest.raises(DuplicateRun) as refused:
        Registry(TABLE, table).claim_idempotency_key("k1", "r1", "arn:r1", running_for_at_most=600)

    assert str(refused.value) == (
        "idempotency key 'k1' is already claimed by run r0 (SUCCEEDED); nothing was started"
    )
    assert refused.value.__cause__ is None and refused.value.__suppress_context__


def test_a_refused_claim_without_the_old_item_says_it_does_not_know_the_holder() -> None:
    table = Dynamo(failures={"put_item": [ConditionalCheckFailed()]})

    with pytest.raises(
        DuplicateRun, match=r"^idempotency key 'k1' is already claimed by run \? \(\?\); nothing"
    ):
        Registry(TABLE, table).claim_idempotency_key("k1", "r1", "arn:r1", running_for_at_most=600)


# ---- runs ----------------------------------------------------------------------------------------


def test_a_run_record_is_created_once_running_at_prepare_run() -> None:
    table = Dynamo()

    Registry(TABLE, table).start_run(
        run_id="r1",
        execution_arn="arn:r1",
        model_name=MODEL,
        idempotency_key="k1",
        dataset_uri="s3://b/d.csv",
    )

    assert table.calls == [
        (
            "put_item",
            {
                "TableName": TABLE,
                "Item": {
                    **run_key("r1"),
                    "run_id": S("r1"),
                    "status": S("RUNNING"),
                    "stage": S("PrepareRun"),
                    "model_name": S(MODEL),
                    "idempotency_key": S("k1"),
                    "execution_arn": S("arn:r1"),
                    "dataset_uri": S("s3://b/d.csv"),
                    "started_at": S(NOW),
                    "updated_at": S(NOW),
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            },
        )
    ]


def succeed(reg: Registry, **overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "decision": "promoted",
        "model_version": 2,
        "scored_version": 2,
        "predictions_uri": "s3://b/p.csv",
        "drift_uri": "s3://b/drift.json",
    }
    return reg.record_run_succeeded("r1", **{**arguments, **overrides})


def succeeded_request(scored: dict[str, str]) -> tuple[str, dict[str, Any]]:
    return (
        "update_item",
        {
            "TableName": TABLE,
            "Key": run_key("r1"),
            "UpdateExpression": (
                "SET #s = :s, stage = :stage, decision = :d, scored_version = :sv, "
                "predictions_uri = :p, drift_uri = :dr, finished_at = :now, updated_at = :now"
            ),
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {
                ":s": S("SUCCEEDED"),
                ":stage": S("Done"),
                ":d": S("promoted"),
                ":sv": scored,
                ":p": S("s3://b/p.csv"),
                ":dr": S("s3://b/drift.json"),
                ":now": S(NOW),
            },
        },
    )


def test_a_succeeded_run_marks_the_run_its_version_and_its_claim() -> None:
    table = Dynamo([run("r1", status="RUNNING", idempotency_key="k1", model_version=Decimal("1"))])

    result = succeed(Registry(TABLE, table))

    assert table.writes() == [
        succeeded_request(N(2)),
        set_run_status(2, "SUCCEEDED"),
        set_claim_status("k1", "SUCCEEDED"),
    ]
    assert result == run("r1", status="SUCCEEDED", idempotency_key="k1", model_version=1)


def test_a_succeeded_run_without_a_version_argument_marks_the_one_it_registered() -> None:
    table = Dynamo([run("r1", idempotency_key="k1", model_version=Decimal("4"))])

    succeed(Registry(TABLE, table), model_version=None, scored_version=None)

    assert table.writes() == [
        succeeded_request(S("none")),
        set_run_status(4, "SUCCEEDED"),
        set_claim_status("k1", "SUCCEEDED"),
    ]


def test_a_succeeded_run_that_registered_nothing_and_claimed_nothing_marks_only_the_run() -> None:
    table = Dynamo([run("r1")])

    assert succeed(Registry(TABLE, table), model_version=None, scored_version=3)["status"] == "SUCCEEDED"
    assert table.writes() == [succeeded_request(N(3))]


def test_an_outcome_for_an_unknown_run_is_refused_before_writing() -> None:
    table = Dynamo()

    with pytest.raises(RunNotFound, match=r"^run r1 has no registry record$"):
        succeed(Registry(TABLE, table))
    assert table.writes() == []


def failed_request() -> tuple[str, dict[str, Any]]:
    return (
        "update_item",
        {
            "TableName": TABLE,
            "Key": run_key("r1"),
            "UpdateExpression": (
                "SET #s = :s, stage = :stage, #e = :e, cause = :c, finished_at = :now, updated_at = :now, "
                "run_id = :r, execution_arn = if_not_exists(execution_arn, :arn), "
                "started_at = if_not_exists(started_at, :now)"
            ),
            "ExpressionAttributeNames": {"#s": "status", "#e": "error"},
            "ExpressionAttributeValues": {
                ":s": S("FAILED"),
                ":stage": S("Score"),
                ":e": S("States.Timeout"),
                ":c": S("too slow"),
                ":now": S(NOW),
                ":r": S("r1"),
                ":arn": S("arn:r1"),
            },
            "ReturnValues": "ALL_NEW",
        },
    )


def fail(reg: Registry) -> dict[str, Any]:
    return reg.record_run_failed(
        "r1", execution_arn="arn:r1", stage="Score", error="States.Timeout", cause="too slow"
    )


def test_a_run_failing_before_it_had_a_record_gets_one_and_nothing_else_is_written() -> None:
    table = Dynamo()

    assert fail(Registry(TABLE, table)) == {}
    assert table.calls == [failed_request()]


def test_a_failed_run_declines_its_candidate_and_releases_its_claim() -> None:
    after = run("r1", status="FAILED", idempotency_key="k1", model_version=Decimal("3"))
    table = Dynamo([version(3, promotion="CANDIDATE")], updated=[{"Attributes": wire(after)}])

    result = fail(Registry(TABLE, table))

    reason = "not promoted: its run failed at Score: States.Timeout"
    assert table.writes() == [
        failed_request(),
        set_run_status(3, "FAILED"),
        decline_request(3, reason),
        set_claim_status("k1", "FAILED"),
    ]
    assert result == {
        **run("r1", status="FAILED", idempotency_key="k1", model_version=3),
        "promotion_reason": reason,
    }


@pytest.mark.parametrize(
    "after",
    [
        {"pk": "RUN#r1", "sk": "RUN", "model_version": Decimal("3"), "idempotency_key": "k1"},
        run("r1", idempotency_key="k1"),
    ],
    ids=["no model name", "no version"],
)
def test_a_failed_run_without_both_a_model_and_a_version_touches_no_version(after: dict[str, Any]) -> None:
    table = Dynamo(updated=[{"Attributes": wire(after)}])

    result = fail(Registry(TABLE, table))

    assert table.calls == [failed_request(), set_claim_status("k1", "FAILED")]
    assert "promotion_reason" not in result


def test_releasing_a_claim_that_was_never_made_is_not_an_error() -> None:
    table = Dynamo(
        [run("r1", idempotency_key="k1")], failures={"update_item": [None, ConditionalCheckFailed()]}
    )

    succeed(Registry(TABLE, table), model_version=None)

    assert table.writes() == [succeeded_request(N(2)), set_claim_status("k1", "SUCCEEDED")]


def test_a_run_with_an_empty_idempotency_key_releases_nothing() -> None:
    table = Dynamo([run("r1", idempotency_key="")])

    succeed(Registry(TABLE, table), model_version=None)

    assert table.writes() == [succeeded_request(N(2))]


# ---- the champion pointer as a run sees it ---------------------------------------------------------


def test_the_champion_is_read_from_the_meta_item() -> None:
    table = Dynamo([meta(champion_version=Decimal("2"), champion_artifact_uri="s3://b/v2.tar.gz")])

    assert Registry(TABLE, table).get_champion(MODEL) == Champion(2, "s3://b/v2.tar.gz", {})
    assert table.read_keys() == [(f"MODEL#{MODEL}", "META")]
    scored = meta(champion_version=2, champion_artifact_uri="s3://b/v2.tar.gz", champion_metrics={"auc": 1})
    assert Registry(TABLE, Dynamo([scored])).get_champion(MODEL) == Champion(
        2, "s3://b/v2.tar.gz", {"auc": 1}
    )


@pytest.mark.parametrize("items", [[], [meta()]], ids=["no meta", "no champion yet"])
def test_a_model_without_a_champion_version_has_no_champion(items: list[dict[str, Any]]) -> None:
    assert Registry(TABLE, Dynamo(items)).get_champion(MODEL) is None


# ---- registering a version -----------------------------------------------------------------------


def register(reg: Registry, *, approved: bool = True, **extra: Any) -> Registration:
    return reg.register_version(
        run_id="r1",
        model_name=MODEL,
        approved=approved,
        compared_champion_version=1,
        metrics={"roc_auc": 0.7},
        artifact_uri="s3://b/model.tar.gz",
        training_job="job-1",
        dataset_uri="s3://b/d.csv",
        algorithm="HistGradientBoosting",
        decision_reasons=["meets the minimum"],
        **extra,
    )


ALLOCATE = (
    "update_item",
    {
        "TableName": TABLE,
        "Key": META_KEY,
        "UpdateExpression": "ADD latest_version :one SET model_name = :name",
        "ExpressionAttributeValues": {":one": N(1), ":name": S(MODEL)},
        "ReturnValues": "UPDATED_NEW",
    },
)


def registration_request(item: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return (
        "transact_write_items",
        {
            "TransactItems": [
                {
                    "Put": {
                        "TableName": TABLE,
                        "Item": item,
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": run_key("r1"),
                        "UpdateExpression": "SET model_version = :v, stage = :stage, updated_at = :now",
                        "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeValues": {
                            ":v": N(5),
                            ":stage": S("RegisterModel"),
                            ":now": S(NOW),
                        },
                    }
                },
            ]
        },
    )


def version_item(**overrides: Any) -> dict[str, Any]:
    return {
        **version_key(5),
        "model_name": S(MODEL),
        "version": N(5),
        "status": S("APPROVED"),
        "run_status": S("RUNNING"),
        "promotion": S("CANDIDATE"),
        "promotion_reason": S("approved by the gate; becomes champion when its run succeeds"),
        "run_id": S("r1"),
        "compared_champion_version": N(1),
        "metrics": M(roc_auc=N("0.7")),
        "artifact_uri": S("s3://b/model.tar.gz"),
        "training_job": S("job-1"),
        "dataset_uri": S("s3://b/d.csv"),
        "algorithm": S("HistGradientBoosting"),
        "decision_reasons": {"L": [S("meets the minimum")]},
        "created_at": S(NOW),
        **overrides,
    }


def test_an_approved_version_is_allocated_and_written_with_its_runs_pointer_in_one_transaction() -> None:
    table = Dynamo([run("r1")], updated=[{"Attributes": {"latest_version": N(5)}}])

    registration = register(Registry(TABLE, table), history_uri="s3://b/h.csv", history_sha256="ab")

    assert registration == Registration(MODEL, 5, "APPROVED", False)
    assert table.read_keys() == [("RUN#r1", "RUN")]
    assert table.writes() == [
        ALLOCATE,
        registration_request(version_item(history_uri=S("s3://b/h.csv"), history_sha256=S("ab"))),
    ]


def test_a_rejected_version_is_not_promoted_from_the_start_and_a_missing_history_is_left_out() -> None:
    table = Dynamo(updated=[{"Attributes": {"latest_version": N(5)}}])  # no run record: moto would refuse

    registration = register(Registry(TABLE, table), approved=False)

    assert registration == Registration(MODEL, 5, "REJECTED", False)
    assert table.writes() == [
        ALLOCATE,
        registration_request(
            version_item(
                status=S("REJECTED"), promotion=S("NOT_PROMOTED"), promotion_reason=S("rejected by the gate")
            )
        ),
    ]


def test_a_retried_registration_returns_the_runs_version_without_writing() -> None:
    table = Dynamo([run("r1", model_version=Decimal("4")), version(4, status="REJECTED")])

    assert register(Registry(TABLE, table)) == Registration(MODEL, 4, "REJECTED", False)
    assert table.writes() == []
    assert table.read_keys() == [("RUN#r1", "RUN"), (f"MODEL#{MODEL}", "VERSION#000004")]


def test_a_retried_registration_whose_version_item_is_gone_reports_an_unknown_status() -> None:
    table = Dynamo([run("r1", model_version=Decimal("4"))])

    assert register(Registry(TABLE, table)) == Registration(MODEL, 4, "?", False)


def test_a_version_number_comes_from_the_atomic_counter() -> None:
    table = Dynamo(updated=[{"Attributes": {"latest_version": N(12)}}])

    assert Registry(TABLE, table).allocate_version(MODEL) == 12
    assert table.calls == [ALLOCATE]


def test_a_report_location_is_written_once_per_version() -> None:
    table = Dynamo()

    Registry(TABLE, table).record_report(MODEL, 3, "s3://b/reports/m/v3/")

    assert table.calls == [
        (
            "update_item",
            {
                "TableName": TABLE,
                "Key": version_key(3),
                "UpdateExpression": "SET report_uri = :uri",
                "ConditionExpression": (
                    "attribute_exists(pk) AND (attribute_not_exists(report_uri) OR report_uri = :uri)"
                ),
                "ExpressionAttributeValues": {":uri": S("s3://b/reports/m/v3/")},
            },
        )
    ]


# ---- promote ---------------------------------------------------------------------------------------


def promotion_request(
    condition: str, expected: dict[str, Any], replaced: dict[str, Any], metrics: Any
) -> Any:
    return (
        "transact_write_items",
        {
            "TransactItems": [
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": META_KEY,
                        "UpdateExpression": (
                            "SET champion_version = :v, champion_artifact_uri = :a, "
                            "champion_metrics = :m, champion_since = :now"
                        ),
                        "ConditionExpression": condition,
                        "ExpressionAttributeValues": {
                            ":v": N(5),
                            ":a": S("s3://b/v5.tar.gz"),
                            ":m": metrics,
                            ":now": S(NOW),
                            **expected,
                        },
                    }
                },
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": version_key(5),
                        "UpdateExpression": (
                            "SET promotion = :promoted, promotion_reason = :reason, promoted_at = :now, "
                            "replaced_champion = :replaced"
                        ),
                        "ConditionExpression": "promotion = :candidate",
                        "ExpressionAttributeValues": {
                            ":promoted": S("PROMOTED"),
                            ":candidate": S("CANDIDATE"),
                            ":reason": S("its run succeeded"),
                            ":now": S(NOW),
                            ":replaced": replaced,
                        },
                    }
                },
            ]
        },
    )


def promote(reg: Registry, expected: int | None) -> bool:
    return reg.promote(MODEL, 5, expected_champion=expected, reason="its run succeeded")


CANDIDATE = version(
    5, promotion="CANDIDATE", artifact_uri="s3://b/v5.tar.gz", metrics={"roc_auc": Decimal("0.7")}
)


def test_a_first_champion_is_promoted_only_while_there_is_none_and_replaces_nothing() -> None:
    table = Dynamo([meta(), CANDIDATE])

    assert promote(Registry(TABLE, table), None) is True
    assert table.read_keys() == [(f"MODEL#{MODEL}", "META"), (f"MODEL#{MODEL}", "VERSION#000005")]
    assert table.writes() == [
        promotion_request("attribute_not_exists(champion_version)", {}, M(), M(roc_auc=N("0.7")))
    ]


def test_a_champion_is_replaced_only_while_it_is_the_expected_one_and_what_it_was_is_kept() -> None:
    table = Dynamo(
        [
            meta(
                champion_version=Decimal("4"), champion_artifact_uri="s3://b/v4.tar.gz", champion_since="then"
            ),
            version(5, promotion="CANDIDATE", artifact_uri="s3://b/v5.tar.gz"),  # no metrics
        ]
    )

    assert promote(Registry(TABLE, table), 4) is True
    assert table.writes() == [
        promotion_request(
            "champion_version = :expected",
            {":expected": N(4)},
            M(champion_version=N(4), champion_artifact_uri=S("s3://b/v4.tar.gz"), champion_since=S("then")),
            M(),
        )
    ]


def test_promoting_the_champion_again_writes_nothing() -> None:
    table = Dynamo([meta(champion_version=Decimal("5"))])

    assert promote(Registry(TABLE, table), 4) is True
    assert table.calls == [("get_item", {"TableName": TABLE, "Key": META_KEY, "ConsistentRead": True})]


@pytest.mark.parametrize(
    ("items", "expected"),
    [([meta(champion_version=Decimal("3"))], 4), ([], 4), ([meta(champion_version=Decimal("3"))], None)],
    ids=["another champion", "none where one was expected", "one where none was expected"],
)
def test_a_champion_other_than_the_expected_one_is_not_replaced(
    items: list[dict[str, Any]], expected: int | None
) -> None:
    table = Dynamo([*items, CANDIDATE])

    assert promote(Registry(TABLE, table), expected) is False
    assert table.writes() == []
    assert table.read_keys() == [(f"MODEL#{MODEL}", "META")]


def test_promoting_a_version_that_does_not_exist_is_an_error() -> None:
    table = Dynamo([meta()])

    with pytest.raises(ValueError, match=rf"^{MODEL} has no version 5 to promote$"):
        promote(Registry(TABLE, table), None)
    assert table.writes() == []


def test_a_promotion_whose_champion_moved_before_the_write_is_lost_not_an_error() -> None:
    table = Dynamo(
        [meta(), CANDIDATE], failures={"transact_write_items": [cancelled("ConditionalCheckFailed", "None")]}
    )

    assert promote(Registry(TABLE, table), None) is False


@pytest.mark.parametrize(
    "refusal",
    [cancelled("None", "ConditionalCheckFailed"), cancelled(), TransactionCanceled()],
    ids=["the version was no candidate", "no reasons", "no reasons listed"],
)
def test_a_cancelled_promotion_for_any_other_reason_is_raised(refusal: TransactionCanceled) -> None:
    table = Dynamo([meta(), CANDIDATE], failures={"transact_write_items": [refusal]})

    with pytest.raises(TransactionCanceled) as raised:
        promote(Registry(TABLE, table), None)
    assert raised.value is refusal


# ---- decline and the withdrawal of a failed run's version --------------------------------------------


def test_declining_asks_for_a_candidate_and_a_version_that_is_none_any_more_is_left_as_is() -> None:
    table = Dynamo(failures={"update_item": [None, ConditionalCheckFailed()]})
    reg = Registry(TABLE, table)

    reg.decline(MODEL, 3, reason="outcompeted")
    reg.decline(MODEL, 3, reason="outcompeted")

    assert table.calls == [decline_request(3, "outcompeted")] * 2


def withdraw(table: Dynamo) -> str:
    return Registry(TABLE, table)._withdraw(MODEL, 5, why="its run failed at Notify: boom")


@pytest.mark.parametrize(
    ("items", "reason"),
    [
        (
            [version(5, promotion="NOT_PROMOTED", promotion_reason="rejected by the gate")],
            "rejected by the gate",
        ),
        ([version(5, promotion="NOT_PROMOTED")], "never a candidate"),
        ([], "never a candidate"),
    ],
    ids=["with its reason", "without a reason", "no version item"],
)
def test_a_version_that_was_never_champion_keeps_its_reason(items: list[dict[str, Any]], reason: str) -> None:
    table = Dynamo(items)

    assert withdraw(table) == reason
    assert table.writes() == []


def rollback_request(update: str, values: dict[str, Any], reason: str) -> tuple[str, dict[str, Any]]:
    return (
        "transact_write_items",
        {
            "TransactItems": [
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": META_KEY,
                        "UpdateExpression": update,
                        "ConditionExpression": "champion_version = :v",
                        "ExpressionAttributeValues": {":v": N(5), **values},
                    }
                },
                {
                    "Update": {
                        "TableName": TABLE,
                        "Key": version_key(5),
                        "UpdateExpression": "SET promotion = :not, promotion_reason = :reason",
                        "ExpressionAttributeValues": {":not": S("NOT_PROMOTED"), ":reason": S(reason)},
                    }
                },
            ]
        },
    )


REPLACED = {
    "champion_version": Decimal("4"),
    "champion_artifact_uri": "s3://b/v4.tar.gz",
    "champion_metrics": {"roc_auc": Decimal("0.65")},
    "champion_since": "then",
}


def test_a_promoted_version_whose_run_failed_puts_back_the_champion_it_replaced() -> None:
    table = Dynamo([version(5, promotion="PROMOTED", replaced_champion=REPLACED)])

    reason = withdraw(table)

    assert reason == "rolled back: its run failed at Notify: boom; the champion is v4 again"
    assert table.writes() == [
        rollback_request(
            "SET champion_version = :champion_version, champion_artifact_uri = :champion_artifact_uri, "
            "champion_metrics = :champion_metrics, champion_since = :champion_since",
            {
                ":champion_version": N(4),
                ":champion_artifact_uri": S("s3://b/v4.tar.gz"),
                ":champion_metrics": M(roc_auc=N("0.65")),
                ":champion_since": S("then"),
            },
            reason,
        )
    ]


def test_a_first_champion_whose_run_failed_leaves_no_champion() -> None:
    table = Dynamo([version(5, promotion="PROMOTED", replaced_champion={})])

    reason = withdraw(table)

    assert reason == "rolled back: its run failed at Notify: boom; the champion is no champion again"
    assert table.writes() == [
        rollback_request(
            "REMOVE champion_version, champion_artifact_uri, champion_metrics, champion_since", {}, reason
        )
    ]


@pytest.mark.parametrize(
    ("champion", "named"),
    [([meta(champion_version=Decimal("6"), champion_artifact_uri="s3://b/v6.tar.gz")], "v6"), ([], "v?")],
    ids=["a newer champion", "no champion to name"],
)
def test_a_rollback_that_finds_a_newer_champion_only_records_why(
    champion: list[dict[str, Any]], named: str
) -> None:
    table = Dynamo(
        [version(5, promotion="PROMOTED"), *champion],
        failures={"transact_write_items": [cancelled("ConditionalCheckFailed")]},
    )

    reason = withdraw(table)

    assert reason == (
        f"its run failed at Notify: boom; it had been champion, but {named} replaced it "
        "before the rollback, so the champion was left as is"
    )
    assert table.writes()[1:] == [
        (
            "update_item",
            {
                "TableName": TABLE,
                "Key": version_key(5),
                "UpdateExpression": "SET promotion = :not, promotion_reason = :reason",
                "ExpressionAttributeValues": {":not": S("NOT_PROMOTED"), ":reason": S(reason)},
            },
        )
    ]
    assert table.read_keys()[1:] == [(f"MODEL#{MODEL}", "META")]


# ---- listing and describing versions ---------------------------------------------------------------


SCAN = {
    "TableName": TABLE,
    "FilterExpression": "begins_with(pk, :model)",
    "ExpressionAttributeValues": {":model": S("MODEL#")},
}


def test_the_list_reads_every_page_and_marks_each_models_champion_newest_first() -> None:
    def item(name: str, sk: str, **attributes: Any) -> dict[str, Any]:
        return wire({"pk": f"MODEL#{name}", "sk": sk, "model_name": name, **attributes})

    pages = [
        {
            "Items": [
                item("b", "VERSION#000001", version=1),
                item("a", "META", champion_version=Decimal("1")),
                item("a", "VERSION#000001", version=1),
            ],
            "LastEvaluatedKey": {"pk": S("MODEL#a"), "sk": S("VERSION#000001")},
        },
        {"LastEvaluatedKey": {"pk": S("MODEL#b"), "sk": S("X")}},  # a page the filter emptied
        {
            "Items": [
                item("a", "VERSION#000002", version=2),
                item("b", "META"),
                item("b", "VERSION#000010", version=10),
                item("a", "ALIAS#prod", version=1),
            ]
        },
    ]
    table = Dynamo(pages=pages)

    versions = Registry(TABLE, table).list_versions()

    assert [(v["modelName"], v["version"], v["isChampion"]) for v in versions] == [
        ("a", 2, False),
        ("a", 1, True),
        ("b", 10, False),
        ("b", 1, False),
    ]
    assert table.calls == [
        ("scan", SCAN),
        ("scan", {**SCAN, "ExclusiveStartKey": {"pk": S("MODEL#a"), "sk": S("VERSION#000001")}}),
        ("scan", {**SCAN, "ExclusiveStartKey": {"pk": S("MODEL#b"), "sk": S("X")}}),
    ]


def test_describing_a_version_marks_it_champion_only_when_the_pointer_names_it() -> None:
    items = [version(5), version(6), meta(champion_version=Decimal("6"), champion_artifact_uri="s3://b/v6")]
    reg = Registry(TABLE, Dynamo(items))

    def shown(number: int, reg: Registry) -> tuple[Any, Any, Any]:
        described = reg.describe_version(MODEL, number) or {}
        return described["modelName"], described["version"], described["isChampion"]

    assert shown(5, reg) == (MODEL, 5, False)
    assert shown(6, reg) == (MODEL, 6, True)
    assert shown(5, Registry(TABLE, Dynamo([version(5)]))) == (MODEL, 5, False)  # no champion at all
    assert reg.describe_version(MODEL, 7) is None


def test_a_version_is_shown_with_every_field_under_its_api_name_and_without_table_keys() -> None:
    item = {
        "pk": "MODEL#m",
        "sk": "VERSION#000002",
        "model_name": "m",
        "version": 2,
        "status": "APPROVED",
        "run_status": "SUCCEEDED",
        "is_champion": 1,
        "promotion": "PROMOTED",
        "promotion_reason": "better",
        "metrics": {"roc_auc": 0.7},
        "artifact_uri": "s3://b/a",
        "report_uri": "s3://b/r/",
        "history_uri": "s3://b/h",
        "history_sha256": "ab",
        "training_job": "job",
        "run_id": "r2",
        "dataset_uri": "s3://b/d",
        "algorithm": "HGB",
        "decision_reasons": ["x"],
        "created_at": NOW,
    }

    assert public_version(item) == {
        "modelName": "m",
        "version": 2,
        "status": "APPROVED",
        "runStatus": "SUCCEEDED",
        "isChampion": True,
        "promotion": "PROMOTED",
        "promotionReason": "better",
        "metrics": {"roc_auc": 0.7},
        "artifactUri": "s3://b/a",
        "reportUri": "s3://b/r/",
        "historyUri": "s3://b/h",
        "historySha256": "ab",
        "trainingJob": "job",
        "runId": "r2",
        "datasetUri": "s3://b/d",
        "algorithm": "HGB",
        "decisionReasons": ["x"],
        "createdAt": NOW,
    }


def test_a_version_missing_its_optional_fields_shows_nulls_and_empty_collections() -> None:
    shown = public_version({})

    assert shown == {
        "modelName": None,
        "version": None,
        "status": None,
        "runStatus": None,
        "isChampion": False,
        "promotion": None,
        "promotionReason": None,
        "metrics": {},
        "artifactUri": None,
        "reportUri": None,
        "historyUri": None,
        "historySha256": None,
        "trainingJob": None,
        "runId": None,
        "datasetUri": None,
        "algorithm": None,
        "decisionReasons": [],
        "createdAt": None,
    }
    assert shown["isChampion"] is False

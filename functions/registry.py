"""The model registry: the only code that knows the DynamoDB table's key design.

One table, `pk` + `sk` (docs/architecture.md, "Model registry"):

    MODEL#<name>        META             latest_version (atomic counter), champion_* pointer
    MODEL#<name>        VERSION#000001   one trained version: status, promotion, metrics, artifact, run,
                                         report_uri (reports/<name>/v<N>/, once published)
    RUN#<runId>         RUN              one execution: status, stage, error, cause, model_version
    IDEMPOTENCY#<key>   IDEMPOTENCY      the run that claimed a key (first claim wins)

Numbers are stored as Decimal (DynamoDB rejects floats) and come back out as int/float, so callers only
ever see plain JSON numbers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from decision import APPROVED, REJECTED, version_status
from errors import DuplicateRun

RUN_RUNNING = "RUNNING"
RUN_SUCCEEDED = "SUCCEEDED"
RUN_FAILED = "FAILED"
VERSION_APPROVED = version_status(APPROVED)
VERSION_REJECTED = version_status(REJECTED)
# Whether a version is, was or will be champion (docs/architecture.md, "Model registry").
PROMOTION_CANDIDATE = "CANDIDATE"  # approved; becomes champion when its run succeeds
PROMOTION_PROMOTED = "PROMOTED"  # its run succeeded and moved the pointer to it
PROMOTION_NOT_PROMOTED = "NOT_PROMOTED"  # rejected, outcompeted, or its run failed (promotion_reason)
# The META attributes that make up the champion pointer (what a rollback restores).
CHAMPION_ATTRIBUTES = ("champion_version", "champion_artifact_uri", "champion_metrics", "champion_since")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def to_dynamo(value: Any) -> Any:
    """Plain JSON value -> what boto3's serializer accepts (floats become Decimal via str: exact)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{value} cannot be stored in DynamoDB")
        return Decimal(str(value))
    if isinstance(value, dict):
        return {str(k): to_dynamo(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_dynamo(v) for v in value]
    return value


def from_dynamo(value: Any) -> Any:
    """Deserialized DynamoDB value -> plain JSON value (Decimal becomes int when integral)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: from_dynamo(v) for k, v in value.items()}
    if isinstance(value, (list, set, tuple)):
        return [from_dynamo(v) for v in value]
    return value


def _model_pk(model_name: str) -> str:
    return f"MODEL#{model_name}"


def _version_sk(version: int) -> str:
    return f"VERSION#{version:06d}"


def _run_key(run_id: str) -> dict[str, str]:
    return {"pk": f"RUN#{run_id}", "sk": "RUN"}


def _idempotency_key(key: str) -> dict[str, str]:
    return {"pk": f"IDEMPOTENCY#{key}", "sk": "IDEMPOTENCY"}


def _meta_key(model_name: str) -> dict[str, str]:
    return {"pk": _model_pk(model_name), "sk": "META"}


@dataclass(frozen=True)
class Champion:
    """The version that currently scores, as a run sees it when it starts."""

    version: int
    artifact_uri: str
    metrics: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"version": self.version, "artifactUri": self.artifact_uri, "metrics": self.metrics}


@dataclass(frozen=True)
class Registration:
    """The outcome of registering a trained model.

    `is_champion` is always False: registering never moves the champion pointer (see `promote`); the
    field stays because the workflow's RegisterModel output carries it.
    """

    model_name: str
    version: int
    status: str
    is_champion: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "modelName": self.model_name,
            "version": self.version,
            "status": self.status,
            "isChampion": self.is_champion,
        }


def _version_item(
    model_name: str, version: int, *, approved: bool, created_at: str, **attributes: Any
) -> dict[str, Any]:
    """A new version item: gate status, a CANDIDATE (approved) or NOT_PROMOTED (rejected) promotion
    state, its run still RUNNING, and the run's attributes (metrics, artifact, job, dataset...)."""
    return {
        "pk": _model_pk(model_name),
        "sk": _version_sk(version),
        "model_name": model_name,
        "version": version,
        "status": VERSION_APPROVED if approved else VERSION_REJECTED,
        "run_status": RUN_RUNNING,
        "promotion": PROMOTION_CANDIDATE if approved else PROMOTION_NOT_PROMOTED,
        "promotion_reason": (
            "approved by the gate; becomes champion when its run succeeds"
            if approved
            else "rejected by the gate"
        ),
        **attributes,
        "created_at": created_at,
    }


class Registry:
    """Typed operations on the registry table; every write that must not race is conditional."""

    def __init__(self, table_name: str, client: Any) -> None:
        from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

        self.table_name = table_name
        self._client = client
        self._ser = TypeSerializer()
        self._de = TypeDeserializer()

    # -- (de)serialisation -------------------------------------------------------------------
    def _item(self, attributes: dict[str, Any]) -> dict[str, Any]:
        return {k: self._ser.serialize(to_dynamo(v)) for k, v in attributes.items() if v is not None}

    def _values(self, values: dict[str, Any]) -> dict[str, Any]:
        return {k: self._ser.serialize(to_dynamo(v)) for k, v in values.items()}

    def _plain(self, item: dict[str, Any] | None) -> dict[str, Any] | None:
        if not item:
            return None
        return from_dynamo({k: self._de.deserialize(v) for k, v in item.items()})

    def _get(self, key: dict[str, str]) -> dict[str, Any] | None:
        response = self._client.get_item(TableName=self.table_name, Key=self._item(key), ConsistentRead=True)
        return self._plain(response.get("Item"))

    # -- idempotency -------------------------------------------------------------------------
    def claim_idempotency_key(
        self, key: str, run_id: str, execution_arn: str, *, running_for_at_most: int
    ) -> None:
        """Claim `key` for `run_id`. Raise DuplicateRun when a running or succeeded run holds it.

        A key whose run FAILED may be claimed again, so fixing the cause and re-sending recovers. So may
        a key still marked RUNNING after `running_for_at_most` seconds: no execution of this workflow
        lives that long, so its execution was stopped or timed out without reaching RecordFailure.
        """
        now = int(time.time())
        try:
            self._client.put_item(
                TableName=self.table_name,
                Item=self._item(
                    {
                        **_idempotency_key(key),
                        "run_id": run_id,
                        "execution_arn": execution_arn,
                        "run_status": RUN_RUNNING,
                        "stale_after": now + running_for_at_most,
                        "created_at": _now(),
                    }
                ),
                ConditionExpression=(
                    "attribute_not_exists(pk) OR run_status = :failed "
                    "OR (run_status = :running AND stale_after < :now)"
                ),
                ExpressionAttributeValues=self._values(
                    {":failed": RUN_FAILED, ":running": RUN_RUNNING, ":now": now}
                ),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self._client.exceptions.ConditionalCheckFailedException as exc:
            old = self._plain(exc.response.get("Item")) or {}
            raise DuplicateRun(
                f"idempotency key {key!r} is already claimed by run {old.get('run_id', '?')} "
                f"({old.get('run_status', '?')}); nothing was started"
            ) from None

    def get_idempotency_claim(self, key: str) -> dict[str, Any] | None:
        return self._get(_idempotency_key(key))

    # -- runs --------------------------------------------------------------------------------
    def start_run(
        self,
        *,
        run_id: str,
        execution_arn: str,
        model_name: str,
        idempotency_key: str,
        dataset_uri: str,
    ) -> None:
        """Create the run record (RUNNING). A run id is an execution name: never reused."""
        now = _now()
        self._client.put_item(
            TableName=self.table_name,
            Item=self._item(
                {
                    **_run_key(run_id),
                    "run_id": run_id,
                    "status": RUN_RUNNING,
                    "stage": "PrepareRun",
                    "model_name": model_name,
                    "idempotency_key": idempotency_key,
                    "execution_arn": execution_arn,
                    "dataset_uri": dataset_uri,
                    "started_at": now,
                    "updated_at": now,
                }
            ),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        return self._get(_run_key(run_id))

    def record_run_succeeded(
        self,
        run_id: str,
        *,
        decision: str,
        model_version: int | None,
        scored_version: int | None,
        predictions_uri: str,
        drift_uri: str,
    ) -> dict[str, Any]:
        """Mark the run SUCCEEDED and its registered version's run_status SUCCEEDED."""
        run = self.get_run(run_id)
        if run is None:
            from errors import RunNotFound

            raise RunNotFound(f"run {run_id} has no registry record")
        now = _now()
        self._client.update_item(
            TableName=self.table_name,
            Key=self._item(_run_key(run_id)),
            UpdateExpression=(
                "SET #s = :s, stage = :stage, decision = :d, scored_version = :sv, "
                "predictions_uri = :p, drift_uri = :dr, finished_at = :now, updated_at = :now"
            ),
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=self._values(
                {
                    ":s": RUN_SUCCEEDED,
                    ":stage": "Done",
                    ":d": decision,
                    ":sv": scored_version if scored_version is not None else "none",
                    ":p": predictions_uri,
                    ":dr": drift_uri,
                    ":now": now,
                }
            ),
        )
        version = model_version if model_version is not None else run.get("model_version")
        if version is not None:
            self._set_version_run_status(run["model_name"], int(version), RUN_SUCCEEDED)
        self._set_claim_status(run.get("idempotency_key"), RUN_SUCCEEDED)
        return {**run, "status": RUN_SUCCEEDED}

    def record_run_failed(
        self, run_id: str, *, execution_arn: str, stage: str, error: str, cause: str
    ) -> dict[str, Any]:
        """Mark the run FAILED (creating its record if it failed before having one).

        When the run had registered a version, that version's run_status becomes FAILED and it is not
        champion afterwards (declined, or rolled back if it had been promoted: `_withdraw`); the
        returned run carries `promotion_reason`, what happened to it. The idempotency claim is
        released for a retry.
        """
        now = _now()
        response = self._client.update_item(
            TableName=self.table_name,
            Key=self._item(_run_key(run_id)),
            UpdateExpression=(
                "SET #s = :s, stage = :stage, #e = :e, cause = :c, finished_at = :now, updated_at = :now, "
                "run_id = :r, execution_arn = if_not_exists(execution_arn, :arn), "
                "started_at = if_not_exists(started_at, :now)"
            ),
            ExpressionAttributeNames={"#s": "status", "#e": "error"},
            ExpressionAttributeValues=self._values(
                {
                    ":s": RUN_FAILED,
                    ":stage": stage,
                    ":e": error,
                    ":c": cause,
                    ":now": now,
                    ":r": run_id,
                    ":arn": execution_arn,
                }
            ),
            ReturnValues="ALL_NEW",
        )
        run = self._plain(response.get("Attributes")) or {}
        if run.get("model_version") is not None and run.get("model_name"):
            self._set_version_run_status(run["model_name"], int(run["model_version"]), RUN_FAILED)
            run["promotion_reason"] = self._withdraw(
                run["model_name"], int(run["model_version"]), why=f"its run failed at {stage}: {error}"
            )
        self._set_claim_status(run.get("idempotency_key"), RUN_FAILED)
        return run

    def _set_version_run_status(self, model_name: str, version: int, status: str) -> None:
        self._client.update_item(
            TableName=self.table_name,
            Key=self._item({"pk": _model_pk(model_name), "sk": _version_sk(version)}),
            UpdateExpression="SET run_status = :s",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues=self._values({":s": status}),
        )

    def _set_claim_status(self, key: str | None, status: str) -> None:
        if not key:
            return
        # A run that failed before claiming has no claim: nothing to release then.
        with contextlib.suppress(self._client.exceptions.ConditionalCheckFailedException):
            self._client.update_item(
                TableName=self.table_name,
                Key=self._item(_idempotency_key(key)),
                UpdateExpression="SET run_status = :s",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues=self._values({":s": status}),
            )

    # -- models ------------------------------------------------------------------------------
    def get_champion(self, model_name: str) -> Champion | None:
        meta = self._get(_meta_key(model_name))
        if not meta or meta.get("champion_version") is None:
            return None
        return Champion(
            version=int(meta["champion_version"]),
            artifact_uri=meta["champion_artifact_uri"],
            metrics=meta.get("champion_metrics") or {},
        )

    def register_version(
        self,
        *,
        run_id: str,
        model_name: str,
        approved: bool,
        compared_champion_version: int | None,
        metrics: dict[str, Any],
        artifact_uri: str,
        training_job: str,
        dataset_uri: str,
        algorithm: str,
        decision_reasons: list[str],
        history_uri: str | None = None,
        history_sha256: str | None = None,
    ) -> Registration:
        """Allocate the next version atomically and write it; the champion pointer is not touched.

        An approved version is a CANDIDATE: it becomes champion only when its run succeeds
        (`promote`, from RecordOutcome), so a run that fails while scoring never leaves its model
        champion. A rejected one is NOT_PROMOTED from the start. Idempotent per run: a retried call
        returns the version this run already registered. The version item and the run's pointer to it
        are one transaction (a failed one leaves the allocated number unused: versions are monotonic,
        not contiguous).
        """
        run = self.get_run(run_id)
        if run and run.get("model_version") is not None:
            version = int(run["model_version"])
            existing = self.get_version(model_name, version) or {}
            return Registration(model_name, version, existing.get("status", "?"), False)
        version = self.allocate_version(model_name)
        status = VERSION_APPROVED if approved else VERSION_REJECTED
        now = _now()
        item = _version_item(
            model_name,
            version,
            approved=approved,
            created_at=now,
            run_id=run_id,
            compared_champion_version=compared_champion_version,
            metrics=metrics,
            artifact_uri=artifact_uri,
            training_job=training_job,
            dataset_uri=dataset_uri,
            algorithm=algorithm,
            decision_reasons=decision_reasons,
            # None (a model without patient history) is left out of the item (`_item`).
            history_uri=history_uri,
            history_sha256=history_sha256,
        )
        self._client.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": self._item(item),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": self._item(_run_key(run_id)),
                        "UpdateExpression": "SET model_version = :v, stage = :stage, updated_at = :now",
                        "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeValues": self._values(
                            {":v": version, ":stage": "RegisterModel", ":now": now}
                        ),
                    }
                },
            ]
        )
        return Registration(model_name, version, status, False)

    def record_report(self, model_name: str, version: int, report_uri: str) -> None:
        """File where the version's report was published (`report_uri`, an S3 prefix).

        Written once: conditioned on the version existing and holding no other report location, so a
        retried RegisterModel of the same run writes the same value again and nothing replaces the
        location of another version's report.
        """
        self._client.update_item(
            TableName=self.table_name,
            Key=self._item({"pk": _model_pk(model_name), "sk": _version_sk(version)}),
            UpdateExpression="SET report_uri = :uri",
            ConditionExpression=(
                "attribute_exists(pk) AND (attribute_not_exists(report_uri) OR report_uri = :uri)"
            ),
            ExpressionAttributeValues=self._values({":uri": report_uri}),
        )

    # -- the champion pointer ----------------------------------------------------------------
    def promote(self, model_name: str, version: int, *, expected_champion: int | None, reason: str) -> bool:
        """Make candidate `version` champion if the champion is still `expected_champion`.

        False (nothing written) when another version is champion now: the caller compares again. One
        transaction moves the pointer, conditioned on `expected_champion` so a champion promoted
        meanwhile is never overwritten, and marks the version PROMOTED, keeping the pointer it replaced
        so that a run failing after this (Notify) can put it back (`record_run_failed`). Idempotent: a
        version that already is champion returns True without writing.
        """
        meta = self._get(_meta_key(model_name)) or {}
        current = meta.get("champion_version")
        if current is not None and int(current) == version:
            return True
        if (None if current is None else int(current)) != expected_champion:
            return False
        item = self.get_version(model_name, version)
        if item is None:
            raise ValueError(f"{model_name} has no version {version} to promote")
        replaced = {a: meta[a] for a in CHAMPION_ATTRIBUTES if a in meta}
        if expected_champion is None:
            condition, expected_values = "attribute_not_exists(champion_version)", {}
        else:
            condition, expected_values = "champion_version = :expected", {":expected": expected_champion}
        now = _now()
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": self._item(_meta_key(model_name)),
                            "UpdateExpression": (
                                "SET champion_version = :v, champion_artifact_uri = :a, "
                                "champion_metrics = :m, champion_since = :now"
                            ),
                            "ConditionExpression": condition,
                            "ExpressionAttributeValues": self._values(
                                {
                                    ":v": version,
                                    ":a": item["artifact_uri"],
                                    ":m": item.get("metrics") or {},
                                    ":now": now,
                                    **expected_values,
                                }
                            ),
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": self._item({"pk": _model_pk(model_name), "sk": _version_sk(version)}),
                            "UpdateExpression": (
                                "SET promotion = :promoted, promotion_reason = :reason, promoted_at = :now, "
                                "replaced_champion = :replaced"
                            ),
                            "ConditionExpression": "promotion = :candidate",
                            "ExpressionAttributeValues": self._values(
                                {
                                    ":promoted": PROMOTION_PROMOTED,
                                    ":candidate": PROMOTION_CANDIDATE,
                                    ":reason": reason,
                                    ":now": now,
                                    ":replaced": replaced,
                                }
                            ),
                        }
                    },
                ]
            )
        except self._client.exceptions.TransactionCanceledException as exc:
            codes = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if codes and codes[0] == "ConditionalCheckFailed":
                return False  # the champion moved between the read above and the write
            raise
        return True

    def decline(self, model_name: str, version: int, *, reason: str) -> None:
        """Record that candidate `version` will not be champion, and why (idempotent)."""
        with contextlib.suppress(self._client.exceptions.ConditionalCheckFailedException):
            self._client.update_item(
                TableName=self.table_name,
                Key=self._item({"pk": _model_pk(model_name), "sk": _version_sk(version)}),
                UpdateExpression="SET promotion = :not, promotion_reason = :reason",
                ConditionExpression="promotion = :candidate",
                ExpressionAttributeValues=self._values(
                    {":not": PROMOTION_NOT_PROMOTED, ":candidate": PROMOTION_CANDIDATE, ":reason": reason}
                ),
            )

    def _withdraw(self, model_name: str, version: int, *, why: str) -> str:
        """A failed run's version is not champion afterwards; returns what was done, for the record.

        A candidate is declined. A version its run already promoted (the run failed after
        RecordOutcome) is rolled back: one transaction restores the pointer it replaced, conditioned on
        the version still being champion, so a newer champion promoted meanwhile is left alone.
        """
        item = self.get_version(model_name, version) or {}
        promotion = item.get("promotion")
        if promotion == PROMOTION_CANDIDATE:
            reason = f"not promoted: {why}"
            self.decline(model_name, version, reason=reason)
            return reason
        if promotion != PROMOTION_PROMOTED:
            return str(item.get("promotion_reason") or "never a candidate")
        restore = item.get("replaced_champion") or {}
        if restore:
            update = "SET " + ", ".join(f"{a} = :{a}" for a in restore)
            previous = f"v{restore['champion_version']}"
        else:
            update = "REMOVE " + ", ".join(CHAMPION_ATTRIBUTES)
            previous = "no champion"
        reason = f"rolled back: {why}; the champion is {previous} again"
        try:
            self._client.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": self._item(_meta_key(model_name)),
                            "UpdateExpression": update,
                            "ConditionExpression": "champion_version = :v",
                            "ExpressionAttributeValues": self._values(
                                {":v": version, **{f":{a}": v for a, v in restore.items()}}
                            ),
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": self._item({"pk": _model_pk(model_name), "sk": _version_sk(version)}),
                            "UpdateExpression": "SET promotion = :not, promotion_reason = :reason",
                            "ExpressionAttributeValues": self._values(
                                {":not": PROMOTION_NOT_PROMOTED, ":reason": reason}
                            ),
                        }
                    },
                ]
            )
        except self._client.exceptions.TransactionCanceledException:
            champion = self.get_champion(model_name)
            reason = (
                f"{why}; it had been champion, but v{champion.version if champion else '?'} replaced it "
                "before the rollback, so the champion was left as is"
            )
            self._client.update_item(
                TableName=self.table_name,
                Key=self._item({"pk": _model_pk(model_name), "sk": _version_sk(version)}),
                UpdateExpression="SET promotion = :not, promotion_reason = :reason",
                ExpressionAttributeValues=self._values({":not": PROMOTION_NOT_PROMOTED, ":reason": reason}),
            )
        return reason

    def allocate_version(self, model_name: str) -> int:
        """Next version number for `model_name`: atomic, so concurrent callers never share one."""
        response = self._client.update_item(
            TableName=self.table_name,
            Key=self._item(_meta_key(model_name)),
            UpdateExpression="ADD latest_version :one SET model_name = :name",
            ExpressionAttributeValues=self._values({":one": 1, ":name": model_name}),
            ReturnValues="UPDATED_NEW",
        )
        return int(self._de.deserialize(response["Attributes"]["latest_version"]))

    def get_version(self, model_name: str, version: int) -> dict[str, Any] | None:
        return self._get({"pk": _model_pk(model_name), "sk": _version_sk(version)})

    def list_versions(self) -> list[dict[str, Any]]:
        """Every registered version of every model, with `is_champion` set, newest first per model.

        A scan: the table holds one item per run and per version, a few thousand at most.
        """
        items: list[dict[str, Any]] = []
        champions: dict[str, int] = {}
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "FilterExpression": "begins_with(pk, :model)",
            "ExpressionAttributeValues": self._values({":model": "MODEL#"}),
        }
        while True:
            page = self._client.scan(**kwargs)
            for raw in page.get("Items", []):
                item = self._plain(raw) or {}
                if item.get("sk") == "META":
                    if item.get("champion_version") is not None:
                        champions[item["model_name"]] = int(item["champion_version"])
                elif str(item.get("sk", "")).startswith("VERSION#"):
                    items.append(item)
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        for item in items:
            item["is_champion"] = champions.get(item["model_name"]) == item["version"]
        items.sort(key=lambda i: (i["model_name"], -int(i["version"])))
        return [public_version(i) for i in items]

    def describe_version(self, model_name: str, version: int) -> dict[str, Any] | None:
        item = self.get_version(model_name, version)
        if item is None:
            return None
        champion = self.get_champion(model_name)
        item["is_champion"] = champion is not None and champion.version == version
        return public_version(item)


def public_version(item: dict[str, Any]) -> dict[str, Any]:
    """A version item as the API shows it (no table keys).

    `isChampion` is read from the META pointer at the time of the call; `promotion` and
    `promotionReason` say why the version is or is not champion (a PROMOTED version another has since
    replaced keeps PROMOTED: it was champion). `historyUri` / `historySha256` name the patient
    history the version scores with (the model.tar.gz member and its sha256; null for a model
    trained without history), so a reader can check which history a version's scores came from.
    """
    return {
        "modelName": item.get("model_name"),
        "version": item.get("version"),
        "status": item.get("status"),
        "runStatus": item.get("run_status"),
        "isChampion": bool(item.get("is_champion")),
        "promotion": item.get("promotion"),
        "promotionReason": item.get("promotion_reason"),
        "metrics": item.get("metrics") or {},
        "artifactUri": item.get("artifact_uri"),
        "reportUri": item.get("report_uri"),
        "historyUri": item.get("history_uri"),
        "historySha256": item.get("history_sha256"),
        "trainingJob": item.get("training_job"),
        "runId": item.get("run_id"),
        "datasetUri": item.get("dataset_uri"),
        "algorithm": item.get("algorithm"),
        "decisionReasons": item.get("decision_reasons") or [],
        "createdAt": item.get("created_at"),
    }

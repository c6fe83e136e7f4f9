"""At-least-once delivery and parallel uploads on the local runtime.

- EventBridge may deliver the same `Object Created` event twice: the second execution claims the same
  idempotency key, ends as DuplicateIgnored and touches nothing.
- Two datasets uploaded together run in parallel in one runtime: each writes only under its own
  `runs/<runId>/`, scores its own file, and the registry hands out distinct, increasing versions.
- Two approved models at once: both runs succeed; the one that finishes second finds the champion
  moved, compares itself with it again and promotes over it (or says why not).
"""

from __future__ import annotations

import csv
import io
import itertools
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from emulator.runtime import LocalRuntime

from .stack import (
    CHAMPION_MOVE,
    COUNTER,
    REGION,
    Notifications,
    champion,
    entered,
    meta_key,
    nothing_lost,
    scheduled_jobs,
    snapshot,
    versions_of,
)
from .table import Row

MODEL = "medication-adherence-model"
TRAIN = "createTrainingJob"


def test_the_same_upload_event_delivered_twice_trains_once(
    runtime: LocalRuntime, baseline: dict[str, Any], resilience_row: Callable[[Row], None]
) -> None:
    before = snapshot(runtime)
    jobs_before = len(runtime.sagemaker.jobs)

    replay = runtime.run(baseline["event"])  # the rule's target invoked again with the same event

    after = snapshot(runtime)
    assert replay["status"] == "SUCCEEDED"
    assert entered(replay) == ["ReceiveInput", "PrepareRun", "DuplicateIgnored"]
    assert len(scheduled_jobs(baseline["record"], TRAIN)) == 1 and scheduled_jobs(replay, TRAIN) == []
    assert len(runtime.sagemaker.jobs) == jobs_before  # one training job for the two executions
    delta = nothing_lost(before, after, run_ids=[replay["name"]])
    assert (
        not delta.new_keys and not delta.new_items and not delta.changed_items
    )  # the first's records intact

    resilience_row(
        Row(
            "Duplicates",
            "Same S3 event delivered twice",
            "the baseline upload's EventBridge event sent to the state machine again",
            "SUCCEEDED (DuplicateIgnored)",
            "DuplicateRun (caught)",
            "idempotency key already claimed by the first run",
            "nothing written; the first run's records unchanged",
            "yes",
        )
    )


def _ids(body: str) -> list[str]:
    return [row["encounter_id"] for row in csv.DictReader(io.StringIO(body))]


def _both_training_at_once(runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch) -> threading.Barrier:
    """Hold each of the next two CreateTrainingJob calls until both have been made.

    Both runs are then in TrainModel at the same moment by construction (no timestamps compared): a
    runtime that ran executions one after the other would leave the first call waiting, and the
    barrier breaks after a generous 120 s (the run then fails and the returned barrier is `broken`).
    Later calls pass straight through."""
    barrier = threading.Barrier(2, timeout=120)
    original = runtime.sagemaker.create_training_job
    calls = itertools.count()

    def create_training_job(request: dict[str, Any]) -> dict[str, Any]:
        if next(calls) < 2:
            barrier.wait()
        return original(request)

    monkeypatch.setattr(runtime.sagemaker, "create_training_job", create_training_job)
    return barrier


def test_two_uploads_together_train_in_parallel_without_touching_each_other(
    runtime: LocalRuntime,
    baseline: dict[str, Any],
    slice_file: Callable[..., Path],
    resilience_row: Callable[[Row], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = [slice_file("ward_north", 10_000), slice_file("ward_south", 12_000)]
    together = _both_training_at_once(runtime, monkeypatch)
    keys = [runtime.datasets_prefix + f.name for f in files]
    before = snapshot(runtime)
    # A strict gate rejects both models: both runs then score with the champion and succeed, whatever
    # the order (approving both is the next test).
    runtime.update_environment(MIN_ROC_AUC="0.99")
    try:
        events = [runtime.trigger.upload(str(f), k)[0] for f, k in zip(files, keys, strict=True)]
        arns = [runtime.start(e) for e in events]  # both running before either is waited for
        records = [runtime.wait(arn) for arn in arns]
    finally:
        runtime.update_environment(MIN_ROC_AUC=runtime.stack.parameters["MinRocAuc"])
    after = snapshot(runtime)
    run_ids = [r["name"] for r in records]

    assert not together.broken, "the two runs never were in TrainModel at the same time"  # in parallel
    assert [r["status"] for r in records] == ["SUCCEEDED", "SUCCEEDED"], [r["cause"] for r in records]
    nothing_lost(
        before,
        after,
        run_ids=run_ids,
        uploads=tuple(keys),
        new_versions_of=MODEL,
        allowed_changes={meta_key(MODEL): COUNTER},
    )
    earlier = max(versions_of(before.items, MODEL))
    runs = [after.items[(f"RUN#{r}", "RUN")] for r in run_ids]
    new_versions = sorted(int(run["model_version"]) for run in runs)
    assert new_versions == [earlier + 1, earlier + 2]  # distinct, above every earlier one
    assert sorted(versions_of(after.items, MODEL)) == sorted(
        [*versions_of(before.items, MODEL), *new_versions]
    )
    assert champion(after.items, MODEL) == champion(before.items, MODEL)
    s3 = boto3.client("s3", region_name=REGION)
    for run_id, path in zip(run_ids, files, strict=True):
        key = f"runs/{run_id}/predictions/{path.name}.out"
        scored = _ids(s3.get_object(Bucket=runtime.stack.bucket, Key=key)["Body"].read().decode())
        assert scored == _ids(path.read_text())  # each run scored its own file, every row

    resilience_row(
        Row(
            "Concurrency",
            "Two uploads at once",
            "two 3000-row files uploaded, both executions started before either finished (strict gate)",
            "SUCCEEDED, SUCCEEDED",
            "-",
            "training jobs ran at the same time; each scored its own file",
            "two new versions, distinct and consecutive above the earlier ones; champion unchanged",
            "yes",
        )
    )


def test_two_approved_uploads_at_once_both_succeed_and_the_later_compares_with_the_new_champion(
    runtime: LocalRuntime,
    baseline: dict[str, Any],
    notifications: Notifications,
    slice_file: Callable[..., Path],
    resilience_row: Callable[[Row], None],
) -> None:
    files = [slice_file("ward_east", 24_000), slice_file("ward_west", 26_000)]
    keys = [runtime.datasets_prefix + f.name for f in files]
    before = snapshot(runtime)
    previous = champion(before.items, MODEL)

    events = [runtime.trigger.upload(str(f), k)[0] for f, k in zip(files, keys, strict=True)]
    arns = [runtime.start(e) for e in events]  # both compare with the same champion
    records = [runtime.wait(arn) for arn in arns]

    after = snapshot(runtime)
    assert [r["status"] for r in records] == ["SUCCEEDED", "SUCCEEDED"], [r["cause"] for r in records]
    nothing_lost(
        before,
        after,
        run_ids=[r["name"] for r in records],
        uploads=tuple(keys),
        new_versions_of=MODEL,
        allowed_changes={meta_key(MODEL): CHAMPION_MOVE},
    )
    versions = versions_of(after.items, MODEL)
    mine = [versions[int(after.items[(f"RUN#{r['name']}", "RUN")]["model_version"])] for r in records]
    assert [v["compared_champion_version"] for v in mine] == [previous, previous]
    # The gate lets every model past (MAX_AUC_DROP 1): the first to succeed replaced the old champion,
    # the second found it moved, compared again with it and replaced it in turn.
    assert [v["promotion"] for v in mine] == ["PROMOTED", "PROMOTED"]
    ours = {v["version"] for v in mine}
    [second] = [v for v in mine if v["replaced_champion"].get("champion_version") in ours]
    [first] = [v for v in mine if v is not second]
    assert first["replaced_champion"]["champion_version"] == previous
    assert second["replaced_champion"]["champion_version"] == first["version"]
    assert f"the champion had moved to v{first['version']} since EvaluateModel" in second["promotion_reason"]
    assert champion(after.items, MODEL) == second["version"]
    for record in records:
        [notice] = notifications.about(record["name"])
        assert "run succeeded" in notice["subject"] and "now the champion" in notice["message"]

    resilience_row(
        Row(
            "Concurrency",
            "Two approved uploads at once",
            "two 3000-row files uploaded together, both models approved against the same champion",
            "SUCCEEDED, SUCCEEDED",
            "-",
            "the later run found the champion moved, compared again with it and promoted over it",
            "both versions PROMOTED in turn; the champion is the later one, each records the one it replaced",
            "yes",
        )
    )

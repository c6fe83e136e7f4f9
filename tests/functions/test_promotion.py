"""Promotion when the run succeeds: two approved runs at once both succeed; the later one compares
itself with the champion the earlier one promoted, and promotes or records why it did not."""

from __future__ import annotations

import copy
from typing import Any

import pytest

import promotion
import record_outcome
import register_model
from registry import Champion, Registry
from tests.functions.helpers import BUCKET, TABLE, Aws, load_event, start_run, with_training_output

MODEL = "medication-adherence-model"


def approved_run(reg: Registry, run_id: str, roc_auc: float, compared: int | None) -> dict[str, Any]:
    """A run that compared with champion `compared`, registered an approved model and scored: the
    RecordOutcome event it sends."""
    event = copy.deepcopy(load_event("record_outcome_succeeded.json"))
    run = event["run"]
    run.update(runId=run_id, idempotencyKey=f"k-{run_id}")
    start_run(reg, run, claim=False, model_name=MODEL)
    register = copy.deepcopy(load_event("register_model.json"))
    register["run"] = run
    register["evaluation"].update(comparedChampionVersion=compared, metrics={"roc_auc": roc_auc})
    register["training"]["artifactUri"] = f"s3://{BUCKET}/runs/{run_id}/model/job/output/model.tar.gz"
    version = register_model.handler(with_training_output(register), None)["version"]
    event["evaluation"] = register["evaluation"]
    event["registration"]["version"] = version
    event["scoring"]["version"] = version
    return event


def test_the_later_of_two_approved_runs_promotes_over_a_weaker_new_champion(aws: Aws) -> None:
    reg = Registry(TABLE, aws.dynamodb)
    earlier = approved_run(reg, "earlier", 0.65, compared=None)
    later = approved_run(reg, "later", 0.70, compared=None)  # both compared with "no champion"
    record_outcome.handler(earlier, None)

    result = record_outcome.handler(later, None)

    assert result["status"] == "SUCCEEDED" and result["promoted"] is True
    assert reg.get_champion(MODEL).version == 2
    reason = reg.get_version(MODEL, 2)["promotion_reason"]
    assert "the champion had moved to v1 since EvaluateModel, compared again" in reason
    assert "vs champion v1 0.6500 on its own held-out rows as recorded" in reason
    assert reg.get_run("later")["status"] == "SUCCEEDED"
    assert "now the champion" in result["message"]


def test_the_later_of_two_approved_runs_yields_to_a_better_new_champion_and_still_succeeds(
    aws: Aws,
) -> None:
    reg = Registry(TABLE, aws.dynamodb)
    earlier = approved_run(reg, "earlier", 0.70, compared=None)
    later = approved_run(reg, "later", 0.65, compared=None)
    record_outcome.handler(earlier, None)

    result = record_outcome.handler(later, None)  # MAX_AUC_DROP is 0.01 in the test environment

    assert result["status"] == "SUCCEEDED" and result["promoted"] is False
    assert result["championVersion"] == 1 and reg.get_champion(MODEL).version == 1
    version = reg.get_version(MODEL, 2)
    assert (version["status"], version["promotion"]) == ("APPROVED", "NOT_PROMOTED")
    assert version["promotion_reason"].startswith("champion v1 is better: roc_auc 0.7000 vs 0.6500 (v1 on")
    assert reg.get_run("later")["status"] == "SUCCEEDED"
    assert result["subject"] == f"{MODEL} v2 approved, not promoted: run succeeded"
    assert "but not promoted: champion v1 is better" in result["message"]


class ChampionThatKeepsMoving:
    """A registry in which every promotion loses the race to yet another, weaker, champion."""

    def __init__(self) -> None:
        self.current = 0
        self.declined: list[str] = []

    def promote(self, model_name: str, version: int, *, expected_champion: int | None, reason: str) -> bool:
        self.current += 1
        return False

    def get_champion(self, model_name: str) -> Champion:
        return Champion(self.current, "s3://b/m.tar.gz", {"model": {"roc_auc": 0.5}})

    def decline(self, model_name: str, version: int, *, reason: str) -> None:
        self.declined.append(reason)


def test_promotion_gives_up_after_a_bounded_number_of_champion_moves() -> None:
    registry = ChampionThatKeepsMoving()

    outcome = promotion.promote_if_still_best(
        registry,  # type: ignore[arg-type]
        model_name=MODEL,
        version=99,
        evaluation={"metrics": {"roc_auc": 0.7}, "comparedChampionVersion": None, "reasons": []},
        min_roc_auc=0.6,
        max_auc_drop=0.01,
        attempts=3,
    )

    assert (outcome.promoted, outcome.champion_version, registry.current) == (False, 3, 3)  # 3 attempts
    assert registry.declined == ["the champion moved 3 times while this run tried to promote; not promoted"]


@pytest.mark.parametrize(("current_auc", "decision"), [(0.60, "approved"), (0.80, "rejected")])
def test_the_second_comparison_uses_the_scores_recorded_for_the_new_champion(
    current_auc: float, decision: str
) -> None:
    current = Champion(4, "s3://b/m.tar.gz", {"model": {"roc_auc": current_auc}, "champion": None})

    verdict = promotion.compare_with_current({"roc_auc": 0.7}, current, min_roc_auc=0.6, max_auc_drop=0.01)

    assert verdict["decision"] == decision
    assert verdict["comparedChampionVersion"] == 4
    assert promotion.RECORDED_ROWS in verdict["reasons"][1]


@pytest.mark.parametrize(
    ("current_auc", "margin", "decision"),
    [
        (0.75, 0.0, "rejected"),  # a tie with the recorded score does not promote at a margin of 0
        (0.7499, 0.0, "approved"),
        (0.875, 0.125, "rejected"),  # exactly the margin below (exact in binary): not above it
        (0.87, 0.125, "approved"),
    ],
)
def test_the_second_comparison_needs_a_difference_strictly_above_minus_the_margin(
    current_auc: float, margin: float, decision: str
) -> None:
    current = Champion(4, "s3://b/m.tar.gz", {"model": {"roc_auc": current_auc}})

    verdict = promotion.compare_with_current({"roc_auc": 0.75}, current, min_roc_auc=0.6, max_auc_drop=margin)

    assert verdict["decision"] == decision

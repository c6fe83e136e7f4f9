"""Promotion's first attempt and its declines, against a registry that records what it was asked.

Written for the mutation run (docs/mutation.md): the end-to-end promotion tests only look at the
outcome in the registry, which the same champion reached by a second comparison also produces. These
pin what the first attempt sends (the champion EvaluateModel compared with, the reason built from
EvaluateModel's reasons) and what a decline records when there is no score to quote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import promotion
from registry import Champion

MODEL = "medication-adherence-model"
EVALUATION = {
    "metrics": {"roc_auc": 0.7},
    "comparedChampionVersion": 3,
    "reasons": ["ROC AUC 0.7000 meets the minimum 0.6000", "better than v3"],
}


@dataclass
class RecordingRegistry:
    """Promotes only when asked with the right expected champion; records every call."""

    champion: Champion | None
    promotions: list[dict[str, Any]] = field(default_factory=list)
    declined: list[str] = field(default_factory=list)
    never_promotes: bool = False  # every promotion loses a race, and the champion stays as it is

    def promote(self, model_name: str, version: int, *, expected_champion: int | None, reason: str) -> bool:
        assert (model_name, version) == (MODEL, 7)
        self.promotions.append({"version": version, "expected": expected_champion, "reason": reason})
        current = self.champion.version if self.champion else None
        if self.never_promotes or current != expected_champion:
            return False
        self.champion = Champion(version, "s3://b/new.tar.gz", {})
        return True

    def get_champion(self, model_name: str) -> Champion | None:
        assert model_name == MODEL
        return self.champion

    def decline(self, model_name: str, version: int, *, reason: str) -> None:
        assert (model_name, version) == (MODEL, 7)
        self.declined.append(reason)


def promote(registry: RecordingRegistry, evaluation: dict[str, Any]) -> promotion.Promotion:
    return promotion.promote_if_still_best(
        registry,  # type: ignore[arg-type]
        model_name=MODEL,
        version=7,
        evaluation=evaluation,
        min_roc_auc=0.6,
        max_auc_drop=0.01,
    )


def test_an_unmoved_champion_is_replaced_at_the_first_attempt_with_evaluate_models_reasons() -> None:
    registry = RecordingRegistry(Champion(3, "s3://b/v3.tar.gz", {"model": {"roc_auc": 0.65}}))

    outcome = promote(registry, EVALUATION)

    reason = "approved and its run succeeded: ROC AUC 0.7000 meets the minimum 0.6000; better than v3"
    assert registry.promotions == [{"version": 7, "expected": 3, "reason": reason}]
    assert outcome == promotion.Promotion(True, 7, reason)
    assert registry.declined == []


def test_a_first_run_without_reasons_still_promotes_with_a_reason() -> None:
    registry = RecordingRegistry(None)

    outcome = promote(registry, {"metrics": {"roc_auc": 0.7}, "comparedChampionVersion": None})

    assert registry.promotions == [
        {"version": 7, "expected": None, "reason": "approved and its run succeeded: "}
    ]
    assert outcome.promoted is True and outcome.champion_version == 7


def test_a_new_champion_without_recorded_scores_declines_with_the_gates_reasons() -> None:
    # The champion moved to a version whose own ROC AUC was never recorded: nothing to quote, so the
    # decline says why the comparison could not be made.
    registry = RecordingRegistry(Champion(4, "s3://b/v4.tar.gz", {}))

    outcome = promote(registry, EVALUATION)

    assert outcome.promoted is False
    assert outcome.champion_version == 4
    assert outcome.reason == (
        "ROC AUC 0.7000 meets the minimum 0.6000; champion v4 was not scored on the same held-out rows, "
        "so the model cannot be compared with it"
    )
    assert registry.declined == [outcome.reason]


def test_a_decline_after_the_champion_moved_reports_promoted_false_not_a_falsy_value() -> None:
    registry = RecordingRegistry(Champion(4, "s3://b/v4.tar.gz", {"model": {"roc_auc": 0.9}}))

    outcome = promote(registry, EVALUATION)

    assert outcome.promoted is False
    assert outcome.reason.startswith("champion v4 is better: roc_auc 0.9000 vs 0.7000 (v4 on its own")


def test_a_champion_rolled_back_since_evaluate_model_is_compared_again_as_none() -> None:
    registry = RecordingRegistry(None)  # EvaluateModel compared with v3, which is champion no more

    outcome = promote(registry, EVALUATION)

    assert [p["expected"] for p in registry.promotions] == [3, None]
    assert outcome.promoted is True and outcome.champion_version == 7
    assert outcome.reason == (
        "approved and its run succeeded; the champion had moved to none since EvaluateModel, compared "
        "again: ROC AUC 0.7000 meets the minimum 0.6000; "
        "no champion yet: the model is compared with the minimum only"
    )


def test_a_model_below_the_floor_with_no_champion_left_is_declined_with_the_gates_reasons() -> None:
    registry = RecordingRegistry(None)
    evaluation = {**EVALUATION, "metrics": {"roc_auc": 0.5}}

    outcome = promote(registry, evaluation)

    reasons = (
        "ROC AUC 0.5000 is below the minimum 0.6000; "
        "no champion yet: the model is compared with the minimum only"
    )
    assert outcome == promotion.Promotion(False, None, reasons)
    assert registry.declined == [reasons]


def test_a_promotion_that_always_loses_the_race_is_declined_with_the_number_of_moves() -> None:
    registry = RecordingRegistry(None, never_promotes=True)

    outcome = promote(registry, EVALUATION)

    declined = "the champion moved 5 times while this run tried to promote; not promoted"
    assert len(registry.promotions) == promotion.MAX_ATTEMPTS == 5
    assert outcome == promotion.Promotion(False, None, declined)
    assert registry.declined == [declined]

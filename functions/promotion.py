"""Promotion: the champion pointer moves to a run's approved version only once the run has succeeded.

RegisterModel records an approved version as a candidate; RecordOutcome calls `promote_if_still_best`
after scoring and drift succeeded. The move is conditioned on the champion the run compared against at
EvaluateModel. When another run promoted a version in between, this run does not fail: it compares
itself with the champion that is there now, by the same rule (`evaluate_model.decide`), and either
promotes (conditioned on that champion, a bounded number of times) or records itself as approved but
not promoted, with the reason.

What is comparable: the training job scored only the champion of the run's start on the run's held-out
rows. A champion promoted later was never scored on those rows; what the registry holds for it is its
own ROC AUC on its own held-out rows (the `model` block of its metrics). That is what the second
comparison uses, and its reasons say so. No paired interval exists for such scores, so the model must
beat the recorded ROC AUC by more than -MAX_AUC_DROP (a tie does not promote at a margin of 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from decision import APPROVED
from evaluate_model import decide
from registry import Champion, Registry

MAX_ATTEMPTS = 5
RECORDED_ROWS = "on its own held-out rows as recorded (it was not scored on this run's rows)"


@dataclass(frozen=True)
class Promotion:
    """What the success step did with the run's approved version."""

    promoted: bool
    champion_version: int | None  # the champion after the step
    reason: str


def compare_with_current(
    model_metrics: dict[str, Any], current: Champion | None, *, min_roc_auc: float, max_auc_drop: float
) -> dict[str, Any]:
    """`decide` again, against the champion that is there now and the scores recorded for it."""
    recorded = current.metrics.get("model") if current else None
    return decide(
        {"model": model_metrics, "champion": recorded},
        current.as_json() if current else None,
        min_roc_auc=min_roc_auc,
        max_auc_drop=max_auc_drop,
        champion_rows=RECORDED_ROWS,
        paired=False,
    )


def _outcompeted(verdict: dict[str, Any], current: Champion | None) -> str:
    champion_scores = verdict.get("championMetrics")
    if current is not None and champion_scores:
        return (
            f"champion v{current.version} is better: roc_auc {champion_scores['roc_auc']:.4f} vs "
            f"{verdict['metrics']['roc_auc']:.4f} (v{current.version} {RECORDED_ROWS})"
        )
    return "; ".join(verdict["reasons"])


def promote_if_still_best(
    registry: Registry,
    *,
    model_name: str,
    version: int,
    evaluation: dict[str, Any],
    min_roc_auc: float,
    max_auc_drop: float,
    attempts: int = MAX_ATTEMPTS,
) -> Promotion:
    """Promote `version`, comparing again each time the champion turns out to have moved.

    `evaluation` is EvaluateModel's output for the run (`metrics`, `comparedChampionVersion`, `reasons`).
    Never raises for a conflict: after `attempts` moves of the champion the version is declined.
    """
    expected = evaluation.get("comparedChampionVersion")
    reason = "approved and its run succeeded: " + "; ".join(evaluation.get("reasons") or [])
    for _ in range(attempts):
        if registry.promote(model_name, version, expected_champion=expected, reason=reason):
            return Promotion(True, version, reason)
        current = registry.get_champion(model_name)
        verdict = compare_with_current(
            evaluation["metrics"], current, min_roc_auc=min_roc_auc, max_auc_drop=max_auc_drop
        )
        if verdict["decision"] != APPROVED:
            declined = _outcompeted(verdict, current)
            registry.decline(model_name, version, reason=declined)
            return Promotion(False, current.version if current else None, declined)
        expected = current.version if current else None
        reason = (
            f"approved and its run succeeded; the champion had moved to "
            f"{f'v{expected}' if expected is not None else 'none'} since EvaluateModel, compared again: "
            + "; ".join(verdict["reasons"])
        )
    current = registry.get_champion(model_name)
    declined = f"the champion moved {attempts} times while this run tried to promote; not promoted"
    registry.decline(model_name, version, reason=declined)
    return Promotion(False, current.version if current else None, declined)

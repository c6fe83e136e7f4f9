"""The model gate at its edges: a ROC AUC equal to the floor, an interval ending exactly at the margin.

These pin the comparison operators of evaluate_model.decide (issue 14: `roc >= floor` made strict, or
`low > -drop` made lenient, left the suite green). Pure: no AWS.
"""

from __future__ import annotations

import io
import json
import math
import tarfile
from typing import Any

import pytest
from decision import APPROVED, REJECTED, version_status

import evaluate_model
from errors import InvalidModelArtifact
from tests.functions.helpers import unit_settings

CHAMPION = {"version": 3}
SETTINGS = unit_settings(max_dataset_bytes=1024, default_model_name="model", max_auc_drop=0.0)


def block(roc_auc: Any, **extra: Any) -> dict[str, Any]:
    return {"roc_auc": roc_auc, **extra}


def comparison(low: float, high: float, difference: float | None = None) -> dict[str, Any]:
    return {
        "method": "delong_paired",
        "roc_auc_difference": (low + high) / 2 if difference is None else difference,
        "standard_error": 0.01,
        "confidence": 0.95,
        "interval": [low, high],
        "p_value": 0.04,
        "rows": 1200,
        "positives": 130,
    }


def doc(
    roc_auc: float, champion: float | None = None, paired: dict[str, Any] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"model": block(roc_auc), "target": "readmitted_30d"}
    if champion is not None:
        out["champion"] = block(champion)
    if paired is not None:
        out["comparison"] = paired
    return out


def test_a_roc_auc_equal_to_the_floor_meets_it() -> None:
    result = evaluate_model.decide(doc(0.6), None, min_roc_auc=0.6, max_auc_drop=0.0)

    assert result["decision"] == APPROVED
    assert result["reasons"] == [
        "ROC AUC 0.6000 meets the minimum 0.6000",
        "no champion yet: the model is compared with the minimum only",
    ]


def test_a_roc_auc_just_below_the_floor_is_rejected() -> None:
    result = evaluate_model.decide(doc(0.5999), None, min_roc_auc=0.6, max_auc_drop=0.0)

    assert result["decision"] == REJECTED
    assert result["reasons"][0] == "ROC AUC 0.5999 is below the minimum 0.6000"


def test_an_interval_whose_lower_end_is_exactly_minus_the_margin_keeps_the_champion() -> None:
    for margin in (0.0, 0.01):
        result = evaluate_model.decide(
            doc(0.7, 0.69, comparison(-margin, 0.02)), CHAMPION, min_roc_auc=0.6, max_auc_drop=margin
        )
        assert result["decision"] == REJECTED, margin
        assert "its lower end is not above" in result["reasons"][-1]
        assert result["reasons"][-1].endswith("which stays")


def test_an_interval_just_above_minus_the_margin_approves_the_model() -> None:
    result = evaluate_model.decide(
        doc(0.7, 0.69, comparison(1e-9, 0.02)), CHAMPION, min_roc_auc=0.6, max_auc_drop=0.0
    )

    assert result["decision"] == APPROVED
    assert result["reasons"][-1].endswith("its lower end is above 0, so the model is better")
    assert result["comparedChampionVersion"] == 3
    assert result["championMetrics"] == {"roc_auc": 0.69}


def test_the_reasons_quote_the_paired_evidence() -> None:
    result = evaluate_model.decide(
        doc(0.7, 0.69, comparison(0.001, 0.019, difference=0.01)),
        CHAMPION,
        min_roc_auc=0.6,
        max_auc_drop=0.01,
    )

    assert result["reasons"][-1] == (
        "ROC AUC 0.7000 vs champion v3 0.6900 on the same rows: difference +0.0100, "
        "95% interval [+0.0010, +0.0190] (DeLong, p = 0.04, 1200 rows, 130 readmitted); "
        "its lower end is above -0.0100, so the model is better"
    )
    assert result["metrics"]["gate"] == {
        "rule": evaluate_model.RULE,
        "min_roc_auc": 0.6,
        "max_auc_drop": 0.01,
        "comparison": {**comparison(0.001, 0.019, difference=0.01), "interval": [0.001, 0.019]},
    }


def test_a_model_below_the_floor_is_rejected_even_when_better_than_the_champion() -> None:
    result = evaluate_model.decide(
        doc(0.55, 0.5, comparison(0.01, 0.09)), CHAMPION, min_roc_auc=0.6, max_auc_drop=0.0
    )

    assert result["decision"] == REJECTED
    assert "so the model is better" in result["reasons"][-1]


def test_unpaired_a_tie_with_the_recorded_champion_keeps_it_and_a_gain_replaces_it() -> None:
    tie = evaluate_model.decide(
        doc(0.7, 0.7), CHAMPION, min_roc_auc=0.6, max_auc_drop=0.0, paired=False, champion_rows="as recorded"
    )
    gain = evaluate_model.decide(
        doc(0.7001, 0.7),
        CHAMPION,
        min_roc_auc=0.6,
        max_auc_drop=0.0,
        paired=False,
        champion_rows="as recorded",
    )
    within_margin = evaluate_model.decide(
        doc(0.695, 0.7), CHAMPION, min_roc_auc=0.6, max_auc_drop=0.01, paired=False
    )

    assert tie["decision"] == REJECTED
    assert tie["reasons"][-1] == (
        "ROC AUC 0.7000 does not beat champion v3's 0.7000 as recorded: the difference +0.0000 is not above 0"
    )
    assert gain["decision"] == APPROVED
    assert gain["reasons"][-1] == (
        "ROC AUC 0.7001 vs champion v3 0.7000 as recorded: the difference +0.0001 is above 0"
    )
    assert within_margin["decision"] == APPROVED
    assert within_margin["championMetrics"] == {"roc_auc": 0.7}
    assert within_margin["metrics"]["gate"]["comparison"] is None


def test_a_champion_not_scored_on_the_same_rows_or_without_a_comparison_is_a_rejection() -> None:
    unscored = evaluate_model.decide(doc(0.9), CHAMPION, min_roc_auc=0.6, max_auc_drop=0.0)
    uncompared = evaluate_model.decide(doc(0.9, 0.7), CHAMPION, min_roc_auc=0.6, max_auc_drop=0.0)

    assert unscored["decision"] == REJECTED
    assert unscored["championMetrics"] is None
    assert unscored["reasons"][-1].startswith("champion v3 was not scored on the same held-out rows")
    assert uncompared["decision"] == REJECTED
    assert uncompared["championMetrics"] == {"roc_auc": 0.7}
    assert uncompared["reasons"][-1] == (
        "champion v3 was scored but metrics.json holds no paired comparison with it, so the gate cannot "
        "tell whether the model is better"
    )


def test_the_result_carries_the_target_and_no_champion_fields_without_one() -> None:
    result = evaluate_model.decide(doc(0.8), None, min_roc_auc=0.6, max_auc_drop=0.0)

    assert result["target"] == "readmitted_30d"
    assert result["championMetrics"] is None
    assert result["comparedChampionVersion"] is None
    assert result["metrics"]["gate"]["comparison"] is None


def test_only_finite_numbers_of_the_reported_metrics_are_kept() -> None:
    section = block(0.8, pr_auc=0.3, log_loss=math.inf, brier="0.1", positive_rate=True, extra=1.0)

    assert evaluate_model._score(section, "model") == {"roc_auc": 0.8, "pr_auc": 0.3, "positive_rate": 1.0}


@pytest.mark.parametrize("roc", [None, "0.8", True, math.nan, math.inf])
def test_a_roc_auc_that_is_not_a_finite_number_is_an_invalid_artifact(roc: Any) -> None:
    with pytest.raises(InvalidModelArtifact) as caught:
        evaluate_model._score(block(roc), "model")

    assert str(caught.value) == f"metrics.json model.roc_auc is missing or not a number: {roc!r}"


def test_a_missing_section_is_named() -> None:
    with pytest.raises(InvalidModelArtifact) as caught:
        evaluate_model._score(None, "champion")

    assert str(caught.value) == "metrics.json has no 'champion' section"


@pytest.mark.parametrize(
    "change",
    [
        {"interval": [0.01]},
        {"interval": (0.0, 0.1)},
        {"interval": [0.0, math.nan]},
        {"p_value": True},
        {"standard_error": None},
        {"confidence": math.inf},
    ],
)
def test_an_incomplete_or_non_numeric_comparison_is_an_invalid_artifact(change: dict[str, Any]) -> None:
    with pytest.raises(InvalidModelArtifact) as caught:
        evaluate_model._comparison({**comparison(0.0, 0.1), **change})

    assert str(caught.value).startswith("metrics.json comparison is incomplete or not numeric: {")


def test_a_comparison_that_is_not_an_object_is_named() -> None:
    with pytest.raises(InvalidModelArtifact) as caught:
        evaluate_model._comparison([0.0, 0.1])

    assert str(caught.value) == "metrics.json has no 'comparison' section"


def test_a_comparison_without_counts_reads_them_as_zero() -> None:
    section = {k: v for k, v in comparison(0.0, 0.1).items() if k not in ("rows", "positives", "method")}

    checked = evaluate_model._comparison(section)

    assert (checked["method"], checked["rows"], checked["positives"]) == ("", 0, 0)


def test_the_margin_is_written_as_the_bound_a_difference_must_exceed() -> None:
    assert evaluate_model._above(0.0) == "0"
    assert evaluate_model._above(0.01) == "-0.0100"


def test_the_registry_status_is_the_decision_in_capitals() -> None:
    assert (version_status(APPROVED), version_status(REJECTED)) == ("APPROVED", "REJECTED")


def test_the_reason_for_a_champion_not_scored_on_the_same_rows_is_whole() -> None:
    result = evaluate_model.decide(doc(0.9), CHAMPION, min_roc_auc=0.6, max_auc_drop=0.0)

    assert result["reasons"][-1] == (
        "champion v3 was not scored on the same held-out rows, so the model cannot be compared with it"
    )


@pytest.mark.parametrize(
    ("paired", "comparison_block"), [(True, None), (True, comparison(0.0, 0.1)), (False, None)]
)
def test_a_champion_block_without_a_number_is_named_as_the_champion_s(
    paired: bool, comparison_block: dict[str, Any] | None
) -> None:
    bad = doc(0.9, paired=comparison_block)
    bad["champion"] = block("n/a")

    with pytest.raises(InvalidModelArtifact) as caught:
        evaluate_model.decide(bad, CHAMPION, min_roc_auc=0.6, max_auc_drop=0.0, paired=paired)

    assert str(caught.value) == "metrics.json champion.roc_auc is missing or not a number: 'n/a'"


class FakeS3:
    """get_object of one model.tar.gz holding `metrics.json` two folders down: enough for evaluate."""

    def __init__(self, metrics: dict[str, Any]) -> None:
        buffer = io.BytesIO()
        payload = json.dumps(metrics).encode()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            info = tarfile.TarInfo("output/model/metrics.json")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
        self.archive = buffer.getvalue()

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        assert (Bucket, Key) == ("bucket", "model.tar.gz")
        return {"Body": io.BytesIO(self.archive)}


class Warnings:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def warning(self, message: str, extra: dict[str, Any]) -> None:
        self.calls.append((message, extra))


@pytest.mark.parametrize(("logged", "warned"), [(0.8, False), (0.8009, False), (0.81, True)])
def test_a_logged_roc_auc_far_from_metrics_json_is_a_warning_not_a_failure(
    monkeypatch: pytest.MonkeyPatch, logged: float, warned: bool
) -> None:
    recorder = Warnings()
    monkeypatch.setattr(evaluate_model, "logger", recorder)
    final = [{"MetricName": "pr_auc", "Value": 0.1}, {"MetricName": "roc_auc", "Value": logged}]
    event = {"run": {}, "training": {"artifactUri": "s3://bucket/model.tar.gz", "finalMetrics": final}}
    result = evaluate_model.evaluate(event, settings=SETTINGS, s3=FakeS3(doc(0.8)))

    assert result["decision"] == APPROVED
    expected = [("roc_auc in the log differs from metrics.json", {"log": final[1]})] if warned else []
    assert recorder.calls == expected

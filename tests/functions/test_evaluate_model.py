"""EvaluateModel: metrics.json from the artifact, thresholds, champion comparison on the same rows."""

from __future__ import annotations

import copy
import io
import json
import tarfile
from typing import Any

import pytest

import evaluate_model
from errors import InvalidModelArtifact
from tests.functions.helpers import BUCKET, Aws, load_event


def scores(roc_auc: float) -> dict[str, Any]:
    return {
        "roc_auc": roc_auc,
        "pr_auc": 0.22,
        "log_loss": 0.33,
        "brier": 0.09,
        "positive_rate": 0.11,
        "threshold": 0.5,
        "confusion": {"tp": 1, "fp": 2, "tn": 3, "fn": 4},
        "calibration": [],
    }


def paired(difference: float, low: float, high: float, p_value: float = 0.5) -> dict[str, Any]:
    """The training job's `comparison` block (pipelines/evaluation.py compare_roc_auc)."""
    return {
        "method": "delong_paired",
        "roc_auc_difference": difference,
        "standard_error": (high - low) / 3.92,
        "confidence": 0.95,
        "interval": [low, high],
        "p_value": p_value,
        "rows": 20000,
        "positives": 2200,
    }


def metrics_doc(
    roc_auc: float, champion_roc_auc: float | None = None, comparison: dict[str, Any] | None = None
) -> dict[str, Any]:
    if comparison is None and champion_roc_auc is not None:
        difference = roc_auc - champion_roc_auc
        comparison = paired(difference, difference - 0.008, difference + 0.008)
    return {
        "target": "readmitted_30d",
        "algorithm": "HistGradientBoosting",
        "seed": 42,
        "rows": {"training": 80000, "validation": 20000, "excluded_death_or_hospice": 2000},
        "patients": {"training": 50000, "validation": 12000},
        "model": scores(roc_auc),
        "champion": None if champion_roc_auc is None else scores(champion_roc_auc),
        "versions": {"python": "3.9.18", "scikit-learn": "1.2.1"},
        **({"comparison": comparison} if comparison is not None else {}),
    }


def model_tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def event_with(
    aws: Aws, doc: dict[str, Any] | None, champion: dict[str, Any] | None = None
) -> dict[str, Any]:
    event = copy.deepcopy(load_event("evaluate_model.json"))
    key = event["training"]["artifactUri"].split(f"{BUCKET}/", 1)[1]
    members = {"model.joblib": b"\x80\x04" * 5000, "features.json": b"{}"}
    if doc is not None:
        members["metrics.json"] = json.dumps(doc).encode()
    aws.put(key, model_tar(members))
    event["run"]["champion"] = champion
    return event


CHAMPION = {
    "version": 3,
    "artifactUri": f"s3://{BUCKET}/runs/old/model/job/output/model.tar.gz",
    "metrics": {"model": {"roc_auc": 0.66}},
}


def test_the_sample_event_is_approved_without_a_champion(aws: Aws) -> None:
    result = evaluate_model.handler(event_with(aws, metrics_doc(0.6712)), None)

    assert result["decision"] == "approved"
    assert result["metrics"]["roc_auc"] == pytest.approx(0.6712)
    assert isinstance(result["metrics"]["roc_auc"], float)
    assert result["comparedChampionVersion"] is None
    assert any("no champion" in r for r in result["reasons"])


def test_a_model_below_the_minimum_is_rejected_with_the_numbers_in_the_reason(aws: Aws) -> None:
    result = evaluate_model.handler(event_with(aws, metrics_doc(0.55)), None)

    assert result["decision"] == "rejected"
    assert "ROC AUC 0.5500 is below the minimum 0.6000" in result["reasons"]


def decide(doc: dict[str, Any], max_auc_drop: float = 0.0) -> dict[str, Any]:
    return evaluate_model.decide(doc, CHAMPION, min_roc_auc=0.6, max_auc_drop=max_auc_drop)


def test_an_identical_retrain_keeps_the_champion() -> None:
    # The case: 0.6732 vs 0.6732 on the same rows, the same ranking, an interval of [0, 0].
    result = decide(metrics_doc(0.6732, 0.6732, paired(0.0, 0.0, 0.0, p_value=1.0)))

    assert result["decision"] == "rejected"
    assert result["reasons"][-1] == (
        "ROC AUC 0.6732 vs champion v3 0.6732 on the same rows: difference +0.0000, 95% interval "
        "[+0.0000, +0.0000] (DeLong, p = 1, 20000 rows, 2200 readmitted); its lower end is not above "
        "0, so the evaluation does not show the model better than champion v3, which stays"
    )


def test_a_clearly_better_model_replaces_the_champion() -> None:
    result = decide(metrics_doc(0.70, 0.67, paired(0.03, 0.02, 0.04, p_value=1e-9)))

    assert result["decision"] == "approved"
    assert result["reasons"][-1].endswith("its lower end is above 0, so the model is better")
    assert "95% interval [+0.0200, +0.0400]" in result["reasons"][-1]


def test_a_gain_within_the_noise_of_a_small_evaluation_keeps_the_champion() -> None:
    # A higher ROC AUC, measured on too few rows to tell the two models apart.
    result = decide(metrics_doc(0.69, 0.67, paired(0.02, -0.03, 0.07, p_value=0.43)))

    assert result["decision"] == "rejected"


def test_a_worse_model_is_rejected() -> None:
    result = decide(metrics_doc(0.64, 0.67, paired(-0.03, -0.04, -0.02, p_value=1e-6)))

    assert result["decision"] == "rejected"
    assert "does not show the model better than champion v3" in result["reasons"][-1]


@pytest.mark.parametrize(
    ("low", "margin", "decision"),
    [
        (0.0, 0.0, "rejected"),  # a lower end of exactly 0 is no evidence of a gain
        (1e-6, 0.0, "approved"),
        (-0.01, 0.01, "rejected"),  # exactly at the margin: not above it
        (-0.0099, 0.01, "approved"),
    ],
)
def test_the_lower_end_must_be_strictly_above_minus_the_margin(
    low: float, margin: float, decision: str
) -> None:
    result = decide(metrics_doc(0.68, 0.67, paired(0.01, low, 0.03)), max_auc_drop=margin)

    assert result["decision"] == decision


def test_ten_retrains_each_slightly_worse_never_replace_the_champion() -> None:
    # The drift the old rule allowed: each promotion 0.005 below the last, within a 0.01 tolerance.
    champion_auc, promoted = 0.6732, 0
    for _ in range(10):
        challenger = champion_auc - 0.005
        result = decide(metrics_doc(challenger, champion_auc, paired(-0.005, -0.009, -0.001)))
        if result["decision"] == "approved":
            champion_auc, promoted = challenger, promoted + 1

    assert (promoted, champion_auc) == (0, 0.6732)


def test_the_interval_test_and_rule_travel_with_the_metrics(aws: Aws) -> None:
    doc = metrics_doc(0.70, 0.67, paired(0.03, 0.02, 0.04, p_value=1e-9))

    result = evaluate_model.handler(event_with(aws, doc, CHAMPION), None)

    gate = result["metrics"]["gate"]
    assert gate["comparison"]["interval"] == [0.02, 0.04]
    assert gate["comparison"]["p_value"] == 1e-9
    assert gate["max_auc_drop"] == 0.01  # the test environment's MAX_AUC_DROP
    assert "lower end of the 95% DeLong interval" in gate["rule"]
    assert result["championMetrics"]["roc_auc"] == pytest.approx(0.67)


def test_a_champion_scored_without_a_paired_comparison_cannot_be_beaten(aws: Aws) -> None:
    doc = metrics_doc(0.90, 0.67)
    del doc["comparison"]

    result = evaluate_model.handler(event_with(aws, doc, CHAMPION), None)

    assert result["decision"] == "rejected"
    assert any("holds no paired comparison" in r for r in result["reasons"])


@pytest.mark.parametrize(
    "comparison",
    [
        {"roc_auc_difference": 0.1},
        {**paired(0.03, 0.02, 0.04), "interval": [0.02]},
        {**paired(0.03, 0.02, 0.04), "interval": [float("nan"), 0.04]},
        {**paired(0.03, 0.02, 0.04), "p_value": "small"},
    ],
)
def test_an_incomplete_comparison_fails_the_step(aws: Aws, comparison: dict[str, Any]) -> None:
    with pytest.raises(InvalidModelArtifact, match="comparison"):
        evaluate_model.handler(event_with(aws, metrics_doc(0.7, 0.67, comparison), CHAMPION), None)


def test_a_champion_not_scored_on_the_same_rows_cannot_be_beaten(aws: Aws) -> None:
    result = evaluate_model.handler(event_with(aws, metrics_doc(0.90), CHAMPION), None)

    assert result["decision"] == "rejected"
    assert any("not scored on the same held-out rows" in r for r in result["reasons"])


def test_thresholds_come_from_the_environment(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    import settings

    monkeypatch.setenv("MIN_ROC_AUC", "0.7")
    settings.load_settings.cache_clear()

    assert evaluate_model.handler(event_with(aws, metrics_doc(0.6712)), None)["decision"] == "rejected"


def test_an_artifact_without_metrics_json_fails_the_step(aws: Aws) -> None:
    with pytest.raises(InvalidModelArtifact, match=r"has no metrics\.json"):
        evaluate_model.handler(event_with(aws, None), None)


def test_metrics_without_a_roc_auc_fail_the_step(aws: Aws) -> None:
    doc = metrics_doc(0.7)
    doc["model"]["roc_auc"] = None

    with pytest.raises(InvalidModelArtifact, match=r"model\.roc_auc is missing"):
        evaluate_model.handler(event_with(aws, doc), None)


def test_a_missing_artifact_fails_the_step(aws: Aws) -> None:
    event = event_with(aws, metrics_doc(0.7))
    event["training"]["artifactUri"] += ".missing"

    with pytest.raises(InvalidModelArtifact, match="does not exist"):
        evaluate_model.handler(event, None)


def test_metrics_json_is_found_under_a_dot_slash_path(aws: Aws) -> None:
    event = event_with(aws, None)
    key = event["training"]["artifactUri"].split(f"{BUCKET}/", 1)[1]
    aws.put(key, model_tar({"./metrics.json": json.dumps(metrics_doc(0.7)).encode()}))

    assert evaluate_model.handler(event, None)["decision"] == "approved"


def test_the_models_patient_history_travels_inside_metrics_to_register_model() -> None:
    import evaluate_model

    doc = {"history": {"artifact": {"file": "patient_history.csv.gz", "sha256": "cd" * 32, "rows": 9}}}
    assert evaluate_model.history_block(doc) == {
        "history": {"file": "patient_history.csv.gz", "sha256": "cd" * 32, "rows": 9}
    }
    assert evaluate_model.history_block({"history": {"enabled": False}}) == {}
    assert evaluate_model.history_block({}) == {}

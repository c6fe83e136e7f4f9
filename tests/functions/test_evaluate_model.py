"""EvaluateModel: metrics.json from the artifact, thresholds, champion comparison on the same rows."""

from __future__ import annotations

import copy
import io
import json
import tarfile
from typing import Any

import pytest

import evaluate_model
from conftest import BUCKET, Aws, load_event
from errors import InvalidModelArtifact


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


def metrics_doc(roc_auc: float, champion_roc_auc: float | None = None) -> dict[str, Any]:
    return {
        "target": "readmitted_30d",
        "algorithm": "HistGradientBoosting",
        "seed": 42,
        "rows": {"training": 80000, "validation": 20000, "excluded_death_or_hospice": 2000},
        "patients": {"training": 50000, "validation": 12000},
        "model": scores(roc_auc),
        "champion": None if champion_roc_auc is None else scores(champion_roc_auc),
        "versions": {"python": "3.9.18", "scikit-learn": "1.2.1"},
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


def test_a_model_within_the_allowed_drop_of_the_champion_is_approved(aws: Aws) -> None:
    result = evaluate_model.handler(event_with(aws, metrics_doc(0.665, 0.670), CHAMPION), None)

    assert result["decision"] == "approved"
    assert result["comparedChampionVersion"] == 3
    assert result["championMetrics"]["roc_auc"] == pytest.approx(0.670)


def test_a_model_worse_than_the_champion_on_the_same_rows_is_rejected(aws: Aws) -> None:
    result = evaluate_model.handler(event_with(aws, metrics_doc(0.64, 0.67), CHAMPION), None)

    assert result["decision"] == "rejected"
    assert any("more than 0.0100 below champion v3's 0.6700" in r for r in result["reasons"])


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

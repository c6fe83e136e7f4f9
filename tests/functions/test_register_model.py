"""RegisterModel also says which model the batch transform scores with."""

from __future__ import annotations

import copy

import register_model
from registry import Registry
from tests.functions.helpers import Aws, load_event, start_run, with_training_output


def registered(aws: Aws, decision: str, champion: dict | None) -> dict:
    event = copy.deepcopy(load_event("register_model.json"))
    run = event["run"]
    start_run(Registry("readmission-registry", aws.dynamodb), run)
    event["evaluation"]["decision"] = decision
    run["champion"] = champion
    return register_model.handler(with_training_output(event), None)


def test_an_approved_model_scores_with_itself(aws: Aws) -> None:
    result = registered(aws, "approved", champion=None)
    assert result["scoring"] == {
        "source": "new model",
        "version": result["version"],
        "modelArtifactUri": load_event("register_model.json")["training"]["artifactUri"],
    }


def test_a_rejected_model_leaves_scoring_to_the_champion(aws: Aws) -> None:
    champion = {"version": 3, "artifactUri": "s3://b/runs/r0/model.tar.gz", "metrics": {}}
    result = registered(aws, "rejected", champion=champion)
    assert result["scoring"] == {
        "source": "champion",
        "version": 3,
        "modelArtifactUri": champion["artifactUri"],
    }


def test_a_rejected_model_without_a_champion_has_nothing_to_score_with(aws: Aws) -> None:
    assert registered(aws, "rejected", champion=None)["scoring"] is None


def test_the_gate_is_filed_beside_the_scores_with_its_interval_as_numbers(aws: Aws) -> None:
    event = copy.deepcopy(load_event("register_model.json"))
    start_run(Registry("readmission-registry", aws.dynamodb), event["run"])
    comparison = {
        "method": "delong_paired",
        "roc_auc_difference": 0.0123,
        "standard_error": 0.004,
        "confidence": 0.95,
        "interval": [0.0045, 0.0201],
        "p_value": 0.0021,
        "rows": 20000,
        "positives": 2200,
    }
    gate = {"rule": "the rule", "min_roc_auc": 0.6, "max_auc_drop": 0.0, "comparison": comparison}
    event["evaluation"].update(
        decision="approved",
        metrics={**event["evaluation"]["metrics"], "gate": gate},
        championMetrics={"roc_auc": 0.66},
        comparedChampionVersion=3,
    )

    result = register_model.handler(with_training_output(event), None)

    raw = aws.dynamodb.get_item(
        TableName="readmission-registry",
        Key={"pk": {"S": f"MODEL#{result['modelName']}"}, "sk": {"S": f"VERSION#{result['version']:06d}"}},
    )["Item"]
    stored = raw["metrics"]["M"]
    assert stored["gate"]["M"]["comparison"]["M"]["interval"] == {"L": [{"N": "0.0045"}, {"N": "0.0201"}]}
    assert "gate" not in stored["model"]["M"]
    item = Registry("readmission-registry", aws.dynamodb).get_version(result["modelName"], result["version"])
    assert item["metrics"]["gate"] == gate
    assert item["metrics"]["champion"] == {"roc_auc": 0.66}


def test_the_versions_patient_history_is_filed_with_its_sha256_and_left_out_of_the_scores(aws: Aws) -> None:
    event = copy.deepcopy(load_event("register_model.json"))
    registry = Registry("readmission-registry", aws.dynamodb)
    start_run(registry, event["run"])
    history = {"file": "patient_history.csv.gz", "sha256": "ab" * 32, "rows": 101766}
    event["evaluation"]["metrics"] = {**event["evaluation"]["metrics"], "history": history}

    result = register_model.handler(with_training_output(event), None)

    item = registry.get_version(event["run"]["modelName"], result["version"])
    assert item["history_uri"] == event["training"]["artifactUri"] + "#patient_history.csv.gz"
    assert item["history_sha256"] == "ab" * 32
    assert "history" not in item["metrics"]["model"]


def test_a_version_without_patient_history_records_none(aws: Aws) -> None:
    result = registered(aws, "approved", champion=None)
    item = Registry("readmission-registry", aws.dynamodb).get_version(
        "medication-adherence-model", result["version"]
    )
    assert "history_uri" not in item and "history_sha256" not in item

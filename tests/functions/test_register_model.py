"""RegisterModel also says which model the batch transform scores with."""

from __future__ import annotations

import copy

import register_model
from conftest import Aws, load_event, start_run
from registry import Registry


def registered(aws: Aws, decision: str, champion: dict | None) -> dict:
    event = copy.deepcopy(load_event("register_model.json"))
    run = event["run"]
    start_run(Registry("readmission-registry", aws.dynamodb), run)
    event["evaluation"]["decision"] = decision
    run["champion"] = champion
    return register_model.handler(event, None)


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

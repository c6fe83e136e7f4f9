"""RegisterModel: write the trained model into the registry as a new version (atomic numbering).

An approved model is recorded as a candidate, not champion: the champion pointer moves only when the
run has scored and checked drift successfully (RecordOutcome, `promotion.py`), so a run that fails
after this step leaves the previous champion in place.
"""

from __future__ import annotations

from typing import Any

import aws_clients
from decision import APPROVED
from evaluate_model import GATE_KEY
from observability import Logger, Metrics, instrument
from registry import Registry
from settings import load_settings

logger = Logger()
metrics = Metrics()


def register(event: dict[str, Any], *, registry: Registry) -> dict[str, Any]:
    run = event["run"]
    training = event["training"]
    evaluation = event["evaluation"]
    registration = registry.register_version(
        run_id=run["runId"],
        model_name=run["modelName"],
        approved=evaluation["decision"] == APPROVED,
        compared_champion_version=evaluation.get("comparedChampionVersion"),
        metrics=registry_metrics(evaluation),
        artifact_uri=training["artifactUri"],
        training_job=training["jobName"],
        dataset_uri=run["datasetUri"],
        algorithm=run["algorithm"],
        decision_reasons=list(evaluation.get("reasons") or []),
    )
    return {
        **registration.as_json(),
        "scoring": scoring_model(run, training, evaluation, registration.version),
    }


def registry_metrics(evaluation: dict[str, Any]) -> dict[str, Any]:
    """The version's `metrics`: the model's scores, the champion's on the same rows, and apart from
    them the gate (its rule, settings and the paired comparison's interval and test), which
    EvaluateModel sends inside its `metrics` because the workflow passes on no other field."""
    scores = dict(evaluation["metrics"])
    gate = scores.pop(GATE_KEY, None)
    return {
        "model": scores,
        **({"champion": evaluation["championMetrics"]} if evaluation.get("championMetrics") else {}),
        **({GATE_KEY: gate} if gate else {}),
    }


def scoring_model(
    run: dict[str, Any], training: dict[str, Any], evaluation: dict[str, Any], version: int
) -> dict[str, Any] | None:
    """The model the batch transform scores with: this run's own when approved, else the champion's;
    None when the model was rejected and there is no champion (the workflow then fails the run)."""
    if evaluation["decision"] == APPROVED:
        return {"source": "new model", "version": version, "modelArtifactUri": training["artifactUri"]}
    champion = run.get("champion")
    if champion:
        return {
            "source": "champion",
            "version": champion["version"],
            "modelArtifactUri": champion["artifactUri"],
        }
    return None


@instrument(logger, metrics)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = load_settings()
    result = register(event, registry=Registry(settings.registry_table, aws_clients.client("dynamodb")))
    logger.info("model registered", extra=result)
    return result

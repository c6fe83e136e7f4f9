"""RegisterModel: write the trained model into the registry as a new version (atomic numbering).

Approved models become champion in the same transaction, conditioned on the champion the run compared
against; a concurrent promotion makes this run fail with ChampionChanged rather than overwrite it.
"""

from __future__ import annotations

from typing import Any

import aws_clients
from errors import ChampionChanged
from observability import Logger, Metrics, MetricUnit, instrument
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
        approved=evaluation["decision"] == "approved",
        compared_champion_version=evaluation.get("comparedChampionVersion"),
        metrics={
            "model": evaluation["metrics"],
            **({"champion": evaluation["championMetrics"]} if evaluation.get("championMetrics") else {}),
        },
        artifact_uri=training["artifactUri"],
        training_job=training["jobName"],
        dataset_uri=run["datasetUri"],
        algorithm=run["algorithm"],
        decision_reasons=list(evaluation.get("reasons") or []),
    )
    return registration.as_json()


@instrument(logger, metrics)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = load_settings()
    try:
        result = register(event, registry=Registry(settings.registry_table, aws_clients.client("dynamodb")))
    except ChampionChanged:
        metrics.add_metric(name="ChampionConflicts", unit=MetricUnit.Count, value=1)
        raise
    if result["isChampion"]:
        metrics.add_metric(name="ChampionsPromoted", unit=MetricUnit.Count, value=1)
    logger.info("model registered", extra=result)
    return result

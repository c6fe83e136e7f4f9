"""RegisterModel: write the trained model into the registry as a new version (atomic numbering), and
publish its report to `reports/<model>/v<version>/` (report_publication.py), filed as `report_uri`.

An approved model is recorded as a candidate, not champion: the champion pointer moves only when the
run has scored and checked drift successfully (RecordOutcome, `promotion.py`), so a run that fails
after this step leaves the previous champion in place.

The report is published after the version is numbered (its prefix carries the number) and before
the location is filed. A publication that fails raises ReportNotPublished: the workflow's Catch sends
the run to RecordFailure, which flags the version's run FAILED and declines it, so a version whose
report is missing never looks like a good one. A retry of the same run registers the same version
and finds its own objects already in place.
"""

from __future__ import annotations

from typing import Any

import aws_clients
from decision import APPROVED
from evaluate_model import GATE_KEY, HISTORY_KEY
from observability import Logger, Metrics, instrument
from registry import Registry
from report_publication import publish_report
from settings import Settings, load_settings

logger = Logger()
metrics = Metrics()


def register(event: dict[str, Any], *, registry: Registry, s3: Any, settings: Settings) -> dict[str, Any]:
    run = event["run"]
    training = event["training"]
    evaluation = event["evaluation"]
    history = (evaluation.get("metrics") or {}).get(HISTORY_KEY) or {}
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
        # The patient history the version scores with: a member of its model.tar.gz, and its sha256.
        history_uri=f"{training['artifactUri']}#{history['file']}" if history.get("file") else None,
        history_sha256=history.get("sha256"),
    )
    report_uri = publish_report(
        s3,
        artifact_uri=training["artifactUri"],
        job_name=training["jobName"],
        bucket=settings.bucket,
        model_name=registration.model_name,
        version=registration.version,
        run_id=run["runId"],
    )
    registry.record_report(registration.model_name, registration.version, report_uri)
    return {
        **registration.as_json(),
        "reportUri": report_uri,
        "scoring": scoring_model(run, training, evaluation, registration.version),
    }


def registry_metrics(evaluation: dict[str, Any]) -> dict[str, Any]:
    """The version's `metrics`: the model's scores, the champion's on the same rows, and apart from
    them the gate (its rule, settings and the paired comparison's interval and test), which
    EvaluateModel sends inside its `metrics` because the workflow passes on no other field."""
    scores = dict(evaluation["metrics"])
    gate = scores.pop(GATE_KEY, None)
    scores.pop(HISTORY_KEY, None)  # filed as the version's history_uri / history_sha256
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
    result = register(
        event,
        registry=Registry(settings.registry_table, aws_clients.client("dynamodb")),
        s3=aws_clients.client("s3"),
        settings=settings,
    )
    logger.info("model registered", extra=result)
    return result

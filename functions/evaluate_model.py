"""EvaluateModel: the metrics gate between training and the registry.

Reads `metrics.json` out of the training job's `model.tar.gz` (streamed: the archive also holds the
model, which can be large) and applies two rules:
1. the model's ROC AUC on held-out patients is at least MIN_ROC_AUC;
2. when a champion exists, the job scored it on the same held-out rows, and the model's ROC AUC is at
   least the champion's minus MAX_AUC_DROP. A champion that exists but was not scored on the same rows
   cannot be compared fairly, so the model is rejected (the champion keeps scoring).
"""

from __future__ import annotations

import json
import math
import tarfile
from typing import Any

import aws_clients
from decision import APPROVED, REJECTED
from errors import InvalidModelArtifact
from observability import Logger, Metrics, MetricUnit, instrument
from s3uri import parse_s3_uri
from settings import Settings, load_settings

logger = Logger()
metrics = Metrics()

REPORTED_METRICS = ("roc_auc", "pr_auc", "log_loss", "brier", "positive_rate", "threshold")


def read_metrics(s3: Any, artifact_uri: str) -> dict[str, Any]:
    """metrics.json from a model.tar.gz on S3, without downloading the rest of the archive."""
    uri = parse_s3_uri(artifact_uri)
    try:
        body = s3.get_object(Bucket=uri.bucket, Key=uri.key)["Body"]
    except s3.exceptions.NoSuchKey:
        raise InvalidModelArtifact(f"model artifact {artifact_uri} does not exist") from None
    try:
        with tarfile.open(fileobj=body, mode="r|gz") as archive:
            for member in archive:
                if member.isfile() and member.name.rsplit("/", 1)[-1] == "metrics.json":
                    handle = archive.extractfile(member)
                    if handle is None:
                        break
                    return json.loads(handle.read())
    except (tarfile.TarError, OSError, EOFError, json.JSONDecodeError) as exc:
        raise InvalidModelArtifact(f"cannot read metrics.json from {artifact_uri}: {exc}") from None
    raise InvalidModelArtifact(f"{artifact_uri} has no metrics.json")


def _score(section: Any, label: str) -> dict[str, float]:
    if not isinstance(section, dict):
        raise InvalidModelArtifact(f"metrics.json has no '{label}' section")
    roc = section.get("roc_auc")
    if not isinstance(roc, (int, float)) or isinstance(roc, bool) or not math.isfinite(roc):
        raise InvalidModelArtifact(f"metrics.json {label}.roc_auc is missing or not a number: {roc!r}")
    return {
        k: float(section[k])
        for k in REPORTED_METRICS
        if isinstance(section.get(k), (int, float)) and math.isfinite(float(section[k]))
    }


def decide(
    metrics_doc: dict[str, Any],
    champion: dict[str, Any] | None,
    *,
    min_roc_auc: float,
    max_auc_drop: float,
    champion_rows: str = "on the same rows",
) -> dict[str, Any]:
    """The decision and its reasons, as plain JSON (no AWS): the rules of the module docstring.

    `champion_rows` says in the reasons which rows the champion's scores come from; a caller that can
    only compare with scores recorded on other rows (promotion.py) says so there.
    """
    model = _score(metrics_doc.get("model"), "model")
    reasons: list[str] = []
    approved = True
    roc = model["roc_auc"]
    if roc >= min_roc_auc:
        reasons.append(f"ROC AUC {roc:.4f} meets the minimum {min_roc_auc:.4f}")
    else:
        approved = False
        reasons.append(f"ROC AUC {roc:.4f} is below the minimum {min_roc_auc:.4f}")
    champion_scores = None
    if champion is not None:
        version = champion.get("version")
        if metrics_doc.get("champion") is None:
            approved = False
            reasons.append(
                f"champion v{version} was not scored on the same held-out rows, so the model cannot be "
                "compared with it"
            )
        else:
            champion_scores = _score(metrics_doc["champion"], "champion")
            floor = champion_scores["roc_auc"] - max_auc_drop
            if roc >= floor:
                reasons.append(
                    f"ROC AUC {roc:.4f} vs champion v{version} {champion_scores['roc_auc']:.4f} "
                    f"{champion_rows} (allowed drop {max_auc_drop:.4f})"
                )
            else:
                approved = False
                reasons.append(
                    f"ROC AUC {roc:.4f} is more than {max_auc_drop:.4f} below champion v{version}'s "
                    f"{champion_scores['roc_auc']:.4f} {champion_rows}"
                )
    else:
        reasons.append("no champion yet: the model is compared with the minimum only")
    return {
        "decision": APPROVED if approved else REJECTED,
        "reasons": reasons,
        "metrics": model,
        "championMetrics": champion_scores,
        "comparedChampionVersion": champion.get("version") if champion else None,
        "target": metrics_doc.get("target"),
    }


def evaluate(event: dict[str, Any], *, settings: Settings, s3: Any) -> dict[str, Any]:
    run = event["run"]
    training = event["training"]
    doc = read_metrics(s3, training["artifactUri"])
    result = decide(
        doc, run.get("champion"), min_roc_auc=settings.min_roc_auc, max_auc_drop=settings.max_auc_drop
    )
    # FinalMetricDataList is what SageMaker parsed from the log; metrics.json is authoritative. A
    # disagreement means the two were produced by different code paths: worth a warning, not a failure.
    for metric in training.get("finalMetrics") or []:
        logged = float(metric.get("Value", 0.0))
        if metric.get("MetricName") == "roc_auc" and abs(logged - result["metrics"]["roc_auc"]) > 1e-3:
            logger.warning("roc_auc in the log differs from metrics.json", extra={"log": metric})
    return result


@instrument(logger, metrics)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = evaluate(event, settings=load_settings(), s3=aws_clients.client("s3"))
    name = "ModelsApproved" if result["decision"] == APPROVED else "ModelsRejected"
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    logger.info("model evaluated", extra={"decision": result["decision"], "reasons": result["reasons"]})
    return result

"""EvaluateModel: the metrics gate between training and the registry.

Reads `metrics.json` out of the training job's `model.tar.gz` (streamed: the archive also holds the
model, which can be large) and applies two rules:
1. the model's ROC AUC on held-out patients is at least MIN_ROC_AUC (a fixed floor);
2. when a champion exists, the job scored it on the same held-out rows and compared the two with
   DeLong's paired test (`comparison` in metrics.json: the difference model - champion and its 95%
   interval). The model is approved only when the interval's lower end is strictly above
   -MAX_AUC_DROP. With MAX_AUC_DROP 0 that means: the evaluation shows the model better than the
   champion. An identical retrain (difference 0, interval [0, 0]) keeps the champion, and so does a
   model whose gain is within the noise of a small evaluation; since every promotion then needs
   evidence of a gain on the rows both models were scored on, no tolerance is granted per run and
   none can add up over runs (the old rule, "at least the champion's minus 0.01", let ten
   promotions lose 0.1). A MAX_AUC_DROP above 0 is a non-inferiority margin, and that one does
   compound: it is there for stacks that want the comparison switched off (the test stacks use 1).
   A champion that exists but was not scored on the same rows, or a metrics.json without the
   comparison, cannot be compared fairly, so the model is rejected (the champion keeps scoring).
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
COMPARISON_FIELDS = ("roc_auc_difference", "standard_error", "confidence", "p_value")
RULE = (
    "approved when ROC AUC >= MIN_ROC_AUC and, with a champion, the lower end of the 95% DeLong interval "
    "of (model - champion) ROC AUC on the same held-out rows is > -MAX_AUC_DROP"
)


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


GATE_KEY = "gate"
# metrics.json `history.artifact` (the patient history in model.tar.gz) travels to RegisterModel inside
# `metrics` too, under this key: the version records it (history_uri, history_sha256).
HISTORY_KEY = "history"


def gate(comparison: dict[str, Any] | None, *, min_roc_auc: float, max_auc_drop: float) -> dict[str, Any]:
    """What the registry files with the version (`metrics.gate`, via RegisterModel): the rule, its
    settings and the paired comparison it read (None without a champion scored on the same rows)."""
    return {
        "rule": RULE,
        "min_roc_auc": float(min_roc_auc),
        "max_auc_drop": float(max_auc_drop),
        "comparison": comparison,
    }


def _above(margin: float) -> str:
    """The bound a difference must exceed, as the reasons write it ("0", not "-0.0000")."""
    return "0" if margin == 0 else f"{-margin:+.4f}"


def _comparison(section: Any) -> dict[str, Any]:
    """The paired comparison block of metrics.json, checked: the gate decides on its numbers."""
    if not isinstance(section, dict):
        raise InvalidModelArtifact("metrics.json has no 'comparison' section")
    interval = section.get("interval")
    bounds = list(interval) if isinstance(interval, list) else []
    values = [section.get(k) for k in COMPARISON_FIELDS] + bounds
    if len(values) != len(COMPARISON_FIELDS) + 2 or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values
    ):
        raise InvalidModelArtifact(f"metrics.json comparison is incomplete or not numeric: {section!r}")
    return {
        "method": str(section.get("method", "")),
        **{k: float(section[k]) for k in COMPARISON_FIELDS},
        "interval": [float(interval[0]), float(interval[1])],
        "rows": int(section.get("rows", 0)),
        "positives": int(section.get("positives", 0)),
    }


def history_block(metrics_doc: dict[str, Any]) -> dict[str, Any]:
    """`{HISTORY_KEY: {file, sha256, rows}}` when the model carries a patient history, else {}."""
    artifact = (metrics_doc.get("history") or {}).get("artifact")
    if not isinstance(artifact, dict) or not artifact.get("sha256"):
        return {}
    return {HISTORY_KEY: {k: artifact[k] for k in ("file", "sha256", "rows") if k in artifact}}


def decide(
    metrics_doc: dict[str, Any],
    champion: dict[str, Any] | None,
    *,
    min_roc_auc: float,
    max_auc_drop: float,
    champion_rows: str = "on the same rows",
    paired: bool = True,
) -> dict[str, Any]:
    """The decision and its reasons, as plain JSON (no AWS): the rules of the module docstring.

    `paired` False is for a caller that can only compare with scores recorded on other rows
    (promotion.py, which says so in `champion_rows`): there is no paired interval then, and the
    model must beat the recorded ROC AUC by more than -MAX_AUC_DROP (strictly, so a tie keeps the
    champion at a margin of 0).
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
    comparison = None
    if champion is not None:
        version = champion.get("version")
        if metrics_doc.get("champion") is None:
            approved = False
            reasons.append(
                f"champion v{version} was not scored on the same held-out rows, so the model cannot be "
                "compared with it"
            )
        elif not paired:
            champion_scores = _score(metrics_doc["champion"], "champion")
            difference = roc - champion_scores["roc_auc"]
            if difference > -max_auc_drop:
                reasons.append(
                    f"ROC AUC {roc:.4f} vs champion v{version} {champion_scores['roc_auc']:.4f} "
                    f"{champion_rows}: the difference {difference:+.4f} is above {_above(max_auc_drop)}"
                )
            else:
                approved = False
                reasons.append(
                    f"ROC AUC {roc:.4f} does not beat champion v{version}'s {champion_scores['roc_auc']:.4f} "
                    f"{champion_rows}: the difference {difference:+.4f} is not above {_above(max_auc_drop)}"
                )
        elif metrics_doc.get("comparison") is None:
            champion_scores = _score(metrics_doc["champion"], "champion")
            approved = False
            reasons.append(
                f"champion v{version} was scored but metrics.json holds no paired comparison with it, so "
                "the gate cannot tell whether the model is better"
            )
        else:
            champion_scores = _score(metrics_doc["champion"], "champion")
            comparison = _comparison(metrics_doc["comparison"])
            low, high = comparison["interval"]
            evidence = (
                f"ROC AUC {roc:.4f} vs champion v{version} {champion_scores['roc_auc']:.4f} {champion_rows}: "
                f"difference {comparison['roc_auc_difference']:+.4f}, "
                f"{comparison['confidence']:.0%} interval [{low:+.4f}, {high:+.4f}] "
                f"(DeLong, p = {comparison['p_value']:.3g}, {comparison['rows']} rows, "
                f"{comparison['positives']} readmitted)"
            )
            if low > -max_auc_drop:
                reasons.append(
                    f"{evidence}; its lower end is above {_above(max_auc_drop)}, so the model is better"
                )
            else:
                approved = False
                reasons.append(
                    f"{evidence}; its lower end is not above {_above(max_auc_drop)}, so the evaluation "
                    f"does not show the model better than champion v{version}, which stays"
                )
    else:
        reasons.append("no champion yet: the model is compared with the minimum only")
    return {
        "decision": APPROVED if approved else REJECTED,
        "reasons": reasons,
        # The ASL passes on only decision, reasons, metrics, championMetrics and the version: the
        # comparison and the rule travel inside `metrics` to RegisterModel, which files them apart.
        "metrics": {
            **model,
            GATE_KEY: gate(comparison, min_roc_auc=min_roc_auc, max_auc_drop=max_auc_drop),
            **history_block(metrics_doc),
        },
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

"""RecordOutcome: the run's final state in the registry, and the text of the notification.

Called twice in the workflow: by RecordOutcome on success and by RecordFailure with the caught error
and the stage that raised it. Success is where an approved version becomes champion (`promotion.py`):
only a run that trained, scored and checked drift moves the pointer. A failure marks the run FAILED,
flags the version this run registered (its `run_status`), makes sure that version is not champion
(declined, or rolled back if it had been promoted), and releases the idempotency claim so the same
input can be sent again.

Both messages, whenever the run registered a version, say where that version's report was published
(`report_uri`, filed by RegisterModel) and quote the gate's paired comparison with the champion
(DeLong's interval, `metrics.gate` in the registry): the two things a reader needs to judge the model.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote

import aws_clients
from observability import Logger, Metrics, MetricUnit, instrument
from promotion import Promotion, promote_if_still_best
from registry import VERSION_APPROVED, Registry
from s3uri import is_missing_code, parse_s3_uri
from settings import Settings, load_settings

logger = Logger()
metrics = Metrics()

SUBJECT_MAX = 100  # SNS rejects longer subjects
CAUSE_MAX = 4000
# Step Functions reports a state's TimeoutSeconds elapsing as States.Timeout without any cause.
TIMEOUT_CAUSE = "the step did not finish within its TimeoutSeconds (Step Functions gives a timeout no cause)"
DRIFT_REPORT_MAX = 1024 * 1024


def readable_cause(error: str, cause: Any) -> str:
    """The human part of a Step Functions error cause.

    Lambda errors arrive as a JSON document (errorMessage, errorType, stackTrace) and SageMaker job
    failures as the Describe* response (FailureReason); people need the message, not the envelope.
    A timeout has no cause at all, so it is said what the error means rather than that nothing was given.
    """
    if not isinstance(cause, str) or not cause:
        return f"{error}: {TIMEOUT_CAUSE}" if error == "States.Timeout" else f"{error} (no cause given)"
    try:
        doc = json.loads(cause)
    except ValueError:
        return cause[:CAUSE_MAX]
    if isinstance(doc, dict):
        for key in ("errorMessage", "FailureReason", "message", "Message"):
            if isinstance(doc.get(key), str) and doc[key]:
                return doc[key][:CAUSE_MAX]
    return cause[:CAUSE_MAX]


def _subject(text: str) -> str:
    return text if len(text) <= SUBJECT_MAX else text[: SUBJECT_MAX - 1] + "…"


def drift_summary(s3: Any, drift_uri: str) -> str:
    """One line about the drift report (docs: per-feature PSI and an overall flag) for the message.

    The report is informational: a missing, unreadable or malformed one is said so (and logged), not a
    reason to fail a run whose model and predictions are in place. Only S3's answers and the report's
    own shape are caught; anything else is a bug and fails the step into RecordFailure.
    """
    uri = parse_s3_uri(drift_uri)
    try:
        body = s3.get_object(Bucket=uri.bucket, Key=uri.key, Range=f"bytes=0-{DRIFT_REPORT_MAX - 1}")["Body"]
        raw = body.read()
    except s3.exceptions.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code") or "unknown")
        sentence = drift_read_error(code, drift_uri)
        logger.warning(
            "drift report unreadable", extra={"uri": drift_uri, "errorCode": code, "error": str(exc)}
        )
        return f"Drift: {sentence}"
    try:
        report = json.loads(raw)
        status = str(report["status"])
        drifted = ", ".join(report.get("drifted_features") or []) or "none"
        max_psi = float(report.get("max_psi", 0.0))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        logger.warning("drift report malformed", extra={"uri": drift_uri, "error": repr(exc)})
        return f"Drift: the report {drift_uri} is not a drift report ({type(exc).__name__}: {exc})"
    return f"Drift: {status} (max PSI {max_psi:.3f}; drifted features: {drifted})"


def drift_read_error(code: str, drift_uri: str) -> str:
    """What S3's error `code` on GetObject of the drift report means, as a sentence."""
    if is_missing_code(code):
        return f"the report {drift_uri} does not exist (NoSuchKey): the drift job wrote no report."
    if code in ("AccessDenied", "403"):
        # Without s3:ListBucket S3 answers a missing key with AccessDenied too, so both are named.
        return (
            f"reading the report {drift_uri} was refused (AccessDenied): the function's role lacks "
            "s3:GetObject on it, or the object is missing (S3 does not tell which to a caller without "
            "s3:ListBucket)."
        )
    return f"reading the report {drift_uri} failed with S3 error {code}."


def report_line(version_item: dict[str, Any] | None) -> str:
    """Where the version's report is: its S3 prefix and, in the commercial partition, the S3
    console page of that prefix (a link a person can click in the e-mail)."""
    report_uri = (version_item or {}).get("report_uri")
    if not report_uri:
        return "Report: not published (see the error above)."
    uri = parse_s3_uri(report_uri)
    line = f"Report: {report_uri} (report.md and the files beside it)"
    region = os.environ.get("AWS_REGION", "")
    if region and not region.startswith(("cn-", "us-gov-")):
        line += (
            f"; in the console: https://s3.console.aws.amazon.com/s3/buckets/{quote(uri.bucket)}"
            f"?region={quote(region)}&prefix={quote(uri.key, safe='/')}"
        )
    return line


def comparison_line(version_item: dict[str, Any] | None) -> str | None:
    """The gate's paired comparison with the champion as one sentence (None for a version filed
    before the gate was recorded)."""
    item = version_item or {}
    gate = (item.get("metrics") or {}).get("gate")
    if not isinstance(gate, dict):
        return None
    comparison = gate.get("comparison")
    if not isinstance(comparison, dict):
        return "Comparison with the champion: none (no champion was scored on the same rows)."
    low, high = comparison["interval"]
    margin = float(gate.get("max_auc_drop") or 0.0)
    bound = "0" if margin == 0 else f"{-margin:+.4f}"  # as the gate's reasons write it
    champion = item.get("compared_champion_version")
    return (
        f"Comparison with champion v{champion if champion is not None else '?'} (DeLong, paired, "
        f"{comparison.get('rows', '?')} rows, {comparison.get('positives', '?')} readmitted): ROC AUC "
        f"difference {float(comparison['roc_auc_difference']):+.4f}, "
        f"{float(comparison.get('confidence', 0.95)):.0%} interval [{float(low):+.4f}, {float(high):+.4f}], "
        f"p = {float(comparison['p_value']):.3g}; the gate needs the lower end above {bound}."
    )


def registered_version(registry: Registry, model_name: str | None, version: Any) -> dict[str, Any] | None:
    """The registry item of the version a run registered (None when it registered none)."""
    if version is None or not model_name:
        return None
    return registry.get_version(model_name, int(version))


def version_lines(item: dict[str, Any] | None) -> list[str]:
    """The report and comparison lines of a registered version (none without a version)."""
    if item is None:
        return []
    comparison = comparison_line(item)
    return [report_line(item), *([comparison] if comparison else [])]


# What a reader of the predictions needs to know about the rows without a score (pipelines/inference.py).
NOT_SCORED_NOTE = (
    "Encounters ending in death or hospice are not scored: their probability and prediction are empty "
    "and not_scored_reason says why (expired, hospice); the drift report counts the scored rows only."
)


# Where EnrichHistory (pipelines/enrich.py) writes its summary, under the run's drift prefix.
HISTORY_SUMMARY_KEY = "history/summary/history_summary.json"


def history_note(s3: Any, run: dict[str, Any]) -> str | None:
    """The sentence EnrichHistory left for this run (a scoring file without patient_nbr: every
    encounter scored as a first encounter), or None. A summary that cannot be read is no sentence:
    the job that wrote it succeeded, so only S3's answers and the document's shape are caught."""
    uri = parse_s3_uri(f"{run['driftOutputUri']}/{HISTORY_SUMMARY_KEY}")
    try:
        raw = s3.get_object(Bucket=uri.bucket, Key=uri.key)["Body"].read()
    except s3.exceptions.ClientError as exc:
        logger.warning("history summary unreadable", extra={"uri": str(uri), "error": str(exc)})
        return None
    try:
        message = json.loads(raw).get("message")
    except (ValueError, AttributeError) as exc:
        logger.warning("history summary malformed", extra={"uri": str(uri), "error": repr(exc)})
        return None
    return str(message) if message else None


def predictions_location(run: dict[str, Any]) -> str:
    """Where the transform wrote the predictions: `<file>.out` for one score file; for a prefix of
    parts the predictions prefix, which holds one `<part>.out` per part (each with its own header;
    readers join them in key order, one header)."""
    if run["scoreUri"].endswith("/"):
        return f"{run['predictionsOutputUri']}/"
    return f"{run['predictionsOutputUri']}/{parse_s3_uri(run['scoreUri']).name}.out"


def record_success(
    event: dict[str, Any], *, registry: Registry, s3: Any, settings: Settings
) -> dict[str, Any]:
    run = event["run"]
    evaluation = event["evaluation"]
    registration = event["registration"]
    scoring = event["scoring"]
    predictions_uri = predictions_location(run)
    drift_uri = f"{run['driftOutputUri']}/drift_report.json"
    promotion: Promotion | None = None
    if registration["status"] == VERSION_APPROVED:
        # Before the run is marked SUCCEEDED: if that write fails, RecordFailure rolls this back.
        promotion = promote_if_still_best(
            registry,
            model_name=run["modelName"],
            version=int(registration["version"]),
            evaluation=evaluation,
            min_roc_auc=settings.min_roc_auc,
            max_auc_drop=settings.max_auc_drop,
        )
    registry.record_run_succeeded(
        run["runId"],
        decision=evaluation["decision"],
        model_version=registration.get("version"),
        scored_version=scoring.get("version"),
        predictions_uri=predictions_uri,
        drift_uri=drift_uri,
    )
    version_item = registered_version(registry, run["modelName"], registration.get("version"))
    note = history_note(s3, run)
    metrics_text = f"ROC AUC {evaluation['metrics']['roc_auc']:.4f}"
    if evaluation.get("championMetrics"):
        metrics_text += (
            f" (champion v{evaluation['comparedChampionVersion']}: "
            f"{evaluation['championMetrics']['roc_auc']:.4f} on the same rows)"
        )
    if promotion is None:
        promoted, outcome = "", ""
    elif promotion.promoted:
        promoted, outcome = " and is now the champion", ""
    else:
        promoted, outcome = f" but not promoted: {promotion.reason}", ", not promoted"
    lines = [
        f"Run {run['runId']} succeeded.",
        f"Model {run['modelName']} v{registration['version']} ({run['algorithm']}) was "
        f"{registration['status']}{promoted}.",
        metrics_text,
        *version_lines(version_item),
        "Reasons:",
        *[f"  - {reason}" for reason in evaluation.get("reasons", [])],
        f"Scored {run['scoreUri']} with v{scoring['version']} ({scoring['source']}).",
        f"Predictions: {predictions_uri}"
        + (" (one <part>.out per part of the score prefix)" if predictions_uri.endswith("/") else ""),
        NOT_SCORED_NOTE,
        *([note] if note else []),
        drift_summary(s3, drift_uri),
        f"Drift report: {drift_uri}",
        f"Execution: {run.get('executionArn', '')}",
    ]
    return {
        "runId": run["runId"],
        "status": "SUCCEEDED",
        "decision": evaluation["decision"],
        "modelVersion": registration["version"],
        "promoted": bool(promotion and promotion.promoted),
        "championVersion": promotion.champion_version if promotion else None,
        "predictionsUri": predictions_uri,
        "driftReportUri": drift_uri,
        "historyNote": note,
        "reportUri": (version_item or {}).get("report_uri"),
        "subject": _subject(
            f"{run['modelName']} v{registration['version']} {registration['status'].lower()}{outcome}: "
            "run succeeded"
        ),
        "message": "\n".join(lines),
    }


def failed_stage(failure: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """`(stage, caught error)` from RecordFailure's `failure`: `{<Stage>: {Error, Cause}}`, as every
    Catch writes it (`ResultPath: $.failure.<Stage>`). The older `{stage, error}` shape is still read:
    an execution started before a deploy runs its own definition against this code."""
    if "stage" in failure or "error" in failure:
        return str(failure.get("stage") or "unknown"), failure.get("error") or {}
    if len(failure) == 1:
        [(stage, caught)] = failure.items()
        return str(stage), caught if isinstance(caught, dict) else {}
    return ("unknown" if not failure else "+".join(sorted(failure))), {}


def record_failure(event: dict[str, Any], *, registry: Registry) -> dict[str, Any]:
    run_id = event["runId"]
    stage, caught = failed_stage(event.get("failure") or {})
    error = str(caught.get("Error") or "States.Runtime")
    cause = readable_cause(error, caught.get("Cause"))
    run = registry.record_run_failed(
        run_id, execution_arn=event.get("executionArn", ""), stage=stage, error=error, cause=cause
    )
    version = run.get("model_version")
    lines = [
        f"Run {run_id} failed at {stage}: {error}.",
        cause,
        *(
            [
                f"Version {version} of {run.get('model_name')} was registered by this run "
                f"and is flagged run_status=FAILED; {run.get('promotion_reason')}."
            ]
            if version is not None
            else []
        ),
        *version_lines(registered_version(registry, run.get("model_name"), version)),
        f"Execution: {event.get('executionArn', '')}",
    ]
    return {
        "runId": run_id,
        "status": "FAILED",
        "stage": stage,
        "error": error,
        "cause": cause,
        "subject": _subject(f"{run.get('model_name') or 'readmission'} run failed at {stage}: {error}"),
        "message": "\n".join(lines),
    }


@instrument(logger, metrics)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = load_settings()
    registry = Registry(settings.registry_table, aws_clients.client("dynamodb"))
    if event.get("outcome") == "FAILED":
        result = record_failure(event, registry=registry)
        metrics.add_metric(name="RunsFailed", unit=MetricUnit.Count, value=1)
        logger.warning("run failed", extra={k: result[k] for k in ("runId", "stage", "error", "cause")})
    else:
        result = record_success(event, registry=registry, s3=aws_clients.client("s3"), settings=settings)
        metrics.add_metric(name="RunsSucceeded", unit=MetricUnit.Count, value=1)
        if result["promoted"]:
            metrics.add_metric(name="ChampionsPromoted", unit=MetricUnit.Count, value=1)
        logger.info("run succeeded", extra={"runId": result["runId"], "decision": result["decision"]})
    return result

"""What a finished run produced, for people (`make demo`) and for programs (`run --json`).

Registry facts come through the deployed API's handler (`GET /executions/{id}`, `GET /models`),
the same code a client of the real stack calls, never from the table's keys; files come out of
the local bucket into `<state-dir>/artifacts/<run>/` so the user can open them.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from emulator.archives import extract_archive
from emulator.progress import readable_cause, traceback_log
from emulator.sagemaker import split_s3

if TYPE_CHECKING:
    from emulator.api import ApiGateway
    from emulator.runtime import LocalRuntime


def _snake(text: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in text).lstrip("_")


def models(runtime: LocalRuntime) -> list[dict[str, Any]]:
    """Every registered version via `GET /models`, keys in snake_case, `champion` as a boolean."""
    return registry_rows(runtime.api)


def registry_rows(api: ApiGateway) -> list[dict[str, Any]]:
    """`models` through any local API (the runtime's, or `registry_view`'s over the saved registry)."""
    response = api.request("GET", "/models")
    if response.status != 200:
        raise RuntimeError(f"GET /models answered {response.status}: {response.body}")
    out = []
    for item in response.json().get("models", []):
        row = {_snake(k): v for k, v in item.items() if k != "isChampion"}
        row["champion"] = bool(item.get("isChampion"))
        out.append(row)
    return out


SHOWN_METRICS = ("roc_auc", "pr_auc", "log_loss", "brier")


def model_metrics(metrics: dict[str, Any] | None) -> dict[str, Any]:
    """A version's own figures: the registry keeps metrics.json's blocks, "model" (this version) and
    "champion" (the champion it was compared with); older records hold the figures flat."""
    metrics = metrics or {}
    return metrics["model"] if isinstance(metrics.get("model"), dict) else metrics


def model_line(row: dict[str, Any]) -> str:
    """One row of `models` as text: champion star, name, version, status, the version's figures and
    where its report was published (`reports/<model>/v<N>/`, when it was)."""
    star = "*" if row.get("champion") else " "
    figures = model_metrics(row.get("metrics"))
    shown = "  ".join(f"{name}={_figure(figures[name])}" for name in SHOWN_METRICS if name in figures)
    head = f"{star} {row.get('model_name')} v{row.get('version')}  {row.get('status')}"
    report = f"  report {row['report_uri']}" if row.get("report_uri") else ""
    return f"{head}  {shown or 'no metrics'}{report}"


def _figure(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def _version(value: Any) -> int | None:
    """Versions arrive as numbers or numeric strings depending on the route: compare them as ints."""
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


# one S3 client per summary is passed around: creating a client costs more than the copies it makes
def _get(s3: Any, uri: str) -> bytes:
    bucket, key = split_s3(uri)
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _list(s3: Any, uri: str) -> list[str]:
    bucket, prefix = split_s3(uri)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [f"s3://{bucket}/{o['Key']}" for page in pages for o in page.get("Contents", [])]


def _copy_out(s3: Any, uri: str | None, target_dir: Path, *, suffix: str | None = None) -> list[Path]:
    """Copy one object, or every object under a prefix (optionally only names ending in suffix)."""
    if not uri:
        return []
    target_dir.mkdir(parents=True, exist_ok=True)
    copied = []
    for item in _list(s3, uri):
        if suffix and not item.endswith(suffix):
            continue
        path = target_dir / item.rsplit("/", 1)[1]
        path.write_bytes(_get(s3, item))
        copied.append(path)
    return copied


def summarize(runtime: LocalRuntime, record: dict[str, Any]) -> dict[str, Any]:
    """The run's outcome document (see `python -m emulator run --help` for the fields)."""
    name = record["name"]
    s3 = boto3.client("s3")
    status = "SUCCEEDED" if record["status"] == "SUCCEEDED" else "FAILED"
    summary: dict[str, Any] = {
        "status": status,
        "execution": name,
        "execution_status": record["status"],
        "decision": None,
        "model_name": None,
        "model_version": None,
        "champion_version": None,
        "scored_version": None,
        "metrics": {},
        "predictions": None,
        "drift": None,
        "model_report": None,
        "model_report_files": [],
        "model_report_uri": None,
        "drift_report": None,
        "states": record.get("states", []),
    }
    if status == "FAILED":
        summary["error"] = record.get("error")
        summary["cause"] = record.get("cause")
    if runtime.progress.trace_dir is not None:
        log = traceback_log(runtime.progress.trace_dir, name)
        summary["traceback_log"] = str(log) if log.exists() else None
    described = runtime.api.request("GET", f"/executions/{name}")
    run = (described.json() or {}).get("run") if described.status == 200 else None
    run = run or {}
    summary["model_name"] = run.get("modelName")
    summary["model_version"] = _version(run.get("modelVersion"))
    summary["scored_version"] = _version(run.get("scoredVersion"))
    try:
        versions = models(runtime) if summary["model_name"] else []
    except RuntimeError:  # a stack without GET /models: the run's facts stop at the execution
        versions = []
    for version in versions:
        if version.get("model_name") != summary["model_name"]:
            continue
        if version.get("champion"):
            summary["champion_version"] = _version(version.get("version"))
        if _version(version.get("version")) == summary["model_version"]:
            # the registry's status is the gate's decision in capitals (functions/decision.py)
            status = version.get("status")
            summary["decision"] = status.lower() if isinstance(status, str) else None
            metrics = version.get("metrics") or {}
            summary["metrics"] = model_metrics(metrics)
            if isinstance(metrics.get("champion"), dict):
                summary["champion_metrics"] = metrics["champion"]
            summary["decision_reasons"] = version.get("decision_reasons") or []
            summary.update(
                _model_report(runtime, s3, name, version.get("artifact_uri"), version.get("report_uri"))
            )
    artifacts = runtime.state.artifacts_dir(name)
    predictions = _copy_out(s3, run.get("predictionsUri"), artifacts / "predictions", suffix=".out")
    if predictions:
        csv_path = artifacts / "predictions.csv"
        join_predictions(predictions, csv_path)
        summary["predictions"] = str(csv_path)
        summary["prediction_parts"] = len(predictions)
        summary["prediction_counts"] = prediction_counts(csv_path)
    drift_files = _copy_out(s3, run.get("driftReportUri"), artifacts / "drift")
    for path in drift_files:
        if path.name == "drift_report.json":
            report = json.loads(path.read_text())
            summary["drift"] = {k: v for k, v in report.items() if not isinstance(v, (list, dict))} or report
        if path.name == "drift_report.md":
            summary["drift_report"] = str(path)
    if summary["drift_report"] is None and drift_files:
        summary["drift_report"] = str(drift_files[0])
    summary["history_note"] = _history_note(s3, run.get("driftReportUri"))
    return summary


def _history_note(s3: Any, drift_uri: str | None) -> str | None:
    """EnrichHistory's sentence (a scoring file without patient_nbr), beside the drift report."""
    if not drift_uri or not drift_uri.endswith("/drift_report.json"):
        return None
    uri = drift_uri[: -len("drift_report.json")] + "history/summary/history_summary.json"
    if not _list(s3, uri):
        return None
    message = json.loads(_get(s3, uri)).get("message")
    return str(message) if message else None


def prediction_counts(path: Path) -> dict[str, Any]:
    """Rows of a joined predictions file: `{"rows", "scored", "not_scored": {reason: n}}`.

    A row is not scored when its `not_scored_reason` (the last field of
    `encounter_id,probability,prediction,not_scored_reason`) is set: death or hospice encounters,
    which the model's target excludes. A file of the earlier three-column shape counts every row as
    scored. The header line is not a row.
    """
    rows = 0
    not_scored: dict[str, int] = {}
    with open(path, newline="", encoding="utf-8-sig") as handle:
        for fields in csv.reader(handle):
            if not fields or fields[:3] == ["encounter_id", "probability", "prediction"]:
                continue
            rows += 1
            reason = fields[3] if len(fields) > 3 else ""
            if reason:
                not_scored[reason] = not_scored.get(reason, 0) + 1
    return {
        "rows": rows,
        "scored": rows - sum(not_scored.values()),
        "not_scored": dict(sorted(not_scored.items())),
    }


def counts_line(counts: dict[str, Any]) -> str:
    """`"97,101 scored, 2,442 not scored: 1,642 expired, 800 hospice"` (or `"N scored"` alone)."""
    line = f"{counts['scored']:,} scored"
    not_scored = counts.get("not_scored") or {}
    if not_scored:
        reasons = ", ".join(f"{n:,} {reason}" for reason, n in not_scored.items())
        line += f", {sum(not_scored.values()):,} not scored: {reasons}"
    return line


def join_predictions(parts: list[Path], target: Path) -> None:
    """The transform's `.out` files (one per score file or part, in key order) as one CSV: each part
    starts with the `encounter_id,probability,prediction,not_scored_reason` header, which is written
    once, at the top."""
    header: bytes | None = None
    with open(target, "wb") as out:
        for part in parts:
            data = part.read_bytes()
            first, _, rest = data.partition(b"\n")
            if header is None:
                header = first
                out.write(data)
            else:
                out.write(rest if first == header else data)
            if data and not data.endswith(b"\n"):
                out.write(b"\n")


def _model_report(
    runtime: LocalRuntime, s3: Any, run_id: str, artifact_uri: str | None, report_uri: str | None = None
) -> dict[str, Any]:
    """The version's report, copied out for the user: from where RegisterModel published it
    (`report_uri`, `reports/<model>/v<N>/`, as a person reads it on AWS), else (a version registered
    before reports were published, or whose publication failed) unpacked from `output.tar.gz`, which
    SageMaker writes beside `model.tar.gz`."""
    target = runtime.state.artifacts_dir(run_id) / "model_report"
    if report_uri:
        _, prefix = split_s3(report_uri)
        for uri in _list(s3, report_uri):
            relative = split_s3(uri)[1][len(prefix) :]
            if not relative or relative.startswith("/") or ".." in relative.split("/"):
                continue  # RegisterModel writes no such key; a copy out never leaves the target
            path = target / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_get(s3, uri))
        files = sorted(str(p) for p in target.rglob("*") if p.is_file())
        report = target / "report.md"
        return {
            "model_report": str(report) if report.exists() else None,
            "model_report_files": files,
            "model_report_uri": report_uri,
        }
    if not artifact_uri or not artifact_uri.endswith("model.tar.gz"):
        return {}
    output_uri = artifact_uri[: -len("model.tar.gz")] + "output.tar.gz"
    try:
        data = _get(s3, output_uri)
    except Exception:  # a model without a report: nothing to show, not an error of the run
        return {}
    target.mkdir(parents=True, exist_ok=True)
    extract_archive(target, fileobj=io.BytesIO(data))
    files = sorted(str(p) for p in target.rglob("*") if p.is_file())
    report = target / "report.md"
    return {"model_report": str(report) if report.exists() else None, "model_report_files": files}


def render(summary: dict[str, Any]) -> str:
    """The readable summary `make demo` ends with."""
    lines = [f"Run {summary['execution']}: {summary['status']}"]
    if summary.get("error"):
        cause, _trace = readable_cause(str(summary.get("cause") or ""), summary["error"])
        lines.append(f"  error:      {summary['error']}: {cause[:400]}")
    if summary.get("traceback_log"):
        lines.append(f"  tracebacks: {summary['traceback_log']}")
    if summary.get("model_name"):
        version = summary.get("model_version")
        line = f"  model:      {summary['model_name']} "
        line += f"version {version}" if version is not None else "(no version registered)"
        if summary.get("decision"):
            line += f" -> {summary['decision']}"
        champion = summary.get("champion_version")
        line += f" (champion: version {champion})" if champion is not None else " (no champion)"
        lines.append(line)
    for reason in summary.get("decision_reasons") or []:
        lines.append(f"              {reason}")
    metrics = summary.get("metrics") or {}
    if metrics:
        shown = ", ".join(
            f"{k}={v:.4f}" if isinstance(v, (int, float)) else f"{k}={v}"
            for k, v in metrics.items()
            if not isinstance(v, (dict, list))
        )
        lines.append(f"  metrics:    {shown}")
    if summary.get("model_report"):
        lines.append(f"  report:     {summary['model_report']}")
    if summary.get("model_report_uri"):
        lines.append(f"              published at {summary['model_report_uri']}")
    if summary.get("predictions"):
        scored = summary.get("scored_version")
        if scored is None:
            by = ""
        elif scored == summary.get("model_version"):
            by = f" (scored by this run's model, version {scored})"
        else:
            by = f" (scored by the champion, version {scored}: the report above is this run's rejected model)"
        lines.append(f"  predictions:{' '}{summary['predictions']}{by}")
        if summary.get("prediction_counts"):
            lines.append(f"              {counts_line(summary['prediction_counts'])}")
    if summary.get("history_note"):
        lines.append(f"  history:    {summary['history_note']}")
    if summary.get("drift") is not None:
        lines.append(f"  drift:      {json.dumps(summary['drift'])[:300]}")
    if summary.get("drift_report"):
        lines.append(f"  drift report: {summary['drift_report']}")
    timings = [s for s in summary.get("states", []) if s.get("seconds") is not None]
    if timings:
        lines.append(
            "  states:     "
            + ", ".join(f"{s['state']} {s['seconds']:.2f}s" for s in timings if s["seconds"] >= 0.05)
        )
    return "\n".join(lines)

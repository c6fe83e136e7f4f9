"""The text RecordOutcome sends people: causes, subjects, the report and comparison lines, the stage.

Written for the mutation run (docs/mutation.md): the handler tests check that these lines appear;
these pin what they say at their edges (a cause in each envelope, a subject at SNS's limit, a report
link outside the commercial partition, a gate without a champion, the older failure shape), the
parts a reader of the notification would notice when wrong.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

import record_outcome

DRIFT_URI = "s3://readmission-local-artifactbucket/runs/r-1/drift/drift_report.json"


@pytest.mark.parametrize(
    ("error", "cause", "expected"),
    [
        ("States.Timeout", None, f"States.Timeout: {record_outcome.TIMEOUT_CAUSE}"),
        ("States.Timeout", "", f"States.Timeout: {record_outcome.TIMEOUT_CAUSE}"),
        ("States.TaskFailed", None, "States.TaskFailed (no cause given)"),
        ("States.TaskFailed", {"errorMessage": "not a string"}, "States.TaskFailed (no cause given)"),
        ("X", json.dumps({"errorMessage": "bad input", "errorType": "InvalidInput"}), "bad input"),
        (
            "X",
            json.dumps({"FailureReason": "AlgorithmError: out of memory"}),
            "AlgorithmError: out of memory",
        ),
        ("X", json.dumps({"message": "from a service"}), "from a service"),
        ("X", json.dumps({"Message": "capitalised"}), "capitalised"),
        # the first key with a non-empty string wins; an empty or non-string one is skipped
        ("X", json.dumps({"errorMessage": "", "FailureReason": 3, "message": "m"}), "m"),
        ("X", json.dumps({"other": "shape"}), json.dumps({"other": "shape"})),
        ("X", json.dumps(["a", "list"]), json.dumps(["a", "list"])),
        ("X", "plain text cause", "plain text cause"),
    ],
)
def test_the_readable_cause_of_each_envelope(error: str, cause: Any, expected: str) -> None:
    assert record_outcome.readable_cause(error, cause) == expected


@pytest.mark.parametrize(
    "cause",
    [
        "x" * 5000,
        json.dumps({"errorMessage": "y" * 5000}),
        json.dumps({"unknown": "z" * 5000}),
    ],
)
def test_a_long_cause_is_cut_to_the_limit(cause: str) -> None:
    text = record_outcome.readable_cause("X", cause)

    assert len(text) == record_outcome.CAUSE_MAX == 4000
    assert text[-1] in "xyz" and (text in cause)


def test_a_subject_at_snss_limit_is_kept_and_a_longer_one_is_cut_with_an_ellipsis() -> None:
    assert record_outcome._subject("a" * 100) == "a" * 100
    assert record_outcome._subject("b" * 101) == "b" * 99 + "…"


def test_a_missing_report_is_said_to_be_missing() -> None:
    assert record_outcome.report_line(None) == "Report: not published (see the error above)."
    assert record_outcome.report_line({"report_uri": ""}) == "Report: not published (see the error above)."


def test_the_report_line_links_the_console_page_of_the_prefix_quoted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")

    line = record_outcome.report_line({"report_uri": "s3://my bucket/reports/m x/v1/"})

    assert line == (
        "Report: s3://my bucket/reports/m x/v1/ (report.md and the files beside it); in the console: "
        "https://s3.console.aws.amazon.com/s3/buckets/my%20bucket?region=eu-west-1&prefix=reports/m%20x/v1/"
    )


@pytest.mark.parametrize("region", ["cn-north-1", "us-gov-west-1", ""])
def test_no_console_link_outside_the_commercial_partition(
    monkeypatch: pytest.MonkeyPatch, region: str
) -> None:
    monkeypatch.setenv("AWS_REGION", region)

    line = record_outcome.report_line({"report_uri": "s3://b/reports/m/v1/"})

    assert line == "Report: s3://b/reports/m/v1/ (report.md and the files beside it)"


def test_no_console_link_without_a_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)

    assert record_outcome.report_line({"report_uri": "s3://b/r/"}) == (
        "Report: s3://b/r/ (report.md and the files beside it)"
    )


COMPARISON = {
    "interval": [-0.002, 0.03],
    "rows": 2000,
    "positives": 220,
    "roc_auc_difference": 0.014,
    "confidence": 0.9,
    "p_value": 0.0123,
}


def test_the_comparison_line_quotes_the_gates_interval_and_its_margin() -> None:
    item = {
        "compared_champion_version": 3,
        "metrics": {"gate": {"max_auc_drop": 0.01, "comparison": COMPARISON}},
    }

    assert record_outcome.comparison_line(item) == (
        "Comparison with champion v3 (DeLong, paired, 2000 rows, 220 readmitted): ROC AUC difference "
        "+0.0140, 90% interval [-0.0020, +0.0300], p = 0.0123; the gate needs the lower end above -0.0100."
    )


def test_the_comparison_line_fills_what_an_older_version_did_not_record() -> None:
    comparison = {"interval": [0.001, 0.02], "roc_auc_difference": 0.01, "p_value": 0.5}
    item = {"compared_champion_version": 0, "metrics": {"gate": {"comparison": comparison}}}

    assert record_outcome.comparison_line(item) == (
        "Comparison with champion v0 (DeLong, paired, ? rows, ? readmitted): ROC AUC difference +0.0100, "
        "95% interval [+0.0010, +0.0200], p = 0.5; the gate needs the lower end above 0."
    )


def test_the_comparison_line_without_a_compared_champion_says_which_is_unknown() -> None:
    item = {"metrics": {"gate": {"max_auc_drop": 0, "comparison": COMPARISON}}}

    assert record_outcome.comparison_line(item).startswith(
        "Comparison with champion v? (DeLong, paired, 2000"
    )


def test_a_gate_without_a_champion_and_a_version_without_a_gate() -> None:
    no_champion = {"metrics": {"gate": {"comparison": None}}}

    assert record_outcome.comparison_line(no_champion) == (
        "Comparison with the champion: none (no champion was scored on the same rows)."
    )
    assert record_outcome.comparison_line({"metrics": {"model": {}}}) is None
    assert record_outcome.comparison_line(None) is None


def test_the_version_lines_are_the_report_then_the_comparison(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    item = {"report_uri": "s3://b/r/", "metrics": {"gate": {"comparison": None}}}

    assert record_outcome.version_lines(None) == []
    assert record_outcome.version_lines({"report_uri": "s3://b/r/"}) == [
        "Report: s3://b/r/ (report.md and the files beside it)"
    ]
    assert record_outcome.version_lines(item) == [
        "Report: s3://b/r/ (report.md and the files beside it)",
        "Comparison with the champion: none (no champion was scored on the same rows).",
    ]


class Versions:
    """A registry that answers get_version and records what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, int]] = []

    def get_version(self, model_name: str, version: int) -> dict[str, Any]:
        self.asked.append((model_name, version))
        return {"model_name": model_name, "version": version}


def test_the_registered_version_is_read_by_number_and_only_when_there_is_one() -> None:
    registry = Versions()

    assert record_outcome.registered_version(registry, "m", "2") == {"model_name": "m", "version": 2}  # type: ignore[arg-type]
    assert record_outcome.registered_version(registry, "m", None) is None  # type: ignore[arg-type]
    assert record_outcome.registered_version(registry, "", 2) is None  # type: ignore[arg-type]
    assert record_outcome.registered_version(registry, None, 2) is None  # type: ignore[arg-type]
    assert registry.asked == [("m", 2)]


@pytest.mark.parametrize(
    ("stage", "expected"),
    [
        ({"stage": "TrainModel", "error": {"Error": "E"}}, ("TrainModel", {"Error": "E"})),
        ({"error": {"Error": "E"}}, ("unknown", {"Error": "E"})),
        ({"stage": "TrainModel"}, ("TrainModel", {})),
        ({"stage": "", "error": None}, ("unknown", {})),
        ({"BatchTransform": {"Error": "States.Timeout"}}, ("BatchTransform", {"Error": "States.Timeout"})),
        ({"BatchTransform": "not an object"}, ("BatchTransform", {})),
        ({"B": {"Error": "E"}, "A": {"Error": "E"}}, ("A+B", {})),
        ({}, ("unknown", {})),
    ],
)
def test_the_failed_stage_of_each_failure_shape(stage: dict[str, Any], expected: tuple[str, Any]) -> None:
    assert record_outcome.failed_stage(stage) == expected


def test_the_predictions_of_a_file_and_of_a_prefix_of_parts() -> None:
    run = {"predictionsOutputUri": "s3://b/runs/r/predictions", "scoreUri": "s3://b/scoring/a/enc.csv.gz"}

    assert record_outcome.predictions_location(run) == "s3://b/runs/r/predictions/enc.csv.gz.out"
    assert record_outcome.predictions_location({**run, "scoreUri": "s3://b/scoring/a/"}) == (
        "s3://b/runs/r/predictions/"
    )


@pytest.mark.parametrize("code", ["NoSuchKey", "404"])
def test_a_missing_drift_report_is_said_to_be_missing(code: str) -> None:
    assert record_outcome.drift_read_error(code, DRIFT_URI) == (
        f"the report {DRIFT_URI} does not exist (NoSuchKey): the drift job wrote no report."
    )


def test_a_403_on_the_drift_report_is_read_as_access_denied() -> None:
    assert record_outcome.drift_read_error("403", DRIFT_URI).startswith(
        f"reading the report {DRIFT_URI} was refused (AccessDenied): the function's role lacks s3:GetObject"
    )


class DriftReport:
    """An S3 client holding one drift report; records the GetObject arguments."""

    class exceptions:  # the boto3 client attribute it stands in for
        ClientError = type("ClientError", (Exception,), {})

    def __init__(self, report: dict[str, Any]) -> None:
        self.body = json.dumps(report).encode()
        self.calls: list[dict[str, Any]] = []

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"Body": io.BytesIO(self.body)}


def test_the_drift_line_quotes_status_psi_and_features_reading_a_bounded_range() -> None:
    s3 = DriftReport({"status": "drift", "max_psi": 0.31234, "drifted_features": ["age", "diag_1"]})

    line = record_outcome.drift_summary(s3, DRIFT_URI)

    assert line == "Drift: drift (max PSI 0.312; drifted features: age, diag_1)"
    assert s3.calls == [
        {
            "Bucket": "readmission-local-artifactbucket",
            "Key": "runs/r-1/drift/drift_report.json",
            "Range": "bytes=0-1048575",
        }
    ]


def test_a_drift_report_without_features_or_psi_says_none_and_zero() -> None:
    line = record_outcome.drift_summary(DriftReport({"status": "ok", "drifted_features": []}), DRIFT_URI)

    assert line == "Drift: ok (max PSI 0.000; drifted features: none)"


class OutcomeRegistry:
    """What record_success and record_failure ask of the registry, recorded; one version on file."""

    def __init__(self, champion: Any = None, failed_run: dict[str, Any] | None = None) -> None:
        self.champion = champion
        self.failed_run = failed_run or {}
        self.calls: list[tuple[str, Any]] = []

    def promote(self, model_name: str, version: int, *, expected_champion: Any, reason: str) -> bool:
        self.calls.append(("promote", (model_name, version, expected_champion)))
        return True

    def get_champion(self, model_name: str) -> Any:
        return self.champion

    def decline(self, model_name: str, version: int, *, reason: str) -> None:
        self.calls.append(("decline", (model_name, version, reason)))

    def record_run_succeeded(self, run_id: str, **fields: Any) -> None:
        self.calls.append(("record_run_succeeded", (run_id, fields)))

    def record_run_failed(self, run_id: str, **fields: Any) -> dict[str, Any]:
        self.calls.append(("record_run_failed", (run_id, fields)))
        return self.failed_run

    def get_version(self, model_name: str, version: int) -> dict[str, Any]:
        self.calls.append(("get_version", (model_name, version)))
        return {"model_name": model_name, "version": version, "report_uri": "s3://b/reports/m/v1/"}


def success_event(status: str = "APPROVED", decision: str = "approved") -> dict[str, Any]:
    return {
        "run": {
            "runId": "r-1",
            "modelName": "m",
            "algorithm": "HistGradientBoosting",
            "scoreUri": "s3://b/scoring/enc.csv",
            "predictionsOutputUri": "s3://b/runs/r-1/predictions",
            "driftOutputUri": "s3://b/runs/r-1/drift",
            "executionArn": "arn:aws:states:us-east-1:1:execution:pipe:r-1",
        },
        "evaluation": {
            "decision": decision,
            "reasons": ["first reason", "second reason"],
            "metrics": {"roc_auc": 0.71234},
            "championMetrics": {"roc_auc": 0.65},
            "comparedChampionVersion": 2,
        },
        "registration": {"version": 3, "status": status},
        "scoring": {"source": "new model" if status == "APPROVED" else "champion", "version": 3},
    }


SETTINGS_FOR_OUTCOME = type("S", (), {"min_roc_auc": 0.6, "max_auc_drop": 0.01})()


def test_a_success_promotes_records_the_run_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    registry = OutcomeRegistry()
    s3 = DriftReport({"status": "ok", "max_psi": 0.05, "drifted_features": []})

    result = record_outcome.record_success(
        success_event(),
        registry=registry,  # type: ignore[arg-type]
        s3=s3,
        settings=SETTINGS_FOR_OUTCOME,  # type: ignore[arg-type]
    )

    assert registry.calls[0] == ("promote", ("m", 3, 2))
    assert registry.calls[1] == (
        "record_run_succeeded",
        (
            "r-1",
            {
                "decision": "approved",
                "model_version": 3,
                "scored_version": 3,
                "predictions_uri": "s3://b/runs/r-1/predictions/enc.csv.out",
                "drift_uri": "s3://b/runs/r-1/drift/drift_report.json",
            },
        ),
    )
    assert result == {
        "runId": "r-1",
        "status": "SUCCEEDED",
        "decision": "approved",
        "modelVersion": 3,
        "promoted": True,
        "championVersion": 3,
        "predictionsUri": "s3://b/runs/r-1/predictions/enc.csv.out",
        "driftReportUri": "s3://b/runs/r-1/drift/drift_report.json",
        "reportUri": "s3://b/reports/m/v1/",
        "historyNote": None,  # the scoring file had patient_nbr: its history was used, nothing to say
        "subject": "m v3 approved: run succeeded",
        "message": "\n".join(
            [
                "Run r-1 succeeded.",
                "Model m v3 (HistGradientBoosting) was APPROVED and is now the champion.",
                "ROC AUC 0.7123 (champion v2: 0.6500 on the same rows)",
                "Report: s3://b/reports/m/v1/ (report.md and the files beside it)",
                "Reasons:",
                "  - first reason",
                "  - second reason",
                "Scored s3://b/scoring/enc.csv with v3 (new model).",
                "Predictions: s3://b/runs/r-1/predictions/enc.csv.out",
                record_outcome.NOT_SCORED_NOTE,
                "Drift: ok (max PSI 0.050; drifted features: none)",
                "Drift report: s3://b/runs/r-1/drift/drift_report.json",
                "Execution: arn:aws:states:us-east-1:1:execution:pipe:r-1",
            ]
        ),
    }


def test_a_rejected_run_succeeds_without_a_promotion_or_a_champion_line() -> None:
    registry = OutcomeRegistry()
    event = success_event(status="REJECTED", decision="rejected")
    event["evaluation"]["championMetrics"] = None

    result = record_outcome.record_success(
        event,
        registry=registry,  # type: ignore[arg-type]
        s3=DriftReport({"status": "ok"}),
        settings=SETTINGS_FOR_OUTCOME,  # type: ignore[arg-type]
    )

    assert [name for name, _ in registry.calls] == ["record_run_succeeded", "get_version"]
    assert (result["promoted"], result["championVersion"]) == (False, None)
    assert result["subject"] == "m v3 rejected: run succeeded"
    lines = result["message"].splitlines()
    assert lines[1] == "Model m v3 (HistGradientBoosting) was REJECTED."
    assert lines[2] == "ROC AUC 0.7123"
    assert "Scored s3://b/scoring/enc.csv with v3 (champion)." in lines


def test_an_approved_run_the_champion_outran_says_not_promoted_in_subject_and_message() -> None:
    from registry import Champion

    class Outran(OutcomeRegistry):
        def promote(self, model_name: str, version: int, *, expected_champion: Any, reason: str) -> bool:
            return False

    registry = Outran(champion=Champion(5, "s3://b/v5.tar.gz", {"model": {"roc_auc": 0.9}}))

    result = record_outcome.record_success(
        success_event(),
        registry=registry,  # type: ignore[arg-type]
        s3=DriftReport({"status": "ok"}),
        settings=SETTINGS_FOR_OUTCOME,  # type: ignore[arg-type]
    )

    assert (result["promoted"], result["championVersion"]) == (False, 5)
    assert result["subject"] == "m v3 approved, not promoted: run succeeded"
    assert (
        result["message"]
        .splitlines()[1]
        .startswith("Model m v3 (HistGradientBoosting) was APPROVED but not promoted: champion v5 is better")
    )


def test_a_failure_is_recorded_with_its_stage_error_cause_and_execution() -> None:
    registry = OutcomeRegistry(
        failed_run={"model_name": "m", "model_version": 3, "promotion_reason": "declined"}
    )
    event = {
        "runId": "r-1",
        "executionArn": "arn:aws:states:us-east-1:1:execution:pipe:r-1",
        "failure": {
            "TrainModel": {"Error": "SageMaker.AmazonSageMakerException", "Cause": '{"FailureReason": "oom"}'}
        },
    }

    result = record_outcome.record_failure(event, registry=registry)  # type: ignore[arg-type]

    assert registry.calls[0] == (
        "record_run_failed",
        (
            "r-1",
            {
                "execution_arn": "arn:aws:states:us-east-1:1:execution:pipe:r-1",
                "stage": "TrainModel",
                "error": "SageMaker.AmazonSageMakerException",
                "cause": "oom",
            },
        ),
    )
    assert registry.calls[1] == ("get_version", ("m", 3))
    assert result["subject"] == "m run failed at TrainModel: SageMaker.AmazonSageMakerException"
    assert (result["runId"], result["status"], result["stage"], result["cause"]) == (
        "r-1",
        "FAILED",
        "TrainModel",
        "oom",
    )
    assert result["message"].splitlines()[:3] == [
        "Run r-1 failed at TrainModel: SageMaker.AmazonSageMakerException.",
        "oom",
        "Version 3 of m was registered by this run and is flagged run_status=FAILED; declined.",
    ]
    assert result["message"].splitlines()[-1] == "Execution: arn:aws:states:us-east-1:1:execution:pipe:r-1"


def test_a_failure_before_registration_without_an_error_name_is_a_runtime_error() -> None:
    registry = OutcomeRegistry()

    result = record_outcome.record_failure({"runId": "r-1", "failure": {"PrepareRun": {}}}, registry=registry)  # type: ignore[arg-type]

    assert registry.calls == [
        (
            "record_run_failed",
            (
                "r-1",
                {
                    "execution_arn": "",
                    "stage": "PrepareRun",
                    "error": "States.Runtime",
                    "cause": "States.Runtime (no cause given)",
                },
            ),
        )
    ]
    assert result["error"] == "States.Runtime"
    assert result["subject"] == "readmission run failed at PrepareRun: States.Runtime"
    assert result["message"] == "\n".join(
        ["Run r-1 failed at PrepareRun: States.Runtime.", "States.Runtime (no cause given)", "Execution: "]
    )

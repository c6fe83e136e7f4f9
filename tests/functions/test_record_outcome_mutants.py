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

"""`python -m emulator models` and the run summary say where a version's report was published."""

from __future__ import annotations

from emulator.summary import model_line, render

ROW = {
    "model_name": "medication-adherence-model",
    "version": 3,
    "status": "APPROVED",
    "champion": False,
    "metrics": {"model": {"roc_auc": 0.67}},
}
REPORT = "s3://readmission-local-artifactbucket/reports/medication-adherence-model/v3/"


def test_the_models_line_ends_with_the_published_report() -> None:
    assert model_line({**ROW, "report_uri": REPORT}) == (
        f"  medication-adherence-model v3  APPROVED  roc_auc=0.6700  report {REPORT}"
    )


def test_a_version_without_a_published_report_shows_none() -> None:
    assert "report" not in model_line({**ROW, "report_uri": None})


def test_the_run_summary_names_the_local_copy_and_where_it_was_published() -> None:
    text = render(
        {
            "execution": "run-1",
            "status": "SUCCEEDED",
            "model_report": "/state/artifacts/run-1/model_report/report.md",
            "model_report_uri": REPORT,
            "states": [],
        }
    )

    assert "  report:     /state/artifacts/run-1/model_report/report.md\n" in text
    assert f"              published at {REPORT}" in text

"""The console's pages in Chromium, on the local API: the flows issue 13 names, in one session.

A run's wait is a condition (its status on the page), with a generous ceiling; nothing asserts a time.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

RUN_SECONDS = 240_000  # ceiling of a condition wait on a 3,000-row run (ms): a stuck run fails here


def start_run(
    page: Any, dataset: str, model_name: str = "medication-adherence-model", score_file: Path | None = None
) -> str:
    """Fill and submit the form; returns the run page's execution name."""
    page.goto("/#/start")
    choice = page.locator("#datasetUri option").filter(has_text=re.compile(rf"^{re.escape(dataset)} "))
    page.get_by_label("Dataset", exact=True).select_option(choice.get_attribute("value"))
    page.get_by_label("Model name").fill(model_name)
    page.get_by_label("Algorithm").select_option("HistGradientBoosting")
    if score_file is not None:
        page.locator("#scoreFile").set_input_files(str(score_file))
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url(re.compile(r"#/runs/.+"))
    return page.url.rsplit("/", 1)[1]


def test_a_bad_form_value_is_answered_next_to_its_field(page: Any, shots: Any) -> None:
    page.goto("/#/start")
    page.get_by_label("Model name").fill("not a valid name!")
    page.get_by_label("Training instance type").fill("ml.t2.nano")
    page.get_by_role("button", name="Start training").click()
    expect(page.locator("#modelName-error")).not_to_be_empty()
    expect(page.locator("#instanceType-error")).not_to_be_empty()
    expect(page.get_by_label("Model name")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#algorithm-error")).to_be_empty()
    assert "/start" in page.url  # nothing started: the form stays
    shots(page, "start-form-field-errors")


def test_a_run_started_from_the_form_is_drawn_to_the_end_then_its_version_shows_its_plots(
    page: Any, shots: Any, files: dict[str, Path]
) -> None:
    name = start_run(page, "slice.csv", score_file=files["score"])  # the file to score uploaded
    expect(page.locator("svg g[data-state='TrainModel']")).to_be_visible()
    shots(page, "run-in-progress")
    expect(page.locator("#run-status")).to_have_text("SUCCEEDED", timeout=RUN_SECONDS)
    for state in ("PrepareRun", "TrainModel", "BatchTransform", "MonitorDrift", "RunSucceeded"):
        expect(page.locator(f"svg g[data-state='{state}']")).to_have_attribute("data-status", "SUCCEEDED")
    expect(page.locator("svg g[data-state='RecordFailure']")).to_have_attribute("data-status", "NOT_RUN")
    predictions = page.get_by_role("link", name="Predictions")
    expect(predictions).to_have_attribute(
        "href", re.compile(r"/runs/[^/]+/predictions/\d{8}-\d{6}-score\.csv\.out")
    )
    shots(page, "run-succeeded")

    page.get_by_role("link", name=re.compile("Model report")).click()
    plots = page.locator("img[data-plot]")
    expect(plots).to_have_count(4)
    for index in range(4):  # each PNG decoded by the browser
        assert plots.nth(index).evaluate("img => img.complete && img.naturalWidth > 0")
    names = {plots.nth(i).get_attribute("data-plot") for i in range(4)}
    assert names == {
        "roc_curve.png",
        "precision_recall_curve.png",
        "calibration_curve.png",
        "feature_importance.png",
    }
    expect(page.locator("[data-metric='roc_auc']")).to_have_text(re.compile(r"^0\.\d{4}$"))
    expect(page.locator("#comparison")).to_contain_text("No champion was scored")  # the first version
    shots(page, "model-version")

    page.goto("/#/runs")
    row = page.get_by_role("row").filter(has_text=name)
    expect(row).to_contain_text("SUCCEEDED")
    expect(row).to_contain_text("slice.csv")
    shots(page, "runs")
    page.goto("/#/models")
    expect(page.get_by_role("heading", name="Models", exact=True)).to_be_visible()  # not the runs page
    version_link = page.get_by_role("link", name="medication-adherence-model v1", exact=True)
    version_row = page.get_by_role("row").filter(has=version_link)
    expect(version_row).to_contain_text("HistGradientBoosting")
    expect(version_row).to_contain_text(re.compile(r"0\.\d{4}"))  # its ROC AUC and PR AUC
    shots(page, "models")
    page.goto(f"/#/drift/{name}")
    expect(page.locator("#psi-chart")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text="diag_1")).to_be_visible()
    shots(page, "drift")
    page.goto("/#/costs")
    expect(page.locator("#month-total")).to_contain_text("USD")
    expect(page.get_by_role("row").filter(has_text=name)).to_contain_text("training")
    shots(page, "costs")


def test_a_failed_run_shows_the_failed_state_and_its_cause(page: Any, shots: Any) -> None:
    start_run(page, "tiny.csv")
    expect(page.locator("#run-status")).to_have_text("FAILED", timeout=RUN_SECONDS)
    failure = page.locator("[data-failed-state='ValidateDataset']")
    expect(failure).to_contain_text("InvalidDataset")
    expect(failure.locator(".cause")).to_contain_text("evaluate")
    expect(page.locator("svg g[data-state='ValidateDataset']")).to_have_attribute("data-status", "FAILED")
    expect(page.locator("svg g[data-state='TrainModel']")).to_have_attribute("data-status", "NOT_RUN")
    shots(page, "run-failed")


def test_an_uploaded_dataset_trains_the_run_the_form_describes_and_no_other(
    page: Any, shots: Any, files: dict[str, Path]
) -> None:
    """Issue 13's upload: choose a file, fill the form, press Start; the run that opens trains on that
    file with the form's model name and algorithm (not the defaults), and the upload starts no run of
    its own (it is staged under uploads/, which the S3 trigger does not match)."""
    before = page.request.get("/executions").json()["executions"]
    page.goto("/#/start")
    page.locator("#datasetFile").set_input_files(str(files["upload"]))
    page.get_by_label("Model name").fill("uploaded-model")
    page.get_by_label("Algorithm").select_option("LogisticRegression")  # not the default
    page.get_by_role("button", name="Start training").click()

    page.wait_for_url(re.compile(r"#/runs/.+"))
    name = page.url.rsplit("/", 1)[1]
    expect(page.locator("#run-status")).to_have_text("SUCCEEDED", timeout=RUN_SECONDS)
    expect(page.locator("svg g[data-state='RunSucceeded']")).to_have_attribute("data-status", "SUCCEEDED")
    shots(page, "run-of-an-uploaded-dataset")
    run = page.request.get(f"/executions/{name}").json()["run"]
    assert run["modelName"] == "uploaded-model"
    version = next(
        v for v in page.request.get("/models").json()["models"] if v["modelName"] == "uploaded-model"
    )
    assert version["algorithm"] == "LogisticRegression"
    assert re.fullmatch(r"s3://[^/]+/uploads/\d{8}-\d{6}-upload\.csv", version["datasetUri"])
    after = page.request.get("/executions").json()["executions"]
    assert len(after) == len(before) + 1  # this run only: no trigger run with the stack's defaults
    (mine,) = [e for e in after if e["datasetUri"] == version["datasetUri"]]
    assert (mine["executionName"], mine["trigger"]) == (name, "request")

    page.goto("/#/start")  # the uploaded file is offered for a later run
    expect(page.locator("#datasetUri option").filter(has_text="upload.csv (uploaded,")).to_have_count(1)
    page.goto("/#/runs")
    expect(page.get_by_role("row").filter(has_text=name)).to_contain_text("request")
    shots(page, "runs-after-upload")


def test_phone_width_and_keyboard_navigation(browser: Any, console_url: str, shots: Any) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 740}, base_url=console_url)
    page = context.new_page()
    try:
        page.goto("/#/runs")
        expect(page.get_by_role("heading", name="Runs")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375  # no page-wide sideways scroll
        shots(page, "phone-runs")
        page.keyboard.press("Tab")  # the skip link first
        expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
        page.keyboard.press("Tab")
        expect(page.get_by_role("link", name="Start a run")).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Start a training run")).to_be_visible()
        page.get_by_label("Dataset", exact=True).focus()
        page.keyboard.press("Tab")
        expect(page.locator("#datasetFile")).to_be_focused()
        page.keyboard.press("Tab")
        expect(page.get_by_label("Model name")).to_be_focused()
        shots(page, "phone-start")
    finally:
        context.close()

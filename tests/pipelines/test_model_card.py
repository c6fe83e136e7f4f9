"""model_card.md: written by the training job beside report.md, with this version's figures, in the
sections of "Model Cards for Model Reporting"."""

import json
from pathlib import Path

import pytest

from pipelines.model_card import MODEL_CARD_FILE, model_card_text
from pipelines.training_pipeline import TrainingPipeline

SECTIONS = (
    "## Model details",
    "## Intended use",
    "Out of scope:",
    "## Data",
    "## Metrics (held-out patients)",
    "## Subgroups",
    "## Ethical considerations",
    "## Caveats and limits",
)


@pytest.fixture(scope="module")
def carded(slice_csv: Path, tmp_path_factory: pytest.TempPathFactory):
    """A training run on the slice, as SageMaker runs it (TRAINING_JOB_NAME set); (result, report dir)."""
    out = tmp_path_factory.mktemp("carded")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRAINING_JOB_NAME", "readmission-train-20261202T0300-abc123")
        result = TrainingPipeline({"max_iter": 30, "seed": 7}).execute(
            str(slice_csv), str(out / "model"), report_dir=str(out / "report")
        )
    return result, out / "report"


def test_training_writes_the_model_card_beside_the_report_flat(carded):
    _, report_dir = carded
    names = {p.name for p in report_dir.iterdir()}
    assert {MODEL_CARD_FILE, "report.md", "subgroups.json"} <= names
    assert all(p.is_file() for p in report_dir.iterdir())  # one flat directory, as it is published
    assert f"[model_card.md]({MODEL_CARD_FILE})" in (report_dir / "report.md").read_text()


def test_model_card_has_the_sections_of_model_cards_for_model_reporting_in_order(carded):
    _, report_dir = carded
    text = (report_dir / MODEL_CARD_FILE).read_text()
    positions = [text.index(section) for section in SECTIONS]
    assert positions == sorted(positions)


def test_model_card_carries_this_versions_figures(carded):
    result, report_dir = carded
    text = (report_dir / MODEL_CARD_FILE).read_text()
    metrics = result.metrics
    model = metrics["model"]
    assert "`readmission-train-20261202T0300-abc123`" in text
    assert "| ROC AUC | {:.4f} |".format(model["roc_auc"]) in text
    assert "| PR AUC (average precision; no skill = prevalence) | {:.4f} |".format(model["pr_auc"]) in text
    assert "| decision threshold | {:.4f} |".format(model["threshold"]) in text
    assert "| prevalence | {:.1%} |".format(metrics["positive_share"]["validation"]) in text
    assert "| flagged at the threshold (`positive_rate`) | {:.1%} |".format(model["positive_rate"]) in text
    assert (
        "{:,} held-out encounters of {:,} patients".format(
            metrics["rows"]["validation"], metrics["patients"]["validation"]
        )
        in text
    )
    assert "seed 7" in text
    assert (
        "{:,} encounters ending in death or hospice".format(metrics["rows"]["excluded_death_or_hospice"])
        in text
    )
    assert "11 (Expired)" in text  # the exclusions decoded with the dataset's IDs_mapping
    assert "No champion was scored" in text


def test_model_card_states_data_intended_use_and_limits(carded):
    _, report_dir = carded
    text = (report_dir / MODEL_CARD_FILE).read_text()
    assert "Diabetes 130-US hospitals for years 1999-2008" in text
    assert "Split by patient" in text
    assert "`encounter_id` is the only proxy of time" in text
    assert "1999-2008 US data" in text
    assert "denying, delaying or rationing care" in text
    assert "proxy of socioeconomic status" in text


def test_model_card_summarises_each_sensitive_input_from_the_subgroup_table(carded):
    _, report_dir = carded
    text = (report_dir / MODEL_CARD_FILE).read_text()
    table = json.loads((report_dir / "subgroups.json").read_text())
    for column, entry in table["inputs"].items():
        assert (
            "| {} (`{}`) | {} | {} |".format(entry["label"], column, entry["sensitive"], len(entry["groups"]))
            in text
        )


def test_model_card_reports_the_comparison_with_the_champion(carded):
    result, report_dir = carded
    table = json.loads((report_dir / "subgroups.json").read_text())
    comparison = {
        "method": "delong_paired",
        "roc_auc_difference": 0.0123,
        "standard_error": 0.004,
        "confidence": 0.95,
        "interval": [0.0045, 0.0201],
        "p_value": 0.0021,
        "rows": 800,
        "positives": 90,
    }
    text = model_card_text(dict(result.metrics, comparison=comparison), table, [])
    assert "DeLong's paired test" in text
    assert "ROC AUC difference +0.0123, 95% interval [+0.0045, +0.0201], p = 0.0021" in text
    assert "-MAX_AUC_DROP" in text
    assert "No champion" not in text

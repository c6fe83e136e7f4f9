"""The model report a clinician reads (issue 12): legible plots, the operating point, calibration
bins that mean something, decoded input names, the subgroup table and what the figures mean."""

import json
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines import schema
from pipelines.id_mapping import ID_DESCRIPTIONS, describe, parse_ids_mapping
from pipelines.report import (
    MIN_CALIBRATION_COUNT,
    SUBGROUP_MIN_PER_CLASS,
    calibration_figure,
    comparison_lines,
    feature_label,
    importance_figure,
    operating_point,
    precision_recall_figure,
    report_lines,
    roc_figure,
    subgroup_table,
)
from pipelines.training_pipeline import TrainingPipeline

DATA_DIR = Path(__file__).resolve().parents[2] / "data"
PLOTS = ("roc_curve", "precision_recall_curve", "calibration_curve", "feature_importance")


@pytest.fixture(scope="module")
def reported(slice_csv: Path, tmp_path_factory: pytest.TempPathFactory):
    """One training run on the slice with its report; (result, report directory)."""
    out = tmp_path_factory.mktemp("reported")
    result = TrainingPipeline({"max_iter": 30}).execute(str(slice_csv), str(out / "model"))
    return result, out / "model" / "report"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def line_with_gid(figure, gid: str):
    lines = [line for ax in figure.axes for line in ax.get_lines() if line.get_gid() == gid]
    assert len(lines) == 1, gid
    return lines[0]


def model_block(y: np.ndarray, probability: np.ndarray, threshold: float) -> dict:
    from pipelines.evaluation import evaluate

    return evaluate(y, probability, threshold)


def scores(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    y = (rng.uniform(size=n) < 0.12).astype(int)
    probability = np.clip(0.1 + 0.08 * y + rng.normal(0, 0.06, size=n), 0.001, 0.999)
    return y, probability


# ---- plots ----------------------------------------------------------------------------------------


def test_every_plot_is_at_least_800_by_600_pixels(reported):
    _, report_dir = reported
    for name in PLOTS:
        width, height = png_size(report_dir / f"{name}.png")
        assert width >= 800 and height >= 600, (name, width, height)


def test_roc_plot_marks_the_operating_point_on_its_curve():
    from sklearn.metrics import roc_curve

    y, probability = scores()
    block = model_block(y, probability, 0.17)
    point = line_with_gid(roc_figure(y, probability, block), "operating_point")

    c = block["confusion"]
    expected = (c["fp"] / (c["fp"] + c["tn"]), c["tp"] / (c["tp"] + c["fn"]))
    assert (point.get_xdata()[0], point.get_ydata()[0]) == pytest.approx(expected)
    fpr, tpr, _ = roc_curve(y, probability, drop_intermediate=False)
    assert np.min(np.hypot(fpr - expected[0], tpr - expected[1])) < 1e-9  # a point of the curve
    assert "threshold 0.170" in point.get_label()


def test_precision_recall_plot_marks_the_operating_point_and_the_prevalence():
    y, probability = scores()
    block = model_block(y, probability, 0.17)
    figure = precision_recall_figure(y, probability, block)
    point = line_with_gid(figure, "operating_point")

    c = block["confusion"]
    assert point.get_xdata()[0] == pytest.approx(c["tp"] / (c["tp"] + c["fn"]))
    assert point.get_ydata()[0] == pytest.approx(c["tp"] / (c["tp"] + c["fp"]))
    labels = [line.get_label() for line in figure.axes[0].get_lines()]
    assert f"prevalence ({y.mean():.1%})" in labels


def test_calibration_plot_leaves_out_bins_too_small_and_counts_every_bin():
    bins = [
        {"bin": 0, "mean_predicted": 0.07, "observed_rate": 0.07, "count": 10755},
        {"bin": 3, "mean_predicted": 0.34, "observed_rate": 0.37, "count": 336},
        {"bin": 5, "mean_predicted": 0.54, "observed_rate": 0.70, "count": MIN_CALIBRATION_COUNT - 1},
        {"bin": 9, "mean_predicted": 0.93, "observed_rate": 0.0, "count": 1},  # today's last point
    ]
    figure = calibration_figure(bins)

    drawn = line_with_gid(figure, "calibration")
    assert list(drawn.get_xdata()) == [0.07, 0.34]
    assert list(drawn.get_ydata()) == [0.07, 0.37]
    texts = {t.get_text() for t in figure.axes[0].texts}
    assert {"n=10,755", "n=336"} <= texts
    histogram = [p for p in figure.axes[1].patches if p.get_gid() == "bin_counts"]
    assert sorted(round(p.get_height()) for p in histogram) == sorted(b["count"] for b in bins)
    assert {"10,755", "336", str(MIN_CALIBRATION_COUNT - 1), "1"} <= {
        t.get_text() for t in figure.axes[1].texts
    }


def test_report_says_which_calibration_bins_are_not_drawn(reported):
    result, report_dir = reported
    text = (report_dir / "report.md").read_text()
    assert f"Bins of fewer than {MIN_CALIBRATION_COUNT} encounters are not drawn" in text
    for b in result.metrics["model"]["calibration"]:
        if b["count"] < MIN_CALIBRATION_COUNT:
            assert "({:,} encounter".format(b["count"]) in text


# ---- what the figures mean ------------------------------------------------------------------------


def test_report_states_prevalence_flagged_share_and_how_the_threshold_was_chosen(reported):
    result, report_dir = reported
    metrics = result.metrics
    text = (report_dir / "report.md").read_text()
    c = metrics["model"]["confusion"]
    rows = sum(c.values())
    prevalence = (c["tp"] + c["fn"]) / rows
    assert prevalence == pytest.approx(metrics["positive_share"]["validation"])
    assert f"**Prevalence**: {prevalence:.1%} of the held-out encounters" in text
    assert "**Flagged** (`positive_rate`): {:.1%}".format(metrics["model"]["positive_rate"]) in text
    assert "not the share readmitted" in text
    assert metrics["threshold_rule"] == "max_f1_on_training_rows"
    assert "maximises F1" in text and "training patients" in text


def test_a_fixed_threshold_is_reported_as_fixed(reported):
    result, _ = reported
    metrics = dict(result.metrics, threshold_rule="fixed")
    text = "\n".join(
        report_lines(metrics, [], 0, {"min_per_class_for_roc_auc": 50, "inputs": {}}, _frame(), [])
    )
    assert "fixed by the run's `decision_threshold` hyperparameter" in text
    assert "maximises F1" not in text


def _frame() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in schema.CODED_ID_COLUMNS})


def test_operating_point_is_the_confusion_counts_shares():
    point = operating_point({"threshold": 0.2, "confusion": {"tp": 30, "fp": 70, "tn": 850, "fn": 50}})
    assert point["prevalence"] == pytest.approx(0.08)
    assert point["flag_rate"] == pytest.approx(0.10)
    assert point["sensitivity"] == pytest.approx(30 / 80)
    assert point["specificity"] == pytest.approx(850 / 920)
    assert point["precision"] == pytest.approx(0.30)


def test_comparison_names_the_test_the_rule_and_what_the_interval_says():
    base = {
        "method": "delong_paired",
        "roc_auc_difference": 0.004,
        "standard_error": 0.003,
        "confidence": 0.95,
        "p_value": 0.18,
        "rows": 20000,
        "positives": 2200,
    }
    shown_worse = "\n".join(comparison_lines({**base, "interval": [-0.0019, 0.0099]}))
    assert "DeLong's paired test" in shown_worse
    assert "lower end is above -MAX_AUC_DROP" in shown_worse
    assert "Here the lower end (-0.0019) is not above 0." in shown_worse
    shown_better = "\n".join(comparison_lines({**base, "interval": [0.0011, 0.0069]}))
    assert "Here the lower end (+0.0011) is above 0." in shown_better


# ---- feature importance ---------------------------------------------------------------------------


def test_every_input_has_a_human_name():
    for column in schema.FEATURE_COLUMNS:
        label = feature_label(column)
        assert "_" not in label and not label.endswith(" id"), column
    assert feature_label("admission_type_id") == "admission type"
    assert feature_label("number_inpatient") == "inpatient stays, prior year"


def test_importance_plot_names_inputs_for_a_reader_and_explains_its_error_bars():
    importances = [
        {"feature": "number_inpatient", "importance": 0.08, "std": 0.01},
        {"feature": "admission_type_id", "importance": 0.01, "std": 0.002},
    ]
    figure = importance_figure(importances, rows=3000, repeats=2)
    labels = {t.get_text() for t in figure.axes[0].get_yticklabels()}
    assert labels == {"inpatient stays, prior year", "admission type"}
    caption = " ".join(t.get_text() for t in figure.texts)
    assert "one standard deviation over those shuffles" in caption and "3,000" in caption


def test_report_table_names_inputs_and_says_what_the_error_bars_are(reported):
    _, report_dir = reported
    text = (report_dir / "report.md").read_text()
    assert "| inpatient stays, prior year | `number_inpatient` |" in text
    assert "the error bars (and the ± column) are the standard deviation over those shuffles" in text


def test_id_descriptions_are_the_datasets_ids_mapping_csv():
    assert parse_ids_mapping((DATA_DIR / "IDs_mapping.csv").read_text()) == ID_DESCRIPTIONS
    assert set(ID_DESCRIPTIONS) == set(schema.CODED_ID_COLUMNS)
    assert describe("admission_type_id", "1") == "Emergency"
    assert describe("admission_source_id", "7") == "Emergency Room"  # the CSV's leading space trimmed
    assert describe("discharge_disposition_id", 11.0) == "Expired"
    assert describe("discharge_disposition_id", None) == "unknown"


def test_report_decodes_the_coded_inputs_and_the_exclusions(reported):
    _, report_dir = reported
    text = (report_dir / "report.md").read_text()
    assert "11 (Expired), 13 (Hospice / home)" in text
    assert "| 1 | Emergency |" in text
    assert "| 1 | Discharged to home |" in text


# ---- subgroups ------------------------------------------------------------------------------------


def subgroup_case() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Two large race groups (both outcomes), a small one, and missing values (`?` and NaN)."""
    rng = np.random.RandomState(1)
    race = np.array(
        ["Caucasian"] * 1200 + ["AfricanAmerican"] * 800 + ["Asian"] * 40 + ["?"] * 30 + [None] * 30,
        dtype=object,
    )
    n = len(race)
    y = (rng.uniform(size=n) < 0.15).astype(int)
    probability = np.clip(0.1 + 0.1 * y + rng.normal(0, 0.08, size=n), 0.001, 0.999)
    frame = pd.DataFrame(
        {
            "race": race.astype(object),
            "gender": np.where(np.arange(n) % 2 == 0, "Female", "Male").astype(object),
            "age": np.array(
                ["[50-60)", "[70-80)", "[10-20)"] * (n // 3) + ["[50-60)"] * (n % 3), dtype=object
            ),
            "payer_code": np.array([np.nan, "MC", "BC", "SP"] * (n // 4) + ["MC"] * (n % 4), dtype=object),
        }
    )
    return frame, y, probability


def test_subgroups_count_score_and_calibrate_each_group_of_each_sensitive_input():
    from sklearn.metrics import roc_auc_score

    frame, y, probability = subgroup_case()
    table = subgroup_table(frame, y, probability, threshold=0.2)

    assert list(table["inputs"]) == ["race", "gender", "age", "payer_code"]
    groups = {g["group"]: g for g in table["inputs"]["race"]["groups"]}
    assert set(groups) == {"Caucasian", "AfricanAmerican", "Asian", "unknown"}
    assert [g["group"] for g in table["inputs"]["race"]["groups"]][-1] == "unknown"
    selected = (frame["race"] == "Caucasian").to_numpy()
    caucasian = groups["Caucasian"]
    assert caucasian["encounters"] == 1200
    assert caucasian["readmitted"] == int(y[selected].sum())
    assert caucasian["roc_auc"] == pytest.approx(roc_auc_score(y[selected], probability[selected]), abs=1e-12)
    low, high = caucasian["roc_auc_interval"]
    assert low < caucasian["roc_auc"] < high
    assert caucasian["mean_predicted"] == pytest.approx(probability[selected].mean())
    assert caucasian["observed_rate"] == pytest.approx(y[selected].mean())
    assert caucasian["flag_rate"] == pytest.approx((probability[selected] >= 0.2).mean())
    assert groups["unknown"]["encounters"] == 60  # `?` and missing are one group
    asian = groups["Asian"]
    assert asian["roc_auc"] is None and asian["roc_auc_interval"] is None
    assert f"needs {SUBGROUP_MIN_PER_CLASS} of each" in asian["roc_auc_not_computed"]
    assert "unknown" in {g["group"] for g in table["inputs"]["payer_code"]["groups"]}
    assert [g["group"] for g in table["inputs"]["age"]["groups"]] == ["[10-20)", "[50-60)", "[70-80)"]


def test_report_writes_the_subgroup_table_as_json_and_says_which_inputs_are_sensitive(reported):
    result, report_dir = reported
    table = json.loads((report_dir / "subgroups.json").read_text())
    assert set(table["inputs"]) == {"race", "gender", "age", "payer_code"}
    held_out = result.metrics["rows"]["validation"]
    for entry in table["inputs"].values():
        assert sum(g["encounters"] for g in entry["groups"]) == held_out
    assert "socioeconomic" in table["inputs"]["payer_code"]["sensitive"]
    text = (report_dir / "report.md").read_text()
    assert "## Performance by subgroup" in text
    assert "Race, gender and age are sensitive characteristics" in text
    assert "proxy of socioeconomic status" in text
    first = table["inputs"]["gender"]["groups"][0]
    assert "| {} | {:,} | {:,} |".format(first["group"], first["encounters"], first["readmitted"]) in text

"""The deciding numbers of a training run at their edges, on hand-made arrays (no model is trained):
the patient-grouped split, the F1 threshold, the metrics at the threshold, the DeLong comparison,
the death/hospice exclusions and the row checks of the training data.

They pin comparison and arithmetic operators that the training tests pass through without looking
(issue 14: mutation testing of pipelines/evaluation.py and pipelines/data.py).
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from sklearn.metrics import average_precision_score, roc_auc_score

from pipelines import data, schema
from pipelines.data import (
    MIN_TRAINING_ROWS,
    _parse_error,
    excluded_rows,
    not_scored_reasons,
    validate_training_rows,
)
from pipelines.errors import DatasetError
from pipelines.evaluation import (
    calibration_bins,
    choose_threshold,
    compare_roc_auc,
    evaluate,
    patient_split,
)

# --- patient_split --------------------------------------------------------------------------------


def test_every_encounter_of_a_patient_lands_on_the_same_side() -> None:
    groups = np.repeat(np.arange(50), 3)

    train, validation = patient_split(groups, 0.2, seed=7)

    assert (train == ~validation).all()
    held_out = set(groups[validation])
    assert held_out.isdisjoint(groups[train])
    assert len(held_out) == 10


@pytest.mark.parametrize(("patients", "fraction", "held_out"), [(10, 0.25, 2), (10, 0.35, 4), (3, 0.01, 1)])
def test_the_held_out_patients_are_the_rounded_fraction_and_at_least_one(
    patients: int, fraction: float, held_out: int
) -> None:
    _, validation = patient_split(np.arange(patients), fraction, seed=0)

    assert int(validation.sum()) == held_out


def test_the_draw_is_fixed_by_the_seed() -> None:
    groups = np.arange(100)

    first = patient_split(groups, 0.3, seed=1)[1]

    assert (patient_split(groups, 0.3, seed=1)[1] == first).all()
    assert not (patient_split(groups, 0.3, seed=2)[1] == first).all()


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_a_fraction_outside_the_open_unit_interval_is_refused(fraction: float) -> None:
    with pytest.raises(ValueError, match="validation_fraction must be between 0 and 1"):
        patient_split(np.arange(10), fraction, seed=0)


# --- choose_threshold -----------------------------------------------------------------------------


def test_the_threshold_is_the_probability_that_maximises_f1() -> None:
    # Cutting at 0.7 flags two positives and one negative: F1 = 2*2/(3+2) = 0.8, the best cut.
    y = np.array([1, 1, 0, 0, 1, 0])
    p = np.array([0.9, 0.8, 0.7, 0.4, 0.3, 0.1])

    assert choose_threshold(y, p) == 0.8


def test_tied_probabilities_are_never_split_by_the_cut() -> None:
    # Rows 2-4 share 0.5: cutting inside them is impossible, so the cut is 0.9 or at the tie's end.
    y = np.array([1, 1, 0, 0, 0])
    p = np.array([0.9, 0.5, 0.5, 0.5, 0.1])

    assert choose_threshold(y, p) == 0.9


def test_without_positives_the_highest_probability_is_the_cut() -> None:
    assert choose_threshold(np.zeros(3, dtype=int), np.array([0.2, 0.6, 0.4])) == 0.6


def test_the_input_order_does_not_change_the_threshold() -> None:
    y = np.array([0, 1, 0, 1, 1, 0])
    p = np.array([0.1, 0.8, 0.3, 0.7, 0.2, 0.75])

    # F1 by cut: 0.8 -> 0.5, 0.75 -> 0.4, 0.7 -> 0.67, 0.3 -> 0.57, 0.2 -> 0.75, 0.1 -> 0.67.
    assert choose_threshold(y, p) == choose_threshold(y[::-1], p[::-1]) == 0.2


# --- evaluate and calibration -----------------------------------------------------------------------


def test_a_probability_equal_to_the_threshold_is_a_positive_prediction() -> None:
    y = np.array([1, 0, 1, 0])
    p = np.array([0.8, 0.5, 0.5, 0.2])

    metrics = evaluate(y, p, threshold=0.5)

    assert metrics["confusion"] == {"tp": 2, "fp": 1, "tn": 1, "fn": 0}
    assert metrics["positive_rate"] == 0.75
    assert metrics["threshold"] == 0.5
    assert metrics["roc_auc"] == 0.875
    assert metrics["brier"] == pytest.approx((0.04 + 0.25 + 0.25 + 0.04) / 4)


def test_certain_probabilities_are_clipped_so_the_log_loss_stays_finite() -> None:
    metrics = evaluate(np.array([1, 0]), np.array([0.0, 1.0]), threshold=0.5)

    assert metrics["log_loss"] == pytest.approx(-np.log(1e-7), rel=1e-6)
    assert metrics["confusion"] == {"tp": 0, "fp": 1, "tn": 0, "fn": 1}


def test_calibration_bins_are_equal_width_with_one_in_the_top_bin_and_empty_ones_left_out() -> None:
    y = np.array([0, 1, 1, 0, 1])
    p = np.array([0.05, 0.15, 0.19, 0.95, 1.0])

    assert calibration_bins(y, p) == [
        {"bin": 0, "mean_predicted": 0.05, "observed_rate": 0.0, "count": 1},
        {"bin": 1, "mean_predicted": pytest.approx(0.17), "observed_rate": 1.0, "count": 2},
        {"bin": 9, "mean_predicted": pytest.approx(0.975), "observed_rate": 0.5, "count": 2},
    ]
    assert [row["bin"] for row in calibration_bins(y, p, bins=2)] == [0, 1]


# --- compare_roc_auc ----------------------------------------------------------------------------------


def test_identical_scores_differ_by_zero_with_a_zero_width_interval() -> None:
    y = np.array([0, 1, 0, 1, 1, 0, 0, 1])
    p = np.array([0.1, 0.9, 0.3, 0.4, 0.8, 0.35, 0.2, 0.7])

    result = compare_roc_auc(y, p, p)

    assert result["roc_auc_difference"] == 0.0
    assert result["interval"] == [0.0, 0.0]
    assert result["p_value"] == 1.0
    assert (result["rows"], result["positives"], result["confidence"]) == (8, 4, 0.95)
    assert result["method"] == "delong_paired"


def test_a_perfect_challenger_against_a_reversed_champion_is_a_sure_gain() -> None:
    y = np.array([0, 0, 1, 1])
    challenger = np.array([0.1, 0.2, 0.8, 0.9])

    result = compare_roc_auc(y, challenger, challenger[::-1])

    assert result["roc_auc_difference"] == 1.0
    assert result["standard_error"] == 0.0
    assert result["p_value"] == 0.0


def test_the_difference_is_challenger_minus_champion_and_the_interval_is_symmetric() -> None:
    y = np.array([0, 1, 0, 1, 1, 0, 0, 1, 0, 1])
    challenger = np.array([0.1, 0.9, 0.3, 0.6, 0.8, 0.35, 0.2, 0.7, 0.5, 0.4])
    champion = np.array([0.3, 0.5, 0.4, 0.2, 0.6, 0.7, 0.1, 0.8, 0.9, 0.45])

    forward = compare_roc_auc(y, challenger, champion)
    backward = compare_roc_auc(y, champion, challenger)

    gain = roc_auc_score(y, challenger) - roc_auc_score(y, champion)
    assert forward["roc_auc_difference"] == pytest.approx(gain)
    assert backward["roc_auc_difference"] == pytest.approx(-forward["roc_auc_difference"])
    assert forward["standard_error"] == pytest.approx(backward["standard_error"])
    low, high = forward["interval"]
    half = 1.959963984540054 * forward["standard_error"]
    assert (low, high) == (pytest.approx(gain - half), pytest.approx(gain + half))
    z_score = abs(forward["roc_auc_difference"]) / forward["standard_error"]
    assert forward["p_value"] == pytest.approx(2 * norm.sf(z_score))
    narrower = compare_roc_auc(y, challenger, champion, confidence=0.5)["interval"]
    assert narrower[1] - narrower[0] < high - low


@pytest.mark.parametrize("y", [np.ones(4, dtype=int), np.zeros(4, dtype=int)])
def test_a_comparison_needs_both_outcomes(y: np.ndarray) -> None:
    with pytest.raises(ValueError) as caught:
        compare_roc_auc(y, np.arange(4.0), np.arange(4.0))

    assert str(caught.value) == "the comparison needs both outcomes among the rows"


# --- exclusions and row checks -------------------------------------------------------------------------


def test_death_and_hospice_are_excluded_for_the_30_day_target_only() -> None:
    codes = ["1", "11", "13", "14", "19", "20", "21", "?", "7"]
    frame = pd.DataFrame({schema.DISCHARGE_COLUMN: codes})

    assert excluded_rows(frame, "readmitted_30d").tolist() == [
        False,
        True,
        True,
        True,
        True,
        True,
        True,
        False,
        False,
    ]
    assert not excluded_rows(frame, "readmitted_any").any()
    assert not excluded_rows(pd.DataFrame({"other": codes}), "readmitted_30d").any()
    assert not_scored_reasons(frame, "readmitted_30d").tolist() == [
        "",
        "expired",
        "hospice",
        "hospice",
        "expired",
        "expired",
        "expired",
        "",
        "",
    ]
    assert not_scored_reasons(frame, "readmitted_any").tolist() == [""] * len(codes)


def rows(count: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            schema.ID_COLUMN: [str(i) for i in range(count)],
            schema.GROUP_COLUMN: [str(i // 2) for i in range(count)],
            schema.TARGET_COLUMN: ["NO", "<30", ">30", "NO"] * (count // 4) + ["NO"] * (count % 4),
        }
    )


def test_the_minimum_row_count_is_enough_and_one_fewer_is_not() -> None:
    assert validate_training_rows(rows(MIN_TRAINING_ROWS)) is None
    with pytest.raises(DatasetError) as caught:
        validate_training_rows(rows(MIN_TRAINING_ROWS - 1))

    assert caught.value.code == "too_few_rows"
    assert str(caught.value).endswith(f"{MIN_TRAINING_ROWS - 1} data row(s); training needs at least 20")


@pytest.mark.parametrize("column", [schema.ID_COLUMN, schema.GROUP_COLUMN, schema.TARGET_COLUMN])
def test_an_empty_id_patient_or_outcome_is_named(column: str) -> None:
    frame = rows(24)
    frame.loc[5, column] = None

    with pytest.raises(DatasetError, match=f"column '{column}' has empty or '\\?' values"):
        validate_training_rows(frame)


def test_duplicate_encounters_are_counted_with_an_example() -> None:
    frame = rows(24)
    frame.loc[[3, 4], schema.ID_COLUMN] = "1"

    with pytest.raises(DatasetError) as caught:
        validate_training_rows(frame)

    assert caught.value.code == "duplicate_encounter_id"
    assert str(caught.value).endswith("2 duplicate encounter_id value(s), e.g. 1")


def test_unknown_outcomes_are_listed_sorted_with_the_expected_ones() -> None:
    frame = rows(24)
    frame.loc[[1, 2], schema.TARGET_COLUMN] = ["YES", "MAYBE"]

    with pytest.raises(DatasetError) as caught:
        validate_training_rows(frame)

    assert caught.value.code == "bad_target"
    assert str(caught.value).endswith(
        "column 'readmitted' holds 'MAYBE', 'YES' (expected one of NO, >30, <30)"
    )


def test_each_row_check_failure_has_its_stable_code() -> None:
    empty_id = rows(24)
    empty_id.loc[0, schema.ID_COLUMN] = None

    with pytest.raises(DatasetError) as caught:
        validate_training_rows(empty_id)

    assert caught.value.code == "missing_values"
    assert str(caught.value) == (
        "Invalid dataset (missing_values): column 'encounter_id' has empty or '?' values"
    )


# --- the named read errors ----------------------------------------------------------------------------


def numeric_text(lines: list[str]) -> io.StringIO:
    return io.StringIO("encounter_id,time_in_hospital,num_lab_procedures\n" + "\n".join(lines) + "\n")


def test_a_read_failure_is_named_by_its_kind() -> None:
    columns = ["encounter_id", "time_in_hospital"]
    gzip_error = _parse_error(EOFError("cut"), "f.csv.gz", columns, "f.csv.gz", "gzip", True)
    parser_error = _parse_error(pd.errors.ParserError("bad quote"), "f.csv", columns, "f.csv", None, True)
    headless = _parse_error(ValueError("could not convert"), "f.csv", columns, "f.csv", None, False)

    assert (gzip_error.code, str(gzip_error)) == (
        "corrupt_gzip",
        "Invalid dataset (corrupt_gzip): f.csv.gz is a truncated or corrupt gzip file (cut)",
    )
    assert (parser_error.code, str(parser_error)) == (
        "malformed_csv",
        "Invalid dataset (malformed_csv): f.csv is not well-formed CSV: bad quote",
    )
    assert (headless.code, str(headless)) == (
        "non_numeric",
        "Invalid dataset (non_numeric): f.csv: a numeric column holds text (could not convert)",
    )


def test_text_in_a_numeric_column_is_located_by_column_value_and_line_across_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(data, "CHUNK_ROWS", 2)
    source = numeric_text(["1,3,40", "2,?,41", "3,5,", "4,6,forty"])

    error = _parse_error(
        ValueError("x"),
        source,
        ["encounter_id", "time_in_hospital", "num_lab_procedures"],
        "f.csv",
        None,
        True,
    )

    assert error.code == "non_numeric"
    assert str(error) == (
        "Invalid dataset (non_numeric): f.csv: column 'num_lab_procedures' must be numeric but holds "
        "'forty' (line 5)"
    )


def test_a_file_whose_numbers_all_parse_is_unparseable_not_non_numeric() -> None:
    error = data._locate_non_numeric(
        numeric_text(["1,3,40"]), ["encounter_id", "time_in_hospital"], "f.csv", None
    )

    assert (error.code, str(error)) == (
        "unparseable",
        ("Invalid dataset (unparseable): f.csv could not be parsed as CSV"),
    )


def test_when_every_row_is_positive_the_cut_is_the_lowest_probability() -> None:
    assert choose_threshold(np.ones(3, dtype=int), np.array([0.9, 0.5, 0.2])) == 0.2


def test_the_metrics_block_has_the_documented_keys() -> None:
    y = np.array([1, 0, 1, 0])
    p = np.array([0.8, 0.5, 0.5, 0.2])

    metrics = evaluate(y, p, threshold=0.5)

    assert sorted(metrics) == [
        "brier",
        "calibration",
        "confusion",
        "log_loss",
        "positive_rate",
        "pr_auc",
        "roc_auc",
        "threshold",
    ]
    assert metrics["pr_auc"] == pytest.approx(average_precision_score(y, p))
    assert metrics["calibration"] == calibration_bins(y, p)


def test_no_exclusion_is_still_a_boolean_mask() -> None:
    frame = pd.DataFrame({"other": ["1", "11"]})

    for target in ("readmitted_30d", "readmitted_any"):
        mask = excluded_rows(frame, target)
        assert mask.dtype == bool
        assert frame[~mask].shape == (2, 1)

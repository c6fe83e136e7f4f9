"""Drift: PSI against the training baseline flags a shifted batch and not an unshifted one."""

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines import bundle
from pipelines.data import excluded_rows
from pipelines.drift import (
    COUNTS_FILE,
    DriftCounts,
    categorical_baseline,
    categorical_distribution,
    compute_baseline,
    count_features,
    count_predictions,
    counts_report,
    drift_report,
    level,
    merge_counts,
    numeric_baseline,
    numeric_distribution,
    probability_chunks,
    psi,
    stream_counts,
)
from pipelines.errors import DatasetError
from pipelines.inference import load_model_dir, predictions_csv, read_scoring_file, score
from tests.pipelines.pipeline_cases import read_json


def test_psi_is_zero_for_identical_distributions_and_grows_with_shift():
    assert psi([0.5, 0.5], [0.5, 0.5]) == pytest.approx(0.0)
    assert psi([0.5, 0.5], [0.6, 0.4]) < psi([0.5, 0.5], [0.9, 0.1])
    assert level(0.05) == "ok" and level(0.1) == "warn" and level(0.3) == "drift"


def test_numeric_bins_cover_every_row_with_missing_as_its_own_bucket():
    values = np.r_[np.arange(100, dtype=float), [np.nan] * 10]
    baseline = numeric_baseline(values)
    assert sum(baseline["proportions"]) == pytest.approx(1.0)
    assert baseline["proportions"][-1] == pytest.approx(10 / 110)
    shifted = numeric_distribution(values + 1000, baseline["edges"])
    assert shifted[-2] == pytest.approx(100 / 110)  # everything lands in the top bin


def test_categories_unseen_in_the_baseline_count_as_other():
    baseline = categorical_baseline(["a"] * 50 + ["b"] * 50)
    shares = categorical_distribution(["a", "z", None, "b"], baseline["categories"])
    assert shares == pytest.approx([0.25, 0.25, 0.25, 0.25])


def shifted_batch(frame: pd.DataFrame) -> pd.DataFrame:
    batch = frame.copy()
    batch["number_inpatient"] = batch["number_inpatient"] + 5
    batch["age"] = "[90-100)"
    return batch


def test_shifted_batch_is_flagged_and_unshifted_batch_is_not(trained_without_history, slice_frame):
    from pipelines.inference import load_model_dir

    model = load_model_dir(trained_without_history.model_dir)
    raw = slice_frame.replace("?", np.nan)
    for column in ("number_inpatient", "num_medications", "time_in_hospital"):
        raw[column] = raw[column].astype(float)
    prepare = model.model.named_steps["features"]
    unshifted = drift_report(model.baseline, prepare.transform(raw.sample(frac=0.5, random_state=1)))
    shifted = drift_report(model.baseline, prepare.transform(shifted_batch(raw)))
    assert unshifted["drift"] is False
    assert unshifted["status"] in ("ok", "warn")
    assert shifted["drift"] is True
    assert {"number_inpatient", "age"} <= set(shifted["drifted_features"])
    assert shifted["features"]["age"]["psi"] >= 0.25
    assert shifted["thresholds"] == {"warn": 0.1, "drift": 0.25}


def test_baseline_of_a_frame_has_one_entry_per_column_and_the_prediction():
    frame = pd.DataFrame({"num_medications": [1.0, 2.0, 3.0, 4.0], "race": ["a", "b", "a", None]})
    baseline = compute_baseline(frame, np.array([0.1, 0.2, 0.3, 0.4]))
    assert set(baseline["features"]) == {"num_medications", "race"}
    assert baseline["features"]["num_medications"]["type"] == "numeric"
    assert baseline["features"]["race"]["type"] == "categorical"
    assert baseline["prediction"]["type"] == "numeric"
    assert baseline["rows"] == 4


def test_processing_entry_point_reads_model_tar_gz_and_writes_the_report(
    trained_without_history, slice_frame, tmp_path
):
    built = bundle.build(str(tmp_path / "bundle"))
    model_input = tmp_path / "model"
    model_input.mkdir()
    with tarfile.open(model_input / "model.tar.gz", "w:gz") as tar:
        for path in Path(trained_without_history.model_dir).iterdir():
            tar.add(path, arcname=path.name)
    data = tmp_path / "data"
    data.mkdir()
    raw = slice_frame.copy()
    raw["number_inpatient"] = (raw["number_inpatient"].astype(int) + 5).astype(str)
    raw.to_csv(data / "scored.csv", index=False)
    predictions = tmp_path / "predictions"
    predictions.mkdir()
    model = load_model_dir(trained_without_history.model_dir)
    scored = score(model, read_scoring_file(str(data / "scored.csv")))
    (predictions / "scored.csv.out").write_text(predictions_csv(scored))
    output = tmp_path / "output"
    result = subprocess.run(
        [
            sys.executable,
            str(Path(built["src"]) / "drift.py"),
            "--model",
            str(model_input),
            "--data",
            str(data),
            "--predictions",
            str(predictions),
            "--output",
            str(output),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr  # as many data rows counted as predictions scored
    report = read_json(output / "drift_report.json")
    scored_rows = len(raw) - int(excluded_rows(raw, model.target).sum())
    assert report["rows"] == scored_rows < len(raw)
    assert "number_inpatient" in report["drifted_features"]
    assert report["drift"] is True
    assert "prediction" in report
    assert "number_inpatient" in (output / "drift_report.md").read_text()
    counts = DriftCounts.from_json(read_json(output / COUNTS_FILE))
    assert counts.rows == counts.prediction_rows == scored_rows
    assert counts_report(model.baseline, counts) == report


# ---- streamed drift: the transform's output and the data in chunks, counts that add up ----------


@pytest.fixture(scope="module")
def model(trained_without_history):
    return load_model_dir(trained_without_history.model_dir)


@pytest.fixture(scope="module")
def scored_slice(model, slice_csv, tmp_path_factory):
    """The slice as the drift job gets it: the data file and the transform's output for it."""
    frame = read_scoring_file(str(slice_csv))
    predictions = tmp_path_factory.mktemp("predictions")
    (predictions / "slice.csv.out").write_text(predictions_csv(score(model, frame)))
    return frame, predictions


def whole_frame_report(model, frame: pd.DataFrame, predictions: Path) -> dict:
    """Today's drift_report on the frame's scored rows (death/hospice left out), with the
    probabilities as the transform wrote them."""
    probability = pd.read_csv(predictions / "slice.csv.out")["probability"].dropna().to_numpy()
    scored = frame[~excluded_rows(frame, model.target)]
    return drift_report(model.baseline, model.model.named_steps["features"].transform(scored), probability)


@pytest.mark.parametrize("chunk_rows", [999, 1500, 4000, 100_000])
def test_streamed_report_equals_the_whole_frame_report_whatever_the_chunk_size(
    model, slice_csv, scored_slice, chunk_rows
):
    frame, predictions = scored_slice
    counts = stream_counts(
        model.baseline,
        model.model.named_steps["features"],
        str(slice_csv),
        str(predictions),
        keep=model.features["columns"],
        chunk_rows=chunk_rows,
    )
    expected = whole_frame_report(model, frame, predictions)
    excluded = int(excluded_rows(frame, model.target).sum())
    assert excluded == 62  # the slice's death/hospice encounters: neither scored nor counted
    assert counts.rows == counts.prediction_rows == len(frame) - excluded == 4000 - 62
    assert counts_report(model.baseline, counts) == expected
    assert "prediction" in expected and len(expected["features"]) == len(model.baseline["features"])


def test_the_probabilities_as_written_give_the_prediction_psi_of_the_full_precision_ones(model, scored_slice):
    frame, predictions = scored_slice
    scored = frame[~excluded_rows(frame, model.target)]
    exact = drift_report(
        model.baseline,
        model.model.named_steps["features"].transform(scored),
        score(model, scored)["probability"].to_numpy(),
    )
    written = whole_frame_report(model, frame, predictions)
    assert written["features"] == exact["features"]
    assert written["prediction"]["psi"] == pytest.approx(exact["prediction"]["psi"], abs=1e-4)


def test_streamed_parts_gzip_bom_crlf_and_missing_marks_count_like_the_whole_file(
    model, raw_lines, slice_csv, scored_slice, tmp_path
):
    import gzip

    frame, predictions = scored_slice
    parts = tmp_path / "parts"
    parts.mkdir()
    header, rows = raw_lines[0], raw_lines[1:]
    (parts / "part-0.csv").write_text("\n".join([header, *rows[:1234]]) + "\n")
    with gzip.open(parts / "part-1.csv.gz", "wb") as handle:
        handle.write(("\ufeff" + "\r\n".join([header, *rows[1234:]]) + "\r\n").encode("utf-8"))
    assert any("?" in row for row in rows)
    counts = stream_counts(
        model.baseline, model.model.named_steps["features"], str(parts), str(predictions), chunk_rows=1000
    )
    assert counts_report(model.baseline, counts) == whole_frame_report(model, frame, predictions)


def test_counts_of_two_shards_merge_into_the_report_of_all_rows(model, scored_slice):
    frame, predictions = scored_slice
    prepare = model.model.named_steps["features"]
    probability = pd.read_csv(predictions / "slice.csv.out")["probability"].to_numpy()
    scored = ~excluded_rows(frame, model.target)
    shards = []
    for rows in (slice(0, 2500), slice(2500, None)):
        shard = merge_counts(
            count_features(model.baseline, prepare.transform(frame.iloc[rows][scored[rows]])),
            count_predictions(model.baseline, probability[rows][scored[rows]]),
        )
        # What a processing instance would write and the merging one read back.
        shards.append(DriftCounts.from_json(json.loads(json.dumps(shard.to_json()))))
    merged = merge_counts(*shards)
    assert merged.rows == 4000 - 62
    assert counts_report(model.baseline, merged) == whole_frame_report(model, frame, predictions)


def test_counts_of_different_baselines_do_not_merge():
    a = DriftCounts(rows=1, features={"age": np.array([1, 0, 0])})
    b = DriftCounts(rows=1, features={"age": np.array([1, 0])})
    with pytest.raises(ValueError, match="age"):
        merge_counts(a, b)


def test_prediction_header_lines_are_skipped_wherever_they_fall(tmp_path):
    header = "encounter_id,probability,prediction"
    path = tmp_path / "part.csv.out"
    path.write_text(
        "\ufeff" + "\r\n".join([header, "1,0.100000,0", "2,0.900000,1", header, '"3,x",0.500000,1']) + "\r\n"
    )
    bare = tmp_path / "bare.csv.out"
    bare.write_text("4,0.250000,0\n")

    assert np.concatenate(list(probability_chunks(str(path), 2))).tolist() == [0.1, 0.9, 0.5]
    assert np.concatenate(list(probability_chunks(str(bare), 2))).tolist() == [0.25]


def test_rows_not_scored_are_left_out_of_the_prediction_counts(tmp_path):
    path = tmp_path / "part.csv.out"
    path.write_text(
        "encounter_id,probability,prediction,not_scored_reason\n"
        "1,0.100000,0,\n2,,,expired\n3,0.900000,1,\n4,,,hospice\n"
    )
    assert np.concatenate(list(probability_chunks(str(path), 2))).tolist() == [0.1, 0.9]


def test_streamed_counts_leave_out_the_death_and_hospice_rows(model, slice_csv, scored_slice):
    frame, predictions = scored_slice
    counts = stream_counts(
        model.baseline, model.model.named_steps["features"], str(slice_csv), str(predictions), chunk_rows=500
    )
    scored = frame[~excluded_rows(frame, model.target)]
    assert counts.rows == counts.prediction_rows == len(scored) < len(frame)
    expected = count_features(model.baseline, model.model.named_steps["features"].transform(scored))
    assert {k: v.tolist() for k, v in counts.features.items()} == {
        k: v.tolist() for k, v in expected.features.items()
    }


def test_a_prediction_line_without_a_probability_is_a_named_error(tmp_path):
    path = tmp_path / "part.csv.out"
    path.write_text("encounter_id,probability,prediction,not_scored_reason\n1,0.1,0,\n2,,1,\n")
    with pytest.raises(DatasetError, match="line 3") as caught:
        list(probability_chunks(str(path), 1000))
    assert caught.value.code == "malformed_predictions"


def test_counts_from_the_encoders_codes_equal_counts_from_the_values(
    model, scored_slice, slice_csv, tmp_path
):
    from pipelines.training_pipeline import TrainingPipeline

    frame, _predictions = scored_slice
    pipelines = [model.model]
    # The forest's encoder writes missing as -1 instead of NaN.
    TrainingPipeline({"algorithm": "RandomForest", "n_estimators": 3}).execute(
        str(slice_csv), str(tmp_path), make_report=False
    )
    pipelines.append(load_model_dir(str(tmp_path)).model)
    # Unseen, missing and rare values: the rows the encoder leaves uncoded.
    edited = frame.copy()
    edited.loc[:99, "medical_specialty"] = "Never-Seen-Before"
    edited.loc[100:199, "payer_code"] = np.nan
    for pipeline in pipelines:
        features = pipeline.named_steps["features"].transform(edited)
        encoder = pipeline.named_steps["encode"]
        plain = count_features(model.baseline, features)
        coded = count_features(model.baseline, features, (encoder.transform(features), encoder))
        assert plain.features.keys() == coded.features.keys()
        for column, expected in plain.features.items():
            assert coded.features[column].tolist() == expected.tolist(), column
        assert plain.features["medical_specialty"][-2] >= 100  # "other" was exercised

"""Drift: PSI against the training baseline flags a shifted batch and not an unshifted one."""

import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pipeline_cases import read_json

from pipelines import bundle
from pipelines.drift import (
    categorical_baseline,
    categorical_distribution,
    compute_baseline,
    drift_report,
    level,
    numeric_baseline,
    numeric_distribution,
    psi,
)


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


def test_shifted_batch_is_flagged_and_unshifted_batch_is_not(trained, slice_frame):
    from pipelines.inference import load_model_dir

    model = load_model_dir(trained.model_dir)
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


def test_processing_entry_point_reads_model_tar_gz_and_writes_the_report(trained, slice_frame, tmp_path):
    built = bundle.build(str(tmp_path / "bundle"))
    model_input = tmp_path / "model"
    model_input.mkdir()
    with tarfile.open(model_input / "model.tar.gz", "w:gz") as tar:
        for path in Path(trained.model_dir).iterdir():
            tar.add(path, arcname=path.name)
    data = tmp_path / "data"
    data.mkdir()
    raw = slice_frame.copy()
    raw["number_inpatient"] = (raw["number_inpatient"].astype(int) + 5).astype(str)
    raw.to_csv(data / "scored.csv", index=False)
    output = tmp_path / "output"
    result = subprocess.run(
        [
            sys.executable,
            str(Path(built["src"]) / "drift.py"),
            "--model",
            str(model_input),
            "--data",
            str(data),
            "--output",
            str(output),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = read_json(output / "drift_report.json")
    assert report["rows"] == len(raw)
    assert "number_inpatient" in report["drifted_features"]
    assert report["drift"] is True
    assert "number_inpatient" in (output / "drift_report.md").read_text()

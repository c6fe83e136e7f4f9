"""Shared fixtures: a slice of the real dataset (read once) and one small trained model.

Tests stay fast by training on a few thousand rows; no model is ever committed (pickles do not
move across scikit-learn/numpy versions), every test trains what it loads.
"""

import gzip
from pathlib import Path

import pandas as pd
import pytest

from pipelines.training_pipeline import TrainingPipeline

DATASET = Path(__file__).resolve().parents[2] / "data" / "diabetic_data.csv.gz"
SLICE_ROWS = 4000


@pytest.fixture(scope="session")
def raw_lines() -> list[str]:
    """Header + the first SLICE_ROWS data lines of the bundled dataset, as text lines."""
    lines = []
    with gzip.open(DATASET, "rt", newline="") as handle:
        for i, line in enumerate(handle):
            if i > SLICE_ROWS:
                break
            lines.append(line.rstrip("\r\n"))
    return lines


@pytest.fixture(scope="session")
def slice_csv(tmp_path_factory: pytest.TempPathFactory, raw_lines: list[str]) -> Path:
    path = tmp_path_factory.mktemp("data") / "slice.csv"
    path.write_text("\n".join(raw_lines) + "\n")
    return path


@pytest.fixture(scope="session")
def slice_frame(slice_csv: Path) -> pd.DataFrame:
    """The slice as text (what a user would edit to build edge cases)."""
    return pd.read_csv(slice_csv, dtype=str, keep_default_na=False)


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, slice_csv: Path):
    """One HistGradientBoosting model trained on the slice (report skipped: tested separately)."""
    out = tmp_path_factory.mktemp("model")
    result = TrainingPipeline({"max_iter": 40}).execute(str(slice_csv), str(out), make_report=False)
    return result


@pytest.fixture(scope="session")
def trained_without_history(tmp_path_factory: pytest.TempPathFactory, slice_csv: Path):
    """The same model without the patient-history features: for the tests of mechanics (drift's
    counting) that feed the model's features step raw rows directly, where history plays no part."""
    out = tmp_path_factory.mktemp("model-without-history")
    return TrainingPipeline({"max_iter": 40, "history": False}).execute(
        str(slice_csv), str(out), make_report=False
    )

"""End-to-end fixtures: slices of the bundled dataset, written to tmp (the real runs stay fast)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
DATASET = PROJECT / "data" / "diabetic_data.csv.gz"
SLICE_ROWS = 3000


def write_slice(path: Path, start: int, rows: int = SLICE_ROWS) -> Path:
    """Rows [start, start + rows) of the bundled dataset with its header, as plain CSV."""
    with gzip.open(DATASET, "rt") as source, open(path, "w") as target:
        target.write(source.readline())
        for index, line in enumerate(source):
            if index >= start + rows:
                break
            if index >= start:
                target.write(line)
    return path


@pytest.fixture(scope="session")
def slices(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Distinct files (distinct content, so no run is an idempotent replay of another)."""
    folder = tmp_path_factory.mktemp("slices")
    return {
        name: write_slice(folder / f"{name}.csv", start)
        for name, start in (
            ("first", 0),
            ("second", 20_000),
            ("third", 40_000),
            ("fourth", 60_000),
            ("fifth", 80_000),
        )
    }

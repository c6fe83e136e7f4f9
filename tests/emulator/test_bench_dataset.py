"""The benchmark's N-times dataset (emulator/bench.py): the rows it must hold for the 10x figure to be
honest - every row repeated, every encounter id unique, each copy's patients new patients."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest

from emulator.bench import ID_STRIDE, cached_scaled_dataset, scaled_dataset, short_job_name

HEADER = "encounter_id,patient_nbr,race,readmitted"
ROWS = ["11,100,Caucasian,NO", "12,100,Caucasian,<30", "13,200,?,>30", "14,300,AfricanAmerican,NO"]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "encounters.csv.gz"
    with gzip.open(path, "wt", newline="") as handle:
        handle.write(HEADER + "\n" + "\n".join(ROWS) + "\n")
    return path


def read_rows(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_row_is_repeated_once_per_copy_under_one_header(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "x3.csv.gz"
    written = scaled_dataset(source, 3, out)
    with gzip.open(out, "rt") as handle:
        lines = handle.read().splitlines()
    assert lines[0] == HEADER
    assert lines.count(HEADER) == 1
    assert written["rows"] == len(lines) - 1 == 3 * len(ROWS)
    assert written["bytes"] == len(gzip.decompress(out.read_bytes()))
    rows = read_rows(out)
    # every field but the two ids is the original's, copy after copy
    originals = [dict(zip(HEADER.split(","), line.split(","), strict=True)) for line in ROWS]
    for index, row in enumerate(rows):
        original = originals[index % len(ROWS)]
        assert (row["race"], row["readmitted"]) == (original["race"], original["readmitted"])


def test_encounter_ids_are_unique_across_all_copies(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "x4.csv.gz"
    scaled_dataset(source, 4, out)
    ids = [row["encounter_id"] for row in read_rows(out)]
    assert len(set(ids)) == len(ids) == 4 * len(ROWS)
    assert ids[: len(ROWS)] == ["11", "12", "13", "14"]  # copy 0 is the original
    assert ids[len(ROWS)] == str(11 + ID_STRIDE)


def test_each_copy_has_patients_of_its_own_and_keeps_their_grouping(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "x3.csv.gz"
    scaled_dataset(source, 3, out)
    rows = read_rows(out)
    copies = [rows[k * len(ROWS) : (k + 1) * len(ROWS)] for k in range(3)]
    patients = [{row["patient_nbr"] for row in copy} for copy in copies]
    for k in range(3):
        for other in range(k + 1, 3):
            assert patients[k].isdisjoint(patients[other])
        # the two encounters of patient 100 stay one patient within their copy
        assert copies[k][0]["patient_nbr"] == copies[k][1]["patient_nbr"] == str(100 + k * ID_STRIDE)


def test_a_plain_csv_source_is_read_as_well_as_a_gzip(tmp_path: Path) -> None:
    plain = tmp_path / "encounters.csv"
    plain.write_text(HEADER + "\n" + "\n".join(ROWS) + "\n")
    out = tmp_path / "x2.csv.gz"
    assert scaled_dataset(plain, 2, out)["rows"] == 2 * len(ROWS)


def test_a_quoted_id_field_is_refused_rather_than_mis_shifted(tmp_path: Path) -> None:
    plain = tmp_path / "quoted.csv"
    plain.write_text(HEADER + '\n"11",100,Caucasian,NO\n')
    with pytest.raises(ValueError, match="line 2 quotes an id field"):
        scaled_dataset(plain, 2, tmp_path / "x2.csv.gz")
    assert not (tmp_path / "x2.csv.gz").exists()


def test_the_cached_file_is_generated_once_and_renamed_for_a_new_source(source: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first, generated = cached_scaled_dataset(source, 2, cache)
    again, generated_again = cached_scaled_dataset(source, 2, cache)
    assert (generated, generated_again) == (True, False)
    assert first == again
    with gzip.open(source, "at") as handle:
        handle.write("15,400,Asian,NO\n")
    changed, generated = cached_scaled_dataset(source, 2, cache)
    assert generated and changed != first
    assert len(read_rows(changed)) == 2 * (len(ROWS) + 1)


def test_the_bench_names_each_job_of_a_run_by_its_step() -> None:
    """EnrichHistory's job shares the drift job's stem (the ASL gives it an `h` attempt): the bench's
    job list must not call it "drift"."""
    names = [
        "readmission-train-261201234846-538821a3-1",
        "readmission-drift-261201234846-538821a3-h1",
        "readmission-xform-261201234846-538821a3-2",
        "readmission-drift-261201234846-538821a3-1",
    ]
    assert [short_job_name(name) for name in names] == ["train", "enrich", "xform", "drift"]

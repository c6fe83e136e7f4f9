"""Builders for the made-up edge cases the pipeline tests share (bad training files)."""

import gzip
import json
import os
from pathlib import Path

import pandas as pd


def read_json(path: "str | os.PathLike[str]") -> dict:
    with open(path) as handle:
        return json.load(handle)


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


# Each bad-data case of the training contract: the error code training must report.
BAD_DATA_CASES = (
    "empty_file",
    "no_rows",
    "not_csv",
    "wrong_delimiter",
    "missing_target",
    "missing_columns",
    "non_numeric",
    "corrupt_gzip",
    "too_few_rows",
    "too_small_to_evaluate",
    "single_class",
    "duplicate_encounter_id",
    "bad_target",
)


def make_bad_case(case: str, directory: Path, lines: list[str]) -> Path:
    """Write the file for one bad-data case into `directory` (a training channel) and return it."""
    directory.mkdir(parents=True, exist_ok=True)
    header, rows = lines[0], lines[1:300]
    columns = header.split(",")
    text_path = directory / "data.csv"

    def frame() -> pd.DataFrame:
        return pd.DataFrame([r.split(",") for r in rows], columns=columns)

    if case == "empty_file":
        text_path.write_bytes(b"")
    elif case == "no_rows":
        text_path.write_text(header + "\n")
    elif case == "not_csv":
        text_path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8)
    elif case == "wrong_delimiter":
        text_path.write_text("\n".join(line.replace(",", ";") for line in [header, *rows]) + "\n")
    elif case == "missing_target":
        write_csv(text_path, frame().drop(columns=["readmitted"]))
    elif case == "missing_columns":
        write_csv(text_path, frame().drop(columns=["age", "diag_1"]))
    elif case == "non_numeric":
        data = frame()
        data.loc[10, "num_medications"] = "twelve"
        write_csv(text_path, data)
    elif case == "corrupt_gzip":
        payload = gzip.compress(("\n".join([header, *rows]) + "\n").encode())
        text_path = directory / "data.csv.gz"
        text_path.write_bytes(payload[: len(payload) // 2])
    elif case == "too_few_rows":
        text_path.write_text(header + "\n" + rows[0] + "\n")
    elif case == "too_small_to_evaluate":  # well-formed, both outcomes, but ~60 held-out rows
        text_path.write_text("\n".join([header, *rows]) + "\n")
    elif case == "single_class":
        data = frame()
        data["readmitted"] = "NO"
        write_csv(text_path, data)
    elif case == "duplicate_encounter_id":
        text_path.write_text("\n".join([header, *rows, rows[5]]) + "\n")
    elif case == "bad_target":
        data = frame()
        data.loc[3, "readmitted"] = "maybe"
        write_csv(text_path, data)
    else:
        raise AssertionError(case)
    return text_path

"""Bad datasets uploaded to `datasets/` (the S3 trigger): each fails before training with a message that
names the problem, is recorded FAILED with that reason, is notified, and loses nothing. The two shapes
that are merely unusual (BOM + CRLF, extra columns) simply work.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from emulator.runtime import LocalRuntime

from .stack import (
    CHAMPION_MOVE,
    Notifications,
    champion,
    column_index,
    dataset_lines,
    entered,
    meta_key,
    nothing_lost,
    snapshot,
    versions_of,
    write_csv,
)
from .table import Row, first_words

MODEL = "medication-adherence-model"


def _empty(folder: Path) -> Path:
    path = folder / "empty.csv"
    path.write_bytes(b"")
    return path


def _header_only(folder: Path) -> Path:
    header, _ = dataset_lines(0, 0)
    return write_csv(folder / "header_only.csv", header, [])


def _binary(folder: Path) -> Path:
    path = folder / "binary.csv"  # a spreadsheet saved under a .csv name: bytes, NULs, no text
    path.write_bytes(b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 64)
    return path


def _semicolons(folder: Path) -> Path:
    header, lines = dataset_lines(3000, 300)
    return write_csv(
        folder / "semicolons.csv", header.replace(",", ";"), [x.replace(",", ";") for x in lines]
    )


def _drop_columns(header: str, lines: list[str], names: set[str]) -> tuple[str, list[str]]:
    keep = [i for i, name in enumerate(header.split(",")) if name not in names]
    cut = lambda line: ",".join(line.split(",")[i] for i in keep)  # noqa: E731
    return cut(header), [cut(x) for x in lines]


def _no_target(folder: Path) -> Path:
    header, lines = _drop_columns(*dataset_lines(3000, 300), {"readmitted"})
    return write_csv(folder / "no_target.csv", header, lines)


def _missing_features(folder: Path) -> Path:
    header, lines = _drop_columns(*dataset_lines(3000, 300), {"age", "num_medications"})
    return write_csv(folder / "missing_features.csv", header, lines)


def _text_in_numeric(folder: Path) -> Path:
    header, lines = dataset_lines(3000, 300)
    at = column_index(header, "num_lab_procedures")
    fields = lines[5].split(",")
    fields[at] = "forty-one"
    lines[5] = ",".join(fields)
    return write_csv(folder / "text_in_numeric.csv", header, lines)


def _truncated_gzip(folder: Path) -> Path:
    header, lines = dataset_lines(3000, 1500)
    data = gzip.compress(("\n".join([header, *lines]) + "\n").encode())
    path = folder / "truncated.csv.gz"
    path.write_bytes(data[: len(data) * 2 // 3])  # an upload cut short
    return path


def _one_row(folder: Path) -> Path:
    header, lines = dataset_lines(3000, 1)
    return write_csv(folder / "one_row.csv", header, lines)


def _single_class(folder: Path) -> Path:
    header, lines = dataset_lines(3000, 3000)
    at = column_index(header, "readmitted")
    only_no = [x for x in lines if x.split(",")[at] == "NO"][:400]
    return write_csv(folder / "single_class.csv", header, only_no)


def _no_30_day_readmission(folder: Path) -> Path:
    # one class for the trained target (readmitted_30d: '<30' against the rest) while the raw column
    # still holds two values (NO, >30)
    header, lines = dataset_lines(24_000, 3000)
    at = column_index(header, "readmitted")
    return write_csv(folder / "no_30_day.csv", header, [x for x in lines if x.split(",")[at] != "<30"][:1500])


def _duplicate_ids(folder: Path) -> Path:
    header, lines = dataset_lines(3000, 300)
    return write_csv(folder / "duplicate_ids.csv", header, [*lines, lines[10]])


def _too_small_to_evaluate(folder: Path) -> Path:
    header, lines = dataset_lines(3000, 600)  # well formed, both outcomes, ~60 of them positive
    return write_csv(folder / "too_small.csv", header, lines)


def _oversized(folder: Path) -> Path:
    header, lines = dataset_lines(3000, 1500)  # about 0.5 MB against a 64 KiB limit
    return write_csv(folder / "oversized.csv", header, lines)


OVERSIZED_LIMIT = "65536"

# id -> (how the file is made, what the row says was uploaded, stage it must fail at, words of the reason)
CASES: dict[str, tuple[Callable[[Path], Path], str, str, str]] = {
    "empty-file": (_empty, "a 0-byte file", "ValidateDataset", "is empty (0 bytes)"),
    "header-only": (_header_only, "the header line and no rows", "ValidateDataset", "has 0 data rows"),
    "binary": (_binary, "binary bytes (a zip) named .csv", "ValidateDataset", "is binary, not a CSV"),
    "wrong-delimiter": (_semicolons, "300 rows separated by ';'", "ValidateDataset", "uses ';' as delimiter"),
    "missing-target": (
        _no_target,
        "300 rows without the `readmitted` column",
        "ValidateDataset",
        "has no target column 'readmitted'",
    ),
    "missing-features": (
        _missing_features,
        "300 rows without `age` and `num_medications`",
        "ValidateDataset",
        "lacks required training columns: age, num_medications",
    ),
    "text-in-numeric": (
        _text_in_numeric,
        "300 rows, `num_lab_procedures` = 'forty-one' on line 7",
        "ValidateDataset",
        "column 'num_lab_procedures' must be numeric; line 7",
    ),
    "truncated-gzip": (
        _truncated_gzip,
        "a .csv.gz cut at two thirds of its bytes",
        "ValidateDataset",
        "truncated gzip",
    ),
    "one-row": (_one_row, "the header and one row", "ValidateDataset", "has 1 data row"),
    "single-class": (
        _single_class,
        "400 rows, every `readmitted` = NO",
        "ValidateDataset",
        "has a single class",
    ),
    "single-class-for-the-30-day-target": (
        _no_30_day_readmission,
        "1500 rows with `readmitted` NO or >30 only (no '<30')",
        "ValidateDataset",
        "has a single class for target readmitted_30d",
    ),
    "duplicate-encounter-ids": (
        _duplicate_ids,
        "300 rows plus a repeat of line 12",
        "ValidateDataset",
        "repeats encounter_id",
    ),
    "too-small-to-evaluate": (
        _too_small_to_evaluate,
        "600 well-formed rows (both outcomes)",
        "ValidateDataset",
        "is too small to evaluate",
    ),
    "over-size-limit": (
        _oversized,
        f"a 0.5 MB file with MAX_DATASET_BYTES={OVERSIZED_LIMIT}",
        "PrepareRun",
        f"the limit is {OVERSIZED_LIMIT}",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_dataset_fails_before_training_names_the_problem_and_loses_nothing(
    case: str,
    runtime: LocalRuntime,
    baseline: dict[str, Any],
    notifications: Notifications,
    data_dir: Path,
    resilience_row: Callable[[Row], None],
) -> None:
    make, described, stage, reason = CASES[case]
    path = make(data_dir)
    key = runtime.datasets_prefix + path.name
    before = snapshot(runtime)
    limit = os.environ["MAX_DATASET_BYTES"]
    if case == "over-size-limit":
        runtime.update_environment(MAX_DATASET_BYTES=OVERSIZED_LIMIT)
    try:
        [event] = runtime.trigger.upload(str(path), key)
        record = runtime.run(event)
    finally:
        runtime.update_environment(MAX_DATASET_BYTES=limit)
    after = snapshot(runtime)
    run_id = record["name"]

    assert record["status"] == "FAILED"
    assert record["error"] == "InvalidDataset", record["cause"]
    assert reason in record["cause"]
    assert "TrainModel" not in entered(record)  # failed fast: no job was started
    assert entered(record)[-3:] == ["RecordFailure", "NotifyFailure", "RunFailed"]
    run = after.items[(f"RUN#{run_id}", "RUN")]
    assert (run["status"], run["stage"], run["error"]) == ("FAILED", stage, "InvalidDataset")
    assert reason in run["cause"]
    [notice] = notifications.about(run_id)
    assert f"failed at {stage}: InvalidDataset" in notice["subject"] and reason in notice["message"]
    nothing_lost(before, after, run_ids=[run_id], uploads=(key,))
    assert champion(after.items, MODEL) == champion(before.items, MODEL) is not None
    assert versions_of(after.items, MODEL) == versions_of(before.items, MODEL)

    resilience_row(
        Row(
            "Bad datasets",
            case.replace("-", " ").capitalize(),
            f"uploaded {described} to datasets/",
            record["status"],
            record["error"],
            first_words(run["cause"], run_id),
            f"run FAILED at {stage}, notified; champion and versions unchanged",
            "yes",
        )
    )


def test_a_bom_and_crlf_line_ends_simply_work(
    runtime: LocalRuntime,
    baseline: dict[str, Any],
    notifications: Notifications,
    resilience_row: Callable[[Row], None],
) -> None:
    record = baseline["record"]
    run_id = record["name"]
    items = snapshot(runtime).items

    assert record["status"] == "SUCCEEDED"
    assert "TrainModel" in entered(record) and entered(record)[-1] == "RunSucceeded"
    run = items[(f"RUN#{run_id}", "RUN")]
    assert run["status"] == "SUCCEEDED"
    version = versions_of(items, MODEL)[int(run["model_version"])]
    assert (version["status"], version["run_status"]) == ("APPROVED", "SUCCEEDED")
    [notice] = notifications.about(run_id)
    assert "run succeeded" in notice["subject"]

    resilience_row(
        Row(
            "Bad datasets",
            "UTF-8 BOM and CRLF line ends",
            "uploaded 3000 rows saved with a BOM and CRLF line ends to datasets/",
            record["status"],
            "-",
            "trained, approved, scored, drift reported",
            "version APPROVED and champion, run SUCCEEDED, notified",
            "yes",
        )
    )


def test_extra_unknown_columns_are_ignored_and_the_run_succeeds(
    runtime: LocalRuntime,
    baseline: dict[str, Any],
    notifications: Notifications,
    data_dir: Path,
    resilience_row: Callable[[Row], None],
) -> None:
    header, lines = dataset_lines(6000, 3000)
    path = write_csv(
        data_dir / "extra_columns.csv",
        header + ",ward,discharge_note",
        [f"{line},W{i % 7},note {i}" for i, line in enumerate(lines)],
    )
    key = runtime.datasets_prefix + path.name
    before = snapshot(runtime)
    [event] = runtime.trigger.upload(str(path), key)

    record = runtime.run(event)

    after = snapshot(runtime)
    run_id = record["name"]
    assert record["status"] == "SUCCEEDED", record["cause"]
    run = after.items[(f"RUN#{run_id}", "RUN")]
    assert run["status"] == "SUCCEEDED"
    changes = nothing_lost(
        before,
        after,
        run_ids=[run_id],
        uploads=(key,),
        new_versions_of=MODEL,
        allowed_changes={meta_key(MODEL): CHAMPION_MOVE},
    )
    assert any(k.startswith(f"runs/{run_id}/predictions/") for k in changes.new_keys)
    [notice] = notifications.about(run_id)
    assert "run succeeded" in notice["subject"]

    resilience_row(
        Row(
            "Bad datasets",
            "Extra unknown columns",
            "uploaded 3000 rows with two columns the schema does not know",
            record["status"],
            "-",
            "unknown columns ignored; trained, scored",
            "new version registered, run SUCCEEDED, notified",
            "yes (earlier versions and artifacts)",
        )
    )


def test_a_dataset_too_small_to_evaluate_fails_the_training_job_with_the_sentence(
    runtime: LocalRuntime,
    baseline: dict[str, Any],
    notifications: Notifications,
    data_dir: Path,
    resilience_row: Callable[[Row], None],
) -> None:
    # 7000 rows (more than ValidateDataset's 1 MiB sample, so it cannot count the whole file) with
    # only 150 of them readmitted within 30 days: too few positives to evaluate on held-out patients.
    header, lines = dataset_lines(30_000, 7000)
    at = column_index(header, "readmitted")
    kept, thinned = 0, []
    for line in lines:
        fields = line.split(",")
        if fields[at] == "<30":
            kept += 1
            if kept > 150:
                fields[at] = "NO"
        thinned.append(",".join(fields))
    path = write_csv(data_dir / "few_positives.csv", header, thinned)
    key = runtime.datasets_prefix + path.name
    before = snapshot(runtime)
    [event] = runtime.trigger.upload(str(path), key)

    record = runtime.run(event)

    after = snapshot(runtime)
    run_id = record["name"]
    assert record["status"] == "FAILED"
    assert "TrainModel" in entered(record) and entered(record)[-3:] == [
        "RecordFailure",
        "NotifyFailure",
        "RunFailed",
    ]
    reason = "Invalid dataset (too_small_to_evaluate): the dataset has"
    assert reason in record["cause"] and "250 positives" in record["cause"]
    run = after.items[(f"RUN#{run_id}", "RUN")]
    assert (run["status"], run["stage"]) == ("FAILED", "TrainModel")
    assert reason in run["cause"] and "150 positives" in run["cause"]
    [notice] = notifications.about(run_id)
    assert "failed at TrainModel" in notice["subject"] and reason in notice["message"]
    nothing_lost(before, after, run_ids=[run_id], uploads=(key,))
    assert champion(after.items, MODEL) == champion(before.items, MODEL) is not None
    assert versions_of(after.items, MODEL) == versions_of(before.items, MODEL)

    resilience_row(
        Row(
            "Bad datasets",
            "Too few positives to evaluate (file larger than the sample)",
            "uploaded 7000 rows with only 150 readmitted within 30 days to datasets/",
            record["status"],
            record["error"],
            first_words(run["cause"], run_id),
            "run FAILED at TrainModel before fitting, notified; champion and versions unchanged",
            "yes",
        )
    )

"""ValidateDataset: every bad upload is refused in seconds with a message naming the problem."""

from __future__ import annotations

import copy
import gzip
from typing import Any

import pytest

import validate_dataset
from conftest import BUCKET, DATASET, Aws, dataset_head, gz, load_event
from errors import InvalidDataset


def run_for(aws: Aws, body: bytes, *, name: str = "data.csv", score: bytes | None = None) -> dict[str, Any]:
    """events/validate_dataset.json with its snapshot (and optionally a score file) replaced by `body`."""
    event = copy.deepcopy(load_event("validate_dataset.json"))
    run = event["run"]
    snapshot = f"runs/{run['runId']}/input/{name}"
    aws.put(snapshot, body)
    run["snapshotUri"] = f"s3://{BUCKET}/{snapshot}"
    run["scoreUri"] = run["snapshotUri"]
    if score is not None:
        aws.put("scoring/score.csv", score)
        run["scoreUri"] = f"s3://{BUCKET}/scoring/score.csv"
    return event


def replace_column(data: bytes, column: str, row: int, value: str) -> bytes:
    lines = data.decode().split("\n")
    header = lines[0].split(",")
    cells = lines[row].split(",")
    cells[header.index(column)] = value
    lines[row] = ",".join(cells)
    return "\n".join(lines).encode()


def drop_column(data: bytes, column: str) -> bytes:
    lines = [line for line in data.decode().split("\n") if line]
    index = lines[0].split(",").index(column)
    return (
        "\n".join(",".join(c for i, c in enumerate(line.split(",")) if i != index) for line in lines) + "\n"
    ).encode()


def test_the_bundled_dataset_passes(aws: Aws) -> None:
    event = run_for(aws, DATASET.read_bytes(), name="diabetic_data.csv.gz")

    result = validate_dataset.handler(event, None)

    assert result["dataset"]["columns"] == 50
    assert result["dataset"]["compressed"] is True
    assert result["dataset"]["sampledRows"] > 1000
    assert result["scoreFile"]["uri"] == event["run"]["scoreUri"]


def test_the_sample_event_validates_once_its_snapshot_exists(aws: Aws) -> None:
    event = load_event("validate_dataset.json")
    aws.put(event["run"]["snapshotUri"].split(f"{BUCKET}/", 1)[1], DATASET.read_bytes())

    assert validate_dataset.handler(event, None)["dataset"]["sampleIsWholeFile"] is False  # 18 MB > sample


def test_a_bom_and_crlf_line_ends_are_accepted(aws: Aws) -> None:
    body = b"\xef\xbb\xbf" + dataset_head(200).replace(b"\n", b"\r\n")

    result = validate_dataset.handler(run_for(aws, body), None)

    assert result["dataset"]["sampledRows"] == 200


BAD_DATASETS = [
    ("empty file", lambda: b"", "is empty"),
    ("header only", lambda: dataset_head(0), "has 0 data rows"),
    ("one row", lambda: dataset_head(1), "has 1 data row;"),
    ("binary", lambda: b"PK\x03\x04\x00\x00\x08\x00" + bytes(range(256)) * 10, "binary"),
    ("wrong delimiter", lambda: dataset_head(50).replace(b",", b";"), "uses ';' as delimiter"),
    ("missing target", lambda: drop_column(dataset_head(50), "readmitted"), "no target column 'readmitted'"),
    (
        "missing required column",
        lambda: drop_column(dataset_head(50), "age"),
        "lacks required training columns: age",
    ),
    (
        "text in a numeric column",
        lambda: replace_column(dataset_head(50), "num_lab_procedures", 7, "forty-one"),
        "column 'num_lab_procedures' must be numeric; line 8 has 'forty-one'",
    ),
    (
        "unknown target value",
        lambda: replace_column(dataset_head(50), "readmitted", 3, "MAYBE"),
        "unknown value 'MAYBE' on line 4",
    ),
    (
        "single class",
        lambda: (
            b"\n".join(
                line.rsplit(b",", 1)[0] + b",NO" if i else line
                for i, line in enumerate(dataset_head(300).rstrip(b"\n").split(b"\n"))
            )
            + b"\n"
        ),
        "single class: all 300 sampled rows have readmitted='NO'",
    ),
    (
        "duplicate encounter_id",
        lambda: replace_column(dataset_head(50), "encounter_id", 9, "2278392"),
        "repeats encounter_id 2278392 (lines 2 and 10)",
    ),
    ("ragged row", lambda: dataset_head(20) + b"1,2,3\n", "line 22 has 3 fields; the header has 50"),
    ("not utf-8", lambda: dataset_head(20) + "é".encode("latin-1") * 3 + b"\n", "not UTF-8"),
]


@pytest.mark.parametrize(("label", "make", "message"), BAD_DATASETS, ids=[b[0] for b in BAD_DATASETS])
def test_a_bad_dataset_is_rejected_with_the_problem_named(
    aws: Aws, label: str, make: Any, message: str
) -> None:
    event = run_for(aws, make())

    with pytest.raises(InvalidDataset) as caught:
        validate_dataset.handler(event, None)

    assert message in str(caught.value)
    assert event["run"]["snapshotUri"] in str(caught.value)


def test_a_truncated_gzip_is_rejected(aws: Aws) -> None:
    body = DATASET.read_bytes()[:-5000]

    with pytest.raises(InvalidDataset, match="truncated gzip"):
        validate_dataset.handler(run_for(aws, body, name="diabetic_data.csv.gz"), None)


def test_a_gz_name_on_plain_text_is_rejected(aws: Aws) -> None:
    with pytest.raises(InvalidDataset, match=r"named \.gz but is not gzip"):
        validate_dataset.handler(run_for(aws, dataset_head(20), name="data.csv.gz"), None)


def test_a_large_gzip_with_a_bad_trailer_is_flagged_without_reading_it_through(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(validate_dataset, "FULL_GZIP_CHECK_BYTES", 1000)
    whole = gz(dataset_head(3000))
    cut = whole[: len(whole) // 2]
    # Make the cut file's last 4 bytes claim a tiny uncompressed size, as random deflate bytes often do.
    body = cut[:-4] + (10).to_bytes(4, "little")

    with pytest.raises(InvalidDataset, match="truncated gzip"):
        validate_dataset.handler(run_for(aws, body, name="big.csv.gz"), None)
    # ...while the intact file passes the same (trailer-only) path.
    assert validate_dataset.handler(run_for(aws, whole, name="big.csv.gz"), None)["dataset"]["compressed"]


def test_a_dataset_over_the_size_limit_is_rejected(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    import settings

    monkeypatch.setenv("MAX_DATASET_BYTES", "2048")
    settings.load_settings.cache_clear()

    with pytest.raises(InvalidDataset, match="the limit is 2048 bytes"):
        validate_dataset.handler(run_for(aws, dataset_head(200)), None)


def test_a_missing_snapshot_is_named(aws: Aws) -> None:
    event = run_for(aws, dataset_head(20))
    event["run"]["snapshotUri"] += "-gone"

    with pytest.raises(InvalidDataset, match="does not exist"):
        validate_dataset.handler(event, None)


def test_the_score_file_needs_the_scoring_columns_but_not_the_target(aws: Aws) -> None:
    score = drop_column(drop_column(dataset_head(30), "readmitted"), "patient_nbr")
    assert (
        validate_dataset.handler(run_for(aws, dataset_head(30), score=score), None)["scoreFile"]["columns"]
        == 48
    )

    bad = drop_column(score, "diag_1")
    with pytest.raises(InvalidDataset, match=r"scoring/score\.csv lacks required scoring columns: diag_1"):
        validate_dataset.handler(run_for(aws, dataset_head(30), score=bad), None)


def test_a_gzip_sample_larger_than_the_sample_limit_is_cut_at_a_line(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(validate_dataset, "SAMPLE_TEXT_BYTES", 50_000)

    result = validate_dataset.handler(run_for(aws, DATASET.read_bytes(), name="d.csv.gz"), None)

    assert result["dataset"]["sampleIsWholeFile"] is False
    assert 100 < result["dataset"]["sampledRows"] < 300


def test_the_schema_is_read_once_per_container(aws: Aws) -> None:
    validate_dataset.handler(run_for(aws, dataset_head(20)), None)
    aws.s3.delete_object(Bucket=BUCKET, Key="code/dataset_schema.json")

    assert validate_dataset.handler(run_for(aws, dataset_head(20)), None)["dataset"]["sampledRows"] == 20


def test_gzip_of_the_header_only_is_still_header_only(aws: Aws) -> None:
    with pytest.raises(InvalidDataset, match="has 0 data rows"):
        validate_dataset.handler(run_for(aws, gzip.compress(dataset_head(0)), name="h.csv.gz"), None)


def test_a_run_scoring_its_own_dataset_reads_it_once(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    event = run_for(aws, DATASET.read_bytes(), name="diabetic_data.csv.gz")
    reads: list[str] = []
    real_read_sample = validate_dataset.read_sample
    monkeypatch.setattr(
        validate_dataset,
        "read_sample",
        lambda s3, uri, settings: reads.append(str(uri)) or real_read_sample(s3, uri, settings),
    )

    result = validate_dataset.handler(event, None)

    assert reads == [event["run"]["snapshotUri"]]
    assert result["scoreFile"]["uri"] == event["run"]["scoreUri"]


def test_every_required_scoring_column_is_a_required_training_column() -> None:
    # What lets a run that scores its own dataset skip the scoring checks (see validate_run_inputs).
    from pipelines import schema

    contract = schema.as_json_dict()
    assert set(contract["required_scoring_columns"]) <= set(contract["required_training_columns"])

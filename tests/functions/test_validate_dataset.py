"""ValidateDataset: every bad upload is refused in seconds with a message naming the problem."""

from __future__ import annotations

import copy
import gzip
import json
from typing import Any

import pytest

import validate_dataset
from errors import InvalidDataset
from tests.functions.helpers import BUCKET, DATASET, Aws, dataset_head, gz, load_event


def put_schema(aws: Aws, **minimum_evaluation: int) -> None:
    """code/dataset_schema.json as pipelines/schema.py writes it, with the held-out minimums replaced."""
    from pipelines.schema import as_json_dict

    written = as_json_dict()
    written["minimum_evaluation"] = {**written["minimum_evaluation"], **minimum_evaluation}  # type: ignore[dict-item]
    aws.put("code/dataset_schema.json", json.dumps(written).encode())
    validate_dataset.clear_schema_cache()


@pytest.fixture(autouse=True)
def small_files_may_train(aws: Aws) -> None:
    """A test-only setting: most tests here check one rule on a few dozen rows, far fewer than a
    dataset needs to be evaluated, so their schema lowers the held-out minimums to 0 (off). The tests of the
    minimum put back the schema pipelines/schema.py writes (`put_schema(aws)`)."""
    put_schema(aws, held_out_rows=0, held_out_per_class=0)


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


def parts_run(aws: Aws, parts: dict[str, bytes]) -> dict[str, Any]:
    """A run whose scoreUri is the prefix scoring/parts/ holding `parts` (name -> body)."""
    event = run_for(aws, dataset_head(30))
    for name, body in parts.items():
        aws.put(f"scoring/parts/{name}", body)
    event["run"]["scoreUri"] = f"s3://{BUCKET}/scoring/parts/"
    return event


def head_rows(first: int, count: int) -> bytes:
    """The header and `count` data lines of the bundled dataset from data line `first`."""
    lines = dataset_head(first + count).split(b"\n")
    return b"\n".join([lines[0], *lines[1 + first : 1 + first + count]]) + b"\n"


def test_the_score_files_header_and_compression_are_returned_for_the_transform(aws: Aws) -> None:
    body = b"\xef\xbb\xbf" + dataset_head(40).replace(b"\n", b"\r\n")
    header = dataset_head(0).decode().strip()

    result = validate_dataset.handler(run_for(aws, dataset_head(30), score=gz(body)), None)

    assert result["scoreFile"]["header"] == header  # no BOM, no CR: the line SCORING_COLUMNS carries
    assert result["scoreFile"]["compressionType"] == "Gzip"
    assert result["dataset"]["compressionType"] == "None"


def test_a_prefix_of_parts_is_validated_part_by_part_in_key_order(aws: Aws) -> None:
    event = parts_run(aws, {"b.csv": head_rows(10, 10), "a.csv": head_rows(0, 10), "c.csv": head_rows(20, 5)})

    result = validate_dataset.handler(event, None)["scoreFile"]

    assert result["uri"] == f"s3://{BUCKET}/scoring/parts/"
    assert result["parts"] == 3
    assert result["sampledRows"] == 25
    assert result["header"] == dataset_head(0).decode().strip()


def test_parts_with_different_headers_are_refused_with_both_named(aws: Aws) -> None:
    other = drop_column(head_rows(10, 10), "patient_nbr")
    event = parts_run(aws, {"a.csv": head_rows(0, 10), "b.csv": other})

    with pytest.raises(InvalidDataset, match=r"must share one header: b\.csv has .* a\.csv has"):
        validate_dataset.handler(event, None)


def test_parts_mixing_gzip_and_plain_csv_are_refused(aws: Aws) -> None:
    event = parts_run(aws, {"a.csv": head_rows(0, 10), "b.csv.gz": gz(head_rows(10, 10))})

    with pytest.raises(InvalidDataset, match="must all be gzip or all plain CSV"):
        validate_dataset.handler(event, None)


def test_a_prefix_with_no_parts_is_refused(aws: Aws) -> None:
    event = parts_run(aws, {})

    with pytest.raises(InvalidDataset, match="holds no parts to score"):
        validate_dataset.handler(event, None)


def test_a_prefix_with_more_parts_than_the_limit_is_refused(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(validate_dataset, "MAX_SCORE_PARTS", 2)
    event = parts_run(aws, {f"p{i}.csv": head_rows(i * 5, 5) for i in range(3)})

    with pytest.raises(InvalidDataset, match="more than 2 parts"):
        validate_dataset.handler(event, None)


def test_a_line_longer_than_a_transform_mini_batch_is_refused_before_training(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(validate_dataset, "TRANSFORM_MAX_PAYLOAD_MB", 0.001)  # 1,048 bytes
    long_row = replace_column(dataset_head(5), "diag_3", 3, "4" * 2000)

    with pytest.raises(InvalidDataset, match=r"line 4 is \d+ bytes; .*MaxPayloadInMB"):
        validate_dataset.handler(run_for(aws, dataset_head(30), score=long_row), None)


def test_the_payload_limit_is_the_batch_transforms() -> None:
    import json
    from pathlib import Path

    asl = Path(__file__).resolve().parents[2] / "statemachine" / "readmission_pipeline.asl.json"
    params = json.loads(asl.read_text())["States"]["BatchTransform"]["Parameters"]
    assert params["MaxPayloadInMB"] == validate_dataset.TRANSFORM_MAX_PAYLOAD_MB


def test_a_whole_file_too_small_to_evaluate_is_refused_before_training(aws: Aws) -> None:
    put_schema(aws)
    with pytest.raises(InvalidDataset) as caught:
        validate_dataset.handler(run_for(aws, dataset_head(20)), None)
    message = str(caught.value)
    assert "is too small to evaluate: it has 20 usable rows with 3 positives and 17 negatives" in message
    assert "200 held-out rows with 50 of each outcome" in message
    assert "at validation_fraction 0.2 a dataset of at least 1,000 usable rows with 250 positives" in message


def test_the_size_check_counts_the_rows_the_target_uses(aws: Aws) -> None:
    put_schema(aws)
    # 3,000 rows: 2,959 usable once the 41 death/hospice encounters are left out, 313 positives.
    result = validate_dataset.handler(run_for(aws, dataset_head(3000)), None)
    assert result["dataset"]["sampleIsWholeFile"] is True
    put_schema(aws, held_out_rows=592)  # 2,959 * 0.2 = 591.8: the whole 3,000 would pass, the usable not
    with pytest.raises(InvalidDataset, match=r"2,959 usable rows .*death/hospice encounters not counted"):
        validate_dataset.handler(run_for(aws, dataset_head(3000)), None)


def test_a_sample_that_is_not_the_whole_file_is_not_judged_by_its_size(aws: Aws) -> None:
    put_schema(aws, held_out_rows=10**9)  # no file could pass: only a complete sample is judged
    result = validate_dataset.handler(run_for(aws, dataset_head(60_000)), None)
    assert result["dataset"]["sampleIsWholeFile"] is False


def test_the_dataset_minimum_follows_the_runs_validation_fraction(aws: Aws) -> None:
    put_schema(aws)
    event = run_for(aws, dataset_head(900))
    event["run"]["hyperparameters"]["validation_fraction"] = "0.5"
    with pytest.raises(
        InvalidDataset, match=r"at validation_fraction 0.5 a dataset of at least 400 usable rows"
    ):
        validate_dataset.handler(event, None)


def test_an_unreadable_large_gzip_names_the_file_it_is(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    # Too large to read through, so only its prefix is decompressed; a run reads two files, and the
    # message must say which one is broken (here the score file, not the dataset).
    monkeypatch.setattr(validate_dataset, "FULL_GZIP_CHECK_BYTES", 100)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"  # gzip, deflate, then an invalid block type
    body = header + b"\xff" * 200 + (10**6).to_bytes(4, "little") * 2  # a plausible trailer
    event = run_for(aws, dataset_head(30))
    aws.put("scoring/score.csv.gz", body)
    event["run"]["scoreUri"] = f"s3://{BUCKET}/scoring/score.csv.gz"

    with pytest.raises(InvalidDataset) as caught:
        validate_dataset.handler(event, None)

    assert str(caught.value) == (
        f"s3://{BUCKET}/scoring/score.csv.gz is not a readable gzip file "
        "(Error -3 while decompressing data: invalid block type)"
    )


LEADING_BLANKS = [
    ("an empty line", b"\n"),
    ("a CRLF empty line", b"\r\n"),
    ("spaces", b"   \n"),
    ("commas only", b",,,\n"),
    ("a BOM then an empty line", b"\xef\xbb\xbf\n"),
]


@pytest.mark.parametrize(("label", "prefix"), LEADING_BLANKS, ids=[b[0] for b in LEADING_BLANKS])
def test_blank_lines_before_the_header_are_refused_as_the_training_job_refuses_them(
    aws: Aws, tmp_path: Any, label: str, prefix: bytes
) -> None:
    body = prefix + dataset_head(50)
    event = run_for(aws, body)

    with pytest.raises(InvalidDataset) as caught:
        validate_dataset.handler(event, None)

    assert str(caught.value) == (
        f"{event['run']['snapshotUri']} starts with a blank line; the header (the column names) must "
        "be line 1, not line 2"
    )
    # The trainer reads the column names from line 1: the same file would fail there, after paying.
    assert "has no target column 'readmitted'" in _trainer_refusal(tmp_path, body)


def test_a_wrong_delimiter_after_blank_lines_is_not_taken_for_a_header(aws: Aws) -> None:
    # Before: the delimiter check looked at the (empty) first line and let a ';' file through to
    # "no target column", which names the wrong problem. Now the blank lines are named first.
    event = run_for(aws, b"\n\n" + dataset_head(50).replace(b",", b";"))

    with pytest.raises(InvalidDataset, match=r"starts with a blank line; .* must be line 1, not line 3$"):
        validate_dataset.handler(event, None)


def test_blank_lines_between_rows_are_accepted_as_the_training_job_accepts_them(
    aws: Aws, tmp_path: Any
) -> None:
    from pipelines.data import read_training_file

    lines = dataset_head(50).split(b"\n")
    body = b"\n".join([*lines[:3], b"", b"  ", *lines[3:]])

    assert validate_dataset.handler(run_for(aws, body), None)["dataset"]["sampledRows"] == 50
    (tmp_path / "data.csv").write_bytes(body)
    assert len(read_training_file(str(tmp_path / "data.csv"))) == 50


def with_blank_lines(data: bytes, after_data_row: int, count: int) -> bytes:
    """`data` with `count` empty lines inserted after data row `after_data_row` (1 = the first)."""
    lines = data.split(b"\n")
    return b"\n".join([*lines[: after_data_row + 1], *([b""] * count), *lines[after_data_row + 1 :]])


PHYSICAL_LINES = [
    ("LF", lambda body: body),
    ("CRLF", lambda body: body.replace(b"\n", b"\r\n")),
    ("BOM and CRLF", lambda body: b"\xef\xbb\xbf" + body.replace(b"\n", b"\r\n")),
]


@pytest.mark.parametrize(("label", "encode"), PHYSICAL_LINES, ids=[p[0] for p in PHYSICAL_LINES])
def test_messages_name_the_physical_line_an_editor_shows(aws: Aws, label: str, encode: Any) -> None:
    # Data row 7 is on line 8; three blank lines after data row 2 move it to line 11.
    body = with_blank_lines(replace_column(dataset_head(50), "num_lab_procedures", 7, "forty-one"), 2, 3)
    event = run_for(aws, encode(body))

    with pytest.raises(InvalidDataset) as caught:
        validate_dataset.handler(event, None)

    assert str(caught.value) == (
        f"{event['run']['snapshotUri']} column 'num_lab_procedures' must be numeric; line 11 has 'forty-one'"
    )


def test_a_repeated_id_names_both_physical_lines(aws: Aws) -> None:
    body = with_blank_lines(replace_column(dataset_head(50), "encounter_id", 9, "2278392"), 1, 2)
    event = run_for(aws, body.replace(b"\n", b"\r\n"))

    with pytest.raises(InvalidDataset) as caught:
        validate_dataset.handler(event, None)

    assert str(caught.value) == (
        f"{event['run']['snapshotUri']} repeats encounter_id 2278392 (lines 2 and 12)"
    )


def test_a_quoted_field_spanning_lines_moves_the_next_rows_line_number(aws: Aws) -> None:
    # A quoted value holding a line break is one row on two lines: the row after it starts a line later.
    lines = dataset_head(20).decode().split("\n")
    header = lines[0].split(",")
    cells = lines[2].split(",")
    cells[header.index("payer_code")] = '"two\nlines"'
    lines[2] = ",".join(cells)
    lines[4] = lines[4].rsplit(",", 1)[0] + ",MAYBE"
    event = run_for(aws, "\n".join(lines).encode())

    with pytest.raises(InvalidDataset) as caught:
        validate_dataset.handler(event, None)

    assert str(caught.value).startswith(
        f"{event['run']['snapshotUri']} column 'readmitted' has unknown value 'MAYBE' on line 6; "
    )


def _trainer_refusal(tmp_path: Any, body: bytes) -> str:
    """What the training job's reader says of `body` (pipelines/data.py), to keep the two in step."""
    from pipelines.data import DatasetError, read_training_data

    (tmp_path / "data.csv").write_bytes(body)
    with pytest.raises(DatasetError) as caught:
        read_training_data(str(tmp_path))
    return str(caught.value)


@pytest.mark.parametrize(("column", "value"), [("encounter_id", ""), ("patient_nbr", "?")])
def test_a_training_row_without_its_ids_is_refused_naming_its_line(
    aws: Aws, tmp_path: Any, column: str, value: str
) -> None:
    body = replace_column(dataset_head(50), column, 5, value)
    event = run_for(aws, body)

    with pytest.raises(InvalidDataset) as caught:
        validate_dataset.handler(event, None)

    assert str(caught.value) == (
        f"{event['run']['snapshotUri']} line 6 has no {column} (empty or '?'); training needs it on every row"
    )
    assert f"column '{column}' has empty or '?' values" in _trainer_refusal(tmp_path, body)


def test_a_line_of_commas_after_the_header_is_a_row_of_empty_fields_not_a_blank_line(
    aws: Aws, tmp_path: Any
) -> None:
    """The training job reads a full-width line of commas as a row with every value missing and
    refuses it; the validator used to drop it as blank and let the run pay for a failing job."""
    lines = dataset_head(50).split(b"\n")
    commas = b"," * (lines[0].count(b",") or 1)
    body = b"\n".join([*lines[:4], commas, *lines[4:]])
    event = run_for(aws, body)

    with pytest.raises(InvalidDataset) as caught:
        validate_dataset.handler(event, None)

    assert str(caught.value) == (
        f"{event['run']['snapshotUri']} line 5 has no encounter_id (empty or '?'); training needs it on "
        "every row"
    )
    assert "has empty or '?' values" in _trainer_refusal(tmp_path, body)
    for commas, fields in ((b",,,", 4), (b",", 2)):
        short = b"\n".join([*lines[:4], commas, *lines[4:]])
        with pytest.raises(InvalidDataset, match=rf"line 5 has {fields} fields; the header has 50$"):
            validate_dataset.handler(run_for(aws, short), None)


def test_a_field_longer_than_the_csv_modules_default_limit_is_read(aws: Aws, tmp_path: Any) -> None:
    """The csv module refuses fields over 128 KiB unless told otherwise; pandas, which trains, reads
    them, so the validator must not fail (it used to crash with an unhandled _csv.Error)."""
    from pipelines.data import read_training_data

    body = replace_column(dataset_head(50), "medical_specialty", 3, "x" * (200 * 1024))

    assert validate_dataset.handler(run_for(aws, body), None)["dataset"]["sampledRows"] == 50
    (tmp_path / "data.csv").write_bytes(body)
    assert len(read_training_data(str(tmp_path))) == 50


def test_a_csv_the_reader_cannot_parse_is_refused_in_words(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    import csv

    body = replace_column(dataset_head(50), "medical_specialty", 3, "x" * 200)
    event = run_for(aws, body)
    previous = csv.field_size_limit(100)
    try:
        with pytest.raises(InvalidDataset) as caught:
            validate_dataset.handler(event, None)
    finally:
        csv.field_size_limit(previous)

    assert str(caught.value) == (
        f"{event['run']['snapshotUri']} is not a CSV the pipeline can read (line 4: field larger than "
        "field limit (100))"
    )

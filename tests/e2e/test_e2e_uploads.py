"""What users really upload, through every trigger: the plain UCI CSV (18 MB: a multipart upload), a
gzip over 8 MiB, CRLF line endings, a UTF-8 BOM, and a key with spaces and '+' in its name.

The bundled 3 MB gzip is a single-part upload and hides every multipart defect (a run on the plain
CSV failed at TrainModel with `FlexibleChecksumError` while the suite was green). Uploads here go
through boto3's `upload_file`, which splits files over 8 MiB into parts exactly as `aws s3 cp` does.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from emulator.progress import Progress
from emulator.runtime import LocalRuntime
from emulator.summary import summarize

PROJECT = Path(__file__).resolve().parents[2]
DATASET = PROJECT / "data" / "diabetic_data.csv.gz"
MiB = 1024 * 1024
AWKWARD_NAME = "export 2026+v2 (copy).csv"  # a space, a '+' and parentheses, as files get named


@pytest.fixture(scope="module")
def uci_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The file users download from UCI: diabetic_data.csv, uncompressed, CRLF line endings."""
    path = tmp_path_factory.mktemp("uci") / "diabetic_data.csv"
    path.write_bytes(gzip.decompress(DATASET.read_bytes()))
    return path


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    # The gate is not what these tests test: with the minimum at 0 any slice's model is approved, so a
    # run succeeds whichever test comes first (a weaker slice's model, rejected while no champion
    # exists yet, would fail its run; the tests run in random order).
    with LocalRuntime(
        state_dir=tmp_path_factory.mktemp("state"),
        parameters={"MinRocAuc": "0"},
        progress=Progress(verbose_jobs=False),
    ) as rt:
        yield rt


def prediction_parts(runtime: LocalRuntime, record: dict[str, Any]) -> dict[str, list[str]]:
    """Every `.out` the transform wrote for the run (one per score file or part), key -> lines."""
    run_id = record["name"]
    s3 = boto3.client("s3")
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=runtime.stack.bucket, Prefix=f"runs/{run_id}/predictions/"
    )
    keys = sorted(o["Key"] for page in pages for o in page.get("Contents", []) if o["Key"].endswith(".out"))
    assert keys, f"no predictions under runs/{run_id}/predictions/"
    return {
        key: s3.get_object(Bucket=runtime.stack.bucket, Key=key)["Body"].read().decode().splitlines()
        for key in keys
    }


def predictions(runtime: LocalRuntime, record: dict[str, Any]) -> int:
    """Rows scored, over all parts: each `.out` starts with exactly one header line."""
    total = 0
    for key, lines in prediction_parts(runtime, record).items():
        assert lines[0] == "encounter_id,probability,prediction,not_scored_reason", key
        assert lines.count(lines[0]) == 1, f"{key} has more than one header"
        total += len(lines) - 1
    return total


def test_the_plain_uci_csv_uploaded_to_the_bucket_trains_registers_and_scores(
    runtime: LocalRuntime, uci_csv: Path
) -> None:
    assert uci_csv.stat().st_size > 18 * MiB and b"\r\n" in uci_csv.read_bytes()[:2000]

    record = runtime.run_upload(uci_csv)

    assert record["status"] == "SUCCEEDED", record["cause"]
    assert predictions(runtime, record) == 101_766
    head = boto3.client("s3").head_object(
        Bucket=runtime.stack.bucket, Key=runtime.datasets_prefix + "diabetic_data.csv", ChecksumMode="ENABLED"
    )
    assert head["ETag"].endswith('-3"')  # it really was a multipart upload (3 parts of 8 MiB)


def stored_gzip(uci_csv: Path, path: Path) -> Path:
    """The UCI file in a gzip over 8 MiB (an archiver's "store" mode): a multipart upload."""
    with gzip.open(path, "wb", compresslevel=0) as out:
        out.write(uci_csv.read_bytes())
    assert path.stat().st_size > 8 * MiB
    return path


def run_through_api(runtime: LocalRuntime, uri: str) -> dict[str, Any]:
    """POST /training with the dataset URI, as a client of the REST API does; the finished record."""
    response = runtime.api.request(
        "POST",
        "/training",
        body=json.dumps({"datasetUri": uri}),
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 202, response.body
    return runtime.wait(response.json()["executionArn"])


def test_a_gzip_over_8_mib_uploaded_to_the_bucket_trains(
    runtime: LocalRuntime, uci_csv: Path, tmp_path: Path
) -> None:
    big_gzip = stored_gzip(uci_csv, tmp_path / "diabetic_data_export.csv.gz")

    record = runtime.run_upload(big_gzip)

    assert record["status"] == "SUCCEEDED", record["cause"]
    assert predictions(runtime, record) == 101_766


def test_the_plain_uci_csv_starts_a_run_through_the_api(
    runtime: LocalRuntime, uci_csv: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "diabetic_data_api.csv"
    copy.write_bytes(uci_csv.read_bytes())
    uri = runtime.put_file(copy, runtime.datasets_prefix)  # multipart, as `aws s3 cp` uploads it

    record = run_through_api(runtime, uri)

    assert record["status"] == "SUCCEEDED", record["cause"]
    assert predictions(runtime, record) == 101_766


def test_a_gzip_over_8_mib_starts_a_run_from_the_console(
    runtime: LocalRuntime, uci_csv: Path, tmp_path: Path
) -> None:
    big_gzip = stored_gzip(uci_csv, tmp_path / "diabetic_data_console.csv.gz")
    uri = runtime.put_file(big_gzip, runtime.datasets_prefix)

    record = runtime.run({"datasetUri": uri, "modelName": "medication-adherence-model"})

    assert record["status"] == "SUCCEEDED", record["cause"]
    assert predictions(runtime, record) == 101_766


def awkward_file(folder: Path, start: int, rows: int = 3000) -> Path:
    """Rows of the UCI file with a UTF-8 BOM (Excel's "CSV UTF-8"), CRLF endings and an awkward name."""
    lines = gzip.decompress(DATASET.read_bytes()).split(b"\r\n")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / AWKWARD_NAME
    path.write_bytes(
        b"\xef\xbb\xbf" + b"\r\n".join([lines[0], *lines[1 + start : 1 + start + rows]]) + b"\r\n"
    )
    return path


def test_a_bom_crlf_file_with_spaces_and_plus_in_its_name_starts_a_run_on_upload(
    runtime: LocalRuntime, tmp_path: Path
) -> None:
    path = awkward_file(tmp_path / "upload", start=10_000)

    record = runtime.run_upload(path)

    assert record["status"] == "SUCCEEDED", record["cause"]
    assert record["output"]["run"]["datasetUri"] == runtime.s3_uri(runtime.datasets_prefix + AWKWARD_NAME)
    assert predictions(runtime, record) == 3000


def test_the_same_kind_of_file_starts_a_run_through_the_api(runtime: LocalRuntime, tmp_path: Path) -> None:
    uri = runtime.put_file(awkward_file(tmp_path / "api", start=30_000), runtime.datasets_prefix)

    record = run_through_api(runtime, uri)

    assert record["status"] == "SUCCEEDED", record["cause"]
    assert predictions(runtime, record) == 3000


def test_the_same_kind_of_file_starts_a_run_from_the_console(runtime: LocalRuntime, tmp_path: Path) -> None:
    uri = runtime.put_file(awkward_file(tmp_path / "console", start=50_000), runtime.datasets_prefix)

    record = runtime.run({"datasetUri": uri, "modelName": "medication-adherence-model"})

    assert record["status"] == "SUCCEEDED", record["cause"]
    assert predictions(runtime, record) == 3000


def test_a_prefix_of_three_parts_on_two_instances_scores_every_row_once_and_joins_them(
    runtime: LocalRuntime, tmp_path: Path
) -> None:
    with gzip.open(DATASET, "rt", newline="") as source:
        header = source.readline()
        rows = [next(source) for _ in range(4500)]
    training = tmp_path / "parts-training.csv"
    training.write_text(header + "".join(rows[:3000]))
    for n in range(3):  # 500 rows each, from rows the training file does not hold
        part = tmp_path / f"part-{n}.csv"
        part.write_text(header + "".join(rows[3000 + n * 500 : 3500 + n * 500]))
        runtime.put_file(part, runtime.scoring_prefix + "e2e-parts/")
    dataset = runtime.put_file(training, runtime.datasets_prefix)
    score = runtime.s3_uri(runtime.scoring_prefix + "e2e-parts/")

    record = runtime.run({"datasetUri": dataset, "scoreUri": score, "transformInstanceCount": 2})

    assert record["status"] == "SUCCEEDED", record["cause"]
    parts = prediction_parts(runtime, record)
    assert [key.rsplit("/", 1)[1] for key in parts] == ["part-0.csv.out", "part-1.csv.out", "part-2.csv.out"]
    assert predictions(runtime, record) == 1500
    joined = Path(summarize(runtime, record)["predictions"]).read_text().splitlines()
    assert joined[0] == "encounter_id,probability,prediction,not_scored_reason"
    assert joined.count(joined[0]) == 1
    assert [line.split(",")[0] for line in joined[1:]] == [row.split(",")[0] for row in rows[3000:]]

"""The endpoint's SageMaker reads over the job documents (no runtime: the records alone)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from emulator.endpoint import JobRecords, _ApiError


def _records(*jobs: tuple[str, str, int, str]) -> JobRecords:
    saved = {
        f"arn:aws:sagemaker:us-east-1:123456789012:{kind.lower()}/{name}": {
            "kind": kind,
            "document": {f"{kind}Name": name, f"{kind}Status": status, "CreationTime": created,
                         "TrainingEndTime": created + 5000, "FailureReason": "AlgorithmError: x"
                         if status == "Failed" else None},
        }
        for kind, name, created, status in jobs
    }  # fmt: skip
    runtime: Any = SimpleNamespace(
        state=SimpleNamespace(read_json=lambda _name, _default: saved), sagemaker=SimpleNamespace(jobs={})
    )
    return JobRecords(runtime)


RECORDS = (
    ("TrainingJob", "a-train-1", 1_700_000_000_000, "Completed"),
    ("TrainingJob", "b-train-2", 1_700_000_100_000, "Failed"),
    ("TrainingJob", "c-train-3", 1_700_000_200_000, "Completed"),
    ("TransformJob", "a-xform-1", 1_700_000_050_000, "Completed"),
)


def test_list_training_jobs_is_newest_first_with_summaries_in_seconds() -> None:
    listed = _records(*RECORDS).list("TrainingJob", {})["TrainingJobSummaries"]
    assert [j["TrainingJobName"] for j in listed] == ["c-train-3", "b-train-2", "a-train-1"]
    assert listed[0]["CreationTime"] == 1_700_000_200
    assert listed[0]["TrainingEndTime"] == 1_700_000_205
    assert listed[1]["FailureReason"] == "AlgorithmError: x" and "FailureReason" not in listed[0]


def test_list_filters_by_name_and_status_and_sorts_by_name_ascending() -> None:
    records = _records(*RECORDS)
    done = records.list(
        "TrainingJob", {"StatusEquals": "Completed", "SortBy": "Name", "SortOrder": "Ascending"}
    )
    assert [j["TrainingJobName"] for j in done["TrainingJobSummaries"]] == ["a-train-1", "c-train-3"]
    named = records.list("TrainingJob", {"NameContains": "B-TRAIN"})["TrainingJobSummaries"]
    assert [j["TrainingJobName"] for j in named] == ["b-train-2"]
    assert [j["TransformJobName"] for j in records.list("TransformJob", {})["TransformJobSummaries"]] == [
        "a-xform-1"
    ]


def test_list_pages_with_max_results_and_next_token() -> None:
    records = _records(*RECORDS)
    first = records.list("TrainingJob", {"MaxResults": 2})
    second = records.list("TrainingJob", {"MaxResults": 2, "NextToken": first["NextToken"]})
    names = [j["TrainingJobName"] for page in (first, second) for j in page["TrainingJobSummaries"]]
    assert names == ["c-train-3", "b-train-2", "a-train-1"]
    assert "NextToken" not in second


def test_describe_of_a_job_of_another_kind_or_name_is_not_found() -> None:
    records = _records(*RECORDS)
    with pytest.raises(_ApiError) as missing:
        records.describe("TrainingJob", {"TrainingJobName": "a-xform-1"})
    assert missing.value.code == "ValidationException"
    described = records.describe("TrainingJob", {"TrainingJobName": "b-train-2"})
    assert described["TrainingJobStatus"] == "Failed"

"""Run inputs at their edges: where a dataset or scoreUri may point, what the idempotency digest hashes,
and the names derived from a key. Pure: a Settings built in the test, no AWS.

Issue 14's spot checks: a digest ignoring `hyperparameters` and a `check_score_location` that no longer
compared the bucket both left the suite green.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import pytest

import run_input
from errors import InvalidInput
from run_input import TrainingRequest
from s3uri import S3Uri, is_missing_code, is_missing_object, parse_s3_uri
from tests.functions.helpers import unit_settings

BUCKET = "project-bucket"
SETTINGS = unit_settings(bucket=BUCKET, max_dataset_bytes=1024, max_auc_drop=0.0)


def request(**fields: Any) -> TrainingRequest:
    return TrainingRequest(datasetUri=f"s3://{BUCKET}/datasets/a.csv", **fields)


# --- check_score_location -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["scoring/batch.csv", "scoring/batch.csv.gz", "datasets/batch.csv", "scoring/parts/"]
)
def test_a_score_file_or_folder_of_parts_in_the_bucket_is_accepted(key: str) -> None:
    assert run_input.check_score_location(S3Uri(BUCKET, key), SETTINGS) is None


def test_a_score_file_in_another_bucket_is_refused_even_under_the_scoring_prefix() -> None:
    with pytest.raises(InvalidInput) as caught:
        run_input.check_score_location(S3Uri("other-bucket", "scoring/batch.csv"), SETTINGS)

    assert str(caught.value) == (
        f"scoreUri s3://other-bucket/scoring/batch.csv must be under s3://{BUCKET}/scoring/ "
        f"or s3://{BUCKET}/datasets/"
    )


def test_a_score_file_outside_both_prefixes_is_refused() -> None:
    with pytest.raises(InvalidInput, match="must be under"):
        run_input.check_score_location(S3Uri(BUCKET, "code/batch.csv"), SETTINGS)


@pytest.mark.parametrize("key", ["scoring/", "datasets/"])
def test_a_whole_prefix_is_not_a_score_input(key: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        run_input.check_score_location(S3Uri(BUCKET, key), SETTINGS)

    assert str(caught.value) == (
        f"scoreUri s3://{BUCKET}/{key} is the whole {key} prefix: name a file or a folder of parts"
    )


def test_a_score_file_that_is_not_csv_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        run_input.check_score_location(S3Uri(BUCKET, "scoring/batch.parquet"), SETTINGS)

    assert str(caught.value) == (
        f"scoreUri s3://{BUCKET}/scoring/batch.parquet must be a .csv or .csv.gz file, "
        "or a prefix of parts ending in '/'"
    )


# --- check_dataset_location -----------------------------------------------------------------------


@pytest.mark.parametrize("key", ["datasets/a.csv", "datasets/sub/a.csv.gz", "uploads/20261202-a.csv"])
def test_a_dataset_under_the_prefix_is_accepted(key: str) -> None:
    assert run_input.check_dataset_location(S3Uri(BUCKET, key), SETTINGS) is None


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (S3Uri("other", "datasets/a.csv"), f"is outside the project's bucket s3://{BUCKET}/"),
        (S3Uri(BUCKET, "scoring/a.csv"), f"is not under s3://{BUCKET}/datasets/ or s3://{BUCKET}/uploads/"),
        (S3Uri(BUCKET, "datasets/"), f"is not under s3://{BUCKET}/datasets/ or s3://{BUCKET}/uploads/"),
        (S3Uri(BUCKET, "uploads/"), f"is not under s3://{BUCKET}/datasets/ or s3://{BUCKET}/uploads/"),
        (S3Uri(BUCKET, "datasets/a.json"), "must be a .csv or .csv.gz file"),
    ],
)
def test_a_dataset_elsewhere_is_refused_with_the_reason(uri: S3Uri, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        run_input.check_dataset_location(uri, SETTINGS)

    assert str(caught.value) == f"dataset {uri} {message}"


# --- the idempotency digest and keys ---------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"hyperparameters": {"max_iter": 50}},
        {"modelName": "other-model"},
        {"algorithm": "LogisticRegression"},
        {"instanceType": "ml.m5.xlarge"},
        {"scoreUri": f"s3://{BUCKET}/scoring/b.csv"},
    ],
)
def test_each_parameter_that_changes_what_a_run_produces_changes_the_digest(change: dict[str, Any]) -> None:
    assert run_input.parameters_digest(request(**change), SETTINGS) != run_input.parameters_digest(
        request(), SETTINGS
    )


def test_two_hyperparameter_values_give_two_digests_and_their_order_none() -> None:
    first = run_input.parameters_digest(request(hyperparameters={"max_iter": 50, "seed": 1}), SETTINGS)
    second = run_input.parameters_digest(request(hyperparameters={"max_iter": 60, "seed": 1}), SETTINGS)
    reordered = run_input.parameters_digest(request(hyperparameters={"seed": 1, "max_iter": 50}), SETTINGS)
    as_text = run_input.parameters_digest(request(hyperparameters={"max_iter": "50", "seed": "1"}), SETTINGS)

    assert first != second
    assert first == reordered == as_text
    assert re.fullmatch(r"[0-9a-f]{16}", first)


def test_the_defaults_spelt_out_are_the_same_run_as_the_defaults_left_out() -> None:
    spelt_out = request(modelName="default-model", algorithm="HistGradientBoosting")

    assert run_input.parameters_digest(spelt_out, SETTINGS) == run_input.parameters_digest(
        request(), SETTINGS
    )


def test_the_derived_key_is_the_content_and_the_digest_and_ignores_etag_quotes() -> None:
    uri = S3Uri(BUCKET, "datasets/a.csv")

    quoted = run_input.derived_idempotency_key(uri, '"abc"', "d1")
    bare = run_input.derived_idempotency_key(uri, "abc", "d1")

    assert quoted == bare
    assert re.fullmatch(r"s3:[0-9a-f]{24}:d1", bare)
    assert run_input.derived_idempotency_key(uri, "abd", "d1") != bare
    assert run_input.derived_idempotency_key(S3Uri(BUCKET, "datasets/b.csv"), "abc", "d1") != bare
    assert run_input.client_idempotency_key("k") == "client:k"


def test_an_execution_name_is_the_model_stem_and_a_hash_of_the_key() -> None:
    name = run_input.execution_name_for_key("key-1", "my model/v2")

    assert re.fullmatch(r"my-model-v2-[0-9a-f]{32}", name)
    assert run_input.execution_name_for_key("key-2", "my model/v2") != name
    assert run_input.execution_name_for_key("k", "---").startswith("run-")
    long = run_input.execution_name_for_key("k", "m" * 100)
    assert long == "m" * 40 + "-" + long[-32:]
    assert len(long) == 73


def test_a_job_name_is_prefix_stem_kind_stamp_and_hash_within_47_characters() -> None:
    name = run_input.job_name(
        "readmission", "A-Very-Long-Model-Name-", "train", "run-1", "2026-12-02T02:31:32Z"
    )

    assert re.fullmatch(r"readmission-a-very-long-mode-train-261202023132-[0-9a-f]{8}", name)
    assert len(name) - len("readmission-") <= 47
    other_run = run_input.job_name("readmission", "m", "train", "run-2", "2026-12-02T02:31:32Z")
    assert (
        other_run[:-8]
        == run_input.job_name("readmission", "m", "train", "run-1", "2026-12-02T02:31:32Z")[:-8]
    )
    assert other_run != run_input.job_name("readmission", "m", "train", "run-1", "2026-12-02T02:31:32Z")
    assert run_input.job_name("p", "m", "k", "r", "no digits").split("-")[3] == "0"
    assert run_input.job_name("p", "model--", "k", "r", "t").startswith("p-model-k-")


# --- parsing the events and bodies ------------------------------------------------------------------


def test_only_an_s3_object_created_event_is_one() -> None:
    assert run_input.is_s3_object_created_event({"source": "aws.s3", "detail-type": "Object Created"})
    assert not run_input.is_s3_object_created_event({"source": "aws.s3", "detail-type": "Object Deleted"})
    assert not run_input.is_s3_object_created_event({"source": "custom", "detail-type": "Object Created"})


def test_the_dataset_of_an_event_carries_its_identity_and_keeps_a_plus_sign() -> None:
    event = {
        "detail": {
            "bucket": {"name": BUCKET},
            "object": {"key": "datasets/run+v2.csv", "etag": "e", "version-id": "v", "size": 12},
        }
    }

    dataset = run_input.dataset_from_event(event)

    assert dataset == run_input.DatasetObject(S3Uri(BUCKET, "datasets/run+v2.csv"), "e", "v", 12)


@pytest.mark.parametrize(
    "detail", [{}, {"bucket": {"name": BUCKET}}, {"object": {"key": "datasets/a.csv"}}, None]
)
def test_an_event_without_bucket_or_key_is_invalid_input(detail: Any) -> None:
    with pytest.raises(InvalidInput) as caught:
        run_input.dataset_from_event({"detail": detail})

    assert str(caught.value) == "the S3 event has no detail.bucket.name / detail.object.key"


def test_a_body_that_is_not_an_object_is_one_error_on_the_body() -> None:
    with pytest.raises(run_input.RequestErrors) as caught:
        run_input.validate_training_request(["datasetUri"])

    assert caught.value.errors == [{"field": "body", "message": "must be a JSON object"}]
    assert str(caught.value) == "body: must be a JSON object"


def test_null_fields_are_absent_and_whole_numbers_are_integers() -> None:
    body = {
        "datasetUri": f"s3://{BUCKET}/datasets/a.csv",
        "modelName": None,
        "transformInstanceCount": 2.0,
        "hyperparameters": {"max_iter": 50.0},
    }

    parsed = run_input.validate_training_request(body)

    assert parsed.modelName is None
    assert parsed.transformInstanceCount == 2
    assert isinstance(parsed.transformInstanceCount, int)
    assert parsed.hyperparameters == {"max_iter": 50}
    assert isinstance(parsed.hyperparameters["max_iter"], int)
    assert parsed.as_input() == {
        "datasetUri": f"s3://{BUCKET}/datasets/a.csv",
        "transformInstanceCount": 2,
        "hyperparameters": {"max_iter": 50},
    }
    assert parsed.with_idempotency_key("k") == dataclasses.replace(parsed, idempotencyKey="k")


def test_a_non_finite_number_is_named_once_at_its_path() -> None:
    body = {"datasetUri": f"s3://{BUCKET}/datasets/a.csv", "hyperparameters": {"max_iter": math.nan}}

    with pytest.raises(run_input.RequestErrors) as caught:
        run_input.validate_training_request(body)

    assert caught.value.errors == [
        {"field": "hyperparameters.max_iter", "message": "must be a finite number, not nan"}
    ]
    assert run_input.non_finite_numbers([1.0, {"a": -math.inf}]) == [
        {"field": "1.a", "message": "must be a finite number, not -inf"}
    ]
    assert run_input.non_finite_numbers(math.inf) == [
        {"field": "body", "message": "must be a finite number, not inf"}
    ]


def test_an_invalid_body_is_invalid_input_listing_the_fields() -> None:
    with pytest.raises(InvalidInput) as caught:
        run_input.parse_training_request({"datasetUri": 1, "colour": "red"})

    assert str(caught.value).startswith(
        "invalid training request: colour: unknown field; datasetUri: must be"
    )


def test_an_instance_type_problem_names_a_few_of_the_family_or_common_ones() -> None:
    allowed = run_input.allowed_instance_types("training")

    assert run_input.instance_type_problem("ml.m5.large", "training") is None
    assert run_input.instance_type_problem(5, "training") == "must be a string"
    same_family = run_input.instance_type_problem("ml.m5.huge", "training")
    assert same_family == (
        f"'ml.m5.huge' is not a SageMaker training instance type ({len(allowed)} are, e.g. "
        + ", ".join([t for t in allowed if t.startswith("ml.m5.")][:4])
        + ")"
    )
    unknown_family = run_input.instance_type_problem("zz.large", "training")
    assert unknown_family is not None
    assert unknown_family.endswith(
        "e.g. " + ", ".join(t for t in run_input.INSTANCE_TYPE_EXAMPLES if t in allowed) + ")"
    )


def test_a_range_is_written_in_interval_notation() -> None:
    assert run_input._range({"minimum": 1, "maximum": 1000}) == "within [1, 1000]"
    assert run_input._range({"exclusiveMinimum": 0, "exclusiveMaximum": 1}) == "within (0, 1)"


# --- s3uri ----------------------------------------------------------------------------------------


def test_an_s3_uri_splits_at_the_first_slash_after_the_bucket() -> None:
    uri = parse_s3_uri("s3://bucket/a/b.csv")

    assert uri == S3Uri("bucket", "a/b.csv")
    assert str(uri) == "s3://bucket/a/b.csv"
    assert uri.name == "b.csv"
    assert S3Uri("bucket", "parts/").name == "parts"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (None, "is not an s3:// URI"),
        ("https://bucket/key", "is not an s3:// URI"),
        ("s3://bucket", "must name a bucket and an object key"),
        ("s3:///key", "must name a bucket and an object key"),
        ("s3://bucket/", "must name a bucket and an object key"),
    ],
)
def test_a_string_that_is_not_an_object_uri_is_refused_with_the_reason(raw: Any, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_s3_uri(raw)

    assert str(caught.value) == f"{raw!r} {message}"


def test_only_the_missing_object_codes_mean_missing() -> None:
    class Error(Exception):
        def __init__(self, response: Any) -> None:
            self.response = response

    assert all(is_missing_code(code) for code in ("NoSuchKey", "404", "NotFound"))
    assert not is_missing_code("AccessDenied")
    assert is_missing_object(Error({"Error": {"Code": "404"}}))
    assert not is_missing_object(Error({"Error": {"Code": "403"}}))
    assert not is_missing_object(Error(None))
    assert not is_missing_object(ValueError("no response"))


# --- what a caller reads back (issue 14's mutation run: messages and names nothing pinned) -----------

DATASET_URI = f"s3://{BUCKET}/datasets/a.csv"


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, [{"field": "datasetUri", "message": "required field is missing"}]),
        (
            {"datasetUri": DATASET_URI, "idempotencyKey": ""},
            [{"field": "idempotencyKey", "message": "must be 1 to 128 characters"}],
        ),
        (
            {"datasetUri": f"s3://{BUCKET}/{'a' * 1030}.csv"},
            [{"field": "datasetUri", "message": "must be 0 to 1024 characters"}],
        ),
        (
            {"datasetUri": DATASET_URI, "modelName": "bad name"},
            [
                {
                    "field": "modelName",
                    "message": "must match ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
                    " (e.g. medication-adherence-model)",
                }
            ],
        ),
        (
            {"datasetUri": DATASET_URI, "hyperparameters": "fast"},
            [{"field": "hyperparameters", "message": "must be an object"}],
        ),
        (
            {"datasetUri": DATASET_URI, "hyperparameters": {"decision_threshold": "x"}},
            [{"field": "hyperparameters.decision_threshold", "message": "must be a number within (0, 1)"}],
        ),
        (
            {"datasetUri": DATASET_URI, "hyperparameters": {"seed": "x"}},
            [{"field": "hyperparameters.seed", "message": "must be an integer within [0, 4294967295]"}],
        ),
    ],
)
def test_each_invalid_field_gets_the_sentence_that_says_what_to_send(
    body: dict[str, Any], errors: list[dict[str, str]]
) -> None:
    with pytest.raises(run_input.RequestErrors) as caught:
        run_input.validate_training_request(body)

    assert caught.value.errors == errors


def test_several_invalid_fields_are_listed_in_the_order_of_the_documented_body() -> None:
    """The API's 400 lists fields as docs/openapi.json shows them (datasetUri, modelName, algorithm,
    ..., transformInstanceCount), not alphabetically."""
    body = {"datasetUri": DATASET_URI, "transformInstanceCount": 0, "modelName": "-x", "algorithm": "Z"}

    with pytest.raises(run_input.RequestErrors) as caught:
        run_input.validate_training_request(body)

    assert [e["field"] for e in caught.value.errors] == ["modelName", "algorithm", "transformInstanceCount"]
    assert caught.value.errors[1]["message"] == (
        "must be one of HistGradientBoosting, RandomForest, LogisticRegression"
    )
    assert caught.value.errors[2]["message"] == "must be an integer within [1, 100]"


def test_the_parameters_digest_is_stable_across_releases() -> None:
    """The digest is part of the idempotency key a run claims in the registry: a release that changed
    it for the same request would start a second run for an upload already being trained on."""
    bare = TrainingRequest(datasetUri=DATASET_URI)
    full = TrainingRequest(
        datasetUri=DATASET_URI,
        modelName="m",
        algorithm="LogisticRegression",
        instanceType="ml.m5.large",
        scoreUri=f"s3://{BUCKET}/scoring/x.csv",
        hyperparameters={"max_iter": 50, "C": 0.5},
    )

    assert run_input.parameters_digest(bare, SETTINGS) == "b19f6719fcd090d1"
    assert run_input.parameters_digest(full, SETTINGS) == "1c6fb7c620afb910"


def test_names_keep_the_model_names_capitals_and_edge_letters_and_drop_fractions_of_seconds() -> None:
    assert (
        run_input.execution_name_for_key("k", "Xray-Model") == "Xray-Model-8254c329a92850f6d539dd376f4816ee"
    )
    assert (
        run_input.job_name("readmission", "m", "train", "run-1", "2026-12-02T02:31:32.123Z")
        == "readmission-m-train-261202023132-1e7eb076"
    )

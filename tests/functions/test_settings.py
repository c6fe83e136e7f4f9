"""The handlers' configuration from the environment the template sets (functions/settings.py).

A wrong setting is a deployment bug that shows up far from its cause (a job name SageMaker refuses,
an IAM denial on a prefix, a gate that never passes), so `load_settings` refuses it at once with a
sentence naming the variable; these tests pin the defaults, the normalisation and those sentences.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import settings
from settings import ConfigurationError, load_settings

VARIABLES = (
    "REGISTRY_TABLE", "BUCKET", "STATE_MACHINE_ARN", "TOPIC_ARN", "DATASETS_PREFIX", "SCORING_PREFIX",
    "MAX_DATASET_BYTES", "DEFAULT_MODEL_NAME", "DEFAULT_ALGORITHM", "MIN_ROC_AUC", "MAX_AUC_DROP",
    "JOB_NAME_PREFIX",
)  # fmt: skip


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Only the two variables without a default; every test reads the settings afresh."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REGISTRY_TABLE", "registry")
    monkeypatch.setenv("BUCKET", "bucket")
    load_settings.cache_clear()
    yield monkeypatch
    load_settings.cache_clear()


def test_unset_variables_take_the_documented_defaults() -> None:
    assert load_settings() == settings.Settings(
        registry_table="registry",
        bucket="bucket",
        state_machine_arn="",
        topic_arn="",
        datasets_prefix="datasets/",
        scoring_prefix="scoring/",
        max_dataset_bytes=2147483648,
        default_model_name="medication-adherence-model",
        default_algorithm="HistGradientBoosting",
        min_roc_auc=0.6,
        max_auc_drop=0.0,
        job_name_prefix="readmission",
    )


@pytest.mark.parametrize("value", [None, ""])
def test_a_required_variable_unset_or_empty_is_named(
    environment: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        environment.delenv("BUCKET")
    else:
        environment.setenv("BUCKET", value)

    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    assert str(raised.value) == "environment variable BUCKET is not set"


def test_an_empty_variable_with_a_default_is_refused_not_defaulted(environment: pytest.MonkeyPatch) -> None:
    """The template sets every variable: an empty one is a broken parameter, not "use the default"."""
    environment.setenv("DEFAULT_MODEL_NAME", "")

    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    assert str(raised.value) == "environment variable DEFAULT_MODEL_NAME is not set"


def test_set_variables_override_the_defaults(environment: pytest.MonkeyPatch) -> None:
    for name, value in {
        "MAX_DATASET_BYTES": "1048576", "MIN_ROC_AUC": "0.7", "MAX_AUC_DROP": "0.02",
        "DEFAULT_MODEL_NAME": "other-model", "DEFAULT_ALGORITHM": "LogisticRegression",
        "JOB_NAME_PREFIX": "rd", "STATE_MACHINE_ARN": "arn:machine", "TOPIC_ARN": "arn:topic",
    }.items():  # fmt: skip
        environment.setenv(name, value)

    loaded = load_settings()

    assert (loaded.max_dataset_bytes, loaded.min_roc_auc, loaded.max_auc_drop) == (1048576, 0.7, 0.02)
    assert (loaded.default_model_name, loaded.default_algorithm) == ("other-model", "LogisticRegression")
    assert (loaded.job_name_prefix, loaded.state_machine_arn, loaded.topic_arn) == (
        "rd",
        "arn:machine",
        "arn:topic",
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("MAX_DATASET_BYTES", "2GB", "environment variable MAX_DATASET_BYTES='2GB' is not a int"),
        ("MIN_ROC_AUC", "high", "environment variable MIN_ROC_AUC='high' is not a float"),
    ],
)
def test_a_number_that_is_not_one_is_named_with_its_value(
    environment: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    environment.setenv(name, value)

    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("value", "normalised"),
    [("scoring", "scoring/"), ("/scoring//", "scoring/"), ("Xrays/", "Xrays/"), ("a/b", "a/b/")],
)
def test_a_prefix_has_exactly_one_trailing_slash_and_keeps_its_letters(
    environment: pytest.MonkeyPatch, value: str, normalised: str
) -> None:
    """Prefixes are compared with startswith(): "scoring" must not also match "scoring-old/"."""
    environment.setenv("SCORING_PREFIX", value)
    environment.setenv("DATASETS_PREFIX", value.replace("scoring", "datasets"))

    loaded = load_settings()

    assert loaded.scoring_prefix == normalised
    assert loaded.datasets_prefix == normalised.replace("scoring", "datasets")


@pytest.mark.parametrize("value", ["a", "readmission1", "a-b", "a--b", "abcdefghijkl"])
def test_a_job_name_prefix_of_one_to_twelve_allowed_characters_is_accepted(
    environment: pytest.MonkeyPatch, value: str
) -> None:
    environment.setenv("JOB_NAME_PREFIX", value)

    assert load_settings().job_name_prefix == value


@pytest.mark.parametrize(
    "value",
    [
        "abcdefghijklm",  # 13 characters
        "a-----------b",  # matches the pattern's alphabet and hyphen rule, but 13 characters long
        "Readmission",  # upper case
        "-readmission",  # leading hyphen
        "readmission-",  # trailing hyphen
        "read_mission",
    ],
)
def test_a_job_name_prefix_sagemaker_or_the_iam_scope_would_refuse_is_refused(
    environment: pytest.MonkeyPatch, value: str
) -> None:
    environment.setenv("JOB_NAME_PREFIX", value)

    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    assert str(raised.value) == f"JOB_NAME_PREFIX={value!r} must be 1-12 lower-case letters, digits, hyphens"


@pytest.mark.parametrize("value", ["uploads/", "uploads/datasets/", "uploads"])
def test_a_datasets_prefix_overlapping_the_console_uploads_is_refused(
    environment: pytest.MonkeyPatch, value: str
) -> None:
    environment.setenv("DATASETS_PREFIX", value)

    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    normalised = value.strip("/") + "/"
    assert (
        str(raised.value)
        == f"DATASETS_PREFIX={normalised!r} overlaps the console's uploads prefix 'uploads/'"
    )


def test_the_derived_locations_follow_the_bucket() -> None:
    loaded = load_settings()

    assert loaded.dataset_prefixes == ("datasets/", "uploads/")
    assert loaded.schema_key == "code/dataset_schema.json"
    assert loaded.submit_directory_uri == "s3://bucket/code/sourcedir.tar.gz"

"""The functions' configuration, read once from the environment the template sets.

Every handler reads its settings through `load_settings()` so the variable names live in one place
(docs/architecture.md lists them) and tests can change the environment and call `load_settings.cache_clear()`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache

JOB_NAME_PREFIX_MAX = 12  # the template's JobNamePrefix MaxLength
# Where the console's uploads of datasets are staged (POST /uploads): outside the datasets prefix, so the
# S3 trigger's EventBridge rule does not match them and the run is the one the console's form then starts
# (POST /training). Fixed like runs/ and reports/: the template's IAM statements name it literally.
UPLOADS_PREFIX = "uploads/"


class ConfigurationError(RuntimeError):
    """A required environment variable is missing or malformed: a deployment bug, not a user error."""


@dataclass(frozen=True)
class Settings:
    """Typed view of the environment. Defaults are the project's documented defaults."""

    registry_table: str
    bucket: str
    state_machine_arn: str
    topic_arn: str
    datasets_prefix: str
    scoring_prefix: str
    max_dataset_bytes: int
    default_model_name: str
    default_algorithm: str
    min_roc_auc: float
    max_auc_drop: float
    job_name_prefix: str

    @property
    def code_prefix(self) -> str:
        return "code/"

    @property
    def uploads_prefix(self) -> str:
        """The console's staged datasets: a run may train on them, their upload starts none."""
        return UPLOADS_PREFIX

    @property
    def dataset_prefixes(self) -> tuple[str, str]:
        """Where a run's dataset may be: the trigger's datasets prefix and the console's uploads."""
        return (self.datasets_prefix, self.uploads_prefix)

    @property
    def schema_key(self) -> str:
        return f"{self.code_prefix}dataset_schema.json"

    @property
    def submit_directory_uri(self) -> str:
        return f"s3://{self.bucket}/{self.code_prefix}sourcedir.tar.gz"


def _env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None or value == "":
        raise ConfigurationError(f"environment variable {name} is not set")
    return value


def _number(name: str, default: str, kind: type[int] | type[float]) -> float:
    raw = _env(name, default)
    try:
        return kind(raw)
    except ValueError as exc:
        raise ConfigurationError(f"environment variable {name}={raw!r} is not a {kind.__name__}") from exc


def _prefix(name: str, default: str) -> str:
    # A prefix is compared with startswith(): normalise to exactly one trailing slash.
    return _env(name, default).strip("/") + "/"


def _job_name_prefix(value: str) -> str:
    # The state machine role may only touch SageMaker names starting with this prefix (template); the
    # pattern alone accepts any number of hyphens, so the length is checked too (SageMaker's 63).
    if len(value) > JOB_NAME_PREFIX_MAX or not re.fullmatch(r"[a-z0-9](-*[a-z0-9]){0,11}", value):
        raise ConfigurationError(
            f"JOB_NAME_PREFIX={value!r} must be 1-12 lower-case letters, digits, hyphens"
        )
    return value


def _datasets_prefix(value: str) -> str:
    # Nested either way, an upload staged under uploads/ would match the trigger's rule (a second run
    # with the stack's defaults) or every dataset would count as a console upload.
    if value.startswith(UPLOADS_PREFIX) or UPLOADS_PREFIX.startswith(value):
        raise ConfigurationError(
            f"DATASETS_PREFIX={value!r} overlaps the console's uploads prefix {UPLOADS_PREFIX!r}"
        )
    return value


@lru_cache(maxsize=1)
def load_settings() -> Settings:
    """Read the environment once per container (Lambda reuses the module between invocations)."""
    return Settings(
        registry_table=_env("REGISTRY_TABLE"),
        bucket=_env("BUCKET"),
        state_machine_arn=os.environ.get("STATE_MACHINE_ARN", ""),
        topic_arn=os.environ.get("TOPIC_ARN", ""),
        datasets_prefix=_datasets_prefix(_prefix("DATASETS_PREFIX", "datasets/")),
        scoring_prefix=_prefix("SCORING_PREFIX", "scoring/"),
        max_dataset_bytes=int(_number("MAX_DATASET_BYTES", str(2 * 1024**3), int)),
        default_model_name=_env("DEFAULT_MODEL_NAME", "medication-adherence-model"),
        default_algorithm=_env("DEFAULT_ALGORITHM", "HistGradientBoosting"),
        min_roc_auc=float(_number("MIN_ROC_AUC", "0.60", float)),
        max_auc_drop=float(_number("MAX_AUC_DROP", "0", float)),
        job_name_prefix=_job_name_prefix(_env("JOB_NAME_PREFIX", "readmission")),
    )

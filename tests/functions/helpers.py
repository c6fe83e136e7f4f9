"""What the Lambda handler tests share: the mocked account's names, event and dataset readers, `Aws`.

Imported as `tests.functions.helpers` (a named module, not `conftest`, so no other folder's conftest can
shadow it in a one-process run). Importing it puts functions/ on sys.path, the way Lambda loads the
handlers, and sets the Powertools variables before any handler module is imported.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"
EVENTS = ROOT / "events"
DATASET = ROOT / "data" / "diabetic_data.csv.gz"
BUCKET = "readmission-local-artifactbucket"  # the literal bucket name every file in events/ uses
TABLE = "readmission-registry"
REGION = "us-east-1"

# Set before the handler modules are imported: Powertools reads them when Logger/Metrics are created.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "readmission-pipeline-test")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "ReadmissionMLOpsTest")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")

if str(FUNCTIONS) not in sys.path:
    sys.path.insert(0, str(FUNCTIONS))

ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "REGISTRY_TABLE": TABLE,
    "BUCKET": BUCKET,
    "DATASETS_PREFIX": "datasets/",
    "SCORING_PREFIX": "scoring/",
    "MAX_DATASET_BYTES": str(50 * 1024 * 1024),
    "DEFAULT_MODEL_NAME": "medication-adherence-model",
    "DEFAULT_ALGORITHM": "HistGradientBoosting",
    "MIN_ROC_AUC": "0.6",
    "MAX_AUC_DROP": "0.01",
    "JOB_NAME_PREFIX": "readmission",
    "POWERTOOLS_SERVICE_NAME": "readmission-pipeline-test",
    "POWERTOOLS_METRICS_NAMESPACE": "ReadmissionMLOpsTest",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def start_run(
    registry: Any, run: dict[str, Any], *, claim: bool = True, model_name: str | None = None
) -> None:
    """Put `run` (an event's `run` block) in the registry as PrepareRun leaves it: its idempotency key
    claimed (unless `claim` is False) and its RUN item RUNNING."""
    if claim:
        registry.claim_idempotency_key(
            run["idempotencyKey"], run["runId"], run["executionArn"], running_for_at_most=60
        )
    registry.start_run(
        run_id=run["runId"],
        execution_arn=run["executionArn"],
        model_name=model_name or run["modelName"],
        idempotency_key=run["idempotencyKey"],
        dataset_uri=run["datasetUri"],
    )


def dataset_head(rows: int) -> bytes:
    """The first `rows` data rows of the bundled dataset (with its header), as LF-terminated CSV bytes.

    The bundled file's lines end in CRLF; tests edit LF text and add CRLF back where that is the point.
    """
    with gzip.open(DATASET, "rt", newline="") as handle:
        lines = [next(handle).rstrip("\r\n") + "\n" for _ in range(rows + 1)]
    return "".join(lines).encode()


def gz(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as handle:
        handle.write(data)
    return buffer.getvalue()


# What pipelines/train.py leaves in SM_OUTPUT_DATA_DIR, in small: the files a published report holds.
REPORT_FILES = {
    "report.md": b"# medication-adherence-model\n\nROC AUC 0.67\n",
    "roc_curve.png": b"\x89PNG\r\n\x1a\n fake",
    "subgroups.json": b'{"groups": []}',
}


def report_archive(files: dict[str, bytes] | None = None) -> bytes:
    """An output.tar.gz as SageMaker packs SM_OUTPUT_DATA_DIR: one regular member per file."""
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, body in (REPORT_FILES if files is None else files).items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


def training_output_key(artifact_uri: str) -> str:
    """The key of output.tar.gz beside a job's model.tar.gz (`<S3OutputPath>/<job>/output/`)."""
    prefix = f"s3://{BUCKET}/"
    assert artifact_uri.startswith(prefix) and artifact_uri.endswith("/output/model.tar.gz"), artifact_uri
    return artifact_uri[len(prefix) : -len("model.tar.gz")] + "output.tar.gz"


def with_training_output(event: dict[str, Any], files: dict[str, bytes] | None = None) -> dict[str, Any]:
    """`event` (a RegisterModel event), after putting its training job's output.tar.gz in the bucket:
    RegisterModel publishes the report from it."""
    import boto3

    key = training_output_key(event["training"]["artifactUri"])
    boto3.client("s3", region_name=REGION).put_object(Bucket=BUCKET, Key=key, Body=report_archive(files))
    return event


class Aws:
    """Handles on the mocked account for tests to arrange and assert with."""

    def __init__(self) -> None:
        import boto3

        self.s3 = boto3.client("s3", region_name=REGION)
        self.dynamodb = boto3.client("dynamodb", region_name=REGION)
        self.sfn = boto3.client("stepfunctions", region_name=REGION)
        self.sns = boto3.client("sns", region_name=REGION)
        self.state_machine_arn = ""

    def put(self, key: str, body: bytes) -> dict[str, Any]:
        return self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)

    def table_items(self) -> list[dict[str, Any]]:
        from boto3.dynamodb.types import TypeDeserializer

        de = TypeDeserializer()
        items = self.dynamodb.scan(TableName=TABLE)["Items"]
        return [{k: de.deserialize(v) for k, v in item.items()} for item in items]

    def executions(self) -> list[dict[str, Any]]:
        return self.sfn.list_executions(stateMachineArn=self.state_machine_arn)["executions"]


def unit_settings(**overrides: Any) -> Any:
    """A `Settings` for the handler tests that use recording fakes instead of a moto account.

    One set of values for every such test file, so a field added to `Settings` is added here once;
    each test overrides only what it is about (a bucket, a limit, a gate).
    """
    from settings import Settings

    values: dict[str, Any] = {
        "registry_table": "registry",
        "bucket": "bucket",
        "state_machine_arn": "",
        "topic_arn": "",
        "datasets_prefix": "datasets/",
        "scoring_prefix": "scoring/",
        "max_dataset_bytes": 1000,
        "default_model_name": "default-model",
        "default_algorithm": "HistGradientBoosting",
        "min_roc_auc": 0.6,
        "max_auc_drop": 0.01,
        "job_name_prefix": "readmission",
    }
    return Settings(**{**values, **overrides})

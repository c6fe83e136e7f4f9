"""Local SageMaker jobs honour the container contract (docs/architecture.md) and SageMaker's API rules."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from emulator.sagemaker import LocalSageMaker, SageMakerApiError

FIXTURE = Path(__file__).parent / "fixtures" / "project"
BUCKET = "jobs-test"


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    bundle = tmp_path_factory.mktemp("bundle")
    subprocess.run([sys.executable, "-m", "pipelines.bundle", "--out", str(bundle)], cwd=FIXTURE, check=True)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        client.upload_file(str(bundle / "sourcedir.tar.gz"), BUCKET, "code/sourcedir.tar.gz")
        for path in (bundle / "src").iterdir():
            client.upload_file(str(path), BUCKET, f"code/src/{path.name}")
        client.put_object(Bucket=BUCKET, Key="data/train.csv", Body=b"id,x,y\n1,2,3\n4,5,6\n")
        yield client


def training_request(name: str, mode: str = "ok", max_runtime: int = 60) -> dict:
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {
            "TrainingImage": "sklearn",
            "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": "score", "Regex": "METRIC score=([0-9.]+)"}],
        },
        "HyperParameters": {
            "sagemaker_program": '"train.py"',
            "sagemaker_submit_directory": f'"s3://{BUCKET}/code/sourcedir.tar.gz"',
            "mode": mode,
            "label": '"quoted"',
            "seed": "7",
        },
        "InputDataConfig": [
            {
                "ChannelName": "training",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/data/"}},
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/out"},
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime},
    }


def finish(sagemaker: LocalSageMaker, arn: str, limit: float = 120.0) -> dict:
    """The job's description once it has ended; a job still running after `limit` seconds (a hang,
    not a slow machine: these jobs take a second or two) fails the test with its name."""
    deadline = time.monotonic() + limit
    while (describe := sagemaker.wait(arn, timeout=5)) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"{arn} still running after {limit:.0f} s")
    return describe


def test_training_job_runs_the_program_under_the_container_contract(s3, tmp_path: Path) -> None:
    sagemaker = LocalSageMaker(tmp_path)
    describe = finish(
        sagemaker, sagemaker.create_training_job(training_request("contract-1"))["TrainingJobArn"]
    )

    assert describe["TrainingJobStatus"] == "Completed"
    assert (
        describe["ModelArtifacts"]["S3ModelArtifacts"] == f"s3://{BUCKET}/out/contract-1/output/model.tar.gz"
    )
    assert [(m["MetricName"], m["Value"]) for m in describe["FinalMetricDataList"]] == [("score", 0.9)]
    body = s3.get_object(Bucket=BUCKET, Key="out/contract-1/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        model = json.load(tar.extractfile("model.json"))
    assert model["rows"] == 2
    assert model["argv"] == ["--label", "quoted", "--mode", "ok", "--seed", "7"]  # JSON-decoded, sorted
    assert model["hps"] == {"label": "quoted", "mode": "ok", "seed": 7}  # no sagemaker_* keys
    assert model["hp_seed"] == "7"
    assert model["cwd_has_program"] is True
    assert model["aws_env"] == []  # no credentials: the job sees only its staged files
    report = s3.get_object(Bucket=BUCKET, Key="out/contract-1/output/output.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(report)) as tar:
        assert tar.getnames() == ["report.md"]


def test_failure_file_becomes_the_failure_reason(s3, tmp_path: Path) -> None:
    sagemaker = LocalSageMaker(tmp_path)
    describe = finish(
        sagemaker, sagemaker.create_training_job(training_request("fails-1", "fail"))["TrainingJobArn"]
    )
    assert describe["TrainingJobStatus"] == "Failed"
    assert describe["FailureReason"] == "AlgorithmError: ValueError: the fixture was told to fail\ndetails"
    assert "ModelArtifacts" not in describe


def test_max_runtime_stops_the_job_and_kills_the_process(s3, tmp_path: Path) -> None:
    sagemaker = LocalSageMaker(tmp_path)
    sagemaker.faults.hang_job("TrainingJob", seconds=60)
    arn = sagemaker.create_training_job(training_request("slow-1", max_runtime=1))["TrainingJobArn"]

    describe = finish(sagemaker, arn)

    assert describe["TrainingJobStatus"] == "Stopped"
    assert describe["SecondaryStatus"] == "MaxRuntimeExceeded"
    assert sagemaker.jobs[arn].proc.poll() is not None


@pytest.mark.parametrize("name", ["-leading-dash", "x" * 64, "under_score", ""])
def test_invalid_job_names_are_rejected_before_anything_runs(s3, tmp_path: Path, name: str) -> None:
    sagemaker = LocalSageMaker(tmp_path)
    with pytest.raises(SageMakerApiError) as raised:
        sagemaker.create_training_job(training_request(name))
    assert raised.value.code == "ValidationException"
    assert sagemaker.jobs == {}


def test_a_job_name_is_taken_forever_even_across_restarts(s3, tmp_path: Path) -> None:
    first = LocalSageMaker(tmp_path)
    finish(first, first.create_training_job(training_request("once-1"))["TrainingJobArn"])
    with pytest.raises(SageMakerApiError) as raised:
        first.create_training_job(training_request("once-1"))
    assert raised.value.code == "ResourceInUse"

    restarted = LocalSageMaker(tmp_path / "again")
    restarted.import_state(json.loads(json.dumps(first.export_state())))
    with pytest.raises(SageMakerApiError, match="already exists"):
        restarted.create_training_job(training_request("ONCE-1"))  # names are case-insensitive


def test_missing_input_data_fails_the_job_with_a_client_error(s3, tmp_path: Path) -> None:
    request = training_request("nodata-1")
    request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = f"s3://{BUCKET}/nothing/"
    sagemaker = LocalSageMaker(tmp_path)
    describe = finish(sagemaker, sagemaker.create_training_job(request)["TrainingJobArn"])
    assert describe["TrainingJobStatus"] == "Failed"
    assert describe["FailureReason"].startswith("ClientError: No S3 objects found under S3 URL")


def test_processing_job_reroots_container_paths_and_uploads_outputs(s3, tmp_path: Path) -> None:
    sagemaker = LocalSageMaker(tmp_path)
    request = {
        "ProcessingJobName": "drift-1",
        "AppSpecification": {
            "ImageUri": "sklearn",
            "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/drift.py"],
            "ContainerArguments": [
                "--data",
                "/opt/ml/processing/input/data",
                "--output",
                "/opt/ml/processing/output",
            ],
        },
        "ProcessingInputs": [
            {
                "InputName": "code",
                "S3Input": {
                    "S3Uri": f"s3://{BUCKET}/code/src/",
                    "LocalPath": "/opt/ml/processing/input/code",
                },
            },
            {
                "InputName": "data",
                "S3Input": {
                    "S3Uri": f"s3://{BUCKET}/data/train.csv",
                    "LocalPath": "/opt/ml/processing/input/data",
                },
            },
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "drift",
                    "S3Output": {
                        "S3Uri": f"s3://{BUCKET}/drift-out",
                        "LocalPath": "/opt/ml/processing/output",
                    },
                }
            ]
        },
    }
    describe = finish(sagemaker, sagemaker.create_processing_job(request)["ProcessingJobArn"])

    assert describe["ProcessingJobStatus"] == "Completed", describe
    report = json.loads(s3.get_object(Bucket=BUCKET, Key="drift-out/drift_report.json")["Body"].read())
    assert report == {"rows": 2, "drift": False}


def test_transform_needs_an_existing_model(s3, tmp_path: Path) -> None:
    sagemaker = LocalSageMaker(tmp_path)
    with pytest.raises(SageMakerApiError, match="Could not find model"):
        sagemaker.create_transform_job({"TransformJobName": "t-1", "ModelName": "nope"})
    sagemaker.create_model(
        {"ModelName": "m-1", "PrimaryContainer": {"Image": "x", "ModelDataUrl": "s3://b/k"}}
    )
    with pytest.raises(SageMakerApiError, match="Cannot create already existing model"):
        sagemaker.create_model(
            {"ModelName": "m-1", "PrimaryContainer": {"Image": "x", "ModelDataUrl": "s3://b/k"}}
        )


def transform_request(name: str, source: str, instances: int, **extra: object) -> dict:
    return {
        "TransformJobName": name,
        "ModelName": "scorer",
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": 1,
        "TransformInput": {
            "ContentType": "text/csv",
            "SplitType": "Line",
            "CompressionType": "None",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": source}},
        },
        "TransformOutput": {
            "S3OutputPath": f"s3://{BUCKET}/{name}-out",
            "Accept": "text/csv",
            "AssembleWith": "Line",
        },
        "TransformResources": {"InstanceCount": instances, "InstanceType": "ml.m5.large"},
        **extra,
    }


@pytest.fixture(scope="module")
def scorer(s3) -> str:
    """A model whose container is the fixture's serving program, and three parts under parts/."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        body = json.dumps({"rows": 1}).encode()
        info = tarfile.TarInfo("model.json")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    s3.put_object(Bucket=BUCKET, Key="models/scorer.tar.gz", Body=archive.getvalue())
    for n in range(3):  # `id` second: header-less mini-batches need the job's SCORING_COLUMNS
        rows = "".join(f"{'p' * 200},{i}\n" for i in range(n * 6000, (n + 1) * 6000))
        s3.put_object(Bucket=BUCKET, Key=f"parts/part-{n}.csv", Body=f"x,id\n{rows}".encode())
    return "scorer"


def scorer_model(sagemaker: LocalSageMaker) -> None:
    sagemaker.create_model(
        {
            "ModelName": "scorer",
            "PrimaryContainer": {
                "Image": "sklearn",
                "ModelDataUrl": f"s3://{BUCKET}/models/scorer.tar.gz",
                "Environment": {
                    "SAGEMAKER_PROGRAM": "inference.py",
                    "SAGEMAKER_SUBMIT_DIRECTORY": f"s3://{BUCKET}/code/sourcedir.tar.gz",
                },
            },
        }
    )


def test_a_prefix_of_three_parts_on_two_instances_scores_every_row_once_one_header_per_part(
    s3, scorer: str, tmp_path: Path
) -> None:
    sagemaker = LocalSageMaker(tmp_path)
    scorer_model(sagemaker)
    request = transform_request("xf-2", f"s3://{BUCKET}/parts/", 2, Environment={"SCORING_COLUMNS": "x,id"})

    describe = finish(sagemaker, sagemaker.create_transform_job(request)["TransformJobArn"])

    assert describe["TransformJobStatus"] == "Completed", describe
    assert describe["Environment"] == {"SCORING_COLUMNS": "x,id"}
    log = (tmp_path / "xf-2" / "job.log").read_text()
    assert "instance 1 of 2: part-0.csv, part-2.csv" in log and "instance 2 of 2: part-1.csv" in log
    ids = []
    for n in range(3):
        body = s3.get_object(Bucket=BUCKET, Key=f"xf-2-out/part-{n}.csv.out")["Body"].read().decode()
        lines = body.splitlines()
        assert lines[0] == "id,probability,prediction" and lines.count(lines[0]) == 1
        ids += [int(line.split(",")[0]) for line in lines[1:]]
    assert ids == list(range(18_000))


def test_without_the_jobs_environment_later_mini_batches_lose_the_files_columns(
    s3, scorer: str, tmp_path: Path
) -> None:
    sagemaker = LocalSageMaker(tmp_path)
    scorer_model(sagemaker)

    describe = finish(
        sagemaker,
        sagemaker.create_transform_job(transform_request("xf-noenv", f"s3://{BUCKET}/parts/part-0.csv", 1))[
            "TransformJobArn"
        ],
    )

    # the fixture reads `id` from the first column of a header-less line: the padding, not the id
    assert describe["TransformJobStatus"] == "Completed", describe
    body = s3.get_object(Bucket=BUCKET, Key="xf-noenv-out/part-0.csv.out")["Body"].read().decode()
    assert any(line.startswith("ppp") for line in body.splitlines())

"""IAM is enforced locally: a role missing one statement fails the run as AWS would, naming the action.

Each test copies the project, removes one statement (by its Sid) from one role of template.yaml,
and runs the real workflow on the copy. On today's template every run passes (tests/e2e), so what
fails here is exactly the missing permission: the local runtime is the proof of the IAM of the
AWS path, not only of the code.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from emulator.progress import Progress
from emulator.runtime import LocalRuntime
from emulator.template import load_yaml

PROJECT = Path(__file__).resolve().parents[2]


def project_without(tmp: Path, resource: str, sid: str) -> Path:
    """A copy of the project whose template lacks statement `sid` (or the policy named `sid`) of
    `resource`'s policies."""
    root = tmp / "project"
    for folder in ("functions", "pipelines", "statemachine"):
        shutil.copytree(PROJECT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    template = load_yaml((PROJECT / "template.yaml").read_text())
    props = template["Resources"][resource]["Properties"]
    removed = 0
    named = [p for p in props.get("Policies") or [] if isinstance(p, dict) and p.get("PolicyName") == sid]
    for policy in named:
        props["Policies"].remove(policy)
        removed += 1
    for policy in props.get("Policies") or []:
        document = policy.get("PolicyDocument") if "PolicyDocument" in policy else policy
        statements = document.get("Statement") if isinstance(document, dict) else None
        if isinstance(statements, list):
            kept = [s for s in statements if s.get("Sid") != sid]
            removed += len(statements) - len(kept)
            document["Statement"] = kept
    assert removed == 1, f"{resource} has no statement {sid}"
    (root / "template.yaml").write_text(yaml.safe_dump(template, sort_keys=False))
    return root


@pytest.fixture
def run_on(tmp_path: Path, slices: dict[str, Path]) -> Iterator[Any]:
    dataset = slices["first"]
    runtimes: list[LocalRuntime] = []

    def run(root: Path) -> dict[str, Any]:
        runtime = LocalRuntime(
            root,
            tmp_path / "state",
            retry_wait_scale=0.0,
            progress=Progress(verbose_jobs=False),
        )
        runtimes.append(runtime.__enter__())
        return runtime.run_upload(dataset)

    yield run
    for runtime in runtimes:
        runtime.__exit__(None, None, None)


def test_a_function_role_without_its_write_statement_fails_the_run_with_access_denied(
    tmp_path: Path, run_on: Any
) -> None:
    record = run_on(project_without(tmp_path, "PrepareRunFunction", "WriteSnapshot"))

    assert record["status"] == "FAILED"
    assert [s["state"] for s in record["states"]][:2] == ["ReceiveInput", "PrepareRun"]
    cause = record["cause"] or ""
    assert "AccessDenied" in cause
    assert "is not authorized to perform: s3:PutObject on resource: arn:aws:s3:::" in cause
    assert "PrepareRunFunctionRole" in cause


def test_register_model_without_its_reports_statement_fails_the_run_at_register_model(
    tmp_path: Path, run_on: Any
) -> None:
    record = run_on(project_without(tmp_path, "RegisterModelFunction", "PublishReports"))

    assert record["status"] == "FAILED" and record["error"] == "ReportNotPublished"
    assert [s["state"] for s in record["states"]][-4:] == [
        "RegisterModel",
        "RecordFailure",
        "NotifyFailure",
        "RunFailed",
    ]
    cause = record["cause"] or ""
    assert "writing the report object s3://" in cause and "/reports/medication-adherence-model/v1/" in cause
    assert "failed with S3 error AccessDenied" in cause and "s3:PutObject" in cause
    assert "RegisterModelFunctionRole" in cause
    message = next(
        e["stateExitedEventDetails"]["output"]
        for e in record["events"]
        if e.get("stateExitedEventDetails", {}).get("name") == "RecordFailure"
    )
    assert "flagged run_status=FAILED" in message and "Report: not published" in message


def test_the_state_machine_role_without_pass_role_cannot_start_training(tmp_path: Path, run_on: Any) -> None:
    record = run_on(project_without(tmp_path, "StateMachineRole", "PassSageMakerRole"))

    assert record["status"] == "FAILED"
    failed = [
        e["taskFailedEventDetails"]
        for e in record["events"]
        if e["type"] == "TaskFailed" and "iam:PassRole" in e["taskFailedEventDetails"].get("cause", "")
    ]
    assert failed, "no TaskFailed names iam:PassRole"
    assert failed[0]["error"] == "SageMaker.AmazonSageMakerException"
    assert "Error Code: AccessDeniedException" in failed[0]["cause"]
    assert "StateMachineRole" in failed[0]["cause"]


def test_a_sagemaker_role_that_may_not_write_run_artifacts_fails_the_training_job(
    tmp_path: Path, run_on: Any
) -> None:
    record = run_on(project_without(tmp_path, "SageMakerExecutionRole", "WriteRunArtifacts"))

    assert record["status"] == "FAILED"
    assert "TrainModel" in [s["state"] for s in record["states"]]
    cause = record["cause"] or ""
    assert "s3:PutObject" in cause and "SageMakerExecutionRole" in cause


def test_the_state_machine_role_without_sns_publish_cannot_notify(tmp_path: Path, run_on: Any) -> None:
    record = run_on(project_without(tmp_path, "StateMachineRole", "Notify"))

    assert record["status"] == "FAILED"
    causes = [
        e["taskFailedEventDetails"].get("cause", "") for e in record["events"] if e["type"] == "TaskFailed"
    ]
    assert any("is not authorized to perform: sns:Publish" in c and "StateMachineRole" in c for c in causes)

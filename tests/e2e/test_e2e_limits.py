"""Stopping conditions of the real workflow: SageMaker's MaxRuntimeInSeconds, enforced locally.

MaxTrainingSeconds is shrunk below the template's MinValue (which only CloudFormation enforces),
so the stopped job shows within seconds instead of an hour.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.progress import Progress, error_names
from emulator.runtime import LocalRuntime

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    with LocalRuntime(
        PROJECT,
        tmp_path_factory.mktemp("limits"),
        parameters={"MaxTrainingSeconds": "2"},
        strict_parameters=False,
        progress=Progress(verbose_jobs=False),
    ) as rt:
        yield rt


def test_training_over_max_runtime_is_stopped_and_the_run_fails(
    runtime: LocalRuntime, slices: dict[str, Path]
) -> None:
    runtime.faults.hang_job("TrainingJob", seconds=120)

    record = runtime.run_upload(slices["first"])

    assert record["status"] == "FAILED"
    states = [s["state"] for s in record["states"]]
    assert states[-4:] == ["TrainModel", "RecordFailure", "NotifyFailure", "RunFailed"]
    assert "States.Runtime" not in error_names(record["events"])
    failed = next(
        e
        for e in record["events"]
        if e["type"] == "TaskFailed" and "TrainingJobStatus" in e["taskFailedEventDetails"]["cause"]
    )
    described = json.loads(failed["taskFailedEventDetails"]["cause"])
    assert described["TrainingJobStatus"] == "Stopped"
    assert described["SecondaryStatus"] == "MaxRuntimeExceeded"
    assert described["StoppingCondition"]["MaxRuntimeInSeconds"] == 2
    assert all(job.proc is None or job.proc.poll() is not None for job in runtime.sagemaker.jobs.values())

"""A Task state's TimeoutSeconds ends the state with States.Timeout and kills the job's process, and the
waiter does not re-read an unchanged history while the job hangs.

Its own module, with its own runtime: the training state's TimeoutSeconds is a template parameter,
short here (10 s) and generous (120 s) for every other module, so no real training is ever timed out
by a busy machine. The job here sleeps an hour (a hang fault), so only the timeout can end it.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from emulator.progress import Progress, error_names
from emulator.runtime import LocalRuntime


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory, fixture_project: Path) -> Iterator[LocalRuntime]:
    with LocalRuntime(
        fixture_project,
        tmp_path_factory.mktemp("state"),
        parameters={"TrainingTimeoutSeconds": "10"},
        progress=Progress(verbose_jobs=False),
    ) as rt:
        yield rt


def test_state_timeout_kills_the_job_process(runtime: LocalRuntime, dataset: Path) -> None:
    runtime.faults.hang_job("TrainingJob", seconds=3600)

    record = runtime.run({"datasetUri": runtime.put_file(dataset, runtime.datasets_prefix)})

    assert record["status"] == "FAILED"
    assert record["error"] == "States.Timeout"
    assert "States.Runtime" not in error_names(record["events"])
    job = next(
        j for j in runtime.sagemaker.jobs.values() if j.name == f"t-{record['name'].replace('-', '')[:20]}"
    )
    assert job.proc is not None
    # killed, not left running: the kill may still be under way when the execution has failed, and a
    # process that sleeps an hour ends within the generous limit only if it was killed
    assert job.proc.wait(timeout=120) == -signal.SIGKILL


def test_a_job_that_runs_on_without_events_is_not_followed_by_history_reads(
    runtime: LocalRuntime, dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lengths: list[int] = []
    original = runtime.sfn.get_execution_history

    def counted(**kwargs: Any) -> Any:
        answer = original(**kwargs)
        lengths.append(len(answer["events"]))
        return answer

    monkeypatch.setattr(runtime.sfn, "get_execution_history", counted)
    # the training job hangs until the state's 10 s timeout: progress ticks without an event
    runtime.faults.hang_job("TrainingJob", seconds=120)

    record = runtime.run({"datasetUri": runtime.put_file(dataset, runtime.datasets_prefix)})

    assert record["error"] == "States.Timeout"
    repeated = sum(1 for earlier, later in pairwise(lengths) if later == earlier)
    # at most the final read at the terminal status and the record's own read repeat a length
    assert repeated <= 2, lengths

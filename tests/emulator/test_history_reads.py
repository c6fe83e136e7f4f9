"""The waiter of `LocalRuntime.wait` reads an execution's history only when it has grown.

GetExecutionHistory serialises every event of the execution (tens of milliseconds at the end of a
run), on the machine whose cores the jobs need: while a job runs and nothing happens, the waiter
must not read the same history again and again."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from emulator import interpreter
from emulator.runtime import LocalRuntime


def console_input(runtime: LocalRuntime, dataset: Path) -> dict[str, Any]:
    return {"datasetUri": runtime.put_file(dataset, runtime.datasets_prefix)}


def test_the_history_version_counts_every_event_an_execution_adds(
    runtime: LocalRuntime, dataset: Path
) -> None:
    before = interpreter.history_version()
    record = runtime.run(console_input(runtime, dataset))
    assert record["status"] == "SUCCEEDED"
    assert interpreter.history_version() - before == len(record["events"])


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
    # the training job hangs until the state's 3 s timeout: six progress ticks without an event
    runtime.faults.hang_job("TrainingJob", seconds=120)

    record = runtime.run(console_input(runtime, dataset))

    assert record["error"] == "States.Timeout"
    repeated = sum(1 for earlier, later in pairwise(lengths) if later == earlier)
    # at most the final read at the terminal status and the record's own read repeat a length
    assert repeated <= 2, lengths

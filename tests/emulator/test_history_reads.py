"""The waiter of `LocalRuntime.wait` reads an execution's history only when it has grown.

GetExecutionHistory serialises every event of the execution (tens of milliseconds at the end of a
run), on the machine whose cores the jobs need: while a job runs and nothing happens, the waiter
must not read the same history again and again (that test, on a job that hangs until the state's
timeout, is in test_state_timeout.py: the module whose runtime has a short training timeout)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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

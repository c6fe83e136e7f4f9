"""Human-readable progress of executions on stderr: states entered and left, with timings.

Fed from the execution history (the same events AWS shows in the console), never from the
interpreter's internals, plus the jobs' own log lines prefixed with the job name.
"""

from __future__ import annotations

import sys
import threading
from datetime import datetime
from typing import Any, TextIO

_FAILURE_DETAILS = (
    "taskFailedEventDetails",
    "taskTimedOutEventDetails",
    "executionFailedEventDetails",
    "executionTimedOutEventDetails",
    "executionAbortedEventDetails",
    "lambdaFunctionFailedEventDetails",
    "lambdaFunctionTimedOutEventDetails",
)


def _seconds(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds()


def state_timings(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each state visit with its duration: [{"state", "seconds", "status"}] in order of entry."""
    open_states: dict[str, tuple[datetime, int]] = {}
    visits: list[dict[str, Any]] = []
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            visits.append({"state": name, "seconds": None, "status": "RUNNING"})
            open_states[name] = (event["timestamp"], len(visits) - 1)
        elif kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            if name in open_states:
                started, index = open_states.pop(name)
                visits[index].update(seconds=_seconds(event["timestamp"], started), status="SUCCEEDED")
    for _name, (_started, index) in open_states.items():
        visits[index]["status"] = "FAILED"
    return visits


def error_names(events: list[dict[str, Any]]) -> list[str]:
    """Every error name in a history (task failures and timeouts, the execution's own), in order."""
    names = []
    for event in events:
        for key, details in event.items():
            if key.endswith("EventDetails") and isinstance(details, dict) and "error" in details:
                names.append(str(details["error"]))
    return names


class Progress:
    """Prints history events as they arrive (call `events()` with the growing history)."""

    def __init__(self, stream: TextIO | None = None, verbose_jobs: bool = True):
        self.stream = stream or sys.stderr
        self.verbose_jobs = verbose_jobs
        self._seen: dict[str, int] = {}
        self._entered: dict[tuple[str, str], datetime] = {}
        self._start: dict[str, datetime] = {}
        self._failed: dict[str, str] = {}  # execution -> error of the state that is running
        self._lock = threading.Lock()

    def _write(self, text: str) -> None:
        with self._lock:
            print(text, file=self.stream, flush=True)

    def note(self, text: str) -> None:
        self._write(f"[local] {text}")

    def job_line(self, job: str, line: str) -> None:
        if self.verbose_jobs:
            self._write(f"    | {job} | {line}")

    def events(self, execution: str, events: list[dict[str, Any]]) -> None:
        seen = self._seen.get(execution, 0)
        for event in events[seen:]:
            self._event(execution, event)
        self._seen[execution] = max(seen, len(events))

    def _event(self, execution: str, event: dict[str, Any]) -> None:
        kind, ts = event["type"], event["timestamp"]
        start = self._start.setdefault(execution, ts)
        clock = f"[{_seconds(ts, start):7.2f}s]"
        if kind == "ExecutionStarted":
            self._write(f"{clock} execution {execution} started")
        elif kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            self._entered[(execution, name)] = ts
            self._write(f"{clock} -> {name}")
        elif kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            entered = self._entered.pop((execution, name), ts)
            error = self._failed.pop(execution, None)
            outcome = f"caught {error}" if error else "ok"
            self._write(f"{clock} <- {name} {outcome} ({_seconds(ts, entered):.2f} s)")
        elif kind == "TaskSucceeded":
            self._failed.pop(execution, None)  # an earlier attempt failed, a retry succeeded
        elif kind in ("ExecutionSucceeded",):
            self._write(f"{clock} execution {execution} SUCCEEDED")
        else:
            for key in _FAILURE_DETAILS:
                details = event.get(key)
                if details is not None:
                    cause = str(details.get("cause", ""))
                    if len(cause) > 300:
                        cause = cause[:300] + "..."
                    label = "execution FAILED" if kind.startswith("Execution") else kind
                    self._failed[execution] = str(details.get("error", ""))
                    self._write(f"{clock} !! {label}: {details.get('error', '')} {cause}".rstrip())
                    break

"""Human-readable progress of executions on stderr: states entered and left, with timings.

Fed from the execution history (the same events AWS shows in the console), never from the
interpreter's internals, plus the jobs' own log lines prefixed with the job name.
"""

from __future__ import annotations

import json
import sys
import threading
from datetime import datetime
from pathlib import Path
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


def readable_cause(cause: str, error: str | None = None) -> tuple[str, list[str] | None]:
    """A cause holding Lambda's error document (`{"errorType", "errorMessage", "trace"}`, alone or
    inside a longer text) as "errorType: errorMessage" (the message alone when errorType is `error`,
    already shown), and the trace's lines (None when it has none)."""
    start = cause.find('{"errorType"')
    if start < 0:
        return cause, None
    try:
        document, end = json.JSONDecoder().raw_decode(cause, start)
    except ValueError:
        return cause, None
    if not isinstance(document, dict) or not isinstance(document.get("trace"), list):
        return cause, None
    text = str(document.get("errorMessage"))
    if document.get("errorType") != error:
        text = f"{document.get('errorType')}: {text}"
    return cause[:start] + text + cause[end:], [str(line) for line in document["trace"]]


def traceback_log(trace_dir: Path, execution: str) -> Path:
    """Where the tracebacks of one execution's failed handlers are written."""
    return trace_dir / f"{execution}.traceback.log"


class Progress:
    """Prints history events as they arrive (call `events()` with the growing history).

    A handler's traceback is never printed: it goes to `traceback_log(trace_dir, execution)` and the
    line names that file (the runtime sets `trace_dir` to `<state-dir>/logs`)."""

    def __init__(
        self, stream: TextIO | None = None, verbose_jobs: bool = True, trace_dir: Path | None = None
    ):
        self.stream = stream or sys.stderr
        self.verbose_jobs = verbose_jobs
        self.trace_dir = trace_dir
        self._seen: dict[str, int] = {}
        self._entered: dict[tuple[str, str], datetime] = {}
        self._start: dict[str, datetime] = {}
        self._failed: dict[str, str] = {}  # execution -> error of the state that is running
        self._traced: set[tuple[str, str]] = set()
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

    def _log_trace(self, execution: str, what: str, trace: list[str]) -> Path:
        assert self.trace_dir is not None
        path = traceback_log(self.trace_dir, execution)
        text = "".join(trace)
        with self._lock:
            if (execution, text) not in self._traced:  # the execution's failure repeats its task's
                self._traced.add((execution, text))
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(path, "a") as log:
                    log.write(f"--- {what}\n{text}\n")
        return path

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
                    cause, trace = readable_cause(str(details.get("cause", "")), details.get("error"))
                    if len(cause) > 300:
                        cause = cause[:300] + "..."
                    if trace is not None and self.trace_dir is not None:
                        cause += f" (traceback in {self._log_trace(execution, kind, trace)})"
                    label = "execution FAILED" if kind.startswith("Execution") else kind
                    self._failed[execution] = str(details.get("error", ""))
                    self._write(f"{clock} !! {label}: {details.get('error', '')} {cause}".rstrip())
                    break

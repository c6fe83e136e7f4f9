"""Human-readable progress of executions on stderr: states entered and left, with timings.

Fed from the execution history (the same events AWS shows in the console), never from the
interpreter's internals, plus the jobs' own log lines prefixed with the job name, and the Lambda
handlers' log lines prefixed with the function name, in their place among the states: a handler's
line is held until the history shows the event that came after it (or HANDLER_LINE_SECONDS pass,
or `flush()`), since the history is read a few times a second and the handler writes at once.
"""

from __future__ import annotations

import json
import sys
import threading
import time
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


HANDLER_LINE_SECONDS = 2.0  # how long a handler's line waits for the history to catch up


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


def _epoch_ms(timestamp: datetime) -> float:
    return timestamp.timestamp() * 1000


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
        self._held: list[tuple[float, str]] = []  # handlers' lines not printed yet: (epoch ms, text)
        self._held_lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self.lambda_log_dir: Path | None = None  # where the handlers' whole logs are (the runtime sets it)

    def _write(self, text: str) -> None:
        with self._lock:
            print(text, file=self.stream, flush=True)

    def note(self, text: str) -> None:
        self._write(f"[local] {text}")

    def job_line(self, job: str, line: str) -> None:
        if self.verbose_jobs:
            self._write(f"    | {job} | {line}")

    def handler_line(self, function: str, line: str) -> None:
        """A line a Lambda handler wrote (its log file has it already): shown unless quiet, after
        the history events that came before it."""
        if self.verbose_jobs:
            self._hold(f"    | {function} | {line}")

    def handler_note(self, text: str) -> None:
        """A note about an invocation (a handler raised): shown even when quiet, in the same place."""
        self._hold(f"[local] {text}")

    def _hold(self, text: str) -> None:
        at = int(time.time() * 1000)  # the history's timestamps have milliseconds
        with self._held_lock:
            self._held.append((at, text))
            if self._timer is None:
                self._timer = threading.Timer(HANDLER_LINE_SECONDS, self.flush)
                self._timer.daemon = True
                self._timer.start()

    def _release(self, before_ms: float | None) -> None:
        """Print the held lines written before `before_ms` (all of them when None)."""
        with self._held_lock:
            if before_ms is None:
                due, self._held = self._held, []
            else:
                due = [held for held in self._held if held[0] < before_ms]
                self._held = [held for held in self._held if held[0] >= before_ms]
            if not self._held and self._timer is not None:
                self._timer.cancel()
                self._timer = None
        for _at, text in due:
            self._write(text)

    def flush(self) -> None:
        """Print every held handler line (the run ended, or the history was not read for a while)."""
        self._release(None)

    def events(self, execution: str, events: list[dict[str, Any]]) -> None:
        seen = self._seen.get(execution, 0)
        for event in events[seen:]:
            if self._held:
                self._release(_epoch_ms(event["timestamp"]))
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

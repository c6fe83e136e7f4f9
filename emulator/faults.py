"""Fault injection: make the emulated services fail the way AWS does, on purpose, for tests.

Each fault is armed for a number of occurrences and then disarms itself, so "throttled once, then
fine" reads exactly like the retry scenario it tests. Errors carry the names AWS uses, so the ASL's
Retry and Catch see what they would see on AWS:

    runtime.faults.sagemaker_throttle("CreateTrainingJob", times=1)
    runtime.faults.fail_job("TrainingJob", "AlgorithmError: out of memory")
    runtime.faults.hang_job("TransformJob", seconds=600)
    runtime.faults.lambda_error("EvaluateModelFunction", "Lambda.ServiceException", times=1)
    runtime.faults.integration_error("sns", "Publish", "AuthorizationError", "Not authorized")
    runtime.faults.state_timeout("RegisterModel")  # States.Timeout, as if TimeoutSeconds elapsed

A state timeout is the interpreter's fault, not a service's: Step Functions itself fails a Task whose
TimeoutSeconds (or TimeoutSecondsPath) elapsed with `States.Timeout` (a `TaskTimedOut` event, no
cause) and hands it to the state's Retry and Catch like any other error. Waiting the real seconds
(30 minutes for a training job) is what the fault saves; the error, its event and its path through
the ASL are the ones a real timeout takes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

JOB_KINDS = ("TrainingJob", "TransformJob", "ProcessingJob")


class ApiFault(Exception):
    """An injected AWS API error (a botocore-style error code and message)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class StateTimeout:
    """How an armed state timeout fires. `late=False`: the time runs out before the task's resource
    has done anything (a Lambda never invoked, a job never created). `late=True`: the resource does
    its work and answers after the timeout, so its effects (a handler's writes, a finished job)
    exist but the state fails all the same: the answer is discarded, as Step Functions discards a
    result that arrives after the state timed out."""

    late: bool = False


@dataclass
class _Armed:
    value: object
    times: int


@dataclass
class Faults:
    """The armed faults of one runtime. Thread-safe: executions run on the interpreter's threads."""

    _api: dict[str, list[_Armed]] = field(default_factory=dict)
    _job_failures: dict[str, list[_Armed]] = field(default_factory=dict)
    _job_hangs: dict[str, list[_Armed]] = field(default_factory=dict)
    _lambda: dict[str, list[_Armed]] = field(default_factory=dict)
    _integrations: dict[str, list[_Armed]] = field(default_factory=dict)
    _state_timeouts: dict[str, list[_Armed]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ---- arming ---------------------------------------------------------------------------------
    def sagemaker_throttle(self, action: str, times: int = 1) -> None:
        """The next `times` calls of a SageMaker action (e.g. CreateTrainingJob) are throttled."""
        self.sagemaker_error(action, "ThrottlingException", "Rate exceeded", times)

    def sagemaker_error(self, action: str, code: str, message: str, times: int = 1) -> None:
        """The next `times` calls of a SageMaker action fail with this API error."""
        self._arm(self._api, action, ApiFault(code, message), times)

    def fail_job(self, kind: str, reason: str, times: int = 1) -> None:
        """The next `times` jobs of this kind fail at once with this FailureReason (the program is
        replaced by a process that exits non-zero; the reason is reported as the failure file's)."""
        self._check_kind(kind)
        self._arm(self._job_failures, kind, reason, times)

    def hang_job(self, kind: str, seconds: float = 3600, times: int = 1) -> None:
        """The next `times` jobs of this kind sleep `seconds` instead of running (timeout tests)."""
        self._check_kind(kind)
        self._arm(self._job_hangs, kind, float(seconds), times)

    def lambda_error(self, function: str, error: str, times: int = 1, message: str | None = None) -> None:
        """The next `times` invocations of a function (logical id or name) fail with `error`.

        `Lambda.<Code>` (e.g. `Lambda.ServiceException`, `Lambda.TooManyRequestsException`) is a
        failure of the Invoke API itself; any other name is raised as the handler's own error
        (FunctionError Unhandled, `errorType` = the name).
        """
        self._arm(self._lambda, function, (error, message or f"Injected {error}"), times)

    def integration_error(
        self, service: str, action: str, code: str, message: str, times: int = 1, status: int = 400
    ) -> None:
        """The next `times` calls of an optimized integration of the state machine (e.g. `sns`,
        `Publish`: the Notify states) fail with this API error; Step Functions names it as the
        integration does (`SNS.<Code>Exception`) and the state's Retry and Catch see that name."""
        self._arm(self._integrations, f"{service}:{action}", (code, message, int(status)), times)

    def state_timeout(self, state: str, times: int = 1, *, late: bool = False) -> None:
        """The next `times` attempts of the Task state `state` time out (`States.Timeout`) without the
        real wait; see `StateTimeout` for `late`."""
        self._arm(self._state_timeouts, state, StateTimeout(late=late), times)

    def clear(self) -> None:
        with self._lock:
            for armed in (
                self._api,
                self._job_failures,
                self._job_hangs,
                self._lambda,
                self._integrations,
                self._state_timeouts,
            ):
                armed.clear()

    # ---- firing (called by the emulated services) -------------------------------------------------
    def check_api(self, action: str) -> None:
        fault = self._take(self._api, action)
        if isinstance(fault, ApiFault):
            raise fault

    def take_job_failure(self, kind: str) -> str | None:
        value = self._take(self._job_failures, kind)
        return str(value) if value is not None else None

    def take_job_hang(self, kind: str) -> float | None:
        value = self._take(self._job_hangs, kind)
        return float(value) if isinstance(value, float) else None

    def take_lambda_error(self, *names: str) -> tuple[str, str] | None:
        for name in names:
            value = self._take(self._lambda, name)
            if value is not None:
                error, message = value  # type: ignore[misc]
                return str(error), str(message)
        return None

    def take_integration_error(self, service: str, action: str) -> tuple[str, str, int] | None:
        value = self._take(self._integrations, f"{service}:{action}")
        if value is None:
            return None
        code, message, status = value  # type: ignore[misc]
        return str(code), str(message), int(status)

    def take_state_timeout(self, state: str) -> StateTimeout | None:
        value = self._take(self._state_timeouts, state)
        return value if isinstance(value, StateTimeout) else None

    # ---- internals --------------------------------------------------------------------------------
    @staticmethod
    def _check_kind(kind: str) -> None:
        if kind not in JOB_KINDS:
            raise ValueError(f"job kind must be one of {JOB_KINDS}, got {kind!r}")

    def _arm(self, table: dict[str, list[_Armed]], key: str, value: object, times: int) -> None:
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            table.setdefault(key, []).append(_Armed(value, times))

    def _take(self, table: dict[str, list[_Armed]], key: str) -> object | None:
        with self._lock:
            queue = table.get(key)
            if not queue:
                return None
            armed = queue[0]
            armed.times -= 1
            if armed.times == 0:
                queue.pop(0)
            return armed.value

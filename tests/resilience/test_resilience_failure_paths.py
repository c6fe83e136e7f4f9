"""Every failure path of the workflow, executed: each Task state fails with an error and with a timeout.

Issue 14: every Catch of `statemachine/readmission_pipeline.asl.json` sends its failure to RecordFailure
with `ResultPath: $.failure.<Stage>`. A Catch that wrote another stage's name (or a catch-all of a later
step that reported an earlier step) would still end the run FAILED; only a check of the stage that the
registry and the notification name tells the difference. So each Task state, in a local run of the real
workflow, is made to fail:

- with an error, injected where AWS would raise it: the Lambda handler raises (`lambda_error`), the
  SageMaker job fails (`fail_job`: `States.TaskFailed`), CreateModel's API refuses
  (`sagemaker_error`), SNS refuses the publish (`integration_error`);
- with a timeout: `States.Timeout`, the error Step Functions raises when a state's TimeoutSeconds
  elapses, delivered by the interpreter through the same Retry and Catch (`state_timeout`, without the
  real wait). A Lambda or SNS call that outlives its state's timeout still does its work, so those
  states time out `late` (the handler's writes exist, the answer is discarded); a SageMaker job's
  state times out before the job has run (no job needs to run for a timeout to be recorded).

and the run must end as the ASL designs it (`RunFailed`, or `FailureNotRecorded` when RecordFailure
itself fails), the run record must name that state with the error and its cause, a version registered
by the run must be flagged failed and never be champion (the previous champion unchanged), and the SNS
notification must name the state and the cause.

RecordFailure and NotifyFailure only run after another failure: there ValidateDataset's handler fails
first, and the recorded stage is ValidateDataset's (RecordFailure failing leaves the run unrecorded).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from emulator.runtime import LocalRuntime

from .stack import (
    Notifications,
    champion,
    dataset_lines,
    entered,
    meta_key,
    nothing_lost,
    snapshot,
    versions_of,
    write_csv,
)
from .table import Row, first_words

MODEL = "medication-adherence-model"
FIRST_FAILURE = "ValidateDataset"  # what fails before RecordFailure / NotifyFailure are made to fail
FIRST_CAUSE = "injected ValidateDataset crash"

FUNCTIONS = {
    "PrepareRun": "PrepareRunFunction",
    "ValidateDataset": "ValidateDatasetFunction",
    "EvaluateModel": "EvaluateModelFunction",
    "RegisterModel": "RegisterModelFunction",
    "RecordOutcome": "RecordOutcomeFunction",
    "RecordFailure": "RecordOutcomeFunction",  # the same function, called with outcome FAILED
}
JOBS = {
    "TrainModel": "TrainingJob",
    "EnrichHistory": "ProcessingJob",
    "BatchTransform": "TransformJob",
    "MonitorDrift": "ProcessingJob",
}
SNS_STATES = ("Notify", "NotifyFailure")
# the states whose task runs after RegisterModel created this run's version
AFTER_REGISTRATION = (
    "CreateModel",
    "EnrichHistory",
    "BatchTransform",
    "MonitorDrift",
    "RecordOutcome",
    "Notify",
)


@dataclass(frozen=True)
class Expected:
    """What the failed run must show."""

    execution_error: str  # the execution's error (RunFailed re-raises the caught one)
    stage: str | None  # the stage the run record names; None: the failure was not recorded
    error: str  # the error the run record and the notification name
    cause: str  # a fragment of the recorded (readable) cause
    notified: bool  # a failure notification was delivered
    last_states: tuple[str, ...]


def _error_name_of(state: str) -> str:
    """The error name `_arm_error` makes `state` fail with."""
    if state in FUNCTIONS:
        return "RuntimeError"
    if state in JOBS:
        return "States.TaskFailed"
    return (
        "SageMaker.ResourceLimitExceededException"
        if state == "CreateModel"
        else "SNS.AuthorizationErrorException"
    )


def _pass_the_first_processing_job(runtime: LocalRuntime) -> None:
    """A run's first processing job is EnrichHistory's, its second MonitorDrift's: the armed
    ProcessingJob failure is handed out from the second job on."""
    faults = runtime.faults
    take = faults.take_job_failure
    seen = {"ProcessingJob": 0}

    def take_after_the_first(kind: str) -> str | None:
        if kind == "ProcessingJob":
            seen[kind] += 1
            if seen[kind] == 1:
                return None
        return take(kind)

    faults.take_job_failure = take_after_the_first  # type: ignore[method-assign]


def _arm_error(runtime: LocalRuntime, state: str) -> tuple[str, str]:
    """Make `state` fail with an error, the way its service fails on AWS; (error name, cause part)."""
    cause = f"injected {state} failure"
    if state in FUNCTIONS:
        runtime.faults.lambda_error(FUNCTIONS[state], "RuntimeError", message=cause)
    elif state in JOBS:
        if state == "MonitorDrift":
            _pass_the_first_processing_job(runtime)
        runtime.faults.fail_job(JOBS[state], cause)
    elif state == "CreateModel":  # a model-count quota: not retried (throttling is), so it is recorded
        runtime.faults.sagemaker_error("CreateModel", "ResourceLimitExceeded", cause)
    else:
        assert state in SNS_STATES, state
        runtime.faults.integration_error("sns", "Publish", "AuthorizationError", cause, status=403)
    return _error_name_of(state), cause


def _arm(runtime: LocalRuntime, state: str, kind: str) -> Expected:
    """Arm the faults of one scenario and say what the run must show."""
    handled_after_another = state in ("RecordFailure", "NotifyFailure")
    if handled_after_another:
        runtime.faults.lambda_error(FUNCTIONS[FIRST_FAILURE], "RuntimeError", message=FIRST_CAUSE)
    if kind == "error":
        error, cause = _arm_error(runtime, state)
    else:
        # Lambda and SNS calls finish after their state timed out; a job's state times out before
        # the job has run (no job process is needed for the timeout to be recorded)
        runtime.faults.state_timeout(state, late=state not in JOBS)
        error, cause = "States.Timeout", "did not finish within its TimeoutSeconds"
    if state == "RecordFailure":
        # the failure is not recorded (unless the handler finished before the timeout: `late`)
        recorded = kind == "timeout"
        return Expected(
            "FailureNotRecorded",
            FIRST_FAILURE if recorded else None,
            "RuntimeError",
            FIRST_CAUSE,
            notified=False,
            last_states=("RecordFailure", "FailureNotRecorded"),
        )
    if state == "NotifyFailure":
        # recorded, but the notification failed (or was published and then timed out: `late`)
        return Expected(
            "RuntimeError",
            FIRST_FAILURE,
            "RuntimeError",
            FIRST_CAUSE,
            notified=kind == "timeout",
            last_states=("RecordFailure", "NotifyFailure", "RunFailed"),
        )
    return Expected(
        error, state, error, cause, notified=True, last_states=("RecordFailure", "NotifyFailure", "RunFailed")
    )


TASK_STATES = (
    "PrepareRun",
    "ValidateDataset",
    "TrainModel",
    "EvaluateModel",
    "RegisterModel",
    "CreateModel",
    "EnrichHistory",
    "BatchTransform",
    "MonitorDrift",
    "RecordOutcome",
    "Notify",
    "RecordFailure",
    "NotifyFailure",
)
SCENARIOS = [
    pytest.param(state, kind, id=f"{state}-{kind}") for state in TASK_STATES for kind in ("error", "timeout")
]


def test_every_task_state_of_the_workflow_is_a_scenario() -> None:
    """A Task state added to the ASL without a failure scenario here fails this test."""
    definition = json.loads(
        (Path(__file__).resolve().parents[2] / "statemachine" / "readmission_pipeline.asl.json").read_text()
    )
    tasks = {name for name, state in definition["States"].items() if state["Type"] == "Task"}
    assert tasks == set(TASK_STATES)
    for name in tasks - {"RecordFailure", "NotifyFailure"}:
        [catch_all] = [c for c in definition["States"][name]["Catch"] if c["ErrorEquals"] == ["States.ALL"]]
        assert (catch_all["Next"], catch_all["ResultPath"]) == ("RecordFailure", f"$.failure.{name}")


@pytest.fixture(scope="module")
def dataset_uri(runtime: LocalRuntime, data_dir: Path) -> str:
    """One 3000-row slice for every scenario (each run has its own idempotency key)."""
    header, lines = dataset_lines(40_000, 3000)
    path = write_csv(data_dir / "failure_paths.csv", header, lines)
    return runtime.put_file(path, runtime.datasets_prefix)


@pytest.mark.parametrize(("state", "kind"), SCENARIOS)
def test_a_failing_task_state_is_recorded_and_notified_under_its_own_name(
    state: str,
    kind: str,
    runtime: LocalRuntime,
    baseline: dict[str, Any],
    notifications: Notifications,
    dataset_uri: str,
    resilience_row: Callable[[Row], None],
) -> None:
    before = snapshot(runtime)
    expected = _arm(runtime, state, kind)
    try:
        record = runtime.run({"datasetUri": dataset_uri, "idempotencyKey": f"failure-path-{state}-{kind}"})
    finally:
        runtime.faults.clear()  # a fault the run never reached must not leak into the next scenario
    after = snapshot(runtime)
    run_id = record["name"]

    # the execution ends as the ASL designs it, through the state's own Catch
    assert record["status"] == "FAILED"
    assert record["error"] == expected.execution_error, (record["error"], record["cause"])
    assert tuple(entered(record)[-len(expected.last_states) :]) == expected.last_states
    caught = _state_input(record, "RecordFailure")["failure"]  # {<Stage>: {Error, Cause}}
    failed_state = state if state not in ("RecordFailure", "NotifyFailure") else FIRST_FAILURE
    assert list(caught) == [failed_state]
    assert caught[failed_state]["Error"] == (expected.error if failed_state == state else "RuntimeError")
    # RecordFailure's and NotifyFailure's own errors are kept for the history (their Catch's ResultPath)
    own_error = "States.Timeout" if kind == "timeout" else _error_name_of(state)
    if state == "RecordFailure":
        assert _state_input(record, "FailureNotRecorded")["recordError"]["Error"] == own_error
    if state == "NotifyFailure":
        assert _state_input(record, "RunFailed")["notifyError"]["Error"] == own_error
    if kind == "timeout":
        assert _timed_out_states(record) == [state]

    # the registry: the run record names the state that failed, with the error and the cause
    run = after.items.get((f"RUN#{run_id}", "RUN")) or {}
    if expected.stage is None:
        assert run.get("status") == "RUNNING" and "error" not in run  # RecordFailure never wrote it
    else:
        assert (run["status"], run["stage"], run["error"]) == ("FAILED", expected.stage, expected.error)
        assert expected.cause in run["cause"]

    # a version this run registered is flagged failed and is not champion; the champion is unchanged
    mine = [v for v in versions_of(after.items, MODEL).values() if v["run_id"] == run_id]
    registered = state in AFTER_REGISTRATION or (state == "RegisterModel" and kind == "timeout")
    assert len(mine) == (1 if registered else 0)
    # declined while a candidate; rolled back when RecordOutcome had already promoted it
    promoted_first = state == "Notify" or (state, kind) == ("RecordOutcome", "timeout")
    for version in mine:
        assert version["run_status"] == "FAILED"
        assert version["promotion"] == "NOT_PROMOTED"
        assert version["promotion_reason"].startswith("rolled back: " if promoted_first else "not promoted: ")
        assert f"its run failed at {state}: {expected.error}" in version["promotion_reason"]
        assert run["model_version"] == version["version"]
    assert champion(after.items, MODEL) == champion(before.items, MODEL)
    assert after.items[meta_key(MODEL)].get("champion_artifact_uri") == before.items[meta_key(MODEL)].get(
        "champion_artifact_uri"
    )
    nothing_lost(
        before,
        after,
        run_ids=[run_id],
        new_versions_of=MODEL,
        allowed_changes={meta_key(MODEL): {"latest_version"}},
    )

    # the notification names the stage and the cause
    notices = notifications.about(run_id)
    failures = [n for n in notices if "run failed at" in n["subject"]]
    if expected.notified:
        [notice] = failures
        assert notice["subject"].endswith(f"run failed at {expected.stage}: {expected.error}")
        assert f"Run {run_id} failed at {expected.stage}: {expected.error}." in notice["message"]
        assert expected.cause in notice["message"]
        if mine:
            assert f"Version {mine[0]['version']} of {MODEL} was registered by this run" in notice["message"]
    else:
        assert failures == []
    # only Notify timing out late delivered the success message before failing
    successes = [n for n in notices if n["subject"].endswith("run succeeded")]
    assert len(successes) == (1 if (state, kind) == ("Notify", "timeout") else 0)

    resilience_row(
        Row(
            "Failure paths",
            f"{state} fails ({kind})",
            _what_was_done(state, kind),
            f"{record['status']} ({expected.last_states[-1]})",
            record["error"],
            first_words(run["cause"], run_id) if expected.stage else "not recorded",
            _registry_outcome(expected, bool(mine), rolled_back=bool(mine) and promoted_first),
            "yes",
        )
    )


def _state_input(record: dict[str, Any], state: str) -> dict[str, Any]:
    """The input `state` was entered with, from the execution history."""
    event = next(e for e in record["events"] if e.get("stateEnteredEventDetails", {}).get("name") == state)
    return dict(json.loads(event["stateEnteredEventDetails"]["input"]))


def _timed_out_states(record: dict[str, Any]) -> list[str]:
    """The states whose task ended in TaskTimedOut (States.Timeout), from the history."""
    names: list[str] = []
    current = ""
    for event in record["events"]:
        if "stateEnteredEventDetails" in event:
            current = event["stateEnteredEventDetails"]["name"]
        elif event["type"] == "TaskTimedOut":
            names.append(current)
    return names


def _what_was_done(state: str, kind: str) -> str:
    first = f"{FIRST_FAILURE}'s handler raises, then " if state in ("RecordFailure", "NotifyFailure") else ""
    if kind == "timeout":
        how = "after its call answered" if state not in JOBS else "before its job ran"
        return f"{first}{state} times out (States.Timeout, {how})"
    if state in FUNCTIONS:
        return f"{first}{state}'s handler raises (RuntimeError)"
    if state in JOBS:
        return f"{state}'s {JOBS[state]} fails"
    if state == "CreateModel":
        return "CreateModel refused (ResourceLimitExceeded)"
    return f"{first}{state}: SNS Publish refused (AuthorizationError)"


def _registry_outcome(expected: Expected, registered: bool, *, rolled_back: bool) -> str:
    if expected.stage is None:
        return "run left RUNNING (the failure could not be recorded); no notification"
    text = f"run FAILED at {expected.stage}"
    if registered:
        text += "; its version run_status FAILED, NOT_PROMOTED"
        text += " (promoted, then rolled back)" if rolled_back else ""
        text += "; champion unchanged"
    return text + ("; notified" if expected.notified else "; not notified")

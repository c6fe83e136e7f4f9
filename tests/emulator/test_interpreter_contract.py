"""The seam into moto's interpreter fails loudly, at start, when a moto upgrade moves it."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from types import SimpleNamespace

import pytest
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

from emulator import interpreter
from emulator.state import PROJECT_ROOT


def test_the_installed_moto_fits_the_seam() -> None:
    interpreter.check_contract()  # raises SeamError naming every mismatch


def test_a_moved_binding_is_reported_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    def state_task_for(resource):  # a future moto that no longer reads the module global
        return resource

    monkeypatch.setattr(state_task_factory, "state_task_for", state_task_for)
    with pytest.raises(interpreter.SeamError, match="state_task_service_for"):
        interpreter.check_contract()


def test_a_changed_signature_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    def _eval_sync(self, env, resolver, timeout_seconds):  # a renamed/removed parameter
        return None

    monkeypatch.setattr(interpreter.StateTaskServiceCallback, "_eval_sync", _eval_sync)
    with pytest.raises(interpreter.SeamError, match="_eval_sync"):
        interpreter.check_contract()


def test_only_one_runtime_may_own_the_seam() -> None:
    owner, other = object(), object()
    interpreter.install(owner, sagemaker=None, lambdas=None)  # type: ignore[arg-type]
    try:
        with pytest.raises(RuntimeError, match="another local runtime"):
            interpreter.install(other, sagemaker=None, lambdas=None)  # type: ignore[arg-type]
    finally:
        interpreter.uninstall(owner)
    assert state_task_factory.state_task_service_for is interpreter._ORIGINAL_SERVICE_FOR


def test_importing_the_seam_defers_moto_batch_until_it_is_used() -> None:
    # in a fresh interpreter: this process may have imported moto.batch for other reasons
    probe = (
        "import sys, emulator.interpreter\n"
        "print(type(sys.modules['moto.batch']).__name__, 'moto.ec2.models' in sys.modules)\n"
        "from moto.batch import batch_backends\n"
        "print(type(sys.modules['moto.batch']).__name__, 'moto.ec2.models' in sys.modules,"
        " type(batch_backends).__name__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=PROJECT_ROOT
    )
    before, after = done.stdout.splitlines()
    assert before == "_DeferredPackage False"  # EC2's models (0.8 s) not imported by the seam
    assert after == "module True BackendDict"  # the first real use completes the package


def test_the_validation_parse_is_handed_to_one_execution_only() -> None:
    definition = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
    arn = "arn:aws:states:us-east-1:123456789012:execution:machine:run-1"
    worker = SimpleNamespace(
        _evaluation_details=SimpleNamespace(
            state_machine_details=SimpleNamespace(definition=definition),
            execution_details=SimpleNamespace(arn=arn),
        )
    )
    owner = object()
    interpreter.install(owner, sagemaker=None, lambdas=None)  # type: ignore[arg-type]
    try:
        validated, _tree = AmazonStateLanguageParser.parse(definition)  # what CreateStateMachine does
        first = ExecutionWorker._get_evaluation_entrypoint(worker)  # type: ignore[arg-type]
        second = ExecutionWorker._get_evaluation_entrypoint(worker)  # type: ignore[arg-type]
    finally:
        interpreter.uninstall(owner)
    assert first is validated
    assert interpreter.execution_thread(arn) is threading.current_thread()  # what waiters join
    assert second is not validated and type(second) is type(validated)  # parsed afresh
    assert AmazonStateLanguageParser.parse is interpreter._ORIGINAL_PARSE


def test_a_moto_that_reads_reverse_order_itself_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    def get_execution_history(self):  # a future moto honouring the parameter: the seam must not reverse
        return self._get_param("reverseOrder")

    monkeypatch.setattr(interpreter.StepFunctionResponse, "get_execution_history", get_execution_history)
    with pytest.raises(interpreter.SeamError, match="reverseOrder"):
        interpreter.check_contract()

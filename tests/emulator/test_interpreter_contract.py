"""The seam into moto's interpreter fails loudly, at start, when a moto upgrade moves it."""

from __future__ import annotations

import pytest
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory

from emulator import interpreter


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

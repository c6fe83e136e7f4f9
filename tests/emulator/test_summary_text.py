"""The run summary's text says what happened, not `None`: which version, and which model scored."""

from __future__ import annotations

from emulator.summary import render


def summary(**fields: object) -> dict:
    base: dict = {
        "execution": "run-1",
        "status": "SUCCEEDED",
        "model_name": "medication-adherence-model",
        "model_version": 2,
        "champion_version": 1,
        "scored_version": 2,
        "decision": "approved",
        "predictions": "/state/artifacts/run-1/predictions.csv",
        "states": [],
    }
    base.update(fields)
    return base


def test_a_run_that_failed_before_registering_says_so_not_none() -> None:
    text = render(
        summary(
            status="FAILED",
            error="InvalidDataset",
            cause="no rows",
            model_version=None,
            champion_version=None,
            decision=None,
            scored_version=None,
            predictions=None,
        )
    )
    assert "None" not in text
    assert "medication-adherence-model (no version registered) (no champion)" in text


def test_predictions_name_the_model_that_scored_them() -> None:
    approved = render(summary())
    rejected = render(summary(decision="rejected", scored_version=1))

    assert "(scored by this run's model, version 2)" in approved
    assert "(scored by the champion, version 1: the report above is this run's rejected model)" in rejected

"""The run summary's text says what happened, not `None`: which version, and which model scored."""

from __future__ import annotations

from pathlib import Path

from emulator.summary import join_predictions, render


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


def test_prediction_parts_are_joined_in_order_with_one_header(tmp_path: Path) -> None:
    header = "encounter_id,probability,prediction\n"
    parts = []
    for n, rows in enumerate(["1,0.1,0\n2,0.9,1\n", "3,0.2,0\n", "4,0.3,0"]):  # the last one unterminated
        path = tmp_path / f"part-{n}.csv.out"
        path.write_text(header + rows)
        parts.append(path)

    join_predictions(parts, tmp_path / "predictions.csv")

    assert (tmp_path / "predictions.csv").read_text() == header + "1,0.1,0\n2,0.9,1\n3,0.2,0\n4,0.3,0\n"

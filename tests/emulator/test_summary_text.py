"""The run summary's text says what happened, not `None`: which version, and which model scored."""

from __future__ import annotations

from pathlib import Path

from emulator.summary import join_predictions, prediction_counts, render


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
    header = "encounter_id,probability,prediction,not_scored_reason\n"
    parts = []
    chunks = ["1,0.1,0,\n2,0.9,1,\n", "3,,,expired\n", "4,0.3,0,"]  # the last one unterminated
    for n, rows in enumerate(chunks):
        path = tmp_path / f"part-{n}.csv.out"
        path.write_text(header + rows)
        parts.append(path)

    join_predictions(parts, tmp_path / "predictions.csv")

    assert (
        tmp_path / "predictions.csv"
    ).read_text() == header + "1,0.1,0,\n2,0.9,1,\n3,,,expired\n4,0.3,0,\n"


def test_the_summary_counts_scored_and_not_scored_rows_by_reason(tmp_path: Path) -> None:
    path = tmp_path / "predictions.csv"
    path.write_text(
        "encounter_id,probability,prediction,not_scored_reason\n"
        '1,0.100000,0,\n2,,,expired\n"3,a",0.900000,1,\n4,,,hospice\n5,,,expired\n'
    )
    counts = prediction_counts(path)

    assert counts == {"rows": 5, "scored": 2, "not_scored": {"expired": 2, "hospice": 1}}
    assert "2 scored, 3 not scored: 2 expired, 1 hospice" in render(summary(prediction_counts=counts))


def test_a_file_with_every_row_scored_says_only_how_many(tmp_path: Path) -> None:
    path = tmp_path / "predictions.csv"
    path.write_text("encounter_id,probability,prediction,not_scored_reason\n1,0.1,0,\n2,0.2,0,\n")
    counts = prediction_counts(path)

    assert counts == {"rows": 2, "scored": 2, "not_scored": {}}
    assert "2 scored\n" in render(summary(prediction_counts=counts)) + "\n"
    assert "not scored" not in render(summary(prediction_counts=counts))


def test_a_scoring_file_without_patients_is_said_in_the_summary() -> None:
    sentence = "The scoring file has no patient_nbr column: every encounter was scored as a first encounter."
    assert f"  history:    {sentence}" in render(summary(history_note=sentence)).splitlines()
    assert "history:" not in render(summary(history_note=None))

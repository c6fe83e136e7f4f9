"""Patient history on the whole local pipeline: EnrichHistory before the transform, its sentences."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from pipelines.enrich import NO_PATIENT_SENTENCE
from tests.e2e.test_e2e_cli import emulator


def without_column(source: Path, target: Path, column: str) -> Path:
    with open(source, newline="") as handle:
        rows = list(csv.reader(handle))
    index = rows[0].index(column)
    with open(target, "w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows([r[:index] + r[index + 1 :] for r in rows])
    return target


def with_a_repeated_encounter(source: Path, target: Path) -> Path:
    lines = source.read_text().splitlines()
    target.write_text("\n".join([*lines[:200], lines[5]]) + "\n")
    return target


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("history-state"))


@pytest.fixture(scope="module")
def without_patients(state_dir: str, slices: dict[str, Path], tmp_path_factory) -> tuple[int, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("score")
    score = without_column(slices["fourth"], folder / "no_patient.csv", "patient_nbr")
    return emulator(
        "run", "--dataset", str(slices["fourth"]), "--score", str(score), "--state-dir", state_dir,
        "--json", "--env", "MIN_ROC_AUC=0",
    )  # fmt: skip


def test_a_scoring_file_without_patients_is_scored_and_the_summary_says_so(without_patients) -> None:
    code, summary = without_patients
    assert code == 0 and summary["status"] == "SUCCEEDED", summary
    states = [s["state"] for s in summary["states"]]
    assert states.index("EnrichHistory") == states.index("BatchTransform") - 1
    assert summary["history_note"] == NO_PATIENT_SENTENCE
    assert summary["prediction_counts"]["rows"] == 3000


def test_a_repeated_encounter_id_fails_the_run_in_a_sentence_and_leaves_the_champion(
    without_patients, state_dir: str, slices: dict[str, Path], tmp_path: Path
) -> None:
    _, first = without_patients
    champion = first["champion_version"]
    assert champion == first["model_version"]
    score = with_a_repeated_encounter(slices["fifth"], tmp_path / "repeated.csv")
    code, summary = emulator(
        "run", "--dataset", str(slices["fifth"]), "--score", str(score), "--state-dir", state_dir,
        "--json", "--env", "MIN_ROC_AUC=0",
    )  # fmt: skip
    assert code != 0 and summary["status"] == "FAILED"
    # ValidateDataset's sample already holds the repeat (EnrichHistory refuses one anywhere in the
    # input: tests/pipelines/test_patient_history.py): refused before training is paid for.
    assert "TrainModel" not in [s["state"] for s in summary["states"]]
    assert "repeats encounter_id" in summary["cause"], summary["cause"]
    assert summary["champion_version"] == champion

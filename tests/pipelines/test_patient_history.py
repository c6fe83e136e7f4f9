"""Patient history never sees the future: leakage tests of pipelines/history.py.

The property every test here checks in some form: an encounter's history features are a function of
the same patient's encounters with a smaller encounter_id, and of nothing else. A planted leak (the
patient's total encounters, future ones included: 0.817 ROC AUC in the issue's experiment, false)
makes the property check fail, so the check is known to be able to fail.
"""

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import pytest

from pipelines import schema
from pipelines.data import DatasetError
from pipelines.history import (
    HISTORY_FILE,
    add_history,
    history_features,
    history_table,
    read_history_artifact,
)
from pipelines.inference import load_model_dir, read_scoring_file, score, with_history
from pipelines.training_pipeline import TrainingPipeline

HistoryFunction = Callable[[pd.DataFrame, Optional[pd.DataFrame]], pd.DataFrame]


def leaky_history(rows: pd.DataFrame, prior: Optional[pd.DataFrame] = None) -> pd.DataFrame:
    """The planted leak: the real features, plus the patient's total number of encounters (future
    ones included) folded into `history_encounters`."""
    features = history_features(rows, prior)
    total = rows.groupby(schema.GROUP_COLUMN)[schema.ID_COLUMN].transform("count").to_numpy()
    features["history_encounters"] = features["history_encounters"] + total
    return features


@pytest.fixture(scope="module")
def encounters(slice_frame: pd.DataFrame) -> pd.DataFrame:
    """The slice (as read) plus ~1,500 extra encounters of its patients, so that many patients
    have several encounters, interleaved with each other's ids: later copies get larger ids, some
    smaller than other patients' originals."""
    frame = read_scoring_file_frame(slice_frame)
    rng = np.random.RandomState(5)
    extra = frame.sample(n=1500, replace=True, random_state=5).copy()
    ids = pd.to_numeric(extra[schema.ID_COLUMN]).to_numpy()
    extra[schema.ID_COLUMN] = [
        str(int(i) + int(rng.randint(1, 5_000_000)) * 7 + k) for k, i in enumerate(ids)
    ]
    extra["time_in_hospital"] = rng.randint(1, 15, size=len(extra)).astype(float)
    extra[schema.DISCHARGE_COLUMN] = rng.choice(["1", "3", "6"], size=len(extra))
    combined = pd.concat([frame, extra], ignore_index=True)
    assert not combined[schema.ID_COLUMN].duplicated().any()
    assert combined[schema.GROUP_COLUMN].value_counts().max() >= 3
    return combined


def read_scoring_file_frame(slice_frame: pd.DataFrame) -> pd.DataFrame:
    """The slice with the reader's dtypes (numeric counts as floats, `?` missing)."""
    frame = slice_frame.replace("?", np.nan)
    for column in schema.NUMERIC_COLUMNS:
        frame[column] = pd.to_numeric(frame[column])
    return frame


def by_encounter(features: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """Features keyed by encounter_id, sorted: comparable whatever the row order."""
    keyed = features.copy()
    keyed.index = rows[schema.ID_COLUMN].to_numpy()
    return keyed.sort_index()


def later_encounters_change_nothing(function: HistoryFunction, frame: pd.DataFrame) -> bool:
    """Whether `function`'s features of every encounter survive: shuffling the rows, removing every
    encounter after a cut, adding later encounters of the same patients, and removing other patients."""
    full = by_encounter(function(frame, None), frame)
    ids = pd.to_numeric(frame[schema.ID_COLUMN])
    checks = []
    shuffled = frame.sample(frac=1.0, random_state=11)
    checks.append((shuffled, full))
    cut = ids.quantile(0.6)
    early = frame[ids <= cut].sample(frac=1.0, random_state=2)
    checks.append((early, full.loc[early[schema.ID_COLUMN].to_numpy()].sort_index()))
    later = frame.sample(n=400, random_state=3).copy()
    later[schema.ID_COLUMN] = [str(10**12 + k) for k in range(len(later))]
    grown = pd.concat([frame, later], ignore_index=True).sample(frac=1.0, random_state=4)
    original = grown[schema.ID_COLUMN].isin(frame[schema.ID_COLUMN]).to_numpy()
    checks.append((grown, None))
    patients = frame[schema.GROUP_COLUMN].drop_duplicates().sample(frac=0.3, random_state=6)
    some = frame[frame[schema.GROUP_COLUMN].isin(patients)]
    checks.append((some, full.loc[some[schema.ID_COLUMN].to_numpy()].sort_index()))
    for rows, expected in checks:
        found = by_encounter(function(rows, None), rows)
        if expected is None:  # the grown frame: compare its original encounters only
            found = by_encounter(function(rows, None)[original], rows[original])
            expected = full
        if not found.equals(expected):
            return False
    return True


@pytest.mark.parametrize(
    ("function", "leaks"), [(history_features, False), (leaky_history, True)], ids=["history", "planted_leak"]
)
def test_an_encounters_history_never_changes_when_later_encounters_change(encounters, function, leaks):
    assert later_encounters_change_nothing(function, encounters) is not leaks


def test_history_counts_only_the_patients_strictly_earlier_encounters():
    rows = pd.DataFrame(
        {
            schema.ID_COLUMN: ["30", "10", "20", "5", "40"],
            schema.GROUP_COLUMN: ["p", "p", "p", "q", "p"],
            "time_in_hospital": [3.0, 1.0, 2.0, 9.0, 4.0],
            "number_inpatient": [0.0, 1.0, 2.0, 7.0, 0.0],
            "number_emergency": [0.0, 0.0, 1.0, 0.0, 0.0],
            "number_outpatient": [1.0, 0.0, 0.0, 0.0, 0.0],
            "num_medications": [10.0, 11.0, 12.0, 13.0, 14.0],
            "number_diagnoses": [5.0, 6.0, 7.0, 8.0, 9.0],
            schema.DISCHARGE_COLUMN: ["1", "6", "3", "1", "1"],
        }
    )
    features = history_features(rows)
    # p's encounters in id order: 10, 20, 30, 40; q has one.
    assert features["history_encounters"].tolist() == [2, 0, 1, 0, 3]
    assert features["history_days_in_hospital"].tolist() == [3, 0, 1, 0, 6]
    assert features["history_inpatient"].tolist() == [3, 0, 1, 0, 3]
    assert features["previous_time_in_hospital"].tolist()[0] == 2.0
    assert features["previous_num_medications"].tolist()[4] == 10.0
    assert features["previous_discharge_disposition_id"].tolist() == ["3", np.nan, "6", np.nan, "1"]
    assert features["previous_encounter_gap"].tolist()[0] == pytest.approx(np.log1p(10))
    assert np.isnan(features.loc[1, "previous_time_in_hospital"])


def test_rows_without_a_patient_are_first_encounters_and_nobodys_history(encounters):
    without = history_features(encounters.drop(columns=[schema.GROUP_COLUMN]))
    assert (without["history_encounters"] == 0).all()
    assert without["previous_time_in_hospital"].isna().all()
    one_missing = encounters.copy()
    repeated = one_missing[schema.GROUP_COLUMN].value_counts().index[0]
    rows = np.flatnonzero(one_missing[schema.GROUP_COLUMN].to_numpy() == repeated)
    one_missing.loc[one_missing.index[rows[0]], schema.GROUP_COLUMN] = np.nan
    features = history_features(one_missing)
    assert features["history_encounters"].iloc[rows[0]] == 0
    # The others of that patient no longer count the row without a patient.
    before = history_features(encounters)["history_encounters"].to_numpy()[rows[1:]]
    after = features["history_encounters"].to_numpy()[rows[1:]]
    assert (after <= before).all() and (after < before).any()


def test_a_repeated_encounter_id_is_a_named_error(encounters):
    doubled = pd.concat([encounters.head(10), encounters.head(1)], ignore_index=True)
    with pytest.raises(DatasetError) as caught:
        history_features(doubled)
    assert caught.value.code == "duplicate_encounter_id"
    assert "appear once" in str(caught.value)


def test_prior_history_extends_a_batch_and_the_batchs_own_record_wins(encounters):
    ids = pd.to_numeric(encounters[schema.ID_COLUMN])
    cut = ids.quantile(0.5)
    prior = history_table(encounters[ids <= cut])
    later = encounters[ids > cut]
    whole = by_encounter(history_features(encounters), encounters)
    # The later encounters scored alone, with the earlier ones as the model's history: the whole's.
    alone = by_encounter(history_features(later, prior), later)
    assert alone.equals(whole.loc[alone.index])
    # Overlap: scoring rows the prior already holds gives the same features (no self-history).
    overlapping = encounters.sample(n=800, random_state=8)
    found = by_encounter(history_features(overlapping, history_table(encounters)), overlapping)
    assert found.equals(whole.loc[found.index])


def test_training_and_scoring_give_the_same_features_and_probabilities_for_the_same_rows(trained, slice_csv):
    bundle = load_model_dir(trained.model_dir)
    assert bundle.history_columns and bundle.history is not None
    frame = read_scoring_file(str(slice_csv))
    as_trained = add_history(frame)  # what training computed, from the whole training file
    subset = frame.sample(n=700, random_state=1).sort_index()
    as_scored = with_history(bundle, subset)  # the subset + the model's patient history
    columns = list(schema.HISTORY_COLUMNS)
    assert as_scored[columns].equals(as_trained.loc[subset.index, columns])
    pd.testing.assert_frame_equal(
        score(bundle, subset).reset_index(drop=True),
        score(bundle, as_trained.loc[subset.index]).reset_index(drop=True),
    )


def test_a_new_encounter_of_a_known_patient_gets_the_training_history(trained, slice_csv):
    bundle = load_model_dir(trained.model_dir)
    frame = read_scoring_file(str(slice_csv))
    patient = frame[schema.GROUP_COLUMN].value_counts().index[0]
    known = int((frame[schema.GROUP_COLUMN] == patient).sum())
    new = frame[frame[schema.GROUP_COLUMN] == patient].head(1).copy()
    new[schema.ID_COLUMN] = str(10**12)
    stranger = new.copy()
    stranger[schema.ID_COLUMN] = str(10**12 + 1)
    stranger[schema.GROUP_COLUMN] = "never-seen"
    features = with_history(bundle, pd.concat([new, stranger], ignore_index=True))
    assert features["history_encounters"].tolist() == [known, 0]


def test_the_patient_grouped_split_never_puts_one_patient_on_both_sides(encounters):
    split = TrainingPipeline({"seed": 3})._split(add_history(encounters))
    groups = split.frame[schema.GROUP_COLUMN]
    training, validation = set(groups[split.train_mask]), set(groups[split.validation_mask])
    assert training and validation and not training & validation
    assert split.train_mask.sum() + split.validation_mask.sum() == len(split.frame)


def test_a_history_artifact_of_another_model_is_refused_in_a_sentence(trained, tmp_path: Path):
    model_dir = tmp_path / "model"
    shutil.copytree(trained.model_dir, model_dir)
    table, manifest = read_history_artifact(str(model_dir))
    assert manifest["rows"] == len(table) and manifest["sha256"]
    # Another version's history: a different file under the same name.
    table.head(100).to_csv(model_dir / HISTORY_FILE, index=False, compression="gzip")
    with pytest.raises(DatasetError) as caught:
        load_model_dir(str(model_dir))
    assert caught.value.code == "history_mismatch"
    assert "another model version" in str(caught.value)


def test_the_history_artifact_is_the_same_bytes_for_the_same_training_data(trained, slice_csv, tmp_path):
    again = TrainingPipeline({"max_iter": 40}).execute(str(slice_csv), str(tmp_path), make_report=False)
    first = trained.metrics["history"]["artifact"]["sha256"]
    assert again.metrics["history"]["artifact"]["sha256"] == first
    assert (Path(trained.model_dir) / HISTORY_FILE).read_bytes() == (tmp_path / HISTORY_FILE).read_bytes()


def test_training_reports_what_history_added_on_the_same_split(trained):
    block = trained.metrics["history"]
    assert block["enabled"] is True and block["columns"]
    assert set(block["columns"]) <= set(schema.HISTORY_COLUMNS)
    without = block["without_history"]["roc_auc"]
    assert block["roc_auc_gain"] == pytest.approx(trained.metrics["model"]["roc_auc"] - without)


def test_history_can_be_switched_off(slice_csv, tmp_path):
    result = TrainingPipeline({"max_iter": 20, "history": "false"}).execute(
        str(slice_csv), str(tmp_path), make_report=False
    )
    assert not set(result.metrics["features"]) & set(schema.HISTORY_COLUMNS)
    assert result.metrics["history"] == {"enabled": False, "columns": [], "ordering": "encounter_id"}
    assert not (tmp_path / HISTORY_FILE).exists()


def score_in_mini_batches(model, path: Path, lines_per_batch: int, monkeypatch) -> str:
    """A part scored as batch transform does: split by line, the header in the first mini-batch
    only, the file's header in SCORING_COLUMNS; the responses joined by line."""
    from pipelines.inference import SCORING_COLUMNS_ENV, input_fn, output_fn, predict_fn

    header, *rows = path.read_text().splitlines()
    monkeypatch.setenv(SCORING_COLUMNS_ENV, header)
    out = []
    for start in range(0, len(rows), lines_per_batch):
        body = "\n".join(([header] if start == 0 else []) + rows[start : start + lines_per_batch]) + "\n"
        out.append(output_fn(predict_fn(input_fn(body, "text/csv"), model), "text/csv"))
    return "".join(out)


def test_a_file_scored_in_shards_and_mini_batches_gets_the_features_it_gets_scored_whole(
    trained, encounters, tmp_path, monkeypatch
):
    from pipelines.enrich import enrich, enriched_header
    from pipelines.inference_pipeline import InferencePipeline

    model = load_model_dir(trained.model_dir)
    whole = tmp_path / "whole.csv"
    shuffled = encounters.sample(frac=1.0, random_state=9)  # a patient's encounters in any part
    shuffled.to_csv(whole, index=False)
    expected = InferencePipeline(trained.model_dir).execute(str(whole), str(tmp_path / "scored"), False)
    expected_lines = Path(expected.predictions_path).read_text().splitlines()

    parts = tmp_path / "parts"
    parts.mkdir()
    bounds = [0, 1700, 3900, len(shuffled)]
    for k in range(3):
        shuffled.iloc[bounds[k] : bounds[k + 1]].to_csv(parts / f"part-{k}.csv", index=False)
    summary = enrich(trained.model_dir, str(parts), str(tmp_path / "enriched"))
    assert summary["rows"] == len(shuffled) and summary["parts"] == 3 and summary["message"] is None
    assert summary["rows_with_earlier_encounters"] > 1000

    found = []
    for k in range(3):
        # The header the BatchTransform state passes as SCORING_COLUMNS: the same for every part.
        assert (tmp_path / "enriched" / f"part-{k}.csv").read_text().splitlines()[0] == enriched_header()
        text = score_in_mini_batches(model, tmp_path / "enriched" / f"part-{k}.csv", 250, monkeypatch)
        found.extend(text.splitlines()[1:])
    assert found == expected_lines[1:]

    # Without the enrichment, mini-batches alone miss the earlier encounters in other mini-batches:
    # why the EnrichHistory job runs before the transform.
    alone = []
    for k in range(3):
        alone.extend(score_in_mini_batches(model, parts / f"part-{k}.csv", 250, monkeypatch).splitlines()[1:])
    assert alone != expected_lines[1:]


def test_a_scoring_file_without_patients_is_scored_as_first_encounters_and_says_so(
    trained, encounters, tmp_path
):
    from pipelines.enrich import NO_PATIENT_SENTENCE, enrich

    data = tmp_path / "scoring.csv"
    encounters.drop(columns=[schema.GROUP_COLUMN]).head(500).to_csv(data, index=False)
    summary = enrich(trained.model_dir, str(data), str(tmp_path / "out"))
    assert summary["patient_column"] is False
    assert summary["message"] == NO_PATIENT_SENTENCE
    enriched = pd.read_csv(tmp_path / "out" / "scoring.csv")
    assert (enriched["history_encounters"] == 0).all()


def test_the_enrichment_job_refuses_a_repeated_encounter_across_parts_and_writes_nothing(
    trained, encounters, tmp_path, capsys
):
    from pipelines.enrich import main

    parts = tmp_path / "parts"
    parts.mkdir()
    encounters.head(300).to_csv(parts / "a.csv", index=False)
    encounters.head(300).tail(5).to_csv(parts / "b.csv", index=False)
    out = tmp_path / "out"
    assert main(["--model", trained.model_dir, "--data", str(parts), "--output", str(out)]) == 1
    assert "duplicate_encounter_id" in capsys.readouterr().err
    assert not out.exists()

"""The finer diagnosis groups: ICD-9 categories learned from the training rows, and their
readmission rates fitted on training rows only (cross-fitted, so no row sees its own outcome)."""

import numpy as np
import pandas as pd
import pytest

from pipelines.features import (
    EncounterFeatures,
    TabularEncoder,
    frequent_icd9_categories,
    icd9_category_of_code,
    icd9_groups,
)


@pytest.mark.parametrize(
    ("code", "category"),
    [
        ("428", "428"),
        ("428.31", "428"),
        ("8", "008"),
        ("250", "250"),
        ("250.13", "250.1"),
        ("250.8", "250.8"),
        ("V57", "V57"),
        ("v5", "V05"),
        ("E885", "E885"),
        ("abc", None),
        ("", None),
    ],
)
def test_a_code_maps_to_its_three_digit_category_and_diabetes_to_its_fourth_digit(code, category):
    assert icd9_category_of_code(code) == category


def test_a_learned_category_is_kept_and_any_other_code_falls_back_to_its_chapter():
    values = pd.Series(["428.0", "428", "414", "V57", np.nan], dtype=object)

    grouped = icd9_groups(values, ["428", "V57"])

    assert list(grouped[:4]) == ["428", "428", "circulatory", "V57"]
    assert pd.isna(grouped[4])


def test_frequent_categories_count_every_code_of_a_category_most_frequent_first():
    values = pd.Series(["428.0"] * 3 + ["428.1"] * 2 + ["414"] * 4 + ["786"] * 2 + [np.nan] * 9, dtype=object)

    assert frequent_icd9_categories(values, min_count=3) == ["428", "414"]


def test_encounter_features_learn_the_categories_from_the_rows_they_are_fitted_on():
    train = pd.DataFrame({"diag_1": ["428"] * 30 + ["414"] * 5, "diag_2": ["486"] * 35})
    features = EncounterFeatures(
        columns=["diag_1", "diag_2"], detailed_diagnoses=["diag_1"], min_category_count=30
    )

    out = features.fit(train).transform(
        pd.DataFrame({"diag_1": ["428.9", "414", "486"], "diag_2": ["486"] * 3})
    )

    assert list(out["diag_1"]) == ["428", "circulatory", "respiratory"]
    assert list(out["diag_2"]) == ["respiratory"] * 3  # not detailed: chapters


def test_a_model_saved_before_the_finer_groups_still_scores_chapters():
    features = EncounterFeatures(columns=["diag_1"]).fit(pd.DataFrame({"diag_1": ["428"] * 40}))
    del features.diagnosis_categories_  # what unpickling an older model gives

    out = features.transform(pd.DataFrame({"diag_1": ["428"]}))

    assert list(out["diag_1"]) == ["circulatory"]


def _rated_frame(rows: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.RandomState(seed)
    frame = pd.DataFrame(
        {"n": rng.rand(rows), "d": rng.choice(["428", "414", "486", "V57"], rows).astype(object)}
    )
    return frame, (rng.rand(rows) < 0.2).astype(int)


def test_scoring_rates_are_the_training_rate_shrunk_towards_the_overall_rate():
    frame, y = _rated_frame()
    encoder = TabularEncoder(numeric=["n"], categorical=[], target_encoded=["d"], smoothing=30.0).fit(
        frame, y
    )

    out = encoder.transform(pd.DataFrame({"n": [0.5, 0.5, 0.5], "d": ["428", "unseen", np.nan]}))

    in_428 = (frame["d"] == "428").to_numpy()
    expected = (y[in_428].sum() + 30.0 * y.mean()) / (in_428.sum() + 30.0)
    assert encoder.feature_names_ == ["n", "d"]
    assert list(encoder.categorical_mask()) == [False, False]
    assert out[0, 1] == pytest.approx(expected)
    assert np.isnan(out[1, 1]) and np.isnan(out[2, 1])  # unseen and missing: missing


def test_a_training_rows_rate_never_contains_its_own_outcome():
    frame, y = _rated_frame()
    encoder = TabularEncoder(numeric=["n"], categorical=[], target_encoded=["d"])
    before = encoder.fit_transform(frame, y)[:, 1]
    flipped = y.copy()
    flipped[7] = 1 - flipped[7]

    after = TabularEncoder(numeric=["n"], categorical=[], target_encoded=["d"]).fit_transform(frame, flipped)[
        :, 1
    ]

    assert after[7] == before[7]
    same_value = (frame["d"] == frame["d"].iloc[7]).to_numpy()
    # The flip does move the rate of rows with the same diagnosis in the other folds.
    assert np.any(after[same_value] != before[same_value])


def test_target_encoding_without_an_outcome_is_refused():
    frame, _y = _rated_frame()
    with pytest.raises(ValueError, match="need the outcome"):
        TabularEncoder(numeric=["n"], categorical=[], target_encoded=["d"]).fit(frame)


def test_with_patients_as_groups_no_rate_contains_an_outcome_of_the_same_patient():
    frame, y = _rated_frame()
    patients = np.arange(len(frame)) // 4  # four encounters per patient
    encoder = TabularEncoder(numeric=["n"], categorical=[], target_encoded=["d"])
    before = encoder.fit_transform(frame, y, groups=patients)[:, 1]
    flipped = y.copy()
    flipped[patients == patients[9]] ^= 1  # every outcome of row 9's patient

    after = TabularEncoder(numeric=["n"], categorical=[], target_encoded=["d"]).fit_transform(
        frame, flipped, groups=patients
    )[:, 1]

    same_patient = patients == patients[9]
    assert np.array_equal(after[same_patient], before[same_patient])
    assert np.any(after[~same_patient] != before[~same_patient])


def test_the_training_pipeline_cross_fits_by_patient(monkeypatch):
    from pipelines import estimators

    seen = {}
    original = TabularEncoder.fit_transform

    def spy(self, frame, y=None, groups=None):
        seen["groups"] = groups
        return original(self, frame, y, groups)

    monkeypatch.setattr(TabularEncoder, "fit_transform", spy)
    frame, y = _rated_frame()
    raw = pd.DataFrame({"patient_nbr": np.arange(len(frame)) // 2, "diag_1": frame["d"], "age": "[50-60)"})
    model = estimators.build_pipeline("HistGradientBoosting", {"max_iter": 5}, 0, ["diag_1", "age"])

    estimators.fit_pipeline(model, raw, y)

    assert list(seen["groups"]) == list(raw["patient_nbr"])

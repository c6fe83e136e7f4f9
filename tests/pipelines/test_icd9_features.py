"""Feature preparation inside the Pipeline: ICD-9 grouping, category coding, partial inputs."""

import numpy as np
import pandas as pd
import pytest

from pipelines import schema
from pipelines.features import (
    ICD9_CHAPTERS,
    EncounterFeatures,
    TabularEncoder,
    icd9_group_of_code,
    icd9_groups,
    informative_columns,
)


@pytest.mark.parametrize(
    ("code", "group"),
    [
        ("250.83", "diabetes"),
        ("250", "diabetes"),
        ("428", "circulatory"),
        ("414", "circulatory"),
        ("486", "respiratory"),
        ("276", "endocrine"),
        ("8", "infectious"),
        ("153", "neoplasms"),
        ("996", "injury"),
        ("V57", "supplementary_v"),
        ("v45", "supplementary_v"),
        ("E909", "external_e"),
        ("E888", "external_e"),
        ("780", "symptoms"),
        ("648", "pregnancy"),
    ],
)
def test_icd9_code_maps_to_its_chapter_with_v_and_e_codes_grouped(code, group):
    assert icd9_group_of_code(code) == group


@pytest.mark.parametrize("code", ["", "abc", "0", "1000", "-5"])
def test_text_that_is_no_icd9_code_has_no_group(code):
    assert icd9_group_of_code(code) is None


def test_vectorised_grouping_matches_code_by_code_and_keeps_missing(slice_frame):
    values = slice_frame["diag_1"].replace("?", np.nan)
    grouped = icd9_groups(values)
    expected = [np.nan if pd.isna(v) else icd9_group_of_code(v) for v in values]
    assert len(grouped) == len(values)
    for got, want in zip(grouped, expected):
        assert (pd.isna(got) and (want is None or pd.isna(want))) or got == want


def test_encounter_features_groups_diagnoses_and_drops_identifiers(slice_frame):
    features = EncounterFeatures().fit(slice_frame)
    out = features.transform(slice_frame)
    assert schema.ID_COLUMN not in out.columns
    assert schema.GROUP_COLUMN not in out.columns
    assert schema.TARGET_COLUMN not in out.columns
    groups = {name for _, name in ICD9_CHAPTERS} | {"diabetes", "supplementary_v", "external_e"}
    for column in schema.DIAGNOSIS_COLUMNS:
        # a chapter, or one of the ICD-9 categories frequent enough in the rows it was fitted on
        assert set(out[column].dropna()) <= groups | set(features.diagnosis_categories_[column])
        assert out[column].notna().any()


def test_absent_optional_column_becomes_missing_and_absent_required_is_named(slice_frame):
    features = EncounterFeatures().fit(slice_frame)
    partial = slice_frame.drop(columns=["payer_code", "A1Cresult"])
    out = features.transform(partial)
    assert out["payer_code"].isna().all()
    assert out["A1Cresult"].isna().all()
    with pytest.raises(ValueError, match="num_medications"):
        features.transform(slice_frame.drop(columns=["num_medications"]))


def test_unknown_categories_are_coded_missing_not_an_error():
    train = pd.DataFrame({"n": [1.0, 2.0, 3.0] * 10, "c": ["a", "b", "a"] * 10})
    encoder = TabularEncoder(numeric=["n"], categorical=["c"], min_count=1).fit(train)
    out = encoder.transform(pd.DataFrame({"n": [5.0, np.nan], "c": ["zebra", "b"]}))
    assert np.isnan(out[0, 1])
    assert out[1, 1] == encoder.categories_["c"].index("b")
    assert out[0, 0] == 5.0 and np.isnan(out[1, 0])


def test_integer_coded_ids_from_a_dataframe_match_text_categories():
    train = pd.DataFrame({"admission_type_id": ["1", "6", "1", "6"]})
    features = EncounterFeatures(columns=["admission_type_id"]).fit(train)
    encoder = TabularEncoder(numeric=[], categorical=["admission_type_id"], min_count=1)
    encoder.fit(features.transform(train))
    as_ints = pd.DataFrame({"admission_type_id": [6, 1], "encounter_id": [1, 2]})
    codes = encoder.transform(features.transform(as_ints))[:, 0]
    assert list(codes) == [encoder.categories_["admission_type_id"].index(v) for v in ("6", "1")]


def test_near_constant_medication_columns_are_left_out(slice_frame):
    kept = informative_columns(slice_frame, schema.FEATURE_COLUMNS)
    assert "examide" not in kept
    assert "citoglipton" not in kept
    assert "insulin" in kept
    assert "num_medications" in kept

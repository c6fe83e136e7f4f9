"""Reading training data: every bad-data case gets its named reason; odd but valid files work."""

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines import schema
from pipelines.data import DatasetError, read_training_data
from tests.pipelines.pipeline_cases import BAD_DATA_CASES, make_bad_case


@pytest.mark.parametrize("case", BAD_DATA_CASES)
def test_bad_training_data_is_rejected_with_its_named_reason(case, tmp_path, raw_lines):
    channel = tmp_path / "training"
    make_bad_case(case, channel, raw_lines)
    with pytest.raises(DatasetError) as info:
        from pipelines.training_pipeline import TrainingPipeline

        TrainingPipeline({}).execute(str(channel), str(tmp_path / "model"), make_report=False)
    assert info.value.code == case
    assert case in str(info.value)
    assert not (tmp_path / "model" / "model.joblib").exists()


def test_a_dataset_too_small_to_evaluate_says_how_many_rows_and_positives_it_needs(tmp_path, raw_lines):
    from pipelines.training_pipeline import TrainingPipeline

    channel = tmp_path / "training"
    channel.mkdir()
    (channel / "small.csv").write_text("\n".join(raw_lines[:21]) + "\n")  # the 20 rows
    with pytest.raises(DatasetError) as info:
        TrainingPipeline({}).execute(str(channel), str(tmp_path / "model"), make_report=False)
    assert info.value.code == "too_small_to_evaluate"
    message = str(info.value)
    assert "the dataset has 20 usable rows with 3 positives and 17 negatives" in message
    assert "200 held-out rows with 50 of each outcome" in message
    assert "at least 1,000 usable rows with 250 positives and 250 negatives" in message
    assert not (tmp_path / "model" / "model.joblib").exists()


def test_the_dataset_minimum_follows_the_validation_fraction(tmp_path, raw_lines):
    from pipelines.training_pipeline import TrainingPipeline

    channel = tmp_path / "training"
    channel.mkdir()
    (channel / "small.csv").write_text("\n".join(raw_lines[:300]) + "\n")
    with pytest.raises(
        DatasetError, match=r"validation_fraction 0.5 a dataset of at least 400 usable rows with 100"
    ):
        TrainingPipeline({"validation_fraction": 0.5}).execute(
            str(channel), str(tmp_path / "m"), make_report=False
        )
    assert schema.minimum_dataset(0.2) == {"rows": 1000, "per_class": 250}
    assert schema.minimum_dataset(0.3) == {"rows": 667, "per_class": 167}


def test_held_out_patients_short_of_the_minimum_are_refused_even_when_the_dataset_is_not():
    import numpy as np

    from pipelines.training_pipeline import TrainingPipeline

    pipeline = TrainingPipeline({})
    y = np.array([1] * 300 + [0] * 900)
    pipeline._check_size(y, None)  # the whole dataset is large enough
    held_out = np.zeros(len(y), dtype=bool)
    held_out[250:450] = True  # 200 held-out rows, 50 positives: just enough
    pipeline._check_size(y, held_out)
    held_out[250] = False  # 49 positives
    with pytest.raises(DatasetError, match=r"held-out patients hold 199 rows with 49 positives") as info:
        pipeline._check_size(y, held_out)
    assert info.value.code == "too_small_to_evaluate"


def test_missing_columns_error_names_each_missing_column(tmp_path, raw_lines):
    make_bad_case("missing_columns", tmp_path, raw_lines)
    with pytest.raises(DatasetError, match=r"age, diag_1"):
        read_training_data(str(tmp_path))


def test_text_in_numeric_column_names_the_column_value_and_line(tmp_path, raw_lines):
    make_bad_case("non_numeric", tmp_path, raw_lines)
    with pytest.raises(DatasetError, match=r"num_medications.*twelve.*line 12"):
        read_training_data(str(tmp_path))


def test_bom_and_crlf_line_endings_read_like_a_plain_file(tmp_path, raw_lines):
    plain = tmp_path / "plain" / "a.csv"
    plain.parent.mkdir()
    plain.write_text("\n".join(raw_lines[:200]) + "\n")
    windows = tmp_path / "windows" / "a.csv"
    windows.parent.mkdir()
    windows.write_bytes(b"\xef\xbb\xbf" + ("\r\n".join(raw_lines[:200]) + "\r\n").encode())
    expected = read_training_data(str(plain))
    actual = read_training_data(str(windows))
    assert list(actual.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(actual, expected)


def test_question_mark_is_missing_and_literal_none_stays_a_category(tmp_path, raw_lines):
    path = tmp_path / "a.csv"
    path.write_text("\n".join(raw_lines[:500]) + "\n")
    frame = read_training_data(str(path))
    assert frame["weight"].isna().all()  # written "?" throughout the slice
    assert (frame["max_glu_serum"] == "None").sum() > 400
    assert frame["max_glu_serum"].notna().all()
    assert (frame["A1Cresult"] == "None").any()


def test_several_files_and_gzip_are_read_as_one_dataset(tmp_path, raw_lines):
    header, rows = raw_lines[0], raw_lines[1:]
    (tmp_path / "part1.csv").write_text("\n".join([header, *rows[:100]]) + "\n")
    (tmp_path / "part2.csv.gz").write_bytes(
        gzip.compress(("\n".join([header, *rows[100:250]]) + "\n").encode())
    )
    frame = read_training_data(str(tmp_path))
    assert len(frame) == 250
    assert frame[schema.ID_COLUMN].is_unique


def test_duplicate_encounter_across_files_is_rejected(tmp_path, raw_lines):
    header, rows = raw_lines[0], raw_lines[1:]
    (tmp_path / "part1.csv").write_text("\n".join([header, *rows[:100]]) + "\n")
    (tmp_path / "part2.csv").write_text("\n".join([header, *rows[99:200]]) + "\n")
    with pytest.raises(DatasetError) as info:
        read_training_data(str(tmp_path))
    assert info.value.code == "duplicate_encounter_id"


def test_unknown_extra_columns_are_ignored_with_a_warning(tmp_path, slice_frame):
    data = slice_frame.head(100).copy()
    data["favourite_colour"] = "blue"
    path = tmp_path / "a.csv"
    data.to_csv(path, index=False)
    with pytest.warns(UserWarning, match="favourite_colour"):
        frame = read_training_data(str(path))
    assert "favourite_colour" not in frame.columns
    assert len(frame) == 100


def test_numeric_columns_are_floats_and_codes_are_text(tmp_path, raw_lines):
    path = tmp_path / "a.csv"
    path.write_text("\n".join(raw_lines[:50]) + "\n")
    frame = read_training_data(str(path))
    for column in schema.NUMERIC_COLUMNS:
        assert frame[column].dtype == np.float64
    assert isinstance(frame["admission_type_id"].iloc[0], str)


def test_missing_channel_directory_is_a_named_error(tmp_path: Path):
    with pytest.raises(DatasetError) as info:
        read_training_data(str(tmp_path / "absent"))
    assert info.value.code == "no_data"

"""The named errors of reading a training or scoring CSV, each at its edge: the exact code and message
a user sees (issue 14: mutants of pipelines/data.py that blanked a message or a code lived).
"""

from __future__ import annotations

import gzip
import io
import warnings
from pathlib import Path

import pytest

from pipelines import data, schema
from pipelines.errors import DatasetError

REQUIRED = schema.REQUIRED_TRAINING_COLUMNS


def raised(call, *args) -> DatasetError:  # type: ignore[no-untyped-def]
    with pytest.raises(DatasetError) as caught:
        call(*args)
    return caught.value


def test_an_empty_or_blank_head_is_an_empty_file() -> None:
    for raw in (b"", b" \r\n"):
        error = raised(data.decode_head, raw, "f.csv")
        assert (error.code, str(error)) == ("empty_file", "Invalid dataset (empty_file): f.csv is empty")


def test_a_head_with_a_nul_byte_is_binary() -> None:
    error = raised(data.decode_head, b"a,b\x00", "f.bin")

    assert (error.code, str(error)) == (
        "not_csv",
        "Invalid dataset (not_csv): f.bin is binary, not a CSV text file",
    )


def test_a_head_that_is_not_utf8_is_not_csv_and_a_bom_or_a_cut_character_is_fine() -> None:
    error = raised(data.decode_head, b"a,\xff\xfeb", "f.csv")

    assert error.code == "not_csv"
    assert str(error).startswith("Invalid dataset (not_csv): f.csv is not UTF-8 CSV text (")
    assert data.decode_head("\ufeffa,é".encode()[:-1], "f.csv") == "a,"
    assert data.decode_head("\ufeffa,b".encode(), "f.csv") == "a,b"


def test_header_fields_are_split_on_commas_and_unquoted() -> None:
    assert data.parse_header(' "a" , b,c\r\n', "f.csv") == ["a", "b", "c"]
    assert data.parse_header("single", "f.csv") == ["single"]


@pytest.mark.parametrize(("line", "label"), [("a;b", "semicolon"), ("a\tb", "tab"), ("a|b", "pipe")])
def test_a_one_field_header_holding_another_delimiter_names_it(line: str, label: str) -> None:
    error = raised(data.parse_header, line, "f.csv")

    assert (error.code, str(error)) == (
        "wrong_delimiter",
        f"Invalid dataset (wrong_delimiter): f.csv is {label}-separated; the file must be comma-separated",
    )


def test_a_comma_header_with_semicolons_inside_is_not_a_delimiter_problem() -> None:
    assert data.parse_header("a;x,b", "f.csv") == ["a;x", "b"]


def test_the_required_columns_present_pass_and_unknown_ones_are_returned_with_a_warning() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert data.check_columns([*REQUIRED], REQUIRED, "f.csv") == []
        assert data.check_columns([*REQUIRED, "zz", "yy"], REQUIRED, "f.csv") == ["zz", "yy"]

    assert [str(w.message) for w in caught] == ["f.csv: ignoring unknown column(s): zz, yy"]


def test_a_missing_target_is_named_before_other_missing_columns() -> None:
    columns = [c for c in REQUIRED if c not in (schema.TARGET_COLUMN, "gender")]

    error = raised(data.check_columns, columns, REQUIRED, "f.csv")

    assert (error.code, str(error)) == (
        "missing_target",
        "Invalid dataset (missing_target): f.csv has no target column 'readmitted'",
    )
    assert (
        data.check_columns([c for c in columns if c != schema.TARGET_COLUMN], ["encounter_id"], "s.csv") == []
    )


def test_missing_columns_are_listed_in_the_required_order() -> None:
    columns = [c for c in REQUIRED if c not in ("gender", "age")]

    error = raised(data.check_columns, columns, REQUIRED, "f.csv")

    assert (error.code, str(error)) == (
        "missing_columns",
        "Invalid dataset (missing_columns): f.csv lacks required column(s): gender, age",
    )


def test_a_column_given_twice_is_a_duplicate_and_once_is_not() -> None:
    error = raised(data.check_columns, [*REQUIRED, "age", "gender"], REQUIRED, "f.csv")

    assert (error.code, str(error)) == (
        "duplicate_columns",
        "Invalid dataset (duplicate_columns): f.csv repeats column(s): age, gender",
    )


def test_an_empty_file_and_a_corrupt_gzip_are_named(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    corrupt = tmp_path / "cut.csv.gz"
    corrupt.write_bytes(gzip.compress(b"a,b\n" * 1000)[:30])

    empty_error = raised(data._head_text, str(empty), False)
    corrupt_error = raised(data._head_text, str(corrupt), True)

    assert (empty_error.code, str(empty_error)) == (
        "empty_file",
        "Invalid dataset (empty_file): empty.csv is empty (0 bytes)",
    )
    assert corrupt_error.code == "corrupt_gzip"
    assert str(corrupt_error).startswith(
        "Invalid dataset (corrupt_gzip): cut.csv.gz is not a complete gzip file ("
    )


def test_the_head_of_a_plain_and_a_gzip_file_is_their_text(tmp_path: Path) -> None:
    plain = tmp_path / "a.csv"
    plain.write_bytes(b"a,b\n1,2\n")
    packed = tmp_path / "a.csv.gz"
    packed.write_bytes(gzip.compress(b"a,b\n1,2\n"))

    assert data._head_text(str(plain), False) == "a,b\n1,2\n"
    assert data._head_text(str(packed), True) == "a,b\n1,2\n"
    assert data._is_gzip(str(packed)) and not data._is_gzip(str(plain))


def test_a_frame_reads_the_known_columns_with_numbers_as_floats_and_question_marks_missing() -> None:
    text = "encounter_id,time_in_hospital,max_glu_serum,zz\n7,3,None,x\n8,?,>200,y\n"

    frame = data.read_frame(
        io.StringIO(text), ["encounter_id", "time_in_hospital", "max_glu_serum", "zz"], "f"
    )

    assert list(frame.columns) == ["encounter_id", "time_in_hospital", "max_glu_serum"]
    assert frame["time_in_hospital"].dtype == "float64"
    assert frame["time_in_hospital"].isna().tolist() == [False, True]
    assert frame["max_glu_serum"].tolist() == ["None", ">200"]
    assert frame["encounter_id"].tolist() == ["7", "8"]


def test_a_headerless_frame_takes_the_given_names_and_keep_narrows_the_read() -> None:
    columns = ["encounter_id", "time_in_hospital", "gender"]

    frame = data.read_frame(
        io.StringIO("7,3,Male\n"), columns, "f", header=False, keep=["encounter_id", "gender"]
    )

    assert frame.to_dict("records") == [{"encounter_id": "7", "gender": "Male"}]


def test_text_in_a_numeric_column_of_a_read_is_located() -> None:
    text = "encounter_id,time_in_hospital\n7,3\n8,three\n"

    error = raised(data.read_frame, io.StringIO(text), ["encounter_id", "time_in_hospital"], "f.csv")

    assert str(error) == (
        "Invalid dataset (non_numeric): f.csv: column 'time_in_hospital' must be numeric "
        "but holds 'three' (line 3)"
    )


def test_a_chunked_read_yields_frames_of_at_most_the_chunk_size_with_the_same_dtypes(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("encounter_id,time_in_hospital\n" + "".join(f"{i},{i % 5}\n" for i in range(5)))

    chunks = list(
        data.read_frame_chunks(str(path), ["encounter_id", "time_in_hospital"], "s.csv", chunk_rows=2)
    )

    assert [len(c) for c in chunks] == [2, 2, 1]
    assert all(c["time_in_hospital"].dtype == "float64" for c in chunks)
    assert chunks[2]["encounter_id"].tolist() == ["4"]


def test_a_headerless_chunked_read_names_the_columns_and_names_its_errors(tmp_path: Path) -> None:
    good = tmp_path / "g.csv"
    good.write_text("7,3\n")
    bad = tmp_path / "b.csv"
    bad.write_text("7,three\n")
    columns = ["encounter_id", "time_in_hospital"]

    frames = list(data.read_frame_chunks(str(good), columns, "g.csv", header=False))
    error = raised(lambda: list(data.read_frame_chunks(str(bad), columns, "b.csv", header=False)))

    assert frames[0].to_dict("records") == [{"encounter_id": "7", "time_in_hospital": 3.0}]
    assert error.code == "non_numeric"
    assert str(error).startswith("Invalid dataset (non_numeric): b.csv: a numeric column holds text (")


def test_a_channel_lists_its_data_files_sorted_skipping_hidden_ones(tmp_path: Path) -> None:
    (tmp_path / "b.csv").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.csv.gz").write_text("x")
    (tmp_path / ".hidden.csv").write_text("x")
    (tmp_path / "notes.md").write_text("x")

    assert data.list_data_files(str(tmp_path)) == [
        str(tmp_path / "b.csv"),
        str(tmp_path / "sub" / "a.csv.gz"),
    ]
    assert data.list_data_files(str(tmp_path / "b.csv")) == [str(tmp_path / "b.csv")]
    error = raised(data.list_data_files, str(tmp_path / "missing"))
    assert (error.code, str(error)) == (
        "no_data",
        f"Invalid dataset (no_data): {tmp_path / 'missing'} does not exist",
    )


def test_a_channel_of_files_without_a_data_suffix_takes_them_all_and_an_empty_one_is_refused(
    tmp_path: Path,
) -> None:
    (tmp_path / "part-0001").write_text("x")
    empty = tmp_path / "empty"
    empty.mkdir()

    assert data.list_data_files(str(tmp_path)) == [str(tmp_path / "part-0001")]
    error = raised(data.list_data_files, str(empty))
    assert (error.code, str(error)) == ("no_data", f"Invalid dataset (no_data): {empty} holds no CSV file")


def test_numeric_columns_are_floats_and_the_rest_text() -> None:
    assert data.column_dtypes(["time_in_hospital", "gender"]) == {
        "time_in_hospital": "float64",
        "gender": object,
    }

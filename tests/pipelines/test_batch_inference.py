"""Batch transform contract: model_fn / input_fn / predict_fn / output_fn on CSV payloads."""

import io
import json

import pandas as pd
import pytest

from pipelines import schema
from pipelines.data import DatasetError
from pipelines.history import PRIOR_COLUMNS
from pipelines.inference import input_fn, model_fn, output_fn, predict_fn
from pipelines.inference_pipeline import InferencePipeline
from tests.pipelines.pipeline_cases import read_json


@pytest.fixture(scope="module")
def model(trained):
    return model_fn(trained.model_dir)


def score_payload(model, body, accept="text/csv"):
    return output_fn(predict_fn(input_fn(body, "text/csv"), model), accept)


def parse_output(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), dtype={"encounter_id": str})


def test_csv_with_header_scores_one_row_per_input_row_in_input_order(model, raw_lines):
    body = "\n".join(raw_lines[:201]) + "\n"
    out = parse_output(score_payload(model, body))
    assert list(out.columns) == ["encounter_id", "probability", "prediction", "not_scored_reason"]
    expected_ids = [line.split(",")[0] for line in raw_lines[1:201]]
    assert list(out["encounter_id"]) == expected_ids
    scored = out[out["not_scored_reason"].isna()]
    assert len(scored) > 190
    assert scored["probability"].between(0, 1).all()
    assert set(scored["prediction"]) <= {0, 1}
    # The CSV carries 6 decimals: a probability equal to the threshold (the threshold is one of the
    # held-out probabilities) may print a hair below it, so compare within half the last digit.
    flagged = scored["prediction"] == 1
    assert (scored.loc[flagged, "probability"] >= model.threshold - 5e-7).all()
    assert (scored.loc[~flagged, "probability"] < model.threshold + 5e-7).all()


def test_death_and_hospice_encounters_are_kept_unscored_with_the_reason(model, slice_frame):
    codes = slice_frame["discharge_disposition_id"]
    rows = pd.concat(
        [
            slice_frame[codes == "1"].head(3),
            slice_frame[codes == "11"].head(2),
            slice_frame[codes == "14"].head(1),
        ]
    )
    out = parse_output(score_payload(model, rows.to_csv(index=False)))
    assert list(out["encounter_id"]) == list(rows["encounter_id"])
    assert out["not_scored_reason"].fillna("").tolist() == ["", "", "", "expired", "expired", "hospice"]
    assert out["probability"].isna().tolist() == [False, False, False, True, True, True]
    assert out["prediction"].isna().tolist() == [False, False, False, True, True, True]
    as_json = json.loads(score_payload(model, rows.to_csv(index=False), accept="application/json"))
    records = as_json["predictions"]
    assert [r["not_scored_reason"] for r in records] == [None, None, None, "expired", "expired", "hospice"]
    assert [r["probability"] is None for r in records] == [False, False, False, True, True, True]
    assert records[3]["prediction"] is None and records[0]["prediction"] in (0, 1)


def test_a_file_of_only_death_and_hospice_encounters_scores_none(model, slice_frame):
    rows = slice_frame[slice_frame["discharge_disposition_id"].isin(["11", "14"])].head(4)
    text = score_payload(model, rows.to_csv(index=False))
    assert text.splitlines()[0] == "encounter_id,probability,prediction,not_scored_reason"
    assert all(line.split(",")[1:3] == ["", ""] for line in text.splitlines()[1:])


def test_bytes_with_bom_and_crlf_score_like_plain_text(model, raw_lines):
    plain = score_payload(model, "\n".join(raw_lines[:51]) + "\n")
    windows = score_payload(model, b"\xef\xbb\xbf" + ("\r\n".join(raw_lines[:51]) + "\r\n").encode())
    assert windows == plain


def test_target_column_is_ignored_when_present(model, slice_frame):
    rows = slice_frame.head(40)
    with_target = score_payload(model, rows.to_csv(index=False))
    without_target = score_payload(model, rows.drop(columns=["readmitted"]).to_csv(index=False))
    assert with_target == without_target


def rows_of(output: str) -> str:
    """The output without its header line (a header-less request's output has none)."""
    return output.split("\n", 1)[1] if output.startswith("encounter_id,") else output


def test_header_less_lines_in_schema_order_are_accepted(model, raw_lines, slice_frame):
    with_header = score_payload(model, "\n".join(raw_lines[:31]) + "\n")
    header_less = score_payload(model, "\n".join(raw_lines[1:31]) + "\n")
    assert header_less == rows_of(with_header)
    without_target = slice_frame.head(30).drop(columns=["readmitted"]).to_csv(index=False, header=False)
    assert score_payload(model, without_target) == rows_of(with_header)


def mini_batches(lines: list[str], size: int, newline: str = "\n") -> list[str]:
    """Lines cut into payloads of `size` lines, as SplitType Line + MultiRecord cuts a file."""
    return [newline.join(lines[i : i + size]) + newline for i in range(0, len(lines), size)]


def assembled(model, payloads: list) -> str:
    """The responses joined by line, as AssembleWith: Line writes `<file>.out`."""
    return "".join(score_payload(model, p).rstrip("\n") + "\n" for p in payloads)


def test_only_the_mini_batch_holding_the_header_gets_an_output_header(model, raw_lines, monkeypatch):
    monkeypatch.setenv("SCORING_COLUMNS", raw_lines[0])
    whole = score_payload(model, "\n".join(raw_lines[:121]) + "\n")

    out = assembled(model, mini_batches(raw_lines[:121], 40))

    assert out == whole
    assert out.count("encounter_id,probability,prediction,not_scored_reason") == 1
    assert out.startswith("encounter_id,probability,prediction,not_scored_reason\n")


def test_a_later_mini_batch_is_read_with_the_files_reordered_columns(model, slice_frame, monkeypatch):
    rows = slice_frame.head(90)
    reordered = rows[list(reversed(rows.columns))]  # encounter_id last, the target first
    lines = reordered.to_csv(index=False).splitlines()
    monkeypatch.setenv("SCORING_COLUMNS", lines[0])

    out = parse_output(assembled(model, mini_batches(lines, 30)))
    expected = parse_output(score_payload(model, rows.to_csv(index=False)))

    assert list(out["encounter_id"]) == list(rows["encounter_id"])
    pd.testing.assert_frame_equal(out, expected)


def test_without_scoring_columns_a_reordered_later_mini_batch_is_refused(model, slice_frame, monkeypatch):
    monkeypatch.delenv("SCORING_COLUMNS", raising=False)
    rows = slice_frame.head(10).drop(columns=["readmitted"])
    lines = rows[list(reversed(rows.columns))].to_csv(index=False).splitlines()

    with pytest.raises(DatasetError, match="numeric"):
        score_payload(model, "\n".join(lines[1:]) + "\n")


def test_bom_and_crlf_survive_the_line_split(model, raw_lines, monkeypatch):
    monkeypatch.setenv("SCORING_COLUMNS", raw_lines[0])
    plain = score_payload(model, "\n".join(raw_lines[:61]) + "\n")
    payloads = [p.encode() for p in mini_batches(raw_lines[:61], 25, newline="\r\n")]
    payloads[0] = b"\xef\xbb\xbf" + payloads[0]

    assert assembled(model, payloads) == plain


def test_a_header_line_is_dropped_wherever_it_falls(model, raw_lines, monkeypatch):
    monkeypatch.setenv("SCORING_COLUMNS", raw_lines[0])
    body = "\n".join([*raw_lines[1:11], raw_lines[0], *raw_lines[11:21]]) + "\n"

    out = parse_output(score_payload(model, body))

    assert list(out["encounter_id"]) == [line.split(",")[0] for line in raw_lines[1:21]]


def test_a_mini_batch_of_the_header_alone_gives_the_header_alone(model, raw_lines, monkeypatch):
    monkeypatch.setenv("SCORING_COLUMNS", raw_lines[0])
    assert (
        score_payload(model, raw_lines[0] + "\r\n")
        == "encounter_id,probability,prediction,not_scored_reason\n"
    )


def test_a_header_less_line_of_another_width_than_the_files_header_is_named(model, raw_lines, monkeypatch):
    monkeypatch.setenv("SCORING_COLUMNS", raw_lines[0])
    with pytest.raises(DatasetError, match="SCORING_COLUMNS"):
        input_fn("1,2,3\n", "text/csv")


def test_unknown_categories_still_score(model, slice_frame):
    rows = slice_frame.head(20).copy()
    rows["race"] = "Martian"
    rows["medical_specialty"] = "Time-Travel"
    rows["diag_1"] = "V99"
    rows["admission_type_id"] = "99"
    out = parse_output(score_payload(model, rows.to_csv(index=False)))
    assert len(out) == 20
    assert out["probability"].notna().all()


def test_missing_optional_columns_score_as_missing(model, slice_frame):
    optional = [
        "payer_code",
        "medical_specialty",
        "weight",
        "A1Cresult",
        "max_glu_serum",
        "diag_3",
        "insulin",
    ]
    rows = slice_frame.head(25).drop(columns=[*optional, "patient_nbr", "readmitted"])
    out = parse_output(score_payload(model, rows.to_csv(index=False)))
    assert len(out) == 25
    assert out["probability"].notna().all()


def test_missing_required_columns_fail_with_their_names(model, slice_frame):
    rows = slice_frame.head(5).drop(columns=["age", "num_medications"])
    with pytest.raises(ValueError, match=r"age, num_medications"):
        input_fn(rows.to_csv(index=False), "text/csv")


def test_header_less_line_of_the_wrong_width_is_a_clear_error(model):
    with pytest.raises(ValueError, match="required columns"):
        input_fn("1,2,3\n4,5,6\n", "text/csv")


def test_unsupported_content_type_is_refused(model):
    with pytest.raises(ValueError, match="text/csv"):
        input_fn(b"{}", "application/x-npy")


def test_json_accept_returns_the_same_predictions(model, raw_lines):
    body = "\n".join(raw_lines[:11]) + "\n"
    as_csv = parse_output(score_payload(model, body))
    as_json = json.loads(score_payload(model, body, accept="application/json"))["predictions"]
    assert [r["encounter_id"] for r in as_json] == list(as_csv["encounter_id"])
    assert [r["prediction"] for r in as_json] == list(as_csv["prediction"])


def test_model_fn_accepts_a_model_tar_gz(trained, tmp_path, raw_lines):
    import tarfile
    from pathlib import Path

    with tarfile.open(tmp_path / "model.tar.gz", "w:gz") as tar:
        for path in Path(trained.model_dir).iterdir():
            tar.add(path, arcname=path.name)
    packed = model_fn(str(tmp_path))
    body = "\n".join(raw_lines[:21]) + "\n"
    assert score_payload(packed, body) == score_payload(model_fn(trained.model_dir), body)


def test_inference_pipeline_writes_predictions_and_the_drift_report(trained, slice_csv, tmp_path):
    pipeline = InferencePipeline(trained.model_dir, f"{trained.model_dir}/baseline_statistics.json")
    result = pipeline.execute(str(slice_csv), str(tmp_path))
    frame = pd.read_csv(slice_csv, dtype=str)
    assert result.prediction_count == len(frame)
    predictions = pd.read_csv(tmp_path / "predictions.csv", dtype={"encounter_id": str})
    assert list(predictions["encounter_id"]) == list(frame[schema.ID_COLUMN])
    reasons = predictions["not_scored_reason"].dropna()
    assert result.not_scored == reasons.value_counts().to_dict() and set(reasons) == {"expired", "hospice"}
    assert result.scored_count == len(frame) - len(reasons)
    report = read_json(tmp_path / "drift_report.json")
    assert report["rows"] == result.scored_count
    assert (tmp_path / "drift_report.md").read_text().startswith("# Drift report")
    # The training slice scored against its own baseline: no feature drifts.
    assert report["drift"] is False


def test_inference_pipeline_drift_is_the_drift_report_of_its_rows(trained, slice_csv, tmp_path):
    from pipelines.drift import drift_report
    from pipelines.inference import read_scoring_file, score, with_history

    pipeline = InferencePipeline(trained.model_dir, f"{trained.model_dir}/baseline_statistics.json")
    result = pipeline.execute(str(slice_csv), str(tmp_path))
    from pipelines.data import excluded_rows

    bundle = pipeline.bundle
    # The history of every row of the file (death/hospice ones are earlier encounters too).
    frame = with_history(bundle, read_scoring_file(str(slice_csv)))
    scored = frame[~excluded_rows(frame, bundle.target)]
    expected = drift_report(
        bundle.baseline,
        bundle.model.named_steps["features"].transform(scored),
        score(bundle, scored)["probability"].to_numpy(),
    )
    assert result.drift == expected
    assert "prediction" in expected


def test_inference_pipeline_reads_only_the_models_columns_and_scores_like_batch_transform(
    trained, slice_csv, tmp_path
):
    pipeline = InferencePipeline(trained.model_dir)
    used = set(read_json(f"{trained.model_dir}/features.json")["columns"])
    # A model with history also reads what the history is made of, and the history columns an
    # enriched part carries.
    history = set(PRIOR_COLUMNS) | set(schema.HISTORY_COLUMNS)
    assert set(pipeline.bundle.input_columns) == used | {schema.ID_COLUMN, schema.DISCHARGE_COLUMN} | history
    assert "patient_nbr" not in used and "readmitted" not in used
    pipeline.execute(str(slice_csv), str(tmp_path), compute_drift=False)
    served = score_payload(pipeline.bundle, slice_csv.read_text())
    assert (tmp_path / "predictions.csv").read_text() == served


def test_output_quotes_an_encounter_id_that_contains_a_comma():
    from pipelines.inference import predictions_csv

    text = predictions_csv(
        pd.DataFrame({"encounter_id": ["a,b", "7"], "probability": [0.25, 0.5], "prediction": [0, 1]})
    )
    assert text == 'encounter_id,probability,prediction,not_scored_reason\n"a,b",0.250000,0,\n7,0.500000,1,\n'

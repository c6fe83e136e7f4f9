"""The table generator itself: rows survive a render/parse round trip (the check keeps rows of tests a
partial run did not collect), generated ids never reach the text, and a drift is located by line."""

from __future__ import annotations

from .table import Row, _first_difference, first_words, parse, render, scrub

ROWS = [
    Row("Faults", "Lambda crash", "a | b", "FAILED", "RuntimeError", "boom", "run FAILED", "yes", "t.py::x"),
    Row(
        "Bad datasets",
        "Empty file",
        "uploaded",
        "FAILED",
        "InvalidDataset",
        "empty",
        "-",
        "yes",
        "t.py::a[e]",
    ),
    Row("Security", "No secrets", "scan", "passed", "-", "-", "-", "-", "t.py::s"),
]


def test_render_then_parse_gives_the_rows_back_in_document_order() -> None:
    parsed = parse(render(ROWS))

    assert [r.category for r in parsed] == ["Bad datasets", "Faults", "Security"]
    assert sorted(parsed, key=lambda r: r.test) == sorted(ROWS, key=lambda r: r.test)


def test_run_ids_uuids_and_job_stamps_are_scrubbed() -> None:
    run = "8c1e0a8e-52a4-4f53-9c1b-4bd1fbb0f0a3"
    text = f"s3://b/runs/{run}/input/x.csv failed in readmission-model-train-261126043627-7bb096e6-1"

    assert scrub(text, run) == "s3://b/runs/<run>/input/x.csv failed in readmission-model-train-<stamp>-1"
    assert first_words("one  two\nthree four", words=3) == "one two three ..."


def test_a_drift_is_located_by_line() -> None:
    committed = render(ROWS)
    observed = render(
        [*ROWS[:2], Row("Security", "No secrets", "scan", "failed", "-", "-", "-", "-", "t.py::s")]
    )

    assert _first_difference(committed, observed).startswith("line ")
    assert _first_difference(committed, committed) == "whitespace only"
